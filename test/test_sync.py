"""The approximate-time synchronizer: newest complete set within the slop, stale messages dropped, thread-safe."""
import threading
from types import SimpleNamespace

import pytest

from depth_perception.ros.sync import ApproximateTimeSynchronizer, stamp_to_ns

MS = 1_000_000


def msg(stamp_ns, tag=""):
    sec, nsec = divmod(stamp_ns, 1_000_000_000)
    return SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nsec)), tag=tag)


def collecting(keys, slop_s=0.01, queue_size=5):
    out = []
    return ApproximateTimeSynchronizer(keys, slop_s, out.append, queue_size), out


def test_stamp_to_ns_reads_sec_and_nanosec():
    assert stamp_to_ns(msg(3_000_000_007).header.stamp) == 3_000_000_007


def test_a_set_is_delivered_when_every_input_has_a_message_within_the_slop():
    sync, out = collecting(["image", "info"])
    assert not sync.add("image", msg(100 * MS, "i"))
    assert sync.add("info", msg(105 * MS, "c"))
    assert [(s["image"].tag, s["info"].tag) for s in out] == [("i", "c")]


def test_messages_farther_apart_than_the_slop_never_pair():
    sync, out = collecting(["a", "b"], slop_s=0.01)
    sync.add("a", msg(100 * MS))
    sync.add("b", msg(120 * MS))
    assert out == []


def test_the_newest_complete_set_wins_and_older_messages_are_dropped():
    sync, out = collecting(["a", "b"], slop_s=0.005)
    for t in (100, 200, 300):
        sync.add("a", msg(t * MS, f"a{t}"))
    sync.add("b", msg(301 * MS, "b301"))
    assert [(s["a"].tag, s["b"].tag) for s in out] == [("a300", "b301")]
    assert sync.dropped == 2  # a100 and a200 were never delivered
    # the older frames are gone: a late b200 finds no partner
    sync.add("b", msg(200 * MS, "b200"))
    assert len(out) == 1


def test_three_inputs_with_sensor_offsets_match_by_the_spread_of_all_stamps():
    sync, out = collecting(["image", "info", "points"], slop_s=0.02)
    sync.add("points", msg(1000 * MS, "p"))
    sync.add("image", msg(1015 * MS, "i"))
    sync.add("info", msg(1015 * MS, "c"))
    assert [sorted(s) for s in out] == [["image", "info", "points"]]
    sync2, out2 = collecting(["image", "info", "points"], slop_s=0.01)
    sync2.add("points", msg(1000 * MS))
    sync2.add("image", msg(1015 * MS))
    sync2.add("info", msg(1015 * MS))
    assert out2 == []


def test_changing_the_slop_applies_to_the_next_match():
    sync, out = collecting(["a", "b"], slop_s=0.0)
    sync.add("a", msg(10 * MS))
    sync.add("b", msg(12 * MS))
    assert out == []
    sync.slop_s = 0.005
    sync.add("a", msg(20 * MS))  # the waiting pair (10, 12) is now within the slop
    assert [(stamp_to_ns(s["a"].header.stamp), stamp_to_ns(s["b"].header.stamp)) for s in out] == [(10 * MS, 12 * MS)]


def test_time_jumping_back_clears_the_queues_so_a_looped_bag_syncs_again():
    sync, out = collecting(["a", "b"])
    sync.add("a", msg(50_000 * MS))
    sync.add("b", msg(50_000 * MS))
    sync.add("a", msg(50_100 * MS))  # waits for its partner...
    sync.add("a", msg(1_000 * MS))  # ...when the bag starts again
    sync.add("b", msg(1_000 * MS))
    assert [stamp_to_ns(s["a"].header.stamp) for s in out] == [50_000 * MS, 1_000 * MS]


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="slop_s"):
        ApproximateTimeSynchronizer(["a"], -1.0, print)
    with pytest.raises(ValueError, match="unique"):
        ApproximateTimeSynchronizer(["a", "a"], 0.1, print)
    sync, _ = collecting(["a"])
    with pytest.raises(KeyError, match="unknown synchronizer input 'z'"):
        sync.add("z", msg(0))


def test_concurrent_producers_deliver_each_stamp_at_most_once():
    sync, out = collecting(["a", "b"], slop_s=0.0, queue_size=50)
    n = 300

    def produce(key):
        for k in range(n):
            sync.add(key, msg(k * MS, key))

    threads = [threading.Thread(target=produce, args=(k,)) for k in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps = [stamp_to_ns(s["a"].header.stamp) for s in out]
    assert stamps == sorted(set(stamps))  # strictly increasing: no set twice, never backwards
    assert all(stamp_to_ns(s["b"].header.stamp) == stamp_to_ns(s["a"].header.stamp) for s in out)
    assert len(out) >= 1


def _pair(sync, stamp_ns, tag=""):
    sync.add("image", msg(stamp_ns, tag))
    return sync.add("info", msg(stamp_ns, tag))


def test_a_set_older_than_the_last_delivered_one_is_dropped_and_counted():
    sync, out = collecting(["image", "info"])
    assert _pair(sync, 10_000 * MS, "new")
    assert not _pair(sync, 9_500 * MS, "late")  # 0.5 s older: published after the newer frame, before the fix
    assert [s["image"].tag for s in out] == ["new"]
    assert sync.stale == 2
    assert _pair(sync, 10_100 * MS, "next")
    assert [s["image"].tag for s in out] == ["new", "next"]


def test_a_duplicate_stamp_is_delivered_once():
    sync, out = collecting(["image", "info"])
    assert _pair(sync, 10_000 * MS, "a")
    assert not _pair(sync, 10_000 * MS, "again")
    assert [s["image"].tag for s in out] == ["a"] and sync.stale == 2


def test_time_that_jumps_back_far_starts_a_new_timeline_at_once():
    sync, out = collecting(["image", "info"])
    for t in (10_000, 10_100, 10_200):
        _pair(sync, t * MS)
    assert _pair(sync, 1_000 * MS, "after the loop")  # a bag loop, a sim-time reset: 9.2 s back
    assert out[-1]["image"].tag == "after the loop" and sync.stale == 0


def test_a_loop_of_a_bag_shorter_than_the_jump_threshold_recovers_after_a_few_frames():
    sync, out = collecting(["image", "info"])
    for t in (10_000, 10_100, 10_200):
        _pair(sync, t * MS, f"first {t}")
    delivered = [_pair(sync, t * MS, f"loop {t}") for t in (10_000, 10_100, 10_200, 10_000, 10_100)]
    assert delivered == [False, False, True, False, False]  # the third in a row restarts the timeline
    assert out[-1]["image"].tag.startswith("loop")
