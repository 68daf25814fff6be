"""Emulated hosts for multi-host tests: Linux network namespaces on one bridge, with egress loss.

A :class:`Star` is a set of host namespaces (``<prefix>-<host>``), each with
``lo`` and an ``eth0`` on ``10.123.0.0/24``, joined by a bridge ``br0`` in a
switch namespace (``<prefix>-sw``)::

    <prefix>-v1   eth0 10.123.0.11 ─┐
    <prefix>-v2   eth0 10.123.0.12 ─┤ br0 (<prefix>-sw)
    <prefix>-edge eth0 10.123.0.13 ─┘

Nothing is created in the root namespace: each veth pair is created inside its
host namespace with its peer moved straight into the switch namespace, so no
test address or interface ever exists outside the namespaces, and deleting the
namespaces removes every interface. Multicast (DDS discovery, SPDP on
239.255.0.1) works across hosts because each host routes 224.0.0.0/4 through
``eth0`` and the bridge floods multicast (IGMP snooping off).

Loss (:meth:`Star.add_egress_loss`) is an nftables rule on the host's output
hook for ``eth0`` only (``numgen random mod 100 < P drop``), with named counters
of the UDP datagrams sent and dropped. The output hook sees datagrams before IP
fragmentation, so a whole datagram is dropped or kept (as a lost radio frame
carrying a whole DDS datagram would be). Traffic between processes inside one
host goes over ``lo`` and is never dropped.

No cooperative_fusion import here: only ``ip`` and ``nft`` (iproute2, nftables), as root.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field

SUBNET = '10.123.0'
PREFIX_LEN = 24
FIRST_HOST = 11
LOSS_TABLE = 'cf_lossy'


class NetnsError(RuntimeError):
    """An ``ip`` / ``nft`` command failed; the message has the command and its stderr."""


def run(cmd: list[str], stdin: str | None = None) -> str:
    """Run ``cmd``; its stdout, or NetnsError with the command and stderr."""
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise NetnsError(f'{" ".join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}')
    return proc.stdout


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here (not root, no ``ip`` / ``nft``, ``ip netns add`` refused), else None."""
    if os.geteuid() != 0:
        return 'network namespaces need root (ip netns add); running as uid %d' % os.geteuid()
    for tool in ('ip', 'nft'):
        if shutil.which(tool) is None:
            return f'`{tool}` not found (install iproute2 and nftables)'
    probe = f'cfprobe-{os.getpid()}'
    try:
        run(['ip', 'netns', 'add', probe])
    except (NetnsError, OSError, subprocess.TimeoutExpired) as exc:
        return f'cannot create a network namespace: {exc}'
    try:
        run(['ip', 'netns', 'exec', probe, 'nft', 'list', 'ruleset'])
    except (NetnsError, OSError, subprocess.TimeoutExpired) as exc:
        return f'nftables does not work inside a network namespace: {exc}'
    finally:
        subprocess.run(['ip', 'netns', 'del', probe], capture_output=True)
    return None


@dataclass
class Star:
    """Host namespaces on one bridge. Use as a context manager: the namespaces go on exit, even on error.

    prefix : namespace name prefix, unique per test run (e.g. ``cf<pid>``)
    hosts : host names (<= 11 characters: the bridge port in the switch is named after the host)
    """

    prefix: str
    hosts: tuple[str, ...]
    created: list[str] = field(default_factory=list)

    def ns(self, host: str) -> str:
        """Namespace name of ``host`` (``'sw'``: the switch)."""
        return f'{self.prefix}-{host}'

    def address(self, host: str) -> str:
        """``eth0`` address of ``host``."""
        return f'{SUBNET}.{FIRST_HOST + self.hosts.index(host)}'

    def exec_cmd(self, host: str, cmd: list[str]) -> list[str]:
        """``cmd`` run inside ``host`` (``ip netns exec`` execs it: the process id is ``cmd``'s own)."""
        return ['ip', 'netns', 'exec', self.ns(host), *cmd]

    def _add_ns(self, name: str) -> None:
        run(['ip', 'netns', 'add', name])
        self.created.append(name)
        run(['ip', '-n', name, 'link', 'set', 'lo', 'up'])

    def create(self) -> 'Star':
        sw = self.ns('sw')
        self._add_ns(sw)
        run(['ip', '-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0'])
        run(['ip', '-n', sw, 'link', 'set', 'br0', 'up'])
        for host in self.hosts:
            if len(host) > 11:
                raise ValueError(f'host name {host!r} longer than 11 characters (an interface name)')
            name = self.ns(host)
            self._add_ns(name)
            run(['ip', '-n', name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', f'p-{host}', 'netns', sw])
            run(['ip', '-n', sw, 'link', 'set', f'p-{host}', 'master', 'br0'])
            run(['ip', '-n', sw, 'link', 'set', f'p-{host}', 'up'])
            run(['ip', '-n', name, 'addr', 'add', f'{self.address(host)}/{PREFIX_LEN}', 'dev', 'eth0'])
            run(['ip', '-n', name, 'link', 'set', 'eth0', 'up'])
            run(['ip', '-n', name, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0'])
        return self

    def destroy(self) -> list[str]:
        """Delete every namespace created (veths go with them); the errors, if any."""
        errors = []
        for name in reversed(self.created):
            proc = subprocess.run(['ip', 'netns', 'del', name], capture_output=True, text=True)
            if proc.returncode != 0:
                errors.append(f'ip netns del {name}: {proc.stderr.strip()}')
        self.created.clear()
        return errors

    def __enter__(self) -> 'Star':
        try:
            return self.create()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def add_egress_loss(self, host: str, percent: int) -> None:
        """Drop ``percent`` % of the UDP datagrams ``host`` sends on ``eth0`` (counters: :meth:`loss_counters`)."""
        if not 0 <= percent <= 100:
            raise ValueError(f'loss percent must be in [0, 100], got {percent}')
        ruleset = f'''
table inet {LOSS_TABLE} {{
  counter udp_out {{}}
  counter udp_lost {{}}
  chain egress {{
    type filter hook output priority 0; policy accept;
    oifname "eth0" meta l4proto udp counter name "udp_out"
    oifname "eth0" meta l4proto udp numgen random mod 100 < {percent} counter name "udp_lost" drop
  }}
}}
'''
        run(['ip', 'netns', 'exec', self.ns(host), 'nft', '-f', '-'], stdin=ruleset)

    def loss_counters(self, host: str) -> dict[str, int]:
        """``{'sent_packets', 'sent_bytes', 'lost_packets', 'lost_bytes'}`` of :meth:`add_egress_loss` so far.

        sent counts every UDP datagram offered to ``eth0``, the dropped ones included.
        """
        out = json.loads(run(['ip', 'netns', 'exec', self.ns(host), 'nft', '-j', 'list', 'counters']))
        counters = {c['counter']['name']: c['counter'] for c in out['nftables']
                    if 'counter' in c and c['counter'].get('table') == LOSS_TABLE}
        return {'sent_packets': counters['udp_out']['packets'], 'sent_bytes': counters['udp_out']['bytes'],
                'lost_packets': counters['udp_lost']['packets'], 'lost_bytes': counters['udp_lost']['bytes']}


def udp_ports(pid: int) -> set[int]:
    """Local UDP ports of the sockets process ``pid`` holds (read from /proc: its own network namespace's
    tables, matched by socket inode), e.g. a DDS participant's unicast ports."""
    inodes = set()
    fd_dir = f'/proc/{pid}/fd'
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[len('socket:['):-1])
    ports = set()
    for table in ('udp', 'udp6'):
        try:
            with open(f'/proc/{pid}/net/{table}') as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[9] in inodes:
                ports.add(int(cols[1].rsplit(':', 1)[1], 16))
    return ports
