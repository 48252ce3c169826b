"""Text an agent can read exactly: a completion made only of whitespace named and drawn instead of shown blank,
and long text clipped with a mark that says so."""

from __future__ import annotations

_WHITESPACE_NAMES = ((" ", "space"), ("\n", "newline"), ("\t", "tab"))
_WHITESPACE_MARKS = {" ": "␠", "\n": "⏎", "\t": "⇥", "\r": "␍"}
_DRAWN = 80


def visible_whitespace(text: str) -> str:
    """A completion an agent can read: empty or whitespace-only text named and drawn (`␠` space, `⏎` newline,
    `⇥` tab); any other text as it is."""
    if text.strip():
        return text
    if not text:
        return "(empty)"
    counts = [(text.count(char), name) for char, name in _WHITESPACE_NAMES]
    other = len(text) - sum(count for count, _ in counts)
    named = [f"{count} {name}{'s' if count > 1 else ''}" for count, name in counts if count]
    named += [f"{other} other whitespace"] if other else []
    drawn = "".join(_WHITESPACE_MARKS.get(char, "·") for char in text[:_DRAWN]) + ("…" if len(text) > _DRAWN else "")
    return f"(whitespace only: {', '.join(named)}) {drawn}"


def clip(text: str, limit: int, *, count: bool = False) -> str:
    """`text` cut to `limit` characters with `…` (and its full length when `count`); short text as it is."""
    if len(text) <= limit:
        return text
    return text[:limit] + (f"… ({len(text)} chars)" if count else "…")


def one_line(text: str, limit: int) -> str:
    """`text` with its whitespace runs folded to single spaces, at most `limit` characters (`…` when cut)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def visible_controls(text: str) -> str:
    """`visible_whitespace`, and control characters (other than newline and tab) drawn as their control pictures
    (`\\x1b` as `␛`), so a page shows every character a completion holds."""
    shown = visible_whitespace(text)
    return "".join(
        chr(0x2400 + ord(c)) if ord(c) < 0x20 and c not in "\n\t" else "␡" if c == "\x7f" else c for c in shown
    )
