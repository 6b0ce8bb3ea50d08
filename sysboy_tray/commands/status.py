"""`sysboy status`: what the running app does: where it listens, its devices and metrics."""

from __future__ import annotations

import argparse

from sysboy_tray import DEVICE_PATH
from sysboy_tray.commands._client import EPILOG, with_client
from sysboy_tray.control_client import AppStatus, ControlClient, MetricStatus
from sysboy_tray.pairing import PRESS_TO_PAIR
from sysboy_tray.terminal import json_text, printable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--json", action="store_true", help="print the raw status as JSON")


def _metric_line(metric: MetricStatus, shown: str) -> str:
    mark = "*" if metric.id == shown else " "
    head = f"{mark} {metric.id:<10} {metric.label:<12}"
    if not metric.available:
        return f"{head} unavailable: {metric.reason}"
    if not metric.live or metric.value is None:
        # not sampled while nobody shows it: an old value would mislead
        return f"{head} available"
    detail = f"  ({metric.detail})" if metric.detail else ""
    pushed = "  pushed by a script" if metric.pushed else ""
    return f"{head} {metric.value:5.1f} %{detail}{pushed}"


def describe(status: AppStatus) -> list[str]:
    """The status as lines of text for a person."""
    urls = ", ".join(f"ws://{a}:{status.port}{DEVICE_PATH}" for a in status.addresses)
    lines = [f"Sysboy {status.version} listening on port {status.port}: {urls}"]
    if status.advertised:
        lines.append(f"mDNS: advertised at {', '.join(status.advertised)}")
    else:
        lines.append("mDNS: not advertised; devices need this PC's address")
    if status.firewall is not None:
        fix = "; fix: tray menu > Allow meters on this network…" if status.firewall_blocked else ""
        lines.append(f"Firewall: {status.firewall}{fix}")
    lines.append(f"Update rate: every {status.interval_s:g} s")
    if status.metric_note:
        lines.append(status.metric_note[:1].upper() + status.metric_note[1:])
    lines.append("")
    for meter in status.new_meters:
        # the meter's own name when it has one; its id says which board it is
        named = f"{meter.name} ({meter.id})" if meter.name != meter.id else meter.id
        lines.append(f"{PRESS_TO_PAIR}: {named} at {meter.address}, {meter.seconds_left} s left")
    if status.new_meters:
        lines.append("")
    if not status.devices:
        lines.append("Devices: none connected")
    else:
        lines.append(f"Devices ({len(status.devices)}):")
        labels = {m.id: m.label for m in status.metrics}
        for device in status.devices:
            signal = f"signal {device.rssi} dBm" if device.rssi is not None else "signal ?"
            shows = f"{labels.get(device.metric, device.metric)} ({device.metric})"
            if len(device.needles) > 1:
                shows = ", ".join(
                    f"needle {n} {labels.get(needle.metric, needle.metric)} ({needle.metric})"
                    + (" [button]" if n == device.button_needle else "")
                    for n, needle in enumerate(device.needles, 1)
                )
            # a device with no name (of its own or the PC's) is named by its id: once is enough
            name = device.name if device.name != device.id else "(no name)"
            lines.append(
                f"  {device.id:<12} {name:<16} {device.address:<15} {signal:<15} "
                f"fw {device.fw:<8} shows {shows}"
            )
            if device.update:
                lines.append(f"  {'':<12} firmware: {device.update}")
            elif device.update_available:
                lines.append(
                    f"  {'':<12} firmware update available: {status.firmware} "
                    f"(sysboy firmware update {device.id})"
                )
    lines.append("")
    lines.append("Metrics (* = the global one, on the tray icon and devices without their own):")
    lines.extend(_metric_line(m, status.metric) for m in status.metrics)
    return lines


def run(args: argparse.Namespace) -> int:
    def show(client: ControlClient) -> int:
        if args.json:
            reply = client.request("status")
            reply.pop("id", None)
            print(json_text(reply))
        else:
            # names, boards and reasons come from the network: never print them raw
            print("\n".join(printable(line) for line in describe(client.status())))
        return 0

    return with_client(show)
