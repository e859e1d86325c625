"""Run the demo: train the demo CNN on synthetic images, write filter and class visualizations.

    python -m visopt.demo --out demo_output

Prints the folder and every PNG written. Honours ``VISOPT_MAX_ITER`` (caps optimization steps).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from visopt.demo.data import CLASS_NAMES, make_dataset
from visopt.demo.models import train_demo_model
from visopt.frames.image_file import save_image
from visopt.optvis.visualization import visualize_activation
from visopt.render.images import deprocess_image, stitch_images

_UPSCALE = 4


def _enlarge(image: np.ndarray) -> np.ndarray:
    return np.kron(image, np.ones((_UPSCALE, _UPSCALE, 1), dtype=image.dtype))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m visopt.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_output", help="folder for the PNG grids (created)")
    parser.add_argument("--steps", type=int, default=200, help="optimization steps per visualization")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)

    start = time.perf_counter()
    model = train_demo_model("cnn", seed=args.seed)
    x_test, y_test = make_dataset(512, seed=args.seed + 99)
    accuracy = float(model.evaluate(x_test, y_test, verbose=0)[1])
    print(f"trained demo model {model.name!r} on synthetic images in {time.perf_counter() - start:.1f} s "
          f"(test accuracy {accuracy:.3f})")

    written = []
    for layer in ("conv_1", "conv_2", "conv_3"):
        images = visualize_activation(model, layer, None, max_iter=args.steps, seed=args.seed)
        written.append(save_image(out / f"filters_{layer}.png", _enlarge(stitch_images(images, cols=8))))

    per_class = 4
    indices = [c for c in range(len(CLASS_NAMES)) for _ in range(per_class)]
    images = visualize_activation(model, "predictions", indices, max_iter=args.steps, seed=args.seed)
    predicted = model.predict(images.astype(np.float32), verbose=0).argmax(axis=1)
    written.append(save_image(out / "classes.png", _enlarge(stitch_images(images, cols=per_class))))
    # Class images are low in contrast once the class wins (the regularizers take over); stretch each
    # for display. The unstretched file is what the model saw.
    stretched = deprocess_image(images.astype(np.float32), percentile=1)
    written.append(save_image(out / "classes_stretched.png", _enlarge(stitch_images(stretched, cols=per_class))))
    recognised = float(np.mean(predicted == np.array(indices)))
    print(f"class images (rows: {', '.join(CLASS_NAMES)}): {recognised:.0%} classified as their class")

    print(f"wrote {len(written)} images to {out.resolve()}:")
    for path in written:
        print(f"  {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
