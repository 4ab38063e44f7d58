"""DynamoDB's size rules for items in its wire form (typed values such as {"S": "..."}), which its read and write
units are charged by ([item sizes](https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)):
attribute names plus values; strings by UTF-8 bytes; numbers 1 byte per two significant digits plus 1; a map or
list 3 bytes plus its elements plus 1 byte per element; a string set the sum of its strings.

Used by the history cost benchmark (write units, storage) and by the query API (the read units a page costs,
docs/web-site.md "The read budget"). Standard library only: it ships in the query Lambda's package.
"""

from __future__ import annotations

import math
from typing import Any

READ_UNIT_BYTES = 4096  # a read unit covers 4 KB of items read (strongly consistent; eventually: half a unit)


def number_size(text: str) -> int:
    """Bytes of a DynamoDB number: 1 per two significant digits (leading/trailing zeros trimmed), plus 1."""
    mantissa = text.lstrip("+-").lower().split("e")[0].replace(".", "")
    digits = len(mantissa.strip("0")) or 1
    return math.ceil(digits / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    """Bytes of one typed attribute value (without its name)."""
    ((kind, content),) = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        return number_size(content)
    if kind == "SS":
        return sum(len(s.encode()) for s in content)
    if kind == "NS":
        return sum(number_size(n) for n in content)
    if kind == "M":
        return 3 + sum(len(name.encode()) + value_size(v) + 1 for name, v in content.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in content)
    if kind in ("BOOL", "NULL"):
        return 1
    raise ValueError(f"no size rule for DynamoDB type {kind!r}")


def item_size(item: dict[str, Any]) -> int:
    """Bytes of an item: attribute names plus values."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def read_units(items_bytes: int) -> float:
    """Read units of an eventually consistent `Query` or `GetItem` that read `items_bytes` of items: half a unit
    per started 4 KB of their total size, at least half a unit (a read that finds nothing costs that too)."""
    return max(1, math.ceil(items_bytes / READ_UNIT_BYTES)) * 0.5
