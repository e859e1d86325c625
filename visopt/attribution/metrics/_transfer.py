"""Transferability: do models that did not make a picture see in it what it was made to show?"""

from __future__ import annotations

import keras
import numpy as np

from visopt.attribution.metrics._checks import _check_finite
from visopt.model.layers import find_layer
from visopt.model.surgery import LayerRequest, build_feature_model
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
    classes = _classes(filter_indices, len(images))
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


def plausibility(images, filter_indices, judge, examples, labels, *, layer=None, return_per_image: bool = False):
    """How close the pictures sit to real examples of their class in a judge's feature space.

    The cosine similarity between each picture's features and the mean features of the real
    ``examples`` of its class (MaCo's plausibility, Fel et al. 2023), read at ``layer`` of ``judge``
    (by default the input of its last layer: the features its classifier reads). 1 means the
    picture looks, to the judge, like the average real example of its class; pictures that only
    excite the class through odd patterns score lower even when they transfer.

    Args:
        images: the pictures, in the judge's input range.
        filter_indices: the intended class of each picture (one int for all, or one per picture).
        judge: a Keras model, ideally not the one that made the pictures.
        examples, labels: real inputs and their classes (every class of ``filter_indices`` present).
        layer: the judge's layer whose output is the feature space (name, index or Layer).
        return_per_image: also return each picture's similarity.

    Example:
        >>> x, y = make_task_data("shapes", 256, seed=3)
        >>> plausibility(images, [0, 1, 2, 3], judge, x, y)
        0.61
    """
    images = np.asarray(images, np.float32)
    examples, labels = np.asarray(examples, np.float32), np.asarray(labels)
    _check_finite(images, "images")
    _check_finite(examples, "examples")
    classes = _classes(filter_indices, len(images))
    if len(labels) != len(examples):
        raise ValueError(f"{len(labels)} labels for {len(examples)} examples: give one per example")
    missing = sorted(set(classes.tolist()) - set(labels.tolist()))
    if missing:
        raise ValueError(f"no real examples of class(es) {missing} among the labels")
    if not isinstance(judge, keras.Model):
        raise TypeError(f"judge must be a keras Model, got {type(judge).__name__}")
    if len(images) == 0 or len(examples) == 0:
        raise ValueError(f"plausibility needs pictures and real examples, got {len(images)} and {len(examples)}")
    if layer is None:
        features = keras.Model(judge.inputs[0], judge.layers[-1].input)
    else:  # a layer at any depth, nested models included
        features = build_feature_model(judge, [LayerRequest(find_layer(judge, layer))])
    embed = lambda x: np.asarray(features.predict(x, verbose=0)).reshape(len(x), -1)  # noqa: E731
    real, drawn = embed(examples), embed(images)
    centroids = {c: real[labels == c].mean(axis=0) for c in set(classes.tolist())}
    similarity = np.array([_cosine(d, centroids[c]) for d, c in zip(drawn, classes)])
    mean = float(similarity.mean())
    return (mean, similarity) if return_per_image else mean


def _classes(filter_indices, count: int) -> np.ndarray:
    """One intended class per image, from an int (all images) or a list with one int per image."""
    rows = normalize_indices(filter_indices)
    if rows is None or any(len(row) != 1 for row in rows):
        raise ValueError(f"filter_indices must be one class per image (or one int for all), got {filter_indices!r}")
    classes = np.array([row[0] for row in rows] * (count if len(rows) == 1 else 1))
    if len(classes) != count:
        raise ValueError(f"filter_indices has {len(classes)} entries for {count} images")
    if classes.min() < 0:
        raise ValueError(f"classes are indices >= 0, got {int(classes.min())}")
    return classes


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm > 0 else 0.0
