"""rosbag2 bags: round trips over storage x audio flavour x image kind, ground truth,
robot-style bags."""
import json

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from avemo_ros.bags import (
    TRUTH_KEY,
    TRUTH_TOPIC,
    AudioStreamChunk,
    BagError,
    Frame,
    TruthSegment,
    bag_info,
    open_bag,
    read_ground_truth,
    read_messages,
    timeline_from_clips,
    truth_for_window,
    typestore_for,
    write_bag,
)
from avemo_ros.clip_stream import samples_to_ns
from avemo_ros.media import MediaClip
from avemo_ros import audio_codec, conversions as conv

NS = 1_000_000_000
RATE = 16000


def _clip(seed: int, n_frames: int = 6, seconds: float = 0.6) -> MediaClip:
    """A small clip: smooth 160x120 frames (JPEG-friendly) and a tone with noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:120, 0:160]
    frames = []
    for i in range(n_frames):
        r = x * 1.2 + 5 * i + seed * 20  # smooth ramps: no edges for JPEG to ring on
        g = y * 1.6 + 5 * i
        b = np.full_like(x, 60 + 30 * seed)
        frames.append(np.stack([r, g, b], axis=-1).astype(np.uint8))
    t = np.arange(int(seconds * RATE)) / RATE
    audio = (0.3 * np.sin(2 * np.pi * (220 + 110 * seed) * t) + 0.01 * rng.standard_normal(t.size))
    return MediaClip(frames=np.stack(frames), frame_times=np.arange(n_frames) / 10.0,
                     audio=audio.astype(np.float32)[:, None], sample_rate=RATE,
                     path=f"clip{seed}.mp4")


@pytest.fixture(scope="module")
def timeline():
    return timeline_from_clips([_clip(0), _clip(1)], ["happy", "sad"], chunk_s=0.02, gap_s=0.5)


def test_timeline_layout(timeline):
    start = timeline.start_ns
    assert [s.label for s in timeline.truth] == ["happy", "sad"]
    assert timeline.truth[0] == TruthSegment("clip0.mp4", start, start + int(0.6 * NS), "happy")
    # second clip starts after the first one's 0.6 s plus the 0.5 s gap
    assert timeline.truth[1].start_ns == start + int(1.1 * NS)
    assert [f.stamp_ns - start for f in timeline.frames[:3]] == [0, NS // 10, 2 * NS // 10]
    assert timeline.frames[6].stamp_ns == timeline.truth[1].start_ns
    assert len(timeline.audio) == 2 * 30 and timeline.audio[1].stamp_ns - start == 20_000_000


def _drop_custom_data(bag_dir):
    meta = bag_dir / "metadata.yaml"
    text = meta.read_text()
    assert TRUTH_KEY in text
    lines, skip = [], False
    for line in text.splitlines():
        if line.strip().startswith("custom_data:"):
            skip = True
            lines.append(line.split(":")[0] + ": null")
            continue
        if skip and (line.startswith("    ") or line.startswith("      ")):
            continue
        skip = False
        lines.append(line)
    meta.write_text("\n".join(lines) + "\n")
    assert TRUTH_KEY not in meta.read_text()


@pytest.mark.parametrize("image_kind", ["raw", "compressed"])
@pytest.mark.parametrize("flavour", ["mgonzs13", "ros_drivers"])
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip(tmp_path, timeline, storage, flavour, image_kind):
    bag = tmp_path / "bag"
    summary = write_bag(bag, timeline.frames, timeline.audio, truth=timeline.truth,
                        storage=storage, image_kind=image_kind, audio_flavour=flavour)
    assert (summary["frames"] == len(timeline.frames)
            and summary["audio_chunks"] == len(timeline.audio))
    assert list(bag.glob("*.mcap" if storage == "mcap" else "*.db3"))

    info = bag_info(bag)
    cam = "/camera/image_raw" + ("/compressed" if image_kind == "compressed" else "")
    assert (info.camera_topic, info.audio_topic) == (cam, "/audio")
    assert info.flavour == flavour and info.storage == storage
    assert info.truth == timeline.truth
    assert info.counts[cam] == len(timeline.frames)

    frames, chunks, last = [], [], -1
    legacy_info = None
    for m in read_messages(bag):
        assert m.log_time_ns >= last, "messages out of log-time order"
        last = m.log_time_ns
        if m.topic == cam:
            assert conv.stamp_to_ns(m.msg.header.stamp) == m.log_time_ns
            rgb = (conv.image_to_rgb(m.msg) if image_kind == "raw"
                   else conv.compressed_to_rgb(m.msg))
            frames.append((m.log_time_ns, rgb))
        elif m.topic == "/audio":
            if flavour == "mgonzs13":
                assert m.msgtype == "audio_common_msgs/msg/AudioStamped"
                chunk = audio_codec.audio_stamped_to_chunk(m.msg)
            else:
                assert m.msgtype == "audio_common_msgs/msg/AudioDataStamped"
                assert legacy_info is not None, "AudioInfo must come before the first chunk"
                chunk = audio_codec.audio_bytes_to_chunk(
                    m.msg.audio.data, sample_format=legacy_info.sample_format,
                    channels=legacy_info.channels, sample_rate=legacy_info.sample_rate,
                    stamp_ns=conv.stamp_to_ns(m.msg.header.stamp))
            # logged when its last sample was captured, as a recorder receives a microphone
            assert m.log_time_ns == chunk.stamp_ns + samples_to_ns(len(chunk.samples), RATE)
            chunks.append(chunk)
        elif m.topic == "/audio_info":
            legacy_info = m.msg
            assert (m.msg.sample_format, m.msg.channels, m.msg.sample_rate) == ("S16LE", 1, RATE)
    assert [s for s, _ in frames] == [f.stamp_ns for f in timeline.frames]
    for (_, got), want in zip(frames, timeline.frames):
        if image_kind == "raw":
            np.testing.assert_array_equal(got, want.rgb)
        else:
            err = np.abs(got.astype(np.int16) - want.rgb.astype(np.int16))
            assert err.mean() < 2.0 and np.percentile(err, 99) < 8
    assert [c.stamp_ns for c in chunks] == [a.stamp_ns for a in timeline.audio]
    assert all(c.sample_rate == RATE for c in chunks)
    got = np.concatenate([c.samples for c in chunks])
    want = np.concatenate([a.samples for a in timeline.audio])
    np.testing.assert_allclose(got, want, atol=1.0 / 32768 + 1e-7)  # int16 quantisation

    # the truth topic alone carries the same segments (what survives re-recording)
    if storage == "mcap":
        _drop_custom_data(bag)
        with open_bag(bag) as opened:
            assert TRUTH_KEY not in opened.custom_data
            assert opened.topics[TRUTH_TOPIC] == "std_msgs/msg/String"
            assert read_ground_truth(opened) == timeline.truth


def test_headerless_legacy_audio(tmp_path, timeline):
    bag = tmp_path / "bag"
    write_bag(bag, timeline.frames, timeline.audio, storage="mcap", audio_flavour="ros_drivers",
              headerless_audio=True, write_truth=False)
    info = bag_info(bag)
    assert (info.flavour == "ros_drivers"
            and info.topics["/audio"] == "audio_common_msgs/msg/AudioData")
    assert info.truth == []
    data = [m for m in read_messages(bag, ["/audio"])]
    assert len(data) == len(timeline.audio)
    assert data[0].msg.data.dtype == np.uint8 and data[0].msg.data.size == 2 * 320


def test_write_errors(tmp_path, timeline):
    with pytest.raises(BagError, match="storage"):
        write_bag(tmp_path / "a", [], [], storage="rosbag1")
    with pytest.raises(BagError, match="flavour"):
        write_bag(tmp_path / "a", [], [], audio_flavour="ros1")
    with pytest.raises(BagError, match="ros_drivers"):
        write_bag(tmp_path / "a", [], [], audio_flavour="mgonzs13", headerless_audio=True)
    (tmp_path / "exists").mkdir()
    with pytest.raises(BagError, match="exists"):
        write_bag(tmp_path / "exists", timeline.frames, timeline.audio)
    mixed = [AudioStreamChunk(0, np.zeros((10, 1), np.float32), 16000),
             AudioStreamChunk(10 ** 6, np.zeros((10, 1), np.float32), 8000)]
    with pytest.raises(BagError, match="differs"):
        write_bag(tmp_path / "b", [], mixed, audio_flavour="ros_drivers")
    with pytest.raises(BagError, match="uint8 RGB"):
        write_bag(tmp_path / "c", [Frame(0, np.zeros((4, 4), np.float32))], [])


def test_read_errors(tmp_path):
    with pytest.raises(BagError, match="not found"):
        bag_info(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="cannot open"):
        bag_info(tmp_path / "empty")


def test_truth_for_window():
    segs = [TruthSegment("a", 0, 4 * NS, "happy"), TruthSegment("b", 5 * NS, 9 * NS, "sad")]
    assert truth_for_window(segs, 1 * NS, 4 * NS) == "happy"
    assert truth_for_window(segs, 2 * NS, 5 * NS) == "happy"  # 2 of 3 s happy, 1 s gap
    assert truth_for_window(segs, 3 * NS, 6 * NS) is None  # 1 s each: no majority
    assert truth_for_window(segs, 4 * NS, 7 * NS) == "sad"  # 2 of 3 s
    assert truth_for_window(segs, 4 * NS, 7 * NS, min_share=0.7) is None
    assert truth_for_window(segs, 10 * NS, 13 * NS) is None
    assert truth_for_window(segs, 6 * NS, 9 * NS, min_share=1.0) is None


# ----------------------------------------------------------------------------- robot-style bags


def _robot_bag(path, storage, embed_definitions, flavour):
    """A bag as ``ros2 bag record`` writes it on a robot: plain rosbags Writer, no avemo extras."""
    store = typestore_for(flavour)
    t = store.types
    stamp0 = 1_730_000_000 * NS
    writer = Writer(path, version=8,
                    storage_plugin=StoragePlugin.MCAP if storage == "mcap"
                    else StoragePlugin.SQLITE3)
    writer.open()

    def conn(topic, msgtype):
        if embed_definitions:
            return writer.add_connection(topic, msgtype, typestore=store)
        # Humble-style: no message definition stored, only the type name (and a hash)
        return writer.add_connection(topic, msgtype, msgdef="", rihs01=store.hash_rihs01(msgtype))

    cam = conn("/camera/color/image_raw/compressed", "sensor_msgs/msg/CompressedImage")
    depth = conn("/camera/depth/image_raw", "sensor_msgs/msg/Image")
    chatter = conn("/rosout_like", "std_msgs/msg/String")
    audio_type = ("audio_common_msgs/msg/AudioStamped" if flavour == "mgonzs13"
                  else "audio_common_msgs/msg/AudioData")
    mic = conn("/mic/audio", audio_type)
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (200, 30, 30)
    import cv2

    ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    for i in range(5):
        ns = stamp0 + i * NS // 10
        header = t["std_msgs/msg/Header"](
            stamp=t["builtin_interfaces/msg/Time"](sec=ns // NS, nanosec=ns % NS),
            frame_id="camera_color_optical_frame")
        msg = t["sensor_msgs/msg/CompressedImage"](header=header, format="jpeg",
                                                   data=jpg.reshape(-1))
        # recorded slightly later
        writer.write(cam, ns + 3_000_000, store.serialize_cdr(msg, cam.msgtype))
        dmsg = t["sensor_msgs/msg/Image"](header=header, height=2, width=2, encoding="16UC1",
                                          is_bigendian=0, step=4, data=np.zeros(8, np.uint8))
        writer.write(depth, ns + 4_000_000, store.serialize_cdr(dmsg, depth.msgtype))
        writer.write(chatter, ns, store.serialize_cdr(t["std_msgs/msg/String"](data=f"tick {i}"),
                                                      chatter.msgtype))
        samples = (np.arange(1600, dtype=np.int16) % 100 - 50).astype(np.int16)
        if flavour == "mgonzs13":
            empty = {k: np.zeros(0, d) for k, d in (("float32_data", np.float32),
                                                    ("int32_data", np.int32),
                                                    ("int8_data", np.int8),
                                                    ("uint8_data", np.uint8))}
            amsg = t["audio_common_msgs/msg/AudioStamped"](
                header=t["std_msgs/msg/Header"](stamp=header.stamp, frame_id="mic"),
                audio=t["audio_common_msgs/msg/Audio"](
                    audio_data=t["audio_common_msgs/msg/AudioData"](int16_data=samples, **empty),
                    info=t["audio_common_msgs/msg/AudioInfo"](format=8, channels=1, rate=16000,
                                                              chunk=1600)))
        else:
            amsg = t["audio_common_msgs/msg/AudioData"](data=samples.view(np.uint8).copy())
        writer.write(mic, ns + 1_000_000, store.serialize_cdr(amsg, audio_type))
    writer.close()
    return stamp0


@pytest.mark.parametrize("storage,embed,flavour", [
    ("mcap", True, "mgonzs13"), ("sqlite3", True, "mgonzs13"),
    ("sqlite3", False, "mgonzs13"), ("mcap", False, "ros_drivers"),
    ("sqlite3", False, "ros_drivers")])
def test_robot_bag_without_ground_truth(tmp_path, storage, embed, flavour):
    bag = tmp_path / "robot"
    stamp0 = _robot_bag(bag, storage, embed, flavour)
    assert "avemo" not in (bag / "metadata.yaml").read_text()
    info = bag_info(bag)
    assert info.truth == [] and read_ground_truth(bag) == []
    assert info.flavour == flavour
    # the depth camera (16UC1 Image) is no camera for us: the colour CompressedImage is
    assert info.camera_topic == "/camera/color/image_raw/compressed"
    assert info.audio_topic == "/mic/audio"
    with open_bag(bag) as opened:
        from avemo_ros.bags import find_stream_topics

        assert (find_stream_topics(opened, camera_topic="/camera/depth/image_raw")[0]
                == "/camera/depth/image_raw")
        cam, mic = find_stream_topics(opened)
        with pytest.raises(BagError, match="type std_msgs/msg/String"):
            find_stream_topics(opened, camera_topic="/rosout_like")
        with pytest.raises(BagError, match="no audio topic"):
            find_stream_topics(opened, audio_topic="/nope")
        msgs = list(opened.messages([cam, mic]))
    assert len(msgs) == 10
    images = [m for m in msgs if m.topic == cam]
    rgb = conv.compressed_to_rgb(images[0].msg)
    assert rgb.shape == (48, 64, 3) and abs(int(rgb[10, 5, 0]) - 200) < 10
    assert conv.stamp_to_ns(images[0].msg.header.stamp) == stamp0
    audio = [m for m in msgs if m.topic == mic]
    if flavour == "mgonzs13":
        chunk = audio_codec.audio_stamped_to_chunk(audio[0].msg)
        assert chunk.stamp_ns == stamp0 and chunk.sample_rate == 16000
    else:
        chunk = audio_codec.audio_bytes_to_chunk(audio[0].msg.data, sample_format="S16LE",
                                                 channels=1, sample_rate=16000,
                                                 stamp_ns=audio[0].log_time_ns)
    assert chunk.samples.shape == (1600, 1)
    assert chunk.samples[0, 0] == pytest.approx(-50 / 32768)


def test_truth_json_errors(tmp_path, timeline):
    bag = tmp_path / "bag"
    write_bag(bag, timeline.frames[:2], timeline.audio[:2], truth=timeline.truth[:1])
    meta = bag / "metadata.yaml"
    good = json.dumps([{"source": "clip0.mp4", "start_ns": 1, "end_ns": 2, "label": "happy"}])
    text = meta.read_text()
    start = text.index(TRUTH_KEY)
    end = text.index("duration:")
    meta.write_text(text[:start] + TRUTH_KEY + ": '" + good.replace("'", "''") + "'\n  "
                    + text[end:])
    assert read_ground_truth(bag) == [TruthSegment("clip0.mp4", 1, 2, "happy")]
    meta.write_text(text[:start] + TRUTH_KEY + ": 'not json'\n  " + text[end:])
    with pytest.raises(BagError, match="ground truth"):
        read_ground_truth(bag)


def test_timeline_is_the_clip_stream():
    """Bag timelines stamp frames and chunks by clip_stream's one rule (44.1 kHz chunks and
    30 fps frames fall between nanoseconds), including the re-timed fps variant."""
    from avemo_ros.clip_stream import AudioEvent, clip_events

    rate, fps = 44100, 30.0
    frames = np.zeros((9, 4, 4, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(9)
    clip = MediaClip(frames=frames, frame_times=np.arange(9) / fps,
                     audio=np.zeros((rate * 3 // 10, 1), np.float32), sample_rate=rate)
    start = 1_700_000_000 * NS
    tl = timeline_from_clips([clip], ["calm"], chunk_s=0.01, start_ns=start)
    events = clip_events(clip, start, chunk_s=0.01)
    assert [f.stamp_ns for f in tl.frames] == [e.stamp_ns for e in events
                                               if not isinstance(e, AudioEvent)]
    assert [a.stamp_ns for a in tl.audio] == [e.stamp_ns for e in events
                                              if isinstance(e, AudioEvent)]
    assert tl.frames[1].stamp_ns - start == 33_333_333
    assert tl.audio[1].stamp_ns - start == round(441 * NS / rate)
    assert tl.truth[0].end_ns - start == 300_000_000 == tl.end_ns - start
    retimed = timeline_from_clips([clip], ["calm"], fps=10.0, chunk_s=0.01, start_ns=start)
    assert [f.stamp_ns - start for f in retimed.frames] == [0, 100_000_000, 200_000_000]
    assert [int(f.rgb[0, 0, 0]) for f in retimed.frames] == [0, 3, 6]  # latest at each tick
