"""mer_ray: multimodal (face + voice) emotion recognition at archive scale, on Ray.

The Python API (``mer_ray/api.py``), loaded on first use so ``import mer_ray`` stays light::

    import mer_ray

    df = mer_ray.score_videos("my_videos/")        # one row per file: emotion, p_<class> ...
    df = mer_ray.load_scores("scores/")            # the --out folder of `mer-ray score`
    tl = mer_ray.load_timeline("scores/")          # per keyframe (score --timeline)
    seg = mer_ray.load_segments("scores/")         # per segment and face track (score --segments)
    model = mer_ray.load_model("runs/visual")      # a Keras model, custom layers registered
"""
__version__ = "0.1.0"

__all__ = ["score_videos", "load_scores", "load_timeline", "load_segments", "load_model",
           "__version__"]

_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str):
    """PEP 562: the API functions load ``mer_ray.api`` (pandas; TF / Ray only when called) on
    first access. importlib, not an import statement: the package itself depends on nothing."""
    if name in _API:
        import importlib

        return getattr(importlib.import_module("mer_ray.api"), name)
    raise AttributeError(f"module 'mer_ray' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API)
