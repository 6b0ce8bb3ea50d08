"""`sysboy gpu [INDEX]`: list the GPUs, or choose the one the GPU metrics read."""

from __future__ import annotations

import argparse

from sysboy_tray.commands._client import EPILOG, with_client
from sysboy_tray.control_client import ControlClient
from sysboy_tray.metrics import GIB
from sysboy_tray.terminal import printable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument(
        "index",
        nargs="?",
        type=_index,
        metavar="INDEX",
        help="the GPU to read from now on (its number in the list); left out: list them",
    )


def _index(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a GPU's number (see sysboy gpu)")
    return int(text)


def run(args: argparse.Namespace) -> int:
    def choose(client: ControlClient) -> int:
        gpus, shown = client.gpu(args.index)
        if not gpus:
            print("No GPU found: the GPU metrics are not available on this PC.")
            return 0
        if args.index is not None:
            name = next(g["name"] for g in gpus if g["index"] == shown)
            # a GPU's name comes from its driver: never print it raw
            print(printable(f"The GPU metrics now read GPU {shown} ({name})."))
            return 0
        for gpu in gpus:
            mark = "  (read now)" if gpu["index"] == shown else ""
            size = f"{gpu['total_bytes'] / GIB:.1f} GiB"
            print(printable(f"  {gpu['index']}  {gpu['name']}  {size}{mark}"))
        return 0

    return with_client(choose)
