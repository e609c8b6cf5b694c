"""summary.json of a score output says how many committed rows no longer have an input."""
from __future__ import annotations

from mer_ray.config import ScoreConfig
from mer_ray.score.schema import SCORES_DIR, scores_store


def test_rows_whose_input_is_gone_are_counted_and_kept(tmp_path):
    from test_damaged_shards import _rows

    from mer_ray.commands.score import format_summary
    from mer_ray.score.summary import summarize_scores

    out = tmp_path / "out"
    store = scores_store(str(out))
    store.write_shard("s", {SCORES_DIR: _rows(["/a/1.wav", "/a/2.wav", "/a/gone.wav"])})
    cfg = ScoreConfig(source="/a", out=str(out))
    summary = summarize_scores(store, cfg, listed=2, scored=0, seconds=1.0,
                               listed_paths={"/a/1.wav", "/a/2.wav"})
    assert summary["rows"] == 3 and summary["rows_without_input"] == 1
    assert "1 committed rows have no input in this listing" in format_summary(summary)
    assert len(store.read(SCORES_DIR)) == 3                       # nothing deleted
    assert store.read_json("summary.json")["rows_without_input"] == 1
