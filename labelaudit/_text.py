"""Small text helpers shared by messages and reports: counts with the right plural."""

from __future__ import annotations


def plural(noun: str, n: int) -> str:
    """`noun` in the plural when `n` is not 1 (class -> classes, row -> rows)."""
    if n == 1:
        return noun
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def count(n: int, noun: str) -> str:
    """'1 class', '2 classes', '1,234 rows': a number and its noun, in agreement."""
    return f"{n:,} {plural(noun, n)}"
