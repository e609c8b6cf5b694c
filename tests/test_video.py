"""mer_ray.media.video: probing, keyframe decoding, failure statuses."""
from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest

from mer_ray.media import errors as st
from mer_ray.media.errors import MediaError
from mer_ray.media.video import (KeyframeReader, check_file, container_kind, has_audio_stream,
                                 has_video_stream, read_keyframes, sniff_kind)
from mer_ray.sample import ClipSpec, SampleConfig, clip_audio, clip_frames, ffmpeg_exe, write_clip

CFG = SampleConfig(seconds=2.0, fps=30.0, width=320, height=240)
SPEC = ClipSpec("happy", 1, 0, 1, 1, 1)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    """A 2 s / 30 fps clip (moov at the end), the same with moov first, and that one cut."""
    root = tmp_path_factory.mktemp("video")
    frames = list(clip_frames(SPEC, CFG))
    audio = clip_audio(SPEC, CFG)
    plain = write_clip(root / "plain.mp4", frames, audio, CFG.fps, CFG.audio_rate)
    fast = write_clip(root / "fast.mp4", frames, audio, CFG.fps, CFG.audio_rate, faststart=True)
    cut = root / "fast_cut.mp4"
    data = fast.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return {"plain": plain, "fast": fast, "cut": cut, "frames": len(frames)}


def opencv_frames(path) -> list[np.ndarray]:
    """Every frame of a video as OpenCV's ``read()`` gives it (the thesis-style full decode)."""
    import cv2

    cap, every = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        every.append(frame)
    cap.release()
    return every


def test_keyframe_indices_timestamps_and_info(clips):
    with KeyframeReader(str(clips["plain"]), skip=10) as reader:
        keyframes = list(reader)
        info = reader.info
    assert (info.width, info.height, info.frame_count) == (320, 240, 60)
    assert info.fps == pytest.approx(30.0)
    assert info.duration_s == pytest.approx(2.0)
    assert [k.index for k in keyframes] == [0, 10, 20, 30, 40, 50]
    assert [k.timestamp_s for k in keyframes] == pytest.approx([i / 30.0 for i in range(0, 60, 10)])
    assert all(k.image.shape == (240, 320, 3) and k.image.dtype == np.uint8 for k in keyframes)
    assert reader.frames_seen == 60 and reader.keyframes_read == 6
    assert 6 <= reader.frames_decoded <= 60
    assert reader.skip_used == 10 and not reader.stopped_early


def test_non_reference_frames_are_not_decoded(clips):
    """The sample encoder uses B-frames: those that are neither keyframes nor referenced are
    dropped by the decoder, and the keyframes still equal a full decode (next test)."""
    with KeyframeReader(str(clips["plain"]), skip=10) as reader:
        n = len(list(reader))
    assert n == 6 and reader.frames_seen == 60
    assert reader.frames_decoded < 60


def test_keyframes_equal_full_decode(clips):
    every = opencv_frames(clips["plain"])
    _, keyframes = read_keyframes(str(clips["plain"]), skip=7)
    assert [k.index for k in keyframes] == list(range(0, len(every), 7))
    for k in keyframes:
        assert np.array_equal(k.image, every[k.index])


CODECS = {"vp9.webm": ["-c:v", "libvpx-vp9", "-b:v", "300k"], "mjpeg.avi": ["-c:v", "mjpeg"],
          "mpeg2.mpg": ["-c:v", "mpeg2video"], "hevc.mp4": ["-c:v", "libx265", "-x265-params",
                                                         "log-level=error"],
          "h264-bframes.ts": ["-c:v", "libx264", "-bf", "3"], "mpeg4.mkv": ["-c:v", "mpeg4"]}


@pytest.mark.parametrize("name", sorted(CODECS))
def test_other_codecs_and_containers_give_the_full_decode_keyframes(name, tmp_path):
    """Odd codecs / containers: the same keyframes as OpenCV's full decode, bit for bit, and a
    frame count even where the container stores none (Matroska, WebM)."""
    path = tmp_path / name
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=320x240:rate=25:duration=2", *CODECS[name], str(path)], check=True)
    every = opencv_frames(path)
    with KeyframeReader(str(path), skip=10) as reader:
        keyframes = list(reader)
    assert len(every) == 50 and reader.info.frame_count == 50 and not reader.stopped_early
    assert [k.index for k in keyframes] == [0, 10, 20, 30, 40]
    for k in keyframes:
        assert np.array_equal(k.image, every[k.index]), (name, k.index)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_phone_video_is_read_upright(clips, degrees, tmp_path):
    """A display-matrix rotation (as phones write it) is applied, as OpenCV does."""
    import cv2

    rotated = tmp_path / f"rot{degrees}.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-display_rotation", str(degrees), "-i",
                    str(clips["plain"]), "-c", "copy", str(rotated)], check=True)
    cap = cv2.VideoCapture(str(rotated))
    ok, upright = cap.read()
    cap.release()
    with KeyframeReader(str(rotated), skip=10) as reader:
        first = next(iter(reader))
        info = reader.info
    assert ok and first.image.shape == upright.shape and np.array_equal(first.image, upright)
    assert (info.height, info.width) == upright.shape[:2]
    assert upright.shape[:2] == ((320, 240) if degrees != 180 else (240, 320))


def test_max_keyframes_raises_the_stride(clips):
    with KeyframeReader(str(clips["plain"]), skip=10, max_keyframes=4) as reader:
        indices = [k.index for k in reader]
    assert reader.skip_used == math.ceil(60 / 4) == 15
    assert indices == [0, 15, 30, 45]
    with KeyframeReader(str(clips["plain"]), skip=10, max_keyframes=100) as reader:
        assert reader.skip_used == 10
    with pytest.raises(ValueError):
        KeyframeReader(str(clips["plain"]), skip=0)


def test_cut_file_with_index_first_stops_early(clips):
    with KeyframeReader(str(clips["cut"]), skip=5) as reader:
        keyframes = list(reader)
        assert reader.info.frame_count == 60          # the header still promises all frames
    assert 0 < reader.frames_seen < 60
    assert reader.stopped_early
    assert len(keyframes) >= 1
    with KeyframeReader(str(clips["fast"]), skip=5) as reader:
        list(reader)
    assert reader.frames_seen == 60 and not reader.stopped_early


def _damaged(fast, out, how: str):
    """``fast`` cut at 50 %, or with its middle 25 % overwritten by zeros."""
    data = bytearray(fast.read_bytes())
    n = len(data)
    if how == "cut":
        data = data[: n // 2]
    else:
        data[int(n * 0.375): int(n * 0.625)] = bytes(int(n * 0.625) - int(n * 0.375))
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("how", ["cut", "middle_overwritten"])
def test_damaged_file_is_partial_not_ok(clips, how, tmp_path):
    from mer_ray.media.extract import ClipExtractor
    from mer_ray.media.options import ExtractOptions

    damaged = _damaged(clips["fast"], tmp_path / f"{how}.mp4", how)
    extractor = ClipExtractor(ExtractOptions(skip=5, audio=False))
    clip = extractor.extract(str(damaged)).clip
    assert clip["status"] == st.PARTIAL and st.PARTIAL in st.FAILED_STATUSES
    assert "damaged or cut file" in clip["error"] and "of ~60 frames" in clip["error"]
    assert 0 < clip["frames_decoded"] and clip["keyframes"] >= 1   # what decoded is kept
    whole = extractor.extract(str(clips["fast"])).clip
    assert (whole["status"], whole["error"]) == (st.OK, None)


def test_cut_audio_file_is_partial(tmp_path):
    from mer_ray.media.extract import ClipExtractor
    from mer_ray.media.options import ExtractOptions

    m4a = tmp_path / "voice.m4a"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=f=220:sample_rate=22050", "-t", "2", "-c:a", "aac", "-movflags", "+faststart",
                    str(m4a)], check=True)
    cut = tmp_path / "voice_cut.m4a"
    cut.write_bytes(m4a.read_bytes()[: m4a.stat().st_size // 2])
    clip = ClipExtractor(ExtractOptions(audio_aug_copies=0, rich_audio=False)).extract(str(cut)).clip
    assert clip["status"] == st.PARTIAL and "audio decoding stopped" in clip["error"]


def test_estimated_frame_count_with_a_clean_end_is_not_partial(tmp_path):
    """Matroska states no frame count: it is estimated from the container's duration, which a
    longer audio track sets. A video shorter than its audio is whole, not damaged."""
    mkv = tmp_path / "short_video.mkv"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=25:duration=1", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=2", "-c:v", "libx264", "-c:a", "aac", str(mkv)],
                   check=True)
    with KeyframeReader(str(mkv), skip=5) as reader:
        list(reader)
    assert reader.info.frame_count > 40 and not reader.info.count_stated
    assert reader.frames_seen == 25 and reader.decode_error is None
    assert not reader.stopped_early


def test_bad_inputs_raise_the_right_status(mixed_archive, tmp_path):
    bad = mixed_archive["bad"]
    expected = {"zero_byte": st.EMPTY_FILE, "truncated": st.TRUNCATED,
                "text_as_mp4": st.NOT_MEDIA, "audio_only": st.AUDIO_ONLY}
    for kind, status in expected.items():
        with pytest.raises(MediaError) as err:
            KeyframeReader(str(bad[kind]))
        assert err.value.status == status, kind
        assert str(bad[kind]) in err.value.reason
    for kind in ("no_audio", "no_face", "calm", "video_only"):
        info, keyframes = read_keyframes(str(bad[kind]))
        assert info.frame_count > 0 and keyframes, kind
    with pytest.raises(MediaError) as err:
        KeyframeReader(str(tmp_path / "missing.mp4"))
    assert err.value.status == st.UNREADABLE
    with pytest.raises(MediaError) as err:
        check_file(str(tmp_path))
    assert err.value.status == st.UNREADABLE


def test_check_file_size_limit(clips):
    size = check_file(str(clips["plain"]))
    assert size == clips["plain"].stat().st_size
    assert check_file(str(clips["plain"]), max_file_mb=1000) == size
    with pytest.raises(MediaError) as err:
        check_file(str(clips["plain"]), max_file_mb=size / 2 / 2**20)
    assert err.value.status == st.TOO_LARGE


def test_stream_checks(mixed_archive, clips, tmp_path):
    bad = mixed_archive["bad"]
    assert container_kind(str(bad["text_as_mp4"])) is None
    assert container_kind(str(bad["audio_only"])) == "wav"
    assert container_kind(str(clips["plain"])) == "mp4"
    assert has_video_stream(str(clips["plain"])) and has_audio_stream(str(clips["plain"]))
    assert not has_video_stream(str(bad["audio_only"]))
    assert has_video_stream(str(bad["no_audio"])) and has_audio_stream(str(bad["no_audio"])) is False
    assert has_video_stream(str(bad["truncated"]))    # unknown -> True: the reader reports truncated
    assert has_audio_stream(str(bad["truncated"])) is None
    m4a = tmp_path / "voice.m4a"                      # audio-only ISO-BMFF (same magic as mp4)
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=f=220:sample_rate=22050", "-t", "0.5", "-c:a", "aac", str(m4a)], check=True)
    assert container_kind(str(m4a)) == "mp4"
    assert not has_video_stream(str(m4a)) and has_audio_stream(str(m4a))
    with pytest.raises(MediaError) as err:
        KeyframeReader(str(m4a))
    assert err.value.status == st.AUDIO_ONLY


@pytest.mark.parametrize("head, kind", [
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", "wav"),
    (b"RIFF\x00\x00\x00\x00AVI LIST", "avi"),
    (b"\x1a\x45\xdf\xa3\x01\x00\x00\x00", "matroska"),
    (b"\x00\x00\x00\x18ftypmp42\x00\x00", "mp4"),
    (b"\x00\x00\x00\x14ftypqt  \x00\x00", "mov"),
    (b"fLaC\x00\x00\x00\x22", "flac"),
    (b"OggS\x00\x02" + b"\x00" * 22 + b"\x01vorbis", "ogg"),
    (b"ID3\x04\x00\x00\x00\x00", "mp3"),
    (b"\xff\xfb\x90\x00", "mp3"),
    (b"\xff\xf1\x50\x80", "aac"),
    (b"hello world, not media", None),
    (b"", None),
])
def test_sniff_kind(head, kind):
    assert sniff_kind(head) == kind


@pytest.mark.real_data
def test_real_ravdess_clip(real_video):
    with KeyframeReader(str(real_video), skip=10) as reader:
        keyframes = list(reader)
        info = reader.info
    assert (info.width, info.height) == (640, 480)
    assert info.fps == pytest.approx(29.97, abs=0.01)
    assert info.frame_count == 120
    assert [k.index for k in keyframes] == list(range(0, 120, 10))
    assert keyframes[-1].timestamp_s == pytest.approx(110 / info.fps)
    assert reader.frames_seen == 120 and not reader.stopped_early
