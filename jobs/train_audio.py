"""Entry point for `ray job submit ... -- python jobs/train_audio.py SHARDS --out RUN [...]`.

Takes the same arguments as `mer-ray train-audio`; inside a submitted job Ray connects to the
cluster through $RAY_ADDRESS, which `ray job submit` sets.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for --working-dir .

from mer_ray.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["train-audio", *sys.argv[1:]]))
