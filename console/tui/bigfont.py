"""Large type for wall screens: words drawn three rows high with box-drawing characters.

Only the letters the status words need (OK, DEGRADED, LAGGING, DOWN, CORRUPT, RECOVERING, FENCED,
UNKNOWN) plus digits and a few
signs; ``big_rows`` returns None for text it cannot draw, and the caller falls back to normal type.
"""

from __future__ import annotations

__all__ = ["big_rows", "big_width"]

_GLYPHS = {
    "A": ("┏━┓", "┣━┫", "╹ ╹"),
    "C": ("┏━╸", "┃  ", "┗━╸"),
    "F": ("┏━╸", "┣━ ", "╹  "),
    "I": ("╻", "┃", "╹"),
    "L": ("╻  ", "┃  ", "┗━╸"),
    "P": ("┏━┓", "┣━┛", "╹  "),
    "T": ("╺┳╸", " ┃ ", " ╹ "),
    "V": ("╻ ╻", "┃ ┃", "╰┳╯"),
    "S": ("┏━╸", "┗━┓", "╺━┛"),
    "D": ("┏━╮", "┃ ┃", "┗━╯"),
    "E": ("┏━╸", "┣━ ", "┗━╸"),
    "G": ("┏━╸", "┃╺┓", "┗━┛"),
    "K": ("╻ ╻", "┣┳┛", "╹┗╸"),
    "N": ("┏┓╻", "┃┗┫", "╹ ╹"),
    "O": ("┏━┓", "┃ ┃", "┗━┛"),
    "R": ("┏━┓", "┣┳┛", "╹┗╸"),
    "U": ("╻ ╻", "┃ ┃", "┗━┛"),
    "W": ("╻ ╻", "┃┃┃", "┗┻┛"),
    "0": ("┏━┓", "┃ ┃", "┗━┛"),
    "1": ("╺┓ ", " ┃ ", "╺┻╸"),
    "2": ("╺━┓", "┏━┛", "┗━╸"),
    "3": ("╺━┓", " ━┫", "╺━┛"),
    "4": ("╻ ╻", "┗━┫", "  ╹"),
    "5": ("┏━╸", "┗━┓", "╺━┛"),
    "6": ("┏━╸", "┣━┓", "┗━┛"),
    "7": ("╺━┓", "  ┃", "  ╹"),
    "8": ("┏━┓", "┣━┫", "┗━┛"),
    "9": ("┏━┓", "┗━┫", "╺━┛"),
    "%": ("╻ ╱", " ╱ ", "╱ ╹"),
    " ": ("   ", "   ", "   "),
    "?": ("╺━┓", " ┏┛", " ╹ "),
    ":": (" ", "╏", " "),
}


def big_width(text: str) -> int:
    return sum(len(_GLYPHS[char][0]) + 1 for char in text.upper() if char in _GLYPHS) - (1 if text else 0)


def big_rows(text: str) -> tuple[str, str, str] | None:
    """``text`` three rows high, glyphs one column apart; None if a character has no glyph."""
    text = text.upper()
    if not text or any(char not in _GLYPHS for char in text):
        return None
    rows = [" ".join(_GLYPHS[char][row] for char in text) for row in range(3)]
    return rows[0], rows[1], rows[2]
