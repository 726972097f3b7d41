import numpy as np

from avemo_ros.input_problems import Problem
from avemo_ros.window import NS, WindowBuffer, windows_from_media

RATE = 16000
CHUNK = 512


def feed(buf, t0_s, t1_s, fps=30.0, audio=True, video=True):
    """Feed interleaved audio chunks and frames over [t0, t1); return windows popped."""
    events = []
    if audio:
        n = int((t1_s - t0_s) * RATE) // CHUNK
        events += [(int((t0_s + i * CHUNK / RATE) * NS), "a") for i in range(n)]
    if video:
        n = int((t1_s - t0_s) * fps)
        events += [(int((t0_s + i / fps) * NS), "v") for i in range(n)]
    out = []
    for stamp, kind in sorted(events):
        if kind == "a":
            buf.add_audio(stamp, np.full(CHUNK, stamp / NS, np.float32), RATE)
        else:
            buf.add_frame(stamp, stamp)
        out += buf.pop_ready()
    return out


def test_windows_every_hop_with_ends_on_the_grid():
    buf = WindowBuffer(window_s=3.0, hop_s=1.0, n_frames=20)
    ws = feed(buf, 100.0, 108.0)
    ends = [w.end_ns / NS for w in ws]
    # audio reaches 108.0 and the last frame (107.97 s) is past the window's last sample
    # time (107.925 s): the window ending at 108 is complete too
    assert np.allclose(ends, [103.0, 104.0, 105.0, 106.0, 107.0, 108.0], atol=1e-6)
    for w in ws:
        assert w.end_ns - w.start_ns == 3 * NS
        assert w.audio is not None and len(w.audio) == 3 * RATE
        assert w.audio_coverage > 0.99
        assert len(w.frames) == 20
        # the audio is placed by its stamps: sample values encode their chunk's stamp
        assert abs(w.audio[0] - w.start_ns / NS) < CHUNK / RATE + 1e-3


def test_frames_are_spread_evenly_over_the_window():
    buf = WindowBuffer(window_s=3.0, hop_s=1.0, n_frames=20)
    w = feed(buf, 0.0, 4.0)[0]
    stamps = np.array(w.frame_stamps_ns) / NS
    assert np.all(np.diff(stamps) > 0.1) and stamps[0] < 0.15 and stamps[-1] > 2.85


def test_missing_video_still_yields_audio_windows_after_grace():
    buf = WindowBuffer(window_s=3.0, hop_s=1.0, grace_s=0.5)
    ws = feed(buf, 0.0, 5.0, video=False)
    assert [round(w.end_ns / NS, 3) for w in ws] == [3.0, 4.0]
    assert all(not w.has_video and w.audio is not None for w in ws)


def test_missing_audio_yields_video_only_windows():
    buf = WindowBuffer(window_s=3.0, hop_s=1.0, grace_s=0.5)
    ws = feed(buf, 0.0, 5.0, audio=False)
    assert ws and all(w.audio is None and w.has_video for w in ws)


def test_backwards_jump_resets_and_gap_is_reported():
    buf = WindowBuffer(window_s=3.0, hop_s=1.0)
    feed(buf, 50.0, 54.0)
    back = buf.add_audio(int(10 * NS), np.zeros(CHUNK, np.float32), RATE)
    assert back is Problem.TIMESTAMPS_BACKWARDS
    assert buf.add_audio(int(12 * NS), np.zeros(CHUNK, np.float32), RATE) is Problem.STREAM_GAPS
    event = buf.add_audio(int(12.1 * NS), np.zeros(CHUNK, np.float32), 8000)
    assert event is Problem.AUDIO_RATE_CHANGES
    assert buf.add_frame(int(12 * NS), 0) is None
    assert buf.add_frame(int(12 * NS), 0) is Problem.FRAMES_DUPLICATE


def test_late_and_duplicate_audio_are_told_apart():
    buf = WindowBuffer(window_s=3.0, hop_s=1.0)
    chunk = np.zeros(CHUNK, np.float32)
    step = CHUNK * NS // RATE
    for i in range(10):
        assert buf.add_audio(i * step, chunk, RATE) is None
    assert buf.add_audio(4 * step, chunk, RATE) is Problem.AUDIO_DUPLICATE  # same stamp again
    assert buf.add_audio(4 * step + step // 2, chunk, RATE) is Problem.AUDIO_LATE  # kept
    assert buf.add_audio(10 * step, chunk, RATE) is None  # in order again


def test_video_is_final_before_the_window_ends():
    """The frames a window selects are known once a frame at its last sample time came:
    pop_video_ready hands each such window out once, before pop_ready does."""
    buf = WindowBuffer(window_s=3.0, hop_s=1.0, n_frames=20)
    early = []
    for t in np.arange(0, 3.0, 1 / 30):
        buf.add_frame(int(round(t * NS)), t)
        early += buf.pop_video_ready()
    assert [w.end_ns for w in early] == [3 * NS]  # last sample 2.925 s: final by 2.933 s
    assert buf.pop_video_ready() == []
    assert len(early[0].frames) == 20 and buf.pop_ready() == []  # no audio yet: not complete
    ws = feed(buf, 3.0, 4.5, video=False)
    assert ws and ws[0].frame_stamps_ns == early[0].frame_stamps_ns


def test_a_steady_camera_makes_the_selection_known_a_frame_early_and_right():
    """Window [1, 4] samples last at 3.975 s: the frame at 4.0 s, which proves the 3.967 s
    frame nearest, comes with the window's end; at 30 fps the 3.967 s frame is already
    known to be nearer than the next will be, and the final window selects the same."""
    buf = WindowBuffer(window_s=3.0, hop_s=0.5, n_frames=20)
    early = {}
    for i in range(int(4.5 * 30)):
        buf.add_frame(i * NS // 30, i)
        for w in buf.pop_video_ready():
            early[w.end_ns] = (i * NS // 30, w.frame_stamps_ns)
    at, stamps = early[4 * NS]
    assert at < 4 * NS  # before the window ended
    ws = feed(buf, 0.0, 4.5, video=False)
    final = {w.end_ns: w.frame_stamps_ns for w in ws}
    assert final[4 * NS] == stamps
    assert all(final[e] == early[e][1] for e in final if e in early)


def test_audio_gap_inside_a_window_lowers_coverage_and_drops_audio():
    buf = WindowBuffer(window_s=3.0, hop_s=1.0, min_audio_coverage=0.8)
    ws = feed(buf, 0.0, 1.0) + feed(buf, 2.0, 5.0)  # one second of audio missing
    w = ws[0]
    assert 0.6 < w.audio_coverage < 0.7 and w.audio is None


def test_windows_from_media_matches_live_feeding():
    frames = np.arange(108)
    times = np.arange(108) / 30.0
    audio = np.random.default_rng(0).standard_normal(int(3.6 * 48000)).astype(np.float32)
    ws = windows_from_media(frames, times, audio, 48000, hop_s=0.5)
    assert [w.end_ns / NS for w in ws] == [3.0, 3.5]
    np.testing.assert_array_equal(ws[0].audio, audio[:3 * 48000])


def test_live_waits_for_a_lagging_but_alive_stream():
    """A backlogged node: camera frames (keep-last queue) run ahead of queued audio."""
    buf = WindowBuffer(window_s=3.0, hop_s=1.0, grace_s=0.5)
    for i in range(int(2.0 * RATE) // CHUNK):  # audio up to 2.0 s, arrived just now
        buf.add_audio(int(i * CHUNK / RATE * NS), np.zeros(CHUNK, np.float32), RATE,
                      arrival_s=100.0)
    for t in np.arange(0, 4.2, 1 / 30):  # frames up to 4.2 s
        buf.add_frame(int(t * NS), t, arrival_s=100.0)
    assert buf.pop_ready(now_s=100.1) == []  # audio is alive: wait for it
    ws = buf.pop_ready(now_s=100.6)  # audio silent for longer than grace: go without it
    assert ws and ws[0].end_ns == 3 * NS and ws[0].audio is None and ws[0].has_video


def test_a_video_only_bundle_never_waits_for_audio():
    """wait_for=("video",) (a bundle without an audio network): the same lagging stream as
    above gives its window at once; the default buffer waits for the live audio."""
    def fill(buf):
        for i in range(int(2.0 * RATE) // CHUNK):
            buf.add_audio(int(i * CHUNK / RATE * NS), np.zeros(CHUNK, np.float32), RATE,
                          arrival_s=100.0)
        for t in np.arange(0, 4.2, 1 / 30):
            buf.add_frame(int(t * NS), t, arrival_s=100.0)
        return buf

    both = fill(WindowBuffer(window_s=3.0, hop_s=1.0, grace_s=0.5))
    video = fill(WindowBuffer(window_s=3.0, hop_s=1.0, grace_s=0.5, wait_for=("video",)))
    assert both.pop_ready(now_s=100.1) == []
    ws = video.pop_ready(now_s=100.1)
    assert [w.end_ns for w in ws] == [3 * NS, 4 * NS] and all(w.has_video for w in ws)
    # offline (no arrival times): without wait_for it waits grace_s of stamps for audio
    offline = WindowBuffer(window_s=3.0, hop_s=1.0, grace_s=5.0, wait_for=("video",))
    assert [round(w.end_ns / NS) for w in feed(offline, 0.0, 4.5, audio=False)] == [3, 4]
    assert feed(WindowBuffer(window_s=3.0, hop_s=1.0, grace_s=5.0), 0.0, 4.5, audio=False) == []


def _all_selections(stamps_ns, ends_ns, n=20, window_ns=3 * NS):
    """What select_frames picks for each window when every frame is kept (the reference)."""
    from avemo_ros.face_frames import select_frames

    out = []
    for end in ends_ns:
        inside = [s for s in stamps_ns if end - window_ns <= s <= end]
        idx = select_frames(np.array(inside, np.float64) / NS, (end - window_ns) / NS, end / NS, n)
        out.append([inside[i] for i in idx])
    return out


def test_only_frames_some_window_selects_are_kept_and_windows_are_unchanged():
    for fps, hop in ((30.0, 0.5), (30.0, 1.5), (24.0, 1.0), (7.0, 0.5), (60.0, 0.3)):
        buf = WindowBuffer(window_s=3.0, hop_s=hop, n_frames=20, grace_s=0.5)
        jitter = np.random.default_rng(int(fps)).integers(-2_000_000, 2_000_000, 10_000)
        stamps = [int(round(i / fps * NS)) + (int(jitter[i]) if i else 0)
                  for i in range(int(12 * fps))]
        audio = [int(i * CHUNK / RATE * NS) for i in range(int(12.0 * RATE) // CHUNK)]
        events = sorted([(s, 1) for s in stamps] + [(a, 0) for a in audio])
        windows, held, kept = [], 0, []
        for stamp, kind in events:
            if kind:
                buf.add_frame(stamp, ("payload", stamp))
                kept += buf.take_selected_frames()
            else:
                buf.add_audio(stamp, np.zeros(CHUNK, np.float32), RATE)
            windows += buf.pop_ready()
            held = max(held, buf.frames_held)
        windows += buf.flush()
        assert len(windows) >= int((12 - 3) / hop) - 1
        ref = _all_selections(stamps, [w.end_ns for w in windows])
        for w, want in zip(windows, ref):
            assert w.frame_stamps_ns == want, (fps, hop, w.end_ns)
            assert [p[1] for p in w.frames] == want  # payloads travel with their stamps
        used = {s for w in windows for s in w.frame_stamps_ns}
        kept_stamps = [s for s, _ in kept]
        assert len(kept_stamps) == len(set(kept_stamps))  # each kept frame handed out once
        # frames of the last 3 s may wait for windows the input never reached
        done = windows[-1].end_ns - 3 * NS
        assert {s for s in kept_stamps if s <= done} <= used  # never a frame no window uses
        assert used <= set(kept_stamps) | {stamps[-1]}
        assert buf.frames_unused + len(kept_stamps) + 1 == len(stamps)
        assert buf.frames_unused >= sum(s not in used for s in stamps if s <= done) > 0
        # memory: only frames the open windows select, never every frame of the last 3 s
        selected = sorted({s for sel in ref for s in sel})
        bound = max(sum(w.end_ns - 3 * NS <= s <= w.end_ns + hop * NS for s in selected)
                    for w in windows)
        assert held <= bound + 2, (fps, hop, held, bound)


def test_window_is_emitted_once_both_streams_pass_its_end_without_waiting_for_grace():
    for arrival in (None, 100.0):
        buf = WindowBuffer(window_s=3.0, hop_s=1.0, grace_s=5.0)
        ws = []
        for i in range(int(3.04 * RATE) // CHUNK):  # audio to 3.04 s (covers 3.0)
            buf.add_audio(int(i * CHUNK / RATE * NS), np.zeros(CHUNK, np.float32), RATE,
                          arrival_s=arrival)
            ws += buf.pop_ready(now_s=arrival)
        assert ws == []  # no frame at or after 3.0 s yet: the camera is alive, wait for it
        for t in np.arange(0, 3.0 + 1e-9, 1 / 30):
            buf.add_frame(int(round(t * NS)), t, arrival_s=arrival)
            ws += buf.pop_ready(now_s=arrival)
        assert [w.end_ns for w in ws] == [3 * NS]  # same instant: grace (5 s) plays no part
        assert ws[0].audio is not None and ws[0].has_video


def test_video_covers_a_window_once_a_frame_passes_its_last_sample_time():
    """A camera out of phase with the window grid: no need to wait for a frame at the end."""
    from avemo_ros.face_frames import select_times

    buf = WindowBuffer(window_s=3.0, hop_s=1.0, grace_s=5.0)
    for i in range(int(3.2 * RATE) // CHUNK):
        buf.add_audio(int(i * CHUNK / RATE * NS), np.zeros(CHUNK, np.float32), RATE, arrival_s=1.0)
    last_sample = select_times(0.0, 3.0, 20)[-1]
    ws = []
    for t in np.arange(0.0, 2.99, 1 / 30) + 0.4 / 30:  # frames never exactly on the window end
        before = t < last_sample
        buf.add_frame(int(round(t * NS)), t, arrival_s=1.0)
        ws += buf.pop_ready(now_s=1.0)
        if before:
            assert ws == []
        else:
            break
    assert [w.end_ns for w in ws] == [3 * NS]  # emitted with the first frame past 2.925 s
    assert max(ws[0].frame_stamps_ns) <= 3 * NS


def test_grace_caps_the_wait_for_a_silent_modality():
    buf = WindowBuffer(window_s=3.0, hop_s=1.0, grace_s=0.5)
    for i in range(int(2.0 * RATE) // CHUNK):  # the microphone stops at 2.0 s
        buf.add_audio(int(i * CHUNK / RATE * NS), np.zeros(CHUNK, np.float32), RATE,
                      arrival_s=10.0)
    for t in np.arange(0, 3.2, 1 / 30):
        buf.add_frame(int(round(t * NS)), t, arrival_s=10.0 + t)
    assert buf.pop_ready(now_s=10.3) == []
    ws = buf.pop_ready(now_s=10.6)
    assert [w.end_ns for w in ws] == [3 * NS] and ws[0].audio is None and ws[0].has_video


def test_audio_is_resampled_once_per_chunk_as_the_whole_stream_would_be():
    from scipy.signal import resample_poly

    rate, chunk = 48000, 1536
    x = np.random.default_rng(1).standard_normal(6 * rate).astype(np.float32)
    buf = WindowBuffer(window_s=3.0, hop_s=1.0, sample_rate=16000)
    ws = []
    for a in range(0, x.size, chunk):
        buf.add_audio(a * NS // rate, x[a:a + chunk], rate)
        ws += buf.pop_ready()
    ws += buf.flush()
    whole = resample_poly(x, 1, 3).astype(np.float32)
    assert [w.end_ns / NS for w in ws] == [3.0, 4.0, 5.0, 6.0]
    for w in ws[:-1]:  # the last window ends at the stream's end (no future to correct it)
        start = w.start_ns * 16000 // NS
        assert w.sample_rate == 16000 and w.audio.size == 3 * 16000
        np.testing.assert_allclose(w.audio, whole[start:start + 3 * 16000], atol=1e-5)
