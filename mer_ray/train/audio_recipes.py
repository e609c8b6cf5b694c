"""`train-audio` for both recipes and both classifiers (issue 7): dispatch, driver-side clip
features, speaker-normalised shards for the Ray Train MLP.

- classifier ``mlp``: the Table 4.4 MLP on Ray Train (runner.train), on the recipe's column
  (thesis: with augmented copies; rich: none exist). With ``speaker_norm`` the clips are first
  rewritten with per-speaker z-scored vectors to ``OUT/_speaker_norm/clips`` (deleted after
  training; on a multi-node cluster OUT must be on storage the workers can read).
- classifier ``svm``: train/svm.py, in-process on the driver (a few thousand clips at most).
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mer_ray.config import TrainAudioConfig
from mer_ray.data.schema import CLIPS_DIR
from mer_ray.data.splits import group_keys
from mer_ray.media.errors import USABLE_STATUSES
from mer_ray.models.speaker_norm import SpeakerStats, speaker_keys
from mer_ray.train.data import pafs_open, parquet_files

SPEAKER_NORM_DIR = "_speaker_norm"
META = ["video_id", "label_index", "actor", "speaker", "status"]


@dataclass
class ClipRows:
    """Every usable clip with a feature vector (labelled or not), in file order."""

    x: np.ndarray            # (N, D) float32 raw features
    labels: np.ndarray       # label_index, -1 where unlabeled
    speakers: np.ndarray     # speaker_norm.speaker_key per row
    groups: np.ndarray       # data.splits.group_key per row (protocol grouping)
    video_ids: np.ndarray

    @property
    def labelled(self) -> np.ndarray:
        return self.labels >= 0


def usable_mask(table: pa.Table, feature_column: str) -> pa.ChunkedArray:
    """Rows with a usable status and a feature vector in ``feature_column``."""
    return pc.and_(pc.is_in(table["status"], pa.array(sorted(USABLE_STATUSES))),
                   pc.is_valid(table[feature_column]))


def read_clip_rows(shards: str, feature_column: str) -> ClipRows:
    """Read the clips tables' metadata and ``feature_column`` (driver side, pyarrow)."""
    tables = []
    for path in parquet_files(shards, CLIPS_DIR):
        with pafs_open(path) as handle:
            names = pq.read_schema(handle).names
        if feature_column not in names:
            raise ValueError(f"{path} has no column '{feature_column}' (re-run `mer-ray "
                             f"preprocess` with this version to store it)")
        with pafs_open(path) as handle:
            tables.append(pq.read_table(handle, columns=META + [feature_column]))
    table = pa.concat_tables(tables)
    table = table.filter(usable_mask(table, feature_column))
    if len(table) == 0:
        raise ValueError(f"{shards}: no usable clips with '{feature_column}'")
    feats = table[feature_column].to_pylist()
    dims = {len(f) for f in feats}
    if len(dims) != 1:
        raise ValueError(f"'{feature_column}' vectors have different lengths {sorted(dims)}")
    actor, speaker = table["actor"].to_pylist(), table["speaker"].to_pylist()
    vids = table["video_id"].to_pylist()
    labels = np.array([-1 if v is None else v for v in table["label_index"].to_pylist()], np.int64)
    return ClipRows(np.asarray(feats, np.float32), labels, speaker_keys(actor, speaker),
                    group_keys(actor, speaker, vids), np.asarray(vids, dtype=object))


def speaker_stats(rows: ClipRows) -> SpeakerStats:
    """Per-speaker statistics over every usable clip (labels are never read)."""
    return SpeakerStats().update(rows.x, rows.speakers)


def write_speaker_normalised_shards(shards: str, feature_column: str, out: str | Path) -> str:
    """Copy ``shards/clips`` to ``out/clips`` with ``feature_column`` (and the augmented thesis
    copies, when that is the column) z-scored per speaker; returns ``out``."""
    stats = speaker_stats(read_clip_rows(shards, feature_column))
    dest = Path(out) / CLIPS_DIR
    dest.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(parquet_files(shards, CLIPS_DIR)):
        with pafs_open(path) as handle:
            table = pq.read_table(handle)
        table = _normalise_table(table, feature_column, stats)
        pq.write_table(table, dest / f"part-{i:05d}.parquet")
    return str(out)


def _normalise_table(table: pa.Table, column: str, stats: SpeakerStats) -> pa.Table:
    keys = speaker_keys(table["actor"].to_pylist(), table["speaker"].to_pylist())
    usable = usable_mask(table, column).to_numpy(zero_copy_only=False)
    feats = table[column].to_pylist()
    augs = (table["audio_aug_features"].to_pylist()
            if column == "audio_features" and "audio_aug_features" in table.column_names else None)
    idx = np.flatnonzero(usable)
    if len(idx):
        normed = stats.normalize(np.asarray([feats[i] for i in idx], np.float32), keys[idx])
        for i, vec in zip(idx, normed):
            feats[i] = vec.tolist()
            if augs is not None and augs[i]:
                augs[i] = [None if a is None else
                           stats.normalize(np.asarray([a], np.float32), [keys[i]])[0].tolist()
                           for a in augs[i]]
    out = table.set_column(table.column_names.index(column), column,
                           pa.array(feats, table.schema.field(column).type))
    if augs is not None:
        name = "audio_aug_features"
        out = out.set_column(out.column_names.index(name), name,
                             pa.array(augs, table.schema.field(name).type))
    return out


def train_audio(cfg: TrainAudioConfig, progress: bool = False):
    """Train one audio model per ``cfg`` (recipe, classifier, speaker_norm) and write its run
    directory (a local path or URI: see rundir.train_to_uri); returns runner.TrainOutcome."""
    from mer_ray.storage import is_uri

    if is_uri(cfg.out):
        from mer_ray.train.rundir import train_to_uri

        return train_to_uri(train_audio, cfg, progress=progress)
    if cfg.classifier == "svm":
        from mer_ray.train.svm import train_svm

        return train_svm(cfg)
    from mer_ray.train.runner import train

    if not cfg.speaker_norm:
        outcome = train(cfg, progress=progress)
    else:
        tmp = Path(cfg.out).resolve() / SPEAKER_NORM_DIR
        shutil.rmtree(tmp, ignore_errors=True)
        write_speaker_normalised_shards(cfg.shards, cfg.feature_column, tmp)
        try:
            outcome = train(dataclasses.replace(cfg, shards=str(tmp)), progress=progress)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _mark_speaker_norm(outcome.run_dir, cfg)
    outcome.metrics.update(recipe=cfg.recipe, classifier=cfg.classifier,
                           speaker_norm=cfg.speaker_norm)
    _write_json(Path(outcome.run_dir) / "metrics.json", outcome.metrics)
    return outcome


def _mark_speaker_norm(run_dir: str, cfg: TrainAudioConfig) -> None:
    """The runner saw pre-normalised shards: flag the bundle (raw features in, normalised by
    AudioPredictor) and record the real input shards in config.json."""
    from mer_ray.models.bundle import load_bundle_info, write_bundle_info

    info = load_bundle_info(run_dir)
    info.speaker_norm = True
    write_bundle_info(run_dir, info)
    path = Path(run_dir) / "config.json"
    config = json.loads(path.read_text())
    config["speaker_norm_shards"] = config["shards"]
    config["shards"] = cfg.shards
    _write_json(path, config)


def _write_json(path: Path, data: dict) -> None:
    from mer_ray.train.rundir import write_json

    write_json(path, data)


def format_outcome(outcome) -> str:
    """The CLI's closing lines for any audio run."""
    m = outcome.metrics
    if m.get("classifier") != "svm":
        from mer_ray.train.options import format_summary

        return (f"{m.get('recipe', 'thesis')} recipe, MLP"
                f"{', speaker-normalised' if m.get('speaker_norm') else ''}\n"
                + format_summary(outcome))
    fold = "" if m["fold"] is None else f" fold {m['fold']}"
    norm = ", speaker-normalised" if m["speaker_norm"] else ""
    leaky = "  [LEAKY: random split over rows]" if m["leaky"] else ""
    return "\n".join([
        f"audio model ({m['recipe']} recipe, SVM{norm}), protocol {m['protocol']}{fold}{leaky}",
        f"test accuracy {m['accuracy']:.3f} (chance {m['chance_level']:.3f}, n={m['n']}), "
        f"macro F1 {m['macro']['f1']:.3f}; fitted in {m['fit_s']:.1f} s",
        f"run directory: {outcome.run_dir}"])
