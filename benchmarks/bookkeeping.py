"""Bookkeeping at a million inputs: listing, the resume check and building the input dataset,
the row-per-object way the jobs did it (old) vs the columnar way they do it now, same run.

Generated (cached under --work-dir): a CSV manifest of N paths (path,label,speaker; the files
need not exist), a scores output whose committed shards (--videos-per-shard rows each, as
`mer-ray score` writes them) hold a share --done of those paths, and a folder tree of
--folder-files empty RAVDESS-named files. Each path runs in a fresh Python process, so peak
RSS is its own: the driver's, sampled every 10 ms (Ray's own processes are not counted; Ray
start-up is timed apart, as it is the same for both paths).

old: csv.DictReader + one InputItem per row; a Python set of every committed path; a dict per
     input to do; ``ray.data.from_items`` of the dicts.
new: ``list_inputs_table`` (pyarrow CSV reader, one table); ``take_stock`` (``is_in`` anti-join
     on the path column); ``input_dataset`` (``ray.data.from_blocks`` of table slices).

    python benchmarks/bookkeeping.py [--inputs 1000000] [--done 0.99] [--folder-files 100000]
                                     [--no-write]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write_section  # noqa: E402

BUDGET_S, BUDGET_GB = 60.0, 2.0
LABELS = ["happy", "sad", "angry", "fear", "disgust", "surprise", "neutral", "calm"]


# ------------------------------------------------------------------------------ generated data
def make_manifest(folder: Path, n: int) -> Path:
    """``n`` relative paths in 1,000 folders, a label (1 in 8 calm: dropped) and a speaker."""
    path = folder / f"manifest-{n}.csv"
    if not path.exists():
        with open(path.with_suffix(".tmp"), "w") as fh:
            fh.write("path,label,speaker\n")
            fh.writelines(f"clips/{i % 1000:03d}/{i:07d}.mp4,{LABELS[i % 8]},spk{i % 500}\n"
                          for i in range(n))
        path.with_suffix(".tmp").rename(path)
    return path


def make_scores(folder: Path, manifest: Path, done: float, per_shard: int) -> Path:
    """A score output whose committed shards hold ``done`` of the manifest's paths, spread
    through it (written straight with pyarrow: the bookkeeping reads only the path column)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mer_ray.data.sources import list_inputs_table
    from mer_ray.score.schema import SCORES_DIR, SCORES_SCHEMA

    out = folder / f"scores-{manifest.stem}-{done:g}-{per_shard}"
    if (out / "complete").exists():
        return out
    paths = list_inputs_table(str(manifest)).column("path").combine_chunks()
    i = np.arange(len(paths))
    keep = np.nonzero(np.floor((i + 1) * done) > np.floor(i * done))[0]    # spread evenly
    done_paths = paths.take(pa.array(keep))
    (out / SCORES_DIR).mkdir(parents=True, exist_ok=True)
    nulls = {f.name: pa.nulls(per_shard, f.type) for f in SCORES_SCHEMA}
    for k, start in enumerate(range(0, len(done_paths), per_shard)):
        chunk = done_paths.slice(start, per_shard)
        cols = {**{n: a.slice(0, len(chunk)) for n, a in nulls.items()}, "path": chunk,
                "status": pa.array(["unreadable"] * len(chunk))}
        pq.write_table(pa.table(cols, schema=SCORES_SCHEMA),
                       out / SCORES_DIR / f"part-{k:016x}.parquet", compression="zstd")
    (out / "complete").write_text(f"{len(done_paths)}\n")
    return out


def make_tree(folder: Path, n: int) -> Path:
    """``n`` empty files with RAVDESS names (Actor_NN folders in sets of 9,216 names)."""
    root = folder / f"tree-{n}"
    if (root / ".complete").exists():
        return root
    for i in range(n):
        j = i % 9216
        actor, rest = j % 24 + 1, j // 24
        mod, rest = rest % 2 + 1, rest // 2
        emo, rest = rest % 8 + 1, rest // 8
        parts = (mod, 1, emo, rest % 2 + 1, rest // 2 % 2 + 1, rest // 4 % 2 + 1, actor)
        d = root / f"set_{i // 9216:03d}" / f"Actor_{actor:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / ("-".join(f"{p:02d}" for p in parts) + ".mp4")).touch()
    (root / ".complete").touch()
    return root


# ------------------------------------------------------------------------------- measuring
class PeakRSS:
    """This process's resident memory, sampled every 10 ms; ``step()`` starts a new window."""

    def __init__(self):
        self.peak, self._stop = 0, threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")
        threading.Thread(target=self._run, daemon=True).start()

    def now(self) -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self._page

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.now())

    def step(self) -> None:
        self.peak = self.now()


def timed(results: dict, mem: PeakRSS, name: str, fn):
    mem.step()
    t0 = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - t0
    results[name] = {"s": round(seconds, 2), "peak_gb": round(max(mem.peak, mem.now()) / 2**30, 3)}
    return value


# ---------------------------------------------------------------------------- the old path
def old_listing(manifest: str) -> list:
    """list_inputs as it was: csv.DictReader, one InputItem per row, sorted by path."""
    from mer_ray.config import EMOTION_INDEX
    from mer_ray.data.sources import (AUDIO_EXTENSIONS, InputItem, _manifest_path,
                                      video_id_for)
    from mer_ray.labels import normalize_label
    from mer_ray.storage import name_of

    base, items = str(Path(manifest).parent), []
    with open(manifest, newline="") as fh:
        for row in csv.DictReader(fh):
            raw = row["path"].strip()
            path = _manifest_path(raw, base)
            suffix = PurePosixPath(name_of(path)).suffix.lower()
            item = InputItem(path=path, video_id=video_id_for(raw), corpus="manifest",
                             modality="audio-only" if suffix in AUDIO_EXTENSIONS else "unknown",
                             speaker=(row.get("speaker") or "").strip() or None)
            label = (row.get("label") or "").strip()
            if label:
                try:
                    item.label = normalize_label(label)
                except ValueError as err:
                    item.drop_reason = str(err)
                if item.label is None and item.drop_reason is None:
                    item.drop_reason = f"label {label!r} has no project class"
                if item.label is not None:
                    item.label_index = EMOTION_INDEX[item.label]
            items.append(item)
    return sorted(items, key=lambda it: it.path)


def old_folder(root: str) -> list:
    """The folder walk as it was: Path objects, then one InputItem per file (``_name_row``
    holds the same per-name logic the old ``_item`` did)."""
    from mer_ray.data.sources import MEDIA_EXTENSIONS, InputItem, _name_row, local_path

    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in filenames
                  if not f.startswith(".") and Path(f).suffix.lower() in MEDIA_EXTENSIONS]
    return [InputItem(*_name_row(local_path(p), os.path.relpath(p, root), "auto"))
            for p in sorted(found)]


def run_old(args) -> dict:
    from mer_ray.data.bookkeeping import block_count
    from mer_ray.score.schema import scores_store

    mem, r = PeakRSS(), {}
    items = timed(r, mem, "list", lambda: old_listing(args.manifest))
    done = timed(r, mem, "resume check", lambda: scores_store(args.out).done_paths())
    todo = timed(r, mem, "todo rows", lambda: [it.to_row() for it in items if it.path not in done])
    timed(r, mem, "speakers", lambda: [(it.actor, it.speaker) for it in items if it.drop_reason is None])
    _ray(r, mem)
    timed(r, mem, "dataset", lambda: _lazy(__import__("ray").data.from_items(
        todo, override_num_blocks=block_count(len(todo)))))
    folder = timed(r, mem, "folder list", lambda: old_folder(args.tree))
    return {"steps": r, "listed": len(items), "todo": len(todo), "folder_listed": len(folder),
            "todo_paths_head": [t["path"] for t in todo[:3]]}


# ---------------------------------------------------------------------------- the new path
def run_new(args) -> dict:
    from mer_ray.data.bookkeeping import block_count, input_dataset, speakers, take_stock
    from mer_ray.data.sources import list_inputs_table
    from mer_ray.score.schema import scores_store

    mem, r = PeakRSS(), {}
    listed = timed(r, mem, "list", lambda: list_inputs_table(args.manifest))
    stock = timed(r, mem, "resume check", lambda: take_stock(listed, scores_store(args.out)))
    timed(r, mem, "todo rows", lambda: stock.todo)            # the anti-join above made it
    timed(r, mem, "speakers", lambda: speakers(listed))
    _ray(r, mem)
    timed(r, mem, "dataset", lambda: _lazy(input_dataset(stock.todo, block_count(stock.todo.num_rows))))
    folder = timed(r, mem, "folder list", lambda: list_inputs_table(args.tree))
    dry = timed(r, mem, "dry run (score)", lambda: _dry_run(args))
    timed(r, mem, "missing files x200", lambda: _missing_files(200))
    return {"steps": r, "listed": listed.num_rows, "todo": stock.todo.num_rows,
            "folder_listed": folder.num_rows, "dry_run": dry,
            "todo_paths_head": stock.todo.column("path").slice(0, 3).to_pylist()}


def _ray(r: dict, mem: PeakRSS) -> None:
    from mer_ray.config import RayConfig
    from mer_ray.runtime import init_ray

    timed(r, mem, "ray start", lambda: init_ray(RayConfig()))


def _lazy(ds):
    """The lazy stage after the inputs (built, not executed), as the job chains it."""
    return ds.map_batches(lambda b: b, batch_size=1, batch_format="pyarrow")


def _dry_run(args) -> str:
    from mer_ray.config import ScoreConfig
    from mer_ray.score.dry_run import dry_run_score, format_score_dry_run

    cfg = ScoreConfig(source=args.manifest, out=args.out, visual="default", audio="default")
    return format_score_dry_run(dry_run_score(cfg))


def _missing_files(n: int) -> float:
    """Seconds per input of the extraction of paths that do not exist (status unreadable)."""
    from mer_ray.media.extract import ClipExtractor
    from mer_ray.media.options import ExtractOptions

    extractor = ClipExtractor(ExtractOptions())
    t0 = time.perf_counter()
    statuses = {extractor.extract(f"/nonexistent/{i}.mp4").clip["status"] for i in range(n)}
    assert statuses == {"unreadable"}, statuses
    return (time.perf_counter() - t0) / n


# ------------------------------------------------------------------------------------ report
BUDGET_STEPS = ("list", "resume check", "todo rows", "speakers", "dataset")


def table(old: dict, new: dict, n: int, done: float, tree_n: int) -> str:
    rows = ["| step | old s | new s | old / new | old peak RSS GB | new peak RSS GB |",
            "| --- | --- | --- | --- | --- | --- |"]
    for step in [*BUDGET_STEPS, "ray start", "folder list"]:
        o, w = old["steps"][step], new["steps"][step]
        ratio = f"{o['s'] / w['s']:.1f}x" if w["s"] > 0.005 else "-"
        label = f"folder list ({tree_n:,} files)" if step == "folder list" else step
        rows.append(f"| {label} | {o['s']} | {w['s']} | {ratio} | {o['peak_gb']} | {w['peak_gb']} |")
    tot = {k: sum(p["steps"][s]["s"] for s in BUDGET_STEPS) for k, p in (("old", old), ("new", new))}
    peak = {k: max(p["steps"][s]["peak_gb"] for s in BUDGET_STEPS) for k, p in (("old", old), ("new", new))}
    rows.append(f"| **total (list + resume + todo + dataset)** | **{tot['old']:.1f}** | "
                f"**{tot['new']:.1f}** | **{tot['old'] / tot['new']:.1f}x** | **{peak['old']}** | "
                f"**{peak['new']}** |")
    verdict = lambda k: ("within" if tot[k] < BUDGET_S and peak[k] < BUDGET_GB else "over")  # noqa: E731
    return ("\n".join(rows) + f"\n\n{n:,} inputs, {done:.0%} done, {new['todo']:,} to score: old "
            f"{tot['old']:.1f} s / {peak['old']} GB ({verdict('old')} the {BUDGET_S:.0f} s / "
            f"{BUDGET_GB:.0f} GB budget), new {tot['new']:.1f} s / {peak['new']} GB "
            f"({verdict('new')} it).")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--inputs", type=int, default=1_000_000)
    p.add_argument("--done", type=float, nargs="+", default=[0.99])
    p.add_argument("--folder-files", type=int, default=100_000)
    p.add_argument("--videos-per-shard", type=int, default=64)
    p.add_argument("--work-dir", default="bench_out/bookkeeping")
    p.add_argument("--no-write", action="store_true", help="don't update BENCHMARKS.md")
    p.add_argument("--path", choices=["old", "new"], help=argparse.SUPPRESS)
    p.add_argument("--manifest", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--tree", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.path:                                     # one path, in its own process
        print("RESULT " + json.dumps(run_old(args) if args.path == "old" else run_new(args)))
        return 0
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    manifest = make_manifest(work, args.inputs)
    tree = make_tree(work, args.folder_files)
    print(f"inputs generated in {time.perf_counter() - t0:.0f} s", flush=True)
    sections = []
    for done in args.done:
        out = make_scores(work, manifest, done, args.videos_per_shard)
        res = {path: _child(path, manifest, out, tree) for path in ("old", "new")}
        assert res["old"]["todo_paths_head"] == res["new"]["todo_paths_head"]
        assert (res["old"]["todo"], res["old"]["listed"]) == (res["new"]["todo"], res["new"]["listed"])
        text = table(res["old"], res["new"], args.inputs, done, args.folder_files)
        print(text, flush=True)
        print(res["new"]["dry_run"])
        sections.append((done, text, res))
    if not args.no_write:
        write_section("bookkeeping", report(args, sections))
    return 0


def _child(path: str, manifest: Path, out: Path, tree: Path) -> dict:
    cmd = [sys.executable, __file__, "--path", path, "--manifest", str(manifest), "--out",
           str(out), "--tree", str(tree)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{path} path failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def report(args, sections: list) -> str:
    load = os.getloadavg()[0]
    parts = [f"## Bookkeeping at {args.inputs:,} inputs (benchmarks/bookkeeping.py)\n",
             f"`python benchmarks/bookkeeping.py --inputs {args.inputs} --done "
             f"{' '.join(f'{d:g}' for d in args.done)} --folder-files {args.folder_files}` on "
             f"{machine()}; 1-min load average at the end {load:.1f} (other jobs shared the "
             "machine: timings are rough).\n",
             "What a score run does before its first input, over a generated CSV manifest "
             "(paths need not exist) against a scores output whose committed shards "
             f"({args.videos_per_shard} rows each, as the job writes them) hold the done share. "
             "old: csv.DictReader, an InputItem per row, a Python set of committed paths, a dict "
             "per input to do, `ray.data.from_items`; new: `list_inputs_table` (pyarrow CSV), "
             "`take_stock` (`pyarrow.compute.is_in` anti-join), `input_dataset` "
             "(`ray.data.from_blocks` of table slices). Each path in a fresh process; peak RSS is "
             "the driver's (sampled every 10 ms), Ray's own processes not counted; Ray start-up "
             "is the same for both and outside the total. Both paths read the shards with "
             "today's `ShardStore` (the old set is built from its path column), so the resume "
             "check's old/new differ only by the set vs the anti-join. The folder listing is measured at "
             f"{args.folder_files:,} files (creating 10^6 files here was too slow); it is linear "
             "in files, so x10 gives the 10^6 estimate.\n"]
    for done, text, res in sections:
        new = res["new"]
        folder = new["steps"]["folder list"]["s"] * args.inputs / max(1, args.folder_files)
        parts += [f"### {done:.0%} done\n", text,
                  f"\nFolder tree at {args.inputs:,} files, extrapolated: about {folder:.0f} s "
                  f"(new). `score --dry-run` (list + read-only resume check + models + plan) "
                  f"took {new['steps']['dry run (score)']['s']} s and printed:\n\n"
                  f"    {new['dry_run']}\n",
                  f"Extraction of a path that does not exist (status `unreadable`): "
                  f"{new['steps']['missing files x200']['s'] / 200 * 1000:.2f} ms per input.\n"]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
