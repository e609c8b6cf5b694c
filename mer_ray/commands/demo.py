"""`mer-ray demo OUT`: the whole chain on generated sample data, on embedded local Ray.

make-sample -> preprocess -> train-audio -> train-visual -> score -> evaluate. Every stage is
the same CLI command a user would type (printed before it runs), so the demo doubles as a
worked example. Scoring runs on the clips of the held-out test actors (plus bad inputs), so the
evaluation report is actor-independent.
"""
from __future__ import annotations

import argparse
import os
import shlex
import time
from pathlib import Path

NAME = "demo"
HELP = "sample -> preprocess -> train both models -> score -> evaluate, on local Ray"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", nargs="?", default="demo", help="working folder (default: ./demo)")
    p.add_argument("--actors", type=int, default=8,
                   help="actors in the sample set (default: %(default)s)")
    p.add_argument("--clips-per-emotion", type=int, default=2,
                   help="clips per actor and emotion in the sample set (default: %(default)s)")
    p.add_argument("--backbone", default="tiny",
                   help="visual backbone (default: %(default)s, a small conv net trained from "
                        "scratch, so the demo needs no downloaded weights; a random-init "
                        "MobileNetV2 stays at chance after a few CPU epochs)")
    p.add_argument("--visual-epochs", type=int, default=8,
                   help="training epochs of the visual model (default: %(default)s)")
    p.add_argument("--audio-epochs", type=int, default=None,
                   help="training epochs of the audio model, used only when it is the MLP "
                        "(default: train-audio's; the demo's audio model is the SVM)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs for local Ray (default: all)")


def _stage(n: int, argv: list[str], note: str | None = None) -> None:
    """Run one stage as `mer-ray ARGV`, in this console mode (-v / -q passed on); with -q its
    output but errors is dropped, so only the demo's last line is printed."""
    import contextlib

    from mer_ray import console
    from mer_ray.cli import main

    mode = console.level()
    argv = {console.VERBOSE: ["-v"], console.QUIET: ["-q"]}.get(mode, []) + argv
    gap = "" if n == 1 else "\n"                     # a blank line between stages
    console.print_line(f"{gap}[{n}/6] mer-ray {shlex.join(argv)}")
    if note:
        console.print_line(note)
    with open(os.devnull, "w") as devnull, (contextlib.redirect_stdout(devnull)
                                            if mode <= console.QUIET else contextlib.nullcontext()):
        code = main(argv)
    if code:
        from mer_ray.commands.checks import CliError

        raise CliError(f"stage {n} (mer-ray {argv[0]}) failed with exit code {code}; its "
                       "error is above")


def held_out_archive(sample: Path, archive: Path, test_actors: set[int]) -> int:
    """Link the test actors' clips and the bad inputs into ``archive``; return how many."""
    from mer_ray.labels import parse_ravdess_name

    archive.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in sorted(sample.rglob("*")):
        name = parse_ravdess_name(path)
        bad = "bad_inputs" in path.parts
        if path.is_file() and (bad or (name is not None and name.actor in test_actors)):
            link = archive / path.relative_to(sample)
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                os.symlink(path.resolve(), link)
            n += 1
    return n


def run(args: argparse.Namespace) -> int:
    from mer_ray.config import ACTOR_FOLDS

    from mer_ray import console
    from mer_ray.commands import checks

    checks.out_folder(args.out, "OUT")
    out = Path(args.out)
    t0 = time.time()
    cpus = ["--num-cpus", str(args.num_cpus)] if args.num_cpus else []
    sample, shards, runs = out / "sample", out / "shards", out / "runs"
    if not sample.is_dir():
        _stage(1, ["make-sample", str(sample), "--actors", str(args.actors),
                   "--clips-per-emotion", str(args.clips_per_emotion), "--bad-inputs"])
    else:
        console.print_line(f"[1/6] using the sample set in {sample}")
    _stage(2, ["preprocess", str(sample), "--out", str(shards), *cpus])
    epochs = ["--epochs", str(args.audio_epochs)] if args.audio_epochs else []
    _stage(3, ["train-audio", str(shards), *epochs, "--out", str(runs / "audio"), *cpus])
    _stage(4, ["train-visual", str(shards), "--backbone", args.backbone, "--case", "unfrozen",
               "--init", "none", "--epochs", str(args.visual_epochs),
               "--out", str(runs / "visual"), *cpus])
    archive = out / "archive"
    n = held_out_archive(sample, archive, set(ACTOR_FOLDS[0]))
    _stage(5, ["score", str(archive), "--visual", str(runs / "visual"), "--audio",
               str(runs / "audio"), "--out", str(out / "scores"), *cpus],
           note=f"scoring {n} files: the test-fold actors {sorted(set(ACTOR_FOLDS[0]))} "
                "(never seen in training) and the bad inputs")
    _stage(6, ["evaluate", str(out / "scores")])
    print(f"\ndemo finished in {time.time() - t0:.0f} s. Open {out / 'scores' / 'report' / 'report.html'}")
    return 0
