"""The translator publishes a flush's messages in waves: bounded, in order, never one subject twice in a wave."""

from __future__ import annotations

from services.common.waves import waves


def test_waves_are_bounded_and_keep_the_order() -> None:
    msgs = [(f"s{i}", i) for i in range(10)]
    out = list(waves(msgs, 4))
    assert [len(w) for w in out] == [4, 4, 2]
    assert [m for w in out for m in w] == msgs


def test_a_subject_seen_in_the_wave_starts_the_next_so_its_messages_stay_in_order() -> None:
    # a tree and its deletion under another tenant are distinct subjects; a repeated subject is not
    msgs = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("a", 5)]
    out = list(waves(msgs, 64))
    assert out == [[("a", 1), ("b", 2)], [("a", 3), ("c", 4)], [("a", 5)]]
    for w in out:
        assert len({s for s, _ in w}) == len(w)


def test_nothing_to_send_is_no_wave() -> None:
    assert list(waves([], 64)) == []
