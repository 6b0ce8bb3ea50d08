"""Run the firmware tests on MicroPython or CPython: `run.py [module[.test] ...]`.

Imports every `test_*.py` beside this file (or the ones named), calls each `test_*`
function (coroutines run under asyncio), and ends with `N passed, M failed`.
"""

import gc
import os
import sys

HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
FIRMWARE = HERE + "/.."
for folder in (HERE, FIRMWARE):
    if folder not in sys.path:
        sys.path.insert(0, folder)


def _print_failure(name, exc):
    print("FAIL " + name)
    if hasattr(sys, "print_exception"):
        sys.print_exception(exc)
    else:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__)


def _call(func):
    result = func()
    if hasattr(result, "send"):  # a coroutine: async test
        import asyncio

        asyncio.run(result)


def _modules(selected):
    names = sorted(n[:-3] for n in os.listdir(HERE) if n.startswith("test_") and n.endswith(".py"))
    if not selected:
        return [(name, None) for name in names]
    wanted = []
    for item in selected:
        module, _, test = item.partition(".")
        if module not in names:
            raise SystemExit("no test module " + module)
        wanted.append((module, test or None))
    return wanted


def main(argv):
    passed = failed = skipped = 0
    for module_name, only in _modules(argv):
        try:
            module = __import__(module_name)
        except Exception as exc:
            _print_failure(module_name + " (import)", exc)
            failed += 1
            continue
        tests = sorted(n for n in dir(module) if n.startswith("test_"))
        if only is not None:
            tests = [n for n in tests if n == only]
        for test in tests:
            name = module_name + "." + test
            try:
                _call(getattr(module, test))
            except Exception as exc:
                if type(exc).__name__ == "SkipTest":
                    print("skip " + name + ": " + str(exc))
                    skipped += 1
                else:
                    _print_failure(name, exc)
                    failed += 1
            else:
                print("ok   " + name)
                passed += 1
            gc.collect()
    if skipped:
        print(f"{skipped} skipped")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
