"""Processes the multi-host test runs inside its namespaces: a bag replay started on a shared wall time, a probe,
and a wire agent.

``python netns_agents.py replay BAG --ready F --go F [--topics T ...] [--clock-topic /v1/clock] [--clock-only]``
    Publishes BAG's ``--topics`` with :class:`cooperative_fusion.app.player.ReplayPublisher`
    (and the /clock it publishes before each message, remapped to ``--clock-topic``),
    paced by :class:`~cooperative_fusion.app.player.BagPlayer` at ``--rate``. It
    writes ``--ready`` once every publisher has a subscriber (/clock: ``--clock-subscribers``), waits for the
    ``--go`` file (a wall-clock epoch in seconds), anchors the bag's start time
    to that instant and plays. Every replay of the test anchors to the same
    instant, so the sim clocks of the hosts agree as if their wall clocks were
    synchronised (NTP/PTP), and each host's /clock stays on that host.
    ``--clock-only``: publish only the clock, at most every ``--clock-period`` s of bag time,
    on past the bag's end for ``--drain-s`` and then until the ``--until`` file exists.

``python netns_agents.py probe --vehicles v1 v2 --ready F --out F.json``
    Counts /cooperative/grid (cells occupied / free in each, its arrival on the edge's clock) and each vehicle's
    /<v>/evidence_grid, keeps the latest /diagnostics status of every name and
    each fusion vehicle status' states; writes ``--ready`` when fusion, twin and
    every vehicle node are visible on the graph, and the JSON summary on SIGTERM.

The probe runs on the edge's sim clock: for every evidence grid it keeps (stamp, arrival) in
seconds, and it keeps every fusion per-vehicle status it hears (with the status' stamp), so the
test can compare what fusion measured with what arrived. ``--progress F`` is rewritten every
0.2 s with the evidence counts and fusion's latest ``received`` per vehicle.

``python netns_agents.py wire --interface eth0 --ready F --out F.json``
    Watches the host's ``eth0`` (a raw packet socket: root) and keeps, for every RTPS DATA that
    arrives there and carries a ROS message with a header (its first 8 payload bytes are the stamp),
    a :class:`Copy` (the kernel's receive time of the datagram's last IP fragment, wall seconds;
    source address, destination port, writer GUID, sequence number, stamp, datagram size); the JSON
    summary on SIGTERM. Each reader has its own copy of a message (unicast to its participant's
    port), lost and resent on its own: the probe's arrival of a message is not fusion's.
    :func:`delivery_times` turns the copies to one port into the times the reader could have had
    each message (RELIABLE delivers in order: a message waits for a resent earlier one).

Nothing here is specific to namespaces: the test runs these with ``ip netns exec``.
"""
from __future__ import annotations

import argparse
import json
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import NamedTuple, Sequence

RTPS_DATA = 0x15
RTPS_DATA_FRAG = 0x16
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35          # linux/socket.h (SCM_TIMESTAMPNS is the same number)
SO_RCVBUFFORCE = 33
SOL_PACKET = 263             # linux/socket.h, linux/if_packet.h
PACKET_STATISTICS = 6


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + '.tmp')
    tmp.write_text(text)
    tmp.replace(path)


def _wait_for_file(path: Path, timeout_s: float) -> str:
    """The text of ``path`` once it exists and is not empty (a writer may not have finished)."""
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and (text := path.read_text())):
        if time.monotonic() > deadline:
            raise TimeoutError(f'{path} did not appear within {timeout_s:.0f} s')
        time.sleep(0.01)
    return text


class Copy(NamedTuple):
    """One RTPS DATA (first or resent) carrying a stamped message, as it arrived at a host."""
    wall_s: float        # kernel receive time, wall clock (time.time()), seconds
    src: str             # source IPv4 address
    dport: int           # destination UDP port (the reader participant's unicast port)
    writer: str          # writer GUID (prefix + entity id), hex
    seq: int             # writer sequence number
    stamp_ns: int        # the message's header.stamp, ns
    size: int            # UDP datagram length, bytes


class Reassembler:
    """IPv4 packets -> whole UDP datagrams (a DDS datagram of tens of kB crosses ``eth0`` as IP fragments;
    a resend may pack several messages into one, all but the first beyond the first fragment)."""

    def __init__(self, max_pending: int = 256) -> None:
        self.max_pending = max_pending
        self._pending: dict[tuple[bytes, bytes, int], dict[int, bytes]] = {}
        self._size: dict[tuple[bytes, bytes, int], int] = {}

    def feed(self, ip_packet: bytes) -> tuple[str, bytes] | None:
        """(source address, UDP datagram: header and payload) once ``ip_packet`` completes one, else None."""
        if len(ip_packet) < 20 or ip_packet[0] >> 4 != 4 or ip_packet[9] != 17:
            return None
        ihl = (ip_packet[0] & 0x0F) * 4
        total, ident, frag = struct.unpack_from('!HHH', ip_packet, 2)
        body = ip_packet[ihl:total]
        src = socket.inet_ntoa(ip_packet[12:16])
        offset, more = (frag & 0x1FFF) * 8, bool(frag & 0x2000)
        if offset == 0 and not more:
            return src, body
        key = (ip_packet[12:16], ip_packet[16:20], ident)
        if key not in self._pending and len(self._pending) >= self.max_pending:
            oldest = next(iter(self._pending))            # a datagram whose fragments never all came
            del self._pending[oldest]
            self._size.pop(oldest, None)
        parts = self._pending.setdefault(key, {})
        parts[offset] = body
        if not more:
            self._size[key] = offset + len(body)
        size = self._size.get(key)
        if size is None or sum(len(b) for b in parts.values()) < size:
            return None
        del self._pending[key], self._size[key]
        return src, b''.join(parts[o] for o in sorted(parts))


def parse_rtps_copies(src: str, datagram: bytes, wall_s: float) -> list[Copy]:
    """The stamped DATA submessages of one UDP datagram (header and payload) from ``src``; [] if not RTPS."""
    if len(datagram) < 8 + 20:
        return []
    _sport, dport, ulen = struct.unpack_from('!HHH', datagram, 0)
    rtps = datagram[8:]
    if rtps[:4] != b'RTPS':
        return []
    prefix = rtps[8:20].hex()
    copies = []
    i = 20
    while i + 4 <= len(rtps):
        sub_id, flags = rtps[i], rtps[i + 1]
        end = '<' if flags & 0x01 else '>'
        length = struct.unpack_from(end + 'H', rtps, i + 2)[0]
        body = i + 4
        if sub_id in (RTPS_DATA, RTPS_DATA_FRAG) and body + 20 <= len(rtps):
            to_qos = struct.unpack_from(end + 'H', rtps, body + 2)[0]
            writer_id = rtps[body + 8:body + 12].hex()
            high, low = struct.unpack_from(end + 'iI', rtps, body + 12)
            first_fragment = sub_id == RTPS_DATA or struct.unpack_from(end + 'I', rtps, body + 20)[0] == 1
            has_data = bool(flags & 0x04) if sub_id == RTPS_DATA else True
            j = body + 4 + to_qos
            if flags & 0x02:                    # inline QoS: a parameter list up to PID_SENTINEL
                while j + 4 <= len(rtps):
                    pid, plen = struct.unpack_from(end + 'HH', rtps, j)
                    j += 4 + plen
                    if pid == 1:
                        break
            if has_data and first_fragment and j + 12 <= len(rtps):
                little = rtps[j + 1] & 0x01     # encapsulation: CDR_LE 0x0001, CDR_BE 0x0000 (+ XCDR2 kinds)
                sec, nsec = struct.unpack_from('<iI' if little else '>iI', rtps, j + 4)
                copies.append(Copy(wall_s, src, dport, prefix + writer_id, (high << 32) | low,
                                   sec * 1_000_000_000 + nsec, ulen))
        if length == 0:                         # the last submessage runs to the end of the message
            break
        i = body + length
    return copies


def delivery_times(copies: Sequence[Copy]) -> dict[int, float]:
    """stamp_ns -> when a RELIABLE reader could first have had it, wall seconds, from the copies one
    writer sent to that reader's port: the message's first arrival, or a later one's if an earlier
    sequence number arrived later still (in-order delivery holds it back)."""
    first: dict[int, Copy] = {}
    for c in copies:
        if c.seq not in first or c.wall_s < first[c.seq].wall_s:
            first[c.seq] = c
    out: dict[int, float] = {}
    held = float('-inf')
    for seq in sorted(first):
        held = max(held, first[seq].wall_s)
        out.setdefault(first[seq].stamp_ns, held)
    return out


class _StopOnSignals:
    """``requested`` turns True on SIGTERM or SIGINT (installed on construction): an agent's loop ends cleanly."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, _sig: int, _frame: object) -> None:
        self.requested = True


def wire_main(args: argparse.Namespace) -> int:
    stop = _StopOnSignals()
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))   # from the IP header on
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)    # a starved reader must not lose frames
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)            # the kernel's arrival time, not ours
    sock.bind((args.interface, 0))
    sock.settimeout(0.1)
    copies: list[Copy] = []
    reassembler = Reassembler()
    frames = 0
    _write(args.ready, 'ready')
    while not stop.requested:
        try:
            data, ancillary, _flags, addr = sock.recvmsg(1 << 16, 256)
        except (socket.timeout, InterruptedError):
            continue
        if addr[2] == PACKET_OUTGOING:
            continue
        frames += 1
        wall_s = time.time()
        for level, kind, cdata in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(cdata) >= 16:
                sec, nsec = struct.unpack('qq', cdata[:16])
                wall_s = sec + nsec * 1e-9
        datagram = reassembler.feed(data)
        if datagram is not None:
            copies.extend(parse_rtps_copies(*datagram, wall_s))
    # struct tpacket_stats {unsigned int tp_packets, tp_drops}: frames the socket's buffer had to drop
    _packets, dropped = struct.unpack('II', sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    sock.close()
    _write(args.out, json.dumps({'frames': frames, 'dropped': dropped, 'copies': [list(c) for c in copies]}))
    return 0


def replay_main(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.context import Context
    from rosgraph_msgs.msg import Clock

    from cooperative_fusion.app.player import BagPlayer, ReplayPublisher
    from cooperative_fusion.ros.bag import BagReader
    from cooperative_fusion.ros.time import ns_to_stamp

    ctx = Context()
    rclpy.init(context=ctx, args=['--ros-args', '-r', f'/clock:={args.clock_topic}'])
    node = rclpy.create_node(args.name, context=ctx)
    log = node.get_logger()
    try:
        with BagReader(args.bag) as reader:
            recorded = reader.topics()
            topics = {} if args.clock_only else {t: recorded[t] for t in args.topics}
            out = ReplayPublisher(node, topics)
            if not out.wait_for_subscribers(args.wait_s, ctx.ok, {out.clock_pub.topic_name: args.clock_subscribers}):
                log.warning(f'not every topic has a subscriber after {args.wait_s:.0f} s; playing anyway')
            _write(args.ready, 'ready')
            start_at = float(_wait_for_file(args.go, args.wait_s + 60.0))
            player = BagPlayer(reader, rate=args.rate, topics=None if args.clock_only else list(out.publishers),
                               clock=time.time)
            while time.time() < start_at:
                time.sleep(min(0.01, max(0.0, start_at - time.time())))
            player.wait_until(reader.start_time_ns)      # anchors the bag start to start_at
            last_clock_ns = None
            period_ns = int(args.clock_period * 1e9)
            for log_time_ns, topic, _msgtype, raw in player:
                if not player.wait_until(log_time_ns, ctx.ok):
                    break
                if not args.clock_only:
                    out.publish(log_time_ns, topic, raw)
                elif last_clock_ns is None or log_time_ns - last_clock_ns >= period_ns:
                    out.clock_pub.publish(Clock(clock=ns_to_stamp(log_time_ns)))
                    last_clock_ns = log_time_ns
            if args.clock_only:
                # run the clock on past the bag's end so timers fire and the last inputs are fused:
                # drain_s of bag time, then on until the --until file appears (the test has what it needs)
                end_ns = reader.end_time_ns
                i = 1
                while i <= int(args.drain_s / args.clock_period) or (
                        args.until is not None and not args.until.exists() and i * args.clock_period < args.wait_s):
                    t_ns = end_ns + i * period_ns
                    player.wait_until(t_ns, ctx.ok)
                    out.clock_pub.publish(Clock(clock=ns_to_stamp(t_ns)))
                    i += 1
            out.wait_for_acked(3.0)
            log.info(f'{args.name}: published {out.published} messages, wall lag at the end '
                     f'{time.time() - (player.due_wall_time(reader.end_time_ns) or time.time()):.3f} s')
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def probe_main(args: argparse.Namespace) -> int:
    import numpy as np
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import OccupancyGrid
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from cooperative_fusion.ros.qos import diagnostics_qos, evidence_qos, latched_qos

    stop = _StopOnSignals()
    ctx = Context()
    rclpy.init(context=ctx)
    # on the edge's sim clock, like fusion: evidence ages are measured as fusion measures them
    node = rclpy.create_node('netns_probe', context=ctx,
                             parameter_overrides=[Parameter('use_sim_time', Parameter.Type.BOOL, True)])
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    summary: dict = {'grids': [], 'evidence': {v: 0 for v in args.vehicles}, 'statuses': {},
                     'fusion_states': {v: [] for v in args.vehicles}, 'ready_wall_s': None,
                     'evidence_times': {v: [] for v in args.vehicles},
                     'fusion_series': {v: [] for v in args.vehicles}}
    t0 = time.monotonic()

    def on_grid(msg: OccupancyGrid) -> None:
        cells = np.frombuffer(bytes(msg.data), dtype=np.int8) if not isinstance(msg.data, np.ndarray) \
            else msg.data.astype(np.int8)
        summary['grids'].append({
            'stamp_ns': msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec,
            'frame_id': msg.header.frame_id, 'width': msg.info.width, 'height': msg.info.height,
            'occupied': int((cells >= 65).sum()), 'free': int(((cells >= 0) & (cells < 40)).sum()),
            'wall_s': time.monotonic() - t0, 'arrival_ns': node.get_clock().now().nanoseconds})

    def on_evidence(vid: str) -> object:
        def cb(msg: OccupancyGrid) -> None:
            summary['evidence'][vid] += 1
            stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            summary['evidence_times'][vid].append((stamp_ns * 1e-9, node.get_clock().now().nanoseconds * 1e-9))
        return cb

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for st in msg.status:
            values = {kv.key: kv.value for kv in st.values}
            summary['statuses'][st.name] = {'level': int.from_bytes(bytes(st.level), 'little') if not
                                            isinstance(st.level, int) else st.level,
                                            'message': st.message, 'values': values}
            for vid in args.vehicles:
                if st.name == f'fusion_node: {vid}':
                    summary['fusion_states'][vid].append(values.get('state', ''))
                    summary['fusion_series'][vid].append(
                        {'stamp_s': msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, **values})

    node.create_subscription(OccupancyGrid, '/cooperative/grid', on_grid, latched_qos())
    for vid in args.vehicles:
        node.create_subscription(OccupancyGrid, f'/{vid}/evidence_grid', on_evidence(vid), evidence_qos())
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, diagnostics_qos())

    def graph_ready() -> bool:
        names = {(ns, name) for name, ns in node.get_node_names_and_namespaces()}
        need = {('/', 'fusion_node'), ('/', 'twin_node')} | {(f'/{v}', 'vehicle_node') for v in args.vehicles}
        return need <= names and all(node.count_publishers(f'/{v}/evidence_grid') >= 1 for v in args.vehicles)

    def progress() -> dict:
        """What the test waits on: evidence seen here and fusion's latest count of it, per vehicle."""
        received = {}
        for vid in args.vehicles:
            series = summary['fusion_series'][vid]
            received[vid] = int(float(series[-1].get('received', 0))) if series else 0
        return {'evidence': dict(summary['evidence']), 'fusion_received': received, 'grids': len(summary['grids'])}

    next_progress = 0.0
    try:
        while not stop.requested and ctx.ok():
            executor.spin_once(timeout_sec=0.05)
            if summary['ready_wall_s'] is None and graph_ready():
                summary['ready_wall_s'] = time.monotonic() - t0
                _write(args.ready, 'ready')
            if args.progress is not None and time.monotonic() >= next_progress:
                _write(args.progress, json.dumps(progress()))
                next_progress = time.monotonic() + 0.2
        summary['graph'] = sorted(f'{ns.rstrip("/")}/{name}' for name, ns in node.get_node_names_and_namespaces())
        _write(args.out, json.dumps(summary, indent=1))
        return 0
    finally:
        executor.remove_node(node)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True)
    rp = sub.add_parser('replay')
    rp.add_argument('bag', type=Path)
    rp.add_argument('--topics', nargs='*', default=[])
    rp.add_argument('--clock-topic', default='/clock')
    rp.add_argument('--clock-only', action='store_true')
    rp.add_argument('--clock-subscribers', type=int, default=1,
                    help='wait for this many /clock subscriptions (every node on this host): one matched late '
                         'has no clock when the first messages come (its now is 0)')
    rp.add_argument('--clock-period', type=float, default=0.01, help='--clock-only: bag seconds between ticks')
    rp.add_argument('--drain-s', type=float, default=1.0, help='--clock-only: clock run on past the bag end')
    rp.add_argument('--until', type=Path, default=None,
                    help='--clock-only: after the drain, keep the clock running until this file exists')
    rp.add_argument('--rate', type=float, default=1.0)
    rp.add_argument('--name', default='replay')
    rp.add_argument('--ready', type=Path, required=True)
    rp.add_argument('--go', type=Path, required=True)
    rp.add_argument('--wait-s', type=float, default=40.0)
    pp = sub.add_parser('probe')
    pp.add_argument('--vehicles', nargs='+', required=True)
    pp.add_argument('--ready', type=Path, required=True)
    pp.add_argument('--out', type=Path, required=True)
    pp.add_argument('--progress', type=Path, default=None,
                    help='rewritten every 0.2 s: evidence counts here and fusion\'s latest received, per vehicle')
    wp = sub.add_parser('wire')
    wp.add_argument('--interface', default='eth0')
    wp.add_argument('--ready', type=Path, required=True)
    wp.add_argument('--out', type=Path, required=True)
    args = parser.parse_args(argv)
    return {'replay': replay_main, 'probe': probe_main, 'wire': wire_main}[args.command](args)


if __name__ == '__main__':
    sys.exit(main())
