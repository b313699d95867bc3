"""Property tests: codecs round-trip, any log written reads back, any damage is reported, not raised."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engines.errors import CorruptionError, WalCorruptionError
from engines.wal import Op, RecoveryMode, WalReader, WalWriter, decode_batch, encode_batch, list_segments

keys = st.binary(max_size=40)
entries = st.lists(st.tuples(keys, st.none() | st.binary(max_size=200)), max_size=20)
# Sizes that matter to the framing: tiny, around a block's payload room, and several blocks.
sizes = st.one_of(st.integers(0, 64), st.integers(32 * 1024 - 60, 32 * 1024 + 10), st.integers(0, 100_000))
records = st.lists(
    st.tuples(st.sampled_from([Op.PUT, Op.DELETE, Op.BATCH]), keys, sizes, entries, st.integers(0, 2**64 - 1)),
    min_size=1,
    max_size=25,
)


@given(entries)
def test_batch_round_trip(batch: list[tuple[bytes, bytes | None]]) -> None:
    assert decode_batch(encode_batch(batch)) == batch


@given(st.binary(max_size=300))
def test_decode_batch_of_any_bytes_is_a_list_or_corruption(data: bytes) -> None:
    try:
        decoded = decode_batch(data)
    except CorruptionError:
        return
    assert encode_batch(decoded) == data  # whatever decodes is exactly one encoding


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, st.sampled_from([32 * 1024, 48 * 1024, 200 * 1024]), st.integers(1, 2**40))
def test_any_log_reads_back_as_written(
    written: list[tuple[Op, bytes, int, list[tuple[bytes, bytes | None]], int]], segment_bytes: int, first_lsn: int
) -> None:
    with tempfile.TemporaryDirectory() as temp:
        wal = Path(temp) / "wal"
        expected: list[tuple[int, int, Op, bytes, bytes]] = []
        with WalWriter(wal, next_lsn=first_lsn, segment_bytes=segment_bytes) as writer:
            for op, key, size, batch, timestamp in written:
                if op is Op.PUT:
                    value = bytes([size % 251]) * size
                    lsn = writer.append(op, key, value, timestamp_ns=timestamp)
                    expected.append((lsn, timestamp, op, key, value))
                elif op is Op.DELETE:
                    lsn = writer.append(op, key, timestamp_ns=timestamp)
                    expected.append((lsn, timestamp, op, key, b""))
                else:
                    lsn = writer.append_batch(batch, timestamp_ns=timestamp)
                    expected.append((lsn, timestamp, op, b"", encode_batch(batch)))
        read = list(WalReader(wal).records(mode=RecoveryMode.ABSOLUTE_CONSISTENCY))
        assert [(r.lsn, r.timestamp_ns, r.op, r.key, r.value) for r in read] == expected
        assert [r.lsn for r in read] == list(range(first_lsn, first_lsn + len(written)))
        validation = WalReader(wal).validate()
        assert validation.ok and validation.records == len(written)
        assert validation.bytes == sum(info.size for info in list_segments(wal))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 255)), min_size=1, max_size=6), st.booleans())
def test_any_damage_is_reported_never_raised(flips: list[tuple[int, int]], cut: bool) -> None:
    """Whatever the bytes, readers answer with problems or WalCorruptionError, nothing else."""
    with tempfile.TemporaryDirectory() as temp:
        wal = Path(temp) / "wal"
        with WalWriter(wal, next_lsn=1, segment_bytes=40 * 1024) as writer:
            for number in range(60):
                writer.append(Op.PUT, b"k%d" % number, bytes(number * 97 % 3000))
        segments = list_segments(wal)
        for position, xor in flips:
            info = segments[position % len(segments)]
            data = bytearray(info.path.read_bytes())
            data[position % len(data)] ^= xor
            info.path.write_bytes(bytes(data[: len(data) - position % 50] if cut else data))
        reader = WalReader(wal)
        validation = reader.validate()
        problems = reader.problems()
        assert (validation.corruption is None) == (problems == [])
        if validation.corruption is not None:
            assert problems[0] == validation.corruption
        skipped = [record.lsn for record in reader.records(mode=RecoveryMode.SKIP_ANY_CORRUPTED)]
        assert skipped == sorted(set(skipped))
        prefix = [record.lsn for record in reader.records(mode=RecoveryMode.POINT_IN_TIME)]
        assert prefix == list(range(1, validation.records + 1))
        for mode in (RecoveryMode.TOLERATE_CORRUPTED_TAIL, RecoveryMode.ABSOLUTE_CONSISTENCY):
            try:
                got = [record.lsn for record in reader.records(mode=mode)]
            except WalCorruptionError as exc:
                assert mode is not RecoveryMode.ABSOLUTE_CONSISTENCY or (exc.segment, exc.offset, exc.reason) == (
                    validation.corruption.segment,
                    validation.corruption.offset,
                    validation.corruption.reason,
                )  # type: ignore[union-attr]
            else:
                assert got[: len(prefix)] == prefix
