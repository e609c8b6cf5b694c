"""A committed scores shard that does not read: a score run moves it aside and redoes its
inputs; evaluate (a reader) leaves it in place, skips it and says so."""
from __future__ import annotations

import pyarrow as pa
import pytest

from mer_ray.config import EMOTIONS
from mer_ray.data.out_lock import OutLock
from mer_ray.score.schema import SCORES_DIR, SCORES_SCHEMA, scores_store


def _rows(paths: list[str], label: str = "happy") -> pa.Table:
    n = len(paths)
    cols = {f.name: [None] * n for f in SCORES_SCHEMA}
    cols.update(path=paths, label=[label] * n, label_index=[4] * n, status=["ok"] * n,
                fusion_mode=["audio_only"] * n, emotion=[label] * n,
                audio_emotion=[label] * n, w_visual=[0.5] * n, w_audio=[0.5] * n,
                **{f"p_{e}": [1.0 if e == label else 0.0] * n for e in EMOTIONS})
    return pa.table(cols, schema=SCORES_SCHEMA)


@pytest.fixture()
def damaged_output(tmp_path):
    """A score output of two shards (3 + 2 inputs); the second one truncated."""
    out = tmp_path / "scores_out"
    store = scores_store(str(out))
    store.write_shard("good", {SCORES_DIR: _rows(["/a/1.wav", "/a/2.wav", "/a/3.wav"])})
    store.write_shard("bad", {SCORES_DIR: _rows(["/a/4.wav", "/a/5.wav"])})
    bad = out / SCORES_DIR / "part-bad.parquet"
    bad.write_bytes(bad.read_bytes()[:30])
    return out, bad


def test_read_scores_skips_and_records_a_damaged_shard(damaged_output):
    from mer_ray.score.results import SKIPPED_ATTR, damaged_shards, read_scores

    out, bad = damaged_output
    df = read_scores(str(out))
    assert sorted(df["path"]) == ["/a/1.wav", "/a/2.wav", "/a/3.wav"]
    assert df.attrs[SKIPPED_ATTR] == [str(bad)]
    assert damaged_shards(str(out)) == [str(bad)] and bad.exists()


def test_evaluate_command_says_what_it_skipped(damaged_output, capsys):
    from mer_ray.cli import main

    out, bad = damaged_output
    assert main(["evaluate", str(out), "--out", str(out.parent / "report")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("skipped 1 damaged shard ") and line.endswith(str(bad))
               for line in lines), lines
    assert any("n=3 " in line for line in lines), lines
    assert bad.exists()                                    # a reader moves nothing


def test_the_writer_moves_it_aside_and_its_inputs_are_redone(damaged_output, caplog):
    out, bad = damaged_output
    store = scores_store(str(out))
    with OutLock(str(out)):
        done = store.done_paths()
    assert done == {"/a/1.wav", "/a/2.wav", "/a/3.wav"}      # 4 and 5 are scored again
    assert not bad.exists()
    assert [p.parent.name for p in (out / "_quarantine").rglob("*.parquet")] == [SCORES_DIR]
    assert str(bad) in caplog.text and "inputs will be redone" in caplog.text
    assert store.quarantined and store.quarantined[0].startswith(str(out / "_quarantine"))
