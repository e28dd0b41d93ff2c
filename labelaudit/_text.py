"""Escaping for the text labelaudit shows people: a name from the data shows, it never acts.

Class names, ids and paths come from the user's files and may hold any character. Printed raw, a
newline breaks a line (and can forge one) and an escape sequence drives the terminal.
"""

from __future__ import annotations

# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators, shown as the
# escapes Python would write for them, so `a\nb` reads as the four characters a, \, n, b.
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_CONTROLS = [*range(0x20), 0x7F, *range(0x80, 0xA0)]
_ESCAPES = {code: _SHORT.get(chr(code), f"\\x{code:02x}") for code in _CONTROLS} | {
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def printable(text: str) -> str:
    """`text` on one line: control characters and line separators written as visible escapes."""
    return text.translate(_ESCAPES)
