"""Offline evaluation of generated bags with the trained demo bundle: accuracy, files,
determinism."""
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from avemo_ros.bags import read_ground_truth
from avemo_ros.evaluation import read_windows_csv, write_report
from avemo_ros.offline import evaluate_bags
from avemo_ros.tools import evaluate as evaluate_cli
from avemo_ros.tools import make_bag

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = Path(os.environ.get("AVEMO_TEST_BUNDLE", ROOT / "data" / "models" / "synthetic"))
DEMO = ROOT / "data" / "demo"
CLIPS = ("01_actor20_happy.mp4", "02_actor20_sad.mp4")
HOP_S = 1.0

pytestmark = pytest.mark.skipif(not (BUNDLE / "manifest.json").is_file(),
                                reason=f"no trained bundle at {BUNDLE} (run `make model`)")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two held-out demo clips (actor 20: happy, sad); rendered afresh where data/demo lacks
    them."""
    paths = [DEMO / name for name in CLIPS]
    if all(p.is_file() for p in paths):
        return paths
    from training.demo_clips import write_demo_clips

    out = tmp_path_factory.mktemp("demo")
    return write_demo_clips(out, emotions=("happy", "sad"))


@pytest.fixture(scope="module")
def bags(clips, tmp_path_factory):
    """The same two clips as an MCAP / AudioStamped bag and an sqlite3 / legacy bag (raw
    images)."""
    out = tmp_path_factory.mktemp("bags")
    made = {}
    for name, storage, flavour in (("a.mcap_bag", "mcap", "mgonzs13"),
                                   ("b.sqlite_bag", "sqlite3", "ros_drivers")):
        rc = make_bag.main(["--out", str(out / name), "--media", *map(str, clips),
                            "--storage", storage, "--audio-flavour", flavour, "--gap-s", "0.5"])
        assert rc == 0
        made[storage] = out / name
    return made


def _without_latency(records):
    return [replace(r, latency_s=None) for r in records]


def test_make_bag_labels_from_names(bags):
    truth = read_ground_truth(bags["mcap"])
    assert [(s.source, s.label) for s in truth] == [(CLIPS[0], "happy"), (CLIPS[1], "sad")]
    assert truth[1].start_ns - truth[0].end_ns == 500_000_000
    assert make_bag.label_from_name("01-01-05-02-01-01-20.mp4") == "angry"
    assert make_bag.label_from_name("clip.mp4") is None


def test_offline_accuracy_report_and_determinism(bags, tmp_path):
    first = evaluate_bags([bags["mcap"]], BUNDLE, hop_s=HOP_S, threads=1)
    records = first.records
    # 7.7 s of stamps: windows end at 3, 4, ..., 7 s after the first stamp
    ends = [round((r.end_ns - records[0].start_ns) / 1e9, 3) for r in records]
    assert ends == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert first.seconds_of_media == pytest.approx(7.7, abs=0.05)
    assert all(r.label is not None and r.modalities == 3 for r in records)
    scored = [r for r in records if r.truth is not None]
    assert {r.truth for r in scored} == {"happy", "sad"}
    assert len(scored) >= 4  # only a window straddling the two clips may lack a majority label
    correct = sum(r.truth == r.label for r in scored)
    assert correct / len(scored) >= 0.75, [(r.truth, r.label, r.confidence) for r in records]

    report = write_report(tmp_path / "report", records, first.labels,
                          extra={"model_id": first.model_id})
    for name in ("report.json", "windows.csv", "confusion.png", "latency.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert report["metrics"]["accuracy"] == pytest.approx(correct / len(scored))
    assert report["windows"] == len(records)
    assert report["windows_without_truth"] == len(records) - len(scored)
    assert report["latency_s"]["n"] == len(records) and report["latency_s"]["p50"] > 0

    # deterministic: a second run gives the same windows, labels and probabilities
    second = evaluate_bags([bags["mcap"]], BUNDLE, hop_s=HOP_S, threads=1)
    assert _without_latency(second.records) == _without_latency(records)

    # the container and audio flavour do not matter: sqlite3 + legacy bytes give the same estimates
    other = evaluate_bags([bags["sqlite3"]], BUNDLE, hop_s=HOP_S, threads=1)
    assert [replace(r, source="", latency_s=None) for r in other.records] == \
        [replace(r, source="", latency_s=None) for r in records]


def test_evaluate_cli(bags, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = evaluate_cli.main([str(bags["mcap"]), str(bags["sqlite3"]), "--model-dir", str(BUNDLE),
                            "--out", str(out), "--hop", str(HOP_S), "--threads", "1"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "macro-F1" in text and "x real time" in text
    report = json.loads((out / "report.json").read_text())
    assert report["windows"] == 10
    assert report["sources"] == sorted([bags["mcap"].name, bags["sqlite3"].name])
    assert report["extra"]["realtime_factor"] > 0
    assert report["extra"]["per_bag"][1]["audio_topic"] == "/audio"
    records, labels = read_windows_csv(out / "windows.csv")
    assert len(records) == 10 and labels == report["metrics"]["labels"][:len(labels)]
    # both bags hold the same media: their windows agree one for one
    a = [r for r in records if r.source == bags["mcap"].name]
    b = [r for r in records if r.source == bags["sqlite3"].name]
    assert [(r.truth, r.label) for r in a] == [(r.truth, r.label) for r in b]


def test_evaluate_cli_bad_input(tmp_path, capsys):
    rc = evaluate_cli.main([str(tmp_path / "nope"), "--model-dir", str(BUNDLE),
                            "--out", str(tmp_path / "o")])
    assert rc == 1
    assert "bag not found" in capsys.readouterr().err


def test_offline_headerless_audio_and_compressed_images(clips, tmp_path):
    """Bare AudioData (stamped by log time, like the node does by arrival) + JPEG frames."""
    from avemo_ros.bags import timeline_from_clips, write_bag
    from avemo_ros.media import read_media

    decoded = [read_media(p) for p in clips]
    tl = timeline_from_clips(decoded, ["happy", "sad"], sources=list(CLIPS), chunk_s=0.02,
                             gap_s=0.5)
    bag = tmp_path / "headerless"
    write_bag(bag, tl.frames, tl.audio, truth=tl.truth, storage="sqlite3", image_kind="compressed",
              audio_flavour="ros_drivers", headerless_audio=True)
    result = evaluate_bags([bag], BUNDLE, hop_s=HOP_S, threads=1)
    stats = result.bags[0]
    assert stats.camera_topic == "/camera/image_raw/compressed" and stats.audio_topic == "/audio"
    assert stats.problems.keys() <= {"stream_gaps", "audio_without_header"}, stats.problems
    assert stats.problems["audio_without_header"] == stats.audio_chunks  # as the node counts
    assert stats.estimates == stats.windows == len(result.records) >= 4
    assert all(r.modalities == 3 for r in result.records)
    scored = [r for r in result.records if r.truth is not None]
    assert sum(r.truth == r.label for r in scored) / len(scored) >= 0.75


def test_offline_bag_recorded_from_audio_capture_defaults_mp3(clips, tmp_path):
    """A bag as `ros2 bag record` takes it from ros-drivers audio_capture with its defaults:
    AudioDataStamped holding MP3 frames plus AudioInfo(coding_format mp3). The MP3 is
    decoded (never read as PCM) and the windows keep their audio."""
    import numpy as np
    from rosbags.rosbag2 import StoragePlugin, Writer

    import audio_drivers
    from avemo_ros.bags import (AUDIO_DATA_STAMPED, AUDIO_INFO, IMAGE_TYPE, timeline_from_clips,
                                typestore_for)
    from avemo_ros.media import read_media

    decoded = [read_media(p) for p in clips]
    tl = timeline_from_clips(decoded, ["happy", "sad"], sources=list(CLIPS), chunk_s=0.02,
                             gap_s=0.0)
    store = typestore_for("ros_drivers")
    t = store.types
    audio = np.concatenate([c.samples[:, 0] for c in tl.audio])
    rate, t0 = tl.audio[0].sample_rate, tl.audio[0].stamp_ns
    bag = tmp_path / "audio_capture_mp3"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        img = writer.add_connection("/camera/image_raw", IMAGE_TYPE, typestore=store)
        mic = writer.add_connection("/audio/audio_stamped", AUDIO_DATA_STAMPED, typestore=store)
        info = writer.add_connection("/audio/audio_info", AUDIO_INFO, typestore=store)
        writer.write(info, t0, store.serialize_cdr(t[AUDIO_INFO](
            channels=1, sample_rate=rate, sample_format="S16LE", bitrate=128,
            coding_format="mp3"), AUDIO_INFO))
        msgs = []
        for f in tl.frames:
            h, w = f.rgb.shape[:2]
            stamp = t["builtin_interfaces/msg/Time"](sec=f.stamp_ns // 10**9,
                                                     nanosec=f.stamp_ns % 10**9)
            msg = t[IMAGE_TYPE](header=t["std_msgs/msg/Header"](stamp=stamp, frame_id="camera"),
                                height=h, width=w, encoding="rgb8", is_bigendian=0, step=3 * w,
                                data=f.rgb.reshape(-1))
            msgs.append((f.stamp_ns, img, store.serialize_cdr(msg, IMAGE_TYPE)))
        for first, data in audio_drivers.mp3_frames(audio, rate):
            ns = t0 + first * 10**9 // rate
            stamp = t["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
            msg = t[AUDIO_DATA_STAMPED](
                header=t["std_msgs/msg/Header"](stamp=stamp, frame_id="mic"),
                audio=t["audio_common_msgs/msg/AudioData"](data=np.frombuffer(data, np.uint8)))
            msgs.append((ns, mic, store.serialize_cdr(msg, AUDIO_DATA_STAMPED)))
        for ns, conn, raw in sorted(msgs, key=lambda m: m[0]):
            writer.write(conn, ns, raw)
    result = evaluate_bags([bag], BUNDLE, hop_s=HOP_S, threads=1)
    stats = result.bags[0]
    assert stats.audio_topic == "/audio/audio_stamped"
    assert not {"audio_invalid", "audio_unsupported"} & stats.problems.keys(), stats.problems
    assert len(result.records) >= 4 and all(r.modalities == 3 for r in result.records)
    # the same stream as raw PCM gives the same estimates: the MP3 was decoded, not misread
    from avemo_ros.bags import write_bag

    pcm = tmp_path / "pcm"
    write_bag(pcm, tl.frames, tl.audio, truth=tl.truth, storage="mcap",
              audio_flavour="ros_drivers")
    reference = evaluate_bags([pcm], BUNDLE, hop_s=HOP_S, threads=1).records
    pairs = [(a, b) for a in result.records for b in reference if a.end_ns == b.end_ns]
    assert len(pairs) >= len(reference) - 1
    same = np.mean([a.label == b.label for a, b in pairs])
    diff = np.mean([np.abs(np.subtract(a.probabilities, b.probabilities)).max() for a, b in pairs])
    assert same >= 0.8 and diff < 0.15, (same, diff)


def test_evaluate_cli_video_and_worst_windows(bags, tmp_path, capsys):
    """--video writes the bag's camera annotated; the worst windows get stills and a table."""
    from avemo_ros.media import read_media

    out, video = tmp_path / "rep", tmp_path / "bag.mp4"
    rc = evaluate_cli.main([str(bags["mcap"]), "--model-dir", str(BUNDLE), "--out", str(out),
                            "--hop", str(HOP_S), "--threads", "1", "--video", str(video),
                            "--worst", "2"])
    assert rc == 0
    text = capsys.readouterr().out
    assert f"annotated video: {video}" in text and "worst_windows.md" in text
    clip = read_media(video)
    assert clip.frames[0].shape[1] >= 640 and clip.duration == pytest.approx(7.7, abs=0.2)
    report = json.loads((out / "report.json").read_text())
    worst = report["extra"]["worst_windows"]
    assert len(worst) == 2
    probs = [w["true_class_probability"] for w in worst]
    assert probs == sorted(probs)
    records, labels = read_windows_csv(out / "windows.csv")
    scored = [r.probabilities[labels.index(r.truth)] for r in records if r.truth]
    assert probs[0] == pytest.approx(min(scored), abs=1e-6)
    for w in worst:
        still = out / w["still"]
        assert still.stat().st_size > 0 and w["still"] in (out / "worst_windows.md").read_text()
    import cv2

    img = cv2.imread(str(out / worst[0]["still"]))
    assert img is not None and img.shape[1] >= 640
