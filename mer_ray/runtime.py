"""Process-level settings shared by the driver and Ray workers, and Ray start-up."""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from pathlib import Path

from mer_ray.config import RayConfig

log = logging.getLogger(__name__)

SPARE_WORKERS = 2      # idle Ray workers kept beyond one per CPU (embedded Ray), for write tasks


def cache_dir() -> Path:
    """A writable cache folder for numba's JIT (librosa) and similar."""
    base = os.environ.get("MER_RAY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "mer_ray")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def numba_cache_dir() -> Path:
    """numba's JIT cache (librosa's compiled functions): one folder per mer_ray, Python, numba
    and librosa version, so no process loads code another version compiled."""
    return cache_dir() / "numba" / _versions_tag()


@functools.lru_cache(maxsize=1)
def _versions_tag() -> str:
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "none"

    return (f"mer_ray{ver('mer_ray')}-py{sys.version_info[0]}.{sys.version_info[1]}"
            f"-numba{ver('numba')}-librosa{ver('librosa')}")


NUMBA_WARM_MARKER = "warm"
"""File in the numba cache folder written once every audio function is compiled into it."""


def warm_numba_cache(warm_up=None) -> None:
    """Compile the audio features' numba functions into this machine's cache once, one process
    at a time, before the first input. Numba writes a cache entry as an index file plus a code
    file; two processes compiling at once can leave an index pointing at another signature's
    code, and a worker loading it crashes (SIGSEGV). So the first process to get here takes an
    exclusive lock on the cache folder, compiles (``warm_up``: media.audio_recipes.warm_up,
    about a minute of CPU on a cold cache) and writes NUMBA_WARM_MARKER; processes waiting on
    the lock, and every later one, find the marker and only read the cache."""
    folder = Path(os.environ.get("NUMBA_CACHE_DIR") or numba_cache_dir())
    marker = folder / NUMBA_WARM_MARKER
    if marker.exists():
        return
    if warm_up is None:
        from mer_ray.media.audio_recipes import warm_up
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as lock:
        _lock(lock)
        if marker.exists():
            return
        warm_up()
        marker.write_text("every audio recipe's numba functions are compiled here\n")


def _lock(handle) -> None:
    """An exclusive advisory lock on ``handle``, released when it is closed (POSIX only)."""
    try:
        import fcntl
    except ImportError:             # no fcntl (Windows): no lock
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


def worker_env() -> dict[str, str]:
    """Environment every process of a job gets (driver and Ray workers): with the console
    mode's variables (mer_ray.console.process_env: TF and Ray Data quiet unless -v)."""
    from mer_ray import console

    quiet = {k: os.environ.get(k, v) for k, v in console.process_env(console.level()).items()}
    return {
        **quiet,
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(numba_cache_dir())),
        "TF_CPP_MIN_LOG_LEVEL": quiet.get("TF_CPP_MIN_LOG_LEVEL",
                                          os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")),
        "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "ignore::UserWarning"),
        "OPENCV_LOG_LEVEL": os.environ.get("OPENCV_LOG_LEVEL", "ERROR"),
        "OPENCV_FFMPEG_LOGLEVEL": os.environ.get("OPENCV_FFMPEG_LOGLEVEL", "-8"),  # quiet: statuses say it
        # model actors may share a GPU (--gpus-per-worker 0.5): don't let TF grab all its memory
        "TF_FORCE_GPU_ALLOW_GROWTH": os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH", "true"),
    }


def configure_process() -> None:
    """Apply worker_env() to this process; call before librosa / TF are imported."""
    for key, value in worker_env().items():
        os.environ.setdefault(key, value)


def limit_cv2_threads() -> None:
    """One OpenCV thread per process: Ray already runs one task per core."""
    import cv2

    cv2.setNumThreads(1)


def submitted_job_env_vars() -> dict[str, str]:
    """env_vars of the runtime_env this driver was submitted with (`ray job submit
    --runtime-env-json`); Ray refuses a ray.init runtime_env that sets any of the same keys."""
    import json

    raw = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if not raw:
        return {}
    try:
        return dict((json.loads(raw).get("runtime_env") or {}).get("env_vars") or {})
    except (ValueError, AttributeError):
        return {}


LOCAL_HOST = "127.0.0.1"


def ray_host(cfg: RayConfig) -> str:
    """The IP embedded Ray listens on: ``cfg.host``, else $MER_RAY_HOST, else 127.0.0.1."""
    return cfg.host or os.environ.get("MER_RAY_HOST") or LOCAL_HOST


def _is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def _node_ip(host: str):
    """While Ray starts, make ``host`` its node IP. Ray turns a loopback ``_node_ip_address``
    into the machine's routable IP unless it runs in single-machine mode (its default on macOS
    and Windows, ``ray_constants.ENABLE_RAY_CLUSTER`` off); with the node IP on loopback the
    GCS, raylet, workers, agents and the metrics endpoint listen on loopback only."""
    from ray._private import ray_constants

    if not _is_loopback(host):
        yield {"_node_ip_address": host}
        return
    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield {"_node_ip_address": LOCAL_HOST}
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def init_ray(cfg: RayConfig) -> None:
    """Connect to ``cfg.address`` / $RAY_ADDRESS, or start embedded local Ray."""
    import ray

    from mer_ray import console

    configure_process()
    if ray.is_initialized():
        return
    console.quiet_ray_loggers()     # ray.init's own warnings (token auth notice) too
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    if address:
        taken = submitted_job_env_vars()
        runtime_env = {"env_vars": {k: v for k, v in worker_env().items() if k not in taken}}
        log.info("connecting to Ray at %s", address)
        with console.quiet_driver_core_worker():
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=True,
                     logging_level=logging.INFO if console.level() >= console.VERBOSE
                     else logging.ERROR)
    else:
        # Embedded Ray's workers inherit this process's environment (configure_process above).
        # No runtime_env: a job-level one keeps Ray from using its pre-started workers and
        # costs every actor a fresh worker process (~1.5 s each on 2 cores).
        # The worker soft limit defaults to the CPU count, which the extraction actors fill:
        # every 0-CPU write task would then start (and import into) a fresh worker process,
        # ~1 CPU-s each taken from the actors. Two spare idle workers are kept instead.
        # It listens on 127.0.0.1 only unless cfg.host / $MER_RAY_HOST names another address.
        cpus = cfg.num_cpus or os.cpu_count() or 1
        with console.quiet_driver_core_worker(), _node_ip(ray_host(cfg)) as node_ip:
            ray.init(num_cpus=cfg.num_cpus, include_dashboard=False, log_to_driver=True,
                     configure_logging=False, **node_ip,
                     _system_config={"num_workers_soft_limit": cpus + SPARE_WORKERS})
    # Ray Data bars off, ray loggers at ERROR, worker output down to the lines workers mark
    # (the epochs), unless -v: log_to_driver stays on so that those lines come through.
    console.quiet_ray()
