"""The shared scrub mechanism: pacing, passes, dead files, pauses and the schedule (real time, small)."""

from __future__ import annotations

import threading
import time

import pytest

from engines.errors import CorruptionError, StorageIOError
from engines.reports import Problem, VerifyReport
from engines.scrub import Pacer, Scrubber, ScrubStopped, ScrubUnit


def reading(chunks: int, size: int, damage: bool = False):
    def check(report: VerifyReport, pace) -> None:
        for index in range(chunks):
            pace(size)
            if damage and index == chunks // 2:
                report.add("checksum", "block checksum mismatch", file="t.sst", offset=index * size)

    return check


def test_the_pacer_holds_the_rate() -> None:
    pacer = Pacer(1_000_000, threading.Event())
    started = time.monotonic()
    for _ in range(8):
        pacer(64 * 1024)
    took = time.monotonic() - started
    assert 0.45 <= took <= 1.2, took  # 512 KiB at 1 MB/s, less the allowed 50 ms burst
    unthrottled = Pacer(0, threading.Event())
    started = time.monotonic()
    for _ in range(1000):
        unthrottled(1 << 20)
    assert time.monotonic() - started < 0.1 and unthrottled.bytes == 1000 << 20


def test_a_stop_ends_a_paced_wait_at_once() -> None:
    stop = threading.Event()
    pacer = Pacer(1000, stop)  # one byte a millisecond: 10 s for the next call
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(ScrubStopped):
        pacer(10_000)
    assert time.monotonic() - started < 2


def test_a_pass_reports_problems_of_live_files_only() -> None:
    found: list[Problem] = []
    units = [
        ScrubUnit("a.sst", 4096, reading(4, 1024, damage=True)),
        ScrubUnit("retired.sst", 4096, reading(4, 1024, damage=True), live=lambda: False),
        ScrubUnit("b.sst", 4096, reading(4, 1024)),
    ]
    scrubber = Scrubber(lambda: units, interval=0, rate=0, on_problem=found.append)
    record = scrubber.run_pass()
    assert record.complete and record.units == 3 and record.checked == 2 and record.skipped == 1
    assert [problem.file for problem in found] == ["t.sst"] and record.bytes_read == 3 * 4096
    assert scrubber.status()["last_pass"]["problem_count"] == 1


def test_a_corruption_error_is_a_problem_and_an_io_error_of_a_live_file_interrupts() -> None:
    def corrupt(report: VerifyReport, pace) -> None:
        raise CorruptionError("footer magic mismatch", file=None, offset=12)

    def broken(report: VerifyReport, pace) -> None:
        raise StorageIOError("engine closed")

    found: list[Problem] = []
    scrubber = Scrubber(
        lambda: [ScrubUnit("c.sst", 10, corrupt), ScrubUnit("d.sst", 10, broken)],
        interval=0,
        rate=0,
        on_problem=found.append,
    )
    record = scrubber.run_pass()
    assert [(problem.file, problem.offset) for problem in found] == [("c.sst", 12)]  # the unit names the file
    assert not record.complete and "engine closed" in (record.interrupted or "")


def test_a_pause_stops_the_pass_and_drops_what_it_found_meanwhile() -> None:
    paused = threading.Event()

    def check(report: VerifyReport, pace) -> None:
        paused.set()  # a drain began while this file was read: its findings prove nothing
        report.add("checksum", "mismatch", file="x.sst")

    found: list[Problem] = []
    scrubber = Scrubber(
        lambda: [ScrubUnit("x.sst", 1, check), ScrubUnit("y.sst", 1, reading(1, 1))],
        interval=0,
        rate=0,
        on_problem=found.append,
        paused=paused.is_set,
    )
    record = scrubber.run_pass()
    assert found == [] and record.interrupted == "the data dir is being recovered" and not record.complete


def test_the_thread_runs_a_pass_every_interval_and_stops() -> None:
    passes: list[float] = []
    scrubber = Scrubber(
        lambda: [ScrubUnit("a", 1, reading(1, 1))],
        interval=0.3,
        rate=0,
        on_problem=print,
        on_pass=lambda record: passes.append(record.started_at),
        first_delay=0.0,
    ).start()
    try:
        deadline = time.monotonic() + 5
        while len(passes) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        scrubber.stop()
    assert len(passes) >= 3
    gaps = [later - earlier for earlier, later in zip(passes, passes[1:])]
    assert all(0.25 <= gap <= 1.0 for gap in gaps), gaps
    count = len(passes)
    time.sleep(0.5)
    assert len(passes) == count  # stopped


def test_trigger_starts_the_next_pass_now_and_behind_says_a_pass_outgrew_the_interval() -> None:
    passes: list[float] = []
    slow = ScrubUnit("big", 1, lambda report, pace: time.sleep(0.3))
    scrubber = Scrubber(
        lambda: [slow],
        interval=0.2,
        rate=0,
        on_problem=print,
        on_pass=lambda record: passes.append(time.monotonic()),
        first_delay=30.0,
    ).start()
    try:
        started = time.monotonic()
        scrubber.trigger()
        while not passes and time.monotonic() - started < 5:
            time.sleep(0.02)
        assert passes and passes[0] - started < 1.0
        assert scrubber.status()["behind"] is True
    finally:
        scrubber.stop()


def test_a_pause_stops_a_paced_unit_at_its_next_read_and_wait_idle_returns() -> None:
    paused, reading_started = threading.Event(), threading.Event()

    def long_read(report: VerifyReport, pace) -> None:
        for _ in range(1000):  # 64 MB at 1 MB/s: a minute, unless stopped
            reading_started.set()
            pace(64 * 1024)

    scrubber = Scrubber(
        lambda: [ScrubUnit("big.sst", 64 << 20, long_read)],
        interval=0,
        rate=1_000_000,
        on_problem=print,
        paused=paused.is_set,
    )
    records = []
    runner = threading.Thread(target=lambda: records.append(scrubber.run_pass()))
    runner.start()
    assert reading_started.wait(5)
    started = time.monotonic()
    paused.set()  # what Node.set_recovering does before the agent closes the engine
    assert scrubber.wait_idle(5) and time.monotonic() - started < 1.0
    runner.join(5)
    assert records and records[0].interrupted == "the data dir is being recovered" and not records[0].complete
