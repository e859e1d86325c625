"""The plan of one ``Optimizer.minimize`` call: every argument checked before any work, and the request cut into chunks.

A request of N objectives (N images) runs in *rounds*: each round steps ``replicas x chunk`` images
together, ``chunk`` on each replica (device) of the strategy, one replica without one. Image ``i``
starts from noise drawn from ``(seed, i)`` and sees the same random view as every other image at
step ``t`` (drawn from ``(seed, t)``), so how the request is cut changes no image.

The chunk size is ``batch_size`` (images per device) when given. Otherwise it follows the memory
rule (docs/scale.md): an image costs :func:`image_bytes` (3 x the bytes of every layer output of
the feature graph, for the forward pass kept for the gradient and the gradient itself, plus 8
copies of the image for the variables, the view and Adam's moments); a device gives half of its
free memory (:func:`visopt._devices.free_memory`; CPU replicas share the host's, each gets its
share); the chunk is as many images as fit, at most the request. Chunks are then balanced
(``ceil(N / rounds)`` per round) and the last round is padded with copies of the last objective,
whose images are dropped: one shape, one trace.

Example:
    >>> run = plan_run(optimizer, max_iter=200, batch_size=16, seed=0)
    >>> run.chunk, [len(p) for p in run.rounds()]
    (16, [16, 16, 16, 16])
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from visopt._checks import input_batch, positive_int, positive_number
from visopt._devices import check_strategy, free_memory, replica_devices
from visopt.model.layers import walk
from visopt.optvis.optimizer_callback import OptimizerCallback
from visopt.optvis.parameterizations import initial_images
from visopt.optvis.progress_bar import ProgressBar
from visopt.optvis.progress_recorder import ProgressRecorder

#: Environment variable that caps ``max_iter`` of every ``minimize`` call (used by the test suite).
MAX_ITER_ENV = "VISOPT_MAX_ITER"
ON_NONFINITE = ("raise", "warn")
#: The memory rule: bytes of an image = GRADIENT_FACTOR x its layer outputs + IMAGE_COPIES x the image ...
GRADIENT_FACTOR = 3
IMAGE_COPIES = 8
#: ... and a device lends this share of its free memory to one chunk.
MEMORY_SHARE = 0.5
_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


@dataclass
class Run:
    """One ``minimize`` call, checked: everything the loop needs.

    ``images`` is N, the request's image count; ``chunk`` the images of one replica in a round;
    ``devices`` one per replica (``[None]``: no strategy).
    """

    max_iter: int
    learning_rate: float
    seed: int
    seed_images: np.ndarray | None
    images: int
    chunk: int
    devices: list
    strategy: object
    transforms: list
    callbacks: list
    keep_best: bool
    on_nonfinite: str

    @property
    def per_round(self) -> int:
        """Images stepped together: ``chunk`` on each replica."""
        return self.chunk * len(self.devices)

    def rounds(self) -> list[np.ndarray]:
        """The request positions of each round's images (``per_round`` each, the last padded with copies
        of position N - 1)."""
        count = math.ceil(self.images / self.per_round)
        positions = np.minimum(np.arange(count * self.per_round), self.images - 1).astype(np.int32)
        return [positions[k * self.per_round:(k + 1) * self.per_round] for k in range(count)]

    def valid(self, round_index: int) -> int:
        """How many images of round ``round_index`` belong to the request (the rest is padding)."""
        return min(self.per_round, self.images - round_index * self.per_round)

    def start_images(self, positions, shape, input_range) -> np.ndarray:
        """The starting images at ``positions``: the seed images' rows (one seed image for all), else noise."""
        if self.seed_images is None:
            return initial_images(positions, shape, input_range, self.seed)
        if len(self.seed_images) == 1:
            return np.repeat(self.seed_images, len(positions), axis=0)
        return self.seed_images[positions]


def plan_run(opt, *, seed_input=None, seed_img=None, max_iter=200, transforms=(), callbacks=None, verbose=True,
             seed=None, keep_best=False, on_nonfinite="raise", learning_rate=None, progress_gif_path=None,
             frame_every=1, batch_size=None, strategy=None) -> Run:
    """Check every argument of ``opt.minimize`` (an Optimizer) before any work, and settle the run.

    Example:
        >>> plan_run(opt, max_iter=10, batch_size=4).chunk
        4
    """
    if seed_img is not None:
        if seed_input is not None:
            raise TypeError("give seed_input or its keras-vis name seed_img, not both")
        seed_input = seed_img
    if on_nonfinite not in ON_NONFINITE:
        raise ValueError(f"on_nonfinite must be 'raise' or 'warn', got {on_nonfinite!r}")
    max_iter = capped(positive_int(max_iter, "max_iter"))
    learning_rate = positive_number(opt.learning_rate if learning_rate is None else learning_rate, "learning_rate")
    seed = int(np.random.default_rng().integers(2**31)) if seed is None else int(seed)
    seed_images = check_seed_input(opt, seed_input)
    images = count_images(opt.batch_size, seed_images)
    strategy = check_strategy(strategy)
    devices = replica_devices(strategy)
    chunk = chunk_size(opt, batch_size, images, devices)
    return Run(max_iter=max_iter, learning_rate=learning_rate, seed=seed, seed_images=seed_images, images=images,
               chunk=chunk, devices=devices, strategy=strategy, transforms=list(transforms),
               callbacks=make_callbacks(opt, callbacks, verbose, progress_gif_path, frame_every),
               keep_best=bool(keep_best), on_nonfinite=on_nonfinite)


def make_callbacks(opt, callbacks, verbose, progress_gif_path, frame_every) -> list:
    """The user's callbacks, plus the recorder of ``progress_gif_path`` and the progress bar."""
    callbacks = list(callbacks or [])
    for cb in callbacks:
        if not isinstance(cb, OptimizerCallback):
            raise TypeError(f"callbacks must be OptimizerCallback objects, got {cb!r}")
    if progress_gif_path is not None:
        callbacks.append(ProgressRecorder(progress_gif_path, frame_every=frame_every))
    for cb in callbacks:  # float images are mapped to colours with the optimizer's range
        if isinstance(cb, ProgressRecorder) and cb.input_range is None:
            cb.input_range = opt.input_range
    if verbose:
        callbacks.insert(0, ProgressBar())
    return callbacks


def check_seed_input(opt, seed_input) -> np.ndarray | None:
    """The seed images as a channels-last float32 batch inside ``opt.input_range`` (None: noise)."""
    if seed_input is None:
        return None
    array = input_batch(seed_input, opt.model_shape, layout=opt.data_format)
    low, high = opt.input_range
    tolerance = 1e-3 * (high - low)
    if array.min() < low - tolerance or array.max() > high + tolerance:
        raise ValueError(f"seed_input values span [{array.min():g}, {array.max():g}], outside "
                         f"input_range={opt.input_range}; rescale it or pass the matching input_range")
    if opt.data_format == "channels_first" and array.ndim > 2:
        array = np.moveaxis(array, 1, -1)
    return array


def count_images(terms: int | None, seed_images) -> int:
    """N: the images the terms ask for (one per filter index), else one per seed image, else 1."""
    seeds = None if seed_images is None else seed_images.shape[0]
    if terms is not None and seeds not in (None, 1, terms):
        raise ValueError(f"seed_input holds {seeds} images but the losses ask for {terms} (one per filter "
                         "index); give one seed image or one per filter index")
    return terms or seeds or 1


def chunk_size(opt, batch_size, images: int, devices: list) -> int:
    """Images per replica and round: ``batch_size`` or the memory rule, balanced over the rounds."""
    replicas = len(devices)
    unsplittable = opt.unsplittable()
    if batch_size is not None:
        batch_size = positive_int(batch_size, "batch_size")
    if unsplittable and ((batch_size is not None and batch_size < images) or replicas > 1):
        raise ValueError(f"{unsplittable}: its {images} images must run as one batch on one device; give "
                         f"batch_size >= {images} (got {batch_size}) and no strategy with several replicas")
    if unsplittable:
        return images
    if batch_size is None:
        free = min(free_memory(device) for device in devices)
        on_host = sum(1 for device in devices if device is None or "cpu:" in device.lower())
        free //= max(1, on_host)  # logical CPUs share the host's memory
        batch_size = max(1, int(MEMORY_SHARE * free) // image_bytes(opt))
    rounds = math.ceil(images / (batch_size * replicas))
    return math.ceil(images / (rounds * replicas))


def image_bytes(opt) -> int:
    """The memory rule's cost of one image: 3 x the bytes of every layer output of the feature graph
    plus 8 copies of the image (variables, view, Adam's moments)."""
    outputs = 0 if opt.feature_model is None else layer_output_bytes(opt.feature_model)
    return GRADIENT_FACTOR * outputs + IMAGE_COPIES * 4 * int(np.prod(opt.image_shape))


def layer_output_bytes(model) -> int:
    """Bytes of one sample's outputs of every layer of ``model`` (nested models counted by their layers)."""
    total = 0
    for visit in walk(model):
        if visit.is_model:
            continue
        try:
            output = visit.layer.output
        except (AttributeError, ValueError):  # a layer called at several places has no single output
            continue
        for tensor in output if isinstance(output, (list, tuple)) else [output]:
            size = int(np.prod([d or 1 for d in tensor.shape[1:]]))
            total += size * _DTYPE_BYTES.get(str(tensor.dtype), 4)
    return total


def capped(max_iter: int) -> int:
    """``max_iter``, capped by the ``VISOPT_MAX_ITER`` environment variable when it is set."""
    cap = os.environ.get(MAX_ITER_ENV)
    if not cap:
        return max_iter
    try:
        return min(max_iter, int(cap))
    except ValueError:
        raise ValueError(f"{MAX_ITER_ENV} must be an int, got {cap!r}") from None
