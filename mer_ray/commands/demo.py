"""`mer-ray demo OUT`: the whole chain on generated sample data, on embedded local Ray."""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

NAME = "demo"
HELP = "generate the sample set, then preprocess it (later stages: train, score, evaluate)"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", nargs="?", default="demo", help="working folder (default: ./demo)")
    p.add_argument("--actors", type=int, default=8, help="actors in the sample set")
    p.add_argument("--clips-per-emotion", type=int, default=2)
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs for local Ray (default: all)")


def run(args: argparse.Namespace) -> int:
    from mer_ray.commands.preprocess import format_summary
    from mer_ray.config import PreprocessConfig, RayConfig
    from mer_ray.data.preprocess import run_preprocess
    from mer_ray.sample import SampleConfig, make_sample

    out = Path(args.out)
    t0 = time.time()
    sample_dir = out / "sample"
    if not sample_dir.is_dir():
        print(f"[1/2] generating the sample set in {sample_dir} ...", flush=True)
        make_sample(sample_dir, SampleConfig(actors=args.actors, clips_per_emotion=args.clips_per_emotion))
    else:
        print(f"[1/2] using the sample set in {sample_dir}", flush=True)
    print("[2/2] preprocess (Ray Data) ...", flush=True)
    cfg = PreprocessConfig(data_dir=str(sample_dir), out=str(out / "shards"),
                           ray=RayConfig(num_cpus=args.num_cpus))
    print(format_summary(run_preprocess(cfg)))
    print(f"demo finished in {time.time() - t0:.0f} s; outputs in {out}/")
    return 0
