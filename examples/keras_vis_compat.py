"""keras-vis code running on visopt with only its imports changed.

The calls below are written the way the keras-vis README wrote them: a list of ``(loss, weight)``
pairs given to ``Optimizer(model.input, losses)``, ``minimize(max_iter=500, verbose=True, jitter=0)``
unpacked into ``(images, gradients)``, ``visualize_activation(model.input, layer, filter_indices=[20, 20, 20])``,
and the two-pass recipe: first without total variation, then again from that image (``seed_img=``)
with it. The model is a small functional CNN whose ``predictions`` layer has 32 softmax units (so index 20
exists), trained for four epochs on the demo data's four classes; units 4..31 never saw a positive
example, which the class-20 images show.

Run from the repository root (after ``pip install -e .``)::

    python examples/keras_vis_compat.py --out examples_output/
    VISOPT_MAX_ITER=40 python examples/keras_vis_compat.py     # quick run
"""

import argparse
from pathlib import Path

import keras
import numpy as np

# keras-vis:  from vis.losses import ActivationMaximization
#             from vis.regularizers import TotalVariation, LPNorm
#             from vis.optimizer import Optimizer
#             from vis.visualization import visualize_activation
#             from vis.utils.utils import stitch_images
from visopt import ActivationMaximization, LPNorm, Optimizer, TotalVariation, stitch_images, visualize_activation
from visopt.demo import make_dataset
from visopt import save_image


def small_model() -> keras.Model:
    """A functional CNN: with Keras 3, ``model.input`` of a Sequential model raises until it is called
    symbolically, so keras-vis code that uses ``model.input`` needs a functional model (or ``model.inputs[0]``)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(32, activation="softmax", name="predictions")(x))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = make_dataset(2048, seed=1)
    model.fit(x, y, batch_size=64, epochs=4, verbose=0)
    print("training accuracy", round(float(model.evaluate(x, y, verbose=0)[1]), 3))
    return model


def save(path: Path, images: np.ndarray, cols: int | None = None) -> None:
    big = np.kron(images, np.ones((1, 4, 4, 1), images.dtype))
    print("saved", save_image(path, stitch_images(big, cols=cols, margin=4)))


def main():
    parser = argparse.ArgumentParser(description="keras-vis style calls on visopt.")
    parser.add_argument("--out", type=Path, default=Path("examples_output"), help="output folder")
    args = parser.parse_args()
    model = small_model()

    # keras-vis: layer_idx = utils.find_layer_idx(model, "predictions"); layer = model.layers[layer_idx]
    layer = model.layers[-1]
    filter_indices = [0, 1, 2, 3]  # visopt: one image per index (keras-vis summed them into one: [[0, 1, 2, 3]])
    # On a softmax layer visopt climbs the log-probability, whose gradient is bounded, so keras-vis'
    # weights of 10 keep the images faint; ActivationMaximization(..., score="activation") is keras-vis' objective.
    losses = [
        (ActivationMaximization(layer, filter_indices), 1),
        (LPNorm(model.input), 10),
        (TotalVariation(model.input), 10),
    ]
    opt = Optimizer(model.input, losses)
    opt_img, grads = opt.minimize(max_iter=500, verbose=True, jitter=0)
    print("Optimizer.minimize:", opt_img.shape, opt_img.dtype, "gradients", grads.shape)
    print("  predicted classes:", model.predict(opt_img, verbose=0).argmax(axis=1), "wanted", filter_indices)
    save(args.out / "compat_optimizer.png", opt_img)

    images = visualize_activation(model.input, layer, filter_indices=[20, 20, 20])  # three images of unit 20
    p20 = model.predict(images, verbose=0)[:, 20]
    print("visualize_activation [20, 20, 20]:", images.shape, "p(unit 20) =", np.round(p20, 3))
    save(args.out / "compat_unit20.png", images)

    # the keras-vis two-pass recipe: a rough image without total variation, then smoothed from there
    img = visualize_activation(model.input, layer, filter_indices=1, tv_weight=0)
    smooth = visualize_activation(model.input, layer, filter_indices=1, seed_img=img, tv_weight=1)
    print("tv_weight=0 then seed_img + tv_weight=1: predicted",
          model.predict(np.concatenate([img, smooth]), verbose=0).argmax(axis=1), "wanted [1 1]")
    save(args.out / "compat_two_pass.png", np.concatenate([img, smooth]))


if __name__ == "__main__":
    main()
