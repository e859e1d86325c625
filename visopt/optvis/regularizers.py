"""Regularizers: penalties on the image itself that keep activation maximization natural-looking.

Both work on the image rescaled from ``input_range`` to [-1, 1] and average over pixels, so a weight
means the same at any resolution and for any input range.
"""

from __future__ import annotations

import numbers

import tensorflow as tf

from visopt.optvis.energy import ImageSpec, Term, TermInputs

# Keep pow() differentiable at 0: the LP root's epsilon must vanish even after the 1/p root (p up
# to ~10), the TV one after a beta/2 power.
_LP_EPSILON = 1e-30
_TV_EPSILON = 1e-12


def _unit_image(image: tf.Tensor, spec: ImageSpec) -> tf.Tensor:
    low, high = spec.input_range
    return (image - low) * (2.0 / (high - low)) - 1.0


def _check_keras_vis_input(img_input, cls_name: str):
    # keras-vis took the input tensor first (``LPNorm(model.input)``); accept it, ignore it.
    if isinstance(img_input, numbers.Number):
        raise TypeError(f"{cls_name}'s first argument is the (optional, keras-vis style) input tensor; "
                        f"got the number {img_input!r}. Pass the exponent by keyword")


class LPNorm(Term):
    """Penalize large pixel values: the generalized mean ``mean(|x|^p)^(1/p)`` of the image in [-1, 1].

    0 for a mid-grey image, 1 when every pixel is at an end of the range. Large ``p`` mostly
    penalizes the few extreme pixels.

    Args:
        img_input: ignored; accepted so that keras-vis' ``LPNorm(model.input)`` still runs.
        p: the exponent, >= 1 (6 by default).

    Example:
        >>> energy = ActivationMaximization(layer, 3) + 10 * LPNorm(p=6)
    """

    name = "lp_norm"

    def __init__(self, img_input=None, p: float = 6.0, *, name: str | None = None):
        super().__init__(name)
        _check_keras_vis_input(img_input, "LPNorm")
        if not isinstance(p, numbers.Real) or not p >= 1 or p == float("inf"):
            raise ValueError(f"LPNorm needs a finite p >= 1, got p={p!r}")
        self.p = float(p)

    def bind(self, layers, spec: ImageSpec):
        p = self.p

        def fn(inputs: TermInputs) -> tf.Tensor:
            x = _unit_image(inputs.image, spec)
            axes = list(range(1, x.shape.rank))
            return tf.pow(tf.reduce_mean(tf.pow(tf.abs(x), p), axis=axes) + _LP_EPSILON, 1.0 / p)

        return fn


class TotalVariation(Term):
    """Penalize local change: ``mean((dx^2 + dy^2)^(beta/2))`` over pixels of the image in [-1, 1].

    Works for any number of spatial axes (sequences, images, volumes). ``beta`` near 1 favours
    piecewise-constant images, 2 favours smooth ones.

    Args:
        img_input: ignored; accepted so that keras-vis' ``TotalVariation(model.input)`` still runs.
        beta: the exponent, > 0 (2 by default).

    Example:
        >>> energy = ActivationMaximization(layer, 3) + 10 * TotalVariation(beta=2)
    """

    name = "total_variation"

    def __init__(self, img_input=None, beta: float = 2.0, *, name: str | None = None):
        super().__init__(name)
        _check_keras_vis_input(img_input, "TotalVariation")
        if not isinstance(beta, numbers.Real) or not beta > 0:
            raise ValueError(f"TotalVariation needs beta > 0, got beta={beta!r}")
        self.beta = float(beta)

    def bind(self, layers, spec: ImageSpec):
        beta = self.beta
        spatial = len(spec.shape) - 1
        if spatial < 1:
            raise ValueError(f"TotalVariation needs inputs with spatial axes (images, sequences); this input has "
                             f"shape {spec.shape} (features only): leave it out (visualize_activation(tv_weight=0))")
        if min(spec.shape[:-1]) < 2:
            raise ValueError(f"TotalVariation needs at least 2 pixels along each spatial axis, image shape "
                             f"is {spec.shape}")

        here = tuple([slice(None)] + [slice(0, -1)] * spatial + [slice(None)])
        aheads = [tuple(slice(1, None) if a == axis else here[a] for a in range(spatial + 2))
                  for axis in range(1, spatial + 1)]

        def fn(inputs: TermInputs) -> tf.Tensor:
            x = _unit_image(inputs.image, spec)
            base = x[here]
            squared = tf.add_n([tf.square(x[ahead] - base) for ahead in aheads])
            axes = list(range(1, x.shape.rank))
            return tf.reduce_mean(tf.pow(squared + _TV_EPSILON, beta / 2.0), axis=axes)

        return fn

