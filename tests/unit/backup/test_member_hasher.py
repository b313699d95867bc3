"""MemberHasher: whichever lane hashes a member (a thread, or the caller inline), its digest is SHA-256's."""

from __future__ import annotations

import hashlib
import random
import threading

import pytest

from engines.backup.hashing import Digest, MemberHasher


def _members() -> list[tuple[str, bytes]]:
    rng = random.Random(11)
    sizes = [0, 1, 4095, 70_000, 300_000, 2_000_000] + [rng.randrange(1, 200_000) for _ in range(30)]
    return [(f"data/m{n:02d}", rng.randbytes(size)) for n, size in enumerate(sizes)]


@pytest.mark.parametrize(("threads", "inline_weight"), [(0, 0.0), (2, 0.0), (2, 3.0), (1, 1.0)])
def test_every_digest_is_sha256_whichever_lane_hashed_it(threads: int, inline_weight: float) -> None:
    hasher = MemberHasher(threads, inline_weight=inline_weight)
    for name, data in _members():
        hasher.begin(name, len(data))
        for at in range(0, len(data), 65_536):  # in pieces, as the reader hands them over
            hasher.update(memoryview(data)[at : at + 65_536])
    digests = hasher.finish()
    assert digests == {name: hashlib.sha256(data).hexdigest() for name, data in _members()}
    lanes = [bool(lane) for lane in hasher._digests]  # which lanes hashed something
    if threads == 0:
        assert lanes == [True]
    elif inline_weight == 0:
        assert lanes == [False] + [True] * threads  # the caller never hashes
    else:
        assert all(lanes)  # the caller and every thread share the work
    assert not [t for t in threading.enumerate() if t.name.startswith("member-hasher")]


def test_a_digest_calls_back_once_everything_handed_before_is_hashed() -> None:
    """``then`` runs in the hashing thread after the chunks before it: their buffer may be reused then."""
    rng = random.Random(3)
    digest = Digest("test-hasher")
    found: list[str] = []  # the digest so far, as each call finds it (in the hashing thread)
    wanted: list[str] = []  # the digest of what was handed before each call
    expected = hashlib.sha256()
    for n in range(200):
        chunk = rng.randbytes(rng.randrange(0, 300_000))
        digest.update(chunk)
        expected.update(chunk)
        if n % 7 == 0:
            digest.then(lambda: found.append(digest.digest.copy().hexdigest()))
            wanted.append(expected.copy().hexdigest())
    assert digest.finish() == expected.hexdigest()
    assert found == wanted
