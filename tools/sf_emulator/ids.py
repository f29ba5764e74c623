"""Salesforce record ids: 15 case-sensitive characters plus a 3-character case-safe suffix."""

from __future__ import annotations

import itertools
import threading

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_POD = "8d"  # instance/pod characters 4-5 of every id
_RESERVED = "0"


def case_safe_suffix(id15: str) -> str:
    """The 3 characters Salesforce appends to make a 15-character id case-insensitively unique.

    Each 5-character chunk gives one character: bit i is set when character i is an
    upper-case letter, and the 5-bit number indexes ``A..Z0..5``.
    """
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX[bits])
    return "".join(out)


def to18(record_id: str) -> str:
    """An 18-character id from a 15- or 18-character one (ValueError on anything else)."""
    if len(record_id) == 18 and case_safe_suffix(record_id[:15]) == record_id[15:]:
        return record_id
    if len(record_id) == 15 and all(c in _ALPHABET for c in record_id):
        return record_id + case_safe_suffix(record_id)
    raise ValueError(f"not a Salesforce id: {record_id!r}")


def is_valid_id(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        to18(value)
    except ValueError:
        return False
    return True


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


class IdFactory:
    """Hands out ids per key prefix, in increasing order (so Id order is creation order)."""

    def __init__(self, start: int = 1) -> None:
        self._counters: dict[str, itertools.count[int]] = {}
        self._start = start
        self._lock = threading.Lock()

    def next(self, key_prefix: str) -> str:
        with self._lock:
            counter = self._counters.setdefault(key_prefix, itertools.count(self._start))
            number = next(counter)
        id15 = key_prefix + _POD + _RESERVED + _base62(number, 9)
        return id15 + case_safe_suffix(id15)

    def state(self) -> dict[str, int]:
        """Next number per prefix, for persisting (peeks without consuming)."""
        with self._lock:
            out = {}
            for prefix, counter in self._counters.items():
                value = next(counter)
                out[prefix] = value
                self._counters[prefix] = itertools.count(value)
            return out

    def restore(self, state: dict[str, int]) -> None:
        with self._lock:
            self._counters = {p: itertools.count(n) for p, n in state.items()}
