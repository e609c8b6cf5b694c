"""Reproducible recipes that make the models shipped with mer_ray (``python -m mer_ray.recipes.bundled``)."""
