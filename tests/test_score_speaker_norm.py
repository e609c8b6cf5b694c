"""`score` with a speaker-normalised audio model (`train-audio --speaker-norm`): the streaming
pass keeps raw audio vectors, the finalize pass predicts with statistics over every scored clip
of each speaker and re-fuses; resume, a killed finalize and label independence."""
from __future__ import annotations

import dataclasses
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mer_ray.config import RayConfig, ScoreConfig, TrainAudioConfig
from mer_ray.models.speaker_norm import SpeakerStats, speaker_keys
from mer_ray.score import speaker_pass
from mer_ray.score.job import run_score
from mer_ray.score.local import score_locally
from mer_ray.score.plan import resolve_plan
from mer_ray.score.schema import scores_store
from mer_ray.score.fusion import FusionWeights
from mer_ray.score.schema import (AUDIO_INPUT, PROB_COLUMNS, RUN_FILE, SCORES_DIR,
                                  SPEAKER_STATS_FILE, SUMMARY_FILE)

# same statuses and fusion modes as with an ordinary audio model (tests/test_score.py)
EXPECTED = {"no_audio": ("no_audio", "visual_only"), "video_only": ("video_only", "visual_only"),
            "audio_only": ("audio_only", "audio_only"), "no_face": ("no_face", "audio_only"),
            "calm": ("ok", "audio_visual"), "truncated": ("truncated", "none"),
            "blank": ("no_signal", "none")}


@pytest.fixture(scope="module")
def sn_bundle(tmp_path_factory) -> str:
    """A thesis-recipe RBF SVM trained with --speaker-norm on tiny synthetic clips."""
    from mer_ray.train.svm import train_svm
    from support.synthetic import write_synthetic_shards

    root = tmp_path_factory.mktemp("sn_bundle")
    shards = write_synthetic_shards(root / "shards", clips_per_class=2, frames_per_clip=1,
                                    aug_copies=0, shards=1)
    cfg = TrainAudioConfig(shards=str(shards), out=str(root / "run"), recipe="thesis",
                           classifier="svm", speaker_norm=True, val="none")
    return train_svm(cfg).run_dir


@pytest.fixture(scope="module")
def scored(ray_local, mixed_archive, tiny_bundles, sn_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("sn_scores")
    cfg = ScoreConfig(source=str(mixed_archive["root"]), out=str(out), audio=sn_bundle,
                      visual=tiny_bundles["visual"], timeline=True, videos_per_shard=4,
                      ray=RayConfig(num_cpus=2))
    return cfg, run_score(cfg)


def _rows(out) -> dict[str, dict]:
    return {r["path"]: r for r in scores_store(str(out)).read(SCORES_DIR).to_pylist()}


def _direct_audio(cfg: ScoreConfig, sn_bundle: str):
    """Every input's audio vector extracted directly, speaker ids from the listing, and the
    bundle's probabilities with statistics over all of them."""
    from mer_ray.data.sources import list_inputs
    from mer_ray.media.extract import ClipExtractor
    from mer_ray.models.bundle import AudioPredictor

    extractor = ClipExtractor(dataclasses.replace(resolve_plan(cfg).extract, faces=False))
    paths, feats, keys = [], [], []
    for item in list_inputs(cfg.source):
        vec = extractor.extract(item.path).clip.get("audio_features")
        if vec is not None:
            paths.append(item.path)
            feats.append(vec)
            keys.append(speaker_keys([item.actor], [item.speaker])[0])
    x, model = np.asarray(feats, np.float32), AudioPredictor(sn_bundle)
    probs = model.predict(x, speakers=keys, stats=SpeakerStats().update(x, keys))
    rest = np.array([keys.index(k) != i for i, k in enumerate(keys)])   # each speaker's 1st out
    fewer = SpeakerStats().update(x[rest], np.asarray(keys)[rest])
    partial = model.predict(x, speakers=keys, stats=fewer)
    assert not np.allclose(partial, probs, atol=1e-3)  # the statistics matter: a test can tell
    return paths, x, keys, probs


@pytest.mark.slow
def test_every_audio_row_has_probabilities_from_all_clips_of_its_speaker(scored, mixed_archive,
                                                                         sn_bundle):
    from mer_ray.data.sources import list_inputs

    cfg, summary = scored
    rows = _rows(cfg.out)
    assert summary["rows"] == len(rows) == len(list_inputs(cfg.source))
    for kind, want in EXPECTED.items():
        row = rows[str(mixed_archive["bad"][kind].resolve())]
        assert (row["status"], row["fusion_mode"]) == want, kind
    paths, x, keys, direct = _direct_audio(cfg, sn_bundle)
    assert set(paths) == {p for p, r in rows.items() if r["audio_input"] is not None}
    assert len(set(keys)) >= 2                        # actor 1 and the bad inputs' actor 24
    for path, vec, probs in zip(paths, x, direct):
        row = rows[path]
        np.testing.assert_allclose(row[AUDIO_INPUT], vec, rtol=1e-6)
        np.testing.assert_allclose(row["audio_probs"], probs, atol=1e-5)
        assert row["fusion_mode"] in ("audio_visual", "audio_only")
        visual = row["visual_probs"]
        fused = probs if visual is None else 0.5 * np.asarray(visual) + 0.5 * probs   # Alg. 3.9
        np.testing.assert_allclose([row[c] for c in PROB_COLUMNS], fused, atol=1e-5)
        assert row["emotion"] is not None and row["t_audio_s"] is not None
    no_vector = [r for r in rows.values() if r["audio_input"] is None]
    assert no_vector and all(r["audio_probs"] is None for r in no_vector)
    report = json.loads((Path(cfg.out) / RUN_FILE).read_text())["speaker_norm"]
    assert report["applied"] and report["clips_per_speaker"] == dict(sorted(Counter(keys).items()))
    assert report["speakers_with_few_clips"] == [k for k, n in report["clips_per_speaker"].items()
                                                 if n < speaker_pass.MIN_CLIPS]
    assert summary["speaker_norm"] == report
    saved = json.loads((Path(cfg.out) / SPEAKER_STATS_FILE).read_text())
    np.testing.assert_allclose(SpeakerStats.from_dict(saved["stats"]).normalize(x, keys),
                               SpeakerStats().update(x, keys).normalize(x, keys), atol=1e-5)


@pytest.mark.slow
def test_resume_after_finalize_adds_nothing(scored):
    cfg, summary = scored
    before = _rows(cfg.out)
    again = run_score(cfg)
    after = scores_store(cfg.out).read(SCORES_DIR).to_pylist()
    assert again["this_run"]["scored"] == 0 and again["rows"] == summary["rows"] == len(after)
    assert len({r["path"] for r in after}) == len(after)
    assert again["speaker_norm"]["shards_rewritten"] == 0
    assert {r["path"]: r for r in after} == before


def _rewrite_shards(out: Path, change) -> None:
    for path in sorted((out / SCORES_DIR).glob("part-*.parquet")):
        table = pq.read_table(path)
        pq.write_table(change(table), path)


def _set(table: pa.Table, name: str, values: list) -> pa.Table:
    i = table.column_names.index(name)
    return table.set_column(i, name, pa.array(values, table.schema.field(name).type))


@pytest.mark.slow
def test_killed_finalize_is_redone_without_reading_labels(scored, sn_bundle, tmp_path):
    """A copy of the output as a killed finalize over a resumed run leaves it (audio pending in
    every shard, a temporary file, no stats file) and with every label shuffled or removed:
    finalize gives the same audio and fused probabilities."""
    cfg, _ = scored
    copy = tmp_path / "copy"
    shutil.copytree(cfg.out, copy)
    rng = np.random.default_rng(0)

    def pending_and_relabelled(table: pa.Table) -> pa.Table:
        n, has_vector = len(table), table[AUDIO_INPUT].is_valid().to_pylist()
        table = _set(table, "label", [None] * n)
        table = _set(table, "label_index", rng.integers(0, 7, n).tolist())
        for name, pending in (("audio_probs", None), ("fusion_mode", "none"), ("emotion", None),
                              *((c, None) for c in PROB_COLUMNS)):
            old = table[name].to_pylist()
            table = _set(table, name, [pending if v else o for v, o in zip(has_vector, old)])
        return table

    _rewrite_shards(copy, pending_and_relabelled)
    (copy / SPEAKER_STATS_FILE).unlink()
    (copy / SCORES_DIR / "_tmp-deadbeef.parquet").write_bytes(b"half a parquet file")
    store = scores_store(str(copy))
    report = speaker_pass.finalize(store, sn_bundle, FusionWeights(), resolve_plan(cfg).model_ids)
    assert report["shards_rewritten"] > 0 and not list(copy.rglob("_tmp-*"))
    want, got = _rows(cfg.out), _rows(copy)
    assert set(got) == set(want)
    for path, row in want.items():
        for name in ("audio_probs", "fusion_mode", "emotion", "status", *PROB_COLUMNS):
            if isinstance(row[name], list):
                np.testing.assert_allclose(got[path][name], row[name], atol=1e-6)
            else:
                assert got[path][name] == pytest.approx(row[name], abs=1e-6), (path, name)


def test_score_locally_normalises_over_the_rows_given(mixed_archive, tiny_bundles, sn_bundle,
                                                      tmp_path):
    from mer_ray.data.sources import list_inputs
    from mer_ray.models.bundle import AudioPredictor

    cfg = ScoreConfig(source=str(mixed_archive["root"]), out=str(tmp_path), audio=sn_bundle)
    items = [it.to_row() for it in list_inputs(str(mixed_archive["root"] / "good"))[:3]]
    rows = score_locally(cfg, items)[SCORES_DIR].to_pylist()
    x = np.asarray([r[AUDIO_INPUT] for r in rows], np.float32)
    keys = speaker_keys([r["actor"] for r in rows], [r["speaker"] for r in rows])
    want = AudioPredictor(sn_bundle).predict(x, speakers=keys)       # stats of these 3 rows
    np.testing.assert_allclose([r["audio_probs"] for r in rows], want, atol=1e-5)
    assert {r["fusion_mode"] for r in rows} == {"audio_only"}


@pytest.mark.slow
def test_evaluate_and_tune_fusion_read_the_finalized_output(scored, tmp_path):
    from mer_ray.config import EvaluateConfig, TuneFusionConfig
    from mer_ray.score.evaluate import evaluate
    from mer_ray.score.tune import tune_fusion

    cfg, summary = scored
    metrics = evaluate(EvaluateConfig(scores=cfg.out, out=str(tmp_path / "report")))
    assert metrics["sections"]["audio"]["n"] > 0 and metrics["rows"] == summary["rows"]
    assert tune_fusion(TuneFusionConfig(scores=cfg.out, out=str(tmp_path / "w.json")))["n_rows"] > 0
    assert json.loads((Path(cfg.out) / SUMMARY_FILE).read_text())["speaker_norm"]["applied"]
    from mer_ray.commands.score import format_summary

    assert "speaker-normalised audio: " in format_summary(summary)
