"""The Optimizer: gradient descent of the energy on the model's *input*, as one compiled step.

Each step runs, inside one ``tf.function`` (:mod:`visopt.optvis.program`): parameterization ->
random transforms of a view -> model (the feature graph from :mod:`visopt.model.surgery`) ->
energy -> gradient -> Adam update -> projection into ``input_range``. The Python loop around it
only records history and calls callbacks. N objectives are N independent images: optimized as one
batch, or in chunks of ``batch_size`` images run one after the other on the same compiled step, and
spread over the replicas of a ``tf.distribute`` strategy (:mod:`visopt.optvis.plan` cuts the request;
:class:`~visopt.optvis.program.Replicas` steps a round). How a request is cut changes no image.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from visopt._checks import check_range, positive_number
from visopt.model.layers import as_graph, data_format_of, find_layer, input_rescaling, input_shape
from visopt.model.surgery import build_feature_model, with_inputs_fixed
from visopt.optvis.energy import Energy, ImageSpec, TermInputs
from visopt.optvis.parameterizations import PARAMETERIZATIONS, make_parameterization
from visopt.optvis.plan import MAX_ITER_ENV, Run, plan_run  # noqa: F401 - MAX_ITER_ENV: imported from here by the CLI
from visopt.optvis.program import BestIterate, Program, Replicas
from visopt.optvis.result import OptimizationResult
from visopt.optvis.transforms import Jitter, Transform, TransformPipeline, default_transforms

# Chosen by benchmarks/quality_activation.py on three tuning tasks (docs/quality.md): fourier at 0.015 transferred to independent judges, 0.05 saturated.
_DEFAULT_LEARNING_RATE = {"pixels": 0.02, "fourier": 0.015}
#: Compiled steps an Optimizer keeps (one per chunk size, transform list, keep_best and strategy).
_PROGRAMS_KEPT = 8


@dataclass
class _Piece:
    """What one round of a request gave: its images (padding dropped), history, steps, best iterates."""

    images: np.ndarray
    history: dict
    steps: int
    best: tuple | None


class Optimizer:
    """Minimize an energy over the input of a model.

    Args:
        model: a Sequential or Functional Keras model with one input of fixed shape, or (keras-vis
            form) its input tensor ``model.input``, in which case terms name layers as Layer objects.
        energy: an ``Energy`` (``term + 10 * LPNorm()``), a term, or keras-vis' ``[(term, weight), ...]``
            (keras-vis called this argument ``losses``; ``losses=`` is accepted too).
        input_range: ``(low, high)`` of the model's input; images never leave it.
        parameterization: ``"pixels"``, ``"fourier"`` (a decorrelated spectrum, 2-D only: the
            class images other models recognise, docs/quality.md) or ``"auto"`` (default): the one
            a term asks for (``Texture`` and ``DeepDream`` ask for pixels), else fourier for a
            model with 2-D image input, pixels for other inputs and for keras-vis' input-tensor form.
        transforms: random transforms of the view per step; ``None`` is the default stack
            (small scale and rotation for 2-D images); ``[]`` disables them. ``minimize``'s
            ``jitter`` is added in front.
        learning_rate: Adam step as a fraction of the input range (pixels, default 0.02) or in
            spectrum units (fourier, default 0.015).
        data_format: the model's input layout; detected from its layers when None.
        fixed_inputs: for a model with several inputs, the ones held fixed: ``{input name or
            position: array}`` (one sample for every image, or one per image); the input left out
            is the one optimized.
        relu_gradient: ``"redirected"`` (lucid's) lets an image whose every rectifier on the way
            to the objective is off still move: where a sample's rectifier passes no gradient, the
            gradient that would turn units on is passed. For filters that are dead at a grey
            image (deep layers of untrained or sparse networks). None (default): true gradients.

    Example:
        >>> energy = ActivationMaximization("predictions", [0, 1, 2, 3]) + 0.1 * TotalVariation()
        >>> result = Optimizer(model, energy).minimize(max_iter=200, seed=0)
        >>> result.images.shape, result.history["loss"].shape
        ((4, 32, 32, 3), (200, 4))
    """

    def __init__(self, model, energy=None, input_range=(0, 255), *, parameterization: str = "auto",
                 transforms: list[Transform] | None = None, learning_rate: float | None = None,
                 data_format: str | None = None, losses=None, fixed_inputs: dict | None = None,
                 relu_gradient: str | None = None):
        self.energy = _coerce_energy(energy, losses)
        self.input_range = check_range(input_range)
        _check_choices(parameterization, relu_gradient, data_format)
        # No reference to the model is kept: the feature graph shares its layers, and a cached
        # Optimizer (see visualize_activation) must not keep a deleted model alive.
        model = self._model_view(model, fixed_inputs)
        self.model_shape = input_shape(model)
        requests, term_slots = self._collect_requests()
        layers = _resolve_layers(model, requests)
        self.data_format = data_format or data_format_of(model, layers)
        self.image_shape = _channels_last_shape(self.model_shape, self.data_format)
        if parameterization == "auto":
            parameterization = self._auto_parameterization(model)
        self.parameterization = parameterization
        default_rate = _DEFAULT_LEARNING_RATE[parameterization]
        self.learning_rate = positive_number(default_rate if learning_rate is None else learning_rate,
                                             "learning_rate")
        self.spec = ImageSpec(self.image_shape, self.input_range)

        self._bound, self._sizes, self.batch_size = self._bind_terms(layers, term_slots)
        self.names = self.energy.names()
        #: the graph from the input to every layer the terms read (None when they read none)
        self.feature_model = (build_feature_model(model, requests, relu_gradient=relu_gradient)
                              if requests else None)
        user_transforms = default_transforms(self.image_shape) if transforms is None else list(transforms)
        TransformPipeline(user_transforms, self.image_shape, self.input_range)  # validate now
        self.transforms = user_transforms
        self._programs: dict[tuple, Replicas] = {}
        self._jitters: dict[float, Jitter] = {}
        self._lock = threading.Lock()
        self._owner: int | None = None  # the thread running minimize, to refuse a nested call

    # -- construction helpers ---------------------------------------------------------------
    def _model_view(self, model, fixed_inputs):
        """The graph to optimize through: ``model`` with its ``fixed_inputs`` held (several inputs)."""
        model = as_graph(model)
        self._fixed_rows = 1
        if fixed_inputs is not None:  # several inputs: optimize one, the others given
            self._fixed_rows = _fixed_rows(model, dict(fixed_inputs))
            model = with_inputs_fixed(model, dict(fixed_inputs))
        if isinstance(model, keras.Model):
            _check_range_against_preprocessing(model, self.input_range)
        return model

    def _auto_parameterization(self, model) -> str:
        """What a term asks for; else fourier for image models, pixels for other inputs and for
        keras-vis code (an input tensor), which expects keras-vis' pixel images."""
        wanted = {term.parameterization for term, _ in self.energy.terms if term.parameterization}
        if image_parameterization(model) == "pixels":
            return "pixels"
        return wanted.pop() if len(wanted) == 1 else "fourier"

    def _collect_requests(self):
        requests, slots = [], []
        for term, _ in self.energy.terms:
            indices = []
            for request in term.requests():
                if request not in requests:
                    requests.append(request)
                indices.append(requests.index(request))
            slots.append(indices)
        return requests, slots

    def _bind_terms(self, layers, term_slots):
        bound, sizes, batch = [], [], None
        for (term, weight), slots, name in zip(self.energy.terms, term_slots, self.energy.names()):
            out = term.bind([layers[i] for i in slots], self.spec)
            fn, size = out if isinstance(out, tuple) else (out, None)
            if size is not None and batch is not None and size != batch:
                raise ValueError(f"terms ask for different batch sizes: {batch} and {size} ({name!r}); "
                                 "give every term one entry per image or a single entry")
            batch = size if size is not None else batch
            bound.append((fn, weight, slots))
            sizes.append(size)
        return bound, sizes, batch

    def unsplittable(self) -> str:
        """Why this energy's images must run as one batch on one device, or ``""`` when a request can be
        cut into chunks (``minimize(batch_size=...)``, a strategy's replicas)."""
        for (term, _), name, size in zip(self.energy.terms, self.names, self._sizes):
            if term.couples_images:
                return f"term {name!r} couples the images of a batch"
            if size is not None and not term.reads_rows:
                return f"term {name!r} fixes {size} images without reading its rows (Term.reads_rows)"
        if self._fixed_rows > 1:
            return f"fixed_inputs give one sample per image ({self._fixed_rows})"
        return ""

    # -- the compiled program ---------------------------------------------------------------
    def _replicas(self, run: Run) -> Replicas:
        """The compiled step of this chunk size, transform list, ``keep_best`` and strategy (built once)."""
        key = (run.chunk, tuple(id(t) for t in run.transforms), run.keep_best, id(run.strategy))
        if key not in self._programs:
            while len(self._programs) >= _PROGRAMS_KEPT:  # the oldest first: their variables are freed
                self._programs.pop(next(iter(self._programs)))
            self._programs[key] = Replicas(lambda: self._program(run.chunk, run.transforms, run.keep_best),
                                           run.devices, run.strategy)
        return self._programs[key]

    def _program(self, batch: int, transforms: list, keep_best: bool) -> Program:
        param = make_parameterization(self.parameterization, batch, self.image_shape, self.input_range)
        pipeline = TransformPipeline(transforms, self.image_shape, self.input_range)
        best = BestIterate(batch, self.image_shape) if keep_best else None
        return Program(self._energy_fn(batch), param, pipeline, best)

    def _energy_fn(self, batch: int):
        """``energy(image, view, index) -> (total (batch,), values (terms, batch))`` of the bound terms."""
        to_model = _layout_fn(self.data_format, len(self.image_shape))

        def energy(image, view, index):
            outputs = self._features(to_model(view))
            values = [weight * fn(TermInputs(image, [outputs[i] for i in slots], index))
                      for fn, weight, slots in self._bound]
            values = [tf.broadcast_to(v, (batch,)) for v in values]
            return tf.add_n(values), tf.stack(values)

        return energy

    def _features(self, view):
        if self.feature_model is None:
            return []
        outputs = self.feature_model(view, training=False)
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    # -- the loop ---------------------------------------------------------------------------
    def minimize(self, seed_input=None, max_iter: int = 200, jitter: float = 0.05, callbacks=None,
                 verbose: bool = True, *, seed: int | None = None, keep_best: bool = False,
                 on_nonfinite: str = "raise", learning_rate: float | None = None,
                 progress_gif_path=None, frame_every: int = 1, seed_img=None, batch_size: int | None = None,
                 strategy=None) -> OptimizationResult:
        """Run ``max_iter`` steps of gradient descent on the energy and return the images.

        Args:
            seed_input: starting image(s) in the model's input layout, with or without the batch
                axis (one image is used for every objective); mid-grey noise when None.
            max_iter: number of steps (capped by the ``VISOPT_MAX_ITER`` environment variable).
            jitter: random shift of the view each step: pixels (int) or a fraction of the size (float < 1);
                0 disables it. Ignored for inputs without spatial axes.
            callbacks: ``OptimizerCallback`` objects, called at each step (of each chunk).
            verbose: show a progress bar (tqdm; works in notebooks), one over the whole request.
            seed: makes the run reproducible (random noise and transforms); random when None.
            keep_best: also return each image's lowest-energy iterate.
            on_nonfinite: ``"raise"`` (default) raises ``FloatingPointError`` when the energy or its
                gradient becomes NaN/Inf; ``"warn"`` warns and returns the last finite iterate (of the
                chunk that failed; the others run to the end, and ``steps`` is the shortest chunk's).
            learning_rate: overrides the Optimizer's for this run.
            progress_gif_path: record the run as an animation: ``.gif`` (added when there is no
                suffix), ``.mp4``, or see :class:`~visopt.optvis.progress_recorder.ProgressRecorder`.
            frame_every: with ``progress_gif_path``, one frame every this many steps.
            seed_img: keras-vis' name for ``seed_input``.
            batch_size: at most this many images per device at once: the request's N images run in
                chunks, one after the other on one compiled step, so memory is set by ``batch_size``, not
                N. None: as many as half the device's free memory holds (the rule in
                :mod:`visopt.optvis.plan`; all N when they fit). Chunks change no image.
            strategy: a ``tf.distribute.MirroredStrategy`` (or ``OneDeviceStrategy``): each replica runs
                its own chunk of ``batch_size`` images, side by side; the images equal a one-device run.

        Example:
            >>> images, grads = opt.minimize(max_iter=500, verbose=True, jitter=0)   # keras-vis call
            >>> opt.minimize(max_iter=500, jitter=0, progress_gif_path="opt_progress")  # writes opt_progress.gif
            >>> opt.minimize(max_iter=200, batch_size=32, strategy=tf.distribute.MirroredStrategy())
        """
        run = plan_run(self, seed_input=seed_input, seed_img=seed_img, max_iter=max_iter,
                       transforms=self._with_jitter(jitter), callbacks=callbacks, verbose=verbose, seed=seed,
                       keep_best=keep_best, on_nonfinite=on_nonfinite, learning_rate=learning_rate,
                       progress_gif_path=progress_gif_path, frame_every=frame_every, batch_size=batch_size,
                       strategy=strategy)
        # The programs' variables belong to this Optimizer: two threads running it at once would
        # update the same images. One run at a time; other Optimizers (other requests) run in parallel.
        if self._owner == threading.get_ident():
            raise RuntimeError("minimize was called from inside a run of the same Optimizer (from a callback?): "
                               "it would reset the images of the run in progress; use another Optimizer")
        with self._lock:
            self._owner = threading.get_ident()
            try:
                return self._loop(self._replicas(run), run)
            finally:
                self._owner = None

    def _loop(self, replicas: Replicas, run: Run) -> OptimizationResult:
        """Round after round: step, record, call back. Each callback that began gets ``on_end`` after a
        normal end, or ``on_abort`` when the run stops on an error (an interrupt included), which is then raised."""
        begun = []
        try:
            for cb in run.callbacks:
                begun.append(cb)  # one that fails to begin is aborted too: it may have opened something
                cb.on_begin(run.max_iter, min(run.images, run.per_round))
            rounds = run.rounds()
            pieces = [self._round(replicas, run, k, positions, len(rounds)) for k, positions in enumerate(rounds)]
            result = self._result(replicas, pieces)
        except BaseException as error:
            _abort(begun, error)
            raise
        for i, cb in enumerate(run.callbacks):
            try:
                cb.on_end(result)
            except BaseException as error:
                _abort(run.callbacks[i:], error)  # the one that failed too: it may have left a temporary file
                raise
        return result

    def _round(self, replicas: Replicas, run: Run, k: int, positions: np.ndarray, rounds: int) -> _Piece:
        """Run the images at ``positions`` (one chunk per replica) from their start for ``max_iter`` steps."""
        valid = run.valid(k)
        replicas.reset(run.start_images(positions, self.image_shape, self.input_range), positions)
        for cb in run.callbacks:
            cb.on_chunk(k, rounds, positions[:valid])
        where = "" if rounds == 1 else f" (images {positions[0]}..{positions[valid - 1]} of {run.images})"
        history, steps, last_finite = self._steps(replicas, run, valid, where)
        images = replicas.images() if last_finite is None else last_finite.numpy()
        best = None
        if replicas.best and steps:
            best = tuple(part[:valid] for part in replicas.best_iterates())
        return _Piece(images[:valid], history, steps, best)

    def _steps(self, replicas: Replicas, run: Run, valid: int, where: str):
        """A round's steps: ``(history, finite steps, the last finite image or None when it went to the end)``."""
        callbacks = run.callbacks
        wants_images = any(cb.wants_images for cb in callbacks)
        history = {name: [] for name in self.names + ["loss"]}
        learning_rate = tf.constant(run.learning_rate, tf.float32)
        last_finite = None
        for t in range(run.max_iter):
            image, total, values, finite = replicas.step(tf.constant([run.seed, t], tf.int64), learning_rate)
            total, values = total.numpy()[:valid], values.numpy()[:, :valid]
            if not bool(finite):
                self._nonfinite(t, values, total, run.on_nonfinite, where)
                # the variables were not updated: they hold the image that gave NaN, not the one before
                return history, t, last_finite
            last_finite = image
            terms = dict(zip(self.names, values), loss=total)
            for name, value in terms.items():
                history[name].append(value)
            if callbacks:
                shown = self._display(image.numpy()[:valid]) if wants_images else None
                for cb in callbacks:
                    cb.on_step(t, shown if cb.wants_images else None, terms)
        return history, run.max_iter, None

    # -- minimize helpers -------------------------------------------------------------------
    def _with_jitter(self, jitter):
        if len(self.image_shape) < 2 or not jitter:
            return self.transforms
        # one object per amount, so the compiled step is reused (setdefault: one winner between threads)
        return [self._jitters.setdefault(jitter, Jitter(jitter))] + self.transforms

    def _display(self, images: np.ndarray) -> np.ndarray:
        if self.input_range == (0.0, 255.0):
            return np.clip(np.rint(images), 0, 255).astype(np.uint8)
        return images.astype(np.float32)

    def _nonfinite(self, step, values, total, on_nonfinite, where=""):
        bad = [name for name, v in zip(self.names, values) if not np.all(np.isfinite(v))]
        what = f"terms {bad}" if bad else "the gradient"
        message = (f"the energy became non-finite (NaN/Inf) at step {step}{where}: {what}. Lower the learning rate, "
                   "check the model for unstable layers, or pass on_nonfinite='warn' to keep the last finite images")
        if on_nonfinite == "raise":
            raise FloatingPointError(message)
        kept = "the starting images (no step was finite)" if step == 0 else f"the images of step {step - 1}"
        warnings.warn(f"{message}; returning the last finite iterate: {kept}", RuntimeWarning, stacklevel=5)

    def _result(self, replicas: Replicas, pieces: list[_Piece]) -> OptimizationResult:
        """The request's result, in request order: the rounds' images, histories (cut to the shortest
        round) and best iterates."""
        images = np.concatenate([piece.images for piece in pieces])
        if not np.all(np.isfinite(images)):
            raise FloatingPointError("the optimized images contain NaN/Inf values")
        steps = min(piece.steps for piece in pieces)
        history = {name: np.concatenate([np.asarray(piece.history[name][:steps], np.float32).reshape(
            steps, len(piece.images)) for piece in pieces], axis=1) for name in self.names + ["loss"]}
        best_images = best_loss = None
        if all(piece.best is not None for piece in pieces):
            best_images = self._display(np.concatenate([piece.best[0] for piece in pieces]))
            best_loss = np.concatenate([piece.best[1] for piece in pieces])
        return OptimizationResult(self._display(images), history, steps, best_images, best_loss,
                                  gradient_fn=lambda: replicas.gradient(images), input_range=self.input_range)


def image_parameterization(model) -> str:
    """What ``parameterization="auto"`` picks when no term asks: fourier for a model with 2-D image
    input, pixels for other inputs and for keras-vis' input-tensor form."""
    if isinstance(model, keras.KerasTensor) or len(input_shape(model)) != 3:
        return "pixels"
    return "fourier"


def _coerce_energy(energy, losses) -> Energy:
    if losses is not None:  # keras-vis' keyword
        if energy is not None:
            raise TypeError("give energy or its keras-vis name losses, not both")
        energy = losses
    if energy is None:
        raise TypeError("Optimizer needs an energy: a term, terms combined with + - * /, or [(term, weight), ...]")
    energy = Energy.coerce(energy)
    if not energy.terms:
        raise ValueError("the energy has no terms: give at least one loss")
    return energy


def _check_choices(parameterization, relu_gradient, data_format) -> None:
    """Refuse an unknown option by name, before any model surgery."""
    if parameterization not in ("auto",) + PARAMETERIZATIONS:
        raise ValueError(f"unknown parameterization {parameterization!r}; valid: {['auto', *PARAMETERIZATIONS]}")
    if relu_gradient not in (None, "redirected"):
        raise ValueError(f"unknown relu_gradient {relu_gradient!r}; valid: ['redirected'] or None")
    if data_format not in (None, "channels_first", "channels_last"):
        raise ValueError(f"data_format must be 'channels_first' or 'channels_last', got {data_format!r}")


def _check_range_against_preprocessing(model, input_range) -> None:
    """Warn when ``input_range`` contradicts the model's own input scaling (a Rescaling layer up front)."""
    layer = input_rescaling(model)
    scale = getattr(layer, "scale", None)
    if not isinstance(scale, (int, float)) or not 0 < scale < 0.1:
        return  # no layer, a per-channel scale, or not a scaling down: nothing to tell
    low, high = input_range
    if high - low < 0.1 / scale:  # e.g. [0, 1] into Rescaling(1/255): the model would see [0, 0.004]
        expected = 1.0 / scale
        warnings.warn(f"input_range={input_range} looks wrong for this model: its layer {layer.name!r} multiplies "
                      f"inputs by {scale:.4g}, so it expects raw values spanning about {expected:.4g} (e.g. "
                      f"input_range=(0, 255) for Rescaling(1/255)); the images would be nearly uniform to it",
                      RuntimeWarning, stacklevel=3)


def _abort(callbacks, error: BaseException) -> None:
    """``on_abort(error)`` for each callback; one that fails warns and does not stop the others."""
    for cb in callbacks:
        try:
            cb.on_abort(error)
        except Exception as err:  # noqa: BLE001 - the run's own error is the one to raise
            warnings.warn(f"{type(cb).__name__}.on_abort failed: {err}", RuntimeWarning, stacklevel=3)


def _resolve_layers(model, requests):
    if isinstance(model, keras.KerasTensor):
        for r in requests:
            if not isinstance(r.layer, keras.layers.Layer):
                raise TypeError(f"with an input tensor instead of a model, terms must name layers as Layer "
                                f"objects; got {r.layer!r}. Pass the model to use names or indices")
        return [r.layer for r in requests]
    return [find_layer(model, r.layer) for r in requests]


def _channels_last_shape(model_shape, data_format) -> tuple[int, ...]:
    if data_format == "channels_first" and len(model_shape) >= 2:
        return tuple(model_shape[1:]) + (model_shape[0],)
    return tuple(model_shape)


def _layout_fn(data_format, rank):
    if data_format != "channels_first" or rank < 2:
        return lambda images: images
    order = (0, rank) + tuple(range(1, rank))
    return lambda images: tf.transpose(images, order)


def _fixed_rows(model, fixed: dict) -> int:
    """The most samples that ``fixed_inputs`` give one input (1: one sample shared by every image)."""
    names = [t.name for t in model.inputs]
    rows = 1
    for key, value in fixed.items():
        index = names.index(key) if isinstance(key, str) and key in names else key
        shape = np.shape(value)
        known = isinstance(index, int) and 0 <= index < len(names)
        if known and shape and shape != tuple(model.inputs[index].shape[1:]):
            rows = max(rows, int(shape[0]))
    return rows
