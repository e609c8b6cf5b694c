"""What the preprocess job must write for the small_sample fixture (shared by test modules)."""
from __future__ import annotations

from pathlib import Path

EXPECTED_BAD = {"01-01-05-01-01-09-24.mp4": "empty_file", "01-01-03-01-01-09-24.mp4": "truncated",
                "01-01-04-01-01-09-24.mp4": "not_media", "01-01-06-01-01-09-24.mp4": "no_audio",
                "02-01-01-01-01-09-24.mp4": "video_only", "03-01-07-01-01-09-24.wav": "audio_only",
                "01-01-08-01-01-09-24.mp4": "no_face", "01-01-02-01-01-09-24.mp4": "dropped"}


def assert_one_row_per_input(clips, inputs, summary: dict):
    """rows == inputs, the bad inputs' statuses; returns the good rows (all ``ok``)."""
    assert len(clips) == len(inputs) == summary["inputs"]
    assert sorted(clips.path) == sorted(it.path for it in inputs)
    status = {Path(p).name: s for p, s in zip(clips.path, clips.status)}
    for name, expected in EXPECTED_BAD.items():
        assert status[name] == expected, (name, clips.set_index("path").error.to_dict())
    good = clips[~clips.path.str.contains("/bad/")]
    assert set(good.status) == {"ok"}
    return good
