"""Bookkeeping in columns (data/bookkeeping.py): the anti-join resume check gives exactly the
todo the per-item set logic gave; the dry runs count, plan and leave everything as it was."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pyarrow as pa
import pytest

from mer_ray.config import PreprocessConfig, RayConfig, ScoreConfig
from mer_ray.data.bookkeeping import even_slices, input_rows, list_and_check, speakers
from mer_ray.data.preprocess import clips_store, dry_run_preprocess, summarize_clips
from mer_ray.data.schema import CLIPS_DIR, CLIPS_SCHEMA, FRAMES_DIR, FRAMES_SCHEMA, to_table
from mer_ray.data.sources import list_inputs


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


@pytest.fixture
def archive(tmp_path) -> Path:
    """RAVDESS names (one calm: dropped), a plain name, a symlink and a hard link to a clip."""
    root = tmp_path / "archive"
    for name in ("01-01-03-01-01-01-01.mp4", "01-01-02-01-01-01-01.mp4",
                 "01-01-05-01-01-01-02.mp4", "01-01-04-02-01-02-02.wav"):
        touch(root / "Actor_01" / name)
    clip = touch(root / "plain" / "clip.mp4")
    os.symlink("clip.mp4", root / "plain" / "link.mp4")
    os.link(clip, root / "plain" / "hard.mp4")
    return root


def commit(out: Path, paths: list[str], shard: str) -> None:
    """A committed clips shard holding ``paths`` (ok rows; content does not matter here)."""
    rows = [{"path": p, "status": "ok", "label": "happy", "keyframes": 2, "faces_found": 1,
             "t_total_s": 0.5} for p in paths]
    clips_store(str(out)).write_shard(shard, {CLIPS_DIR: to_table(rows, CLIPS_SCHEMA),
                                              FRAMES_DIR: FRAMES_SCHEMA.empty_table()})


def old_todo(source: str, out: Path) -> list[dict]:
    """The per-item logic the jobs used: a set of done paths, a dict per input not in it."""
    done = clips_store(str(out)).done_paths()
    return [{**it.to_row(), "drop_reason": it.drop_reason} for it in list_inputs(source)
            if it.path not in done]


def manifest_with_duplicates(tmp_path: Path, archive: Path) -> str:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,speaker\n"
                        f"{archive}/plain/clip.mp4,happy,s1\n"
                        "archive/plain/link.mp4,calm,s1\n"          # no project class
                        f"{archive}/plain/clip.mp4,sad,s2\n"        # listed twice
                        "archive/plain/hard.mp4,bored,s2\n"         # unknown label
                        "archive/Actor_01/01-01-03-01-01-01-01.mp4,angry,\n")
    return str(manifest)


@pytest.mark.parametrize("kind", ["folder", "manifest"])
def test_anti_join_gives_the_todo_of_the_set_logic(tmp_path, archive, kind):
    source = str(archive) if kind == "folder" else manifest_with_duplicates(tmp_path, archive)
    out = tmp_path / "out"
    listed = list_inputs(source)
    commit(out, [listed[0].path, str(archive / "gone.mp4")], "a")   # one no longer listed
    commit(out, [listed[0].path, listed[-1].path], "b")            # committed twice
    stock = list_and_check(source, "auto", clips_store(str(out)))
    assert stock.todo.to_pylist() == old_todo(source, out)
    assert 0 < stock.todo.num_rows < len(listed)
    assert stock.done == len(listed) - stock.todo.num_rows
    assert (stock.committed, stock.without_input) == (3, 1)
    assert input_rows(stock.todo).to_pylist() == [
        it.to_row() for it in list_inputs(source) if it.path not in {listed[0].path, listed[-1].path}]


def test_speakers_count_like_the_item_list(archive):
    items = list_inputs(str(archive))
    from mer_ray.labels import speaker_id

    want = sorted(map(str, (speaker_id(it.actor, it.speaker) for it in items if it.drop_reason is None)))
    got = speakers(list_and_check(str(archive), "auto", clips_store("/nonexistent/out")).listed)
    assert sorted(map(str, got)) == want


def test_even_slices_cut_like_from_items():
    table = pa.table({"path": [f"{i}" for i in range(10)]})
    assert [s.num_rows for s in even_slices(table, 4)] == [3, 3, 2, 2]
    assert [r for s in even_slices(table, 4) for r in s.column("path").to_pylist()] == table.column("path").to_pylist()
    assert [s.num_rows for s in even_slices(table, 50)] == [1] * 10
    assert [s.num_rows for s in even_slices(table.slice(0, 0), 3)] == [0]


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


def test_dry_run_preprocess_counts_plans_and_changes_nothing(tmp_path, archive):
    out = tmp_path / "out"
    listed = list_inputs(str(archive))
    commit(out, [listed[0].path, listed[1].path], "a")
    commit(out, [listed[2].path], "b")
    bad = out / CLIPS_DIR / "part-b.parquet"
    bad.write_bytes(bad.read_bytes()[:20])                     # damaged: its input is not done
    (out / CLIPS_DIR / "_tmp-dead.parquet").write_bytes(b"half")
    before = snapshot(out)
    cfg = PreprocessConfig(data_dir=str(archive), out=str(out), workers=2, videos_per_shard=16,
                           ray=RayConfig(num_cpus=4))
    report = dry_run_preprocess(cfg)
    assert (report["inputs"], report["done"], report["to_do"]) == (len(listed), 2, len(listed) - 2)
    assert report["dropped"] == sum(it.drop_reason is not None for it in listed[2:])
    assert report["extract_workers"] == 2 and report["shards"] >= 1
    assert snapshot(out) == before and not (out / "_lock.json").exists()
    fresh = tmp_path / "never_made"
    report = dry_run_preprocess(PreprocessConfig(data_dir=str(archive), out=str(fresh)))
    assert report["done"] == 0 and not fresh.exists()


def test_dry_run_preprocess_refuses_an_empty_source(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no inputs"):
        dry_run_preprocess(PreprocessConfig(data_dir=str(tmp_path / "empty"), out=str(tmp_path / "o")))
    report = dry_run_preprocess(PreprocessConfig(data_dir=str(tmp_path / "empty"),
                                                 out=str(tmp_path / "o"), allow_empty=True))
    assert report["to_do"] == 0 and report["plan"] == "nothing to extract"


def test_dry_run_score_counts_and_plans(tmp_path, archive):
    from mer_ray.score.dry_run import dry_run_score, format_score_dry_run

    cfg = ScoreConfig(source=str(archive), out=str(tmp_path / "scores"), visual="default",
                      audio="default", ray=RayConfig(num_cpus=3), in_process_max=0)
    report = dry_run_score(cfg)
    n = len(list_inputs(str(archive)))
    small = format_score_dry_run(dry_run_score(dataclasses.replace(cfg, in_process_max=n)))
    assert f"plan: without Ray ({n} inputs, at most --in-process-max {n}): 3 extraction " \
           "processes" in small
    assert (report["inputs"], report["done"], report["to_do"]) == (n, 0, n)
    assert report["cpus"] == 3 and set(report["models"]) == {"visual", "audio"}
    line = format_score_dry_run(report)
    assert line.startswith(f"{n} inputs: 0 done, {n} to score; plan: ")
    assert "visual actor" in line and "audio actor" in line and line.endswith("(--dry-run)")
    assert "at most 384 MiB queued between stages" in line       # plan.BUFFER_PER_CPU x 3
    assert not (tmp_path / "scores").exists()


def test_summary_counts_in_arrow_match_python(tmp_path):
    out = tmp_path / "out"
    rows = [{"path": f"/a/{i}.mp4", "status": s, "label": lab, "keyframes": k, "faces_found": f,
             "t_decode_s": 0.25 * i}
            for i, (s, lab, k, f) in enumerate([("ok", "happy", 3, 2), ("unreadable", None, None, None),
                                                ("ok", "sad", 5, 5), ("dropped", "", 0, 0),
                                                ("ok", "happy", 1, None)])]
    clips_store(str(out)).write_shard("a", {CLIPS_DIR: to_table(rows, CLIPS_SCHEMA),
                                            FRAMES_DIR: FRAMES_SCHEMA.empty_table()})
    cfg = PreprocessConfig(data_dir="x", out=str(out))
    listed = {"/a/0.mp4", "/a/1.mp4", "/a/9.mp4"}
    for given in (listed, pa.chunked_array([pa.array(sorted(listed))])):
        summary = summarize_clips(clips_store(str(out)), cfg, processed=5, seconds=1.0,
                                  listed_paths=given)
        assert summary["status"] == {"dropped": 1, "ok": 3, "unreadable": 1}
        assert summary["labels"] == {"happy": 2, "sad": 1}
        assert (summary["failed"], summary["rows_without_input"]) == (1, 3)
        assert (summary["keyframes"], summary["face_crops"]) == (9, 7)
        assert summary["cpu_seconds"]["t_decode_s"] == 2.5


def test_preprocess_dry_run_cli_starts_no_ray(tmp_path, archive, monkeypatch, capsys):
    """`mer-ray preprocess --dry-run` prints the counts and the plan, exits 0, and neither
    starts Ray (runtime.init_ray, recorded) nor creates --out."""
    import mer_ray.runtime
    from mer_ray.cli import main

    starts: list = []
    monkeypatch.setattr(mer_ray.runtime, "init_ray", lambda cfg: starts.append(cfg))
    out = tmp_path / "shards"
    n = len(list_inputs(str(archive)))
    assert main(["preprocess", str(archive), "--out", str(out), "--dry-run", "--workers", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{n} inputs: 0 done, {n} to process (1 of them without a project class")
    assert "plan: 2 extraction actors x 1 CPU" in line and line.endswith("nothing was run (--dry-run)")
    assert not starts and not out.exists()


def test_score_dry_run_cli_starts_no_ray(tmp_path, archive, monkeypatch, capsys):
    """`mer-ray score --dry-run` (bundled models) prints the counts and the actor plan, exits 0,
    and neither starts Ray nor creates --out."""
    import mer_ray.runtime
    from mer_ray.cli import main

    starts: list = []
    monkeypatch.setattr(mer_ray.runtime, "init_ray", lambda cfg: starts.append(cfg))
    out = tmp_path / "scores"
    n = len(list_inputs(str(archive)))
    assert main(["score", str(archive), "--out", str(out), "--dry-run"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{n} inputs: 0 done, {n} to score; plan: without Ray")
    assert line.endswith("nothing was run (--dry-run)")
    assert main(["score", str(archive), "--out", str(out), "--dry-run", "--in-process-max",
                 str(n - 1)]) == 0
    assert "visual actor" in capsys.readouterr().out
    assert not starts and not out.exists()
