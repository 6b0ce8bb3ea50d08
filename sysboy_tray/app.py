"""The app: wires settings, metric sources, sampler, server and mDNS together.

One daemon thread owns the asyncio loop (server, sessions, zeroconf). The sampler
has its own thread. The tray, the CLI and signal handlers call the thread-safe
methods here, which hand work to the loop and wait for the result.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil

from sysboy_tray import DEVICE_PATH, PROTOCOL_VERSION, __version__, protocol
from sysboy_tray.advertise import Advertiser, instance_name, lan_addresses
from sysboy_tray.config import Paths, SettingsStore, atomic_write, device_name
from sysboy_tray.errors import ControlError
from sysboy_tray.eventloop import connection_limit, new_event_loop
from sysboy_tray.firewall import Firewall, FirewallVerdict, FirewallWatch
from sysboy_tray.hub import Hub
from sysboy_tray.limits import ConnectionGuard, raise_open_file_limit, total_for
from sysboy_tray.metrics import (
    DRM_ROOT,
    GpuInfo,
    MetricSource,
    Reading,
    gpu_sources,
    list_gpus,
    pick_gpu,
)
from sysboy_tray.pairing import NewMeter, NewMeters, PairStore, Trust
from sysboy_tray.sampler import Sampler
from sysboy_tray.server import ControlHandler, DeviceServer
from sysboy_tray.session import MIN_MOVE
from sysboy_tray.sleep import SleepWatcher
from sysboy_tray.updater import Bundle, Updater, UpdateState, load_bundle

log = logging.getLogger(__name__)

T = TypeVar("T")
CALL_TIMEOUT_S = 5.0
# how long the park frames may take to go out before the PC is let go to sleep
SLEEP_PARK_S = 1.0


def _by_name(known: dict[str, str], name: str) -> str:
    """The id of the one device going by `name` (any case); ControlError otherwise."""
    found = [
        device_id for device_id, known_name in known.items() if known_name.lower() == name.lower()
    ]
    if len(found) == 1:
        return found[0]
    if found:
        raise ControlError(f"{len(found)} devices are named '{name}': give an id instead")
    if not known:
        raise ControlError(f"there is no device '{name}': no meter has linked to this PC yet")
    listed = ", ".join(f"{i} ({n})" if n != i else i for i, n in sorted(known.items()))
    raise ControlError(f"there is no device '{name}'; known devices: {listed}")


def _moved(last: Reading, new: Reading) -> bool:
    if last.percent is None or new.percent is None:
        return last.percent != new.percent or last.reason != new.reason
    return abs(new.percent - last.percent) >= MIN_MOVE


@dataclass(frozen=True)
class NeedleView:
    """One needle of a connected device: what it shows and the calibration it holds."""

    number: int
    metric: str
    calibration: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class DeviceView:
    """What the tray shows of one connected device (`metric`, `calibration`: needle 1's)."""

    id: str
    name: str
    address: str
    board: str
    fw: str
    metric: str
    rssi: int | None
    calibration: tuple[tuple[float, float], ...]
    needles: tuple[NeedleView, ...] = ()
    button_needle: int = 1
    update_available: bool = False  # the app carries a newer firmware than the meter runs
    update: str = ""  # how its firmware update goes, in a few words ("" when none)
    updating: bool = False  # its firmware update is under way


class App:
    """The running Sysboy core; every public method is safe to call from any thread."""

    def __init__(
        self,
        paths: Paths | None = None,
        *,
        sources: Mapping[str, MetricSource] | None = None,
        port: int | None = None,
        interval: float | None = None,
        advertise: bool = True,
        control: Callable[[App], ControlHandler] | None = None,
        sleep: SleepWatcher | None = None,
        firewall: Firewall | None = None,
        kind: str = "serve",
        firmware_bundle: Path | None = None,
        drm_root: Path = DRM_ROOT,
    ) -> None:
        self.paths = paths or Paths.default()
        self._drm_root = drm_root
        self._gpus: list[GpuInfo] | None = None
        self._gpu_lock = threading.Lock()
        self.store = SettingsStore(self.paths.settings_file)
        self._notices: list[str] = []
        self._notices_lock = threading.Lock()
        self.store.on_error = self.notice
        settings = self.store.settings
        if sources is None:
            from sysboy_tray.metrics import build_sources

            sources = build_sources(settings, drm_root)
        self.sources = dict(sources)
        self._port_wanted = settings.port if port is None else port
        # only the port from the settings may move when taken; one the user named may not
        self._port_may_move = port is None
        self.kind = kind
        self.sampler = Sampler(
            self.sources, settings.interval_s if interval is None else interval, self._publish
        )
        self.trust = Trust(settings.install_id, PairStore(self.paths.pairs_file), NewMeters())
        self.hub = Hub(
            self.store,
            self.sources,
            self.sampler.want,
            instance_name(),
            self.trust,
            known=self._paired,
        )
        # the firmware a meter is updated to: a built bundle (a release's, or a test's) when
        # named, else the app's own, built on first use
        given = firmware_bundle or os.environ.get("SYSBOY_FIRMWARE_BUNDLE")
        self._firmware_bundle = Path(given) if given else None
        self._built_bundle: Path | None = None
        self.updater = Updater(self.hub, self._bundle, _bundle_version(self._firmware_bundle))
        self.hub.on_update_note = self._update_noted
        self._control_factory = control
        self.server: DeviceServer | None = None
        self.advertiser = Advertiser(settings.install_id) if advertise else None
        self.advertised: list[str] = []
        self.advertise_done = threading.Event()
        self._advertising: asyncio.Task[None] | None = None
        self._published: dict[str, Reading] = {}
        # set by any thread; the sampler thread then forgets what it last published
        self._republish = threading.Event()
        self._sleep = sleep
        self._firewall = (
            None
            if firewall is None
            else FirewallWatch(firewall, lambda: self.port, self._firewall_changed)
        )
        # how the global metric was chosen, when the app chose it (the first run)
        self.metric_note = ""
        self.port = 0
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="sysboy-loop", daemon=True)
        self._stopped = threading.Event()

    # -- life cycle -----------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread, the server, mDNS and the sampler; return when listening.

        Raises:
            OSError: the server cannot listen at all.
        """
        self._choose_first_metric()
        self._thread.start()
        self.call(self._start(), timeout=30)
        self._write_state()  # here, not on the loop: file I/O stays off it
        self._survey()
        self.sampler.start()
        if self._sleep is not None:
            self._sleep.start(self._pc_sleeping, self._pc_woke)
        if self._firewall is not None:
            self._firewall.start()

    def _choose_first_metric(self) -> None:
        """First run (no metric in the settings): VRAM if it can be read, else CPU."""
        if self.store.metric_chosen or "vram" not in self.sources:
            return
        vram = self.sampler.read({"vram"})["vram"]
        if vram.available:
            choice, why = "vram", "the GPU's memory can be read"
        elif "cpu" in self.sources:
            choice, why = "cpu", f"VRAM cannot be read: {vram.reason}"
        else:
            return
        self.metric_note = f"first run: the needles show {choice} ({why})"
        log.info("%s", self.metric_note)
        self.store.update(metric=choice)  # from now on only the user changes it

    def _survey(self) -> None:
        """Read every metric once: log what is unavailable and why, prime the counters."""
        readings = self.sampler.read(set(self.sources))
        for reading in readings.values():
            if not reading.available:
                log.warning("metric %s is unavailable: %s", reading.metric, reading.reason)
        self._publish(readings)

    async def _start(self) -> None:
        control = self._control_factory(self) if self._control_factory else None
        total = total_for(raise_open_file_limit())
        loop_limit = connection_limit()
        if loop_limit is not None:  # Windows' select() loop: past 512 sockets it fails
            total = min(total, loop_limit)
        guard = ConnectionGuard(total=total)
        self.server = DeviceServer(self.hub, control, guard)
        self.port = await self.server.start(self._port_wanted, may_move=self._port_may_move)
        self.hub.refresh_wanted()
        if self.advertiser is None:
            self.advertise_done.set()
        else:
            # mDNS probing takes about a second: listening does not wait for it
            self._advertising = asyncio.create_task(self._advertise(self.advertiser))

    async def _advertise(self, advertiser: Advertiser) -> None:
        addresses = lan_addresses()
        try:
            await advertiser.start(self.port, addresses)
            self.advertised = addresses
        except Exception as exc:  # no multicast on this network: still usable by address
            log.warning("mDNS advertisement failed (%s); devices need the PC's address", exc)
        finally:
            self.advertise_done.set()

    def stop(self) -> None:
        """Park every needle, say the mDNS goodbye, stop everything (within about 2 s)."""
        if self._stopped.is_set() or not self._thread.is_alive():
            return
        self._stopped.set()
        if self._sleep is not None:
            self._sleep.stop()
        if self._firewall is not None:
            self._firewall.stop()
        self.sampler.stop(timeout=1.0)
        try:
            self.call(self._stop(), timeout=3)
        except (concurrent.futures.TimeoutError, RuntimeError) as exc:
            log.warning("shutdown did not finish cleanly: %s", exc)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(2)
        self.store.flush()
        self._remove_state()
        if self._built_bundle is not None:
            shutil.rmtree(self._built_bundle.parent, ignore_errors=True)

    async def _stop(self) -> None:
        await self.updater.stop()
        for custom in self.hub.custom.values():
            if custom.expiry is not None:
                custom.expiry.cancel()
        if self.server is not None:
            await self.server.stop()
        if self._advertising is not None and not self._advertising.done():
            self._advertising.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._advertising
        if self.advertiser is not None:
            await self.advertiser.stop()
        for source in self.sources.values():
            try:
                source.close()
            except Exception:
                log.exception("closing metric %s failed", source.id)

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()

    def _publish(self, readings: dict[str, Reading]) -> None:
        # Runs on the sampler thread. Readings that did not move are not worth waking the
        # loop for: each device's heartbeat timer resends its last value on its own.
        if self._republish.is_set():
            self._republish.clear()
            self._published.clear()
        changed = {}
        for metric, reading in readings.items():
            last = self._published.get(metric)
            if last is None or _moved(last, reading):
                changed[metric] = self._published[metric] = reading
        if changed:
            self.loop.call_soon_threadsafe(self.hub.publish, changed)

    # -- thread-safe calls --------------------------------------------------

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT_S) -> T:
        """Run a coroutine on the loop thread and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def on_loop(self, func: Callable[[], T], timeout: float = CALL_TIMEOUT_S) -> T:
        """Run a plain function on the loop thread and wait for its result."""

        async def run() -> T:
            return func()

        return self.call(run(), timeout)

    def set_metric(
        self, metric: str, device_id: str | None = None, needle: int | None = None
    ) -> None:
        """Show `metric` everywhere (no device, no needle), or on one device's needle
        (needle 1 unless told; a needle without a device: the only device's).

        Raises:
            ControlError: no such metric, device or needle.
        """

        def run() -> None:
            if device_id is None and needle is None:
                self.hub.set_global_metric(metric)
            else:
                chosen = device_id or self.hub.session(None).device_id
                self.hub.set_device_metric(chosen, metric, needle or 1)

        self.on_loop(run)

    def follow_global(self, device_id: str, needle: int = 1) -> None:
        """Let a device's needle show the global metric again."""
        self.on_loop(lambda: self.hub.set_device_metric(device_id, None, needle))

    def metric_infos(self) -> tuple[protocol.MetricInfo, ...]:
        """Every metric a device may show, built-in and pushed."""
        return self.on_loop(self.hub.metric_infos)

    def set_interval(self, seconds: float) -> None:
        """Change the update rate and remember it."""
        self.sampler.set_interval(seconds)
        self.store.update(interval_s=self.sampler.interval)

    def push(self, metric: str, value: float, unit: str = "", label: str = "") -> None:
        """Show a script's own value, like a built-in metric."""
        self.on_loop(lambda: self.hub.push(metric, value, unit, label))

    def send(self, device_id: str | None, message: protocol.Message) -> None:
        """Send a control message (needle, sweep, identify, park) to a device."""
        self.on_loop(lambda: self.hub.session(device_id).send(message))

    def send_all(self, message: protocol.Message) -> None:
        """Send a control message to every connected device."""

        def run() -> None:
            for session in self.hub.sessions.values():
                session.send(message)

        self.on_loop(run)

    def calibrate(
        self,
        device_id: str | None,
        points: tuple[tuple[float, float], ...],
        needle: int = 1,
    ) -> str:
        """Send one needle's calibration, wait for the device's ack, keep a copy; return the
        device id.

        Raises:
            ProtocolError: the points are not a valid calibration.
            ControlError: no such device or needle.
            TimeoutError: the device did not acknowledge.
        """
        checked = protocol.check_points(points)

        async def run() -> str:
            session = self.hub.session(device_id)
            await session.command(protocol.Calibration(checked, session.needle_key(needle)))
            session.calibrated(needle, checked)  # so `devices()` shows what it holds now
            self.store.update_device(session.device_id, needle, calibration=checked)
            return session.device_id

        return self.call(run(), timeout=CALL_TIMEOUT_S + 2)

    def park_all(self, reason: str) -> None:
        """Send every needle to rest (the PC is about to sleep)."""
        self.on_loop(lambda: self.hub.park_all(reason))
        # the next readings must reach the devices even if they did not move: the
        # needles now rest at 0, whatever the last value was
        self._republish.set()

    def park_for_sleep(self, timeout: float = SLEEP_PARK_S) -> None:
        """The PC is about to sleep: park every needle now, send no sample until `wake()`.

        Returns once the park frames are written (or `timeout` passed for a slow device).
        """
        self.call(self.hub.park_for_sleep(timeout), timeout=timeout + CALL_TIMEOUT_S)

    def wake(self) -> None:
        """The PC is awake again: every device gets a fresh value at once, moved or not."""
        self.on_loop(self.hub.wake)
        self._republish.set()
        self.sampler.read_now()

    def _pc_sleeping(self) -> None:
        log.info("the PC is going to sleep: parking every needle")
        try:
            self.park_for_sleep()
        except (concurrent.futures.TimeoutError, RuntimeError) as exc:
            log.warning("could not park the needles before sleep: %s", exc)

    def _pc_woke(self) -> None:
        log.info("the PC woke up: the needles follow the readings again")
        try:
            self.wake()
        except (concurrent.futures.TimeoutError, RuntimeError) as exc:
            log.warning("could not resume the needles after sleep: %s", exc)

    def firewall(self) -> FirewallVerdict | None:
        """What the firewall does to meters on this network (None: not known)."""
        return self._firewall.verdict if self._firewall is not None else None

    def allow_meters(self) -> bool:
        """Ask the user (UAC) to let meters through the firewall; False if not even asked."""
        return self._firewall.allow() if self._firewall is not None else False

    def notice(self, text: str) -> None:
        """Something the user must be told (the tray shows it as a notification)."""
        with self._notices_lock:
            self._notices.append(text)
        if self._thread.is_alive() and not self._stopped.is_set():
            self.loop.call_soon_threadsafe(self.hub.changed)

    def take_notices(self) -> list[str]:
        """The notices not shown yet, oldest first; each is given once."""
        with self._notices_lock:
            notices, self._notices = self._notices, []
        return notices

    def _firewall_changed(self) -> None:
        if not self._stopped.is_set():
            self.loop.call_soon_threadsafe(self.hub.changed)

    def gpus(self) -> tuple[list[GpuInfo], GpuInfo | None]:
        """The GPUs the `gpu` setting can pick (looked for once), and the one read now."""
        with self._gpu_lock:
            if self._gpus is None:
                self._gpus = list_gpus(self._drm_root)
            found = list(self._gpus)
        return found, pick_gpu(found, self.store.settings.gpu) if found else None

    def set_gpu(self, index: int) -> GpuInfo:
        """Read the GPU metrics from GPU `index` from now on, and remember it.

        Raises:
            ControlError: there is no GPU `index`.
        """
        found, _shown = self.gpus()
        chosen = next((gpu for gpu in found if gpu.index == index), None)
        if chosen is None:
            listed = ", ".join(f"{gpu.index} ({gpu.name})" for gpu in found) or "none found"
            raise ControlError(f"there is no GPU {index}; GPUs: {listed}")
        self.store.update(gpu=index)
        fresh = gpu_sources(self.store.settings, self._drm_root)
        self.sampler.replace(fresh)
        self.sources.update(fresh)  # what stop() closes
        self._republish.set()  # the new card's values go out even if they match the old
        self.sampler.read_now()
        log.info("GPU metrics from GPU %d (%s)", chosen.index, chosen.name)
        return chosen

    def rename(self, device: str, name: str) -> tuple[str, str]:
        """Name a device on this PC: linked or remembered, given by id or by its name now;
        "" gives it back its own name. Returns its id and the name it now shows.

        Raises:
            ConfigError: the name is too long or holds control characters.
            ControlError: no such device, or two devices go by that name.
        """
        chosen = device_name(name)
        known = self.on_loop(self.hub.known_devices)
        device_id = device if device in known else _by_name(known, device)
        self.store.update_device(device_id, name=chosen)
        self.on_loop(self.hub.changed)  # the tray's menu and tooltip follow
        return device_id, self.on_loop(self.hub.known_devices)[device_id]

    def forget(self, device_id: str) -> None:
        """Drop what the PC remembers of a device, its pairing key included: it links
        again only once paired again (by its button, or over USB)."""
        self.store.forget_device(device_id)
        self.trust.pairs.forget(device_id)

        def end_link() -> None:
            # proven with the key just dropped: the link must not go on as if still paired
            session = self.hub.sessions.get(device_id)
            if session is not None:
                session.end("this PC forgot the meter: pair it again")

        self.on_loop(end_link)

    def _update_noted(self, device_id: str, note: protocol.UpdateStatus) -> None:
        """A meter says it went back to its previous firmware: tell the user, unless an
        update this app watches is waiting for that word (it tells the outcome itself)."""
        watched = self.updater.states.get(device_id)
        if note.state != "rolled_back" or (watched is not None and not watched.finished):
            return
        name = self.hub.known_devices().get(device_id, device_id)
        self.notice(f"Meter {name}: {_rollback_text(note)}; it runs its previous version.")

    def _paired(self, device_id: str) -> bool:
        """Whether settings may be saved for this device id: only for a paired meter."""
        return self.trust.pairs.key_for(device_id) is not None

    def _bundle(self) -> Bundle:
        """The firmware bundle updates carry (a worker thread: it may compile)."""
        if self._firmware_bundle is not None:
            return load_bundle(self._firmware_bundle)
        if self._built_bundle is None:
            from sysboy_tray import firmware_tool

            folder = Path(tempfile.mkdtemp(prefix="sysboy-update-")) / "bundle"
            firmware_tool.build(folder)
            self._built_bundle = folder
        return load_bundle(self._built_bundle)

    def update_firmware(self, device_id: str | None) -> str:
        """Start updating a linked meter's firmware (the only one when None); its id.

        Raises:
            ControlError: no such meter, or it is being updated already.
        """
        return self.on_loop(lambda: self.updater.start(device_id))

    def updates(self) -> dict[str, UpdateState]:
        """Each meter's firmware update since the app started, by device id."""
        return self.on_loop(lambda: dict(self.updater.states))

    def devices(self) -> list[DeviceView]:
        """The connected devices."""

        def run() -> list[DeviceView]:
            views = []
            for session in self.hub.sessions.values():
                hello = session.hello
                assert hello is not None
                update = self.updater.states.get(hello.id)
                note = self.hub.update_notes.get(hello.id)
                saved = self.store.settings.devices.get(hello.id)
                views.append(
                    DeviceView(
                        hello.id,
                        (saved.name if saved is not None else None) or hello.name or hello.id,
                        session.address,
                        hello.board,
                        hello.fw,
                        session.metric,
                        session.status.rssi if session.status else None,
                        session.feeds[0].calibration,
                        tuple(NeedleView(f.number, f.metric, f.calibration) for f in session.feeds),
                        session.button_needle,
                        self.updater.available(hello.fw),
                        _update_text(update, note),
                        update is not None and not update.finished,
                    )
                )
            return views

        return self.on_loop(run)

    def new_meters(self) -> list[NewMeter]:
        """Unpaired meters that said hello and pair if their button is pressed now."""
        waiting = self.on_loop(self.trust.new_meters.waiting)
        # one paired meanwhile over USB waits no more (the keys file is read off the loop)
        return [m for m in waiting if self.trust.pairs.key_for(m.id) is None]

    def readings(self) -> dict[str, Reading]:
        """The latest reading of every metric read so far."""
        return self.on_loop(lambda: dict(self.hub.readings))

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` (on the loop thread) whenever devices or readings change."""
        self.on_loop(lambda: self.hub.listeners.append(listener))

    # -- the state file, for the CLI and the calibration window ----------------

    def _write_state(self) -> None:
        state = {
            "port": self.port,
            # so the CLI can tell a live app of this user from a file left by a crash
            "pid": os.getpid(),
            "started": psutil.Process().create_time(),
            "path": DEVICE_PATH,
            "version": __version__,
            "proto": PROTOCOL_VERSION,
            "kind": self.kind,  # "tray" or "serve": a second start says which runs
        }
        try:
            atomic_write(self.paths.state_file, json.dumps(state).encode("utf-8"))
        except OSError as exc:
            log.warning("cannot write %s: %s", self.paths.state_file, exc)

    def _remove_state(self) -> None:
        # only our own: a file another Sysboy wrote is its business
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if json.loads(self.paths.state_file.read_bytes()).get("pid") == os.getpid():
                self.paths.state_file.unlink()


def _update_text(update: UpdateState | None, note: protocol.UpdateStatus | None) -> str:
    """How a meter's firmware update went, in a few words: the update this app runs, or a
    rollback it did not see coming (the update began before a restart, or gave up early);
    "" when there is nothing to say."""
    unseen = update is None or (update.finished and update.state != "rolled back")
    if note is not None and note.state == "rolled_back" and unseen:
        return _rollback_text(note)
    return update.text() if update is not None else ""


def _rollback_text(note: protocol.UpdateStatus) -> str:
    """A meter's word of a rollback, as the tray and `sysboy status` show it."""
    return f"update to {note.version} rolled back: {note.reason}"


def _bundle_version(bundle: Path | None) -> str:
    """The firmware version a bundle holds: the app's own unless a built bundle is named."""
    if bundle is None:
        return __version__
    try:
        manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
        return str(manifest["firmware_version"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("firmware bundle %s unreadable (%s); offering none", bundle, exc)
        return ""
