"""Explain a CNN that finds a small object: saliency maps and CAMs, overlaid, scored against the truth.

Trains the built-in object model (one 5-7 px shape at a random place on clutter; the class is the
shape; about 10 s on a CPU), explains 6 held-out images with every method, and writes one PNG per
method: each image with its heatmap overlaid and the object's true box drawn in white. The pointing
game (is the map's maximum on the object?) and the deletion AUC (lower: the map found what the
model needs) are printed per method.

Run from the repository root (after ``pip install -e .``)::

    python examples/saliency.py --out examples_output/
"""

import argparse
from pathlib import Path

import cv2
import numpy as np

import visopt
from visopt import metrics
from visopt.demo import OBJECT_CLASS_NAMES, make_object_dataset, train_object_model
from visopt import save_image

SALIENCY = ("vanilla", "gradient_x_input", "guided", "rectified", "smoothgrad", "integrated_gradients")
CAMS = ("gradcam", "gradcam++", "scorecam", "layercam")


def panel(images, maps, boxes, zoom: int) -> np.ndarray:
    """The overlays of a batch side by side, enlarged, each with its true box."""
    tiles = []
    for image, heat, (top, left, bottom, right) in zip(images, maps, boxes):
        tile = visopt.overlay(image, heat, alpha=0.5, input_range=(0, 255))
        tile = cv2.resize(tile, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
        cv2.rectangle(tile, (left * zoom, top * zoom), (right * zoom - 1, bottom * zoom - 1), (255, 255, 255), 1)
        tiles.append(tile)
    return visopt.stitch_images(np.stack(tiles), cols=len(tiles), margin=4)


def main():
    parser = argparse.ArgumentParser(description="Saliency maps and CAMs of the demo object model.")
    parser.add_argument("--out", type=Path, default=Path("examples_output"), help="output folder")
    parser.add_argument("--images", type=int, default=6, help="held-out images to explain")
    parser.add_argument("--zoom", type=int, default=4, help="upscaling factor of the saved panels")
    args = parser.parse_args()

    model = train_object_model(seed=0)
    data = make_object_dataset(args.images, seed=11)
    labels = list(data.labels)
    print("classes:", [OBJECT_CLASS_NAMES[i] for i in labels])
    print(f"{'method':22s} pointing game   deletion AUC   file")
    for method in SALIENCY + CAMS:
        if method in CAMS:
            maps = visopt.visualize_cam(model, "predictions", labels, data.images, method=method)
        else:
            maps = visopt.visualize_saliency(model, "predictions", labels, data.images, method=method)
        hits = metrics.pointing_game(maps, boxes=data.boxes, tolerance=2)
        deletion = metrics.deletion_auc(model, data.images, maps, class_index=labels).mean()
        path = save_image(args.out / f"saliency_{method.replace('+', 'p')}.png",
                          panel(data.images, maps, data.boxes, args.zoom))
        print(f"{method:22s} {hits:13.2f}   {deletion:12.3f}   {path}")


if __name__ == "__main__":
    main()
