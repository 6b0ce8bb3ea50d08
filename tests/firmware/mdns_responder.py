"""A hand-made mDNS responder for the firmware's discovery: it records each query and sends
what `answer(query)` returns, true or not."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import dns.message

Answer = Callable[[dns.message.Message], list[bytes]]


class Responder:
    """Answers queries on a UDP port of `address` (the device is pointed at it)."""

    def __init__(self, answer: Answer, address: str = "127.0.0.1") -> None:
        self.answer = answer
        self.queries: list[tuple[dns.message.Message, int]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(1500)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            self.queries.append((query, peer[1]))
            for packet in self.answer(query):
                self.sock.sendto(packet, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
