"""The GPU check's stand-in where TensorFlow is missing: visopt's default step written in PyTorch, on VGG16.

``bench_layers.py --gpu-check`` measures visopt itself when TensorFlow sees a GPU. The lent GPU
machines of this workplace carry PyTorch and no TensorFlow (and reach no package registry), so
there the same per-step work is written here, to measure what an image-step of the request costs
on that GPU rather than assume it:

* VGG16's convolutions (3x3, same padding, ReLU, 2x2 max pools; Glorot-uniform kernels and zero
  biases, as ``keras.applications.VGG16(weights=None)``), up to the visualized layer, no weight
  gradients;
* visopt's default image: a decorrelated Fourier spectrum scaled by 1/frequency through a sigmoid
  into [0, 255]; one random view per step shared by the batch (jitter 5%, scale 0.9-1.1, rotation
  +-5 degrees, bilinear, reflected borders);
* energy = -mean(filter) + 0.5 LPNorm(p=6) + 2 TotalVariation on the image in [-1, 1]; Adam
  (lr 0.015); the energies read back every step, as visopt's loop does.

Convolutions run as PyTorch's defaults allow (cuDNN, TF32), as TensorFlow's defaults do.

Example:
    >>> report = torch_check(REQUEST, MEASURED, STANDS_FOR, 200, budget_s=200)
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
COLOR_SQRT /= np.max(np.linalg.norm(COLOR_SQRT, axis=0))
LEARNING_RATE, BETA1, BETA2, EPSILON = 0.015, 0.9, 0.999, 1e-8


def vgg16_features(device) -> tuple[nn.Sequential, dict[str, int]]:
    """VGG16's convolutional part and, for each ``blockB_convC``, the end of its slice (after its ReLU)."""
    layers, ends, channels, block, conv = [], {}, 3, 1, 0
    for width in VGG16:
        if width == "M":
            layers.append(nn.MaxPool2d(2))
            block, conv = block + 1, 0
            continue
        conv += 1
        layer = nn.Conv2d(channels, width, 3, padding=1)
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
        layers += [layer, nn.ReLU()]
        ends[f"block{block}_conv{conv}"] = len(layers)
        channels = width
    features = nn.Sequential(*layers).to(device).eval()
    for parameter in features.parameters():
        parameter.requires_grad_(False)
    return features, ends


class Batch:
    """The images of ``filters`` (one per filter) optimized together, on ``features`` (up to the layer)."""

    def __init__(self, features, filters, size: int, device, seed: int = 0):
        self.features, self.size, self.device = features, size, device
        self.filters = torch.as_tensor(filters, device=device, dtype=torch.long)
        generator = torch.Generator().manual_seed(seed)
        fy = np.fft.fftfreq(size)[:, None]
        fx = np.fft.rfftfreq(size)[None, :]
        scale = np.sqrt(size * size) / np.maximum(np.sqrt(fx * fx + fy * fy), 1.0 / size)
        self.scale = torch.as_tensor(scale.astype(np.float32), device=device)
        shape = (len(filters), 3, size, size // 2 + 1)
        self.variables = [(0.01 * torch.randn(shape, generator=generator)).to(device) for _ in range(2)]
        self.moments = [(torch.zeros_like(v), torch.zeros_like(v)) for v in self.variables]
        self.color = torch.as_tensor(COLOR_SQRT.T.copy(), device=device)
        self.count = 0

    def image(self, real, imag):
        spatial = torch.fft.irfft2(torch.complex(real * self.scale, imag * self.scale), s=(self.size, self.size))
        spatial = (spatial.permute(0, 2, 3, 1) / 4.0) @ self.color
        return 255.0 * torch.sigmoid(spatial.permute(0, 3, 1, 2))

    def view(self, image, step: int):
        u = torch.rand(4, generator=torch.Generator().manual_seed(step)) * 2 - 1
        scale, angle = 1.0 + 0.1 * float(u[2]), math.radians(5.0 * float(u[3]))
        shift = [round(0.05 * self.size * float(v)) * 2 / self.size for v in u[:2]]  # whole pixels, in [-1, 1] units
        cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
        theta = torch.tensor([[cos, sin, shift[0]], [-sin, cos, shift[1]]], device=self.device)
        grid = F.affine_grid(theta.expand(len(image), 2, 3), list(image.shape), align_corners=False)
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def energy(self, real, imag, step: int):
        image = self.image(real, imag)
        activations = self.features(self.view(image, step))
        score = activations.mean(dim=(2, 3)).gather(1, self.filters[:, None])[:, 0]
        unit = image / 127.5 - 1.0
        lp_norm = (unit.abs().pow(6).mean(dim=(1, 2, 3)) + 1e-30).pow(1 / 6)
        dx = unit[:, :, :-1, 1:] - unit[:, :, :-1, :-1]
        dy = unit[:, :, 1:, :-1] - unit[:, :, :-1, :-1]
        total_variation = (dx * dx + dy * dy + 1e-12).mean(dim=(1, 2, 3))
        return -score + 0.5 * lp_norm + 2.0 * total_variation

    def step(self, step: int) -> np.ndarray:
        real, imag = (v.requires_grad_(True) for v in self.variables)
        energy = self.energy(real, imag, step)
        grads = torch.autograd.grad(energy.sum(), [real, imag])
        self.count += 1
        rate = LEARNING_RATE * math.sqrt(1 - BETA2 ** self.count) / (1 - BETA1 ** self.count)
        with torch.no_grad():
            for k, (variable, grad) in enumerate(zip(self.variables, grads)):
                first, second = self.moments[k]
                first.mul_(BETA1).add_(grad, alpha=1 - BETA1)
                second.mul_(BETA2).addcmul_(grad, grad, value=1 - BETA2)
                self.variables[k] = (variable.detach() - rate * first / (second.sqrt() + EPSILON))
        return energy.detach().cpu().numpy()  # read back every step, as visopt's loop does


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(features, end: int, units: int, batch: int, size: int, steps: int, device) -> dict:
    """Seconds per step, image-steps per second and peak GPU memory of one batch on one layer."""
    model = features[:end]
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    work = Batch(model, [i % units for i in range(batch)], size, device)
    for t in range(2):  # cuDNN's algorithm search, allocations
        work.step(t)
    _sync(device)
    start = time.perf_counter()
    for t in range(steps):
        energy = work.step(2 + t)
    _sync(device)
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else 0
    assert np.all(np.isfinite(energy))
    return {"batch": batch, "s_per_step": seconds, "image_steps_per_s": batch / seconds, "peak_mib": peak / 2**20}


def whole_request(features, ends, request: dict, batch: int, size: int, steps: int, device) -> float:
    """Seconds to run every filter of every layer of ``request`` for ``steps`` steps, ``batch`` at a time."""
    start = time.perf_counter()
    for layer, count in request.items():
        model = features[:ends[layer]]
        for first in range(0, count, batch):
            work = Batch(model, list(range(first, min(count, first + batch))), size, device, seed=first)
            for t in range(steps):
                work.step(t)
    _sync(device)
    return time.perf_counter() - start


def torch_check(request: dict, measured, stands_for: dict, request_steps: int, *, budget_s: float = 200.0,
                size: int = 128, batches=(16, 64, 256, 512), steps: int = 10) -> dict:
    """The GPU check in PyTorch: per-image cost of each measured layer against the batch, then the whole
    request (all ``request_steps`` steps when the measured cost says it fits ``budget_s``, else fewer)."""
    began = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    report = {"engine": f"PyTorch {torch.__version__} (visopt's step restated; TensorFlow is not installed here)",
              "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu", "size": size,
              "timed_steps": steps, "runs": []}
    features, ends = vgg16_features(device)
    for layer in measured:
        units = int(features[ends[layer] - 2].out_channels)
        for batch in batches:
            run = dict(measure(features, ends[layer], units, batch, size, steps, device), layer=layer)
            report["runs"].append(run)
            print(f"{layer} batch {batch}: {run['s_per_step'] * 1e3:.1f} ms/step, {run['image_steps_per_s']:.0f} "
                  f"image-steps/s, peak {run['peak_mib']:.0f} MiB", flush=True)
    best = {layer: max((r for r in report["runs"] if r["layer"] == layer), key=lambda r: r["image_steps_per_s"])
            for layer in measured}
    batch = min(b["batch"] for b in best.values())
    projected = sum(count * request_steps / best[stands_for[layer]]["image_steps_per_s"]
                    for layer, count in request.items())
    left = budget_s - (time.perf_counter() - began)
    full_steps = request_steps if projected < 0.8 * left else max(1, int(request_steps * 0.8 * left / projected))
    seconds = whole_request(features, ends, request, batch, size, full_steps, device)
    report["whole_request"] = {"images": sum(request.values()), "batch": batch, "steps": full_steps,
                               "seconds": seconds, "seconds_all_steps": seconds * request_steps / full_steps,
                               "projected_from_runs": projected}
    report["per_image_mib"] = {layer: _slope(report["runs"], layer) for layer in measured}
    report["check_seconds"] = time.perf_counter() - began
    return report


def _slope(runs, layer) -> float:
    """Peak GPU memory per image (MiB) between the smallest and largest batch of ``layer``."""
    mine = sorted((r for r in runs if r["layer"] == layer), key=lambda r: r["batch"])
    low, high = mine[0], mine[-1]
    return (high["peak_mib"] - low["peak_mib"]) / max(1, high["batch"] - low["batch"])
