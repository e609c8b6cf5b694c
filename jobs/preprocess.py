"""Entry point for `ray job submit ... -- python jobs/preprocess.py DATA --out SHARDS [...]`.

Takes the same arguments as `mer-ray preprocess`; inside a submitted job Ray connects to the
cluster through $RAY_ADDRESS, which `ray job submit` sets.
"""
import sys

from mer_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["preprocess", *sys.argv[1:]]))
