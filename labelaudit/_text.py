"""Text for people: escaping (a name from the data shows, it never acts) and counted nouns.

Class names, ids and paths come from the user's files and may hold any character. Printed raw, a
newline breaks a line (and can forge one), an escape sequence drives the terminal, and on GitHub
Actions a line that starts with `::` (or holds `##[`) is read by the runner as a workflow command.
"""

from __future__ import annotations

# Control characters (C0, DEL, C1), the Unicode line and paragraph separators, and the
# bidirectional controls (which can make a name display as another, the "Trojan Source" trick),
# shown as the escapes Python would write for them, so `a\nb` reads as a, \, n, b.
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_CONTROLS = [*range(0x20), 0x7F, *range(0x80, 0xA0)]
_UNICODE_CONTROLS = [0x2028, 0x2029, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ESCAPES = {code: _SHORT.get(chr(code), f"\\x{code:02x}") for code in _CONTROLS} | {
    code: f"\\u{code:04x}" for code in _UNICODE_CONTROLS
}


def printable(text: str) -> str:
    """`text` on one line: control characters and line separators written as visible escapes."""
    return text.translate(_ESCAPES)


def human_line(text: str) -> str:
    """One line for a person's terminal or a CI log: `printable`, and no GitHub Actions workflow
    command in it (a `::` that would start the line gets a backslash before it; `##[`, which the
    runner's legacy parser reads anywhere in a line, becomes `##[\\`, as the runner itself does)."""
    line = printable(text).replace("##[", "##[\\")
    body = line.lstrip()  # the runner trims leading whitespace before looking for `::`
    if body.startswith("::"):
        line = line[: len(line) - len(body)] + "\\" + body
    return line


def human_lines(lines: list[str]) -> str:
    """A text renderer's lines, each escaped with `human_line`, joined, ending in a newline."""
    return "\n".join(human_line(line) for line in lines) + "\n"


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


def agree(n: int, singular: str, plural: str) -> str:
    """The verb (or pronoun) form that agrees with a count: agree(1, "has", "have") == "has"."""
    return singular if n == 1 else plural


def fewer_than(n_classes: int, min_support: int) -> str:
    """'4,864 classes have fewer than 10 samples': the rare classes, those with at least one
    sample but fewer than the minimum support (classes with none are counted apart), in the
    words of the scan's `rare_classes` finding, for every format that counts them."""
    return (
        f"{count(n_classes, 'class')} {agree(n_classes, 'has', 'have')} fewer than "
        f"{count(min_support, 'sample')}"
    )


def pair_arrow(kind: str) -> str:
    """The arrow between an anomalous class pair's classes: `->` when one direction dominates
    (kind "asymmetric"), `<->` when both ways are counted (kind "symmetric")."""
    return "->" if kind == "asymmetric" else "<->"


def rare_and_empty(n_rare: int, n_empty: int, min_support: int) -> str:
    """What the support chart colours red, as one phrase with no "0 classes" clause: the rare
    classes in `fewer_than`'s words, the empty ones apart ('9 classes have no sample'), both
    joined ('2 classes have fewer than 10 samples and 1 has no sample'), or '' when neither."""
    empty = f"{agree(n_empty, 'has', 'have')} no sample"
    if n_rare and n_empty:
        return f"{fewer_than(n_rare, min_support)} and {n_empty:,} {empty}"
    if n_rare:
        return fewer_than(n_rare, min_support)
    return f"{count(n_empty, 'class')} {empty}" if n_empty else ""


def seen_once(n_pairs: int) -> str:
    """'4,912 pairs seen once': the confused pairs left out of a list because a pair counted
    once is no evidence of a confusion (one sample, not a pattern)."""
    return f"{count(n_pairs, 'pair')} seen once"
