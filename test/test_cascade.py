"""Haar cascade lookup: explicit path, pip OpenCV's cv2.data, apt's opencv-data folders."""
import shutil

import cv2
import pytest

from avemo_ros import face_frames
from avemo_ros.face_frames import (DEFAULT_CASCADE, CascadeNotFoundError, FaceDetector,
                                   VideoFeatureConfig, resolve_cascade)


@pytest.fixture(scope="module")
def cascade_file():
    """The cascade of this machine's OpenCV (bundled, or apt's opencv-data)."""
    return resolve_cascade()


def _detects_a_face(detector: FaceDetector) -> bool:
    from training.synthetic import render_clip

    frames, _, _ = render_clip("happy", 3, duration_s=0.2, seed=1)
    return detector.detect(cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)) is not None


@pytest.mark.skipif(getattr(cv2, "data", None) is None,
                    reason="this OpenCV has no cv2.data (apt build)")
def test_pip_opencv_bundles_the_cascade():
    assert resolve_cascade() == cv2.data.haarcascades + DEFAULT_CASCADE


def test_explicit_path_wins(tmp_path, cascade_file):
    mine = tmp_path / "my_cascade.xml"
    shutil.copyfile(cascade_file, mine)
    assert resolve_cascade(str(mine)) == str(mine)
    det = FaceDetector(VideoFeatureConfig(), cascade_path=str(mine))
    assert det.cascade_path == str(mine) and _detects_a_face(det)


def test_explicit_path_must_exist(tmp_path):
    with pytest.raises(CascadeNotFoundError, match="cascade_path"):
        resolve_cascade(str(tmp_path / "nope.xml"))
    bad = tmp_path / "bad.xml"
    bad.write_text("<opencv_storage></opencv_storage>")
    with pytest.raises(CascadeNotFoundError, match="could not load"):
        FaceDetector(cascade_path=str(bad))


def test_apt_opencv_without_cv2_data(monkeypatch, tmp_path, cascade_file):
    """Debian/Ubuntu python3-opencv: no cv2.data, cascades in opencv-data's folder."""
    monkeypatch.delattr(cv2, "data", raising=False)
    system = tmp_path / "usr/share/opencv4/haarcascades"
    system.mkdir(parents=True)
    shutil.copyfile(cascade_file, system / DEFAULT_CASCADE)
    old = tmp_path / "usr/share/opencv/haarcascades"
    monkeypatch.setattr(face_frames, "SYSTEM_CASCADE_DIRS", (str(system), str(old)))
    assert resolve_cascade() == str(system / DEFAULT_CASCADE)
    det = FaceDetector()
    assert det.cascade_path == str(system / DEFAULT_CASCADE) and _detects_a_face(det)
    # the older layout is found too
    old.mkdir(parents=True)
    (system / DEFAULT_CASCADE).rename(old / DEFAULT_CASCADE)
    assert resolve_cascade() == str(old / DEFAULT_CASCADE)


def test_no_cascade_anywhere_names_the_fixes(monkeypatch, tmp_path):
    monkeypatch.delattr(cv2, "data", raising=False)
    monkeypatch.setattr(face_frames, "SYSTEM_CASCADE_DIRS", (str(tmp_path / "none"),))
    with pytest.raises(CascadeNotFoundError) as err:
        FaceDetector()
    text = str(err.value)
    assert "opencv-data" in text and "opencv-python-headless<5" in text and "cascade_path" in text
    assert str(tmp_path / "none") in text and isinstance(err.value, RuntimeError)
