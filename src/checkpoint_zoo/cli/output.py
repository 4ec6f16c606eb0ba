"""What every command prints through: the one sanitising print, sizes, CSV cells and plain tables."""

from __future__ import annotations

from collections.abc import Sequence

from ..utils.redact import printable, redact_urls


def echo(*parts: object, file=None, end: str = "\n") -> None:
    """print(), through the one sanitiser: nothing from input reaches the terminal as a control sequence, and
    no URL password (a remote's hand-written config, an error quoting it) is shown."""
    print(*(printable(redact_urls(str(p))) for p in parts), file=file, end=end)


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def csv_safe(value: object) -> str:
    """Neutralise spreadsheet formulas: a leading = + - @ gets a quote (numbers stay as they are)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@"):
        try:
            float(text)
            return text
        except ValueError:
            return "'" + text
    return text


def print_table(headers: Sequence[str], rows: list[list[str]]) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip())
    for r in rows:
        echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
