import numpy as np
import pytest

from avemo_ros.face_frames import (FaceDetector, VideoFeatureConfig, build_face_stack, crop_face,
                                   detection_scale, face_stack_from_frames, select_frames,
                                   select_times, to_grey)
from training.synthetic import render_clip

CFG = VideoFeatureConfig()


@pytest.fixture(scope="module")
def clip():
    frames, _, _ = render_clip("happy", 3, duration_s=3.2, seed=1)
    return frames, np.arange(len(frames)) / 30.0


def test_selects_n_frames_spread_over_the_window():
    times = np.arange(0, 4, 1 / 30.0)
    idx = select_frames(times, 1.0, 4.0, 20)
    assert len(idx) == 20 and np.all(np.diff(idx) > 0)
    # slot centres of a grid anchored at 0 (0.075 + 0.15 k) that lie in [1.0, 4.0)
    assert abs(times[idx[0]] - 1.125) < 1 / 30 and abs(times[idx[-1]] - 3.975) < 1 / 30
    assert len(select_frames(times, 10.0, 13.0, 20)) == 0  # no frame inside: nothing


@pytest.mark.parametrize("start", [0.5, 1.0, 1234567890.25])
def test_overlapping_windows_share_their_sample_times(start):
    a, b = select_times(start, start + 3.0, 20), select_times(start + 0.5, start + 3.5, 20)
    assert np.all((a >= start) & (a < start + 3.0)) and np.allclose(np.diff(a), 0.15)
    shared = np.isclose(a[:, None], b[None, :], atol=1e-6).any(axis=1).sum()
    assert shared >= 16  # 3 s windows 0.5 s apart: 20 - 0.5 / 0.15 slots in common


def test_slow_camera_repeats_frames():
    idx = select_frames(np.arange(0, 3, 0.5), 0.0, 3.0, 20)
    assert len(idx) == 20 and len(set(idx.tolist())) == 6


def test_face_stack_of_a_rendered_face(clip):
    frames, times = clip
    stack = face_stack_from_frames(frames, times, 0.0, 3.0, FaceDetector(CFG), CFG)
    assert stack.face_found and stack.found_fraction >= 0.9
    assert stack.frames.shape == CFG.shape == (20, 100, 60)
    assert abs(stack.frames.mean()) < 1e-4 and abs(stack.frames.std() - 1) < 1e-3
    x, y, w, h = stack.box
    H, W = frames.shape[1:3]
    assert 0 <= x < W and 0 <= y < H and 30 < w < W and 30 < h < H


def test_no_face_means_no_video_modality_not_a_blind_crop(clip):
    frames, times = clip
    blank = np.full_like(frames, 128)
    stack = face_stack_from_frames(blank, times, 0.0, 3.0, FaceDetector(CFG), CFG)
    assert not stack.face_found and stack.frames is None and stack.box is None


def test_too_few_faces_is_flagged_and_missing_ones_borrow_a_box():
    grey = np.zeros((240, 320), np.uint8)
    boxes = [None] * 20
    boxes[3] = (100, 60, 80, 80)
    assert not build_face_stack([grey] * 20, boxes, CFG).face_found
    boxes = [(100, 60, 80, 80) if i % 4 else None for i in range(20)]
    stack = build_face_stack([grey] * 20, boxes, CFG)
    assert stack.face_found and stack.found_fraction == 0.75 and stack.frames.shape == CFG.shape


def test_crop_near_the_border_keeps_the_shape():
    grey = np.random.default_rng(0).integers(0, 255, (240, 320), dtype=np.uint8)
    assert crop_face(grey, (-20, -20, 100, 100), CFG).shape == (100, 60)
    assert crop_face(grey, (300, 200, 60, 60), CFG).shape == (100, 60)
    assert to_grey(np.zeros((4, 4, 3), np.uint8)).shape == (4, 4)


def test_extractor_caches_detections_by_stamp_until_reset(clip):
    from avemo_ros.audio_features import AudioFeatureConfig
    from avemo_ros.estimator import FeatureExtractor
    frames, _ = clip
    ex = FeatureExtractor(AudioFeatureConfig(), CFG)
    grey = to_grey(frames[0])
    box = ex.prepare_frame(1000, grey)
    assert box is not None
    # Same stamp, another image (a restarted clock): the cached box is served ...
    assert ex.prepare_frame(1000, np.zeros_like(grey)) == box
    # ... until the cache is reset, when the new image is looked at.
    ex.reset()
    assert ex.prepare_frame(1000, np.zeros_like(grey)) is None


def _face_in_canvas(clip, width, height, face_px):
    """A rendered face scaled to ``face_px`` tall on a grey ``width`` x ``height`` frame."""
    import cv2

    grey = to_grey(clip[0][10])
    found = FaceDetector(VideoFeatureConfig(min_face_camera_px=0)).detect(grey)
    k = face_px / found[3]
    face = cv2.resize(grey, (round(grey.shape[1] * k), round(grey.shape[0] * k)),
                      interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width), 110, np.uint8)
    y, x = (height - face.shape[0]) // 3, (width - face.shape[1]) // 2
    canvas[y:y + face.shape[0], x:x + face.shape[1]] = face
    return canvas


@pytest.mark.parametrize("width,height", [(640, 480), (1280, 720), (1920, 1080)])
def test_a_face_of_the_minimum_size_is_found_at_any_resolution(clip, width, height):
    """min_face_camera_px is in camera pixels: a 130 px face (a person a metre or two from
    the camera) is found on VGA, HD and full-HD frames alike; the rule of older bundles
    (scale to 320 px wide, 32 px minimum) loses it at full HD (and at HD it is on the edge)."""
    canvas = _face_in_canvas(clip, width, height, face_px=130)
    box = FaceDetector(VideoFeatureConfig(min_face_camera_px=64)).detect(canvas)
    assert box is not None and 110 <= box[3] <= 160, box
    legacy = FaceDetector(VideoFeatureConfig(min_face_camera_px=0)).detect(canvas)
    if width == 1920:
        assert legacy is None  # 130 px at 1920 wide is 22 px at 320: below the 32 px window
    # a minimum above the face's size finds nothing
    assert FaceDetector(VideoFeatureConfig(min_face_camera_px=260)).detect(canvas) is None


def test_older_bundles_keep_their_detection_rule():
    from avemo_ros.manifest import _LATER_FIELDS

    # Older manifests: the fixed 320 px detection width, and the per-window standardisation.
    assert _LATER_FIELDS["video"] == {"min_face_camera_px": 0,
                                      "normalisation": "window_standardise"}
    assert detection_scale(1920, VideoFeatureConfig(min_face_camera_px=0)) == 320 / 1920
    assert detection_scale(1920, VideoFeatureConfig()) == 0.5
    assert detection_scale(200, VideoFeatureConfig(min_face_camera_px=16)) == 1.0  # no upscale


def test_normalisations():
    from avemo_ros.face_frames import SCALE_PM1, WINDOW_STANDARDISE, normalise_stack

    stack = np.array([[[0.0, 127.5], [255.0, 51.0]]], np.float32)
    np.testing.assert_allclose(normalise_stack(stack, SCALE_PM1), [[[-1, 0], [1, -0.6]]],
                               atol=1e-6)  # FER2013's (x / 255 - 0.5) * 2
    std = normalise_stack(stack, WINDOW_STANDARDISE)
    assert abs(std.mean()) < 1e-6 and abs(std.std() - 1) < 1e-5
    assert not normalise_stack(np.full((2, 3, 3), 80.0), WINDOW_STANDARDISE).any()  # flat
    with pytest.raises(ValueError, match="unknown face normalisation"):
        VideoFeatureConfig(normalisation="minmax")
    with pytest.raises(ValueError, match="unknown face normalisation"):
        normalise_stack(stack, "minmax")
