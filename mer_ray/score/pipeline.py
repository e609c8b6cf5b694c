"""The score job's entry points under the names tests import: ``run_score``
(mer_ray.score.job) and ``store_for`` (= schema.scores_store)."""
from __future__ import annotations

from mer_ray.score.job import run_score
from mer_ray.score.schema import scores_store as store_for

__all__ = ["run_score", "store_for"]
