"""Multi-host run: vehicles and the edge as separate hosts (network namespaces), real DDS discovery, 10 % loss.

Topology (:mod:`netns`): one namespace per vehicle and one ``edge``, each with
``eth0`` on 10.123.0.0/24, joined by a bridge in a switch namespace. Only the
namespaces hold these addresses; the test deletes them at the end, even on
failure. Loss: 10 % of the UDP datagrams each vehicle sends on ``eth0`` are
dropped by nftables (``numgen random mod 100 < 10 drop``): the wireless link
from the vehicles to the edge. Traffic inside a host (replay -> vehicle node) is
not impaired.

Per vehicle host: the vehicle node (the bringup's command line,
``config/vehicle.yaml`` + ``config/vehicles/<v>.yaml``, ``use_sim_time``) and a
replay of that vehicle's input topics from a simulated bag. At the edge: fusion
and twin nodes (their bringup command lines), a clock-only replay, the probe
(``netns_agents.py probe``) that counts what arrives there, and the wire agent
(``netns_agents.py wire``) that times every copy of a message reaching the edge's ``eth0``.

Each reader has its own copy of a message: the vehicle's writer sends one datagram per reader
participant (unicast), and the loss drops each on its own. A lost evidence grid is resent when
the reader NACKs the gap after a later heartbeat, and RELIABLE delivery holds the grids after it
until it comes. So the probe's copy can arrive at once where fusion's was resent, and the other way
round: the probe's arrival times say nothing about which grids fusion got late. Fusion's own copies
are timed on the wire, at its ports.

Fast DDS profiles: every process loads ``config/fastdds_live.xml`` (``FASTDDS_DEFAULT_PROFILES_FILE``),
whose default writer profile gives every writer a 50 ms heartbeat: a lost grid is resent within ~0.1 s.
With Fast DDS's default 3 s period (``CF_MULTIHOST_PROFILE=`` empty) it came 0.1-0.9 s later, in steps
of the 0.1 s grid period, and up to 3 s for the last grids of a stream (docs/limits.md, "Evidence over
a lossy link"). The test prints, per vehicle, the delay distribution of fusion's copies (stamp to its
socket) and the longest repair (fusion's copy after the first copy of the same grid at the edge).

Discovery: plain Fast DDS SPDP multicast, ``ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET``;
what makes it work between namespaces is a route for 224.0.0.0/4 via ``eth0``
in each namespace and a bridge that floods multicast (snooping off). No static
peers are needed, and discovery needs nothing from the XML profile. ``FASTDDS_BUILTIN_TRANSPORTS=UDPv4`` keeps the
shared-memory transport out (the namespaces share /dev/shm, so data could in
principle bypass the lossy link; measured with the default transports, Fast DDS
sent it over ``eth0`` anyway, so this is a guard); the nft counters check that
the data really crossed ``eth0``.

Clock: every host has its own /clock. Each vehicle's replay publishes it
remapped to ``/<v>/clock`` and the vehicle node subscribes there
(``-r /clock:=/<v>/clock``); the edge's clock-only replay publishes ``/clock`` for
fusion and twin. All replays anchor the bag start to one wall-clock instant
(the ``go`` file), so the hosts' sim clocks agree as NTP/PTP-synchronised
hosts' clocks would, and no /clock crosses the lossy link. (One shared /clock
from several replays would interleave slightly different times.)

Vehicles: 2 (v1, v2), not 4: with 4 vehicle nodes, 4 replays, fusion, twin and
the probe, two shared cores fall behind a rate-1.0 replay (test_multiprocess
needs rate 0.5 for 4 vehicles without the network); 2 vehicles at rate 1.0 is
the same load, and two vehicles are enough to show fusion across hosts.

Bounds asserted (bag: 3.5 s of highway_occlusion, common grid at 10 Hz of sim time). After the
replays, the edge clock runs on until the evidence at the edge and fusion's count of it have not
changed for 3 s (at most 30 s): a busy machine works off its queues instead of being cut short.
* discovery: the probe at the edge sees both vehicle nodes, fusion and twin
  on the graph, and every replay has its subscribers;
* >= 12 /cooperative/grid messages stamped up to 1 s past the last evidence, every one in frame ``map``
  and stamped at most 50 ms ahead of the edge clock at the probe (fusion's clock is the edge's);
* once fusion accepted >= 10 evidence grids, the best grid has >= 30 occupied (p >= 0.65) and
  >= 20000 free cells (measured: 37-88 occupied, up to ~107000 free);
* /diagnostics ``fusion_node: <v>`` leaves ``never_seen`` once fusion accepted evidence of <v>
  (on a starved CPU all of a vehicle's evidence can be late: seen once, 29 of 30);
  >= 20 evidence grids of each vehicle (of its 34 lidar cycles) reach the edge's probe;
  the wire agent saw at least as many reach fusion's ports as fusion ``received``;
  fusion ``received`` all of those but one, unless its measured backlog (:func:`max_backlog`:
  at fusion's socket, not yet received by fusion) outgrew its reader queue of
  ``qos.evidence_depth``: then messages were overwritten unread (seen on a starved CPU, fusion's
  10 Hz timers ahead of its evidence callbacks), and at least a queue's worth;
  ``received == accepted + drops.total``;
* ``too_old`` drops follow from the ages measured in the run (:func:`late_evidence`: the age of
  fusion's own copy when it could have it (:func:`fusion_arrivals`) plus fusion's measured lag behind
  its socket, against the age limit fusion had in force, never below ``fusion.max_age_s``), + 1;
  other drops <= 10 % of received.
  Without the profile some grids reach fusion later than the 0.5 s limit: over 10 runs on a shared machine
  (load 5-7) fusion dropped 1-9 grids a run, 37 in all; 31 were resent to fusion or held behind a resent
  one while the probe's copy was on time, 5 came late to both readers (sent late by the vehicle), and
  1 reached fusion's socket 3 ms inside the limit and was taken 19 ms later. With the profile: none in
  17 of 18 runs (load 4-9); the 18th (4 extra busy loops, edge clock 6 s behind) is the starved case
  below. On a busier machine the vehicle nodes and fusion fall behind the wall-clock replay and fusion
  rightly drops stale evidence (seen: 10 of 30, once 24 of 33), which a fixed share cannot allow for;
* with the profile, fusion's copy of every evidence grid comes at most ``REPAIR_MAX_S`` (0.3 s) after the
  grid's first copy reached the edge: the short heartbeat repairs a loss (measured 0-127 ms; with the 3 s
  default, 1-3124 ms and above 0.3 s in 9 of 10 runs);
* the link: each vehicle's nft counters show >= 300 datagrams and >= 1 MB sent
  on ``eth0`` (the evidence grids travelled over the emulated link; measured
  ~2500 and ~8.5 MB) and a dropped fraction in [4 %, 18 %] (10 % +- more than
  3 sigma at that count; measured 9.7 %, 9.7 %).
"""
from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import netns
from netns_agents import Copy, delivery_times
from processes import simulate_bag, stop

REPO = Path(__file__).resolve().parents[2]
AGENTS = Path(__file__).resolve().parent / 'netns_agents.py'
VEHICLES = ('v1', 'v2')
SIM_S = 3.5
RATE = 1.0
LOSS_PERCENT = 10
HOSTS = (*VEHICLES, 'edge')
#: the Fast DDS profiles every process loads (a 50 ms heartbeat for every writer: docs/reliability.md);
#: CF_MULTIHOST_PROFILE overrides it for measurements ('' = none: Fast DDS' defaults, docs/limits.md)
PROFILE = os.environ.get('CF_MULTIHOST_PROFILE', str(REPO / 'config' / 'fastdds_live.xml'))
#: fusion's link statistics window, evidence reader depth and evidence age limit before its link allowance
#: (config/fusion.yaml link.window_s, qos.evidence_depth, fusion.max_age_s)
LINK_WINDOW_S = 2.0
EVIDENCE_DEPTH = 10
MAX_AGE_S = 0.5
#: how far a common grid's stamp (fusion's clock) may be ahead of the edge clock when it arrives at the
#: probe: five /clock periods (measured: never ahead; the probe takes /clock before a message waiting with it,
#: but the replay may not yet have sent the probe its copy of the tick fusion stamped with)
CLOCK_AHEAD_TOL_S = 0.05
#: evidence grids fused (both vehicles) from which the common grid must show the scene
MIN_FUSED = 10
#: with PROFILE's 50 ms heartbeat: the longest fusion's copy of an evidence grid may come after the grid's first
#: copy reached the edge (lost and resent, or held behind one that was). Measured 0-127 ms over 24 vehicle streams,
#: load 4-9; with Fast DDS's default 3 s heartbeat 1-3124 ms, above 0.3 s in 9 of 10 runs (docs/limits.md).
REPAIR_MAX_S = 0.3


@pytest.fixture(scope='module')
def star():
    """The namespaces, created for this module and deleted afterwards (skip when they cannot be made)."""
    reason = netns.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    topo = netns.Star(prefix=f'cf{os.getpid()}', hosts=HOSTS)
    with topo:
        yield topo
    leftover = [n for n in subprocess.run(['ip', 'netns', 'list'], capture_output=True, text=True).stdout.split()
                if n.startswith(topo.prefix + '-')]
    assert not leftover, f'namespaces left behind: {leftover}'


@pytest.fixture(scope='module')
def net_bag(tmp_path_factory) -> Path:
    return simulate_bag(tmp_path_factory.mktemp('multihost') / 'scenario', seed=5, duration_s=SIM_S)


def _logs(logs: dict[str, Path]) -> str:
    return '\n'.join(f'--- {name}:\n' + path.read_text(errors='replace')[-1200:] for name, path in logs.items()
                     if path.exists())


def test_star_namespaces_are_isolated_and_linked(star):
    """The topology itself: each host reaches the others over the bridge, and nothing exists in the root namespace."""
    out = subprocess.run(star.exec_cmd('v1', ['ping', '-c', '1', '-W', '2', star.address('edge')]),
                         capture_output=True, text=True) if _have('ping') else None
    if out is not None:
        assert out.returncode == 0, out.stdout + out.stderr
    root_addrs = subprocess.run(['ip', '-o', 'addr'], capture_output=True, text=True).stdout
    assert netns.SUBNET + '.' not in root_addrs, f'a test address leaked into the root namespace:\n{root_addrs}'
    routes = netns.run(['ip', '-n', star.ns('v1'), 'route'])
    assert '224.0.0.0/4 dev eth0' in routes, routes


def fusion_arrivals(copies: list[Copy], ports: set[int], source: str, stamps_ns: set[int],
                    go_wall_s: float, bag_start_s: float) -> tuple[list[tuple[float, float]], int, float]:
    """When fusion's own copies of ``source``'s evidence grids reached the edge: ([(stamp, arrival)], behind,
    worst).

    copies : what the edge's wire agent saw (:func:`netns_agents.wire_main`)
    ports : fusion's UDP ports (its DDS participant's unicast locators)
    stamps_ns : the evidence stamps the probe received (they tell the evidence writer from the radar
        targets' writer, which shares them: of the writers carrying them, the one with the largest datagrams)
    arrival : :func:`netns_agents.delivery_times` (first arrival, held behind a resent earlier message),
        on the edge's sim clock (the replays anchor the bag start to the ``go`` wall time), seconds
    behind : messages fusion could have >= 0.1 s after their first copy (to any reader) reached the edge:
        its copy lost on the link and resent, or held behind one that was
    worst : the longest such wait, seconds (0 when every copy came with the first): how fast the link repairs a loss
    """
    sizes: dict[str, list[int]] = {}
    for c in copies:
        if c.src == source and c.stamp_ns in stamps_ns:
            sizes.setdefault(c.writer, []).append(c.size)
    if not sizes:
        return [], 0, 0.0
    writer = max(sizes, key=lambda w: sorted(sizes[w])[len(sizes[w]) // 2])
    first_at_edge: dict[int, float] = {}
    for c in copies:
        if c.writer == writer:
            first_at_edge[c.stamp_ns] = min(c.wall_s, first_at_edge.get(c.stamp_ns, c.wall_s))
    delivered = delivery_times([c for c in copies if c.writer == writer and c.dport in ports])
    times = [(stamp_ns * 1e-9, bag_start_s + (wall_s - go_wall_s) * RATE)
             for stamp_ns, wall_s in sorted(delivered.items())]
    waits = [wall_s - first_at_edge[stamp_ns] for stamp_ns, wall_s in delivered.items()]
    return times, sum(1 for w in waits if w >= 0.1), max(waits, default=0.0)


def late_evidence(times: list[tuple[float, float]], series: list[dict], window_s: float) -> tuple[int, float]:
    """How many evidence messages fusion may have found too old, from what was measured in the run.

    times : (stamp, arrival of fusion's copy at the edge) per message, sim seconds (:func:`fusion_arrivals`)
    series : fusion's per-vehicle statuses (stamp_s, link.latency_ms / link.latency_p95_ms over its
        last ``window_s`` of arrivals, link.evidence_max_age_s)
    Fusion takes a message later than it reached its socket (its own queue on a busy CPU). That lag is the
    largest excess of fusion's measured latency (median or p95) over the arrivals' over the same window.
    A message is late when its age on arrival plus that lag exceeds the smallest age limit fusion
    had in force. Returns (late messages, lag in seconds).
    """
    lag = 0.0
    limit = min((float(st['link.evidence_max_age_s']) for st in series if 'link.evidence_max_age_s' in st),
                default=0.0)
    for st in series:
        t = float(st['stamp_s'])
        ages = sorted(a - s for s, a in times if t - window_s < a <= t)
        if not ages:
            continue
        for key, q in (('link.latency_ms', 0.5), ('link.latency_p95_ms', 0.95)):
            fusion_ms = float(st.get(key, 'nan'))
            if math.isfinite(fusion_ms):
                lag = max(lag, fusion_ms * 1e-3 - ages[min(len(ages) - 1, int(q * len(ages)))])
    return sum(1 for s, a in times if a - s + lag > limit), lag


def max_backlog(times: list[tuple[float, float]], series: list[dict]) -> int:
    """Most evidence messages that had reached fusion's socket (``times`` as in :func:`late_evidence`) but
    not yet fusion (its ``received``) at one of fusion's statuses. Above fusion's reader depth, the oldest
    unread are overwritten."""
    arrivals = sorted(a for _s, a in times)
    return max((sum(1 for a in arrivals if a <= float(st['stamp_s'])) - int(float(st.get('received', 0)))
                for st in series), default=0)


def _wait_settled(progress: Path, quiet_s: float, max_s: float) -> bool:
    """Wait until the probe's progress (evidence at the edge, fusion's reported count of it) has not
    changed for ``quiet_s`` wall seconds (True), or ``max_s`` passed (False)."""
    start = last_change = time.monotonic()
    seen = None
    while time.monotonic() - start < max_s:
        try:
            now = json.loads(progress.read_text())
            now = (now['evidence'], now['fusion_received'])
        except (OSError, ValueError, KeyError):
            now = None
        if now != seen:
            seen, last_change = now, time.monotonic()
        elif now is not None and time.monotonic() - last_change >= quiet_s:
            return True
        time.sleep(0.1)
    return False


def _have(tool: str) -> bool:
    from shutil import which
    return which(tool) is not None


def test_platoon_across_namespaces_with_loss(tmp_path, star, net_bag):
    """Vehicles and edge on separate hosts over a 10 %-loss link keep the common grid flowing (bounds: module doc)."""
    from cooperative_fusion.app import platoon
    from cooperative_fusion.ros.bag import BagReader

    for v in VEHICLES:
        star.add_egress_loss(v, LOSS_PERCENT)
    domain = random.SystemRandom().randint(1, 200)
    env = {k: v for k, v in os.environ.items() if not k.startswith(('ROS_', 'FASTDDS_', 'FASTRTPS_', 'RMW_FASTRTPS_'))}
    env.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='SUBNET', FASTDDS_BUILTIN_TRANSPORTS='UDPv4',
               RMW_IMPLEMENTATION='rmw_fastrtps_cpp', PYTHONUNBUFFERED='1',
               **({'FASTDDS_DEFAULT_PROFILES_FILE': PROFILE} if PROFILE else {}),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH', '')])))
    cfg = platoon.load_platoon_config(None)
    specs = {(s.namespace.strip('/') or s.kind.executable): s for s in cfg.node_specs()}
    with BagReader(net_bag) as reader:
        recorded = reader.topics()
        bag_start_s = reader.start_time_ns * 1e-9
    go = tmp_path / 'go'
    stop_clock = tmp_path / 'stop_clock'
    probe_out = tmp_path / 'probe.json'
    progress = tmp_path / 'probe.progress'
    procs: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}

    def start(name: str, host: str, cmd: list[str]) -> None:
        logs[name] = tmp_path / f'{name}.log'
        with open(logs[name], 'w') as log:
            procs[name] = subprocess.Popen(star.exec_cmd(host, cmd), env=env, cwd=REPO, stdout=log,
                                           stderr=subprocess.STDOUT)

    def wait_for(predicate, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            dead = [n for n, p in procs.items() if p.poll() is not None and not n.startswith('replay')]
            assert not dead, f'{dead} exited ({[procs[n].returncode for n in dead]})\n{_logs(logs)}'
            assert time.monotonic() < deadline, f'{what} within {timeout_s:.0f} s\n{_logs(logs)}'
            time.sleep(0.05)

    t_start = time.monotonic()
    try:
        for v in VEHICLES:
            cmd = specs[v].command(sys.executable, use_sim_time=True) + ['-r', f'/clock:=/{v}/clock']
            start(f'vehicle_{v}', v, cmd)
        start('fusion', 'edge', specs['fusion_node'].command(sys.executable, use_sim_time=True))
        start('twin', 'edge', specs['twin_node'].command(sys.executable, use_sim_time=True))
        start('wire', 'edge', [sys.executable, str(AGENTS), 'wire', '--ready', str(tmp_path / 'wire.ready'),
                               '--out', str(tmp_path / 'wire.json')])
        start('probe', 'edge', [sys.executable, str(AGENTS), 'probe', '--vehicles', *VEHICLES,
                                '--ready', str(tmp_path / 'probe.ready'), '--out', str(probe_out),
                                '--progress', str(progress)])
        common = ['--go', str(go), '--rate', str(RATE), '--wait-s', '40']
        for v in VEHICLES:
            topics = sorted(t for t in recorded if t.startswith(f'/{v}/'))
            start(f'replay_{v}', v, [sys.executable, str(AGENTS), 'replay', str(net_bag), '--name', f'replay_{v}',
                                     '--topics', *topics, '--clock-topic', f'/{v}/clock',
                                     '--ready', str(tmp_path / f'replay_{v}.ready'), *common])
        # /clock for fusion, twin and the probe: all matched before the go (on a busy machine one matched
        # late had no clock yet when the first evidence came, and dropped it as from the future)
        start('replay_edge', 'edge', [sys.executable, str(AGENTS), 'replay', str(net_bag), '--name', 'replay_edge',
                                      '--clock-only', '--clock-subscribers', '3', '--until', str(stop_clock),
                                      '--ready', str(tmp_path / 'replay_edge.ready'), *common])
        readies = [tmp_path / f'{n}.ready'
                   for n in ('wire', 'probe', *(f'replay_{v}' for v in VEHICLES), 'replay_edge')]
        wait_for(lambda: all(r.exists() for r in readies), 60.0, 'discovery across the namespaces')
        t_ready = time.monotonic()
        tmp_go = go.with_suffix('.tmp')         # atomic: a replay must never read it half written
        go_wall_s = time.time() + 0.5
        tmp_go.write_text(f'{go_wall_s:.6f}')
        tmp_go.replace(go)
        replays = [procs[f'replay_{v}'] for v in VEHICLES]
        wait_for(lambda: all(p.poll() is not None for p in replays), SIM_S / RATE + 25.0, 'replays finished')
        assert all(p.returncode == 0 for p in replays), _logs(logs)
        t_played = time.monotonic()
        # The edge clock runs on until what was sent has been worked off: evidence still queued in a
        # vehicle node on a busy machine, retransmissions, and fusion's count of it in /diagnostics.
        settled = _wait_settled(progress, quiet_s=3.0, max_s=30.0)   # > 2 fusion status periods
        stop_clock.write_text('stop')
        wait_for(lambda: procs['replay_edge'].poll() is not None, 15.0, 'edge clock stopped')
        assert procs['replay_edge'].returncode == 0, _logs(logs)
        fusion_ports = netns.udp_ports(procs['fusion'].pid)
        (tmp_path / 'ports.json').write_text(json.dumps(  # kept with the logs
            {n: sorted(netns.udp_ports(procs[n].pid)) for n in ('fusion', 'probe')}))
        procs['probe'].send_signal(signal.SIGTERM)
        procs['probe'].wait(timeout=15.0)
        procs['wire'].send_signal(signal.SIGTERM)
        procs['wire'].wait(timeout=15.0)
        counters = {v: star.loss_counters(v) for v in VEHICLES}
    finally:
        stop(list(procs.values()), 10.0)

    summary = json.loads(probe_out.read_text())
    wire = json.loads((tmp_path / 'wire.json').read_text())
    copies = [Copy(*c) for c in wire['copies']]
    grids = summary['grids']
    statuses = summary['statuses']
    report = (f'startup+discovery {t_ready - t_start:.1f} s, replay {t_played - t_ready:.1f} s, settled {settled}; '
              f'{len(grids)} grids; evidence at edge {summary["evidence"]}; link {counters}; '
              f'fusion states { {v: sorted(set(s)) for v, s in summary["fusion_states"].items()} }')
    print(report)
    context = f'{report}\n{_logs(logs)}'

    assert settled, f'evidence still flowing, or fusion not counting it, 30 s after the replays\n{context}'
    # the grids of the bag's span and the drain (the clock ran on only to let the counts settle)
    end_s = (max(t for times in summary['evidence_times'].values() for t, _a in times) if any(
        summary['evidence_times'].values()) else 0.0) + 1.0
    grids = [g for g in grids if g['stamp_ns'] * 1e-9 <= end_s]
    assert len(grids) >= 12, context
    assert {g['frame_id'] for g in grids} == {'map'}, context
    # fusion judges ages on the edge's clock: its grids are not stamped ahead of it (a clock that ran ahead
    # would make fresh evidence too old)
    ahead_s = max(((g['stamp_ns'] - g['arrival_ns']) * 1e-9 for g in grids if g['arrival_ns'] > 0), default=0.0)
    assert ahead_s <= CLOCK_AHEAD_TOL_S, (ahead_s, context)
    fusion = {v: {k: float(x) for k, x in statuses[f'fusion_node: {v}']['values'].items()
                  if k in ('received', 'accepted', 'drops.total', 'drops.too_old')} for v in VEHICLES}
    if sum(f['accepted'] for f in fusion.values()) >= MIN_FUSED:
        best = max(grids, key=lambda g: g['occupied'])
        assert best['occupied'] >= 30 and best['free'] >= 20000, (best, context)
    for v in VEHICLES:
        values = fusion[v]
        assert summary['evidence'][v] >= 20, context
        if values['accepted'] > 0:        # fusion reports a vehicle it fused from as seen
            assert set(summary['fusion_states'][v]) - {'never_seen'}, (v, values, context)
        # Fusion's own copies, as they reached the edge: each reader gets its own copy of a message,
        # lost and resent on its own (the probe's copy may have come at once where fusion's was resent).
        stamps_ns = {round(t * 1e9) for t, _a in summary['evidence_times'][v]}
        times, behind, worst_s = fusion_arrivals(copies, fusion_ports, star.address(v), stamps_ns, go_wall_s,
                                                 bag_start_s)
        delays_ms = sorted((a - s) * 1e3 for s, a in times)
        if delays_ms:
            print(f'{v}: delay of fusion\'s copies (stamp to its socket) p50 {delays_ms[len(delays_ms) // 2]:.0f} / '
                  f'p90 {delays_ms[int(0.9 * (len(delays_ms) - 1))]:.0f} / max {delays_ms[-1]:.0f} ms over '
                  f'{len(delays_ms)}, {sum(d > MAX_AGE_S * 1e3 for d in delays_ms)} above {MAX_AGE_S} s; '
                  f'longest repair {worst_s * 1e3:.0f} ms; profile {PROFILE or "none"}; '
                  f'DELAYS {json.dumps([round(d, 1) for d in delays_ms])}')
        assert len(times) >= values['received'], (
            f'{v}: the wire agent saw {len(times)} evidence grids reach fusion, which received '
            f'{values["received"]:.0f} (ports {sorted(fusion_ports)}, {wire["frames"]} frames, '
            f'{wire["dropped"]} dropped by the socket)\n{context}')
        # fusion took what reached it, unless its measured backlog outgrew its reader queue
        backlog = max_backlog(times, summary['fusion_series'][v])
        need = len(times) - 1 if backlog <= EVIDENCE_DEPTH else min(len(times), EVIDENCE_DEPTH)
        print(f'{v}: fusion backlog up to {backlog} messages (reader depth {EVIDENCE_DEPTH})')
        assert values['received'] >= need, (values, backlog, context)
        assert values['received'] == values['accepted'] + values['drops.total'], (values, context)
        # too_old follows from the ages of fusion's copies measured in this run (+ 1: the lag is fusion's
        # p95 excess, one message may wait longer), not from a share that assumes an idle machine
        limits = [float(st['link.evidence_max_age_s']) for st in summary['fusion_series'][v]
                  if 'link.evidence_max_age_s' in st]
        assert limits and min(limits) >= MAX_AGE_S - 1e-9, (v, limits, context)   # the allowance only adds
        late, lag_s = late_evidence(times, summary['fusion_series'][v], LINK_WINDOW_S)
        probe_late, _ = late_evidence(summary['evidence_times'][v], summary['fusion_series'][v], LINK_WINDOW_S)
        print(f'{v}: {values}, {late} late by the ages of fusion\'s copies ({behind} resent or held; fusion '
              f'{lag_s * 1e3:.0f} ms behind its socket); {probe_late} by the probe\'s copies')
        assert values['drops.too_old'] <= late + 1, (v, values, late, lag_s, times, context)
        if PROFILE:       # a lost grid is repaired at the next short heartbeat, not the default 3 s one
            assert worst_s <= REPAIR_MAX_S, (v, worst_s, behind, context)
        assert values['drops.total'] - values['drops.too_old'] <= 0.1 * values['received'], (values, context)
        c = counters[v]
        assert c['sent_packets'] >= 300 and c['sent_bytes'] >= 1_000_000, (c, context)
        lost = c['lost_packets'] / c['sent_packets']
        assert 0.04 <= lost <= 0.18, (v, lost, c)
