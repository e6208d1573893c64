"""Key-range helpers shared by the backends."""

from __future__ import annotations


def prefix_end(prefix: str) -> str | None:
    """The first key after every key that starts with ``prefix`` (None: no upper bound).

    Same rule as etcd's ``WithPrefix``: increment the last character that can be incremented.
    Keys are compared by their UTF-8 bytes, so ASCII keys order the same as strings.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars[-1])
        if last < 0x10FFFF:
            chars[-1] = chr(last + 1)
            return "".join(chars)
        chars.pop()
    return None
