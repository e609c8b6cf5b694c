"""`mer-ray ingest-images DIR --out SHARDS`: a face-image corpus (AffectNet) -> FRAMES Parquet."""
from __future__ import annotations

import argparse

NAME = "ingest-images"
HELP = ("face images in class folders (AffectNet, FER2013) or an AffectNet-style CSV -> "
        "7 classes, 200x200 RGB, FRAMES Parquet (for train-visual)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mer_ray.commands.preprocess import add_ray_arguments

    p.add_argument("data_dir", help="folder of class folders (anger/, happy/, ...), or a CSV")
    p.add_argument("--out", required=True, help="output folder (frames/*.parquet, summary.json)")
    p.add_argument("--layout", default="auto", choices=["auto", "folders", "csv"],
                   help="auto (default): a CSV if IMAGES_DIR is one or holds exactly one, "
                        "else class folders; folders or csv: that layout")
    p.add_argument("--csv", default=None,
                   help="CSV with path,label[,speaker] (or AffectNet's) (default: none; the "
                        "CSV found by --layout auto)")
    p.add_argument("--balance", action="store_true",
                   help="down-sample every class to the smallest one (default: keep every image "
                        "and use train-visual --class-weight balanced)")
    p.add_argument("--no-balance", action="store_true",
                   help="no effect: every image is kept unless --balance is given")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the --balance down-sampling (default: %(default)s)")
    p.add_argument("--images-per-shard", type=int, default=512,
                   help="images per Parquet file (default: %(default)s)")
    add_ray_arguments(p)


def run(args: argparse.Namespace) -> int:
    from mer_ray.commands import checks
    from mer_ray.config import IngestImagesConfig, RayConfig
    from mer_ray.data.ingest_images import run_ingest_images

    checks.input_path(args.data_dir, "IMAGES_DIR")
    if args.csv is not None:
        checks.input_path(args.csv, "--csv")
    checks.out_folder(args.out)
    cfg = IngestImagesConfig(data_dir=args.data_dir, out=args.out, layout=args.layout,
                             csv=args.csv, balance=args.balance, seed=args.seed,
                             images_per_shard=args.images_per_shard,
                             ray=RayConfig(address=args.address, num_cpus=args.num_cpus,
                                           host=args.host))
    s = run_ingest_images(cfg)
    per_class = ", ".join(f"{k} {v}" for k, v in s["written_per_class"].items())
    dropped = ", ".join(f"{k} {v}" for k, v in s["dropped"].items()) or "none"
    print(f"{s['listed']} images listed ({s['layout']}); dropped: {dropped}\n"
          f"written {s['written']} ({per_class}); unreadable {s['unreadable']}\n"
          f"output: {args.out}/frames (summary.json beside it)")
    return 0
