"""What Ray Train's controller unpickles stays free of TensorFlow, and rank 0's validation
rows come from the shards themselves (no Ray in these tests)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from mer_ray.config import TrainVisualConfig
from mer_ray.data.splits import VAL
from support.synthetic import write_synthetic_shards


def _plan_data(tmp_path):
    from mer_ray.train.data import plan_data
    from mer_ray.train.runner import resolve_plan

    shards = write_synthetic_shards(tmp_path / "shards", clips_per_class=2, frames_per_clip=3)
    cfg = TrainVisualConfig(shards=str(shards), protocol="thesis", batch_size=8, workers=2)
    return cfg, *plan_data(cfg.shards, "visual", resolve_plan(cfg))


def test_the_backend_config_imports_no_tensorflow():
    code = ("import sys; import mer_ray.train.tf_backend as b; "
            "c = b.TFConfig(); "
            "assert c.framework is None and c.backend_cls.__module__ == b.__name__, c; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_loop_config_is_plain_data(tmp_path):
    """Callables (the model builder, hooks) travel in loop.WorkerLoop, not in the config."""
    from mer_ray.train.raytrain import LoopSpec, loop_config

    cfg, plan, data = _plan_data(tmp_path)
    spec = LoopSpec(build_model=lambda: None, model_key={"backbone": "tiny"}, x_dtype="uint8")
    loop_cfg = loop_config(cfg, spec, data, cpus=0.5)
    assert json.loads(json.dumps(loop_cfg)) == loop_cfg
    assert loop_cfg["has_val"] is True


def test_rank_zeros_validation_rows_are_the_val_split(tmp_path):
    from mer_ray.train.data import LocalSplit, iter_split_local

    _, plan, data = _plan_data(tmp_path)
    local = LocalSplit(data, plan, VAL)
    batches = list(local.iter_batches(batch_size=5))
    y = np.concatenate([b["y"] for b in batches])
    assert len(y) == data.count(VAL) > 0
    expected = list(iter_split_local(data, plan, VAL))
    np.testing.assert_array_equal(np.concatenate([b["x"] for b in batches]),
                                  np.concatenate([b["x"] for b in expected]))
    tf_batches = list(local.iter_tf_batches(batch_size=5, dtypes={"y": "int32"}))
    assert sum(int(b["y"].shape[0]) for b in tf_batches) == len(y)
    assert tf_batches[0]["y"].dtype.name == "int32"
