"""Helpers that lay out one line of a widget: markup with escaped values, left and right parts."""

from __future__ import annotations

from functools import lru_cache

from textual.content import Content

__all__ = ["changed_lines", "line", "spread"]


@lru_cache(maxsize=4096)
def _parsed(markup: str, values: tuple[tuple[str, str], ...]) -> Content:
    return Content.from_markup(markup, **dict(values))


def line(markup: str, **values: object) -> Content:
    """``markup`` with ``$name`` placeholders filled by ``values`` (escaped, never parsed as markup).

    Cached: most lines of most cards are the same from one tick to the next, and parsing markup is
    the largest part of what a tick costs. Content is immutable, so sharing it is safe.
    """
    return _parsed(markup, tuple((key, str(value)) for key, value in values.items()))


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


def changed_lines(old: list[Content], new: list[Content]) -> list[int] | None:
    """The indexes of the lines that differ between ``old`` and ``new``; None: redraw everything."""
    if not old or len(old) != len(new):
        return None
    return [index for index, (before, after) in enumerate(zip(old, new, strict=True)) if before != after]
