"""Shared bits of the benchmark scripts: machine description and BENCHMARKS.md sections."""
from __future__ import annotations

import os
import platform
import re
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEADER = ("# Benchmarks\n\nEvery figure here comes from a script in `benchmarks/` that runs the "
          "sequential, thesis-style baseline and the mer_ray job *in the same run* on the same "
          "inputs. Each section is rewritten by its script; the machine is named in each.\n")
"""Used only when BENCHMARKS.md does not exist yet."""


def machine() -> str:
    """One line: CPU model, cores, memory, OS, Python and the key library versions."""
    cpu = platform.processor() or "unknown CPU"
    try:
        text = Path("/proc/cpuinfo").read_text()
        cpu = re.search(r"model name\s*:\s*(.+)", text).group(1).strip()
    except (OSError, AttributeError):
        pass
    try:
        mem_kb = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{mem_kb / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        mem = "unknown RAM"
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for dist in ("ray", "tensorflow", "opencv-python-headless", "librosa"):
        try:
            versions.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            pass
    return (f"{cpu}, {os.cpu_count()} cores, {mem}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, " + ", ".join(versions))


def write_section(name: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) the section between ``<!-- name:start -->`` and ``<!-- name:end -->``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text() if path.exists() else HEADER
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def thesis_style_faces(path: str | Path, detector, skip: int = 10) -> list:
    """Alg. 3.4 as the thesis ran it: cv2 ``read()`` of every frame, the detector on every
    ``skip``-th, largest face cropped to 200x200 RGB."""
    import cv2

    from mer_ray.media.faces import crop_face

    cap, index, faces = cv2.VideoCapture(str(path)), 0, []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if index % skip == 0:
            box = detector.detect(frame)
            if box is not None:
                faces.append(crop_face(frame, box))
        index += 1
    cap.release()
    return faces
