"""Shared fixtures: real RAVDESS data beside the repo, a generated sample set, local Ray."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MER_RAY_PROGRESS", "0")

from mer_ray.runtime import configure_process  # noqa: E402

configure_process()  # numba cache for librosa, quiet TF: same as the jobs

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MER_RAY_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real RAVDESS clips). Required in CI; skipped elsewhere if absent."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the real data at {SHARED_DATA}")
        pytest.skip(f"real RAVDESS data not found at {SHARED_DATA} (set MER_RAY_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def real_video(shared_data: Path) -> Path:
    return shared_data / "ravdess-video" / "01-01-07-02-02-01-01_1.mp4"


@pytest.fixture(scope="session")
def fer_validation(shared_data: Path) -> Path:
    """FER2013 validation faces: class folders of 48x48 grey JPEGs."""
    return shared_data / "fer2013" / "validation"


def pytest_collection_modifyitems(config, items):
    """Tests declare their cost: one that starts local Ray (the ray_local fixture) must be
    marked slow, so `pytest -m "not slow"` stays a fast subset. Tests that start Ray another
    way (a subprocess, a Ray head) are marked by hand."""
    unmarked = [item.nodeid for item in items
                if "ray_local" in getattr(item, "fixturenames", ())
                and item.get_closest_marker("slow") is None]
    if unmarked:
        raise pytest.UsageError("tests using ray_local need @pytest.mark.slow: "
                                + ", ".join(unmarked))


@pytest.fixture(scope="session")
def ray_local():
    """One embedded local Ray for the whole session (2 CPUs, as on CI)."""
    import ray

    from mer_ray.config import RayConfig
    from mer_ray.runtime import init_ray

    init_ray(RayConfig(num_cpus=2))
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_bundles(tmp_path_factory) -> dict[str, str]:
    """Untrained model bundles for pipeline tests: visual 'tiny' backbone + thesis audio MLP."""
    import keras

    from mer_ray.config import EMOTIONS
    from mer_ray.models.audio_mlp import build_audio_mlp
    from mer_ray.models.bundle import BundleInfo, save_bundle
    from mer_ray.models.visual import build_visual_model

    root = tmp_path_factory.mktemp("bundles")
    keras.utils.set_random_seed(0)
    save_bundle(str(root / "visual"), build_visual_model("tiny", weights=None),
                BundleInfo("visual", list(EMOTIONS), "model.keras", "face200", None, "tiny", ""))
    save_bundle(str(root / "audio"), build_audio_mlp(),
                BundleInfo("audio", list(EMOTIONS), "model.keras", "thesis", "audio_features", None, ""))
    return {"visual": str(root / "visual"), "audio": str(root / "audio")}


@pytest.fixture(scope="session")
def mixed_archive(tmp_path_factory) -> dict:
    """A folder mixing 7 good sample clips, every bad input of make_bad_inputs, and a blank
    video (no face, no audio). Returns {"root": Path, "good": [Path], "bad": {kind: Path}}."""
    import numpy as np

    from mer_ray.sample import SampleConfig, make_bad_inputs, make_sample, write_clip

    root = tmp_path_factory.mktemp("archive")
    cfg = SampleConfig(actors=1, clips_per_emotion=1, seconds=1.0, width=320, height=240)
    good = make_sample(root / "good", cfg)
    bad = make_bad_inputs(root / "bad")
    blank = np.full((cfg.height, cfg.width, 3), 90, np.uint8)
    bad["blank"] = write_clip(root / "bad" / "blank.mp4", (blank for _ in range(30)), None,
                              cfg.fps, cfg.audio_rate)
    return {"root": root, "good": good, "bad": bad}


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory) -> Path:
    """14 short generated clips (2 actors x 7 emotions) plus every kind of bad input in bad/."""
    from mer_ray.sample import SampleConfig, make_bad_inputs, make_sample

    root = tmp_path_factory.mktemp("small_sample")
    make_sample(root, SampleConfig(actors=2, clips_per_emotion=1, seconds=1.0, width=320, height=240))
    make_bad_inputs(root / "bad", SampleConfig(actors=1, clips_per_emotion=1, seconds=1.0,
                                               width=320, height=240))
    return root
