"""The bundled-model recipe end to end on a small subset: a loadable bundle, metrics and a card."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest


@pytest.mark.slow
@pytest.mark.real_data
def test_visual_recipe_writes_a_bundle_and_its_card(shared_data, tmp_path):
    from mer_ray.models.bundle import VisualPredictor
    from mer_ray.recipes.bundled import visual_card
    from mer_ray.recipes.visual_fer import FerRecipe, train_visual

    recipe = dataclasses.replace(FerRecipe(), epochs=1)
    run = tmp_path / "visual"
    metrics = train_visual(str(shared_data), str(run), recipe, log=lambda line: None,
                           limit_per_class=6)
    visual_card(run, metrics, recipe, str(shared_data))
    card = json.loads((run / "card.json").read_text())
    assert f"{metrics['fer_framing']['accuracy']:.3f}" in card["held_out"]
    assert (run / "MODEL_CARD.md").read_text().startswith("# Bundled face model")
    assert (run / "framing.png").stat().st_size > 0
    assert metrics["fer_framing"]["n"] == 42                # 6 validation faces per class
    probs = VisualPredictor(str(run)).predict(np.zeros((3, 200, 200, 3), np.uint8))
    assert probs.shape == (3, 7) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_class_weights_soften_inverse_frequency():
    from mer_ray.recipes.visual_fer import class_weights

    labels = np.array([0] * 90 + [1] * 10)
    w = class_weights(labels, power=0.5)
    assert w[0] == pytest.approx((100 / (7 * 90)) ** 0.5)
    assert w[1] == pytest.approx((100 / (7 * 10)) ** 0.5) and w[2] == 0.0


def test_haar_framing_zooms_the_centre():
    from mer_ray.recipes.visual_fer import haar_framed

    image = np.zeros((1, 48, 48, 3), np.uint8)
    image[0, 20:28, 20:28] = 255                 # a centred square grows by the zoom
    zoomed = haar_framed(image, zoom=1.2)
    assert zoomed.shape == image.shape
    assert (zoomed[0, ..., 0] > 127).sum() > (image[0, ..., 0] > 127).sum()
