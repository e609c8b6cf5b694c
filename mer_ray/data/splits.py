"""Evaluation protocols: which rows are train / val / test.

Rows are grouped by who is on screen: ``actor:<n>`` (RAVDESS), else ``speaker:<id>``, else
``video:<video_id>`` (an unknown speaker: each clip is its own group, so a clip's frames never
straddle a split). Protocols:

- ``actor5fold`` (default): the five actor folds of config.ACTOR_FOLDS (Luna-Jiménez et al.
  2021); ``fold`` 0..4 is the test fold. Actors outside those folds, speakers and unknown
  speakers are hashed into the 5 folds (stable across runs).
- ``loso``: leave one actor (or speaker) out; ``fold`` is the actor number / speaker id.
- ``thesis``: random 80/20 over rows (frames or clips), as the thesis did. Frames of one video,
  and one actor, land on both sides, so every report marks it ``leaky``.

Validation (for best-epoch selection, never for the test figure), ``val``:

- ``group`` (default): outside ``thesis``, whole groups taken from the training side: in
  actor5fold the next fold (fold+1, 2, ... mod 5) that has rows, in loso the next group in sorted
  order; if no training group can be spared it falls back to ``rows``.
- ``rows``: a seeded 10 % of the training clips (a clip's frames stay together).
- ``none``: no validation; the last epoch's model is kept.
In ``thesis`` validation is 10 % of the training rows. Outside ``thesis`` no group is ever on
two sides of train/test, nor of train/val in ``group`` mode.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mer_ray.config import ACTOR_FOLDS, PROTOCOLS
from mer_ray.labels import speaker_id

N_FOLDS = len(ACTOR_FOLDS)
VAL_MODES = ("group", "rows", "none")
TEST_FRACTION = 0.2          # thesis protocol
VAL_FRACTION = 0.1           # of the training rows/clips (rows mode, thesis protocol)
TRAIN, VAL, TEST = "train", "val", "test"
_ACTOR_FOLD = {actor: i for i, fold in enumerate(ACTOR_FOLDS) for actor in fold}


def group_key(actor, speaker, video_id) -> str:
    """The grouping key of one row (see module doc)."""
    return speaker_id(actor, speaker) or f"video:{video_id}"


def group_keys(actor: Sequence, speaker: Sequence, video_id: Sequence) -> np.ndarray:
    """Vectorised group_key over columns."""
    return np.array([group_key(a, s, v) for a, s, v in zip(actor, speaker, video_id)],
                    dtype=object)


def unit_hash(key: str, seed: int = 0) -> float:
    """A stable pseudo-random number in [0, 1) for ``key`` (blake2b, not Python's hash)."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


def group_fold(key: str) -> int:
    """Fold 0..4 of a group: RAVDESS actors per ACTOR_FOLDS, anything else hashed."""
    if key.startswith("actor:"):
        actor = int(key.split(":", 1)[1])
        if actor in _ACTOR_FOLD:
            return _ACTOR_FOLD[actor]
    return int(unit_hash(key, seed=-1) * N_FOLDS)


@dataclass
class SplitPlan:
    """A resolved protocol: which groups are test / val, and how rows are hashed."""

    protocol: str
    fold: str | None
    val: str                                  # effective validation mode
    seed: int = 0
    test_groups: frozenset[str] = field(default_factory=frozenset)
    val_groups: frozenset[str] = field(default_factory=frozenset)

    @property
    def leaky(self) -> bool:
        return self.protocol == "thesis"

    def assign(self, groups: Sequence[str], row_keys: Sequence[str],
               clip_keys: Sequence[str] | None = None) -> np.ndarray:
        """Split name per row. ``row_keys`` identify rows (e.g. video_id#frame) for the thesis
        protocol; ``clip_keys`` (default row_keys) identify clips for ``rows`` validation."""
        clip_keys = row_keys if clip_keys is None else clip_keys
        out = np.empty(len(groups), dtype=object)
        for i, (group, row, clip) in enumerate(zip(groups, row_keys, clip_keys)):
            out[i] = self._assign_one(group, row, clip)
        return out

    def _assign_one(self, group: str, row: str, clip: str) -> str:
        if self.protocol == "thesis":
            u = unit_hash(row, self.seed)
            if u < TEST_FRACTION:
                return TEST
            if self.val != "none" and u < TEST_FRACTION + (1 - TEST_FRACTION) * VAL_FRACTION:
                return VAL
            return TRAIN
        if group in self.test_groups:
            return TEST
        if self.val == "group":
            return VAL if group in self.val_groups else TRAIN
        if self.val == "rows" and unit_hash(clip, self.seed + 1) < VAL_FRACTION:
            return VAL
        return TRAIN

    def to_dict(self) -> dict:
        return {"protocol": self.protocol, "fold": self.fold, "val": self.val, "seed": self.seed,
                "leaky": self.leaky, "test_groups": sorted(self.test_groups),
                "val_groups": sorted(self.val_groups)}


def make_plan(groups: Iterable[str], protocol: str = "actor5fold", fold: str | int | None = 0,
              val: str = "group", seed: int = 0) -> SplitPlan:
    """Resolve ``protocol``/``fold`` against the groups present in the data.

    Raises ValueError when the fold has no rows (e.g. actor5fold fold 2 on actors 1-4).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    if val not in VAL_MODES:
        raise ValueError(f"unknown validation mode {val!r}; expected one of {', '.join(VAL_MODES)}")
    present = sorted(set(groups))
    if protocol == "thesis":
        return SplitPlan("thesis", None, "none" if val == "none" else "rows", seed)
    if protocol == "actor5fold":
        test, val_groups = _actor5fold(present, int(fold if fold is not None else 0))
    else:
        test, val_groups = _loso(present, fold)
    fold_text = None if fold is None else str(fold)
    if val == "group" and not val_groups:
        val = "rows"
    if val != "group":
        val_groups = frozenset()
    return SplitPlan(protocol, fold_text, val, seed, test, val_groups)


def _actor5fold(present: list[str], fold: int) -> tuple[frozenset[str], frozenset[str]]:
    if not 0 <= fold < N_FOLDS:
        raise ValueError(f"actor5fold --fold must be 0..{N_FOLDS - 1}, got {fold}")
    by_fold: dict[int, set[str]] = {i: set() for i in range(N_FOLDS)}
    for key in present:
        by_fold[group_fold(key)].add(key)
    test = frozenset(by_fold[fold])
    if not test:
        have = sorted(i for i, keys in by_fold.items() if keys)
        raise ValueError(f"actor5fold fold {fold} has no rows in this data (folds with rows: "
                         f"{have}); pick another --fold or use --protocol loso")
    train_folds = [(fold + k) % N_FOLDS for k in range(1, N_FOLDS) if by_fold[(fold + k) % N_FOLDS]]
    if len(train_folds) < 2:
        return test, frozenset()
    return test, frozenset(by_fold[train_folds[0]])


def _loso(present: list[str], fold) -> tuple[frozenset[str], frozenset[str]]:
    if fold is None:
        raise ValueError("loso needs --fold ACTOR (or speaker id)")
    text = str(fold)
    candidates = [f"actor:{int(text)}"] if text.isdigit() else []
    candidates += [f"speaker:{text}", text]
    test = next((c for c in candidates if c in present), None)
    if test is None:
        raise ValueError(f"loso: no rows for actor/speaker {text!r}; present: "
                         f"{', '.join(present[:20])}{' ...' if len(present) > 20 else ''}")
    others = [g for g in _natural_order(present) if g != test]
    if len(others) < 2:
        return frozenset([test]), frozenset()
    order = _natural_order(present)
    nxt = order[(order.index(test) + 1) % len(order)]
    return frozenset([test]), frozenset([nxt])


def _natural_order(keys: list[str]) -> list[str]:
    def sort_key(k: str):
        kind, _, value = k.partition(":")
        return (kind, int(value) if value.isdigit() else 0, value)
    return sorted(keys, key=sort_key)
