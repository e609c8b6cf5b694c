"""Shared fixtures: real RAVDESS data beside the repo, a generated sample set, local Ray."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MER_RAY_PROGRESS", "0")

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
def ray_local():
    """One embedded local Ray for the whole session (2 CPUs, as on CI)."""
    import ray

    from mer_ray.config import RayConfig
    from mer_ray.runtime import init_ray

    init_ray(RayConfig(num_cpus=2))
    yield ray
    ray.shutdown()
