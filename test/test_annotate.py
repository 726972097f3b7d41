"""The annotation drawing (no ROS): face boxes and ids, the panel, the bar chart, any size."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from avemo_ros.annotate import (BAR_BACK, DIM, LIT, UNLIT, FaceMark, annotate, faces_of,
                                label_colour, layout, speech_text)
from avemo_ros.annotated_video import AnnotatedVideoWriter, EstimateTimeline
from avemo_ros.estimator import EmotionResult

LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
SIZES = [(480, 640), (720, 1280), (1080, 1920)]


def result(probs=(0.02, 0.03, 0.6, 0.05, 0.2, 0.04, 0.03, 0.03), box=(300, 150, 140, 170),
           modalities=3, **extra) -> EmotionResult:
    p = np.asarray(probs, dtype=np.float64)
    k = int(np.argmax(p))
    r = EmotionResult(start_ns=0, end_ns=3_000_000_000, labels=list(LABELS), probabilities=p,
                      label=LABELS[k], confidence=float(p[k]), modalities=modalities,
                      audio_probabilities=None, video_probabilities=None,
                      face_found=box is not None, face_box=box, valence=0.0, arousal=0.0,
                      inference_time=0.02, timings={})
    for k_, v in extra.items():
        setattr(r, k_, v)
    return r


def frame(h=480, w=640, value=128):
    return np.full((h, w, 3), value, np.uint8)


def outline(box):
    """Pixel coordinates on the outline of a box (its four edges, a few samples each)."""
    x, y, w, h = box
    xs = np.linspace(x + 3, x + w - 4, 7).astype(int)
    ys = np.linspace(y + 3, y + h - 4, 7).astype(int)
    return ([(y, xx) for xx in xs] + [(y + h - 1, xx) for xx in xs]
            + [(yy, x) for yy in ys] + [(yy, x + w - 1) for yy in ys])


def filled_length(img, bar, colour):
    """How many pixels from the bar's left end along its middle row have ``colour``."""
    x, y, w, h = bar
    row = img[y + h // 2, x:x + w].astype(int)
    hit = np.all(np.abs(row - np.asarray(colour)) <= 2, axis=1)
    return int(np.argmin(hit)) if not hit.all() else w


def test_the_box_outline_is_drawn_in_the_label_colour_and_the_inside_kept():
    src = frame()
    r = result()
    out = annotate(src, r, latency_s=0.025)
    assert out.shape == src.shape and out.dtype == np.uint8
    assert np.all(src == 128), "the input frame must not change"
    colour = np.asarray(label_colour(r.label))
    for yy, xx in outline(r.face_box):
        assert np.abs(out[yy, xx].astype(int) - colour).max() <= 3, (yy, xx, out[yy, xx])
    x, y, w, h = r.face_box
    inside = out[y + 10:y + h - 10, x + 10:x + w - 10]
    assert np.all(inside == 128), "the face itself is left as it is"
    # far corner: untouched
    assert np.all(out[-20:, -20:] == 128)


def test_the_tag_shows_the_id_when_the_result_has_one():
    r = result()
    plain = annotate(frame(), r)
    r.face_id = "7"
    with_id = annotate(frame(), r)
    x, y, w, h = r.face_box
    tag = slice(max(0, y - 30), y), slice(x, x + 200)
    assert not np.array_equal(plain[tag], with_id[tag]), "the id changes the tag"
    assert faces_of(r) == [FaceMark(r.face_box, "7", r.label, r.confidence)]


def test_several_faces_each_get_a_box():
    faces = [((40, 250, 100, 120), "1", "happy", 0.9), ((450, 250, 120, 140), "2", "sad", 0.4),
             FaceMark((250, 320, 80, 90), "3")]
    out = annotate(frame(), result(box=None), faces=faces)
    for face, colour in zip(faces, (label_colour("happy"), label_colour("sad"), DIM)):
        box = face.box if isinstance(face, FaceMark) else face[0]
        for yy, xx in outline(box):
            assert np.abs(out[yy, xx].astype(int) - np.asarray(colour)).max() <= 3
    # several faces as a result carries them (objects with box / face_id / label / confidence)
    r = result()
    r.faces = [SimpleNamespace(box=(40, 250, 100, 120), face_id="1", label="happy",
                               confidence=0.9)]
    assert faces_of(r) == [FaceMark((40, 250, 100, 120), "1", "happy", 0.9)]


@pytest.mark.parametrize("h,w", SIZES)
def test_the_bar_chart_reflects_the_probabilities(h, w):
    probs = np.array([0.05, 0.1, 0.45, 0.0, 0.25, 0.05, 0.1, 0.0])
    r = result(probs=probs, box=(w // 2, h // 3, w // 6, h // 4))
    out = annotate(frame(h, w, 200), r)
    lay = layout(h, w, len(LABELS))
    top = int(np.argmax(probs))
    lengths = []
    for i, bar in enumerate(lay.bars):
        colour = label_colour(LABELS[i]) if i == top else DIM
        n = filled_length(out, bar, colour)
        lengths.append(n)
        assert abs(n - probs[i] * bar[2]) <= 1.5, (LABELS[i], n, probs[i] * bar[2])
        x, y, bw, bh = bar
        if probs[i] < 1:  # the rest of the bar is its background
            assert np.abs(out[y + bh // 2, x + bw - 1].astype(int) - BAR_BACK).max() <= 2
    assert np.argmax(lengths) == top
    # the larger the frame, the larger the chart (fonts and bars scale)
    assert lay.bars[0][2] == pytest.approx(104 * lay.scale, abs=1)


@pytest.mark.parametrize("h,w", [(240, 320), *SIZES])
def test_every_size_keeps_the_panel_inside_and_scales(h, w):
    lay = layout(h, w, len(LABELS), n_notes=2)
    x, y, pw, ph = lay.panel
    assert 0 <= x and 0 <= y and x + pw <= w and y + ph <= h
    for bx, by, bw, bh in lay.bars + lay.badges:
        assert x <= bx and bx + bw <= x + pw and y <= by and by + bh <= y + ph
    assert lay.lines == tuple(sorted(lay.lines)) and lay.lines[-1] < lay.bars[0][1]
    out = annotate(frame(h, w), result(box=(w // 2, h // 3, w // 6, h // 4)),
                   notes=["truth happy", "t 3.0 s"])
    assert out.shape == (h, w, 3)
    if (h, w) == (1080, 1920):
        assert lay.scale == pytest.approx(2.25) and lay.thickness == 2


def test_modality_badges_light_for_the_modalities_used():
    for mods, lit in ((1, (True, False)), (2, (False, True)), (3, (True, True))):
        out = annotate(frame(), result(modalities=mods))
        lay = layout(480, 640, len(LABELS))
        for (bx, by, bw, bh), on in zip(lay.badges, lit):
            corner = out[by + 1, bx + 1].astype(int)
            assert np.abs(corner - np.asarray(LIT if on else UNLIT)).max() <= 2, (mods, corner)


def test_speech_and_latency_lines():
    assert speech_text(result()) == ("speech --", False)  # no speech gate ran
    assert speech_text(result(speech_detected=True, speech_fraction=0.82)) == ("speech 82%", True)
    assert speech_text(result(speech_detected=False, speech_fraction=0.05)) == \
        ("no speech 5%", False)
    lay = layout(480, 640, len(LABELS))
    band = slice(lay.lines[2] - lay.line_h + 4, lay.lines[3] + 4), slice(lay.names_x, 200)
    a = annotate(frame(), result(speech_detected=True, speech_fraction=0.8), latency_s=0.02)
    b = annotate(frame(), result(speech_detected=False, speech_fraction=0.1), latency_s=0.3)
    assert not np.array_equal(a[band], b[band])


def test_no_estimate_yet_and_odd_input():
    out = annotate(frame(), None, labels=LABELS)
    assert out.shape == (480, 640, 3)
    grey = annotate(np.full((480, 640), 90, np.uint8), result())
    assert grey.shape == (480, 640, 3)
    small = annotate(frame(240, 320), result(box=(100, 60, 50, 60)), min_width=640)
    assert small.shape == (480, 640, 3)
    for yy, xx in outline((200, 120, 100, 120)):  # the box scaled with the frame
        assert np.abs(small[yy, xx].astype(int) - label_colour("happy")).max() <= 3
    with pytest.raises(ValueError):
        annotate(np.zeros((4, 4, 3), np.float32), result())
    # unknown labels get a stable colour of their own
    assert label_colour("bored") == label_colour("bored") != label_colour("happy")


def test_timeline_gives_the_latest_ended_window():
    tl = EstimateTimeline([(3_000, "a", 0.1), (5_000, "c", 0.3)])
    tl.add(4_000, "b", 0.2)
    assert tl.at(2_999) == (None, None)
    assert tl.at(3_000) == ("a", 0.1)
    assert tl.at(4_500) == ("b", 0.2)
    assert tl.at(10_000) == ("c", 0.3)
    assert len(tl) == 3


def test_annotated_video_writer_places_frames_by_time(tmp_path):
    from avemo_ros.media import read_media

    path = tmp_path / "v.mp4"
    with AnnotatedVideoWriter(path, fps=10.0, audio=np.zeros(16000, np.float32),
                              sample_rate=16000) as w:
        for i, t in enumerate((0.0, 0.1, 0.1, 0.5, 0.6)):  # a repeat, a gap of 3 slots
            w.write(annotate(frame(121, 161, 20 * i), result(box=(40, 20, 50, 60))), t)
    assert w.frames_written == 7  # slots 0..6: the gap filled, the repeat left out
    clip = read_media(path)
    assert clip.frames.shape == (7, 120, 160, 3)  # cut to even sizes
    assert clip.sample_rate == 16000
