"""The engine's caches of worked-out results: bounded, and they keep what a batch keeps meeting."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ur_engine.memo import Recent


def test_a_full_cache_forgets_the_entry_used_least_recently():
    cache: Recent[str, int] = Recent(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a used again: b is now the least recent
    cache.put("c", 3)
    assert ("a" in cache, "b" in cache, "c" in cache) == (True, False, True)
    assert cache.get("b") is None


def test_a_pattern_met_again_and_again_survives_a_long_tail_met_once():
    cache: Recent[int, str] = Recent(100)
    worked_out = 0
    for n in range(10_000):  # a common pattern every other stay, between patterns never seen again
        key = 0 if n % 2 == 0 else n
        if cache.get(key) is None:
            worked_out += key == 0
            cache.put(key, "verdict")
    assert worked_out == 1  # a cache forgotten all at once when full would work it out again each time it filled


@given(st.integers(1, 20), st.lists(st.integers(0, 50), max_size=300))
def test_a_cache_never_holds_more_than_its_size_and_keeps_the_latest(size, keys):
    cache: Recent[int, int] = Recent(size)
    for k in keys:
        if cache.get(k) is None:
            cache.put(k, k)
        assert len(cache) <= size and cache.get(k) == k

