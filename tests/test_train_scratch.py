"""A training worker's scratch folder (its best model so far) goes when the loop ends."""
from __future__ import annotations

import os

import pytest

from mer_ray.train import loop


@pytest.mark.parametrize("fails", [False, True])
def test_the_best_model_scratch_folder_is_removed_when_the_loop_ends(monkeypatch, fails):
    seen: list[str] = []

    def fake_worker(cfg, best_local):
        seen.append(best_local)
        with open(best_local, "wb") as f:      # what rank 0's model.save leaves there
            f.write(b"model")
        if fails:
            raise RuntimeError("worker died")

    monkeypatch.setattr(loop, "_train_worker", fake_worker)
    if fails:
        with pytest.raises(RuntimeError):
            loop.train_loop_per_worker({})
    else:
        loop.train_loop_per_worker({})
    assert len(seen) == 1 and os.path.basename(seen[0]) == loop.BEST_FILE
    assert not os.path.exists(os.path.dirname(seen[0]))
