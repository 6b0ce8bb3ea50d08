"""The ESP32 port's `esp32.idf_heap_info`: (total, free, largest block, min free) per region."""

HEAP_DATA = 4
regions = []
asked = []


def idf_heap_info(capabilities):
    asked.append(capabilities)
    return list(regions)
