"""One place where randomness enters the library."""

from __future__ import annotations

import numbers

import numpy as np
import torch

RandomState = None | int | np.random.Generator


def check_random_state(random_state: RandomState) -> np.random.Generator:
    """Turn ``None``, an int or a Generator into a NumPy ``Generator``.

    Parameters
    ----------
    random_state : None, int or numpy.random.Generator
        ``None`` draws fresh entropy, an int seeds a new generator, and a
        Generator is returned unchanged (so callers share its stream).

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    TypeError
        If ``random_state`` is of any other type.
    ValueError
        If ``random_state`` is a negative int.

    Examples
    --------
    >>> rng = check_random_state(0)
    >>> int(rng.integers(10)) == int(check_random_state(0).integers(10))
    True
    """
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(
        random_state, bool
    ):
        if random_state < 0:
            raise ValueError(
                f"random_state={random_state!r} is not valid; expected None, a "
                "non-negative int or a numpy.random.Generator"
            )
        return np.random.default_rng(int(random_state))
    raise TypeError(
        f"random_state={random_state!r} is not valid; expected None, an int "
        "or a numpy.random.Generator"
    )


def torch_generator(random_state: RandomState) -> torch.Generator:
    """Return a CPU ``torch.Generator`` seeded from ``random_state``.

    Parameters
    ----------
    random_state : None, int or numpy.random.Generator
        Source of the seed, normalized by :func:`check_random_state`.

    Returns
    -------
    torch.Generator

    Examples
    --------
    >>> a = torch.rand(2, generator=torch_generator(3))
    >>> b = torch.rand(2, generator=torch_generator(3))
    >>> bool(torch.equal(a, b))
    True
    """
    rng = check_random_state(random_state)
    generator = torch.Generator()
    generator.manual_seed(int(rng.integers(2**62)))
    return generator
