"""Who an audit entry names when the account has no passwd entry, and the run ids."""

from __future__ import annotations

import os
import pwd
import re

import pytest

from playbooks.state import current_actor, new_run_id

_LOGIN_VARS = ("LOGNAME", "USER", "LNAME", "USERNAME")


def test_a_uid_without_a_passwd_entry_is_named_by_number(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _LOGIN_VARS:
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid: int) -> pwd.struct_passwd:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    assert current_actor().user == f"uid:{os.getuid()}"


def test_run_ids_sort_by_time_and_differ() -> None:
    ids = [new_run_id() for _ in range(200)]
    assert all(re.fullmatch(r"\d{8}-\d{6}-\d{3}-[0-9a-f]{4}", run_id) for run_id in ids)
    stamps = [run_id[:19] for run_id in ids]  # UTC to the millisecond: ids made later sort later
    assert stamps == sorted(stamps)
    assert len(set(ids)) > 190  # 16 random bits per millisecond
