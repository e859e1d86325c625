"""Every filter of VGG16's deep layers: time, images per second and peak memory against ``batch_size``.

The request of issue 16: all filters of VGG16 ``block3_conv3`` .. ``block5_conv3`` (the 7 convolution
layers from block3_conv3 to block5_conv3: 256 + 6 x 512 = 3328 images) at 128 px,
``keras.applications.VGG16(weights=None, include_top=False, input_shape=(128, 128, 3))``, with
``visopt.visualize_activation``'s defaults (Fourier image, default transforms, LPNorm, TV, Adam).

Each configuration runs in its own subprocess, so that its peak memory (RSS high-water mark:
``VmHWM``, or ``resource.getrusage`` where /proc is missing) is its own: build the model, one 1-step call (set-up and tracing, not
timed), then ``--steps`` timed steps. Reported: seconds per step, image-steps per second (images
x steps / time), the projected time of a 200-step request, peak RSS, the memory rule's estimate
per image and the chunk it picks, and FLOPs per image-step (forward + input gradient of every
convolution up to the layer) with the rate they imply.

Parts (all by default; ``--quick`` makes each small):

* ``layers`` -- block3_conv3, block4_conv3, block5_conv3 x batch_size 4, 16, 64 (64 objectives each).
* ``table`` -- the scaling table of docs/scale.md: objectives x image size x batch size.
* ``projection`` -- the whole 3328-image request on this CPU, on one GPU and on N GPUs under
  MirroredStrategy, projected from the measured per-image cost (see ``project``).
* ``--full`` -- really runs all 3328 filters (hours on 2 CPU cores).
* ``--gpu-check`` -- the measurement on a GPU machine (its report of an H100 is kept in
  ``benchmarks/gpu_h100.json`` and printed beside the projection): visopt itself when TensorFlow sees a GPU,
  else (no TensorFlow there) the same per-step work written in PyTorch (VGG16 features with the same
  layers, a Fourier image, a random affine view, the filter's mean, LPNorm, TV, Adam), so that the
  GPU's per-image cost is measured rather than assumed. Writes ``$OUT/gpu.json`` when ``OUT`` is set.

Run from the repository root::

    python benchmarks/bench_layers.py --quick          # about 2 minutes on 2 cores
    python benchmarks/bench_layers.py                  # about 10 minutes on 2 cores
    python benchmarks/bench_layers.py --only table --steps 3
    python benchmarks/bench_layers.py --gpu-check      # on a GPU machine, < 5 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
#: The request: the convolutions from block3_conv3 to block5_conv3 and their filter counts.
REQUEST = {"block3_conv3": 256, "block4_conv1": 512, "block4_conv2": 512, "block4_conv3": 512,
           "block5_conv1": 512, "block5_conv2": 512, "block5_conv3": 512}
MEASURED = ("block3_conv3", "block4_conv3", "block5_conv3")
#: Which measured layer stands for each layer of the request (the deepest of its block: an upper bound).
STANDS_FOR = {"block3_conv3": "block3_conv3", "block4_conv1": "block4_conv3", "block4_conv2": "block4_conv3",
              "block4_conv3": "block4_conv3", "block5_conv1": "block5_conv3", "block5_conv2": "block5_conv3",
              "block5_conv3": "block5_conv3"}
STEPS_OF_A_REQUEST = 200
#: The GPU projection's assumptions: an H100 SXM's dense TF32 tensor-core peak (TensorFlow runs
#: convolutions in TF32 on Ampere and later by default), of which a 128 px VGG reaches about a third,
#: and the share of linear scaling MirroredStrategy keeps (no gradient is reduced: only the step's launch).
GPU_PEAK_FLOPS = 495e12
GPU_EFFICIENCY = 0.33
REPLICA_EFFICIENCY = 0.95
VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


# -- one configuration, in a subprocess ----------------------------------------------------------

def conv_flops(model, layer_name: str) -> float:
    """FLOPs of one image-step: every Conv2D up to ``layer_name``, forward and gradient wrt its input."""
    import keras

    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, out_channels = layer.output.shape
            kh, kw, in_channels, _ = layer.kernel.shape
            total += 2.0 * height * width * out_channels * kh * kw * in_channels
        if layer.name == layer_name:
            break
    return 2 * total


def peak_rss() -> int:
    """This process's RSS high-water mark in bytes: ``VmHWM`` of /proc/self/status, else ``ru_maxrss``.

    ``ru_maxrss`` alone would start at the RSS of the parent that spawned the process (Linux keeps the
    larger across exec), so a small configuration would read the parent's size.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(config: dict) -> dict:
    """One configuration: build VGG16, trace with one step, time ``steps`` steps; peak RSS of this process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, ROOT)
    import keras

    import visopt
    from visopt.optvis import plan

    size, layer, objectives = config["size"], config["layer"], config["objectives"]
    batch_size = config.get("batch_size")
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    units = int(model.get_layer(layer).output.shape[-1])
    filters = [i % units for i in range(objectives)]
    base = peak_rss()
    # visualize_activation's energy and defaults, on an Optimizer kept here to read its plan
    energy = visopt.ActivationMaximization(layer, filters) + 0.5 * visopt.LPNorm() + 2.0 * visopt.TotalVariation()
    optimizer = visopt.Optimizer(model, energy)
    start = time.perf_counter()
    optimizer.minimize(max_iter=1, seed=0, batch_size=batch_size, verbose=False)  # set-up and tracing
    first = time.perf_counter() - start
    start = time.perf_counter()
    optimizer.minimize(max_iter=config["steps"], seed=0, batch_size=batch_size, verbose=False)
    seconds = time.perf_counter() - start
    run = plan.plan_run(optimizer, batch_size=batch_size, verbose=False)
    return dict(config, seconds=seconds, first_call=first, chunk=run.chunk,
                image_steps_per_s=objectives * config["steps"] / seconds,
                peak_rss=peak_rss(), base_rss=base,
                estimate_per_image=plan.image_bytes(optimizer), flops_per_image_step=conv_flops(model, layer))


def run_config(config: dict) -> dict:
    """``worker(config)`` in a new Python process (its own peak RSS)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(config)],
                          capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"configuration {config} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the parts -------------------------------------------------------------------------------------

def layer_sweep(args) -> list[dict]:
    objectives = 16 if args.quick else 64
    batches = [4, 16] if args.quick else [4, 16, 64]
    results = []
    for layer in MEASURED:
        for batch in batches:
            results.append(run_config({"size": 128, "layer": layer, "objectives": objectives, "batch_size": batch,
                                       "steps": args.steps}))
            print_row(results[-1])
    return results


def scaling_table(args) -> list[dict]:
    sizes = [64, 128]
    counts = [8, 32] if args.quick else [16, 64]
    results = []
    for size in sizes:
        for count in counts:
            for batch in sorted({8, count}):
                results.append(run_config({"size": size, "layer": "block4_conv3", "objectives": count,
                                           "batch_size": batch, "steps": args.steps}))
                print_row(results[-1])
    return results


def print_row(r: dict) -> None:
    per_step = r["seconds"] / r["steps"]
    print(f"| {r['layer']} | {r['size']} px | {r['objectives']} | {r['batch_size']} (chunk {r['chunk']}) | "
          f"{per_step:.2f} s | {r['image_steps_per_s']:.1f} | {per_step * STEPS_OF_A_REQUEST / 60:.1f} min | "
          f"{r['peak_rss'] / 2**20:.0f} MiB | {(r['peak_rss'] - r['base_rss']) / 2**20:.0f} MiB | "
          f"{r['estimate_per_image'] / 2**20:.1f} MiB |", flush=True)


HEADER = ("| layer | image | objectives | batch_size | s / step | image-steps / s | 200 steps | peak RSS | "
          "above the model | rule's estimate / image |\n|---|---|---|---|---|---|---|---|---|---|")


def project(results: list[dict], gpus=(1, 2, 4, 8)) -> dict:
    """The whole request (3328 images, 200 steps) from the measured per-image cost of each layer.

    CPU: image-steps / s at the best batch size measured. GPU: the FLOPs of each image-step at
    ``GPU_EFFICIENCY`` of ``GPU_PEAK_FLOPS``; N GPUs: chunks side by side, ``REPLICA_EFFICIENCY``.
    """
    best = {}
    for r in results:
        if r["size"] == 128 and r["layer"] in MEASURED:
            best[r["layer"]] = max(best.get(r["layer"], 0.0), r["image_steps_per_s"])
    flops = {r["layer"]: r["flops_per_image_step"] for r in results if r["size"] == 128}
    image_steps = {layer: count * STEPS_OF_A_REQUEST for layer, count in REQUEST.items()}
    cpu = sum(steps / best[STANDS_FOR[layer]] for layer, steps in image_steps.items())
    gpu = sum(steps * flops[STANDS_FOR[layer]] for layer, steps in image_steps.items()) / (
        GPU_PEAK_FLOPS * GPU_EFFICIENCY)
    rate = {layer: best[layer] * flops[layer] / 1e9 for layer in best}
    return {"cpu_seconds": cpu, "cpu_gflops": rate, "gpu_seconds": gpu,
            "gpus": {n: gpu / (n * REPLICA_EFFICIENCY ** (n > 1)) for n in gpus}}


def print_gpu(report: dict, gpus=(1, 2, 4, 8)) -> None:
    """What ``--gpu-check`` measured (``benchmarks/gpu_h100.json``), and N GPUs projected from it."""
    whole = report["whole_request"]
    print(f"\nMeasured on {report['device']} ({report['engine']}):")
    for layer in MEASURED:
        runs = [r for r in report["runs"] if r["layer"] == layer]
        print(f"  {layer}: " + ", ".join(f"batch {r['batch']} {r['image_steps_per_s']:.0f} image-steps/s "
                                         f"{r['peak_mib'] / 1024:.1f} GiB" for r in runs))
    print(f"  the whole request ({whole['images']} images, batch {whole['batch']}, {whole['steps']} steps): "
          f"{whole['seconds']:.0f} s")
    for n in gpus:
        print(f"  {n} such GPU(s) under MirroredStrategy, projected: "
              f"{whole['seconds_all_steps'] / (n * REPLICA_EFFICIENCY ** (n > 1)):.0f} s")


def print_projection(p: dict) -> None:
    print(f"\nThe whole request: {sum(REQUEST.values())} filters x {STEPS_OF_A_REQUEST} steps at 128 px")
    print(f"  this CPU (measured per-image cost, best batch): {p['cpu_seconds'] / 3600:.1f} h; achieved "
          + ", ".join(f"{layer} {g:.0f} GFLOP/s" for layer, g in p["cpu_gflops"].items()))
    for n, seconds in p["gpus"].items():
        print(f"  {n} GPU(s), projected ({GPU_EFFICIENCY:.0%} of {GPU_PEAK_FLOPS / 1e12:.0f} TFLOP/s TF32): "
              f"{seconds:.0f} s")


# -- the GPU check -----------------------------------------------------------------------------------

def gpu_check(args) -> dict:
    """Measure on this machine's GPU: visopt when TensorFlow sees one, else the same step in PyTorch."""
    report = {"host": os.uname().nodename}
    try:
        import tensorflow as tf

        has_gpu = bool(tf.config.list_physical_devices("GPU"))
    except ImportError:
        has_gpu = False
        report["tensorflow"] = "not installed"
    if has_gpu:
        report["engine"] = "visopt (TensorFlow)"
        report["runs"] = [worker({"size": 128, "layer": layer, "objectives": batch, "batch_size": batch,
                                  "steps": 10}) for layer in MEASURED for batch in (16, 64, 256)]
    else:
        from torch_vgg import torch_check  # benchmarks/torch_vgg.py

        report.update(torch_check(REQUEST, MEASURED, STANDS_FOR, STEPS_OF_A_REQUEST, budget_s=args.gpu_budget))
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, "gpu.json"), "w") as handle:
            json.dump(report, handle, indent=1)
    print(json.dumps(report, indent=1))
    return report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sweeps: about 2 minutes on 2 cores")
    parser.add_argument("--full", action="store_true", help="also run all 3328 filters (hours on a CPU)")
    parser.add_argument("--only", choices=["layers", "table"], help="one part only")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per configuration (default 3; 2 quick)")
    parser.add_argument("--gpu-check", action="store_true", help="measure on this machine's GPU")
    parser.add_argument("--gpu-budget", type=float, default=200.0, help="seconds the GPU check may spend")
    parser.add_argument("--json", help="write every result here")
    parser.add_argument("--gpu-json", default=os.path.join(HERE, "gpu_h100.json"),
                        help="a --gpu-check report to print beside the projection (default: benchmarks/gpu_h100.json)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.steps = args.steps or (2 if args.quick else 3)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.gpu_check:
        gpu_check(args)
        return 0
    sys.path.insert(0, ROOT)
    from _machine import cpu_name, load_average, visopt_revision

    print(f"visopt {visopt_revision()}, {cpu_name()}, {os.cpu_count()} cores, load {load_average()}")
    print(HEADER)
    results = []
    if args.only in (None, "layers"):
        results += layer_sweep(args)
    if args.only in (None, "table"):
        results += scaling_table(args)
    if args.full:
        for layer, count in REQUEST.items():
            results.append(run_config({"size": 128, "layer": layer, "objectives": count, "batch_size": 64,
                                       "steps": args.steps}))
            print_row(results[-1])
    if args.only in (None, "layers"):
        print_projection(project(results))
        if args.gpu_json and os.path.isfile(args.gpu_json):
            with open(args.gpu_json) as handle:
                print_gpu(json.load(handle))
    print(f"load after: {load_average()}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
