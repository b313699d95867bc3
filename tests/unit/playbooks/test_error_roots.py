"""One root for every error drconsole reports; the engines' failures apart from bad playbooks and bad config."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.config import ConfigError
from engines.errors import DrconsoleError, EngineError, InvalidArgumentError, SafetyRefusal
from playbooks.errors import (
    ConfirmationRequired,
    NotApplicableError,
    ParameterError,
    PlaybookError,
    PlaybookFileError,
    PlaybookNotAvailableError,
    ReadOnlyRefusal,
    UnknownPlaybookError,
)


@pytest.mark.parametrize(
    "error,code",
    [
        (PlaybookFileError("a.toml", 3, "steps[0].action", "unknown action"), 2),
        (UnknownPlaybookError("no playbook 'x'"), 2),
        (PlaybookNotAvailableError("pending"), 2),
        (ParameterError("--param n: not a number"), 2),
        (NotApplicableError("not for lsm"), 2),
        (ConfirmationRequired("not confirmed"), 4),
        (ReadOnlyRefusal("read-only"), 4),
        (ConfigError("bad", path=Path("c.toml"), line=2, field="node[0].url"), 2),
    ],
)
def test_playbook_and_config_errors_keep_their_exit_codes_outside_the_engines(error: DrconsoleError, code: int) -> None:
    assert isinstance(error, DrconsoleError) and error.exit_code == code
    assert not isinstance(error, EngineError)
    assert not isinstance(error, (InvalidArgumentError, SafetyRefusal))
    assert isinstance(error, PlaybookError) != isinstance(error, ConfigError)
    assert error.message and str(error).startswith(error.message)


def test_engine_errors_sit_under_the_same_root() -> None:
    assert issubclass(EngineError, DrconsoleError) and not issubclass(PlaybookError, EngineError)
    assert InvalidArgumentError("x").exit_code == 2 and SafetyRefusal("x").exit_code == 4
