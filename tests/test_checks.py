"""One check per kind of argument, with the same message everywhere."""

import numpy as np
import pytest

from visopt._checks import check_int, check_range, input_batch, positive_int, positive_number


def test_integers():
    assert positive_int(np.int64(3), "steps") == 3
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=f"steps must be a positive int, got {bad!r}"):
            positive_int(bad, "steps")
    assert check_int(0, "seed", 0) == 0
    with pytest.raises(ValueError, match=r"steps must be an int in \[1, 1024\], got 2000"):
        check_int(2000, "steps", 1, 1024)
    with pytest.raises(ValueError, match="seed must be an int >= 0, got 1.5"):
        check_int(1.5, "seed", 0)
    with pytest.raises(ValueError, match="max_size must be an int >= 8, got 4"):
        check_int(4, "max_size", 8)
    with pytest.raises(ValueError, match="fps must be a positive number, got 0"):
        positive_number(0, "fps")


def test_ranges_and_input_batches():
    assert check_range([0, 1]) == (0.0, 1.0)
    for bad in ((1, 0), (0, float("inf")), "0-255"):
        with pytest.raises(ValueError, match="input_range must be"):
            check_range(bad)
    one = np.zeros((4, 4, 3))
    assert input_batch(one, (4, 4, 3)).shape == (1, 4, 4, 3)
    assert input_batch(np.zeros((2, 4, 4, 3)), (4, 4, 3)).dtype == np.float32
    with pytest.raises(ValueError, match=r"seed_input has shape \(0, 4, 4, 3\)"):
        input_batch(np.zeros((0, 4, 4, 3)), (4, 4, 3))
    with pytest.raises(ValueError, match=r"baseline has shape \(4, 4\); the model takes \(4, 4, 3\)"):
        input_batch(np.zeros((4, 4)), (4, 4, 3), "baseline")
    with pytest.raises(ValueError, match="seed_input contains NaN"):
        input_batch(np.full((4, 4, 3), np.nan), (4, 4, 3))
