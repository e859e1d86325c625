"""Can the maps be trusted? Every saliency and CAM method scored on the object model, one table.

For each method, on ``train_object_model(seed)`` and 48 held-out images of
``make_object_dataset(48, seed=11)`` (one 5-7 px shape at a random place; the class is the shape):

- pointing game against the object's box, tolerance 0 and 2 px (15 px at 224 px, scaled);
- RISE deletion AUC (lower is better) and insertion AUC (higher is better), 32 steps, and the same
  for a random map;
- the model-randomization sanity check on 16 images: mean Spearman rank correlation between the
  maps of the trained model and of the model with its top layer randomized, and with every layer
  randomized (cascading, top down). A map that keeps a high correlation does not depend on what
  the model learned.

Run from the repository root::

    python benchmarks/quality_saliency.py             # seeds 0 and 1 (about 3 minutes on 2 cores)
    python benchmarks/quality_saliency.py --seeds 0   # one model
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
try:
    import visopt  # noqa: F401 - installed, or the checkout's parent folder is on the path
except ImportError:  # run from a checkout without pip install -e .
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from visopt import metrics, visualize_cam, visualize_saliency  # noqa: E402
from visopt.attribution.cam import CAM_METHODS  # noqa: E402
from visopt.demo import make_object_dataset, train_object_model  # noqa: E402
from visopt.attribution.saliency import METHODS  # noqa: E402


def explainer(method: str, labels, noise: float):
    def explain(model, images):
        if method in CAM_METHODS:
            return visualize_cam(model, "predictions", labels[:len(images)], images, method=method)
        options = {"noise": noise} if method in ("smoothgrad", "vargrad", "squaregrad") else {}
        return visualize_saliency(model, "predictions", labels[:len(images)], images, method=method, **options)
    return explain


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1", help="object-model seeds, comma-separated")
    parser.add_argument("--noise", type=float, default=0.2, help="SmoothGrad-family noise (fraction of range)")
    args = parser.parse_args(argv)
    print(f"saliency quality, object model, 48 images (randomization: 16), SmoothGrad noise {args.noise}, "
          f"{time.strftime('%Y-%m-%d')}")
    for seed in (int(s) for s in args.seeds.split(",")):
        model = train_object_model(seed=seed)
        data = make_object_dataset(48, seed=11)
        labels = list(data.labels)
        accuracy = float((model.predict(data.images, verbose=0).argmax(1) == data.labels).mean())
        random_maps = np.random.default_rng(0).random(data.masks.shape).astype(np.float32)
        chance_del = metrics.deletion_auc(model, data.images, random_maps, class_index=labels).mean()
        chance_ins = metrics.insertion_auc(model, data.images, random_maps, class_index=labels).mean()
        print(f"\nobject model seed {seed}: accuracy {accuracy:.3f}; random map: deletion {chance_del:.3f}, "
              f"insertion {chance_ins:.3f}")
        print("| method | pointing, 0 px | pointing, 2 px | deletion AUC | insertion AUC | "
              "rank corr., top layer random | rank corr., all layers random |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for method in METHODS + CAM_METHODS:
            explain = explainer(method, labels, args.noise)
            maps = explain(model, data.images)
            point0 = metrics.pointing_game(maps, boxes=data.boxes)
            point2 = metrics.pointing_game(maps, boxes=data.boxes, tolerance=2)
            deletion = metrics.deletion_auc(model, data.images, maps, class_index=labels).mean()
            insertion = metrics.insertion_auc(model, data.images, maps, class_index=labels).mean()
            check = metrics.model_randomization(model, explain, data.images[:16], seed=seed)
            print(f"| {method} | {point0:.2f} | {point2:.2f} | {deletion:.3f} | {insertion:.3f} | "
                  f"{check.mean[0]:.2f} | {check.mean[-1]:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
