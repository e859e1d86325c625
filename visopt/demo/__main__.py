"""Run the demo: the whole gallery of what visopt does, with the report page as its index.

    python -m visopt.demo --out demo_output          # or: make demo

Trains the demo CNN on synthetic images (recording a weight video), an independent judge, a small
LSTM (its gates) and a tiny network whose training is recorded and replayed;
then ``visopt report`` writes ``OUT/index.html``: the filters of every conv layer, class images,
their progress animation, saliency and Grad-CAM overlays of held-out images, and those extras.
Prints what it trained, how many class images the model and the judge recognise, and the files.
Honours ``VISOPT_MAX_ITER`` (caps optimization steps). ``OUT`` must be new, empty, or an earlier
demo's or report's folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from visopt._atomic import atomic_write_bytes
from visopt.demo import gallery
from visopt.demo.data import CLASS_NAMES, make_dataset
from visopt.demo.models import train_demo_model


def main(argv=None) -> int:
    """Run the demo with ``argv``; returns the exit status.

    Example:
        >>> main(["--out", "demo_output", "--steps", "50"])
        0
    """
    parser = argparse.ArgumentParser(prog="python -m visopt.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_output", help="the gallery's folder (replaced when complete)")
    parser.add_argument("--steps", type=int, default=200, help="optimization steps per visualization")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="visopt-demo-") as work:
        work = Path(work)
        model, attached = _train_everything(work, args.seed, start)
        judge = train_demo_model("wide", seed=args.seed + 7)
        model_path = work / "demo_cnn.keras"
        model.save(model_path)
        gallery.run_report(model_path, out, _report_options(work, args, attached))
        atomic_write_bytes(out / model_path.name, model_path.read_bytes())  # for trying the commands on it
    shares = gallery.judge_class_images(out, {"the demo model": model, "an independent judge": judge})
    print(f"class images (rows: {', '.join(CLASS_NAMES)}): {shares['the demo model']:.0%} classified as their class "
          f"by the demo model, {shares['an independent judge']:.0%} by an independent judge (another architecture "
          "and seed)")
    _print_files(out)
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


def _train_everything(work: Path, seed: int, start: float):
    """The demo CNN (with its weight video) and the extras; returns the model and the folders to attach."""
    model, snapshot = gallery.train_with_weight_video(work / "attach", seed)
    x_test, y_test = make_dataset(512, seed=seed + 99)
    accuracy = float(model.evaluate(x_test, y_test, verbose=0)[1])
    print(f"trained demo model {model.name!r} on synthetic images in {time.perf_counter() - start:.1f} s "
          f"(test accuracy {accuracy:.3f}; {snapshot.snapshots} weight snapshots)")
    gallery.write_test_images(work / "images", 8, seed)
    attached = [work / "attach" / "weight_video"]
    rnn_accuracy = gallery.rnn_gate_pictures(work / "attach" / "rnn_gates", seed)
    attached.append(work / "attach" / "rnn_gates")
    print(f"trained an LSTM on the marker task (accuracy {rnn_accuracy:.2f}) and drew its gates")
    replay_accuracy = gallery.replay_animation(work / "attach" / "training_replay", work, seed)
    attached.append(work / "attach" / "training_replay")
    print(f"recorded and replayed a 2-2-1 network separating two parabolas (accuracy {replay_accuracy:.2f})")
    return model, attached


def _report_options(work: Path, args, attached) -> list[str]:
    return ["--images", str(work / "images"), "--filters", "32", "--classes", "all", "--per-class", "4",
            "--class-names", ",".join(CLASS_NAMES), "--steps", str(args.steps), "--seed", str(args.seed),
            "--saliency-method", "smoothgrad", "--title", "visopt demo: what a small CNN learned",
            "--attach", *map(str, attached), "--attach-title", "Training and sequences"]


def _print_files(out: Path) -> None:
    files = sorted(p for p in out.rglob("*") if p.is_file())
    print(f"wrote {len(files)} files to {out.resolve()}: open {(out / 'index.html').resolve()}")
    model, images = out / "demo_cnn.keras", out / "images"
    print(f"the page is `visopt report {model} --images {images} --out DIR` (with more options and the extras); "
          f"try `visopt cam {model} {images} --out cams/`")


if __name__ == "__main__":
    raise SystemExit(main())
