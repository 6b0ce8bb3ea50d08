"""Every worked value in docs/hardware.md (and its JSON twin) follows from the formulas."""

from __future__ import annotations

import cmath
import json
import math
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
GUIDE = (DOCS / "hardware.md").read_text(encoding="utf-8")
VALUES: dict[str, Any] = json.loads((DOCS / "hardware_values.json").read_text(encoding="utf-8"))
ASSUME: dict[str, float] = VALUES["assumptions"]

E24 = [
    10,
    11,
    12,
    13,
    15,
    16,
    18,
    20,
    22,
    24,
    27,
    30,
    33,
    36,
    39,
    43,
    47,
    51,
    56,
    62,
    68,
    75,
    82,
    91,
]
E96 = [
    100, 102, 105, 107, 110, 113, 115, 118, 121, 124, 127, 130, 133, 137, 140, 143,
    147, 150, 154, 158, 162, 165, 169, 174, 178, 182, 187, 191, 196, 200, 205, 210,
    215, 221, 226, 232, 237, 243, 249, 255, 261, 267, 274, 280, 287, 294, 301, 309,
    316, 324, 332, 340, 348, 357, 365, 374, 383, 392, 402, 412, 422, 432, 442, 453,
    464, 475, 487, 499, 511, 523, 536, 549, 562, 576, 590, 604, 619, 634, 649, 665,
    681, 698, 715, 732, 750, 768, 787, 806, 825, 845, 866, 887, 909, 931, 953, 976,
]  # fmt: skip


def nearest(ohms: float, series: list[int]) -> float:
    """The standard value closest to `ohms` (by ratio, as tolerances are)."""
    base = len(str(series[0])) - 1
    values = [v * 10.0 ** (d - base) for v in series for d in range(0, 8)]
    return min(values, key=lambda v: abs(math.log(v / ohms)))


def dac_code(volts: float) -> int:
    return round(volts * ASSUME["dac_codes"] / ASSUME["vdd_v"])


def meter_values(full_scale_ma: float, target_v: float, drive: str) -> dict[str, float]:
    """What the guide's formulas give for one meter."""
    amps = full_scale_ma / 1000
    coil = ASSUME["coil_drop_v"] / amps
    r_exact = target_v / amps
    r_sense = nearest(r_exact, E96)
    r_e24 = nearest(r_exact, E24)
    v_fs = amps * r_sense
    r_out = ASSUME["opamp_out_ohm"]
    if drive == "op-amp":
        # U1 sources the meter current itself: its output sags by I × R_out
        out = amps * (r_sense + coil)
        limit = ASSUME["vdd_v"] - amps * r_out
        loop_limit = ASSUME["vdd_v"] / (r_sense + coil + r_out)
    else:  # op-amp + Q1: one base-emitter drop, and the base current through R_B
        r_base = ASSUME["r_base_ohm"] / (ASSUME["beta_min"] + 1)  # as seen from the emitter
        out = v_fs + amps * coil + ASSUME["vbe_v"] + amps * r_base
        limit = ASSUME["opamp_limit_light_v"]
        loop_limit = (limit - ASSUME["vbe_v"]) / (r_sense + coil + r_base)
    most = min(ASSUME["dac_top_v"] / r_sense, loop_limit)
    return {
        "target_v": target_v,
        "r_exact_ohm": r_exact,
        "r_sense_ohm": r_sense,
        "full_scale_v": v_fs,
        "full_scale_code": dac_code(v_fs),
        "full_scale_fraction": v_fs / ASSUME["vdd_v"],
        "power_mw": amps**2 * r_sense * 1000,
        "r_e24_ohm": r_e24,
        "e24_full_scale_code": dac_code(amps * r_e24),
        "coil_ohm": coil,
        "opamp_output_v": out,
        "opamp_limit_v": limit,
        "headroom_v": limit - out,
        "most_current_ma": most * 1000,
        "most_current_pct": most / amps * 100,
        "zero_pct": ASSUME["dac_bottom_v"] / r_sense / amps * 100,
    }


def filter_values(f: dict[str, float]) -> dict[str, float]:
    """The PWM filter's figures from its parts (two loaded RC stages)."""
    r1, c1, r2, c2 = f["r_f1_ohm"], f["c_f1_f"], f["r_f2_ohm"], f["c_f2_f"]
    a, b = r1 * c1 * r2 * c2, r1 * c1 + r2 * c2 + r1 * c2

    def gain(hz: float) -> float:
        s = 2j * math.pi * hz
        return abs(1 / (a * s * s + b * s + 1))

    low, high = 1.0, 1e4
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if gain(mid) > 2**-0.5 else (low, mid)
    root = cmath.sqrt(b * b - 4 * a)
    p1, p2 = ((-b + root) / (2 * a)).real, ((-b - root) / (2 * a)).real
    k1, k2 = p2 / (p1 - p2), -p1 / (p1 - p2)
    t = 0.0
    while 1 + k1 * math.exp(p1 * t) + k2 * math.exp(p2 * t) < 0.99:
        t += 1e-6
    fundamental = 2 * ASSUME["vdd_v"] / math.pi  # peak, at 50 % duty (the worst)
    return {
        "duty_bits": math.floor(math.log2(f["clock_hz"] / f["frequency_hz"])),
        "stage_corner_hz": 1 / (2 * math.pi * r1 * c1),
        "corner_hz": low,
        "ripple_mv_pp": 2 * fundamental * gain(f["frequency_hz"]) * 1000,
        "settle_ms": t * 1000,
    }


# --- reading the guide ----------------------------------------------------------------------

PREFIX = {"": 1.0, "k": 1e3, "M": 1e6, "m": 1e-3, "µ": 1e-6, "n": 1e-9}
QUANTITY = re.compile(r"(\d+(?:\.\d+)?)\s*(k|M|m|µ|n)?(Ω|V|A|W|Hz|F|s|%|bits)?(?![\w.])")


@dataclass(frozen=True)
class Printed:
    """A number as the guide prints it: its value in base units and its rounding."""

    value: float
    half_step: float
    unit: str

    def matches(self, exact: float) -> bool:
        return abs(exact - self.value) <= self.half_step * (1 + 1e-9) + 1e-12


def printed(cell: str) -> list[Printed]:
    found = []
    for number, prefix, unit in QUANTITY.findall(cell):
        decimals = len(number.partition(".")[2])
        scale = PREFIX[prefix or ""]
        found.append(Printed(float(number) * scale, 0.5 * 10.0**-decimals * scale, unit or ""))
    return found


def table(first_headers: tuple[str, ...]) -> list[dict[str, str]]:
    """The guide's table whose header starts with `first_headers`, as rows of cells."""
    lines = GUIDE.splitlines()
    for start, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and tuple(cells[: len(first_headers)]) == first_headers:
            rows = []
            for row in lines[start + 2 :]:
                if not row.startswith("|"):
                    break
                values = [c.strip() for c in row.strip().strip("|").split("|")]
                assert len(values) == len(cells), row
                rows.append(dict(zip(cells, values, strict=True)))
            return rows
    raise AssertionError(f"no table starting {first_headers} in docs/hardware.md")


def _meter(cell: str) -> float:
    (amps,) = printed(cell)
    return amps.value * 1000


CHOICE = table(("Meter", "Target V_DAC"))
HEADROOM = table(("Meter", "Coil (assumed)"))
CHOICE_COLUMNS = {
    "Target V_DAC": "target_v",
    "R exact": "r_exact_ohm",
    "R_SENSE (E96, 1 %)": "r_sense_ohm",
    "Full-scale V_DAC": "full_scale_v",
    "Full-scale code": "full_scale_code",
    "Full-scale fraction": "full_scale_fraction",
    "Power in R_SENSE": "power_mw",
    "E24 (5 %) instead": "r_e24_ohm",
    "E24 full-scale code": "e24_full_scale_code",
}
HEADROOM_COLUMNS = {
    "Coil (assumed)": "coil_ohm",
    "U1 output at full scale": "opamp_output_v",
    "U1 can reach": "opamp_limit_v",
    "Headroom": "headroom_v",
    "Needle at DAC code 0": "zero_pct",
}
UNIT_SCALE = {"power_mw": 1e-3, "most_current_ma": 1e-3}  # the guide prints W and A


def _json_meter(full_scale_ma: float) -> dict[str, Any]:
    (meter,) = [m for m in VALUES["meters"] if m["full_scale_ma"] == full_scale_ma]
    return meter


def _computed(full_scale_ma: float) -> dict[str, float]:
    meter = _json_meter(full_scale_ma)
    return meter_values(full_scale_ma, meter["target_v"], meter["drive"])


# --- the tests ------------------------------------------------------------------------------


def test_the_guide_and_the_json_cover_the_same_meters() -> None:
    wanted = [m["full_scale_ma"] for m in VALUES["meters"]]
    assert wanted == [1, 5, 10]
    assert [_meter(row["Meter"]) for row in CHOICE] == pytest.approx(wanted)
    assert [_meter(row["Meter"]) for row in HEADROOM] == pytest.approx(wanted)


@pytest.mark.parametrize("meter", VALUES["meters"], ids=lambda m: f"{m['full_scale_ma']}mA")
def test_json_values_follow_the_formulas(meter: dict[str, Any]) -> None:
    computed = meter_values(meter["full_scale_ma"], meter["target_v"], meter["drive"])
    for key, exact in computed.items():
        assert meter[key] == pytest.approx(exact, rel=1e-5), key


@pytest.mark.parametrize("row", CHOICE, ids=lambda r: r["Meter"])
def test_resistor_table_follows_the_formulas(row: dict[str, str]) -> None:
    computed = _computed(_meter(row["Meter"]))
    for column, key in CHOICE_COLUMNS.items():
        (shown,) = printed(row[column])
        exact = computed[key] * UNIT_SCALE.get(key, 1.0)
        if key.endswith("code"):
            assert shown.value == exact, f"{row['Meter']} {column}: {row[column]} != {exact}"
        else:
            assert shown.matches(exact), f"{row['Meter']} {column}: {row[column]} vs {exact:.5g}"


@pytest.mark.parametrize("row", HEADROOM, ids=lambda r: r["Meter"])
def test_headroom_table_follows_the_formulas(row: dict[str, str]) -> None:
    full_scale_ma = _meter(row["Meter"])
    computed = _computed(full_scale_ma)
    assert row["Drive"] == _json_meter(full_scale_ma)["drive"]
    for column, key in HEADROOM_COLUMNS.items():
        (shown,) = printed(row[column])
        assert shown.matches(computed[key]), f"{row['Meter']} {column}: {row[column]}"
    current, percent = printed(row["Most current the circuit can push"])
    assert current.matches(computed["most_current_ma"] / 1000), row
    assert percent.matches(computed["most_current_pct"]), row


@pytest.mark.parametrize("meter", VALUES["meters"], ids=lambda m: f"{m['full_scale_ma']}mA")
def test_each_design_reaches_full_scale_and_protects_the_meter(meter: dict[str, Any]) -> None:
    computed = meter_values(meter["full_scale_ma"], meter["target_v"], meter["drive"])
    assert computed["headroom_v"] > 0.2  # the op-amp is not at its limit at full scale
    assert computed["full_scale_v"] < ASSUME["dac_top_v"] - 0.5  # room above full scale
    assert 100 < computed["most_current_pct"] < 120  # reachable, and never far past it
    assert computed["power_mw"] < 250 / 4  # a quarter of a 0.25 W resistor's rating


def test_pwm_filter_table_follows_the_formulas() -> None:
    rows = {row["Quantity"]: row["Value"] for row in table(("Quantity", "Value"))}
    parts = {
        "frequency_hz": printed(rows["PWM frequency"])[0].value,
        "clock_hz": 80e6,
        "r_f1_ohm": printed(rows["R_F1"])[0].value,
        "c_f1_f": printed(rows["C_F1"])[0].value,
        "r_f2_ohm": printed(rows["R_F2"])[0].value,
        "c_f2_f": printed(rows["C_F2"])[0].value,
    }
    for key, value in parts.items():
        assert VALUES["pwm_filter"][key] == pytest.approx(value), key
    computed = filter_values(parts)
    shown = {
        "duty_bits": rows["Duty resolution from the 80 MHz clock"],
        "stage_corner_hz": rows["Corner of each stage"],
        "corner_hz": rows["Corner of the two stages together (−3 dB)"],
        "ripple_mv_pp": rows["Ripple at 20 kHz, worst case (50 % duty)"],
        "settle_ms": rows["Settling to 1 % after a step"],
    }
    scale = {"ripple_mv_pp": 1e-3, "settle_ms": 1e-3}
    for key, cell in shown.items():
        exact = computed[key] * scale.get(key, 1.0)
        assert printed(cell)[0].matches(exact), f"{key}: {cell} vs {exact:.4g}"
        assert VALUES["pwm_filter"][key] == pytest.approx(computed[key], rel=1e-3), key
    # the ripple is far below what a needle can show, and the filter settles within a frame
    assert computed["ripple_mv_pp"] / 1000 < 1e-3 * 2.5
    assert computed["settle_ms"] < 20


def test_led_current_follows_ohms_law() -> None:
    found = re.search(
        r"R3 = (\d+) Ω gives \((\d+\.\d+) V − (\d+\.\d+) V\) / (\d+) Ω = (\d+\.\d+) mA", GUIDE
    )
    assert found, "the LED sentence is missing from docs/hardware.md"
    ohms, supply, forward, ohms_again, milliamps = found.groups()
    assert ohms == ohms_again
    exact = (float(supply) - float(forward)) / float(ohms) * 1000
    assert printed(f"{milliamps} mA")[0].matches(exact / 1000)
    led = VALUES["led"]
    assert (led["r_ohm"], led["supply_v"], led["forward_v"]) == (
        float(ohms),
        float(supply),
        float(forward),
    )
    assert led["current_ma"] == pytest.approx(exact, rel=1e-5)


def test_schematic_is_well_formed_svg_with_the_guides_values() -> None:
    root = ElementTree.parse(DOCS / "schematic.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for row in CHOICE:
        assert f"{row['R_SENSE (E96, 1 %)']} ({row['Meter']}" in text, row["Meter"]
    for part in ("R_F1 10 kΩ", "R_F2 100 kΩ", "100 nF", "10 nF", "R3 330 Ω", "100 kΩ"):
        assert part in text, part
    assert "](schematic.svg)" in GUIDE, "the guide shows the schematic"


# --- two to four meters ---------------------------------------------------------------------

NEEDLE_PINS = table(("Needle", "ESP32 output"))
CURRENTS = table(("Build", "Meter current"))
OPAMP_HALF_MA = 0.1  # MCP6002 quiescent current per amplifier, typical
STRAPPING_OR_INPUT_ONLY = {0, 2, 5, 12, 15, 34, 35, 36, 37, 38, 39}


def _firmware_chips() -> dict[str, Any]:
    """The firmware's per-chip pin table (hal/esp32.py), read without importing `machine`."""
    import ast

    source = (DOCS.parent / "firmware_micropython" / "hal" / "esp32.py").read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == [
            "CHIPS"
        ]:
            chips: dict[str, Any] = ast.literal_eval(node.value)
            return chips
    raise AssertionError("no CHIPS table in firmware_micropython/hal/esp32.py")


def test_needle_pins_match_the_firmware_and_the_simulator() -> None:
    from sysboy_tray.simulator.device import NEEDLE_OUTPUTS

    pins = [int(re.match(r"GPIO(\d+)", row["ESP32 output"]).group(1)) for row in NEEDLE_PINS]  # type: ignore[union-attr]
    kinds = ["dac" if "DAC" in row["ESP32 output"] else "pwm" for row in NEEDLE_PINS]
    assert [int(row["Needle"]) for row in NEEDLE_PINS] == [1, 2, 3, 4]
    assert tuple(pins[:2]) == _firmware_chips()["ESP32"][0]  # the DAC channels
    assert list(zip(kinds, pins, strict=True)) == [(k, p) for k, p in NEEDLE_OUTPUTS]
    assert not STRAPPING_OR_INPUT_ONLY & set(pins)
    assert len(set(pins)) == 4
    halves = {"A": "3 / 2 / 1", "B": "5 / 6 / 7"}  # MCP6002: + input / − input / output
    for row in NEEDLE_PINS:
        assert row["+ input / − input / output"] == halves[row["Op-amp half"][-1]], row
    assert "S3" in GUIDE and "GPIO4 and GPIO5 for needles 1 and 2" in GUIDE
    assert _firmware_chips()["ESP32S3"][0] == (4, 5) == _firmware_chips()["ESP32C3"][0]


@pytest.mark.parametrize("row", CURRENTS, ids=lambda r: r["Build"])
def test_current_table_adds_up(row: dict[str, str]) -> None:
    count, each = re.fullmatch(r"(\d) × (\d+) mA", row["Build"]).groups()  # type: ignore[union-attr]
    meters = int(count) * int(each) / 1000
    packages = (int(count) + 1) // 2  # two needles per MCP6002
    opamps = packages * 2 * OPAMP_HALF_MA / 1000
    (shown_meters,) = printed(row["Meter current"])
    shown_opamps = printed(row["Op-amps"])[-1]
    (total,) = printed(row["Total from 3V3"])
    assert shown_meters.matches(meters), row
    assert shown_opamps.matches(opamps), row
    assert total.matches(meters + opamps), row
    assert row["Op-amps"].startswith("U1, U2:" if packages == 2 else "U1:"), row
    assert meters + opamps < 0.1  # under a fifth of USB's 500 mA


def test_needles_schematic_is_well_formed_svg_with_the_guides_pins_and_values() -> None:
    root = ElementTree.parse(DOCS / "schematic_needles.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for row in NEEDLE_PINS:
        gpio = row["ESP32 output"].split()[0]
        assert gpio in text, gpio
        assert row["Op-amp half"] in text, row["Op-amp half"]
        assert row["Sense resistor"] in text, row["Sense resistor"]
    for row in CHOICE:  # the sense resistor for each meter, as the R_SENSE table gives it
        assert f"{row['R_SENSE (E96, 1 %)']} ({row['Meter']})" in text, row["Meter"]
    for part in ("R1 100 kΩ", "R4 100 kΩ", "R_PD3 100 kΩ", "R_F 10 kΩ", "R_F 100 kΩ"):
        assert part in text, part
    for part in ("C_F 100 nF", "C_F 10 nF", "MCP6002"):
        assert part in text, part
    assert "](schematic_needles.svg)" in GUIDE, "the guide shows the schematic"


# --- one meter: U1's pins, Q1's base resistor, the bulk capacitor, the boards ---------------


def test_u1_pin_table_wires_every_pin_and_the_unused_half() -> None:
    rows = {int(row["Pin"]): row for row in table(("Pin", "Name", "Wire it to"))}
    assert sorted(rows) == list(range(1, 9))
    names = {pin: row["Name"] for pin, row in rows.items()}
    # the MCP6002's pinout, the same halves the multi-needle table uses
    assert names == {
        1: "OUT A",
        2: "−IN A",
        3: "+IN A",
        4: "V−",
        5: "+IN B",
        6: "−IN B",
        7: "OUT B",
        8: "V+",
    }
    assert rows[3]["Wire it to"].startswith("GPIO25")
    assert rows[4]["Wire it to"] == "GND" and rows[8]["Wire it to"].startswith("3V3")
    # the unused half follows ground: + to GND, − to its own output
    assert rows[5]["Wire it to"].startswith("GND")
    assert rows[6]["Wire it to"].startswith("pin 7") and rows[7]["Wire it to"].startswith("pin 6")


def test_the_5_ma_meter_needs_q1_because_u1_alone_falls_short() -> None:
    found = re.search(
        r"5 mA meter aimed at (\d+\.\d+) V\s+would need (\d+\.\d+) V at full scale while U1, "
        r"sourcing 5 mA, reaches only (\d+\.\d+) V",
        GUIDE,
    )
    assert found, "the sentence on the 5 mA meter straight from U1 is missing"
    target, needed, reached = (float(x) for x in found.groups())
    straight = meter_values(5, target, "op-amp")
    assert printed(f"{needed} V")[0].matches(straight["opamp_output_v"])
    assert printed(f"{reached} V")[0].matches(straight["opamp_limit_v"])
    assert straight["headroom_v"] < 0, "if U1 reached it, Q1 would not be needed"
    assert _json_meter(5)["drive"] == "op-amp + Q1"
    assert f"R_B ({ASSUME['r_base_ohm'] / 1000:g} kΩ)" in GUIDE
    assert f"β = {ASSUME['beta_min']}" in GUIDE
    assert f"**{ASSUME['opamp_out_ohm']:g} Ω**" in GUIDE


def test_bulk_capacitor_table_follows_the_charge_it_gives() -> None:
    rows = {row["Quantity (3.3 V rail)"]: row["Value"] for row in table(("Quantity (3.3 V rail)",))}
    bulk = VALUES["bulk_capacitor"]
    (burst,) = printed(rows["Wi-Fi burst"])
    (lag,) = printed(rows["Time the regulator lags"])
    (board,) = printed(rows["Dip with the board's 10 µF alone"])
    (added,) = printed(rows["Dip with C3 added (110 µF)"])
    assert burst.matches(bulk["burst_a"]) and lag.matches(bulk["lag_us"] * 1e-6)
    charge = bulk["burst_a"] * bulk["lag_us"] * 1e-6
    board_f, total_f = bulk["board_uf"] * 1e-6, (bulk["board_uf"] + bulk["added_uf"]) * 1e-6
    assert board.matches(charge / board_f) and added.matches(charge / total_f)
    assert bulk["board_dip_v"] == pytest.approx(charge / board_f, rel=1e-5)
    assert bulk["dip_v"] == pytest.approx(charge / total_f, rel=1e-5)
    assert f"**C3, {bulk['added_uf']} µF**" in GUIDE
    assert ASSUME["vdd_v"] - charge / total_f > 3.0  # well above any brownout threshold


def test_the_board_table_gives_the_firmwares_own_pins() -> None:
    chips = _firmware_chips()
    rows = table(("Chip", "Output (needles 1, 2)"))
    assert [row["Chip"].replace("-", "") for row in rows] == list(chips)
    for row in rows:
        (outputs, button, led) = chips[row["Chip"].replace("-", "")]
        kind = "DAC" if outputs == (25, 26) or outputs == (17, 18) else "PWM"
        assert row["Output (needles 1, 2)"] == f"{kind}, GPIO{outputs[0]} and GPIO{outputs[1]}"
        assert row["BOOT button"] == f"GPIO{button}"
        assert row["Firmware's LED pin"] == f"GPIO{led}"
    boards = table(("Board", "Chip", "Its LED"))
    devkitc = [b for b in boards if b["Board"].startswith("ESP32-DevKitC")]
    assert devkitc and "none on GPIO2" in devkitc[0]["Its LED"]


def test_schematic_shows_the_base_resistor_the_bulk_capacitor_and_u1s_pins() -> None:
    root = ElementTree.parse(DOCS / "schematic.svg").getroot()
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for part in ("R_B 1 kΩ", "C3 100 µF", "pin 3", "pin 2", "pin 1", "pin 8", "pin 4"):
        assert part in text, part
    assert "5 mA and 10 mA" in text
