"""Watch the demo CNN's weights learn: one video per weight tensor, rendered when training ends.

Builds the demo model (three 3x3 conv layers and a softmax layer) and trains it on the synthetic
stripes-and-rings data with ``WeightSnapshot``: every trainable tensor is recorded every 10
batches, and at the end of ``fit`` each one becomes a video (``layer_conv_1-weights_01.mp4`` is
the first conv kernel, ``..._02`` its bias). Conv kernels appear as a grid of 3x3 filters (one row
per input channel, one column per filter), colours on a scale fixed over the run (diverging
``RdBu``: white is zero, red positive, blue negative).

Run from the repository root (after ``pip install -e .``)::

    python examples/weight_snapshot.py --out examples_output/weights
    visopt render examples_output/weights --format gif --cmap viridis    # the same snapshots, other look
"""

import argparse
import time
from pathlib import Path

import visopt
from visopt.demo import build_model, make_dataset


def main():
    parser = argparse.ArgumentParser(description="Record and animate the demo CNN's weights during training.")
    parser.add_argument("--out", type=Path, default=Path("examples_output/weights"), help="output folder")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--batch-interval", type=int, default=10, help="snapshot every this many batches")
    parser.add_argument("--cmap", default="RdBu", help="matplotlib colormap (gray, RdBu, viridis, ...)")
    parser.add_argument("--format", choices=("mp4", "gif"), default="mp4")
    args = parser.parse_args()

    model = build_model("cnn", seed=0)
    x, y = make_dataset(args.samples, seed=1000)
    snapshot = visopt.WeightSnapshot(args.out, batch_interval=args.batch_interval, cmap=args.cmap,
                                     render_videos=True, video_format=args.format)
    history = visopt.WeightHistory(weights=["conv_1/kernel", "predictions/kernel"])
    start = time.perf_counter()
    model.fit(x, y, batch_size=64, epochs=args.epochs, verbose=2, callbacks=[snapshot, history])
    print(f"trained and rendered in {time.perf_counter() - start:.1f} s: {snapshot.snapshots} snapshots of "
          f"{len(snapshot.video_paths)} weight tensors")
    print(f"videos in {args.out.resolve()}:")
    for path in snapshot.video_paths:
        print(f"  {path}")
    plot = history.plot(args.out / "weight_history.png", title="demo CNN weights during training")
    print(f"weight statistics: {args.out / 'weight_history.png'} ({len(plot.axes)} panels)")
    print(f"raw snapshots (re-render with `visopt render {args.out}`): {args.out / 'snapshots'}")


if __name__ == "__main__":
    main()
