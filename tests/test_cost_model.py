"""The arithmetic of the scaling cost model (benchmarks/cost_model.py): pure functions, no media,
no Ray."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import cost_model as cm  # noqa: E402

RATES = cm.Rates(decode_cpu_s=0.01, faces_cpu_s=0.03, audio_cpu_s=0.03, rows_cpu_s=0.001,
                 faces_per_s=3.0, keyframes_per_s=3.0, model_images_s=300.0,
                 audio_clips_s=2000.0)


def test_doubling_duration_doubles_extraction_cpu():
    assert cm.extraction_cpu_s(10.0, RATES) == pytest.approx(2 * cm.extraction_cpu_s(5.0, RATES))
    assert cm.extraction_cpu_s(5.0, RATES) == pytest.approx(5.0 * 0.071)


def test_cpu_seconds_add_the_model_on_cpu_and_drop_it_with_a_gpu():
    faces = 5.0 * 3.0
    cpu_only = cm.cpu_s_per_video(5.0, RATES)
    assert cpu_only == pytest.approx(cm.extraction_cpu_s(5.0, RATES) + faces / 300.0 + 1 / 2000.0)
    with_gpu = cm.cpu_s_per_video(5.0, RATES, gpu_images_s=5000.0)
    assert with_gpu == pytest.approx(cpu_only - faces / 300.0)


def test_node_hours_are_cpu_hours_over_cpus_times_efficiency():
    e = cm.estimate(10**5, 5.0, RATES, node_cpus=16, nodes=8, efficiency=0.5, visual_batch=None)
    assert e.cpu_hours == pytest.approx(10**5 * cm.cpu_s_per_video(5.0, RATES) / 3600)
    assert e.node_hours == pytest.approx(e.cpu_hours / (16 * 0.5))
    ideal = cm.estimate(10**5, 5.0, RATES, node_cpus=16, nodes=8, efficiency=1.0,
                        visual_batch=None)
    assert e.node_hours == pytest.approx(2 * ideal.node_hours)


def test_extraction_bound_wall_time_falls_with_nodes():
    fast_model = RATES.scaled(model_images_s=1000.0)
    one = cm.estimate(10**4, 5.0, fast_model, nodes=1, visual_workers=4)
    four = cm.estimate(10**4, 5.0, fast_model, nodes=4, visual_workers=4)
    assert one.bottleneck == four.bottleneck == "extraction"
    assert four.wall_hours < one.wall_hours / 3.5


def test_the_saturating_resource_switches_when_model_images_s_drops():
    fast = cm.estimate(10**6, 5.0, RATES.scaled(model_images_s=100.0), nodes=1)
    slow = cm.estimate(10**6, 5.0, RATES.scaled(model_images_s=0.01), nodes=1)
    assert fast.bottleneck == "extraction"
    assert slow.bottleneck == "visual model"
    assert slow.wall_hours == pytest.approx(10**6 / slow.visual_videos_s / 3600)
    assert "--visual-workers" in cm.knob(slow, RATES)
    assert "more CPU nodes" in cm.knob(fast, RATES)


def test_a_padded_model_batch_costs_model_time_and_the_knob_names_the_batch_that_fills_it():
    # 8 videos x 15 faces = 120 faces per call, padded to 128 (the next power of two)
    assert cm.padding(5.0, RATES, visual_batch=8) == pytest.approx(128 / 120)
    assert cm.padding(5.0, RATES, visual_batch=None) == 1.0
    assert cm.padding(5.0, RATES, visual_batch=9) == pytest.approx(256 / 135)   # just past 128
    assert cm.padding(5.0, RATES, visual_batch=20) == pytest.approx(320 / 300)  # 256 + 44 -> 64
    assert cm.full_batch_videos(5.0, RATES) == 64          # 960 faces: 3 x 256 + 192 -> 256
    padded = cm.visual_cpu_s(5.0, RATES, visual_batch=9)
    assert padded == pytest.approx(15 / 300.0 * 256 / 135)
    slow = cm.estimate(10**6, 5.0, RATES, nodes=8, visual_batch=9)
    assert "--visual-batch 64" in cm.knob(slow, RATES)
    assert "--visual-batch" not in cm.knob(cm.estimate(10**6, 5.0, RATES, nodes=8,
                                                       visual_batch=8), RATES)


def test_balancing_visual_workers_evens_the_two_stages():
    e = cm.estimate(10**6, 5.0, RATES, nodes=8)
    assert e.bottleneck == "visual model"
    k = e.visual_workers_to_balance
    balanced = cm.estimate(10**6, 5.0, RATES, nodes=8, visual_workers=k)
    fewer = cm.estimate(10**6, 5.0, RATES, nodes=8, visual_workers=k - 1)
    assert balanced.bottleneck == "extraction" and fewer.bottleneck == "visual model"
    assert balanced.wall_hours < e.wall_hours


def test_a_gpu_takes_the_visual_model_off_the_cpu_nodes():
    e = cm.estimate(10**6, 5.0, RATES, nodes=8, gpu_images_s=2000.0, gpus=2, visual_batch=None)
    assert e.visual_videos_s == pytest.approx(2 * 2000.0 / 15.0)
    assert e.extract_videos_s == pytest.approx(8 * 16 / (cm.extraction_cpu_s(5.0, RATES)
                                                         + 1 / 2000.0))


def test_efficiency_is_ideal_over_measured_and_at_most_one():
    assert cm.efficiency_of(10.0, 40.0) == pytest.approx(0.25)
    assert cm.efficiency_of(10.0, 5.0) == 1.0
    assert cm.ideal_seconds(40, 5.0, RATES, 2, visual_batch=None) == pytest.approx(
        20 * cm.cpu_s_per_video(5.0, RATES))
    with pytest.raises(ValueError):
        cm.efficiency_of(10.0, 0.0)


def test_bad_inputs_are_refused_in_one_line():
    with pytest.raises(ValueError, match="efficiency"):
        cm.estimate(10, 5.0, RATES, efficiency=0.0)
    assert math.isfinite(cm.estimate(0, 5.0, RATES).wall_hours)
