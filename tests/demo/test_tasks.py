"""The quality benchmark's synthetic tasks: reproducible, balanced, in range, and the class is in the picture."""

import numpy as np
import pytest

from visopt.demo.tasks import TASKS, make_task_data


@pytest.mark.parametrize("task", sorted(TASKS))
def test_task_data_is_reproducible_balanced_and_in_range(task):
    x, y = make_task_data(task, 64, seed=3)
    again, labels = make_task_data(task, 64, seed=3)
    np.testing.assert_array_equal(x, again)
    np.testing.assert_array_equal(y, labels)
    assert x.shape == (64, 32, 32, 3) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 255
    np.testing.assert_array_equal(np.bincount(y), [16] * 4)
    assert not np.array_equal(make_task_data(task, 64, seed=4)[0], x)


@pytest.mark.parametrize("task", ["icons", "dice"])
def test_a_nearest_class_mean_on_edges_tells_the_classes_apart(task):
    """The class is drawn, not only named: even a nearest-mean classifier of gradient magnitudes
    beats chance (0.25) by far on fresh images. Position, size and colour vary, so it is far from 1."""
    def edges(x):
        grey = x.mean(axis=-1)
        return (np.abs(np.diff(grey, axis=1))[:, :, :-1] + np.abs(np.diff(grey, axis=2))[:, :-1, :]).reshape(len(x), -1)

    x, y = make_task_data(task, 800, seed=1)
    fx = edges(x)
    means = np.stack([fx[y == c].mean(axis=0) for c in range(4)])
    test, labels = make_task_data(task, 400, seed=2)
    ft = edges(test)
    guess = np.argmin(((ft[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert np.mean(guess == labels) > 0.5  # about 0.67 for both; shuffled labels give 0.25
