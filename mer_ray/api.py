"""The Python API: score videos, read score outputs back, load a model.

Everything here is re-exported from the package (``mer_ray.score_videos`` ...); importing
``mer_ray`` itself stays light (TensorFlow and Ray load on first use)::

    import mer_ray

    df = mer_ray.score_videos(["a.mp4", "b.mp4"])          # bundled face + voice models
    df[["path", "emotion", "confidence"]]

    df = mer_ray.load_scores("scores/")                     # the output of `mer-ray score`
    seg = mer_ray.load_segments("scores/")                  # per (segment, face track)
    model = mer_ray.load_model("default", kind="audio")     # the bundled voice model
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

DEFAULT = "default"
LOCAL_BELOW = 64
"""score_videos scores up to this many inputs without Ray (ScoreConfig.in_process_max)."""

__all__ = ["score_videos", "load_scores", "load_timeline", "load_segments", "load_model"]

KNOWN_SHOWN = 5
"""How many known videos an unknown-video error names."""


def _model_value(value: str | os.PathLike | None) -> str | None:
    """A visual= / audio= argument -> ``default``, a run dir, or None (no model)."""
    if value is None or str(value) == "none":
        return None
    return str(value)


def _items(inputs: str | os.PathLike | Iterable[str | os.PathLike], corpus: str) -> list:
    """Input items of a folder / glob / file / manifest / URI, or of an explicit list of files
    (each one item, named by its own path; duplicates once)."""
    from mer_ray.data.sources import list_inputs, video_id_for

    if isinstance(inputs, (str, os.PathLike)):
        return list_inputs(os.fspath(inputs), corpus)
    items, seen = [], set()
    for p in inputs:
        for it in list_inputs(os.fspath(p), corpus):
            if it.path not in seen:
                seen.add(it.path)
                it.video_id = video_id_for(it.path)   # unique per file, not per base name
                items.append(it)
    return items


def _manifest_for(items: list, folder: str) -> str:
    """A CSV manifest of explicit inputs, for the Ray job (which lists its own source)."""
    import csv

    path = os.path.join(folder, "inputs.csv")
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "speaker"])
        for it in items:
            writer.writerow([it.path, it.label or "", it.speaker or ""])
    return path


def score_videos(paths_or_dir: str | os.PathLike | Iterable[str | os.PathLike],
                 out: str | os.PathLike | None = None, visual: str | None = DEFAULT,
                 audio: str | None = DEFAULT, timeline: bool = False,
                 local_below: int = LOCAL_BELOW, weights: tuple[float, float] = (0.5, 0.5),
                 corpus: str = "auto", num_cpus: int | None = None,
                 address: str | None = None) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Score videos (or audio files) with the face and voice models and fuse them (Alg. 3.9):
    one row per input, the columns of ``mer-ray score`` (``mer_ray/score/schema.py``).

    ``paths_or_dir``: a list of files, or one folder (recursive), glob, file, CSV manifest or
    URI. ``visual`` / ``audio``: ``"default"`` (the bundled model), ``"none"`` / None (that
    path off) or a run directory. Up to ``local_below`` inputs left to score are scored
    without Ray (extraction processes and the models in this process, score/in_process.py),
    unless ``address`` names a cluster; more run the Ray job (embedded local Ray unless
    ``address``; Ray stays up afterwards). ``out``: also keep the output there (resumable, as
    ``mer-ray score --out``; rows already there are not scored again); None keeps nothing on
    disk (a temporary folder on this machine: on a multi-node cluster give ``out`` a shared path
    or URI).
    ``timeline=True`` returns ``(scores, timeline)``, the timeline one row per keyframe.
    Rows come in the order of the inputs; ``path`` is each input as given (made absolute).

    >>> import mer_ray
    >>> df = mer_ray.score_videos("my_videos/", visual="none")          # doctest: +SKIP
    >>> df[["path", "emotion", "confidence", "p_happy"]].head()         # doctest: +SKIP
    """
    from mer_ray.config import RayConfig, ScoreConfig
    from mer_ray.score.job import run_score

    vis, aud = _model_value(visual), _model_value(audio)
    if vis is None and aud is None:
        raise ValueError("score_videos: visual and audio are both 'none': nothing to score")
    items = _items(paths_or_dir, corpus)
    given = [it.path for it in items]
    if not items:
        from mer_ray.score.schema import SCORES_SCHEMA, TIMELINE_SCHEMA

        empty = SCORES_SCHEMA.empty_table().to_pandas()
        return (empty, TIMELINE_SCHEMA.empty_table().to_pandas()) if timeline else empty
    with tempfile.TemporaryDirectory(prefix="mer_ray_api_") as tmp:
        if isinstance(paths_or_dir, (str, os.PathLike)):
            source = os.fspath(paths_or_dir)
        else:
            source = _manifest_for(items, tmp)
        target = os.fspath(out) if out is not None else os.path.join(tmp, "scores")
        run_score(ScoreConfig(source=source, out=target, visual=vis, audio=aud, corpus=corpus,
                              w_visual=float(weights[0]), w_audio=float(weights[1]),
                              timeline=timeline, allow_empty=True, in_process_max=local_below,
                              ray=RayConfig(address=address, num_cpus=num_cpus)))
        scores = _only(load_scores(target), given)
        return (scores, _only(load_timeline(target), given)) if timeline else scores


def _only(df: pd.DataFrame, paths: list[str]) -> pd.DataFrame:
    """The rows of ``paths``, in that order (an ``out`` may hold other inputs' rows too)."""
    order = {p: i for i, p in enumerate(paths)}
    df = df[df["path"].isin(order)]
    return df.iloc[df["path"].map(order).argsort(kind="stable")].reset_index(drop=True)


def _read(scores_dir: str | os.PathLike, name: str, columns: list[str] | None) -> pd.DataFrame:
    from mer_ray.score.schema import SCORES_DIR, scores_store

    d = os.fspath(scores_dir)
    if "://" not in d and not (Path(d) / SCORES_DIR).is_dir():
        raise FileNotFoundError(f"no score output in {d} (expected {Path(d) / SCORES_DIR}/; "
                                "the --out folder of `mer-ray score`)")
    return scores_store(d).read(name, columns=columns).to_pandas()


def load_scores(scores_dir: str | os.PathLike, columns: list[str] | None = None) -> pd.DataFrame:
    """The score rows of a ``mer-ray score --out`` folder (local or URI), one per input:
    ``path`` (as given), ``emotion``, ``confidence``, ``p_<class>`` per class, ``status`` ...
    Only committed shards are read, so a running or killed job's folder is safe to read.

    >>> import mer_ray
    >>> df = mer_ray.load_scores("scores/")                              # doctest: +SKIP
    >>> df.groupby("emotion").size()                                     # doctest: +SKIP
    """
    from mer_ray.score.schema import SCORES_DIR

    return _read(scores_dir, SCORES_DIR, columns)


def load_timeline(scores_dir: str | os.PathLike, columns: list[str] | None = None) -> pd.DataFrame:
    """The per-keyframe rows of a score folder made with ``--timeline`` (``timeline=True``):
    path, frame_index, timestamp_s, has_face, box, emotion, confidence, probs. Empty when the
    run had no timeline.

    >>> import mer_ray
    >>> tl = mer_ray.load_timeline("scores/")                            # doctest: +SKIP
    >>> tl[tl.path == "/data/a.mp4"][["timestamp_s", "emotion"]]         # doctest: +SKIP
    """
    from mer_ray.score.schema import TIMELINE_DIR

    return _read(scores_dir, TIMELINE_DIR, columns)


def _segments_store(scores_dir: str):
    """The score output's shard store with the segments table: segment shards are read only
    where their scores shard is committed, and damaged files are skipped."""
    from mer_ray.data.shards import ShardStore
    from mer_ray.score.schema import SCHEMAS, SCORES_DIR, scores_store
    from mer_ray.score.segments import SEGMENTS_DIR, SEGMENTS_SCHEMA

    if SEGMENTS_DIR in SCHEMAS:
        return scores_store(scores_dir)
    return ShardStore(scores_dir, {**SCHEMAS, SEGMENTS_DIR: SEGMENTS_SCHEMA}, primary=SCORES_DIR)


def _has_segment_files(store) -> bool:
    import pyarrow.fs as pafs

    from mer_ray.data.shards import PART_PREFIX
    from mer_ray.score.segments import SEGMENTS_DIR

    selector = pafs.FileSelector(store.dir(SEGMENTS_DIR), allow_not_found=True)
    return any(info.base_name.startswith(PART_PREFIX) for info in store.fs.get_file_info(selector))


def select_video(df: pd.DataFrame, video: str, scores_dir: str = "the scores") -> pd.DataFrame:
    """The rows of one video of a segments (or timeline) frame, named by its ``video_id``, its
    path as given to ``score`` (relative or absolute), or a file name (or name without its
    extension) only one input has. ValueError naming a few known videos when none matches, or
    when a name fits several."""
    key = os.fspath(video)
    ident = df["path"].fillna(df["video_id"])
    known = set(ident)
    for chosen in ([key], [os.path.abspath(key)], sorted(set(ident[df["video_id"] == key])),
                   sorted(p for p in known if Path(str(p)).name == Path(key).name),
                   sorted(p for p in known if Path(str(p)).stem == key)):
        hits = [p for p in chosen if p in known]
        if len(hits) == 1:
            return df[ident == hits[0]].reset_index(drop=True)
        if len(hits) > 1:
            raise ValueError(f"{key} names {len(hits)} videos in {scores_dir} "
                             f"({', '.join(map(str, hits[:KNOWN_SHOWN]))}); give the path")
    raise ValueError(f"no segments for video {key} in {scores_dir}; {_known(df, ident)}")


def _known(df: pd.DataFrame, ident: pd.Series) -> str:
    """``known videos: <id> (<file>), ...`` for an error message."""
    firsts = df.assign(_ident=ident).drop_duplicates("_ident").sort_values("_ident")
    shown = [f"{v} ({Path(str(p)).name})" for v, p in
             zip(firsts["video_id"][:KNOWN_SHOWN], firsts["_ident"][:KNOWN_SHOWN])]
    if not shown:
        return "it holds no segment rows"
    more = len(firsts) - len(shown)
    return "known videos: " + ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def load_segments(scores_dir: str | os.PathLike, video_id: str | None = None) -> pd.DataFrame:
    """The per-segment rows of a ``mer-ray score --segments`` folder (local or URI): one row
    per (time window, face track) with ``start_s``, ``end_s``, ``track_id`` (-1: no face in
    the window), ``visual_probs``, ``audio_probs``, ``speech_fraction``, the fused
    ``emotion``, ``confidence`` and ``fusion_mode`` (``mer_ray/score/segments.py``). Only
    committed shards are read; damaged ones are skipped. ``video_id``: one video's rows,
    named by its video_id or its path as given to ``score``. Rows come by path, segment,
    track.

    >>> import mer_ray
    >>> seg = mer_ray.load_segments("scores/")                           # doctest: +SKIP
    >>> seg[["start_s", "end_s", "track_id", "emotion", "fusion_mode"]].head()  # doctest: +SKIP
    >>> one = mer_ray.load_segments("scores/", video_id="archive/talk.mp4")     # doctest: +SKIP
    """
    from mer_ray.score.schema import SCORES_DIR
    from mer_ray.score.segments import SEGMENTS_DIR

    d = os.fspath(scores_dir)
    if "://" not in d and not (Path(d) / SCORES_DIR).is_dir():
        raise FileNotFoundError(f"no score output in {d} (expected {Path(d) / SCORES_DIR}/; "
                                "the --out folder of `mer-ray score`)")
    store = _segments_store(d)
    if not _has_segment_files(store):
        raise FileNotFoundError(f"no segments in {d} (run `mer-ray score` with --segments "
                                "SECONDS to write them)")
    df = store.read(SEGMENTS_DIR).to_pandas()
    df = df.sort_values(["path", "segment_index", "track_id"], kind="stable")
    df = df.reset_index(drop=True)
    return df if video_id is None else select_video(df, video_id, d)


def load_model(run_dir_or_default: str | os.PathLike, kind: str | None = None) -> Any:
    """The model of a run directory (``train-visual`` / ``train-audio`` output, local or URI)
    or of a bundled model (``"default"`` with ``kind`` ``"visual"`` / ``"audio"`` /
    ``"audio_speaker_norm"``). Returns the Keras model (custom layers registered first, so
    preprocessing is inside: feed 0..255 RGB faces (N, 200, 200, 3) or raw audio features), or
    for an SVM voice bundle the scikit-learn pipeline (``predict_proba``). ``kind``, when given
    with a run directory, is checked against the bundle. The bundled face model is scored as
    the mean of each face and its mirror image (bundle.json ``mirror``); to score as score
    does, ``mer_ray.models.bundle.mirror_average(model.predict, faces)``.

    >>> import mer_ray
    >>> audio = mer_ray.load_model("default", kind="audio")              # doctest: +SKIP
    >>> visual = mer_ray.load_model("runs/visual")                       # doctest: +SKIP
    >>> visual.predict(faces)                                            # doctest: +SKIP
    """
    from mer_ray.models.bundle import load_bundle_info, local_bundle_dir
    from mer_ray.models.bundled import BUNDLED, bundled_dir

    value = os.fspath(run_dir_or_default)
    if value == DEFAULT:
        if kind not in BUNDLED:
            raise ValueError(f"load_model('default') needs kind= one of {', '.join(BUNDLED)}")
        value = bundled_dir(kind)
    local = local_bundle_dir(value)
    info = load_bundle_info(local)
    want = "audio" if kind == "audio_speaker_norm" else kind
    if want is not None and info.kind != want:
        raise ValueError(f"{value} holds a {info.kind} model, not {want}")
    path = os.path.join(local, info.model_file)
    if info.classifier == "svm":
        from mer_ray.models.audio_svm import load_svm

        return load_svm(path)
    import keras

    import mer_ray.models.layers  # noqa: F401  (registers ImagePreprocess and the others)

    return keras.saving.load_model(path, compile=False)
