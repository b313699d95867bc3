"""Helpers that lay out one line of a widget: markup with escaped values, left and right parts."""

from __future__ import annotations

from textual.content import Content

__all__ = ["line", "spread"]


def line(markup: str, **values: object) -> Content:
    """``markup`` with ``$name`` placeholders filled by ``values`` (escaped, never parsed as markup)."""
    return Content.from_markup(markup, **values)


def spread(left: Content, right: Content | str, width: int) -> Content:
    """``left`` then ``right`` flush with the right edge of ``width`` cells; ``right`` goes first if short of room."""
    if isinstance(right, str):
        right = Content(right)
    if not right.cell_length:
        return left.truncate(width, ellipsis=True)
    room = width - right.cell_length - 1
    if room < 8:
        return left.truncate(width, ellipsis=True)
    left = left.truncate(room, ellipsis=True)
    return left + Content(" " * (width - left.cell_length - right.cell_length)) + right
