"""The energy: weighted terms composed with ``+ - * /`` into one expression that the Optimizer minimizes.

Sign convention: every term is a quantity to *minimize*, one value per image (the batch axis is
kept). Activation maximization therefore returns the *negative* activation; a regularizer returns
a penalty that grows with what it discourages. The energy of an image is ``sum(weight * term)``.

Example:
    >>> energy = ActivationMaximization("dense", [3]) + 10 * LPNorm() + 10 * TotalVariation()
    >>> energy = Energy.coerce([(ActivationMaximization("dense", [3]), 1), (LPNorm(), 10)])  # keras-vis form
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, Sequence

import tensorflow as tf

from visopt.model.surgery import LayerRequest


@dataclass(frozen=True)
class ImageSpec:
    """What a term knows about the optimized image when it is bound.

    ``shape`` is ``(*spatial, channels)``: images are channels-last inside visopt whatever the model's
    layout. ``input_range`` is ``(low, high)`` in model input units.

    Example:
        >>> ImageSpec((32, 32, 3), (0.0, 255.0)).shape[:-1]   # the spatial axes
        (32, 32)
    """

    shape: tuple[int, ...]
    input_range: tuple[float, float]


@dataclass(frozen=True)
class TermInputs:
    """What a bound term is evaluated on at each step.

    ``image`` is the current image, ``(batch, *spatial, channels)`` in input units, before the
    random transforms; ``outputs`` are the outputs of the layers the term requested, computed on the
    transformed view of the image, in the order of ``Term.requests()``. ``index`` holds the
    position of each image of the batch in the whole request (``(batch,)`` int32): a request of N
    objectives may run in chunks (``minimize(batch_size=...)``), and a term with one row of
    constants per image picks the chunk's rows with :meth:`rows`.

    Example (inside a bound term)::

        def fn(inputs: TermInputs):
            feature_map = inputs.outputs[0]                  # (batch, h, w, channels)
            return -tf.reduce_mean(feature_map, axis=[1, 2, 3]) * inputs.rows(per_image_weights)
    """

    image: tf.Tensor
    outputs: Sequence[tf.Tensor]
    index: tf.Tensor | None = None

    def rows(self, table: tf.Tensor) -> tf.Tensor:
        """The rows of ``table`` (one row per image of the request) that belong to this batch's images."""
        return table if self.index is None else tf.gather(table, self.index)


#: A bound term: maps TermInputs to one value per image, shape (batch,).
BoundTerm = Callable[[TermInputs], tf.Tensor]


class Term:
    """One named quantity to minimize. Subclasses implement ``requests`` and ``bind``.

    Example (a custom term that keeps the image mean near mid-range)::

        class MeanBrightness(Term):
            name = "mean_brightness"
            def bind(self, layers, spec):
                low, high = spec.input_range
                mid = (low + high) / 2
                return lambda inputs: tf.abs(tf.reduce_mean(inputs.image, axis=range(1, inputs.image.ndim)) - mid)
    """

    name = "term"
    #: True when one image's value depends on the other images of the batch (``Diversity``): such a
    #: request cannot be cut into chunks (``minimize(batch_size=...)`` smaller than the request).
    couples_images = False
    #: True when a term that fixes the batch size (one row of constants per image) picks its rows with
    #: ``TermInputs.rows``, so that its request can run in chunks. Set it on such a term of your own.
    reads_rows = False
    #: The parameterization this term works best with (``"pixels"`` or ``"fourier"``), or None. The
    #: Optimizer's ``parameterization="auto"`` follows it when a term of the energy states one.
    parameterization: str | None = None

    def __init__(self, name: str | None = None):
        if name is not None:
            self.name = name

    def requests(self) -> tuple[LayerRequest, ...]:
        """Layer outputs this term reads; the Optimizer computes all of them in one forward pass."""
        return ()

    def bind(self, layers: Sequence, spec: ImageSpec) -> tuple[BoundTerm, int | None] | BoundTerm:
        """Validate against the resolved ``layers`` and return the per-image function.

        May also return ``(function, batch_size)`` when the term fixes how many images it needs
        (one per filter index, say); ``None`` or a bare function means "any batch size". A term
        that fixes the batch size reads its per-image constants with ``inputs.rows(table)`` and
        sets ``reads_rows = True``, so that the request can run in chunks.
        """
        raise NotImplementedError

    # -- algebra ---------------------------------------------------------------------------
    def __add__(self, other):
        return Energy.coerce(self) + other

    def __radd__(self, other):
        return Energy.coerce(other) + self

    def __sub__(self, other):
        return Energy.coerce(self) - other

    def __rsub__(self, other):
        return Energy.coerce(other) - self

    def __mul__(self, weight):
        return Energy.coerce(self) * weight

    __rmul__ = __mul__

    def __truediv__(self, weight):
        return Energy.coerce(self) / weight

    def __neg__(self):
        return Energy.coerce(self) * -1

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


class Energy:
    """A weighted sum of terms, built with ``+ - * /`` or from keras-vis ``[(term, weight), ...]`` lists.

    Example:
        >>> e = ActivationMaximization(layer, [3]) - 0.5 * LPNorm() + TotalVariation() / 10
        >>> [(t.name, w) for t, w in e.terms]
        [('activation_maximization', 1.0), ('lp_norm', -0.5), ('total_variation', 0.1)]
    """

    def __init__(self, terms: Sequence[tuple[Term, float]] = ()):
        self.terms: tuple[tuple[Term, float], ...] = tuple((t, float(w)) for t, w in terms)

    @classmethod
    def coerce(cls, value) -> "Energy":
        """An Energy from a Term, an Energy, 0 (for ``sum``), or a list of terms / ``(term, weight)`` pairs."""
        if isinstance(value, Energy):
            return value
        if isinstance(value, Term):
            return cls([(value, 1.0)])
        if isinstance(value, numbers.Number) and value == 0:
            return cls()
        if isinstance(value, (list, tuple)):
            terms = []
            for item in value:
                if isinstance(item, Term):
                    terms.append((item, 1.0))
                elif (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], Term)
                      and _is_number(item[1])):
                    terms.append((item[0], float(item[1])))
                elif isinstance(item, Energy):
                    terms.extend(item.terms)
                else:
                    raise TypeError(f"an energy list holds terms or (term, weight) pairs; got {item!r}")
            return cls(terms)
        raise TypeError(f"cannot make an energy of {value!r} ({type(value).__name__}); use Terms combined "
                        "with + - * / or a list of (term, weight) pairs")

    def __add__(self, other):
        if isinstance(other, numbers.Number) and other == 0:
            return self
        return Energy(self.terms + Energy.coerce(other).terms)

    __radd__ = __add__

    def __sub__(self, other):
        return self + Energy.coerce(other) * -1

    def __rsub__(self, other):
        return Energy.coerce(other) + self * -1

    def __mul__(self, weight):
        if not _is_number(weight):
            raise TypeError(f"terms are multiplied by numbers only, got {weight!r}")
        return Energy([(t, w * float(weight)) for t, w in self.terms])

    __rmul__ = __mul__

    def __truediv__(self, weight):
        if not _is_number(weight) or float(weight) == 0:
            raise TypeError(f"terms are divided by non-zero numbers only, got {weight!r}")
        return self * (1.0 / float(weight))

    def __neg__(self):
        return self * -1

    def names(self) -> list[str]:
        """Unique report names of the terms, in order (a repeated name gets ``_2``, ``_3``...)."""
        seen: dict[str, int] = {}
        names = []
        for term, _ in self.terms:
            seen[term.name] = seen.get(term.name, 0) + 1
            names.append(term.name if seen[term.name] == 1 else f"{term.name}_{seen[term.name]}")
        return names

    def __repr__(self):
        return " + ".join(f"{w:g}*{t!r}" for t, w in self.terms) or "Energy()"


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
