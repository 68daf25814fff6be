"""The lock-step runner: deterministic delivery, chained callbacks, timers on sim time."""
from __future__ import annotations

import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.serialization import serialize_message
from std_msgs.msg import Int64

from cooperative_fusion.app.lockstep import LockstepRunner


class Doubler(Node):
    """Publishes on /mid twice what it hears on /in; ``serialized``: as CDR bytes (rclpy's publish takes either)."""

    def __init__(self, context: Context, serialized: bool = False) -> None:
        super().__init__('doubler', context=context)
        self.serialized = serialized
        self.pub = self.create_publisher(Int64, '/mid', 10)
        self.create_subscription(Int64, '/in', self.on_in, 10)

    def on_in(self, msg: Int64) -> None:
        out = Int64(data=msg.data * 2)
        self.pub.publish(serialize_message(out) if self.serialized else out)


class Stamper(Node):
    """Publishes the sum of what it heard, and the sim time, every 100 ms."""

    def __init__(self, context: Context) -> None:
        super().__init__('stamper', context=context)
        self.total = 0
        self.pub = self.create_publisher(Int64, '/tick', 10)
        self.create_subscription(Int64, '/mid', self.on_mid, 10)
        self.create_timer(0.1, self.on_timer)

    def on_mid(self, msg: Int64) -> None:
        self.total += msg.data

    def on_timer(self) -> None:
        self.pub.publish(Int64(data=self.get_clock().now().nanoseconds))
        self.pub.publish(Int64(data=self.total))


def run_once() -> list[tuple[str, int, int]]:
    ctx = Context()
    rclpy.init(context=ctx, domain_id=77)
    nodes = [Doubler(ctx), Stamper(ctx)]
    try:
        out: list[tuple[str, int, int]] = []
        runner = LockstepRunner(nodes, lambda topic, msg, t: out.append((topic, msg.data, t)),
                                publish_to_dds=False)
        for i, t_ms in enumerate([10, 40, 40, 130, 250]):
            runner.feed('/in', Int64(data=i + 1), t_ms * 1_000_000)
        runner.advance_to(300_000_000)
        return out
    finally:
        for n in nodes:
            n.destroy_node()
        rclpy.shutdown(context=ctx)


def test_lockstep_order_and_timers():
    out = run_once()
    mids = [(v, t) for topic, v, t in out if topic == '/mid']
    assert mids == [(2, 10_000_000), (4, 40_000_000), (6, 40_000_000), (8, 130_000_000), (10, 250_000_000)]
    ticks = [v for topic, v, _ in out if topic == '/tick']
    # timer at 100, 200, 300 ms: sim time as seen by the node, then the running total
    assert ticks == [100_000_000, 12, 200_000_000, 20, 300_000_000, 30]


def test_lockstep_is_deterministic():
    assert run_once() == run_once()


def test_lockstep_publishers_count_in_process_subscribers_and_the_recorder():
    ctx = Context()
    rclpy.init(context=ctx, domain_id=77)
    try:
        for recorder, tick_subscribers in ((None, 0), (lambda topic, msg, t: None, 1)):
            nodes = [Doubler(ctx), Stamper(ctx)]
            try:
                LockstepRunner(nodes, recorder, publish_to_dds=False)
                assert nodes[0].pub.get_subscription_count() == 1 + tick_subscribers   # /mid: the Stamper
                assert nodes[1].pub.get_subscription_count() == tick_subscribers       # /tick: the recorder only
            finally:
                for n in nodes:
                    n.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


class RawAndTyped(Node):
    """Two subscriptions on ``topic``: one raw (gets the CDR bytes), one typed (gets Int64)."""

    def __init__(self, context: Context, topic: str = '/in') -> None:
        super().__init__('raw_and_typed', context=context)
        self.heard: list[tuple[str, object]] = []
        self.create_subscription(Int64, topic, lambda m: self.heard.append(('raw', m)), 10, raw=True)
        self.create_subscription(Int64, topic, lambda m: self.heard.append(('typed', m)), 10)


def test_feed_serialized_hands_bytes_to_raw_subscriptions_and_skips_what_does_not_decode():
    from cooperative_fusion.core.errors import BagError

    ctx = Context()
    rclpy.init(context=ctx, domain_id=77)
    node = RawAndTyped(ctx)
    try:
        runner = LockstepRunner([node], None, publish_to_dds=False)
        data = serialize_message(Int64(data=7))
        runner.feed_serialized('/in', 'std_msgs/msg/Int64', data, 5_000_000)
        assert node.heard == [('raw', data), ('typed', Int64(data=7))]
        runner.feed_serialized('/in', 'std_msgs/msg/String', data, 6_000_000)   # another type: nobody
        with pytest.raises(BagError, match='cannot deserialize 3 bytes as std_msgs/msg/Int64'):
            runner.feed_serialized('/in', 'std_msgs/msg/Int64', b'\x00\x01\x00', 20_000_000)
        assert len(node.heard) == 2 and runner.now_ns == 6_000_000    # skipped whole, before time moved
    finally:
        node.destroy_node()
        rclpy.shutdown(context=ctx)


def test_published_bytes_reach_subscriptions_and_the_recorder_as_a_message_would(tmp_path):
    """A node publishing CDR bytes: raw subscriptions get the bytes, typed ones the message, the recorder a
    SerializedMessage that write_published writes as the same bytes the message object gives."""
    from cooperative_fusion.app.lockstep import (SerializedMessage, published_cdr, published_message,
                                                 write_published)
    from cooperative_fusion.ros.bag import BagReader, BagWriter

    ctx = Context()
    rclpy.init(context=ctx, domain_id=77)
    nodes = [Doubler(ctx, serialized=True), RawAndTyped(ctx, '/mid')]
    try:
        out: list[tuple[str, object, int]] = []
        runner = LockstepRunner(nodes, lambda topic, msg, t: out.append((topic, msg, t)), publish_to_dds=False)
        runner.feed('/in', Int64(data=-3), 5_000_000)
        data = serialize_message(Int64(data=-6))
        assert nodes[1].heard == [('raw', data), ('typed', Int64(data=-6))]
        [(topic, msg, t)] = out
        assert (topic, t) == ('/mid', 5_000_000) and isinstance(msg, SerializedMessage)
        assert (msg.msgtype, msg.data) == ('std_msgs/msg/Int64', data)
        assert published_message(msg) == Int64(data=-6)
        assert published_message(Int64(data=4)) == Int64(data=4)
        assert published_cdr(msg) == published_cdr(Int64(data=-6)) == ('std_msgs/msg/Int64', data)
        with BagWriter(tmp_path / 'bag') as bag:
            write_published(bag, '/mid', msg, 5_000_000)
            write_published(bag, '/mid', Int64(data=-6), 6_000_000)
        with BagReader(tmp_path / 'bag') as bag:
            assert [(t, ts, raw) for t, _, ts, raw in bag.messages()] == [('/mid', 5_000_000, data),
                                                                        ('/mid', 6_000_000, data)]
    finally:
        for n in nodes:
            n.destroy_node()
        rclpy.shutdown(context=ctx)


def test_a_cancelled_timer_skips_its_ticks_and_a_reset_one_resumes_on_its_phase():
    ctx = Context()
    rclpy.init(context=ctx, domain_id=77)
    node = Node('ticker', context=ctx)
    try:
        ticks: list[int] = []
        timer = node.create_timer(0.1, lambda: ticks.append(node.get_clock().now().nanoseconds))
        runner = LockstepRunner([node], publish_to_dds=False)
        runner.advance_to(150_000_000)
        timer.cancel()
        runner.advance_to(350_000_000)          # 200 and 300 ms skipped
        timer.reset()
        runner.advance_to(500_000_000)
        assert ticks == [100_000_000, 400_000_000, 500_000_000]
    finally:
        node.destroy_node()
        rclpy.shutdown(context=ctx)
