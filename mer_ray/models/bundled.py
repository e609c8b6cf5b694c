"""The models shipped inside the package, and the ``--visual`` / ``--audio`` argument values.

A model argument is ``default`` (the bundled model of that kind), ``none`` (no model: that
modality is not scored) or a run directory / URI written by ``train-visual`` / ``train-audio``.
Bundled models are package data under ``mer_ray/models/pretrained/<name>/`` (a normal bundle
directory plus ``MODEL_CARD.md``), read through ``importlib.resources`` so an installed wheel
works the same as a source checkout.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

DEFAULT = "default"
NONE = "none"
BUNDLED: dict[str, str] = {
    "visual": "visual",                   # compact face CNN, FER2013
    "audio": "audio",                     # rich recipe, RAVDESS actors 01-20
    "audio_speaker_norm": "audio_speaker_norm",  # the same, speaker-normalised features
}
"""Bundled model name -> folder under mer_ray/models/pretrained/."""
SPEAKER_NORM_MIN_CLIPS = 20
"""score swaps the default voice model for the speaker-normalised one only when every input
has a known speaker with at least this many clips: fewer give unstable speaker statistics."""


def pretrained_root() -> Path:
    """The folder holding the bundled models (inside the installed package)."""
    return Path(str(resources.files("mer_ray.models") / "pretrained"))


def bundled_dir(name: str) -> str:
    """The run directory of bundled model ``name``; ValueError when this install lacks it."""
    if name not in BUNDLED:
        raise ValueError(f"unknown bundled model {name!r}; expected one of {', '.join(BUNDLED)}")
    path = pretrained_root() / BUNDLED[name]
    if not (path / "bundle.json").is_file():
        raise ValueError(f"the bundled {name} model is missing from this install ({path}); "
                         "reinstall mer_ray or pass a run directory")
    return str(path)


def resolve_model(value: str | None, kind: str) -> str | None:
    """A ``--visual`` / ``--audio`` value -> a run directory, or None for ``none``.

    None and ``default`` mean the bundled model of ``kind`` ("visual" or "audio")."""
    if kind not in ("visual", "audio"):
        raise ValueError(f"unknown model kind {kind!r}")
    if value is None or value == DEFAULT:
        return bundled_dir(kind)
    if value == NONE:
        return None
    return value


MODEL_HELP = ("'default' (the bundled {kind} model), 'none' (no {kind} path), or a run "
              "directory / URI from train-{kind}. Give neither --visual nor --audio and both "
              "bundled models are used; give one and the other path is off unless named too")


def resolve_pair(visual: str | None, audio: str | None) -> tuple[str | None, str | None]:
    """The ``--visual`` / ``--audio`` pair as given on a command line -> two model values
    (``default``, a run dir, or None for no model). Neither given: both bundled models; one
    given: the other is off. ValueError when both are ``none``."""
    if visual is None and audio is None:
        return DEFAULT, DEFAULT
    pair = tuple(None if v in (None, NONE) else v for v in (visual, audio))
    if pair == (None, None):
        raise ValueError("--visual none and --audio none leave nothing to score")
    return pair  # type: ignore[return-value]


def speaker_norm_suits(speakers: list[str | None]) -> bool:
    """Whether the speaker-normalised voice model suits inputs of these speakers: every input
    has a known speaker and each speaker has at least SPEAKER_NORM_MIN_CLIPS inputs."""
    from collections import Counter

    if not speakers or any(s is None for s in speakers):
        return False
    return min(Counter(speakers).values()) >= SPEAKER_NORM_MIN_CLIPS


def list_bundled() -> list[dict]:
    """One dict per bundled model present: name, path, bundle.json and card.json (the model
    card's facts: data, protocol, held-out accuracy, input, limits)."""
    out = []
    for name, folder in BUNDLED.items():
        path = pretrained_root() / folder
        if not (path / "bundle.json").is_file():
            continue
        info = json.loads((path / "bundle.json").read_text())
        card_file = path / "card.json"
        card = json.loads(card_file.read_text()) if card_file.is_file() else {}
        out.append({"name": name, "path": str(path), "bundle": info, "card": card})
    return out
