"""Seeded fault models for the V2V link and the vehicle's own sensors (issue 7).

A :class:`FaultModel` decides, per message, what the network does to it:
when it is released (after delay + jitter), whether it is lost (random loss
plus Gilbert–Elliott burst loss), held back (reordered) or duplicated, and
whether the vehicle is silent at that moment. It also skews header stamps
(clock offset + drift) and biases odometry poses. The relay node
(``nodes/fault_injector.py``) applies these decisions; this module is pure.

Conventions (documented here once; ``config/faults/*.yaml`` follow them):

* Streams are named relative to the vehicle: ``evidence_grid``,
  ``radar/targets``, ``odom``, ``time_reference``. A link pattern
  (``fnmatch``: ``*`` matches anything, ``/`` included) selects streams; the
  first matching pattern of a vehicle wins; a stream no pattern matches
  passes unimpaired.
* Delay: ``delay_ms`` + jitter. ``jitter: uniform`` draws from
  ``[-jitter_ms, +jitter_ms]``; ``jitter: normal`` from N(0, jitter_ms²).
  The total is clipped at 0. Jitter never reorders a stream (a FIFO link: a
  message leaves no earlier than the one before it on the same stream);
  only ``reorder`` does: with that probability a message is held back by a
  further ``reorder_delay_ms`` and the FIFO rule is waived for it.
* Loss: Gilbert–Elliott two-state chain, one step per message *before* the
  loss draw: good -> burst with ``burst.p_enter``, burst -> good with
  ``burst.p_exit``; lost with probability ``loss`` in the good state and
  ``burst.loss`` in the burst state. Mean burst length ``1 / p_exit``
  messages; stationary burst share ``p_enter / (p_enter + p_exit)``.
* Duplicate: with probability ``duplicate`` a second copy is released, with
  its own delay draw (never before the original).
* Silence windows: ``[start_s, end_s)`` in seconds after the run's time
  origin (common time; the bringup sets the origin to the bag's start). A
  message *arriving* inside a window is lost on every stream.
* Clock skew: ``stamp + offset_ms + drift_ppm·1e-6·(stamp - origin)`` on the
  streams listed (default the common-time outputs ``evidence_grid`` and
  ``radar/targets``): a vehicle whose timebase mapping is off.
* Pose bias: odometry position += (dx_m, dy_m) in ``map``; heading +=
  dyaw_deg (rotation about map z at the vehicle's position). A localisation
  error, so it biases what the vehicle itself uses, not only what others see.

Determinism: every random draw comes from a counter-based hash (SplitMix64)
of (seed, vehicle id, stream, header stamp, repeat count of that stamp). A
message's fate therefore depends on the seed and the message, not on how
other streams interleave with it; only the burst state is carried from one
message of a stream to the next.
"""
from __future__ import annotations

import fnmatch
import math
import zlib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from numpy.typing import NDArray

from .config_files import read_yaml
from .errors import ConfigError

_NS_PER_MS = 1_000_000
_NS_PER_S = 1_000_000_000
_MASK64 = (1 << 64) - 1
#: The streams a fault injector relays, relative to the vehicle namespace.
STREAMS = ('evidence_grid', 'radar/targets', 'odom', 'time_reference')
#: Streams whose stamps are in common time: the default targets of clock skew.
COMMON_TIME_STREAMS = ('evidence_grid', 'radar/targets')


class Jitter(str, Enum):
    """Distribution of the jitter added to ``delay_ms``."""

    UNIFORM = 'uniform'   # uniform on [-jitter_ms, +jitter_ms]
    NORMAL = 'normal'     # normal, standard deviation jitter_ms


@dataclass(frozen=True)
class BurstLoss:
    """Gilbert–Elliott burst state: entered with p_enter, left with p_exit (per message), loss inside it."""

    p_enter: float = 0.0
    p_exit: float = 1.0
    loss: float = 1.0


@dataclass(frozen=True)
class LinkFaults:
    """Network impairments of the streams matching ``pattern`` (milliseconds, probabilities in [0, 1])."""

    pattern: str = '*'
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    jitter: Jitter = Jitter.UNIFORM
    loss: float = 0.0
    burst: BurstLoss | None = None
    reorder: float = 0.0
    reorder_delay_ms: float = 50.0
    duplicate: float = 0.0

    def matches(self, stream: str) -> bool:
        return fnmatch.fnmatchcase(stream, self.pattern)


@dataclass(frozen=True)
class ClockSkew:
    """Stamp offset (ms) and drift (ppm) added to the header stamps of ``streams``."""

    offset_ms: float = 0.0
    drift_ppm: float = 0.0
    streams: tuple[str, ...] = COMMON_TIME_STREAMS

    @property
    def active(self) -> bool:
        return self.offset_ms != 0.0 or self.drift_ppm != 0.0


@dataclass(frozen=True)
class PoseBias:
    """Odometry bias: position + (dx_m, dy_m) in map, heading + dyaw_deg."""

    dx_m: float = 0.0
    dy_m: float = 0.0
    dyaw_deg: float = 0.0

    @property
    def active(self) -> bool:
        return self.dx_m != 0.0 or self.dy_m != 0.0 or self.dyaw_deg != 0.0


@dataclass(frozen=True)
class SilenceWindow:
    """The vehicle is silent for arrivals in [start_s, end_s), seconds after the time origin."""

    start_s: float
    end_s: float


@dataclass(frozen=True)
class FaultSpec:
    """Every fault of one vehicle. ``links``: first matching pattern wins."""

    links: tuple[LinkFaults, ...] = ()
    clock_skew: ClockSkew = field(default_factory=ClockSkew)
    pose_bias: PoseBias = field(default_factory=PoseBias)
    silence: tuple[SilenceWindow, ...] = ()

    def link(self, stream: str) -> LinkFaults | None:
        """The link faults of ``stream`` (first matching pattern), None when it passes unimpaired."""
        for link in self.links:
            if link.matches(stream):
                return link
        return None


@dataclass(frozen=True)
class FaultsConfig:
    """A validated ``config/faults/*.yaml``.

    seed : base seed of every model
    all_vehicles : spec for every vehicle of the platoon (None: only ``vehicles`` get faults)
    vehicles : vehicle id -> spec (``all_vehicles`` merged under it, key by key)
    """

    path: Path | None
    seed: int = 0
    all_vehicles: FaultSpec | None = None
    vehicles: Mapping[str, FaultSpec] = field(default_factory=dict)

    def for_vehicle(self, vehicle_id: str) -> FaultSpec | None:
        """The spec of ``vehicle_id``; None when the file leaves that vehicle alone."""
        spec = self.vehicles.get(vehicle_id)
        return spec if spec is not None else self.all_vehicles

    def faulted(self, vehicle_ids: tuple[str, ...] | list[str]) -> list[str]:
        """The ids among ``vehicle_ids`` that get a fault injector, in their order."""
        return [v for v in vehicle_ids if self.for_vehicle(v) is not None]


# ------------------------------------------------------------------ model --

def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


@dataclass
class _StreamState:
    burst: bool = False
    last_release_ns: int = -1
    last_stamp_ns: int | None = None
    repeat: int = 0


class FaultModel:
    """Per-message decisions of one vehicle's faults; deterministic for a seed (see the module docstring).

    spec : the vehicle's faults; seed : int; vehicle_id : mixed into the seed
    origin_ns : common time (ns) of the run start, the zero of silence windows and
        skew drift; None: the ``now_ns`` of the first :meth:`decide` call
    """

    def __init__(self, spec: FaultSpec, seed: int = 0, vehicle_id: str = '', origin_ns: int | None = None) -> None:
        self.spec = spec
        self._key = _splitmix64((int(seed) & _MASK64) ^ (_crc(vehicle_id) << 32))
        self.origin_ns = origin_ns
        self._streams: dict[str, _StreamState] = {}

    def _uniforms(self, stream: str, stamp_ns: int, repeat: int, n: int) -> list[float]:
        base = _splitmix64(self._key ^ _crc(stream))
        base = _splitmix64(base ^ (int(stamp_ns) & _MASK64))
        base = _splitmix64(base ^ repeat)
        return [(_splitmix64(base + i) >> 11) * (1.0 / (1 << 53)) for i in range(n)]

    def silent(self, now_ns: int) -> bool:
        """True when ``now_ns`` (common time) falls in a silence window."""
        if not self.spec.silence:
            return False
        if self.origin_ns is None:
            self.origin_ns = int(now_ns)
        t = (int(now_ns) - self.origin_ns) / _NS_PER_S
        return any(w.start_s <= t < w.end_s for w in self.spec.silence)

    @staticmethod
    def _jitter_ns(link: LinkFaults, u1: float, u2: float) -> float:
        if link.jitter_ms <= 0:
            return 0.0
        if link.jitter is Jitter.UNIFORM:
            return (2.0 * u1 - 1.0) * link.jitter_ms * _NS_PER_MS
        # Box–Muller; 1 - u1 lies in (0, 1]
        return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2) * link.jitter_ms * _NS_PER_MS

    def decide(self, stream: str, stamp_ns: int, now_ns: int) -> list[int]:
        """Release times (ns, node clock) of a message of ``stream`` stamped ``stamp_ns`` arriving at ``now_ns``.

        [] : lost (random, burst or silence); one time : delivered; two : duplicated.
        ``stamp_ns`` (the header stamp) keys the random draws, so the same message gets the same fate.
        """
        now_ns = int(now_ns)
        if self.origin_ns is None:
            self.origin_ns = now_ns
        st = self._streams.setdefault(stream, _StreamState())
        st.repeat = st.repeat + 1 if st.last_stamp_ns == stamp_ns else 0
        st.last_stamp_ns = stamp_ns
        if self.silent(now_ns):
            return []
        link = self.spec.link(stream)
        if link is None:
            st.last_release_ns = max(st.last_release_ns, now_ns)
            return [now_ns]
        u = self._uniforms(stream, stamp_ns, st.repeat, 9)
        if link.burst is not None:
            st.burst = (u[0] >= link.burst.p_exit) if st.burst else (u[0] < link.burst.p_enter)
        p_loss = link.burst.loss if (link.burst is not None and st.burst) else link.loss
        if u[1] < p_loss:
            return []
        base_ns = link.delay_ms * _NS_PER_MS
        release = now_ns + int(round(max(0.0, base_ns + self._jitter_ns(link, u[2], u[3]))))
        if u[4] < link.reorder:
            release += int(round(link.reorder_delay_ms * _NS_PER_MS))   # held back; later ones overtake it
        else:
            release = max(release, st.last_release_ns)                   # FIFO: jitter does not reorder
            st.last_release_ns = release
        releases = [release]
        if u[5] < link.duplicate:
            copy = now_ns + int(round(max(0.0, base_ns + self._jitter_ns(link, u[6], u[7]))))
            releases.append(max(copy, release))
        return releases

    def skew_stamp(self, stream: str, stamp_ns: int) -> int:
        """``stamp_ns`` with the clock skew applied when ``stream`` is one it targets (ns)."""
        skew = self.spec.clock_skew
        if not skew.active or stream not in skew.streams:
            return int(stamp_ns)
        origin = self.origin_ns if self.origin_ns is not None else int(stamp_ns)
        offset = skew.offset_ms * _NS_PER_MS + skew.drift_ppm * 1e-6 * (int(stamp_ns) - origin)
        return max(0, int(stamp_ns) + int(round(offset)))


def apply_pose_bias(position: NDArray[np.float64], quat_wxyz: NDArray[np.float64],
                    bias: PoseBias) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Biased (position (3,) metres in map, unit quaternion (4,) w, x, y, z base_link -> map).

    Position + (dx_m, dy_m, 0); orientation turned by dyaw_deg about map z
    (left-multiplied, so the vehicle's heading changes by exactly dyaw_deg).
    """
    pos = np.array(position, dtype=np.float64, copy=True)
    pos[0] += bias.dx_m
    pos[1] += bias.dy_m
    half = 0.5 * math.radians(bias.dyaw_deg)
    cz, sz = math.cos(half), math.sin(half)
    w, x, y, z = (float(v) for v in quat_wxyz)
    # (cz, 0, 0, sz) * (w, x, y, z)
    quat = np.array([cz * w - sz * z, cz * x - sz * y, cz * y + sz * x, cz * z + sz * w], dtype=np.float64)
    return pos, quat


# ----------------------------------------------------------------- config --

_TOP = {'seed', 'all_vehicles', 'vehicles'}
_SPEC = {'links', 'clock_skew', 'pose_bias', 'silence'}
_LINK = {'delay_ms', 'jitter_ms', 'jitter', 'loss', 'burst', 'reorder', 'reorder_delay_ms', 'duplicate'}
_BURST = {'p_enter', 'p_exit', 'loss'}
_SKEW = {'offset_ms', 'drift_ppm', 'streams'}
_BIAS = {'dx_m', 'dy_m', 'dyaw_deg'}
_WINDOW = {'start_s', 'end_s'}


class _Loader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f'{self.path}: {key}: {problem}')

    def mapping(self, raw: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise self.fail(key, f'expected a mapping, got {type(raw).__name__} {raw!r}')
        for k in raw:
            if k not in allowed:
                raise self.fail(f'{key}.{k}' if key else str(k), f'unknown key; expected one of {sorted(allowed)}')
        return raw

    def number(self, raw: dict[str, Any], name: str, key: str, default: float, lo: float, hi: float,
               lo_open: bool = False) -> float:
        value = raw.get(name, default)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if ok:
            ok = (value > lo if lo_open else value >= lo) and value <= hi
        if not ok:
            interval = f'{"(" if lo_open else "["}{lo:g}, {hi:g}]'
            raise self.fail(f'{key}.{name}', f'expected a number in {interval}, got {value!r}')
        return float(value)

    def prob(self, raw: dict[str, Any], name: str, key: str, default: float) -> float:
        return self.number(raw, name, key, default, 0.0, 1.0)

    def link(self, pattern: Any, raw: Any, key: str) -> LinkFaults:
        if not isinstance(pattern, str) or not pattern:
            raise self.fail(key, f'expected a stream pattern such as evidence_grid or *, got {pattern!r}')
        key = f'{key}.{pattern}'
        raw = self.mapping(raw, key, _LINK)
        jitter = raw.get('jitter', Jitter.UNIFORM.value)
        try:
            jitter_kind = Jitter(jitter)
        except ValueError:
            raise self.fail(f'{key}.jitter', f'expected one of {[j.value for j in Jitter]}, got {jitter!r}') from None
        burst = None
        if raw.get('burst') is not None:
            b = self.mapping(raw['burst'], f'{key}.burst', _BURST)
            burst = BurstLoss(p_enter=self.prob(b, 'p_enter', f'{key}.burst', 0.0),
                              p_exit=self.number(b, 'p_exit', f'{key}.burst', 1.0, 0.0, 1.0, lo_open=True),
                              loss=self.prob(b, 'loss', f'{key}.burst', 1.0))
        return LinkFaults(pattern=pattern, delay_ms=self.number(raw, 'delay_ms', key, 0.0, 0.0, 60_000.0),
                          jitter_ms=self.number(raw, 'jitter_ms', key, 0.0, 0.0, 60_000.0), jitter=jitter_kind,
                          loss=self.prob(raw, 'loss', key, 0.0), burst=burst,
                          reorder=self.prob(raw, 'reorder', key, 0.0),
                          reorder_delay_ms=self.number(raw, 'reorder_delay_ms', key, 50.0, 0.0, 60_000.0),
                          duplicate=self.prob(raw, 'duplicate', key, 0.0))

    def spec(self, raw: Any, key: str) -> dict[str, Any]:
        """The parsed pieces of one vehicle's spec (only the keys present, for merging)."""
        raw = self.mapping(raw, key, _SPEC)
        out: dict[str, Any] = {}
        if 'links' in raw:
            links = raw['links']
            if links is None:
                links = {}
            if not isinstance(links, dict):
                raise self.fail(f'{key}.links', f'expected a mapping of stream pattern -> faults, got {links!r}')
            out['links'] = tuple(self.link(p, body, f'{key}.links') for p, body in links.items())
        if 'clock_skew' in raw:
            s = self.mapping(raw['clock_skew'], f'{key}.clock_skew', _SKEW)
            streams = s.get('streams', list(COMMON_TIME_STREAMS))
            if (not isinstance(streams, list) or not streams
                    or not all(isinstance(x, str) and x in STREAMS for x in streams)):
                raise self.fail(f'{key}.clock_skew.streams', f'expected a non-empty list of {list(STREAMS)}, '
                                                             f'got {streams!r}')
            out['clock_skew'] = ClockSkew(
                offset_ms=self.number(s, 'offset_ms', f'{key}.clock_skew', 0.0, -3_600_000.0, 3_600_000.0),
                drift_ppm=self.number(s, 'drift_ppm', f'{key}.clock_skew', 0.0, -1e5, 1e5), streams=tuple(streams))
        if 'pose_bias' in raw:
            b = self.mapping(raw['pose_bias'], f'{key}.pose_bias', _BIAS)
            out['pose_bias'] = PoseBias(*(self.number(b, n, f'{key}.pose_bias', 0.0, -1e4, 1e4)
                                          for n in ('dx_m', 'dy_m')),
                                        self.number(b, 'dyaw_deg', f'{key}.pose_bias', 0.0, -180.0, 180.0))
        if 'silence' in raw:
            windows = raw['silence'] or []
            if not isinstance(windows, list):
                raise self.fail(f'{key}.silence', f'expected a list of {{start_s, end_s}}, got {windows!r}')
            parsed = []
            for i, w in enumerate(windows):
                wk = f'{key}.silence[{i}]'
                w = self.mapping(w, wk, _WINDOW)
                for n in ('start_s', 'end_s'):
                    if n not in w:
                        raise self.fail(f'{wk}.{n}', 'missing; a silence window needs start_s and end_s (seconds '
                                                      'after the run start)')
                start = self.number(w, 'start_s', wk, 0.0, 0.0, 1e7)
                end = self.number(w, 'end_s', wk, 0.0, 0.0, 1e7)
                if end <= start:
                    raise self.fail(f'{wk}.end_s', f'expected end_s > start_s ({start:g}), got {end:g}')
                parsed.append(SilenceWindow(start, end))
            out['silence'] = tuple(parsed)
        return out


def load_faults(path: str | Path) -> FaultsConfig:
    """Read and validate a faults file (see ``config/faults/``).

    Raises ConfigError naming the file, the key path (``vehicles.v1.links.odom.loss``) and the bad value.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f'{path}: faults file does not exist')
    raw = read_yaml(path, 'faults file')
    loader = _Loader(path)
    if not isinstance(raw, dict):
        raise ConfigError(f'{path}: expected a mapping at the top level, got {type(raw).__name__}')
    raw = loader.mapping(raw, '', _TOP)
    seed = raw.get('seed', 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise loader.fail('seed', f'expected an integer >= 0, got {seed!r}')
    base: dict[str, Any] | None = None
    if raw.get('all_vehicles') is not None:
        base = loader.spec(raw['all_vehicles'], 'all_vehicles')
    vehicles_raw = raw.get('vehicles') or {}
    if not isinstance(vehicles_raw, dict):
        raise loader.fail('vehicles', f'expected a mapping of vehicle id -> faults, got {vehicles_raw!r}')
    vehicles: dict[str, FaultSpec] = {}
    for vid, body in vehicles_raw.items():
        if not isinstance(vid, str) or not vid or not (vid[0].isalpha() and vid.replace('_', 'a').isalnum()):
            raise loader.fail('vehicles', f'expected vehicle ids like v1, got {vid!r}')
        pieces = dict(base or {})
        pieces.update(loader.spec(body, f'vehicles.{vid}'))
        vehicles[vid] = FaultSpec(**pieces)
    if base is None and not vehicles:
        raise loader.fail('vehicles', 'no faults: set all_vehicles or name at least one vehicle')
    return FaultsConfig(path=path, seed=seed, all_vehicles=FaultSpec(**base) if base is not None else None,
                        vehicles=vehicles)
