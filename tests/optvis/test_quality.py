"""Class images are true: independently trained models recognise them, none is flat, repeats differ.

Two of the quality benchmark's tasks (benchmarks/quality_activation.py): gratings and colours
(colours was held out when the defaults were first chosen). The judges have another seed and
another architecture than the visualized model; one test visualizes a ResNet with BatchNorm.
"""

import numpy as np
import pytest

from visopt import visualize_activation
from visopt.demo.tasks import train_task_model

CLASSES = [c for c in range(4) for _ in range(3)]
FLAT_STD = 0.02 * 255


@pytest.fixture(scope="module")
def colour_models():
    model = train_task_model("colours", "cnn", seed=0)
    judges = [train_task_model("colours", "cnn", seed=1), train_task_model("colours", "wide", seed=2)]
    return model, judges


def _recognised(model, images, classes=CLASSES) -> float:
    return float(np.mean(model.predict(np.asarray(images, np.float32), verbose=0).argmax(axis=1) == classes))


def _check(model, judges, images, transfer=0.9, classes=CLASSES):
    assert images.dtype == np.uint8 and images.shape == (len(classes), 32, 32, 3)
    stds = images.reshape(len(images), -1).astype(np.float32).std(axis=1)
    assert stds.min() > FLAT_STD, f"flat images: stds {np.round(stds, 1)}"
    assert _recognised(model, images, classes) >= 0.9
    for judge in judges:
        assert _recognised(judge, images, classes) >= transfer, judge.name


def test_gratings_class_images_transfer_to_an_independent_model(demo_model, judge_model):
    images = visualize_activation(demo_model, "predictions", CLASSES, seed=0)
    _check(demo_model, [judge_model], images)


def test_colour_class_images_transfer_on_a_held_out_task(colour_models):
    model, judges = colour_models
    images = visualize_activation(model, "predictions", CLASSES, seed=0)
    _check(model, judges, images)


def test_a_batchnorm_resnet_gives_class_images_its_judges_recognise(colour_models):
    """The visualized model has BatchNorm and residual blocks: one of its classes has a weak gradient
    at grey, and a regularizer whose pull does not fade there (LPNorm) used to hold it flat."""
    model, judges = colour_models
    resnet = train_task_model("colours", "resnet", seed=2)
    images = np.concatenate([visualize_activation(resnet, "predictions", CLASSES, seed=s) for s in (0, 1)])
    # Blue is the weak class, at times read as red: the wide judge reads 0.79-0.92 of the images,
    # depending on the training run (docs/quality.md). Before, blue was flat grey and read by no one.
    _check(resnet, [model, judges[1]], images, transfer=0.75, classes=CLASSES * 2)


def test_repeated_classes_give_different_images(demo_model):
    images = visualize_activation(demo_model, "predictions", [1, 1, 1], seed=0).astype(np.float32) / 255
    distances = [np.sqrt(np.mean((images[i] - images[j]) ** 2)) for i in range(3) for j in range(i + 1, 3)]
    assert min(distances) > 0.1  # three pictures, not one picture three times


def test_transferability_is_the_judges_share(demo_model, judge_model, test_images):
    from visopt.metrics import transferability

    x, y = test_images
    assert transferability(x[:16], list(y[:16]), [demo_model, judge_model]) == 1.0
    wrong = [(c + 1) % 4 for c in y[:16]]
    mean, per_judge = transferability(x[:16], wrong, judge_model, return_per_judge=True)
    assert mean == 0.0 and per_judge == [0.0]
    half = list(y[:8]) + wrong[8:]
    assert transferability(x[:16], half, [judge_model]) == 0.5
    with pytest.raises(ValueError, match="one class per image"):
        transferability(x[:2], [[0, 1], [1]], judge_model)
    with pytest.raises(ValueError, match="classes are indices >= 0, got -1"):
        transferability(x[:2], -1, judge_model)


def test_plausibility_ranks_real_examples_over_class_images_over_noise(demo_model, judge_model):
    from visopt.demo import make_dataset
    from visopt.metrics import plausibility

    x, y = make_dataset(256, seed=31)
    real = plausibility(x[:32], y[:32], judge_model, x[32:], y[32:])
    wrong = plausibility(x[:32], (y[:32] + 1) % 4, judge_model, x[32:], y[32:])
    images = visualize_activation(demo_model, "predictions", CLASSES, seed=0)
    drawn, per_image = plausibility(images, CLASSES, judge_model, x, y, return_per_image=True)
    noise = np.random.default_rng(0).uniform(0, 255, images.shape)
    assert real > 0.9 and wrong < real - 0.1  # features after a ReLU: every cosine is positive
    assert per_image.shape == (len(CLASSES),) and drawn > plausibility(noise, CLASSES, judge_model, x, y) + 0.05
    with pytest.raises(ValueError, match=r"no real examples of class\(es\) \[3\]"):
        plausibility(images[:1], 3, judge_model, x[y != 3], y[y != 3])
