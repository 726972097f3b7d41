"""Several faces per window: the pipeline's tracker on real faces (scikit-image's astronaut
and her mirror image, bench/face_scenes), one video branch and one fused estimate per
face, the primary face's rule, and the reasons for windows without a face."""
from types import SimpleNamespace

import numpy as np
import pytest

from avemo_ros.estimator import AudioBranch, EmotionEstimator, VideoBranch
from avemo_ros.face_frames import FaceStack, VideoFeatureConfig
from avemo_ros.face_tracking import FaceTracker
from avemo_ros.face_tracks import FrameResult, NoFace, TrackedFace
from avemo_ros.health import Health
from avemo_ros.input_problems import ProblemLog
from avemo_ros.pipeline import ESTIMATED, PipelineConfig, StreamingPipeline
from avemo_ros.stream_events import CameraFrame, MicrophoneChunk
from avemo_ros.window_faces import DetectorFaces, face_source, window_faces
from bench.face_scenes import background, degrade, paste_face, skimage_unavailable, two_face_clip

NS = 1_000_000_000
RATE, CHUNK = 16000, 512
needs_astronaut = pytest.mark.skipif(skimage_unavailable() is not None,
                                     reason=str(skimage_unavailable()))


class BoxEstimator(EmotionEstimator):
    """The estimator's contract without networks: audio says neutral; the video network
    says happy for a face in the left half of a 640-px frame and sad in the right half, so
    each face's estimate shows which face it came from."""

    def __init__(self):  # noqa: D107 - no bundle
        self.manifest = SimpleNamespace(audio=SimpleNamespace(window_s=3.0),
                                        video=VideoFeatureConfig())
        self.labels, self.model_id = ["neutral", "happy", "sad"], "fake"
        self.extractor = SimpleNamespace(detector=None, cascade_path=None)
        self.stacks = []

    def video_branch(self, greys, boxes, bad_frames=0):
        found = [b for b in boxes if b is not None]
        if not greys or len(found) < len(greys) / 2:
            return VideoBranch(FaceStack(None, False, 0.0, None), None, None, {}, bad_frames)
        box = tuple(int(v) for v in np.median(np.array(found), axis=0))
        self.stacks.append(box)
        p = [0.0, 0.9, 0.1] if box[0] + box[2] / 2 < 320 else [0.0, 0.1, 0.9]
        return VideoBranch(FaceStack(np.zeros(1), True, len(found) / len(greys), box),
                           np.array(p, np.float32), {}, {"video_net": 0.0}, bad_frames)

    def audio_branch(self, audio, sample_rate):
        return AudioBranch(audio, np.array([0.8, 0.1, 0.1], np.float32), {}, {"audio_net": 0.0})

    def fuse(self, audio, video):
        ps = [p for p in (audio.probabilities, video.probabilities) if p is not None]
        mods = (audio.probabilities is not None) | 2 * (video.probabilities is not None)
        return (np.mean(ps, axis=0) if ps else np.zeros(0, np.float32)), int(mods), {}


def events(frames, fps, audio=True):
    """Camera events of (stamp_ns, grey) frames and audio chunks over the same span."""
    out = [CameraFrame(s, g, received_ns=s) for s, g in frames]
    if audio:
        t0, t1 = frames[0][0], frames[-1][0] + int(NS / fps)
        for i in range((t1 - t0) * RATE // NS // CHUNK):
            s = t0 + i * CHUNK * NS // RATE
            out.append(MicrophoneChunk(s, np.full(CHUNK, 0.1, np.float32), RATE, s))
    return sorted(out, key=lambda e: (e.received_ns, isinstance(e, CameraFrame)))


def run(frames, fps=15.0, audio=True, **cfg):
    health = Health()
    est = BoxEstimator()
    pipe = StreamingPipeline(est, ProblemLog(health, lambda level, text: None),
                             PipelineConfig(hop_s=1.0, grace_s=0.5, **cfg))
    out = []
    for e in events(frames, fps, audio):
        pipe.push(e)
        out += pipe.run()
    out += pipe.flush()
    return [o for o in out if o.status == ESTIMATED], health, pipe


@pytest.fixture(scope="module")
def two_people():
    """6 s of two people at 640x480, 15 fps: "a" (the astronaut, ~110 px, left) and "b"
    (her mirror image, ~80 px, right)."""
    return [(f.stamp_ns, f.grey) for f in two_face_clip(seconds=6.0, fps=15.0, seed=3)]


@needs_astronaut
def test_each_tracked_face_gets_its_own_estimate_and_the_largest_is_primary(two_people):
    est, health, pipe = run(two_people)
    assert isinstance(pipe.faces, FaceTracker)  # the default face source
    assert len(est) >= 3
    for o in est:
        r = o.result
        assert [f.face_id for f in r.faces][0] == r.face_id != ""
        assert len(r.faces) == 2, [f.face_id for f in r.faces]
        left, right = sorted(r.faces, key=lambda f: f.box[0])
        # the primary is the largest face: the astronaut, on the left
        assert r.face_id == left.face_id and left.box[2] > right.box[2]
        assert left.label == "happy" and right.label == "sad"  # each face its own video
        # audio is shared: both fused estimates hold the audio's neutral share
        assert np.allclose(left.probabilities, [0.4, 0.5, 0.1], atol=1e-6)
        assert np.allclose(right.probabilities, [0.4, 0.1, 0.5], atol=1e-6)
        assert r.label == "happy" and r.modalities == 3
    # ids are stable across windows
    assert len({tuple(sorted(f.face_id for f in o.result.faces)) for o in est}) == 1
    assert health.counts.get("windows_without_face", 0) == 0


@needs_astronaut
def test_max_faces_limits_the_faces_estimated(two_people):
    est, _, _ = run(two_people, max_faces=1)
    assert est and all(len(o.result.faces) == 1 for o in est)
    assert all(o.result.faces[0].label == "happy" for o in est)  # the largest face stays


def scene(face_px, n=90, fps=15.0):
    rng = np.random.default_rng(5)
    base = background(rng, 640, 480, "wall")
    frames = []
    for i in range(n):
        img = base.copy()
        if face_px:
            paste_face(img, face_px, (320 + 20 * np.sin(i / 10), 240))
        frames.append((NS * 100 + int(i * NS / fps), degrade(img, rng)))
    return frames


@needs_astronaut
@pytest.mark.parametrize("face_px, counter", [(0, "windows_face_none_found"),
                                              (54, "windows_face_too_small")])
def test_a_window_without_a_face_is_counted_with_its_reason(face_px, counter):
    est, health, _ = run(scene(face_px))
    assert est and all(o.result.modalities == 1 and not o.result.faces for o in est)
    assert health.counts.get(counter, 0) == len(est) == health.counts["windows_without_face"]
    others = {"windows_face_none_found", "windows_face_too_small", "windows_face_lost"} - {counter}
    assert all(health.counts.get(c, 0) == 0 for c in others)


@needs_astronaut
@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_a_face_of_min_face_px_is_found_at_hd_resolutions(size):
    """min_face_px is in camera pixels: a 70 px face (the default minimum is 64) gives
    every window a video modality at 1280x720 and 1920x1080 alike."""
    rng = np.random.default_rng(2)
    base = background(rng, *size, "wall")
    frames = []
    for i in range(75):
        img = base.copy()
        paste_face(img, 70, (size[0] / 2 + 30 * np.sin(i / 12), size[1] / 2))
        frames.append((NS * 100 + int(i * NS / 15), degrade(img, rng)))
    est, health, _ = run(frames)
    assert len(est) >= 2 and all(o.result.modalities == 3 for o in est)
    assert health.counts.get("windows_without_face", 0) == 0


def test_detector_faces_keeps_the_largest_face_without_an_id():
    boxes = iter([(10, 10, 40, 40), None])
    src = DetectorFaces(SimpleNamespace(detect=lambda grey: next(boxes)))
    hit = src.update_frame(5, np.zeros((8, 8), np.uint8))
    miss = src.update_frame(6, np.zeros((8, 8), np.uint8))
    assert [(f.id, f.box) for f in hit.faces] == [("", (10, 10, 40, 40))] and hit.reason is None
    assert miss.faces == () and miss.reason is NoFace.NONE_FOUND


def _frame(stamp, faces):
    return FrameResult(stamp, tuple(TrackedFace(i, b, True, 1, 0, 1, stamp, stamp, 1.0)
                                    for i, b in faces), None if faces else NoFace.LOST, "tracks")


def test_window_faces_leaves_out_faces_seen_in_too_few_frames():
    greys = [np.zeros((480, 640), np.uint8)] * 4
    big, small = ("aaaaa", (100, 100, 90, 90)), ("bbbbb", (400, 100, 60, 60))
    frames = [_frame(i, [big] + ([small] if i == 0 else [])) for i in range(4)]
    got = window_faces(BoxEstimator(), greys, frames, 0, max_faces=3)
    assert [i for i, _ in got.branches] == ["aaaaa"] and got.reason is None
    none = window_faces(BoxEstimator(), greys, [_frame(i, []) for i in range(4)], 0, 3)
    assert [i for i, _ in none.branches] == [""] and none.reason is NoFace.LOST
    assert not none.branches[0][1].faces.face_found


def test_face_source_names_the_fix_for_a_detector_it_cannot_make(tmp_path):
    from avemo_ros.face_detectors import DetectorError

    with pytest.raises(DetectorError, match="model"):
        face_source(BoxEstimator(), detector="yunet")
    with pytest.raises(DetectorError, match="not found"):
        face_source(BoxEstimator(), detector="yunet", detector_model=str(tmp_path / "x.onnx"))
    assert isinstance(face_source(BoxEstimator(), tracking=False), DetectorFaces)
    tracker = face_source(BoxEstimator(), max_faces=2)
    assert tracker.config.max_faces == 2 and tracker.config.min_face_px == 64
