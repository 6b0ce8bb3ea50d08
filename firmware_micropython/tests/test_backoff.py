"""Reconnect backoff and the discovery retry schedule."""

import backoff
import discovery


def test_first_delay_spans_half_to_one_and_a_half_seconds():
    assert backoff.Backoff(lambda: 0.0).next() == 0.5
    assert abs(backoff.Backoff(lambda: 0.999999).next() - 1.5) < 1e-5
    assert backoff.Backoff(lambda: 0.5).next() == 1.0


def test_delays_grow_by_1_6_up_to_30_seconds():
    b = backoff.Backoff(lambda: 0.5)
    delays = [b.next() for _ in range(12)]
    assert delays[0] == 1.0
    for i in range(1, len(delays)):
        assert delays[i] == min(30.0, delays[i - 1] * 1.6)
    assert delays[7] < 30.0 and delays[8] == 30.0
    assert delays[-1] == 30.0
    assert b.attempts == 12


def test_default_randomness_stays_in_range():
    for _ in range(50):
        assert 0.5 <= backoff.Backoff().next() <= 1.5


def test_reset_only_after_a_healthy_minute():
    b = backoff.Backoff(lambda: 0.0)
    for _ in range(5):
        b.next()
    assert not b.reset_if_healthy(59.9)
    assert abs(b.next() - 0.5 * 1.6**5) < 1e-9
    assert b.reset_if_healthy(60)
    assert b.attempts == 0
    assert b.next() == 0.5


def test_discovery_retry_doubles_to_30_seconds():
    r = discovery.Retry()
    assert [r.next() for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    r.reset()
    assert r.next() == 1
