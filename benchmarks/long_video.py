"""Long videos: `score --segments 3` with the default models on one 1-min video, one long video
(60 min by default) and an archive of short clips holding the same length of video, each in a
fresh Python. Reports video-hours scored per wall-clock hour and the peak memory (RSS and PSS
summed over the process and every Ray process it started, as benchmarks/score.py samples it),
and the ratio of the long video's peak to the 1-min one's: with long videos cut into chunks
(score/chunks.py) memory should not grow with the video's length.

The 1-min video is one work item, so its job starts one extraction actor, while a long
video's chunks fill the whole actor pool: the long video is run a second time with
``--extract-workers 1``, so that the pair differs in video length only, and so is a
``--mid-minutes`` video (10 by default), long enough to fill the pipeline (several chunks
in flight in every stage at once), to tell a fixed cost of running in chunks from growth
with length. Each run also reports its peak PSS by process kind and the peak of each third
of its run time.

Inputs are deterministic: one 60 s sample video (mer_ray.sample.long_video, 160x120, 5 fps,
a face and a voice), concatenated with ``ffmpeg -c copy`` into the long video and copied for
the archive (``--clip-s`` seconds each, cut with ``-c copy``).

    python benchmarks/long_video.py [--minutes 60] [--mid-minutes 10] [--clip-s 30]
                                    [--cpus 2] [--busy] [--no-write]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write_section  # noqa: E402

WORK = Path("bench_out/long_video")
WINDOW_S = 3.0


def base_clip(work: Path) -> Path:
    """The 60 s sample video every input is made of."""
    from mer_ray.sample.long_video import write_long_video

    path = work / "base60.mp4"
    if not path.exists():
        work.mkdir(parents=True, exist_ok=True)
        write_long_video(path, seconds=60.0, width=160, height=120, fps=5.0)
    return path


def concat(base: Path, copies: int, out: Path) -> Path:
    """``copies`` times ``base`` back to back, without re-encoding."""
    from mer_ray.media.audio import ffmpeg_exe

    if out.exists():
        return out
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{base.resolve()}'\n" for _ in range(copies)))
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
                    "-i", str(listing), "-c", "copy", str(out)], check=True)
    return out


def archive(base: Path, clips: int, clip_s: float, folder: Path) -> Path:
    """``clips`` short videos cut from ``base`` (``clip_s`` seconds each, ``-c copy``)."""
    from mer_ray.media.audio import ffmpeg_exe

    folder.mkdir(parents=True, exist_ok=True)
    first = folder / "clip0000.mp4"
    if not first.exists():
        subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(base), "-t",
                        f"{clip_s:g}", "-c", "copy", str(first)], check=True)
    for k in range(1, clips):
        target = folder / f"clip{k:04d}.mp4"
        if not target.exists():
            shutil.copyfile(first, target)
    return folder


def one_input(path: Path, folder: Path) -> Path:
    """A folder holding only ``path`` (the score job takes a folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / path.name
    if not link.exists():
        link.symlink_to(path.resolve())
    return folder


def run_phase(source: str, out: str, cpus: int, extract_workers: int | None = None) -> dict:
    """One score job (this process + its Ray processes sampled for memory); ``extract_workers``
    None: the default pool."""
    import ray

    from benchmarks.score import MemorySampler
    from mer_ray.config import RayConfig, ScoreConfig
    from mer_ray.media.options import ExtractOptions
    from mer_ray.score.job import run_score

    shutil.rmtree(out, ignore_errors=True)
    cfg = ScoreConfig(source=source, out=out, visual="default", audio="default",
                      ray=RayConfig(num_cpus=cpus), extract_workers=extract_workers,
                      extract=ExtractOptions(segment_s=WINDOW_S))
    with MemorySampler() as mem:
        t0 = time.perf_counter()
        summary = run_score(cfg)
        seconds = time.perf_counter() - t0
        ray.shutdown()
    return {"seconds": seconds, "rows": summary["rows"], "segments": summary.get("segments"),
            "peak_rss": mem.peak_rss, "peak_pss": mem.peak_pss, "status": summary["status"],
            "breakdown": mem.breakdown, "thirds": mem.thirds()}


def in_subprocess(source: Path, out: Path, cpus: int, extract_workers: int | None) -> dict:
    """run_phase in a fresh Python, so no phase's memory counts in another's."""
    result = out.with_suffix(".json")
    subprocess.run([sys.executable, __file__, "--phase", str(source), str(out), str(cpus),
                    str(extract_workers or 0), str(result)], check=True)
    return json.loads(result.read_text())


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


KINDS = ("driver", "ExtractActor", "VisualStage", "AudioStage", "ray worker", "raylet")
"""Process kinds shown in the breakdown (benchmarks.score._kind); the rest are summed."""


def _breakdown(p: dict) -> list[str]:
    parts = dict(p["breakdown"])
    cells = [_gib(parts.pop(k, 0)) for k in KINDS]
    return cells + [_gib(sum(parts.values()))]


def report(phases: dict[str, tuple[dict, float, str]], minutes: int, mid: int, clip_s: float,
           cpus: int, busy: bool) -> str:
    """The BENCHMARKS.md section: one row per run, the PSS breakdown and both ratios."""
    long_name = f"{minutes}-min video"
    lines = [f"## long-videos\n\n`score --segments {WINDOW_S:g}` with the default models, "
             f"{cpus} CPUs for Ray (`benchmarks/long_video.py`). Inputs: 160x120, 5 fps sample "
             "video (a face, a voice) at keyframe skip 10; a video longer than "
             "`chunks.CHUNK_S` runs as 60 s chunk items (each with its own "
             "`--max-keyframes` cap) and is merged at the end. Peak memory is summed over the "
             "driver and every Ray process.\n",
             f"Machine: {machine()}" + (" (shared with other jobs while this ran, so the "
                                        "times are pessimistic; memory is per run)" if busy
                                        else "") + "\n",
             "| input | extraction actors | video | wall s | video-hours / wall hour | rows | "
             "segments | peak RSS | peak PSS | PSS peak by third of the run |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, (p, video_s, pool) in phases.items():
        thirds = " / ".join(f"{t / 2**30:.2f}" for t in p["thirds"])
        lines.append(f"| {name} | {pool} | {video_s / 60:g} min | {p['seconds']:.0f} | "
                     f"{video_s / p['seconds']:.1f} | {p['rows']} | {p['segments']} | "
                     f"{_gib(p['peak_rss'])} | {_gib(p['peak_pss'])} | {thirds} |")
    lines += ["", "PSS at each run's peak, by process:", "",
              "| input | extraction actors | " + " | ".join(KINDS) + " | other |",
              "| --- | --- | " + " | ".join("---" for _ in KINDS) + " | --- |"]
    for name, (p, _, pool) in phases.items():
        lines.append(f"| {name} | {pool} | " + " | ".join(_breakdown(p)) + " |")
    one, mid_p = phases["1-min video"][0], phases[f"{mid}-min video, 1 actor"][0]
    default, equal = phases[long_name][0], phases[f"{long_name}, 1 actor"][0]
    ratio = lambda a, b, key: a[key] / b[key]  # noqa: E731
    lines.append(
        f"\nPeak PSS, {minutes}-min / 1-min video, both with one extraction actor: "
        f"**{ratio(equal, one, 'peak_pss'):.2f}x** (RSS {ratio(equal, one, 'peak_rss'):.2f}x); "
        f"with the default pool (the long video's chunks fill it): "
        f"**{ratio(default, one, 'peak_pss'):.2f}x** (RSS {ratio(default, one, 'peak_rss'):.2f}x)"
        f"; {minutes}-min / {mid}-min video, one extraction actor each: "
        f"**{ratio(equal, mid_p, 'peak_pss'):.2f}x** (RSS {ratio(equal, mid_p, 'peak_rss'):.2f}x)."
        " The 1-min video is one work item, so its job starts one extraction actor whatever "
        f"the pool size. Archive: {minutes * 60 // clip_s:.0f} clips of {clip_s:g} s, default "
        "pool.")
    delta = {k: (equal["breakdown"].get(k, 0) - one["breakdown"].get(k, 0)) / 2**30
             for k in ("driver", "ExtractActor", "VisualStage")}
    lines.append(
        f"\nWhat differs between the 1-min and the {minutes}-min run (one actor each, at their "
        f"peaks): driver {delta['driver']:+.2f} GiB, extraction actor "
        f"{delta['ExtractActor']:+.2f} GiB, visual actor {delta['VisualStage']:+.2f} GiB. A "
        "chunk item goes to the visual model alone (one chunk per call, as much as one short "
        "video's faces) and each extraction actor decodes one chunk at a time, so what a long "
        f"video holds is bounded and reached once the pipeline is full: the {mid}-min row, and "
        f"in the {minutes}-min runs the PSS peaks of the last two thirds are level (the first "
        "third is mostly start-up).")
    return "\n".join(lines)


def default_pool(cpus: int) -> int:
    """The extraction actors the job starts by default on ``cpus`` CPUs for many items."""
    from mer_ray.config import ScoreConfig
    from mer_ray.score.plan import plan_workers

    cfg = ScoreConfig(source=".", out=".", visual="default", audio="default")
    return plan_workers(cfg, float(cpus)).extract_workers


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--mid-minutes", type=int, default=10,
                    help="a video long enough to fill the pipeline, the baseline for growth "
                         "with length (default: %(default)s)")
    ap.add_argument("--clip-s", type=float, default=30.0)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--busy", action="store_true",
                    help="note in the section that other jobs shared the machine")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--phase", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.phase:
        source, out, cpus, workers, result = args.phase
        Path(result).write_text(json.dumps(run_phase(source, out, int(cpus),
                                                     int(workers) or None)))
        return 0
    base = base_clip(WORK)
    if not 1 < args.mid_minutes < args.minutes:
        ap.error(f"--mid-minutes must be between 1 and --minutes ({args.minutes})")
    long = concat(base, args.minutes, WORK / f"long{args.minutes}.mp4")
    mid = concat(base, args.mid_minutes, WORK / f"long{args.mid_minutes}.mp4")
    clips = round(args.minutes * 60 / args.clip_s)
    long_in = one_input(long, WORK / f"in_{args.minutes}min")
    inputs = {"1-min video": (one_input(base, WORK / "in_1min"), 60.0, None),
              f"{args.mid_minutes}-min video, 1 actor": (
                  one_input(mid, WORK / f"in_{args.mid_minutes}min"), args.mid_minutes * 60.0, 1),
              f"{args.minutes}-min video, 1 actor": (long_in, args.minutes * 60.0, 1),
              f"{args.minutes}-min video": (long_in, args.minutes * 60.0, None),
              f"archive of {args.clip_s:g} s clips": (
                  archive(base, clips, args.clip_s, WORK / "in_archive"), clips * args.clip_s,
                  None)}
    pool_size = default_pool(args.cpus)
    phases = {}
    for name, (folder, video_s, workers) in inputs.items():
        out = WORK / f"out_{folder.name}{'_w1' if workers else ''}"
        p = in_subprocess(folder, out, args.cpus, workers)
        pool = "1" if workers or name == "1-min video" else f"{pool_size} (default)"
        phases[name] = (p, video_s, pool)
        print(name, json.dumps(p), flush=True)
    text = report(phases, args.minutes, args.mid_minutes, args.clip_s, args.cpus, args.busy)
    print(text)
    if not args.no_write:
        write_section("long-videos", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
