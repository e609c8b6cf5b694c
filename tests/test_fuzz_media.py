"""Fuzz: generated damaged media (cuts, byte flips, broken headers, zeroed stretches across
mp4 / mkv / webm / wav / mp3; fixed seeds, a bounded count) through extraction and a whole
score job. Every file gets exactly one status row; no file hangs past a per-file deadline
(a liveness bound, not a speed check); the job does not crash; whole files stay usable."""
from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import time
from pathlib import Path

import pytest

from mer_ray.media import errors as st
from support.damaged_media import make_corpus

pytestmark = pytest.mark.slow
FILE_DEADLINE_S = 120.0     # a decoder stuck on one file for this long is a hang


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    originals, damaged = make_corpus(root, seed=7, copies=4)
    return {"root": root, "originals": originals, "damaged": damaged}


def _extract_all(paths: list[str], queue) -> None:
    """Child process: extract each path, reporting ("start", path) and (path, status, error)."""
    from mer_ray.media.extract import ClipExtractor
    from mer_ray.media.options import ExtractOptions

    extractor = ClipExtractor(ExtractOptions())
    for path in paths:
        queue.put(("start", path))
        clip = extractor.extract(path).clip
        queue.put((path, clip["status"], clip["error"]))
    queue.put(("end", None))


def extract_with_deadline(paths: list[Path]) -> dict[str, tuple[str, str | None]]:
    """path -> (status, error) from a child process; fails naming the file that ran past
    FILE_DEADLINE_S or crashed the process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_extract_all, args=([str(p) for p in paths], queue))
    child.start()
    results, current, last = {}, None, time.monotonic()
    try:
        while True:
            try:
                msg = queue.get(timeout=1.0)
            except queue_mod.Empty:
                if not child.is_alive():
                    pytest.fail(f"extraction process died (exit {child.exitcode}) on {current}")
                if time.monotonic() - last > FILE_DEADLINE_S:
                    pytest.fail(f"extraction hung on {current} for {FILE_DEADLINE_S:.0f} s")
                continue
            last = time.monotonic()
            if msg[0] == "end":
                return results
            if msg[0] == "start":
                current = msg[1]
            else:
                results[msg[0]] = (msg[1], msg[2])
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()


def test_every_damaged_file_gets_one_status_and_whole_files_stay_usable(corpus):
    files = corpus["originals"] + corpus["damaged"]
    results = extract_with_deadline(files)
    assert sorted(results) == sorted(str(p) for p in files)
    unknown = {p: s for p, (s, _) in results.items() if s not in st.ALL_STATUSES}
    assert not unknown, f"statuses outside the table: {unknown}"
    unexpected = {p: e for p, (s, e) in results.items() if s == st.ERROR}
    assert not unexpected, f"unexpected exceptions (status 'error'): {unexpected}"
    silent_failures = {p: s for p, (s, e) in results.items() if s in st.FAILED_STATUSES and not e}
    assert not silent_failures, f"failures without a reason: {silent_failures}"
    for path in corpus["originals"]:
        assert results[str(path)][0] in st.USABLE_STATUSES, (path, results[str(path)])
    # the damage is real: most damaged copies are not called whole
    flagged = sum(results[str(p)][0] != st.OK for p in corpus["damaged"])
    assert flagged >= len(corpus["damaged"]) // 2, results


def test_score_job_over_the_damaged_corpus_writes_one_row_per_file(corpus, ray_local, tmp_path):
    import mer_ray

    files = sorted(str(p) for p in corpus["originals"] + corpus["damaged"])
    df = mer_ray.score_videos(files, out=tmp_path / "scores", local_below=0)
    assert sorted(df["path"]) == files and df["path"].is_unique
    assert df["status"].isin(st.ALL_STATUSES | {"no_signal"}).all()
    scored = df[df["emotion"].notna()]
    assert not scored["status"].isin(st.FAILED_STATUSES).any(), scored[["path", "status"]]
