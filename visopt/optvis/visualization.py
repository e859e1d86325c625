"""``visualize_activation``: the one-liner on top of the Optimizer."""

from __future__ import annotations

import inspect

import numpy as np

from visopt._cache import cached, request_key
from visopt.model.layers import as_graph, input_shape
from visopt.model.surgery import with_inputs_fixed
from visopt.optvis.objectives import ActivationMaximization
from visopt.optvis.optimizer import Optimizer, image_parameterization
from visopt.optvis.regularizers import LPNorm, TotalVariation

_OPTIMIZER_ARGS = tuple(p for p in inspect.signature(Optimizer).parameters
                        if p not in ("model", "energy", "input_range", "losses"))


def visualize_activation(model, layer, filter_indices=None, *, seed_input=None, input_range=(0, 255),
                         max_iter: int = 200, act_max_weight: float = 1.0, lp_norm_weight: float | None = None,
                         tv_weight: float = 2.0, score: str = "auto", verbose: bool = False,
                         **optimizer_params) -> np.ndarray:
    """Images that maximize filters or units of ``layer``: one image per entry of ``filter_indices``.

    Args:
        model: a Keras model, the path of a ``.keras`` file (loaded with ``safe_mode``), or
            (keras-vis form) its input tensor ``model.input``.
        layer: a Keras layer, its name or its index in ``model.layers``. A softmax/sigmoid layer is
            climbed on its logits.
        filter_indices: an int gives one image, a list a batch (``[20, 20, 20]``: three different
            images of index 20), None every filter of the layer.
        seed_input: starting image(s) in the model's layout (``seed_img`` is accepted too).
        input_range: ``(low, high)`` of the model's input.
        max_iter: optimization steps.
        act_max_weight, lp_norm_weight, tv_weight: the energy's weights (0 drops a term). Total
            variation needs spatial axes: it is left out for flat (tabular) inputs. ``lp_norm_weight``
            None (default) is 0.5 for pixel images and 0 for Fourier images, whose sigmoid already
            keeps pixels inside the range: the norm's pull does not vanish at grey, and it held a
            class image of a BatchNorm model flat (docs/quality.md).
        score: what ActivationMaximization climbs (``"auto"``: log-odds on a softmax layer,
            ``"activation"``, ``"log_probability"``, ``"log_odds"``, ``"margin"``).
        verbose: show a progress bar.
        **optimizer_params: passed to ``Optimizer`` (``parameterization``, ``transforms``,
            ``learning_rate``, ``data_format``, ``fixed_inputs`` for a model with several inputs,
            ``relu_gradient="redirected"`` for filters that are dead at grey)
            or to ``minimize`` (``jitter``, ``seed``, ``callbacks``, ``keep_best``, ``on_nonfinite``,
            ``batch_size``: images per device at once, ``strategy``: a ``tf.distribute`` strategy).

    Returns:
        ``(N, H, W, C)`` images (channels last), uint8 when ``input_range`` is (0, 255).

    Example:
        >>> images = visualize_activation(model, "predictions", [0, 1, 2, 3], seed=0)
        >>> grid = stitch_images(images)
        >>> every = visualize_activation(vgg16, "block5_conv3", None, batch_size=32)   # 512 images, 32 at a time
    """
    optimizer_kwargs = {k: optimizer_params.pop(k) for k in _OPTIMIZER_ARGS if k in optimizer_params}
    model = as_graph(model)  # a path is loaded once per call; a subclassed model is wrapped

    def build() -> Optimizer:
        kwargs = dict(optimizer_kwargs)
        fixed = kwargs.pop("fixed_inputs", None)
        view = model if fixed is None else with_inputs_fixed(model, dict(fixed))
        energy = act_max_weight * ActivationMaximization(layer, filter_indices, score=score)
        lp_weight = _lp_norm_weight(lp_norm_weight, kwargs.get("parameterization", "auto"), view)
        if lp_weight:
            energy = energy + lp_weight * LPNorm()
        if tv_weight and len(input_shape(view)) > 1:  # inputs without spatial axes (tabular) have no variation
            energy = energy + tv_weight * TotalVariation()
        return Optimizer(view, energy, input_range=input_range, **kwargs)

    key = request_key(layer, filter_indices, act_max_weight, lp_norm_weight, tv_weight, score, input_range,
                       optimizer_kwargs)
    optimizer = cached(model, key, build)  # a repeated request skips surgery and tracing
    result = optimizer.minimize(seed_input=seed_input, max_iter=max_iter, verbose=verbose, **optimizer_params)
    return result.images


def _lp_norm_weight(weight: float | None, parameterization: str, view) -> float:
    """The LPNorm weight: as given, else 0.5 for pixel images and 0 for Fourier ones.

    A p-norm grows like its argument, so its gradient does not fade near grey: with a Fourier
    image (already bounded by its sigmoid) it only held back classes whose gradient is weak there.
    """
    if weight is not None:
        return weight
    if parameterization == "auto":  # what the Optimizer picks for these terms (none asks for one)
        parameterization = image_parameterization(view)
    return 0.0 if parameterization == "fourier" else 0.5
