"""Tests of the random_state helpers."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from wdcore._random import check_random_state, torch_generator


@pytest.mark.parametrize("seed", [0, 7, np.int64(3), 2**70])
def test_int_seeds_are_reproducible(seed):
    first = check_random_state(seed).integers(1000, size=5)
    second = check_random_state(seed).integers(1000, size=5)
    np.testing.assert_array_equal(first, second)


def test_generator_is_returned_unchanged():
    generator = np.random.default_rng(0)
    assert check_random_state(generator) is generator


def test_torch_generator_is_seeded_from_random_state():
    first = torch.rand(3, generator=torch_generator(5))
    assert torch.equal(first, torch.rand(3, generator=torch_generator(5)))
    assert not torch.equal(first, torch.rand(3, generator=torch_generator(6)))


@pytest.mark.parametrize("seed", [-1, np.int32(-5), -(2**70)])
def test_negative_seed_names_the_argument(seed):
    """Regression: permute(model, random_state=-1) gave numpy's bare message."""
    message = re.escape(f"random_state={seed!r} is not valid; expected None, a non-")
    with pytest.raises(ValueError, match=message):
        check_random_state(seed)
    with pytest.raises(ValueError, match=message):
        torch_generator(seed)


@pytest.mark.parametrize("random_state", [1.5, "0", True, np.random.RandomState(0)])
def test_other_types_are_refused(random_state):
    with pytest.raises(TypeError, match=r"random_state=.* is not valid; expected"):
        check_random_state(random_state)
