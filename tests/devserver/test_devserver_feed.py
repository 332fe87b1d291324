"""The activity feed under the viewer and the request log: fan-out, bounds, wake-ups, close."""

from __future__ import annotations

import threading
import time

from databuddy_otel.devserver._feed import Feed


def test_messages_reach_only_subscribers_of_their_kind():
    """A subscription receives its kinds, in order, and nothing else."""
    feed = Feed()
    events = feed.subscribe({"events"})
    requests_ = feed.subscribe({"request", "cleared"})
    try:
        feed.publish({"kind": "events", "n": 1})
        feed.publish({"kind": "cleared"})
        feed.publish({"kind": "events", "n": 2})
        assert events.take() == [{"kind": "events", "n": 1}, {"kind": "events", "n": 2}]
        assert requests_.take() == [{"kind": "cleared"}]
        assert events.take() == []
    finally:
        events.close()
        requests_.close()


def test_wants_tells_whether_anyone_listens():
    """wants(kind) is true only while a subscription of that kind is receiving."""
    feed = Feed()
    assert not feed.wants("events")
    subscription = feed.subscribe({"events"})
    assert feed.wants("events") and not feed.wants("request")
    subscription.close()
    assert not feed.wants("events")


def test_a_subscriber_that_falls_behind_is_dropped_not_waited_for():
    """Past its buffer a subscription ends as overflowed; publishing goes on regardless."""
    feed = Feed()
    slow = feed.subscribe({"events"}, limit=2)
    fast = feed.subscribe({"events"})
    try:
        for n in range(5):
            feed.publish({"kind": "events", "n": n})
        assert slow.ended and slow.overflowed
        assert [m["n"] for m in fast.take()] == [0, 1, 2, 3, 4]
        assert not fast.ended
    finally:
        slow.close()
        fast.close()


def test_publishing_is_quick_with_a_stuck_subscriber():
    """Ten thousand publishes to a subscriber that never takes finish in well under a second."""
    feed = Feed()
    stuck = feed.subscribe({"events"})
    try:
        started = time.monotonic()
        for n in range(10_000):
            feed.publish({"kind": "events", "n": n})
        assert time.monotonic() - started < 1.0
        assert stuck.overflowed
    finally:
        stuck.close()


def test_wait_wakes_when_a_message_arrives():
    """wait() returns as soon as another thread publishes, long before its timeout."""
    feed = Feed()
    subscription = feed.subscribe({"events"})
    publisher = threading.Thread(target=feed.publish, args=({"kind": "events"},))
    started = time.monotonic()
    publisher.start()
    try:
        messages = subscription.wait(10)
        while not messages:  # woken by an earlier byte: wait again
            messages = subscription.wait(10)
        assert messages == [{"kind": "events"}]
        assert time.monotonic() - started < 5
    finally:
        publisher.join()
        subscription.close()


def test_close_ends_every_subscription_and_later_ones():
    """close() wakes subscribers as ended; a subscription made afterwards starts ended."""
    feed = Feed()
    subscription = feed.subscribe({"events"})
    feed.publish({"kind": "events"})
    feed.close()
    assert subscription.ended and not subscription.overflowed
    assert subscription.wait(10) == [{"kind": "events"}]  # what was pending, at once
    late = feed.subscribe({"events"})
    assert late.ended
    subscription.close()
    late.close()


def test_wait_released_waits_for_consumers_to_close():
    """wait_released() is false while a subscription is open and true once all are closed."""
    feed = Feed()
    subscription = feed.subscribe({"events"})
    feed.close()
    assert feed.subscriber_count == 1
    assert feed.wait_released(0.01) is False
    subscription.close()
    subscription.close()  # idempotent
    assert feed.wait_released(0.01) is True
    assert feed.subscriber_count == 0
