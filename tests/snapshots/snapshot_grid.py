"""The snapshot grid: every theme at every size, a chosen few in the fast suite, the rest ``slow``."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

THEMES = ["dark", "light", "wall", "colorblind"]
SIZES = [(80, 24), (120, 40), (200, 60)]
EVERY_THEME_TWO_SIZES = [f"{theme}-{size}" for theme in THEMES for size in ("80x24", "120x40")]


def size_id(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def grid(fast: Iterable[str]) -> list[object]:
    """(theme, size) for every theme and size; those not named in ``fast`` ("dark-80x24") are slow."""
    kept = set(fast)
    return [
        pytest.param(
            theme,
            size,
            id=f"{theme}-{size_id(size)}",
            marks=() if f"{theme}-{size_id(size)}" in kept else pytest.mark.slow,
        )
        for size in SIZES
        for theme in THEMES
    ]
