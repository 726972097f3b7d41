"""Window buffer: audio chunks and camera frames keyed on header stamps -> analysis windows.

Windows are [end - W, end] with ends on a grid of hop H that starts at the first stamp
seen, or with ``absolute_grid`` on the multiples of H (nodes that window one stream each
then agree on every window's end). A window is handed out once every modality covers it:
audio up to its end, video up to its last frame sample time (``select_times``; later
frames cannot change which frames it selects). A modality that does not is waited for while
it is alive: with arrival times (live use), while its last message arrived less than
``grace_s`` ago and the other stream leads by less than one window; without them (offline,
in-order feeding), until the newest stamp is ``grace_s`` past the end. A dead
or late stream then simply misses that window. Waiting on arrival time matters when a node
falls behind: a keep-last camera queue then delivers the newest frames while the reliable
microphone queue is still working through older chunks.
Frames are stored as opaque payloads (e.g. undecoded messages) so that only the frames a
window selects are ever decoded. A frame is kept only while some window still to come could
select it: once the next frame has arrived it is known whether the frame is the nearest one
to any sample time of those windows (``select_frames``), and a frame that is not is dropped
on the spot. Windows come out exactly as if every frame had been kept.
A window's frames are final before its audio is (``pop_video_ready``): its video can be
computed ahead. ``add_*`` report what is wrong with an input as a
:class:`~avemo_ros.input_problems.Problem` (restart, gap, rate change, duplicate, late,
stale), the names the node and offline evaluation count it under.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .face_frames import select_frames, select_times
from .input_problems import Problem
from .stream_resample import RateConverter

NS = 1_000_000_000
#: Audio chunks starting this much before the audio received so far are late (1 ms).
LATE_AUDIO_NS = 1_000_000


@dataclass
class Window:
    """One analysis window's inputs."""

    start_ns: int
    end_ns: int
    audio: Optional[np.ndarray]  # (n,) mono float32 at ``sample_rate``; None: no audio
    sample_rate: int
    audio_coverage: float  # share of the window covered by received audio, [0, 1]
    frames: list[Any] = field(default_factory=list)  # selected payloads (N, repeats allowed)
    frame_stamps_ns: list[int] = field(default_factory=list)

    @property
    def has_video(self) -> bool:
        return bool(self.frames)

    @property
    def distinct_frames(self) -> int:
        """How many different frames the window selected (slots may repeat a frame)."""
        return len(set(self.frame_stamps_ns))


@dataclass
class VideoWindow:
    """The frames a window will select, known before its audio is (its video is final)."""

    start_ns: int
    end_ns: int
    frames: list[Any]
    frame_stamps_ns: list[int]


class WindowBuffer:
    """Buffers both modalities and emits complete windows in stamp order; a window waits
    up to ``grace_s`` for a late modality only if it is in ``wait_for`` (the bundle's)."""

    def __init__(self, window_s: float = 3.0, hop_s: float = 1.0, n_frames: int = 20,
                 grace_s: float = 0.5, gap_s: float = 0.5, min_audio_coverage: float = 0.8,
                 sample_rate: Optional[int] = None, wait_for: tuple = ("audio", "video"),
                 absolute_grid: bool = False):
        if window_s <= 0 or hop_s <= 0:
            raise ValueError("window_s and hop_s must be positive")
        self.window_ns = int(round(window_s * NS))
        self.hop_ns = int(round(hop_s * NS))
        self.grace_ns = int(round(grace_s * NS))
        self.grace_s = grace_s
        self.gap_ns = int(round(gap_s * NS))
        self.n_frames = n_frames
        self.min_audio_coverage = min_audio_coverage
        self.sample_rate = sample_rate  # windows' audio rate: chunks resampled once on arrival
        self.frames_unused = 0  # frames dropped on arrival because no window selects them
        self.wait_for = frozenset(wait_for)  # modalities a window waits grace_s for
        self.absolute_grid = absolute_grid
        self.reset()

    def reset(self) -> None:
        """Forget everything (e.g. after time jumped backwards)."""
        self._chunks: deque[tuple[int, np.ndarray]] = deque()  # (stamp, mono at _store_rate)
        self._rate = 0  # the microphone's rate
        self._store_rate = 0  # the rate chunks are kept at (sample_rate, else the mic's)
        self._stamps: deque[int] = deque(maxlen=256)  # recent chunk stamps (duplicates)
        self._converter = RateConverter(self.sample_rate)  # to sample_rate, once per chunk
        self._audio_end_ns: Optional[int] = None
        self._frames: deque[tuple[int, Any]] = deque()  # frames some window may select
        self._pending: Optional[tuple[int, Any]] = None  # newest frame, not yet decided
        self._before_pending_ns: Optional[int] = None  # stamp of the frame before it
        self._selected_new: list[tuple[int, Any]] = []  # kept since take_selected_frames()
        self._next_end_ns: Optional[int] = None
        self._video_next_end_ns: Optional[int] = None  # next window for pop_video_ready
        self._arrival: dict[str, float] = {}  # modality -> arrival time of its last input

    # --- input -----------------------------------------------------------------------
    def _start_grid(self, stamp_ns: int) -> None:
        if self._next_end_ns is None:
            end = stamp_ns + self.window_ns
            self._next_end_ns = -(-end // self.hop_ns) * self.hop_ns if self.absolute_grid else end

    def _oldest_needed_ns(self) -> int:
        return (self._next_end_ns or 0) - self.window_ns

    def add_audio(self, stamp_ns: int, samples: np.ndarray, sample_rate: int,
                  arrival_s: Optional[float] = None) -> Optional[Problem]:
        """Add a chunk; ``stamp_ns`` is the time of its first sample; samples (n,) or (n, ch).

        ``arrival_s``: when it arrived (monotonic seconds), for the liveness rule. Returns
        the problem it shows (None: fine): a restart, a gap, a rate change (the audio so
        far is forgotten), a duplicate or stale chunk (dropped), a late one (kept).
        """
        if arrival_s is not None:
            self._arrival["audio"] = arrival_s
        x = np.asarray(samples, dtype=np.float32)
        mono = x.mean(axis=1) if x.ndim == 2 else x
        event = None
        if self._rate and sample_rate != self._rate:
            self._chunks.clear()
            self._audio_end_ns = None
            event = Problem.AUDIO_RATE_CHANGES
        self._rate = sample_rate
        if self._audio_end_ns is not None:
            if stamp_ns < self._audio_end_ns - self.gap_ns:
                self.reset()
                self._rate = sample_rate
                event = Problem.TIMESTAMPS_BACKWARDS
            elif stamp_ns > self._audio_end_ns + self.gap_ns:
                event = Problem.STREAM_GAPS
            elif stamp_ns < self._audio_end_ns - LATE_AUDIO_NS:
                if stamp_ns in self._stamps:
                    return Problem.AUDIO_DUPLICATE
                event = Problem.AUDIO_LATE
        elif self._next_end_ns is not None and stamp_ns + self.gap_ns < self._oldest_needed_ns():
            return Problem.STALE_DROPPED
        self._start_grid(stamp_ns)
        self._stamps.append(stamp_ns)
        stored, kept, self._store_rate = self._converter.convert(stamp_ns, mono, sample_rate,
                                                                 event is None)
        self._chunks.append((stored, kept))
        end = stamp_ns + int(round(mono.size * NS / sample_rate))
        self._audio_end_ns = end if self._audio_end_ns is None else max(self._audio_end_ns, end)
        return event

    def add_frame(self, stamp_ns: int, payload: Any, arrival_s: Optional[float] = None
                  ) -> Optional[Problem]:
        """Add a camera frame (any payload; decoded later only if selected).

        The frame before it is now decided: kept if a window still to come selects it,
        otherwise dropped (counted in ``frames_unused``). Returns the problem it shows
        (None: fine): a restart, a gap, a duplicate or stale frame (dropped).
        """
        if arrival_s is not None:
            self._arrival["video"] = arrival_s
        event = None
        last = self._last_frame_ns()
        if last is not None:
            if stamp_ns == last:
                return Problem.FRAMES_DUPLICATE
            if stamp_ns < last:
                if stamp_ns < last - self.gap_ns:
                    self.reset()
                    event = Problem.TIMESTAMPS_BACKWARDS
                else:
                    return Problem.STALE_DROPPED  # small reordering: drop the late frame
            elif stamp_ns > last + self.gap_ns:
                event = Problem.STREAM_GAPS
        if self._next_end_ns is not None and stamp_ns < self._oldest_needed_ns():
            return Problem.STALE_DROPPED
        self._start_grid(stamp_ns)
        if self._pending is not None:
            prev_ns, prev = self._pending
            if self._selectable(prev_ns, self._before_pending_ns, stamp_ns):
                self._frames.append(self._pending)
                self._selected_new.append(self._pending)
            else:
                self.frames_unused += 1
            self._before_pending_ns = prev_ns
        self._pending = (stamp_ns, payload)
        return event

    def take_selected_frames(self) -> list[tuple[int, Any]]:
        """(stamp, payload) of the frames kept since the last call, oldest first.

        Every one of them will be selected by a window still to come (unless a reset
        intervenes): a caller may prepare them (decode, detect) before their windows end.
        """
        out, self._selected_new = self._selected_new, []
        return out

    @property
    def next_window_end_ns(self) -> int:
        """End of the next window to be handed out (very negative before any input)."""
        return self._next_end_ns if self._next_end_ns is not None else -(2**62)

    @property
    def next_window_start_ns(self) -> int:
        """Start of the next window: older inputs are needed by no window to come."""
        return self.next_window_end_ns - self.window_ns

    @property
    def frames_held(self) -> int:
        """Frame payloads in memory (kept + the undecided newest one)."""
        return len(self._frames) + (self._pending is not None)

    def _last_frame_ns(self) -> Optional[int]:
        return self._pending[0] if self._pending is not None else None

    def _selectable(self, s: int, prev: Optional[int], nxt: int) -> bool:
        """Whether a window still to come selects frame ``s`` (neighbours ``prev``, ``nxt``).

        Mirrors ``select_frames`` over the frames inside the window: a sample time picks the
        nearer of the frames around it, the earlier one on a tie.
        """
        if self._next_end_ns is None:
            return True
        t_s = s / NS
        end = self._next_end_ns
        if s > end:  # first grid end at or after s
            end += -(-(s - end) // self.hop_ns) * self.hop_ns
        while end - self.window_ns <= s:
            start = end - self.window_ns
            t = select_times(start / NS, end / NS, self.n_frames)
            has_prev = prev is not None and prev >= start
            has_next = nxt <= end
            win_right = (t <= t_s) & ~(t <= (prev / NS if has_prev else -np.inf))
            if has_prev:
                win_right &= ~(np.abs(t - prev / NS) <= np.abs(t_s - t))
            win_left = t > t_s
            if has_next:
                win_left &= (t <= nxt / NS) & (np.abs(t - t_s) <= np.abs(nxt / NS - t))
            if np.any(win_right | win_left):
                return True
            end += self.hop_ns
        return False

    # --- output ----------------------------------------------------------------------
    def _latest_ns(self) -> Optional[int]:
        cands = [v for v in (self._audio_end_ns, self._last_frame_ns()) if v is not None]
        return max(cands) if cands else None

    def _video_covers(self, start: int, end: int, interval_ns: int = 0) -> bool:
        """Whether the frames a window selects are all known: a frame at or after its last
        sample time has arrived (later frames up to the end cannot change the selection).
        ``interval_ns`` > 0: also when the next frame, that much after the newest, would be
        farther from that time than the newest (likely final)."""
        last = self._last_frame_ns()
        if last is None:
            return False
        if last >= end or self.n_frames <= 0:
            return last >= end
        target = select_times(start / NS, end / NS, self.n_frames)[-1]
        return last / NS >= target or (interval_ns > 0 and (last + interval_ns / 2) / NS > target)

    def _waiting_for(self, modality: str, covered: bool, end: int, latest: int,
                     now_s: Optional[float]) -> bool:
        if covered or modality not in self.wait_for:
            return False
        arrival = self._arrival.get(modality)
        if now_s is not None and arrival is not None:
            return now_s - arrival < self.grace_s and latest - end < self.window_ns
        return latest < end + self.grace_ns

    def pop_ready(self, now_s: Optional[float] = None) -> list[Window]:
        """Windows that are complete now, oldest first (usually zero or one).

        ``now_s``: the current monotonic time, when inputs were added with arrival times.
        """
        out: list[Window] = []
        latest = self._latest_ns()
        while self._next_end_ns is not None and latest is not None:
            end = self._next_end_ns
            if end > latest:  # never a window beyond the newest input
                break
            audio_covered = self._audio_end_ns is not None and self._audio_end_ns >= end
            if self._waiting_for("audio", audio_covered, end, latest, now_s) or self._waiting_for(
                    "video", self._video_covers(end - self.window_ns, end), end, latest, now_s):
                break
            out.append(self._assemble(end - self.window_ns, end))
            self._next_end_ns = end + self.hop_ns
            self._prune()
        return out

    def pop_video_ready(self) -> list[VideoWindow]:
        """Windows still to come whose frame selection is final already, or will be unless
        the camera's next frame comes early, each once, oldest first; windows without
        frames are left out. Their video can be computed before their audio ends (check
        the final window's ``frame_stamps_ns`` against the ones used).

        Final: a frame at or after the window's last sample time has arrived. Likely
        final: the newest frame is nearer to that time than the next one will be, the
        camera keeping its last frame interval.
        """
        out: list[VideoWindow] = []
        last = self._last_frame_ns()
        if self._next_end_ns is None or last is None:
            return out
        interval = 0 if self._before_pending_ns is None else last - self._before_pending_ns
        end = max(self._next_end_ns, self._video_next_end_ns or self._next_end_ns)
        while end - self.window_ns <= last and self._video_covers(end - self.window_ns, end,
                                                                    interval):
            frames, stamps = self._select(end - self.window_ns, end)
            if frames:
                out.append(VideoWindow(end - self.window_ns, end, frames, stamps))
            end += self.hop_ns
        self._video_next_end_ns = end
        return out

    def flush(self) -> list[Window]:
        """At the end of a finite input: every window whose end has been reached."""
        out = self.pop_ready()
        latest = self._latest_ns()
        while self._next_end_ns is not None and latest is not None and self._next_end_ns <= latest:
            out.append(self._assemble(self._next_end_ns - self.window_ns, self._next_end_ns))
            self._next_end_ns += self.hop_ns
            self._prune()
        return out

    def _assemble(self, start: int, end: int) -> Window:
        audio, coverage = None, 0.0
        rate = self._store_rate
        if rate and self._chunks:
            n = int(round((end - start) * rate / NS))
            buf = np.zeros(n, dtype=np.float32)
            covered = np.zeros(n, dtype=bool)
            for stamp, x in self._chunks:
                off = int(round((stamp - start) * rate / NS))
                a, b = max(0, off), min(n, off + x.size)
                if a < b:
                    buf[a:b] = x[a - off:b - off]
                    covered[a:b] = True
            coverage = float(covered.mean()) if n else 0.0
            if coverage >= self.min_audio_coverage:
                audio = buf
        frames, frame_stamps = self._select(start, end)
        return Window(start_ns=start, end_ns=end, audio=audio, sample_rate=rate,
                      audio_coverage=coverage, frames=frames, frame_stamps_ns=frame_stamps)

    def _select(self, start: int, end: int) -> tuple[list[Any], list[int]]:
        """The payloads and stamps of the frames window [start, end] selects."""
        held = list(self._frames) + ([self._pending] if self._pending is not None else [])
        inside = [(s, p) for s, p in held if start <= s <= end]
        if not inside:
            return [], []
        stamps = [s for s, _ in inside]
        idx = select_frames(np.array(stamps, dtype=np.float64) / NS, start / NS, end / NS,
                            self.n_frames)
        return [inside[i][1] for i in idx], [stamps[i] for i in idx]

    def _prune(self) -> None:
        keep_from = self._oldest_needed_ns()
        while self._frames and self._frames[0][0] < keep_from:
            self._frames.popleft()
        self._selected_new = [f for f in self._selected_new if f[0] >= keep_from]
        while self._chunks:
            stamp, x = self._chunks[0]
            if stamp + int(x.size * NS / max(self._store_rate, 1)) < keep_from:
                self._chunks.popleft()
            else:
                break


def windows_from_media(frames: Any, frame_times_s: np.ndarray, audio: np.ndarray,
                       sample_rate: int, *, window_s: float = 3.0, hop_s: float = 1.0,
                       n_frames: int = 20, chunk_s: float = 0.032, start_ns: int = 0
                       ) -> list[Window]:
    """A decoded clip's windows, fed as :func:`avemo_ros.clip_stream.clip_events` (the
    file source's and the bag writer's stream) would arrive live."""
    from types import SimpleNamespace

    from .clip_stream import VideoEvent, clip_events

    buf = WindowBuffer(window_s=window_s, hop_s=hop_s, n_frames=n_frames)
    clip = SimpleNamespace(frames=frames, frame_times=frame_times_s, audio=audio,
                           sample_rate=sample_rate)
    out: list[Window] = []
    for event in clip_events(clip, start_ns, chunk_s=chunk_s):
        if isinstance(event, VideoEvent):
            buf.add_frame(event.stamp_ns, event.rgb)
        else:
            buf.add_audio(event.stamp_ns, event.samples, event.sample_rate)
        out.extend(buf.pop_ready())
    out.extend(buf.flush())
    return out
