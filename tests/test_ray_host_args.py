"""--host reaches RayConfig in the commands that build it from their own arguments."""
from __future__ import annotations

import argparse

from mer_ray.commands import train_args


def test_train_commands_pass_host_to_ray_config():
    p = argparse.ArgumentParser()
    train_args.add_common_arguments(p, epochs=1, batch_size=2, checkpoint_every=1)
    args = p.parse_args(["shards", "--out", "run"])
    args.host = "10.1.2.3"                # the shared Ray flag (commands/preprocess.py)
    assert train_args.common_kwargs(args)["ray"].host == "10.1.2.3"
    args.host = None
    assert train_args.common_kwargs(args)["ray"].host is None


def test_ingest_images_passes_host_to_ray_config(tmp_path, monkeypatch):
    from mer_ray.commands import ingest_images

    seen = {}

    def fake_ingest(cfg):
        seen["host"] = cfg.ray.host
        return {"written_per_class": {}, "dropped": {}, "listed": 0, "layout": "folders",
                "written": 0, "unreadable": 0}

    monkeypatch.setattr("mer_ray.data.ingest_images.run_ingest_images", fake_ingest)
    p = argparse.ArgumentParser()
    ingest_images.add_arguments(p)
    (tmp_path / "faces").mkdir()
    args = p.parse_args([str(tmp_path / "faces"), "--out", str(tmp_path / "out")])
    args.host = "0.0.0.0"
    assert ingest_images.run(args) == 0 and seen["host"] == "0.0.0.0"
