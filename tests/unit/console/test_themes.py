"""Themes: the four bundled ones, a user's file, and clear errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.tui.themes import BUNDLED_THEMES, ThemeError, load_theme, themes_dir


@pytest.mark.parametrize("name", BUNDLED_THEMES)
def test_bundled_themes_load_with_the_four_status_colours(name: str) -> None:
    loaded = load_theme(name)
    assert loaded.path == themes_dir() / f"{name}.toml"
    assert set(loaded.theme.variables) == {"status-ok", "status-warn", "status-crit", "status-unknown"}
    assert len(set(loaded.theme.variables.values())) == 4  # four distinct colours


def test_the_wall_theme_brings_its_stylesheet() -> None:
    assert load_theme("wall").tcss == themes_dir() / "wall.tcss"
    assert load_theme("dark").tcss is None


def test_a_users_copy_loads_from_a_path(tmp_path: Path) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text((themes_dir() / "light.toml").read_text().replace('name = "drconsole-light"', 'name = "mine"'))
    assert load_theme(str(mine)).theme.name == "mine"


def test_an_unknown_name_lists_the_bundled_themes() -> None:
    with pytest.raises(ThemeError, match="use one of dark, light, wall, colorblind") as caught:
        load_theme("neon")
    assert caught.value.exit_code == 2


def test_a_bad_colour_names_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[colors]\nprimary = "#123"\n[status]\nok = "greenish"\n')
    with pytest.raises(ThemeError) as caught:
        load_theme(str(bad))
    assert caught.value.line == 5 and caught.value.field == "status.ok"
    assert "not a colour" in caught.value.message


def test_a_missing_stylesheet_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\ntcss = "absent.tcss"\n[colors]\nprimary = "#123456"\n')
    with pytest.raises(ThemeError, match="absent.tcss does not exist"):
        load_theme(str(bad))
