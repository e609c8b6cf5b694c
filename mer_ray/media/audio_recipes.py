"""The audio recipes: which feature vector a clip gets, where it is stored, how to compute it.

One registry that extraction, bundles, training and scoring ask. A recipe names its clips
column (the Parquet column holding its vector), its length, the function computing it from
mono samples, whether augmented copies exist, and the classifier it trains best with.
Add a recipe here (and its column to the schemas) and every job knows it. No Ray, no job config.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

THESIS_COLUMN = "audio_features"
THESIS_AUG_COLUMN = "audio_aug_features"
RICH_COLUMN = "audio_rich_features"


@dataclass(frozen=True)
class AudioRecipe:
    """One audio feature recipe."""

    name: str
    column: str                   # clips column with the vector
    length: int                   # vector length
    aug_column: str | None        # column with augmented copies (None: the recipe has none)
    default_classifier: str       # "mlp" | "svm"
    summary: str                  # one line for --help and model cards

    def features(self, y: np.ndarray, sr: int) -> np.ndarray:
        """The recipe's vector for mono float samples ``y`` at rate ``sr``."""
        return _FEATURE_FNS[self.name]()(y, sr)

    def augmented(self, y: np.ndarray, sr: int, copies: int, seed: int) -> np.ndarray:
        """``copies`` vectors of augmented versions of ``y`` (Alg. 3.2), shape (copies, length);
        the same (y, seed) always gives the same rows. ValueError for a recipe without copies."""
        if self.aug_column is None:
            raise ValueError(f"audio recipe {self.name!r} has no augmented copies")
        return _AUGMENT_FNS[self.name]()(y, sr, copies, seed)


def _thesis_fn() -> Callable[[np.ndarray, int], np.ndarray]:
    from mer_ray.media.audio import thesis_features

    return thesis_features


def _rich_fn() -> Callable[[np.ndarray, int], np.ndarray]:
    from mer_ray.media.audio_rich import rich_features

    return rich_features


def _thesis_augmented_fn() -> Callable[[np.ndarray, int, int, int], np.ndarray]:
    from mer_ray.media.audio import augmented_features

    return augmented_features


_FEATURE_FNS: dict[str, Callable[[], Callable[[np.ndarray, int], np.ndarray]]] = {
    "thesis": _thesis_fn, "rich": _rich_fn,
}
_AUGMENT_FNS: dict[str, Callable[[], Callable[[np.ndarray, int, int, int], np.ndarray]]] = {
    "thesis": _thesis_augmented_fn,
}

AUDIO_RECIPES: dict[str, AudioRecipe] = {
    "thesis": AudioRecipe("thesis", THESIS_COLUMN, 162, THESIS_AUG_COLUMN, "mlp",
                          "the thesis's 162 means (ZCR, chroma, MFCC-20, RMS, mel-128)"),
    "rich": AudioRecipe("rich", RICH_COLUMN, 735, None, "svm",
                        "735 statistics of MFCC-40 with deltas, spectral shape and prosody"),
}
"""Recipe name -> recipe. The lengths are checked against the feature functions in tests."""

RECIPE_COLUMNS: tuple[str, ...] = tuple(
    c for r in AUDIO_RECIPES.values() for c in (r.column, r.aug_column) if c is not None)
"""Every clips column a recipe fills (vectors and augmented copies)."""


def audio_recipe(name: str) -> AudioRecipe:
    """The recipe called ``name``; ValueError listing the known ones otherwise."""
    try:
        return AUDIO_RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown audio recipe {name!r}; expected one of "
                         f"{', '.join(AUDIO_RECIPES)}") from None


def recipe_for_column(column: str) -> AudioRecipe | None:
    """The recipe whose vector lives in ``column`` (None if no recipe uses it)."""
    return next((r for r in AUDIO_RECIPES.values() if r.column == column), None)


def recipe_for_length(length: int) -> list[AudioRecipe]:
    """Recipes whose vectors have ``length`` entries (to explain a shape mismatch)."""
    return [r for r in AUDIO_RECIPES.values() if r.length == length]


def warm_up(sr: int = 22_050) -> None:
    """Run every recipe's features and augmented copies once on 1 s of a noisy tone (float32,
    as decoded audio is), so that every numba function they use is compiled (and written to
    numba's cache when one is set) before real inputs arrive."""
    t = np.arange(sr, dtype=np.float32) / sr
    noise = np.random.default_rng(0).normal(0, 0.02, sr).astype(np.float32)
    y = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2 + noise)
    y = y.astype(np.float32)
    for recipe in AUDIO_RECIPES.values():
        recipe.features(y, sr)
        if recipe.aug_column is not None:
            recipe.augmented(y, sr, 2, 0)
