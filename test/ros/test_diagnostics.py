from __future__ import annotations

import math

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from numpy.testing import assert_allclose
from rclpy.serialization import deserialize_message, serialize_message

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.ros.diagnostics import (DropCounter, LatencyStats, Level, RateMeter, make_array,
                                                make_status, status_level)
from cooperative_fusion.ros.time import stamp_to_ns


class FakeLogger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, text: str) -> None:
        self.lines.append(text)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_status_values_and_level_survive_serialization():
    values = {'rate_hz': 9.87654321, 'drops': np.int64(3), 'ok': True, 'big': 1234567.89, 'name': 'v1',
              'nan': float('nan')}
    status = make_status('fusion: v1', Level.WARN, 'late', values, hardware_id='v1')
    arr = deserialize_message(serialize_message(make_array(5_000_000_007, [status])), DiagnosticArray)
    assert stamp_to_ns(arr.header.stamp) == 5_000_000_007
    (s,) = arr.status
    assert s.level == DiagnosticStatus.WARN and status_level(s) is Level.WARN
    assert (s.name, s.message, s.hardware_id) == ('fusion: v1', 'late', 'v1')
    assert {kv.key: kv.value for kv in s.values} == {
        'rate_hz': '9.87654', 'drops': '3', 'ok': 'True', 'big': '1.23457e+06', 'name': 'v1', 'nan': 'nan'}


@pytest.mark.parametrize('level', list(Level))
def test_every_level_maps_to_the_message_constant(level):
    expected = {Level.OK: DiagnosticStatus.OK, Level.WARN: DiagnosticStatus.WARN,
                Level.ERROR: DiagnosticStatus.ERROR, Level.STALE: DiagnosticStatus.STALE}[level]
    assert make_status('n', level, '', {}).level == expected


def test_drop_counter_logs_first_then_throttles():
    clock, log = FakeClock(), FakeLogger()
    drops = DropCounter(interval_s=10.0, clock=clock)
    drops.count('bad_cloud', 'data length 3 not equal to ...', log)
    assert log.lines == ['dropped input (bad_cloud): data length 3 not equal to ...']
    for _ in range(5):
        clock.t += 1.0
        drops.count('bad_cloud', 'again', log)
    assert len(log.lines) == 1                     # within 10 s: counted, not logged
    drops.count('stale_pose', 'pose 3 s old', log)  # a new cause logs at once
    assert log.lines[-1] == 'dropped input (stale_pose): pose 3 s old'
    clock.t += 5.0                                  # 10 s since the first bad_cloud log
    drops.count('bad_cloud', 'latest detail', log)
    assert log.lines[-1] == 'dropped input (bad_cloud): 7 so far; latest: latest detail'
    clock.t += 9.9
    drops.count('bad_cloud', 'x', log)
    assert len(log.lines) == 3
    assert drops.counts == {'bad_cloud': 8, 'stale_pose': 1} and drops.total == 9
    assert drops.as_values() == {'drops.bad_cloud': 8, 'drops.stale_pose': 1, 'drops.total': 9}


def test_drop_counter_without_logger_still_counts():
    drops = DropCounter()
    drops.count('a', 'x')
    drops.count('a', 'y')
    assert drops.counts == {'a': 2} and drops.as_values('d.') == {'d.a': 2, 'd.total': 2}


def test_drop_counter_keys_by_source_and_cause():
    clock, log = FakeClock(), FakeLogger()
    drops = DropCounter(clock=clock)
    assert drops.count('malformed', 'short cloud', log, source='lidar') is True
    assert drops.count('malformed', 'short again', log, source='lidar') is False
    assert drops.count('malformed', 'bad image', log, source='camera') is True    # another source logs at once
    drops.count('internal', 'KeyError', log)
    assert log.lines == ['dropped input (lidar: malformed): short cloud', 'dropped input (camera: malformed): bad image',
                         'dropped input (internal): KeyError']
    assert drops.counts == {'lidar.malformed': 2, 'camera.malformed': 1, 'internal': 1}
    assert drops.by_cause == {'malformed': 3, 'internal': 1} and drops.total == 4
    assert drops.as_values() == {'drops.internal': 1, 'drops.malformed': 3, 'drops.camera.malformed': 1,
                                 'drops.lidar.malformed': 2, 'drops.total': 4}


def test_rate_meter_on_synthetic_ticks():
    meter = RateMeter(window_s=5.0)
    assert meter.rate_hz(0) == 0.0
    t0 = 1_000_000_000_000
    for i in range(21):                             # 10 Hz for 2 s: window not yet full
        meter.tick(t0 + i * 100_000_000)
    assert_allclose(meter.rate_hz(t0 + 2_000_000_000), 10.0)
    for i in range(21, 101):                        # 10 Hz up to 10 s
        meter.tick(t0 + i * 100_000_000)
    assert_allclose(meter.rate_hz(t0 + 10_000_000_000), 10.0)
    for i in range(101, 201):                       # then 20 Hz for 5 s
        meter.tick(t0 + 10_000_000_000 + (i - 100) * 50_000_000)
    assert_allclose(meter.rate_hz(t0 + 15_000_000_000), 20.0)
    assert meter.rate_hz(t0 + 21_000_000_000) == 0.0  # silent for 6 s


def test_rate_meter_restarts_after_time_jumps_back():
    meter = RateMeter(window_s=1.0)
    for i in range(50):
        meter.tick(100_000_000_000 + i * 20_000_000)
    for i in range(5):                              # replay restarted at t=0, 5 Hz
        meter.tick(i * 200_000_000)
    assert_allclose(meter.rate_hz(800_000_000), 5.0)


def test_rate_meter_rejects_bad_window():
    with pytest.raises(ConfigError, match=r'RateMeter window_s 0.0: expected a finite number > 0'):
        RateMeter(0.0)


def test_latency_stats():
    stats = LatencyStats(maxlen=100)
    assert stats.percentile(50) is None
    assert math.isnan(stats.as_values()['latency_ms.p50'])
    for ms in np.arange(1000, dtype=float):         # only the last 100 are kept: 900..999
        stats.add(ms)
    stats.add(float('nan'))
    assert len(stats) == 100
    assert_allclose(stats.percentile(50), 949.5)
    assert_allclose(stats.percentile(95), 994.05)
    values = stats.as_values('fusion_latency_ms.')
    assert values['fusion_latency_ms.count'] == 100
    assert_allclose(values['fusion_latency_ms.p95'], 994.05)
