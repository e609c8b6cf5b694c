"""benchmarks/gpu.py's own parts: the nvidia-smi sampler (against a stand-in nvidia-smi) and
the report's bottleneck and tables; no GPU, no Ray."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import gpu  # noqa: E402


@pytest.fixture
def fake_smi(tmp_path, monkeypatch):
    """An nvidia-smi on PATH that records its arguments and prints four samples and a bad line."""
    script = tmp_path / "bin" / "nvidia-smi"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/args\"\n"
                      "printf '0, 100\\n50, 2048\\n[N/A], 2048\\n90, 4096\\n0, 4096\\n'\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")
    return script.parent


def test_sampler_reads_utilisation_and_memory(fake_smi):
    with gpu.GpuSampler(interval_ms=250) as sampler:
        sampler._proc.wait()                     # the stand-in prints and exits
    assert "--query-gpu=utilization.gpu,memory.used" in (fake_smi / "args").read_text()
    assert "-lms=250" in (fake_smi / "args").read_text()
    s = sampler.summary()
    assert s["samples"] == 4                     # the [N/A] line is skipped
    assert s["mean_util"] == pytest.approx(35.0)
    assert s["mean_util_working"] == pytest.approx(70.0)      # first to last sample above 0 %
    assert s["share_ge_50"] == 1.0 and s["peak_mem_mib"] == 4096.0
    assert s["working_s"] == pytest.approx(0.5)


def test_sampler_without_nvidia_smi_has_no_samples(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with gpu.GpuSampler() as sampler:
        pass
    assert not sampler.available and sampler.summary() == {}


def _score(gpu_summary: dict) -> dict:
    return {"videos": 1000, "seconds": 40.0, "gpu": gpu_summary, "cpus": 16.0, "gpus": 1.0,
            "per_video_s": {"extraction": 0.3, "visual model": 0.01, "audio model": 0.0001},
            "actors": {"extraction": 14, "visual model": 1, "audio model": 1},
            "capacity": {"extraction": 14 / 0.3, "visual model": 100.0, "audio model": 1e4},
            "faces_per_video": 9.5, "model_images_s": 950.0}


def test_report_names_the_stage_of_least_capacity():
    train = {"batch": 64, "gpu": True, "ray_images_s": 900.0, "plain_images_s": 1000.0,
             "epochs": 2, "ray_wall_s": 30.0, "gpu_util": {"mean_util_working": 81.0}}
    text = gpu.report(["--clips", "1000"], _score({"samples": 80, "mean_util": 40.0,
                                                   "mean_util_working": 55.0, "share_ge_50": 0.6,
                                                   "working_s": 30.0, "peak_mem_mib": 3072.0}),
                      [train])
    assert "Bottleneck: **extraction** (least capacity, 46.7 videos/s" in text
    assert "**950 faces/s** inside its stage (9.5 faces per video)" in text
    assert "1000 videos in 40.0 s, 25.0 videos/s" in text
    assert "mean 40 % over the run, 55 % over the 30 s" in text and "3.0 GiB" in text
    assert "| 64 | GPU | 900 | 1000 | 0.90x | 81 % |" in text


def test_report_says_when_there_were_no_gpu_samples():
    text = gpu.report([], _score({}), [])
    assert "nvidia-smi not found: no GPU samples." in text
