"""An animated GIF of a run: the common grid, the platoon, the truth, the twin's tracks and warnings.

One frame every ``period_s`` of sim time (about 60 frames for a run, 0.2 to
0.5 s apart), over a window that follows the platoon (the evaluation ROI:
20 m behind the last vehicle to 100 m ahead of the leader, 10.5 m either side).
Each frame shows

- the newest ``/cooperative/grid`` published at or before the frame time: grey
  levels (white free, black occupied), unknown cells (and outside the grid) blue;
- the platoon vehicles (``/truth/objects`` boxes of the ids in
  ``/truth/scenario``'s ``vehicle_ids``, else of the ``/truth/odom/<v>``
  topics), filled green and labelled v1, v2, ...;
- hazards as red outlines, other traffic as blue outlines (truth);
- the twin's tracks (``tracks`` CUBE markers of the newest ``/twin/markers``)
  as dashed cyan outlines;
- the warnings of the newest ``/twin/warnings`` (at most 1 s old): a vehicle
  with a WARN status is filled orange, with an ERROR status red, and
  labelled with its smallest ``ttc x.x s``;
- a title with the scenario time (common time minus the scenario's start);
- when the result bag has ``/<v>/cooperative/cmd`` (closed loop), a panel in the
  lower right corner (ahead of the platoon): each platoon vehicle's commanded speed (``linear.x`` of
  the newest command, at most 1 s old) next to its true speed (its
  ``/truth/objects`` velocity along its heading).

Frames are drawn with matplotlib (Agg) into one reused figure and written with
Pillow (adaptive palette per frame, optimised, looping). Top-level imports stay
light; numpy, matplotlib, Pillow, rclpy and rosbags load when used.
"""
from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from ..core.errors import BagError, ConfigError, CooperativeFusionError, OutputError
from ..ros.names import (COMMON_GRID, COOPERATIVE_CMD, MARKERS as TWIN_MARKERS, TRUTH_OBJECTS, TRUTH_ODOM_PREFIX,
                         TRUTH_SCENARIO, WARNINGS)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from ..core.evaluation import RoiConfig
    from ..core.grid import GridSpec
    from ..core.metrics import Box

#: Namespace of the twin's track footprints in /twin/markers (ros/markers.py).
TRACKS_NS = 'tracks'

PLATOON_RGB = (31, 158, 58)
WARN_RGB = (255, 140, 0)
ERROR_RGB = (230, 0, 0)
HAZARD_RGB = (214, 39, 40)
OTHER_RGB = (31, 95, 214)
TRACK_RGB = (0, 190, 230)
#: Unknown cells (and everything outside the grid): a blue clearly apart from the grey levels.
UNKNOWN_RGB = (150, 182, 225)
#: Warnings and tracks older than this at a frame's time are not drawn.
MAX_OVERLAY_AGE_S = 1.0
#: A grid older than this at a frame's time is noted in the title.
GRID_AGE_NOTE_S = 0.5
#: Frames are spaced so a run gives about this many, within [MIN_PERIOD_S, MAX_PERIOD_S].
TARGET_FRAMES = 60
MIN_PERIOD_S = 0.2
MAX_PERIOD_S = 0.5
MAX_FRAMES = 80
#: ``/<v>/cooperative/cmd``, group 1 = vehicle id.
_CMD_RE = re.compile(rf'^/([^/]+)/{re.escape(COOPERATIVE_CMD)}$')


#: White backing of the vehicle labels, so they read over the grid and the outlines.
_LABEL_BOX = {'facecolor': 'white', 'alpha': 0.75, 'edgecolor': 'none', 'pad': 0.8}


def _hex(rgb: Sequence[int]) -> str:
    return '#%02x%02x%02x' % tuple(int(c) for c in rgb)


@dataclass(frozen=True)
class VehicleWarning:
    """A platoon vehicle's warning at a frame: level ``'WARN'`` or ``'ERROR'``, smallest ttc (s, None if unknown)."""

    level: str
    ttc_s: float | None = None


@dataclass(frozen=True)
class VehicleSpeed:
    """A platoon vehicle's speeds at a frame, m/s: true (along its heading) and commanded (None when no
    command at most 1 s old)."""

    true_mps: float
    cmd_mps: float | None = None


@dataclass(frozen=True)
class Frame:
    """Everything drawn in one frame (``map`` metres).

    t_s : time shown in the title, seconds
    view : x0, x1, y0, y1 of the window drawn
    spec, cells : the common grid (cells (height, width) int8 percent, -1 unknown) or None
    platoon, hazards, others, tracks : boxes; platoon boxes carry the vehicle id
    warnings : vehicle id -> VehicleWarning
    speeds : vehicle id -> VehicleSpeed (closed-loop runs; empty: no speed panel)
    note : extra text for the title ('' for none)
    """

    t_s: float
    view: tuple[float, float, float, float]
    spec: 'GridSpec | None' = None
    cells: 'NDArray[np.int8] | None' = None
    platoon: tuple['Box', ...] = ()
    hazards: tuple['Box', ...] = ()
    others: tuple['Box', ...] = ()
    tracks: tuple['Box', ...] = ()
    warnings: Mapping[str, VehicleWarning] = field(default_factory=dict)
    speeds: Mapping[str, VehicleSpeed] = field(default_factory=dict)
    note: str = ''


@dataclass(frozen=True)
class AnimationSummary:
    """What :func:`animate_run` wrote: path, frame count, frame spacing (sim s), file size, wall seconds."""

    path: Path
    frames: int
    period_s: float
    bytes: int
    wall_s: float

    def line(self) -> str:
        return (f'{self.path}: {self.frames} frames every {self.period_s:.2f} s, '
                f'{self.bytes / 1e6:.1f} MB, {self.wall_s:.1f} s')


# -------------------------------------------------------------------------------- rendering

def speed_panel_lines(speeds: Mapping[str, VehicleSpeed]) -> list[str]:
    """The speed panel's text: a header and one line per vehicle (sorted by id); none without speeds."""
    if not speeds:
        return []
    lines = ['speed m/s   cmd   true']
    for vid in sorted(speeds):
        sp = speeds[vid]
        cmd = f'{"--":>5}' if sp.cmd_mps is None else f'{sp.cmd_mps:5.1f}'
        lines.append(f'{vid:<9} {cmd}  {sp.true_mps:5.1f}')
    return lines


def grid_rgb(cells: 'NDArray[np.integer]') -> 'NDArray[np.float32]':
    """(H, W, 3) float32 image of OccupancyGrid cells: grey level 1 - p (as in the evaluation plots),
    unknown (-1) in UNKNOWN_RGB."""
    import numpy as np

    from .plots import cells_to_rgb

    cells = np.asarray(cells)
    rgb = cells_to_rgb(cells)
    rgb[(cells < 0) | (cells > 100)] = np.asarray(UNKNOWN_RGB, dtype=np.float32) / 255.0
    return rgb


class FrameRenderer:
    """Draws :class:`Frame` s into RGB arrays with one reused matplotlib figure.

    view_size_m : (width, height) of every frame's window, metres (frames keep one scale)
    width_px : image width; the height follows the window's aspect (plus title and legend)
    title : text in front of the time in every title (e.g. the scenario name)
    """

    def __init__(self, view_size_m: tuple[float, float], width_px: int = 1200, title: str = '') -> None:
        import matplotlib

        matplotlib.use('Agg')
        from matplotlib.collections import PolyCollection
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        unknown = tuple(c / 255.0 for c in UNKNOWN_RGB)
        w_m, h_m = view_size_m
        if not (math.isfinite(w_m) and math.isfinite(h_m) and w_m > 0 and h_m > 0):
            raise ConfigError(f'animation window must be a finite positive size, got {w_m} x {h_m} m')
        if width_px < 200:
            raise ConfigError(f'animation width must be at least 200 px, got {width_px}')
        self.view_size_m = (float(w_m), float(h_m))
        self.title = title
        dpi = 100
        axes_w_in = 0.94 * width_px / dpi
        axes_h_in = min(max(axes_w_in * h_m / w_m, 0.8), 8.0)
        top_in, bottom_in = 0.35, 0.45
        self.fig = Figure(figsize=(width_px / dpi, axes_h_in + top_in + bottom_in), dpi=dpi)
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(self.fig)
        fig_h = axes_h_in + top_in + bottom_in
        self.ax = ax = self.fig.add_axes((0.03, bottom_in / fig_h, 0.94, axes_h_in / fig_h))
        ax.set_facecolor(unknown)       # outside the grid nothing is known
        ax.set_aspect('auto')
        ax.tick_params(labelsize=7, length=2, pad=1)
        self._image = ax.imshow([[unknown]], origin='lower', interpolation='nearest', extent=(0, 1, 0, 1),
                                zorder=0)
        self._others = PolyCollection([], facecolors='none', edgecolors=_hex(OTHER_RGB), linewidths=1.0, zorder=2)
        self._hazards = PolyCollection([], facecolors='none', edgecolors=_hex(HAZARD_RGB), linewidths=1.6,
                                       zorder=3)
        self._platoon = PolyCollection([], edgecolors='black', linewidths=0.6, zorder=4)
        self._tracks = PolyCollection([], facecolors='none', edgecolors=_hex(TRACK_RGB), linewidths=1.1,
                                      linestyles='--', zorder=5)
        for coll in (self._others, self._hazards, self._platoon, self._tracks):
            ax.add_collection(coll)
        self._texts: list[Any] = []
        self._panel = ax.text(0.995, 0.025, '', transform=ax.transAxes, ha='right', va='bottom', fontsize=7,
                              family='monospace', zorder=7, bbox=_LABEL_BOX, visible=False)
        self._title = self.fig.text(0.5, 1.0 - 0.06 / fig_h, '', ha='center', va='top', fontsize=10)
        handles = [Patch(facecolor=_hex(PLATOON_RGB), label='platoon'),
                   Patch(facecolor=_hex(WARN_RGB), label='WARN'),
                   Patch(facecolor=_hex(ERROR_RGB), label='ERROR'),
                   Patch(facecolor='none', edgecolor=_hex(HAZARD_RGB), label='hazard (truth)'),
                   Patch(facecolor='none', edgecolor=_hex(OTHER_RGB), label='traffic (truth)'),
                   Line2D([], [], color=_hex(TRACK_RGB), linestyle='--', label='twin track'),
                   Patch(facecolor='white', edgecolor='grey', label='free'),
                   Patch(facecolor='black', label='occupied'),
                   Patch(facecolor=unknown, edgecolor='grey', label='unknown')]
        self.fig.legend(handles=handles, loc='lower center', ncol=len(handles), fontsize=7, frameon=False,
                        handlelength=1.4, columnspacing=1.0, borderaxespad=0.1)

    def render(self, frame: Frame) -> 'NDArray[np.uint8]':
        """The frame as an (H, W, 3) uint8 RGB image."""
        import numpy as np

        x0, x1, y0, y1 = frame.view
        ax = self.ax
        if frame.spec is not None and frame.cells is not None:
            s = frame.spec
            self._image.set_data(grid_rgb(frame.cells))
            self._image.set_extent((s.origin_x, s.origin_x + s.size_x, s.origin_y, s.origin_y + s.size_y))
            self._image.set_visible(True)
        else:
            self._image.set_visible(False)
        self._others.set_verts([b.corners() for b in frame.others])
        self._hazards.set_verts([b.corners() for b in frame.hazards])
        self._tracks.set_verts([b.corners() for b in frame.tracks])
        faces = []
        for b in frame.platoon:
            w = frame.warnings.get(b.id)
            faces.append(_hex(PLATOON_RGB) if w is None else _hex(ERROR_RGB if w.level == 'ERROR' else WARN_RGB))
        self._platoon.set_verts([b.corners() for b in frame.platoon])
        self._platoon.set_facecolors(faces or 'none')
        for t in self._texts:
            t.remove()
        self._texts = []
        for b in frame.platoon:
            if not (x0 <= b.center_x <= x1 and y0 <= b.center_y <= y1):
                continue
            label, color = b.id, _hex(PLATOON_RGB)
            w = frame.warnings.get(b.id)
            if w is not None:
                color = _hex(ERROR_RGB if w.level == 'ERROR' else WARN_RGB)
                label += f' ttc {w.ttc_s:.1f} s' if w.ttc_s is not None else f' {w.level}'
            self._texts.append(ax.text(b.center_x, b.center_y + 0.5 * b.width + 0.4, label, color=color,
                                       fontsize=8, fontweight='bold', ha='center', va='bottom', zorder=6,
                                       clip_on=True, bbox=_LABEL_BOX))
        panel = speed_panel_lines(frame.speeds)
        self._panel.set_text('\n'.join(panel))
        self._panel.set_visible(bool(panel))
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        title = f'{self.title + "   " if self.title else ""}t = {frame.t_s:5.1f} s'
        warned = sorted(frame.warnings)
        if warned:
            title += '   warnings: ' + ', '.join(warned)
        if frame.note:
            title += f'   ({frame.note})'
        self._title.set_text(title)
        self.fig.canvas.draw()
        rgba = np.asarray(self.fig.canvas.buffer_rgba())
        return np.ascontiguousarray(rgba[..., :3])

    def close(self) -> None:
        self.fig.clear()


def write_gif(images: Iterable['NDArray[np.uint8]'], path: str | Path, frame_ms: float, colors: int = 96) -> int:
    """Write RGB images (H, W, 3) uint8 as a looping, optimised GIF; returns the frame count.

    Each frame gets its own adaptive palette of ``colors`` entries (the warning colours survive).
    ConfigError when there is no image.
    """
    from PIL import Image

    frames = [Image.fromarray(im).quantize(colors=colors, method=Image.Quantize.MEDIANCUT) for im in images]
    if not frames:
        raise ConfigError(f'{path}: no frames to write')
    try:
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=max(20, int(round(frame_ms))),
                       loop=0, optimize=True, disposal=1)
    except OSError as exc:
        raise OutputError(f'{path}: cannot write GIF: {exc}') from exc
    return len(frames)


# -------------------------------------------------------------------------------- bag reading

def warnings_of(msg: Any) -> dict[str, VehicleWarning]:
    """Vehicle id -> VehicleWarning of a /twin/warnings DiagnosticArray: WARN/ERROR statuses, the worst level
    and the smallest finite ``ttc_s`` per vehicle."""
    from ..ros.diagnostics import Level, status_level

    out: dict[str, VehicleWarning] = {}
    for status in msg.status:
        try:
            level = status_level(status)
        except ValueError:
            continue
        if level not in (Level.WARN, Level.ERROR):
            continue
        ttc = None
        for kv in status.values:
            if kv.key == 'ttc_s':
                try:
                    value = float(kv.value)
                except ValueError:
                    value = math.nan
                ttc = value if math.isfinite(value) else None
        name = str(status.name)
        prev = out.get(name)
        worst = 'ERROR' if level == Level.ERROR or (prev is not None and prev.level == 'ERROR') else 'WARN'
        ttcs = [t for t in (ttc, prev.ttc_s if prev else None) if t is not None]
        out[name] = VehicleWarning(worst, min(ttcs) if ttcs else None)
    return out


@dataclass
class _TruthTrack:
    scenario: str = ''
    start_ns: int | None = None
    vehicle_ids: tuple[str, ...] = ()
    hazard_ids: tuple[str, ...] = ()
    stamps: list[int] = field(default_factory=list)
    boxes: list[list['Box']] = field(default_factory=list)


def _read_truth(path: Path) -> _TruthTrack:
    from ..ros.bag import BagReader
    from ..ros.time import stamp_to_ns
    from ..ros.truth import cube_boxes

    truth = _TruthTrack()
    with BagReader(path) as bag:
        topics = bag.topics()
        if TRUTH_OBJECTS not in topics:
            raise BagError(f'{path}: no {TRUTH_OBJECTS} topic: not a truth bag written by `cooperative-fusion '
                           f'simulate` (topics: {", ".join(sorted(topics)) or "none"})')
        odom_ids = tuple(sorted(t[len(TRUTH_ODOM_PREFIX):] for t in topics if t.startswith(TRUTH_ODOM_PREFIX)))
        for topic, msgtype, log_ns, raw in bag.messages([TRUTH_OBJECTS, TRUTH_SCENARIO]):
            try:
                msg = bag.deserialize(msgtype, raw)
                if topic == TRUTH_SCENARIO:
                    meta = json.loads(msg.data)
                    if isinstance(meta, dict):
                        truth.scenario = str(meta.get('scenario') or '')
                        if meta.get('start_time_ns') is not None:
                            truth.start_ns = int(meta['start_time_ns'])
                        truth.vehicle_ids = tuple(str(v) for v in meta.get('vehicle_ids') or ())
                        truth.hazard_ids = tuple(str(h) for h in meta.get('hazard_ids') or ())
                else:
                    stamps = [stamp_to_ns(m.header.stamp) for m in msg.markers]
                    truth.stamps.append(stamps[0] if stamps else log_ns)
                    truth.boxes.append(cube_boxes(msg))
            except (CooperativeFusionError, json.JSONDecodeError, ValueError) as exc:
                raise BagError(f'{path}: {topic} at log time {log_ns} ns: {exc}') from exc
    if not truth.stamps:
        raise BagError(f'{path}: {TRUTH_OBJECTS} holds no messages')
    if not truth.vehicle_ids:
        truth.vehicle_ids = odom_ids
    if truth.start_ns is None:
        truth.start_ns = min(truth.stamps)
    return truth


def frame_period_s(duration_s: float) -> float:
    """Sim seconds between frames: about TARGET_FRAMES over ``duration_s``, within [MIN_PERIOD_S, MAX_PERIOD_S]."""
    return min(max(duration_s / TARGET_FRAMES, MIN_PERIOD_S), MAX_PERIOD_S)


def _view_box(platoon: Sequence['Box'], roi: 'RoiConfig') -> tuple[float, float, float, float] | None:
    """x0, x1, y0, y1 of the bounding box of the ROI around ``platoon`` (None without boxes)."""
    import numpy as np

    from ..core.evaluation import platoon_frame

    if not platoon:
        return None
    pos = np.array([[b.center_x, b.center_y] for b in platoon])
    u, n = platoon_frame(pos, np.array([b.yaw for b in platoon]))
    s, d = pos @ u, pos @ n
    corners = [u * ss + n * dd for ss in (s.min() - roi.behind_last_m, s.max() + roi.ahead_of_leader_m)
               for dd in (d.mean() - roi.lateral_half_width_m, d.mean() + roi.lateral_half_width_m)]
    c = np.array(corners)
    return float(c[:, 0].min()), float(c[:, 0].max()), float(c[:, 1].min()), float(c[:, 1].max())


def _crop(spec: 'GridSpec', cells: 'NDArray[np.int8]', view: tuple[float, float, float, float]
          ) -> tuple['GridSpec', 'NDArray[np.int8]'] | None:
    """The part of a grid inside ``view`` (map x0, x1, y0, y1; a copy), or None when they do not overlap.
    A grid turned by a yaw is resampled onto the axis-aligned lattice over ``view`` (nearest cell)."""
    from ..core.grid import GridSpec, resample_nearest

    x0, x1, y0, y1 = view
    r = spec.resolution
    if spec.is_rotated:
        flat = GridSpec.covering([(x0, y0), (x1, y1)], 0.0, 0.0, r, 0.0)
        cells = resample_nearest(spec, cells, flat, -1)
        if not (cells >= 0).any():
            return None
        spec = flat
    c0 = max(0, int(math.floor((x0 - spec.origin_x) / r)))
    c1 = min(spec.width, int(math.ceil((x1 - spec.origin_x) / r)))
    r0 = max(0, int(math.floor((y0 - spec.origin_y) / r)))
    r1 = min(spec.height, int(math.ceil((y1 - spec.origin_y) / r)))
    if c1 <= c0 or r1 <= r0:
        return None
    sub = GridSpec(spec.origin_x + c0 * r, spec.origin_y + r0 * r, r, c1 - c0, r1 - r0)
    return sub, cells[r0:r1, c0:c1].copy()


def collect_frames(truth_bag: str | Path, result_bag: str | Path, period_s: float | None = None,
                   roi: 'RoiConfig | None' = None, max_frames: int = MAX_FRAMES) -> tuple[list[Frame], str, float]:
    """The frames of a run: ``(frames, scenario name, period_s)``.

    Frame times run from the first to the last ``/truth/objects`` stamp every
    ``period_s`` (default :func:`frame_period_s`; widened so there are at most
    ``max_frames``). The result bag is read once in log-time order; only the
    grids shown are deserialized. BagError naming the file when a bag cannot be used.
    """
    from ..core.evaluation import RoiConfig
    from ..ros.bag import BagReader
    from ..ros.grid import grid_from_msg
    from ..ros.truth import cube_boxes

    roi = roi or RoiConfig()
    truth = _read_truth(Path(truth_bag))
    t_first, t_last = min(truth.stamps), max(truth.stamps)
    span_s = (t_last - t_first) * 1e-9
    if period_s is None:
        period_s = frame_period_s(span_s)
    if not (math.isfinite(period_s) and period_s > 0):
        raise ConfigError(f'frame period must be a finite number of seconds > 0, got {period_s!r}')
    if max_frames < 1:
        raise ConfigError(f'max_frames must be >= 1, got {max_frames}')
    if span_s / period_s + 1 > max_frames:
        period_s = span_s / max(max_frames - 1, 1)
    n = int(math.floor(span_s / period_s + 1e-9)) + 1
    times = [t_first + int(round(k * period_s * 1e9)) for k in range(n)]

    # Truth at each frame time: the newest /truth/objects at or before it.
    order = sorted(range(len(truth.stamps)), key=truth.stamps.__getitem__)
    vids, hazard_ids = set(truth.vehicle_ids), set(truth.hazard_ids)
    per_frame: list[tuple[list['Box'], list['Box'], list['Box']]] = []
    views: list[tuple[float, float, float, float] | None] = []
    j = 0
    for t in times:
        while j + 1 < len(order) and truth.stamps[order[j + 1]] <= t:
            j += 1
        boxes = truth.boxes[order[j]]
        platoon = sorted((b for b in boxes if b.id in vids), key=lambda b: b.id)
        hazards = [b for b in boxes if b.id in hazard_ids]
        others = [b for b in boxes if b.id not in vids and b.id not in hazard_ids]
        per_frame.append((platoon, hazards, others))
        views.append(_view_box(platoon, roi))
    known = [v for v in views if v is not None]
    if not known:
        raise BagError(f'{truth_bag}: no platoon vehicle ({", ".join(sorted(vids)) or "none known"}) '
                       f'among the {TRUTH_OBJECTS} boxes')
    w = max(v[1] - v[0] for v in known) + 4.0
    h = max(v[3] - v[2] for v in known) + 4.0
    last = known[0]
    centred = []
    for v in views:
        last = v or last
        cx, cy = 0.5 * (last[0] + last[1]), 0.5 * (last[2] + last[3])
        centred.append((cx - 0.5 * w, cx + 0.5 * w, cy - 0.5 * h, cy + 0.5 * h))

    # Result at each frame time: the newest grid / markers / warnings logged at or before it.
    latest: dict[str, tuple[int, str, bytes]] = {}
    grids: list[tuple['GridSpec', Any, float] | None] = []
    tracks: list[list['Box']] = []
    warns: list[dict[str, VehicleWarning]] = []
    cmds: list[dict[str, float | None]] = []
    max_age_ns = int(MAX_OVERLAY_AGE_S * 1e9)
    cache: dict[str, tuple[int, Any]] = {}

    def decoded(bag: BagReader, topic: str) -> tuple[int, Any] | None:
        entry = latest.get(topic)
        if entry is None:
            return None
        log_ns, msgtype, raw = entry
        hit = cache.get(topic)
        if hit is None or hit[0] != log_ns:
            try:
                hit = (log_ns, bag.deserialize(msgtype, raw))
            except BagError as exc:
                raise BagError(f'{result_bag}: {topic} at log time {log_ns} ns: {exc}') from exc
            cache[topic] = hit
        return hit

    def close_frame(bag: BagReader, k: int) -> None:
        t = times[k]
        grid = decoded(bag, COMMON_GRID)
        if grid is None:
            grids.append(None)
        else:
            try:
                spec, cells = grid_from_msg(grid[1])
            except CooperativeFusionError as exc:
                raise BagError(f'{result_bag}: {COMMON_GRID} at log time {grid[0]} ns: {exc}') from exc
            crop = _crop(spec, cells, centred[k])
            grids.append(None if crop is None else (*crop, (t - grid[0]) * 1e-9))
        marks = decoded(bag, TWIN_MARKERS)
        tracks.append(cube_boxes(marks[1], TRACKS_NS) if marks is not None and t - marks[0] <= max_age_ns else [])
        warn = decoded(bag, WARNINGS)
        warns.append(warnings_of(warn[1]) if warn is not None and t - warn[0] <= max_age_ns else {})
        commanded: dict[str, float | None] = {}
        for topic in cmd_topics:
            cmd = decoded(bag, topic)
            value = float(cmd[1].twist.linear.x) if cmd is not None and t - cmd[0] <= max_age_ns else math.nan
            commanded[_CMD_RE.match(topic).group(1)] = value if math.isfinite(value) else None
        cmds.append(commanded)

    k = 0
    with BagReader(result_bag) as bag:
        cmd_topics = sorted(t for t in bag.topics() if (m := _CMD_RE.match(t)) and m.group(1) in vids)
        for topic, msgtype, log_ns, raw in bag.messages([COMMON_GRID, TWIN_MARKERS, WARNINGS, *cmd_topics]):
            while k < n and log_ns > times[k]:
                close_frame(bag, k)
                k += 1
            if k >= n:
                break
            latest[topic] = (log_ns, msgtype, raw)
        while k < n:
            close_frame(bag, k)
            k += 1

    start_ns = truth.start_ns if truth.start_ns is not None else t_first
    frames = []
    for k, t in enumerate(times):
        platoon, hazards, others = per_frame[k]
        g = grids[k]
        note = ''
        if g is None:
            note = 'no common grid yet'
        elif g[2] > GRID_AGE_NOTE_S:
            note = f'grid {g[2]:.1f} s old'
        speeds = {b.id: VehicleSpeed(b.vx * math.cos(b.yaw) + b.vy * math.sin(b.yaw), cmds[k].get(b.id))
                  for b in platoon} if cmd_topics else {}
        frames.append(Frame(t_s=(t - start_ns) * 1e-9, view=centred[k], spec=None if g is None else g[0],
                            cells=None if g is None else g[1], platoon=tuple(platoon), hazards=tuple(hazards),
                            others=tuple(others), tracks=tuple(tracks[k]),
                            warnings={v: w for v, w in warns[k].items() if v in vids}, speeds=speeds, note=note))
    return frames, truth.scenario, period_s


def animate_run(truth_bag: str | Path, result_bag: str | Path, out_path: str | Path, *,
                period_s: float | None = None, speed: float = 1.0, width_px: int = 1200,
                roi: 'RoiConfig | None' = None, max_frames: int = MAX_FRAMES) -> AnimationSummary:
    """Write the GIF of a run (truth bag from ``simulate``, result bag from ``run --record``) to ``out_path``.

    speed : playback speed against sim time (1: real time)
    """
    if not (math.isfinite(speed) and speed > 0):
        raise ConfigError(f'playback speed must be a finite number > 0, got {speed!r}')
    start = time.perf_counter()
    frames, scenario, period = collect_frames(truth_bag, result_bag, period_s, roi, max_frames)
    x0, x1, y0, y1 = frames[0].view
    renderer = FrameRenderer((x1 - x0, y1 - y0), width_px=width_px, title=scenario)
    try:
        count = write_gif((renderer.render(f) for f in frames), out_path, 1000.0 * period / speed)
    finally:
        renderer.close()
    out = Path(out_path)
    return AnimationSummary(out, count, period, out.stat().st_size, time.perf_counter() - start)
