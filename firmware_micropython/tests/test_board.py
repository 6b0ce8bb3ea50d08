"""The ESP32 HAL on each chip, against faithful stand-ins for `machine`, `network`, `esp32`:
the right output pins, a missing pin falling back to the chip's own default, the heap
really free, the reset cause in words, and no watchdog while a deploy is under way."""

import sys

import config
import fake_esp32
import fake_machine
import fake_network
import fake_time
import supervisor
from support import MICROPYTHON, SkipTest, raises


class FakeOS:
    """The board's identity (os.uname) and its flash (os.stat), as the chip's port gives them."""

    def __init__(self, chip, files=()):
        self.chip = chip
        self.files = files

    def uname(self):
        class Name:
            machine = "Generic %s module with %s" % (self.chip, self.chip)

        return Name()

    def stat(self, path):
        if path not in self.files:
            raise OSError(2)
        return (0,) * 10


def board_hal(chip, files=(), reset_cause=1):
    """hal.esp32, freshly imported, on `chip`."""
    fake_machine.use(chip, reset_cause)
    fakes = [("machine", fake_machine), ("network", fake_network), ("esp32", fake_esp32)]
    if not MICROPYTHON:
        fakes.append(("time", fake_time))  # CPython's time has no ticks_ms
    saved = {}
    for name, fake in fakes:
        saved[name] = sys.modules.get(name)
        sys.modules[name] = fake
    sys.modules.pop("hal.esp32", None)
    try:
        import hal.esp32 as board
    finally:
        sys.modules.pop("hal.esp32", None)
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    board.os = FakeOS(chip, files)
    return board


def test_each_chip_drives_its_own_output():
    for chip, kind, first, second in (
        ("ESP32", "dac", 25, 26),
        ("ESP32S2", "dac", 17, 18),
        ("ESP32S3", "pwm", 4, 5),
        ("ESP32C3", "pwm", 4, 5),
        ("ESP32C6", "pwm", 4, 5),
    ):
        board = board_hal(chip)
        assert board.chip() == chip
        assert board.output_kind() == kind, chip
        assert board.output_pins() == (first, second), chip
        out = board.Output()
        driven = out._dac if kind == "dac" else out._pwm
        assert driven.pin.number == first, chip
        assert board.Output(second)
        out.write(1.0)
        assert (driven.level if kind == "dac" else driven.duty) in (255, 65535)


def needles_on(board, settings):
    """The needles from `settings`, built on `board`'s outputs (swapped in for the test)."""
    import hal

    real = hal.Output
    hal.Output = board.Output
    try:
        return supervisor._needles(settings)
    finally:
        hal.Output = real


def test_a_pin_the_chip_lacks_falls_back_to_that_chips_default():
    # GPIO25 was the default everywhere; the S2 has no GPIO25 and the C3 none either
    for chip, expected in (("ESP32S2", 17), ("ESP32C3", 4), ("ESP32S3", 4)):
        board = board_hal(chip)
        with raises(ValueError):
            board.Output(25)
        (needle,) = needles_on(board, [config.needle(25)])
        out = needle.output
        driven = out._dac if chip == "ESP32S2" else out._pwm
        assert driven.pin.number == expected, chip
    # on a DAC chip, a pin without a DAC is refused too, and the DAC pin taken instead
    (needle,) = needles_on(board_hal("ESP32"), [config.needle(4)])
    assert needle.output._dac.pin.number == 25
    # needle 2 left to the chip takes its second DAC
    assert board_hal("ESP32S2").Output(None, "dac", 2)._dac.pin.number == 18


def test_the_button_and_led_default_to_the_chips_own_pins():
    for chip, button in (("ESP32", 0), ("ESP32S2", 0), ("ESP32S3", 0), ("ESP32C3", 9)):
        board = board_hal(chip)
        assert board.Button()._pin.number == button, chip
        assert board.Button()._pin.mode == fake_machine.Pin.IN
        board.Led()  # exists on every chip
    board = board_hal("ESP32C3")
    assert supervisor._hardware(board.Button, 40)._pin.number == 9  # C3 has no GPIO40


def test_the_heap_figure_leaves_out_the_room_the_heap_could_grow_into():
    board = board_hal("ESP32")
    # gc.mem_free() on the port = heap free + the largest free ESP-IDF block
    regions = [(7288, 0, 0, 0), (79912, 35712, 35512, 35108), (15072, 15036, 15036, 15036)]
    assert board.heap_free(50000, regions) == 50000 - 35512
    assert board.heap_free(1000, regions) == 0
    assert board.heap_free(1000, []) == 1000
    if not MICROPYTHON:
        raise SkipTest("gc.mem_free is MicroPython's")
    fake_esp32.regions[:] = [(1 << 30, 1 << 30, 1 << 30, 1 << 30)]
    del fake_esp32.asked[:]
    assert board.mem_free() == 0  # all of the port's figure was growth room
    assert fake_esp32.asked == [0x1000]  # MALLOC_CAP_DEFAULT: the heap MicroPython grows into
    fake_esp32.regions[:] = []
    import gc

    assert 0 < board.mem_free() <= gc.mem_free() + 4096


def test_the_reset_cause_in_words():
    assert board_hal("ESP32", reset_cause=fake_machine.WDT_RESET).reset_cause() == "watchdog"
    assert board_hal("ESP32", reset_cause=fake_machine.PWRON_RESET).reset_cause() == "power on"
    assert board_hal("ESP32", reset_cause=9).reset_cause() == "cause 9"


def test_no_watchdog_while_the_deploy_flag_is_there():
    board = board_hal("ESP32", files=("/nowatchdog",))
    dog = board.watchdog(20000)
    dog.feed()
    assert fake_machine.watchdogs == []
    board = board_hal("ESP32")
    board.watchdog(20000)
    assert [w.timeout for w in fake_machine.watchdogs] == [20000]
