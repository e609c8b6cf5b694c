"""Extraction as a Ray Data stage, shared by the preprocess and score jobs.

``ExtractActor`` holds one ClipExtractor (face detector loaded once) per actor and maps a batch
of input rows to the job's own rows: the job passes ``to_rows(items, extractions)``. Inputs
given as URIs are copied to a local temporary file first (``extract_input``).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pyarrow as pa

from mer_ray.media import errors as st
from mer_ray.media.extract import ClipExtractor, Extraction, Span, failed_extraction
from mer_ray.media.options import ExtractOptions

RowsFn = Callable[[list[dict], list[Extraction]], pa.Table]
"""Input rows and their extractions -> the table a job's next stage reads."""


def extract_input(extractor: ClipExtractor, path: str, span: Span | None = None) -> Extraction:
    """``extractor.extract(path, span=span)``; a URI is first copied to a local temp file
    (deleted after).
    The size limit is checked on the remote listing before downloading (status too_large), and
    a missing or unreadable object gets status unreadable, as a local file would."""
    from mer_ray.storage import TooLargeError, is_uri, local_copy

    if not is_uri(path):
        return extractor.extract(path, span=span) if span is not None else extractor.extract(path)
    max_mb = getattr(getattr(extractor, "opts", None), "max_file_mb", None)
    limit = None if max_mb is None else int(max_mb * 2**20)
    try:
        with local_copy(path, max_bytes=limit) as local:
            result = (extractor.extract(local, name=path) if span is None
                      else extractor.extract(local, name=path, span=span))
    except TooLargeError as err:
        return failed_extraction(st.TOO_LARGE, f"file is {err.size / 2**20:.1f} MiB, over the "
                                               f"{max_mb:g} MiB limit: {path}")
    except FileNotFoundError:
        return failed_extraction(st.UNREADABLE, f"no such file: {path}")
    except OSError as err:
        return failed_extraction(st.UNREADABLE, f"cannot read {path}: {err}")
    except Exception as err:  # noqa: BLE001 - one bad input must never kill a job
        return failed_extraction(st.ERROR, f"{type(err).__name__}: {err}")
    if result.clip.get("error"):
        result.clip["error"] = result.clip["error"].replace(local, path)
    return result


SPAN_COLUMNS = ("_span_start_s", "_span_end_s", "_span_audio_start_s", "_span_audio_end_s")
"""An input row's time range (one chunk of a long video, score/chunks.py), when it has one."""


def extract_item(extractor: ClipExtractor, item: dict) -> Extraction:
    """The extraction of one input row (of its time range, given SPAN_COLUMNS), its status
    adjusted to what the input's name says it holds (e.g. a RAVDESS video-only file without
    audio is ``video_only``, not ``no_audio``)."""
    span = (Span(*(float(item[c]) for c in SPAN_COLUMNS))
            if item.get(SPAN_COLUMNS[0]) is not None else None)
    result = extract_input(extractor, item["path"], span)
    clip = result.clip
    clip["status"], clip["error"] = st.expected_status(clip["status"], clip["error"],
                                                       item.get("modality"))
    return result


class ExtractActor:
    """Ray Data actor: one ClipExtractor per actor; a batch of input rows -> ``to_rows``.
    With audio on, the machine's numba cache is first filled by one actor at a time
    (runtime.warm_numba_cache: concurrent compiles can corrupt it). ``warm_up_audio``: also
    compute features of silence once at start-up, so loading librosa/numba's compiled code
    (seconds) is not charged to the first input's timings."""

    def __init__(self, opts: ExtractOptions, to_rows: RowsFn, warm_up_audio: bool = False):
        from mer_ray.runtime import configure_process, limit_cv2_threads, warm_numba_cache

        configure_process()
        limit_cv2_threads()
        self.extractor = ClipExtractor(dataclasses.replace(opts, decode_threads=1))
        self.to_rows = to_rows
        if opts.audio:
            warm_numba_cache()
        if warm_up_audio and opts.audio:
            import numpy as np

            from mer_ray.media.constants import SAMPLE_RATE
            from mer_ray.media.extract import audio_recipes

            for recipe in audio_recipes(opts):
                recipe.features(np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self.rows(batch.to_pylist())

    def rows(self, items: list[dict]) -> pa.Table:
        """``to_rows`` of input rows given as dicts."""
        return self.to_rows(items, [extract_item(self.extractor, item) for item in items])
