"""Transferability: do models that did not make a picture see in it what it was made to show?"""

from __future__ import annotations

import keras
import numpy as np

from visopt.attribution.metrics._checks import _check_finite
from visopt.model.units import normalize_indices


def transferability(images, filter_indices, judges, *, return_per_judge: bool = False):
    """The share of ``images`` that independently trained ``judges`` classify as the intended class.

    A feature visualization can be an adversarial pattern that only the model that made it reads as
    its class; a judge trained separately (another seed, another architecture) reads it only if it
    shows what the class looks like to models in general. Judge with at least one model of another
    architecture; the mean over judges is the transferability (docs/benchmarks.md gives visopt's).

    Args:
        images: ``(N, *input_shape)`` in the judges' input range, e.g. ``visualize_activation``'s output.
        filter_indices: the intended class of each image: one int for all, or one per image.
        judges: a Keras classifier or a list of them (each with one output ``(N, classes)``).
        return_per_judge: also return each judge's share.

    Example:
        >>> images = visualize_activation(model, "predictions", [0, 1, 2, 3], seed=0)
        >>> transferability(images, [0, 1, 2, 3], [judge_a, judge_b])
        0.875
    """
    images = np.asarray(images, np.float32)
    if images.ndim < 2 or len(images) == 0:
        raise ValueError(f"images must be a non-empty batch (N, ...), got shape {images.shape}")
    _check_finite(images, "images")
    rows = normalize_indices(filter_indices)
    if rows is None or any(len(row) != 1 for row in rows):
        raise ValueError(f"filter_indices must be one class per image (or one int for all), got {filter_indices!r}")
    classes = np.array([row[0] for row in rows] * (len(images) if len(rows) == 1 else 1))
    if len(classes) != len(images):
        raise ValueError(f"filter_indices has {len(classes)} entries for {len(images)} images")
    judges = [judges] if isinstance(judges, keras.Model) else list(judges)
    if not judges or not all(isinstance(judge, keras.Model) for judge in judges):
        raise TypeError(f"judges must be a keras Model or a non-empty list of them, got {judges!r}")
    shares = []
    for judge in judges:
        predictions = np.asarray(judge.predict(images, verbose=0))
        if predictions.ndim != 2 or classes.max() >= predictions.shape[1]:
            raise ValueError(f"judge {judge.name!r} outputs shape {predictions.shape}: it cannot judge class "
                             f"{int(classes.max())}")
        shares.append(float(np.mean(predictions.argmax(axis=1) == classes)))
    mean = float(np.mean(shares))
    return (mean, shares) if return_per_judge else mean
