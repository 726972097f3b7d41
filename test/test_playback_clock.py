"""The players' playback clock (no ROS): anchoring, rate changes, pause, start delay, lag."""
import pytest

from avemo_ros.playback_clock import PlaybackClock

MS = 1_000_000


class FakeClock:
    def __init__(self, t=1_000 * MS):
        self.t = t

    def __call__(self):
        return self.t


def test_media_time_follows_the_clock_at_the_rate():
    now = FakeClock()
    clock = PlaybackClock(2.0, now=now)
    assert not clock.started and clock.media_ns() == 0 and clock.wait_s(0) is None
    clock.start()
    now.t += 100 * MS
    assert clock.media_ns() == 200 * MS
    assert clock.wait_s(300 * MS) == pytest.approx(0.05)  # 100 ms of media at rate 2
    assert clock.wait_s(100 * MS) == 0.0


def test_rate_change_keeps_the_media_position_continuous():
    now = FakeClock()
    clock = PlaybackClock(1.0, now=now)
    clock.start()
    now.t += 500 * MS
    clock.set_rate(4.0)
    assert clock.media_ns() == 500 * MS  # no jump at the change
    now.t += 100 * MS
    assert clock.media_ns() == 900 * MS
    with pytest.raises(ValueError):
        clock.set_rate(0.0)


def test_pause_holds_media_time_and_resume_continues():
    now = FakeClock()
    clock = PlaybackClock(now=now)
    clock.start()
    now.t += 300 * MS
    clock.set_paused(True)
    now.t += 5_000 * MS
    assert clock.paused and clock.media_ns() == 300 * MS and clock.wait_s(400 * MS) is None
    clock.set_paused(False)
    now.t += 50 * MS
    assert clock.media_ns() == 350 * MS
    clock.shift(-350 * MS)  # a loop restart
    assert clock.media_ns() == 0


def test_start_delay_and_starting_paused():
    now = FakeClock()
    clock = PlaybackClock(2.0, now=now)
    assert clock.start(delay_ns=1_000 * MS) == now.t + 1_000 * MS
    now.t += 400 * MS
    assert clock.media_ns() < 0
    assert clock.wait_s(0) == pytest.approx(0.6)  # the delay is clock time, whatever the rate
    paused = PlaybackClock(paused=True, now=now)
    paused.start(delay_ns=200 * MS)
    now.t += 1_000 * MS
    assert paused.media_ns() == -200 * MS  # the delay is still ahead once resumed
    paused.set_paused(False)
    assert paused.wait_s(0) == pytest.approx(0.2)


def test_lag_warning_beyond_the_threshold_and_throttled():
    clock = PlaybackClock(lag_warn_ns=200 * MS, warn_every_s=60.0)
    assert clock.late_by(1_000 * MS, 1_150 * MS) is None  # within the threshold
    assert clock.late_by(1_000 * MS, 1_300 * MS) == 300 * MS
    assert clock.late_by(1_000 * MS, 1_900 * MS) is None  # said already in this minute
    eager = PlaybackClock(lag_warn_ns=200 * MS, warn_every_s=0.0)
    assert eager.late_by(0, 250 * MS) == eager.late_by(0, 250 * MS) == 250 * MS
