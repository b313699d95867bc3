"""Theme files: a palette (TOML) and optional .tcss overrides, bundled in ``themes/`` or the user's own.

    name = "dark"
    dark = true
    tcss = "dark.tcss"            # optional, relative to the theme file
    [colors]                      # Textual's theme colours; primary is required
    primary = "#4C9AFF"
    background = "#101317"
    [status]                      # the four states; always drawn with a symbol and a word too
    ok = "#3FB950"
    warn = "#D29922"
    crit = "#F85149"
    unknown = "#8B949E"

``--theme NAME`` picks a bundled theme (dark, light, wall, colorblind); anything else is read as
a path to a theme file. The status colours become the CSS variables ``$status-ok``,
``$status-warn``, ``$status-crit`` and ``$status-unknown``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from textual.color import Color, ColorParseError
from textual.theme import Theme

from playbooks.toml_locate import locate

__all__ = ["BUNDLED_THEMES", "LoadedTheme", "STATUS_DEFAULTS", "ThemeError", "load_theme", "themes_dir"]

BUNDLED_THEMES = ("dark", "light", "wall", "colorblind")
STATUS_DEFAULTS = {
    "status-ok": "#3FB950",
    "status-warn": "#D29922",
    "status-crit": "#F85149",
    "status-unknown": "#8B949E",
}


class ThemeError(ValueError):
    """A theme that cannot be used: exit code 2, like any bad input; ``path``, ``line``, ``field`` say where.

    Not an engines error: loading a theme must not import the engines (first paint waits for it).
    """

    exit_code = 2

    def __init__(
        self, message: str, *, path: Path, line: int | None, field: str | None, hint: str | None = None
    ) -> None:
        where = f"{path}:{line}" if line else str(path)
        self.message = f"{where}: {field}: {message}" if field else f"{where}: {message}"
        self.hint = hint or "fix the theme file, or pick one of " + ", ".join(BUNDLED_THEMES)
        super().__init__(self.message)
        self.path, self.line, self.field = path, line, field

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})"


def themes_dir() -> Path:
    import themes

    return Path(themes.__file__).parent


def _color(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        Color.parse(value)
    except ColorParseError as exc:
        raise ValueError(f"{value!r} is not a colour (use #RRGGBB or a CSS colour name)") from exc
    return value


class ThemeColors(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    primary: str
    secondary: str | None = None
    accent: str | None = None
    foreground: str | None = None
    background: str | None = None
    surface: str | None = None
    panel: str | None = None
    boost: str | None = None
    warning: str | None = None
    error: str | None = None
    success: str | None = None

    _check = field_validator("*")(classmethod(lambda cls, value: _color(value)))


class StatusColors(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ok: str = STATUS_DEFAULTS["status-ok"]
    warn: str = STATUS_DEFAULTS["status-warn"]
    crit: str = STATUS_DEFAULTS["status-crit"]
    unknown: str = STATUS_DEFAULTS["status-unknown"]

    _check = field_validator("*")(classmethod(lambda cls, value: _color(value)))


class ThemeFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    dark: bool = True
    tcss: str | None = None
    colors: ThemeColors
    status: StatusColors = StatusColors()


@dataclass(frozen=True)
class LoadedTheme:
    theme: Theme
    tcss: Path | None
    path: Path
    description: str


def _resolve(name_or_path: str) -> Path:
    if name_or_path in BUNDLED_THEMES:
        return themes_dir() / f"{name_or_path}.toml"
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    raise ThemeError(
        f"no theme named {name_or_path!r} and no such file",
        path=Path(name_or_path),
        line=None,
        field=None,
        hint=f"use one of {', '.join(BUNDLED_THEMES)}, or a path to a theme .toml file",
    )


def load_theme(name_or_path: str) -> LoadedTheme:
    """The theme called ``name_or_path`` (bundled) or stored there (a file); ``ThemeError`` if unusable."""
    path = _resolve(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ThemeError(f"cannot be read: {exc}", path=path, line=None, field=None) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ThemeError(f"not valid TOML: {exc}", path=path, line=None, field=None) from exc
    try:
        spec = ThemeFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        field = ".".join(str(part) for part in loc) or "(file)"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field (a typo?)"
        raise ThemeError(message, path=path, line=locate(text, loc) or 1, field=field) from exc
    tcss = None
    if spec.tcss is not None:
        tcss = (path.parent / spec.tcss).resolve()
        if not tcss.is_file():
            raise ThemeError(f"stylesheet {tcss} does not exist", path=path, line=locate(text, ("tcss",)), field="tcss")
    colors = spec.colors.model_dump(exclude_none=True)
    variables = {
        "status-ok": spec.status.ok,
        "status-warn": spec.status.warn,
        "status-crit": spec.status.crit,
        "status-unknown": spec.status.unknown,
    }
    theme = Theme(name=spec.name, dark=spec.dark, variables=variables, **colors)
    return LoadedTheme(theme=theme, tcss=tcss, path=path, description=spec.description)
