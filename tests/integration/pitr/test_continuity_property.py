"""Property: no mix of CLI commands, node runs (kill -9 included) and embedded opens leaves a WAL gap.

Hypothesis draws a sequence of steps (``continuity_model``) on one data dir of each engine. After
the sequence, ``backup verify`` must find every LSN from the first full backup on, and a
point-in-time recovery to a random step boundary (by LSN or by a quiet moment in wall time) must
give exactly the state the test wrote up to there. A few examples run in ``make test``; many more
under ``@pytest.mark.slow``.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from integration.pitr.continuity_model import (
    Model,
    describe,
    embedded,
    embedded_killed,
    node_run,
    writes_for,
)
from support import available_backends

from engines import create_engine, open_engine
from engines.backup import iso_utc

SEGMENT = 64 * 1024


def _cli(*args: str | Path) -> tuple[int, str]:
    """``drconsole ARGS`` in this process (output captured here, not by pytest)."""
    import contextlib
    import io

    from console.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(arg) for arg in args])
    return code, out.getvalue() + err.getvalue()


STEP = st.one_of(
    st.tuples(st.just("cli-import"), st.integers(1, 400)),
    st.tuples(st.just("cli-put"), st.integers(0, 10**6)),
    st.tuples(st.just("cli-delete"), st.integers(0, 10**6)),
    st.tuples(st.just("backup-full")),
    st.tuples(st.just("backup-incremental")),
    st.tuples(st.just("embedded"), st.integers(1, 600), st.booleans()),
    st.tuples(st.just("embedded-kill-9"), st.integers(1, 300)),
    st.tuples(st.just("node"), st.integers(1, 40), st.booleans(), st.sampled_from([0.0, 0.3, 1.6])),
)


def _run_step(
    step: tuple[Any, ...], index: int, data: Path, repo: Path, work: Path, model: Model, rng: random.Random
) -> None:
    kind = step[0]
    tag = f"s{index}"
    if kind == "cli-import":
        writes = [(key, value if value is not None else "gone") for key, value in writes_for(rng, step[1], tag)]
        source = work / f"{tag}.jsonl"
        source.write_text("".join(json.dumps({"key": key, "value": value}) + "\n" for key, value in writes))
        code, output = _cli("engine", "import", "--data-dir", data, "--input", source)
        assert code == 0, output
        model.apply(writes)  # type: ignore[arg-type]
    elif kind == "cli-put":
        key, value = f"k{step[1] % 60:03d}", f"{tag}-cli"
        code, output = _cli("engine", "put", "--data-dir", data, key, value)
        assert code == 0, output
        model.apply([(key, value)])
    elif kind == "cli-delete":
        key = f"k{step[1] % 60:03d}"
        code, output = _cli("engine", "delete", "--data-dir", data, key)
        assert code in (0, 1), output  # 1: the key was not there (the delete is still logged or not)
        model.apply([(key, None)])
    elif kind == "backup-full":
        code, output = _cli("backup", "create", "--data-dir", data, "--repo", repo, "--json")
        assert code == 0, output
        if model.base_lsn is None:
            model.base_lsn = json.loads(output.splitlines()[0])["lsn_end"]
    elif kind == "backup-incremental":
        code, output = _cli("backup", "create", "--data-dir", data, "--repo", repo, "--incremental")
        assert code == 0, output
    elif kind == "embedded":
        writes = writes_for(rng, step[1], tag)
        embedded(data, writes, flush=step[2])
        model.apply(writes)
    elif kind == "embedded-kill-9":
        writes = writes_for(rng, step[1], tag)
        embedded_killed(data, writes)
        model.apply(writes)
    elif kind == "node":
        writes = writes_for(rng, step[1], tag)
        node_run(data, writes, kill=step[2], linger=step[3])
        model.apply(writes)
    else:  # pragma: no cover - the strategy draws only the kinds above
        raise AssertionError(kind)


def _state(data: Path) -> dict[bytes, bytes]:
    with open_engine(data, mode="ro") as engine:
        return dict(engine.scan())


def check_sequence(backend: str, steps: list[tuple[Any, ...]], seed: int, targets: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="drconsole-continuity-"))
    data, repo = work / "data", work / "repo"
    rng = random.Random(seed)
    model = Model()
    try:
        # An embedded application creates the data dir (small segments, so they roll and recycle;
        # sync durability, so a write a node acknowledged survives its kill -9), then the CLI takes
        # the first full backup: the window starts there.
        with create_engine(data, backend=backend, durability="sync", wal_segment_bytes=SEGMENT) as engine:
            first = writes_for(rng, 200, "init")
            for key, value in first:
                engine.put(key.encode(), (value or "initial").encode())
            model.apply([(key, value or "initial") for key, value in first])
        every = [("backup-full",), *steps, ("backup-incremental",)]
        for index, step in enumerate(every):
            _run_step(step, index, data, repo, work, model, rng)
            model.checkpoint(data, index)
        assert _state(data) == model.state, describe(every)
        code, output = _cli("backup", "verify", "--repo", repo, "--json")
        report = json.loads(output.splitlines()[0])
        assert code == 0 and report["wal"]["missing"] == [], f"{describe(every)}: {report['problems']}"
        reachable = [point for point in model.points if model.base_lsn is not None and point.lsn >= model.base_lsn]
        for attempt, point in enumerate(rng.sample(reachable, min(targets, len(reachable)))):
            target = work / f"pitr-{attempt}"
            # The moment after the last step is past anything the archive observed: a write could
            # have come after the last observation, so that one is recovered by LSN only.
            by_time = rng.random() < 0.5 and point is not model.points[-1]
            how = ("--until", iso_utc(point.moment_ns)) if by_time else ("--until-lsn", str(point.lsn))
            code, output = _cli("backup", "restore", "--repo", repo, *how, "--data-dir", target)
            assert code == 0, f"{describe(every)}: restore {how} after step {point.step}: {output}"
            assert _state(target) == point.state, f"{describe(every)}: restore {how} after step {point.step}"
    finally:
        shutil.rmtree(work, ignore_errors=True)  # our own temp dir


BACKENDS = available_backends()
# No shrinking: every example runs real processes, and the failure message names the sequence.
SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
    phases=[Phase.explicit, Phase.generate],
)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=2, **SETTINGS)  # type: ignore[arg-type]
@given(
    steps=st.lists(STEP, min_size=2, max_size=5).filter(lambda s: sum(x[0] == "node" for x in s) <= 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_no_gap_and_pitr_equals_the_model(backend: str, steps: list[tuple[Any, ...]], seed: int) -> None:
    check_sequence(backend, steps, seed, targets=2)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=25, **SETTINGS)  # type: ignore[arg-type]
@given(steps=st.lists(STEP, min_size=3, max_size=12), seed=st.integers(0, 2**32 - 1))
def test_no_gap_and_pitr_equals_the_model_many(backend: str, steps: list[tuple[Any, ...]], seed: int) -> None:
    check_sequence(backend, steps, seed, targets=4)
