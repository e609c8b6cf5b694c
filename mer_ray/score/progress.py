"""Progress of a running score job, from what is committed: rows / total, videos/s, ETA.

A driver-side thread counts the rows of committed scores shards (each file's Parquet footer is
read once) and logs a line every ``every_s`` seconds; Ray Data's own progress bars show the
per-stage view. Counting committed rows means the figure is exactly what a resume would keep.
"""
from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("mer_ray.score")


def _eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    h, rest = divmod(int(seconds), 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


class ProgressLogger:
    """Use as a context manager around the job; ``done`` is the committed row count."""

    def __init__(self, store, table: str, total: int, already: int, every_s: float = 30.0):
        self.store, self.table, self.total, self.already = store, table, total, already
        self.every_s = every_s
        self.done = already
        self._rows: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="score-progress", daemon=True)
        self._t0 = time.monotonic()

    def count(self) -> int:
        """Rows in committed shards (new files' footers read once)."""
        import pyarrow.fs as pafs
        import pyarrow.parquet as pq

        selector = pafs.FileSelector(self.store.dir(self.table), allow_not_found=True)
        for info in self.store.fs.get_file_info(selector):
            if info.base_name.startswith("part-") and info.path not in self._rows:
                try:
                    with self.store.fs.open_input_file(info.path) as fh:
                        self._rows[info.path] = pq.ParquetFile(fh).metadata.num_rows
                except OSError:
                    continue
        self.done = sum(self._rows.values())
        return self.done

    def line(self) -> str:
        new = self.count() - self.already
        elapsed = time.monotonic() - self._t0
        rate = new / elapsed if elapsed > 0 else 0.0
        left = self.total - self.done
        eta = left / rate if rate > 0 else float("inf")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (f"scored {self.done}/{self.total} ({pct:.1f} %), {rate:.2f} videos/s this run, "
                f"ETA {_eta(eta)}")

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                log.info(self.line())
            except Exception as err:  # noqa: BLE001 - progress must never break the job
                log.debug("progress: %s", err)

    def __enter__(self) -> "ProgressLogger":
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
