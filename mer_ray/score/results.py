"""Reading a score output back: rows, true labels, probability matrices.

Used by ``evaluate`` and ``tune-fusion``. Labels come from the rows themselves (``auto``: what
the RAVDESS name or manifest said at scoring time), from RAVDESS names (``ravdess``), or from
a CSV manifest (``path,label[,speaker]``) matched on the resolved path, then on the file name.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mer_ray.config import EMOTION_INDEX, NUM_CLASSES
from mer_ray.score.schema import SCORES_DIR, scores_store


SKIPPED_ATTR = "skipped_shards"
"""``DataFrame.attrs`` key of read_scores: the damaged shard files it skipped."""


def read_scores(scores_dir: str) -> pd.DataFrame:
    """All committed score rows of an output directory (one per input). Shards that do not
    read are skipped, never moved (a reader changes nothing): their paths are in
    ``df.attrs[SKIPPED_ATTR]``."""
    root = Path(scores_dir)
    if "://" not in scores_dir and not (root / SCORES_DIR).is_dir():
        raise FileNotFoundError(f"no score output in {scores_dir} (expected {root / SCORES_DIR}/)")
    store = scores_store(scores_dir)
    df = store.read(SCORES_DIR).to_pandas()
    df.attrs[SKIPPED_ATTR] = sorted(store.damaged)
    return df


def damaged_shards(scores_dir: str) -> list[str]:
    """The committed scores shard files of an output directory that do not read (what
    read_scores skips); the next ``score`` run into it moves them aside and redoes them."""
    store = scores_store(scores_dir)
    store.read(SCORES_DIR, columns=["path"])
    return sorted(store.damaged)


def attach_labels(df: pd.DataFrame, labels: str = "auto") -> pd.DataFrame:
    """A copy of ``df`` whose ``label`` / ``label_index`` come from ``labels``."""
    out = df.copy()
    if labels == "auto":
        pass
    elif labels == "ravdess":
        from mer_ray.labels import parse_ravdess_name

        names = [parse_ravdess_name(p) for p in out["path"]]
        out["label"] = [n.emotion if n else None for n in names]
        out["speaker"] = [f"{n.actor:02d}" if n else s for n, s in zip(names, out["speaker"])]
    else:
        out["label"] = _manifest_labels(out["path"], labels)
    out["label_index"] = [EMOTION_INDEX.get(lab) if isinstance(lab, str) else None
                          for lab in out["label"]]
    return out


def _manifest_labels(paths: pd.Series, manifest: str) -> list[str | None]:
    from mer_ray.data.sources import list_inputs

    items = list_inputs(manifest, corpus="manifest")
    by_path = {it.path: it.label for it in items}
    by_name: dict[str, str | None] = {}
    for it in items:
        name = Path(it.path).name
        by_name[name] = it.label if name not in by_name else None   # ambiguous names -> no label
    return [by_path[p] if p in by_path else by_name.get(Path(p).name) for p in paths]


def probs_matrix(column: pd.Series) -> np.ndarray:
    """A column of 7-element lists (or nulls) -> (M, 7) float64, NaN rows for nulls."""
    out = np.full((len(column), NUM_CLASSES), np.nan)
    for i, value in enumerate(column):
        if value is not None and not (isinstance(value, float) and np.isnan(value)):
            out[i] = np.asarray(value, dtype=np.float64)
    return out


def labelled(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a known true class."""
    return df[df["label_index"].notna()].reset_index(drop=True)
