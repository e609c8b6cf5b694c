"""Long videos in chunks: the chunk plan owns every window once, and the range decoders give
the whole-file decode's samples and keyframes for their range."""
from __future__ import annotations

import numpy as np
import pytest

from mer_ray.score.chunks import plan_chunks
from mer_ray.score.windows import segment_windows


@pytest.mark.parametrize("duration, window, hop, chunk", [
    (24.0, 3.0, None, 8.0), (24.0, 3.0, 1.0, 8.0), (25.37, 3.0, 2.0, 8.0),
    (3600.0, 3.0, None, 60.0), (20.0, 2.0, 5.0, 8.0), (7.9, 3.0, None, 8.0),
])
def test_chunks_own_each_window_once_and_tile_the_video(duration, window, hop, chunk):
    chunks = plan_chunks(duration, window, hop, chunk)
    owned = [w for c in chunks for w in c.windows]
    assert owned == segment_windows(duration, window, hop)
    assert [c.first_window for c in chunks] == \
        [sum(len(c.windows) for c in chunks[:k]) for k in range(len(chunks))]
    assert chunks[0].start_s == 0.0 and chunks[-1].end_s == pytest.approx(duration)
    assert all(a.end_s == b.start_s for a, b in zip(chunks, chunks[1:]))
    for c in chunks:
        assert all(c.start_s <= s < c.end_s and e <= c.decode_end_s for s, e in c.windows)
    assert (len(chunks) == 1) == (duration <= chunk)
    assert all(c.end_s - c.start_s <= max(chunk, hop or window) + 1e-9 for c in chunks)


def test_a_short_video_is_one_chunk_and_an_empty_one_none():
    assert [(c.start_s, c.end_s) for c in plan_chunks(50.0, 3.0, None, 60.0)] == [(0.0, 50.0)]
    assert plan_chunks(0.0, 3.0) == []
    with pytest.raises(ValueError, match="chunk length"):
        plan_chunks(100.0, 3.0, None, 0.0)


@pytest.mark.parametrize("rate", [22050, 16000, 48000])
def test_audio_range_is_the_whole_decode_sliced(tmp_path, rate):
    from mer_ray.media.audio import decode_audio, decode_audio_range
    from mer_ray.sample.mux import write_wav

    y = (np.random.default_rng(rate).standard_normal(rate * 9) * 0.1).astype(np.float32)
    path = write_wav(tmp_path / "a.wav", y, rate)
    whole = decode_audio(path).samples
    sr = 22050
    for start, end in [(0.0, 3.0), (3.0, 6.0), (2.7, 7.3), (8.0, 12.0)]:
        part = decode_audio_range(path, start, end).samples
        ref = whole[round(start * sr):round(end * sr)]
        assert part.shape == ref.shape
        np.testing.assert_allclose(part, ref, atol=1e-6)


def test_audio_range_of_an_aac_track_matches_the_whole_decode(tmp_path):
    from mer_ray.media.audio import decode_audio, decode_audio_range
    from mer_ray.sample.mux import write_clip

    y = (np.random.default_rng(1).standard_normal(22050 * 8) * 0.1).astype(np.float32)
    frames = (np.zeros((32, 32, 3), np.uint8) for _ in range(80))
    path = write_clip(tmp_path / "v.mp4", frames, y, 10, 22050)
    whole = decode_audio(path).samples
    for start, end in [(2.0, 4.0), (4.0, 8.0), (5.1, 6.9)]:
        part = decode_audio_range(path, start, end).samples
        ref = whole[round(start * 22050):round(end * 22050)]
        assert part.shape == ref.shape
        np.testing.assert_allclose(part, ref, atol=1e-6)


def test_keyframe_range_is_the_whole_video_sliced(tmp_path):
    from mer_ray.media.video import KeyframeReader
    from mer_ray.sample.mux import write_clip

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(120)]
    path = write_clip(tmp_path / "v.mp4", iter(frames), None, 10, 22050)
    with KeyframeReader(path, 3) as reader:
        whole = [(k.index, k.timestamp_s, k.image) for k in reader]
    for start, end in [(0.0, 4.0), (4.0, 8.0), (2.5, 6.6), (10.0, 20.0)]:
        with KeyframeReader(path, 3, start_s=start, end_s=end) as reader:
            part = [(k.index, k.timestamp_s, k.image) for k in reader]
            assert not reader.stopped_early
        ref = [w for w in whole if start * 1000 <= round(w[1] * 1000) < end * 1000]
        assert [p[:2] for p in part] == [r[:2] for r in ref]
        assert all(np.array_equal(p[2], r[2]) for p, r in zip(part, ref))


def test_keyframe_cap_applies_to_the_range_read(tmp_path):
    """max_keyframes bounds the keyframes of what is read: a chunk of a long video keeps its
    share (stride from the range's frames), while the whole video gets the wider stride."""
    from mer_ray.media.video import KeyframeReader
    from mer_ray.sample.mux import write_clip

    frames = (np.full((48, 64, 3), i % 255, np.uint8) for i in range(200))     # 20 s at 10 fps
    path = write_clip(tmp_path / "long.mp4", frames, None, 10, 16000)
    with KeyframeReader(str(path), skip=1, max_keyframes=20) as whole:
        assert whole.skip_used == 10                        # 200 frames / 20
    with KeyframeReader(str(path), skip=1, max_keyframes=20, start_s=0.0, end_s=4.0) as chunk:
        assert chunk.skip_used == 2                         # 40 frames / 20
