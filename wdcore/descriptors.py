"""The model-invariant weight distribution descriptor (MI-WD).

A network becomes an ``S x B`` image: its weights, in depth order, are split
into ``S`` windows and each window is histogrammed into ``B`` bins over a
symmetric value range ``[-r, r]``. Every architecture maps to the same shape.
Chapter 3 of the book builds the descriptor step by step; the recipe is ours
(the paper's exact formulas were not available) and is stated there in full:

1. Weight vector: every floating-point tensor of the state dict, in state-dict
   order, flattened row-major (``include="all"``, the default, keeps biases,
   BatchNorm parameters and BatchNorm running statistics, as the NWS zoo
   exported them). Integer and boolean tensors such as ``num_batches_tracked``
   are skipped. Weights are stored as float32.
2. Windows: ``S`` contiguous windows; window ``k`` holds positions
   ``floor(k n / S)`` to ``floor((k + 1) n / S) - 1``, so lengths differ by at
   most one and a window may span a layer boundary.
3. Bins: ``B`` equal-width bins over ``[-r, r]``; weights beyond the range go
   to the edge bins. By default ``r`` is the 99th percentile of ``|w|`` of the
   model itself; pass one shared ``value_range`` to compare a library.
4. Each row is divided by its sum, so it is a distribution.
5. Our extension, ``windows="layer"``: a window receives the whole-layer
   histogram of every layer (state-dict tensor) it overlaps, weighted by the
   overlap. Permutations move weights only within a tensor, so this variant is
   exactly invariant to them.
"""

from __future__ import annotations

import argparse
import logging
import numbers
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import torch

from wdcore import io

__all__ = [
    "DEFAULT_PERCENTILE",
    "INCLUDE_OPTIONS",
    "WINDOW_OPTIONS",
    "default_value_range",
    "layer_sizes",
    "main_describe",
    "mi_wd",
    "weight_tensors",
    "weight_vector",
    "window_boundaries",
    "window_overlaps",
]

logger = logging.getLogger(__name__)

INCLUDE_OPTIONS = ("all", "parameters", "weights")
WINDOW_OPTIONS = ("contiguous", "layer")
DEFAULT_PERCENTILE = 99.0
MAX_BINS = 32767
# Largest finite float32; weights are stored as float32, so a larger finite
# float64 weight cannot be represented.
FLOAT32_MAX = float(np.finfo(np.float32).max)

# Names of BatchNorm buffers: in a bare state dict, ``include="parameters"``
# recognizes buffers by these last name components.
BUFFER_NAMES = ("running_mean", "running_var", "num_batches_tracked")

# Weights processed per step. A block of 2**18 float32 values (1 MiB) and its
# counter buffer stay in the L2/L3 cache, so the weights are read from memory
# once and the later passes over them are cheap. Each block costs about ten NumPy
# and torch calls; with blocks eight times smaller that per-call overhead
# dominated and two threads mostly waited for each other's GIL
# (benchmarks/bench_descriptors.py: about 15x a numpy.sum pass instead of 5x).
CHUNK_SIZE = 1 << 18

# Consecutive weights often fall into the same bin, and incrementing one counter
# again and again is a chain of dependent memory updates. Counting into N_LANES
# interleaved copies of the counters (weight i into copy i % N_LANES) breaks the
# chain; it is up to 3x faster on narrow weight distributions.
N_LANES = 4

# Below this many weights the work runs in the calling thread; above it, in
# torch.get_num_threads() threads (NumPy and torch release the GIL).
MIN_PARALLEL_SIZE = 1 << 20

# Above this many weights the percentile is found from a candidate interval
# (exact, but avoids partitioning the whole vector).
EXACT_PERCENTILE_LIMIT = 1 << 20


# --------------------------------------------------------------------------
# The weight vector
# --------------------------------------------------------------------------


def _check_option(name: str, value: object, options: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``options``, else raise ValueError."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}={value!r} is not valid; expected one of {options}")
    return value


def _named_tensors(source: object) -> tuple[list[tuple[str, object]], set | None]:
    """Return the (name, tensor) pairs of a model source and its parameter names."""
    if isinstance(source, torch.nn.Module):
        parameter_names = {
            name for name, _ in source.named_parameters(remove_duplicate=False)
        }
        return _fold_pruning_masks(list(source.state_dict().items()), parameter_names)
    if isinstance(source, str | os.PathLike):
        return _fold_pruning_masks(list(io.load_state_dict(source).items()), None)
    if isinstance(source, Mapping):
        pairs = [(str(name), value) for name, value in source.items()]
        return _fold_pruning_masks(pairs, None)
    raise TypeError(
        f"source of type {type(source).__name__!r} is not valid; expected an "
        "nn.Module, a state dict, a path to a .safetensors/.pt/.pth file or a "
        "1-D array of weights"
    )


def _fold_pruning_masks(
    pairs: list[tuple[str, object]], parameter_names: set | None
) -> tuple[list[tuple[str, object]], set | None]:
    """Replace each pruned ``X_orig``/``X_mask`` pair by the weight ``X`` in use.

    ``torch.nn.utils.prune`` stores the unpruned weight as ``X_orig`` and a 0/1
    mask as the buffer ``X_mask``, and the layer computes with their product.
    Describing both would count every weight twice and the mask's zeros and
    ones as weights; the product takes the place of ``X_orig``.
    """
    pruned = set(io.pruned_tensor_names(name for name, _ in pairs))
    if not pruned:
        return pairs, parameter_names
    values = dict(pairs)
    folded = []
    for name, value in pairs:
        if name.endswith("_mask") and name.removesuffix("_mask") in pruned:
            continue
        base = name.removesuffix("_orig")
        if name.endswith("_orig") and base in pruned:
            weight, mask = (
                torch.as_tensor(values[f"{base}{end}"]) for end in ("_orig", "_mask")
            )
            if weight.shape != mask.shape:
                raise ValueError(
                    f"pruning mask {base + '_mask'!r} has shape {tuple(mask.shape)}"
                    f"; expected the shape of {name!r}, {tuple(weight.shape)}"
                )
            value = weight * mask.to(weight.dtype)
            if parameter_names is not None and name in parameter_names:
                parameter_names = parameter_names | {base}
            name = base
        folded.append((name, value))
    return folded, parameter_names


def _is_selected(
    name: str, tensor: torch.Tensor, include: str, parameter_names: set | None
) -> bool:
    """Say whether a floating-point tensor belongs to the ``include`` selection."""
    if include == "weights":
        return tensor.ndim >= 2
    if include == "parameters":
        if parameter_names is not None:
            return name in parameter_names
        return name.rsplit(".", 1)[-1] not in BUFFER_NAMES
    return True


def _is_finite(values: np.ndarray) -> bool:
    """Say whether a 1-D float array holds no NaN or infinity, chunk by chunk."""
    # A sum propagates NaN and infinity, so one cheap reduction per chunk finds
    # them; a chunk is searched only if its sum is not finite (which a huge but
    # finite weight can also cause).
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, len(values), CHUNK_SIZE):
            chunk = values[start : start + CHUNK_SIZE]  # (chunk,)
            if not np.isfinite(np.add.reduce(chunk)) and not np.all(np.isfinite(chunk)):
                return False
    return True


def _too_large_error(
    what: str, n_values: int, value: float, position: str
) -> ValueError:
    """Error for finite weights too large for float32 (``what hold(s)`` them)."""
    return ValueError(
        f"{what} {n_values} finite value(s) too large for float32, the "
        f"first {value!r} at {position}; expected |w| <= {FLOAT32_MAX:.8g}, the "
        "float32 limit (wdcore stores weights as float32)"
    )


def _check_finite_tensor(
    name: str, values: np.ndarray, original: np.ndarray | None = None
) -> None:
    """Raise ValueError naming tensor ``name`` if it has a NaN or infinity.

    ``original`` holds the values before the cast to float32 (when wider), so
    that a finite value too large for float32 is reported as such.
    """
    if _is_finite(values):
        return
    bad = np.flatnonzero(~np.isfinite(values))  # (n_bad,)
    if original is not None:
        too_large = bad[np.isfinite(original[bad])]  # (n_too_large,)
        if len(too_large):
            value = float(original[too_large[0]])
            position = f"flat index {too_large[0]}"
            raise _too_large_error(
                f"tensor {name!r} holds", len(too_large), value, position
            )
    raise ValueError(
        f"tensor {name!r} holds {len(bad)} non-finite value(s), the first "
        f"{float(values[bad[0]])!r} at flat index {bad[0]}; expected finite weights"
    )


def _check_tensor_data(name: str, tensor: torch.Tensor) -> None:
    """Raise ValueError naming ``name`` if a tensor is not dense or has no data."""
    if tensor.is_meta:
        raise ValueError(
            f"tensor {name!r} is on the meta device and holds no values; expected "
            "a model or state dict with real weights (load them first)"
        )
    if tensor.layout != torch.strided:
        raise ValueError(
            f"tensor {name!r} has layout {tensor.layout}; expected a dense "
            "(strided) tensor (convert it with .to_dense())"
        )


def weight_tensors(source: object, *, include: str = "all") -> dict[str, np.ndarray]:
    """Return the flattened float32 tensors that make up the weight vector.

    Parameters
    ----------
    source : torch.nn.Module, Mapping, str or os.PathLike
        A model, a state dict (tensors or arrays) or a checkpoint path
        (``.safetensors``, or ``.pt``/``.pth`` read with ``weights_only=True``).
    include : {"all", "parameters", "weights"}, default="all"
        ``"all"``: every floating-point tensor of the state dict, including
        BatchNorm running statistics (as the NWS zoo exported). ``"parameters"``:
        trainable parameters only (for a state dict, tensors whose name ends in
        ``running_mean``/``running_var`` are dropped). ``"weights"``: only
        tensors with two or more dimensions (kernels and matrices).

    Returns
    -------
    dict of str to ndarray of shape (n_elements,)
        In state-dict order. float16/bfloat16 tensors are converted to float32;
        integer and boolean tensors and empty tensors are skipped. A layer
        pruned with ``torch.nn.utils.prune`` gives the weight it computes with,
        ``X_orig * X_mask``, under the name ``X``; the mask itself is dropped.

    Raises
    ------
    TypeError
        If ``source`` has an unsupported type or a tensor is complex or not a
        tensor at all.
    ValueError
        If ``include`` is unknown, a tensor holds NaN or infinity or a finite
        value beyond the float32 range, is sparse or on the meta device, or no
        floating-point weights are selected.

    Examples
    --------
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    >>> {name: len(values) for name, values in weight_tensors(model).items()}
    {'0.weight': 6, '0.bias': 2, '1.weight': 2, '1.bias': 2, '1.running_mean': 2, \
'1.running_var': 2}
    """
    _check_option("include", include, INCLUDE_OPTIONS)
    pairs, parameter_names = _named_tensors(source)
    selected = {}
    for name, value in pairs:
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)  # same shape, shared memory
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"state dict entry {name!r} is a {type(value).__name__!r}; "
                "expected a tensor or array"
            )
        if value.dtype == torch.bool or not (
            value.is_floating_point() or value.is_complex()
        ):
            continue
        if value.is_complex():
            raise TypeError(
                f"tensor {name!r} has dtype {value.dtype}; expected real "
                "floating-point weights"
            )
        _check_tensor_data(name, value)
        if value.numel() == 0 or not _is_selected(
            name, value, include, parameter_names
        ):
            continue
        flat = value.detach().cpu().reshape(-1)  # (n,)
        weights = flat.to(torch.float32).numpy()  # (n,)
        # Torch casts silently (1e300 becomes inf): keep float64 values to
        # tell an overflow from a genuine infinity.
        wide = flat.numpy() if flat.dtype.itemsize > 4 else None  # (n,)
        _check_finite_tensor(name, weights, wide)
        selected[name] = weights
    if not selected:
        raise ValueError(
            f"source has no floating-point tensors selected by include={include!r}; "
            "expected a model with at least one non-empty float tensor"
        )
    return selected


def weight_vector(source: object, *, include: str = "all") -> np.ndarray:
    """Return all weights of a model as one depth-ordered float32 vector.

    Parameters
    ----------
    source : torch.nn.Module, Mapping, str, os.PathLike or array-like
        A model, a state dict, a checkpoint path (see :func:`weight_tensors`),
        or the weight vector itself: a 1-D array, tensor, list or tuple of real
        numbers, checked and returned as float32 (the array itself if it
        already is float32). Integer data given this way are converted like
        floats, whatever the container; booleans are refused. (Integer tensors
        *inside* a model or state dict are counters such as
        ``num_batches_tracked`` and are skipped.)
    include : {"all", "parameters", "weights"}, default="all"
        Which tensors to keep (see :func:`weight_tensors`); only ``"all"`` is
        accepted for an array source.

    Returns
    -------
    ndarray of shape (n_weights,)
        float32 weights, first layer first, each tensor flattened row-major
        (output unit first).

    Raises
    ------
    TypeError
        If the source or one of its tensors has an unsupported type.
    ValueError
        If weights are non-finite, beyond the float32 range or missing, or
        ``include`` is invalid.

    Examples
    --------
    >>> model = torch.nn.Linear(2, 1)
    >>> weight_vector(model).shape, weight_vector(model).dtype
    ((3,), dtype('float32'))
    """
    source = _as_array(source)
    if isinstance(source, np.ndarray | torch.Tensor):
        weights = _as_weight_matrix(source, include=include)  # (n_models, n_weights)
        if source.ndim != 1:
            raise ValueError(
                f"source has shape {tuple(source.shape)!r}; expected a 1-D array "
                "of weights"
            )
        return weights[0]
    tensors = weight_tensors(source, include=include)
    return np.concatenate(list(tensors.values()))  # (n_weights,)


def layer_sizes(source: object, *, include: str = "all") -> np.ndarray:
    """Return the number of weights each tensor contributes to the vector.

    Parameters
    ----------
    source : torch.nn.Module, Mapping, str or os.PathLike
        Model, state dict or checkpoint path (see :func:`weight_tensors`).
    include : {"all", "parameters", "weights"}, default="all"
        Which tensors to keep.

    Returns
    -------
    ndarray of shape (n_layers,)
        Sizes in depth order; ``np.cumsum`` gives the layer boundaries in the
        vector returned by :func:`weight_vector`.

    Raises
    ------
    TypeError, ValueError
        As :func:`weight_tensors`.

    Examples
    --------
    >>> layer_sizes(torch.nn.Linear(3, 2)).tolist()
    [6, 2]
    """
    tensors = weight_tensors(source, include=include)
    sizes = [len(values) for values in tensors.values()]
    return np.array(sizes, dtype=np.int64)  # (n_layers,)


# --------------------------------------------------------------------------
# Windows, value range and histograms
# --------------------------------------------------------------------------


def window_boundaries(n_weights: int, n_windows: int) -> np.ndarray:
    """Return the start of every window and the end of the last one.

    Window ``k`` covers positions ``floor(k n / S)`` up to, not including,
    ``floor((k + 1) n / S)``, so window lengths differ by at most one.

    Parameters
    ----------
    n_weights : int
        Length ``n`` of the weight vector.
    n_windows : int
        Number of windows ``S``; at most ``n_weights``.

    Returns
    -------
    ndarray of shape (n_windows + 1,)

    Raises
    ------
    TypeError
        If ``n_weights`` or ``n_windows`` is not an int.
    ValueError
        If ``n_windows`` is not positive or exceeds ``n_weights``.

    Examples
    --------
    >>> window_boundaries(10, 3).tolist()
    [0, 3, 6, 10]
    """
    for name, value in (("n_weights", n_weights), ("n_windows", n_windows)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name}={value!r} is not valid; expected an int")
    if n_windows < 1 or n_windows > n_weights:
        raise ValueError(
            f"n_windows={n_windows!r} is not valid for {n_weights} weights; "
            "expected 1 <= n_windows <= n_weights (fewer weights than windows)"
        )
    starts = np.arange(n_windows + 1, dtype=np.int64)  # (n_windows + 1,)
    return starts * n_weights // n_windows  # (n_windows + 1,)


def window_overlaps(layer_sizes: Sequence[int], n_windows: int) -> np.ndarray:
    """Return how many weights of each layer fall into each window.

    Parameters
    ----------
    layer_sizes : sequence of int
        Number of weights of each layer, in depth order.
    n_windows : int
        Number of windows ``S``.

    Returns
    -------
    ndarray of shape (n_windows, n_layers)
        Integer overlaps; row ``k`` sums to the length of window ``k`` and
        column ``t`` sums to the size of layer ``t``.

    Raises
    ------
    ValueError
        If a layer size is not positive or there are fewer weights than
        windows.

    Examples
    --------
    >>> window_overlaps([4, 2], 2).tolist()
    [[3, 0], [1, 2]]
    """
    sizes = _check_layer_sizes(layer_sizes, None)  # (n_layers,)
    windows = window_boundaries(int(sizes.sum()), n_windows)  # (n_windows + 1,)
    layers = np.concatenate([[0], np.cumsum(sizes)])  # (n_layers + 1,)
    starts = np.maximum(windows[:-1, None], layers[None, :-1])  # (S, n_layers)
    ends = np.minimum(windows[1:, None], layers[None, 1:])  # (S, n_layers)
    return np.maximum(ends - starts, 0)  # (S, n_layers)


def _check_layer_sizes(layer_sizes: object, n_weights: int | None) -> np.ndarray:
    """Return ``layer_sizes`` as positive int64 values summing to ``n_weights``."""
    sizes = np.asarray(layer_sizes)  # (n_layers,)
    if (
        sizes.ndim != 1
        or sizes.size == 0
        or not np.issubdtype(sizes.dtype, np.integer)
        or np.any(sizes < 1)
    ):
        raise ValueError(
            f"layer_sizes={layer_sizes!r} is not valid; expected a non-empty 1-D "
            "sequence of positive integers"
        )
    if n_weights is not None and int(sizes.sum()) != n_weights:
        raise ValueError(
            f"layer_sizes sum to {int(sizes.sum())}, but the weight vector has "
            f"{n_weights} weights; expected them to be equal"
        )
    return sizes.astype(np.int64)  # (n_layers,)


def _bracket(
    weights: np.ndarray, low: np.float32, high: np.float32, starts: Sequence[int]
) -> tuple[int, list[np.ndarray]]:
    """Count ``|w| < low`` and collect ``low <= |w| <= high`` over some chunks."""
    n_below, inside = 0, []
    buffer = np.empty(CHUNK_SIZE, dtype=weights.dtype)  # (CHUNK_SIZE,)
    for start in starts:
        size = min(CHUNK_SIZE, len(weights) - start)
        chunk = weights[start : start + size]  # (size,)
        magnitudes = np.abs(chunk, out=buffer[:size])  # (size,)
        above = magnitudes[magnitudes >= low]  # (~2 % of the chunk,)
        n_below += len(magnitudes) - len(above)
        inside.append(above[above <= high])
    return n_below, inside


def _abs_percentile(weights: np.ndarray, percentile: float) -> float:
    """Return ``np.percentile(abs(weights), percentile)`` (linear method), fast."""
    n_weights = len(weights)
    if n_weights <= EXACT_PERCENTILE_LIMIT:
        return float(np.percentile(np.abs(weights), percentile))
    position = percentile / 100 * (n_weights - 1)
    rank = int(np.floor(position))
    upper_rank = min(rank + 1, n_weights - 1)

    # A strided sample brackets the two order statistics needed, and only the
    # weights inside the bracket are sorted. The result is exact either way (a
    # failed bracket falls back to the full percentile); only speed depends on it.
    sample = np.abs(weights[:: n_weights // 65536])  # (~65536,)
    quantiles = [max(percentile - 0.5, 0), min(percentile + 0.5, 100)]
    low, high = np.percentile(sample, quantiles).astype(np.float32)
    starts = list(range(0, n_weights, CHUNK_SIZE))
    results = _run_in_threads(
        partial(_bracket, weights, low, high), _split(starts, _n_workers(n_weights))
    )
    n_below = sum(count for count, _ in results)
    parts = [part for _, chunk_parts in results for part in chunk_parts]
    inside = np.sort(np.concatenate(parts))  # (n_inside,)
    if not n_below <= rank <= upper_rank < n_below + len(inside):
        return float(np.percentile(np.abs(weights), percentile))
    lower_value = float(inside[rank - n_below])
    upper_value = float(inside[upper_rank - n_below])
    return lower_value + (position - rank) * (upper_value - lower_value)


def default_value_range(
    weights: np.ndarray | torch.Tensor, *, percentile: float = DEFAULT_PERCENTILE
) -> np.ndarray | float:
    """Return the default bin range ``r``: a percentile of the absolute weights.

    Parameters
    ----------
    weights : array-like of shape (n_weights,) or (n_models, n_weights)
        One weight vector or one per row: an array or tensor of real numbers,
        or a (nested) list of them.
    percentile : float, default=99.0
        Percentile of ``|w|`` (NumPy's linear interpolation). If it is zero
        (more than this share of the weights are exactly zero), the largest
        ``|w|`` is used instead, and 1.0 for an all-zero vector, so ``r`` is
        always positive.

    Returns
    -------
    float or ndarray of shape (n_models,)

    Raises
    ------
    ValueError
        If ``percentile`` is outside (0, 100] or the weights are invalid.

    Examples
    --------
    >>> default_value_range(np.array([0.5, -1.0, 2.0, -4.0]), percentile=50)
    1.5
    """
    if not isinstance(percentile, numbers.Real) or not 0 < percentile <= 100:
        raise ValueError(
            f"percentile={percentile!r} is not valid; expected a number in (0, 100]"
        )
    matrix = _as_weight_matrix(weights)  # (n_models, n_weights)
    ranges = np.empty(len(matrix))  # (n_models,)
    for row, values in enumerate(matrix):
        radius = _abs_percentile(values, float(percentile))
        if radius <= 0:
            radius = float(np.abs(values).max()) or 1.0
        ranges[row] = radius
    if np.ndim(weights) == 1:
        return float(ranges[0])
    return ranges


def _as_array(source: object) -> object:
    """Turn a list or tuple of numbers into a float64 array; pass others through."""
    if not isinstance(source, list | tuple):
        return source
    try:
        array = np.asarray(source)  # (n_weights,) or (n_models, n_weights)
    except ValueError as error:
        raise TypeError(
            f"source is a {type(source).__name__} that is not a rectangular array "
            f"({error}); expected a sequence of numbers (one weight vector) or of "
            "equal-length sequences (one per model)"
        ) from error
    if array.dtype.kind not in "iuf":
        raise TypeError(
            f"source is a {type(source).__name__} of non-numeric values (dtype "
            f"{array.dtype}); expected real numbers (weights)"
        )
    return array.astype(np.float64)  # (n_weights,) or (n_models, n_weights)


def _as_weight_matrix(
    weights: np.ndarray | torch.Tensor,
    *,
    include: str = "all",
    check_finite: bool = True,
) -> np.ndarray:
    """Check a 1-D or 2-D float array; return it as (n_models, n) float32 NumPy."""
    if include != "all":
        raise ValueError(
            f"include={include!r} applies to models and state dicts; expected "
            "'all' for an array of weights"
        )
    weights = _as_array(weights)
    if isinstance(weights, torch.Tensor):
        _check_tensor_data("weights", weights)
        weights = weights.detach().cpu()
        if weights.dtype == torch.bfloat16:  # NumPy has no bfloat16
            weights = weights.to(torch.float32)
        if weights.dtype != torch.bool and not weights.is_complex():
            weights = weights.numpy()  # (n_models?, n_weights)
    if not isinstance(weights, np.ndarray) or weights.dtype.kind not in "iuf":
        kind = getattr(weights, "dtype", type(weights).__name__)
        raise TypeError(
            f"weights of type {kind} are not valid; expected a NumPy array or "
            "torch tensor of real numbers, or a list of numbers"
        )
    if weights.ndim not in (1, 2) or weights.size == 0:
        raise ValueError(
            f"weights have shape {weights.shape!r}; expected a non-empty array of "
            "shape (n_weights,) or (n_models, n_weights)"
        )
    with np.errstate(over="ignore"):  # overflows are reported below
        matrix = np.ascontiguousarray(weights, dtype=np.float32)  # (n_models?, n)
    matrix = matrix.reshape(-1, weights.shape[-1])  # (n_models, n_weights)
    if weights.dtype.kind == "f" and weights.dtype.itemsize > 4:
        _check_float32_overflow(weights.reshape(matrix.shape), matrix)
    if check_finite:
        _check_finite_matrix(matrix)
    return matrix


def _check_float32_overflow(original: np.ndarray, matrix: np.ndarray) -> None:
    """Raise ValueError where a finite ``original`` value became inf in float32."""
    if _is_finite(matrix.reshape(-1)):
        return
    overflow = np.isinf(matrix) & np.isfinite(original)  # (n_models, n_weights)
    positions = np.argwhere(overflow)  # (n_too_large, 2)
    if len(positions):
        row, column = positions[0]
        value = float(original[row, column])
        position = f"(model {row}, index {column})"
        raise _too_large_error("weights hold", len(positions), value, position)


def _check_size(size: object) -> tuple[int, int]:
    """Return ``size`` as a pair of positive ints ``(S, B)`` with ``B <= MAX_BINS``."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (size, size)
    valid = (
        isinstance(size, Sequence)
        and len(size) == 2
        and all(
            isinstance(value, numbers.Integral) and not isinstance(value, bool)
            for value in size
        )
    )
    if not valid or not (size[0] >= 1 and 1 <= size[1] <= MAX_BINS):
        raise ValueError(
            f"size={size!r} is not valid; expected (n_windows, n_bins), two "
            f"positive integers with n_bins <= {MAX_BINS}"
        )
    return int(size[0]), int(size[1])


def _check_value_range(
    value_range: object, matrix: np.ndarray, n_bins: int
) -> np.ndarray:
    """Return one valid range per model, from a number, array or None."""
    n_models = matrix.shape[0]
    if value_range is None:
        ranges = np.atleast_1d(default_value_range(matrix))  # (n_models,)
        bad = np.flatnonzero(~_is_valid_range(ranges, n_bins))  # (n_bad,)
        if len(bad):
            raise ValueError(
                f"the default value range r={float(ranges[bad[0]])!r} of model "
                f"{bad[0]} "
                f"(the {DEFAULT_PERCENTILE:g}th percentile of |w|) is not valid; "
                f"expected {_range_bounds(n_bins)}: pass value_range=... or "
                "rescale the weights"
            )
        return ranges
    ranges = _range_numbers(value_range).reshape(-1)  # (n_ranges,)
    if np.ndim(value_range) > 1 or len(ranges) not in (1, n_models):
        raise ValueError(
            f"value_range={value_range!r} is not valid; expected a positive finite "
            f"number (bins span [-r, r]) or {n_models} of them, one per model"
        )
    bad = np.flatnonzero(~_is_valid_range(ranges, n_bins))  # (n_bad,)
    if len(bad):
        which = f" (r={float(ranges[bad[0]])!r})" if np.ndim(value_range) else ""
        raise ValueError(
            f"value_range={value_range!r} is not valid{which}; expected "
            f"{_range_bounds(n_bins)} (bins span [-r, r])"
        )
    return np.broadcast_to(ranges, (n_models,)).copy()  # (n_models,)


def _range_numbers(value_range: object) -> np.ndarray:
    """``value_range`` as float64, refusing booleans, text and complex numbers."""
    wrong_type = TypeError(
        f"value_range={value_range!r} is not valid; expected None, a positive "
        "number or one positive number per model"
    )
    if isinstance(value_range, bool | str | bytes) or not isinstance(
        value_range, numbers.Real | np.ndarray | Sequence | torch.Tensor
    ):
        raise wrong_type
    if isinstance(value_range, torch.Tensor):
        if value_range.dtype == torch.bool or value_range.is_complex():
            raise wrong_type
        return value_range.detach().cpu().double().numpy()
    try:
        array = np.asarray(value_range)
    except (TypeError, ValueError) as error:  # ragged nesting, say
        raise wrong_type from error
    if array.dtype.kind in "iuf":
        return array.astype(np.float64)
    if array.dtype.kind == "O":  # Python ints beyond int64, or a mix of types
        if any(isinstance(item, bool | str | bytes) for item in array.flat):
            raise wrong_type
        try:
            return array.astype(np.float64)
        except OverflowError:  # an int beyond float64: refused below as too large
            return np.full(array.shape, np.inf)
        except (TypeError, ValueError) as error:
            raise wrong_type from error
    raise wrong_type


def _is_valid_range(ranges: np.ndarray, n_bins: int) -> np.ndarray:
    """Say which ranges are float32 numbers whose bin width is a normal float32."""
    float32 = np.finfo(np.float32)
    with np.errstate(invalid="ignore"):
        widths = 2 * ranges / n_bins  # (n_ranges,)
        return (
            np.isfinite(ranges)
            & (ranges <= float(float32.max))
            & (widths >= float(float32.smallest_normal))
        )


def _range_bounds(n_bins: int) -> str:
    """Describe the valid ranges for ``n_bins`` bins in words."""
    float32 = np.finfo(np.float32)
    low = float(float32.smallest_normal) * n_bins / 2
    return (
        f"a finite number r with {low:.3g} <= r <= {float(float32.max):.3g}, so "
        f"that r and the bin width 2r/{n_bins} are normal float32 numbers"
    )


def _n_workers(n_elements: int) -> int:
    """Threads worth using for ``n_elements`` weights (one below ~1M weights)."""
    if n_elements < MIN_PARALLEL_SIZE:
        return 1
    return max(1, min(os.cpu_count() or 1, torch.get_num_threads()))


def _run_in_threads(function: Callable, parts: list) -> list:
    """Call ``function(part)`` for every part, in threads when there are several."""
    if len(parts) == 1:
        return [function(parts[0])]
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        return list(pool.map(function, parts))


def _split(items: Sequence, n_parts: int) -> list:
    """Split ``items`` into at most ``n_parts`` contiguous, non-empty runs."""
    n_runs = min(n_parts, len(items))
    edges = np.linspace(0, len(items), n_runs + 1).astype(int)  # (n_runs + 1,)
    return [
        items[start:stop] for start, stop in zip(edges[:-1], edges[1:], strict=True)
    ]


def _check_finite_matrix(matrix: np.ndarray, row: int = 0, column: int = 0) -> None:
    """Raise ValueError at the first NaN or infinity of a (rows, n) block."""
    if _is_finite(matrix.reshape(-1)):
        return
    bad_row, bad_column = np.argwhere(~np.isfinite(matrix))[0]
    raise ValueError(
        f"weights hold a non-finite value {float(matrix[bad_row, bad_column])!r} at "
        f"(model {row + bad_row}, index {column + bad_column}); expected finite "
        "weights"
    )


def _plan_chunks(boundaries: np.ndarray, chunk_size: int) -> list[tuple[int, ...]]:
    """Cut the columns into chunks ``(start, stop, first_segment, stop_segment)``.

    A segment of ``chunk_size`` or more columns is cut into pieces of its own;
    shorter segments are grouped, whole, into chunks of at most ``chunk_size``.
    """
    chunks, segment, n_segments = [], 0, len(boundaries) - 1
    while segment < n_segments:
        start, stop = int(boundaries[segment]), int(boundaries[segment + 1])
        if stop - start >= chunk_size:
            for piece in range(start, stop, chunk_size):
                end = min(piece + chunk_size, stop)
                chunks.append((piece, end, segment, segment + 1))
            segment += 1
            continue
        last = segment + 1
        while last < n_segments and boundaries[last + 1] - start <= chunk_size:
            last += 1
        chunks.append((start, int(boundaries[last]), segment, last))
        segment = last
    return chunks


def _counter_dtype(n_counters: int) -> type:
    """Smallest integer type holding counter numbers below ``n_counters``."""
    if n_counters <= 256:
        return np.uint8
    return np.int16 if n_counters <= 32768 else np.int32


@lru_cache(maxsize=16)
def _lane_offsets(n_rows: int, width: int, n_bins: int, dtype: type) -> np.ndarray:
    """Counter of every weight of a one-segment block, less its bin (cached).

    Counters are numbered ``((segment * N_LANES + lane) * n_rows + row) * n_bins
    + bin``, where ``lane`` is the column modulo :data:`N_LANES`; this array
    holds the part for ``segment = 0``.
    """
    rows = np.arange(n_rows)[:, None]  # (n_rows, 1)
    pattern = ((np.arange(N_LANES) * n_rows + rows) * n_bins).astype(dtype)  # (r, 4)
    offsets = np.tile(pattern, -(-width // N_LANES))[:, :width].copy()  # (r, width)
    offsets.flags.writeable = False  # shared between calls and threads
    return offsets


def _block_offsets(
    chunk: tuple[int, int, int, int],
    boundaries: np.ndarray,
    n_rows: int,
    width: int,
    n_bins: int,
) -> np.ndarray:
    """Counter of every weight of a block of ``chunk``, less its bin.

    The counters use the smallest integer type that holds them, and ``width``
    is the widest chunk of the call (so all blocks share one lane pattern).
    """
    start, stop, first, last = chunk
    dtype = _counter_dtype(N_LANES * n_rows * (last - first) * n_bins)
    lane_offsets = _lane_offsets(n_rows, width, n_bins, dtype)[:, : stop - start]
    if last - first == 1:
        return lane_offsets  # (n_rows, width)
    stride = N_LANES * n_rows * n_bins
    starts = (np.arange(last - first) * stride).astype(dtype)  # (n_segments,)
    lengths = np.diff(boundaries[first : last + 1])  # (n_segments,)
    offsets = lane_offsets + np.repeat(starts, lengths)  # (n_rows, width)
    offsets.flags.writeable = False  # shared between threads
    return offsets


def _count_block(
    block: np.ndarray,
    scales: np.ndarray,
    n_bins: int,
    offsets: np.ndarray,
    n_segments: int,
    buffers: dict,
) -> np.ndarray | None:
    """Return the (rows, segments, bins) counts of a block; None if not finite.

    ``offsets`` holds the counters of a block of ``offsets.shape[0]`` rows
    (:func:`_block_offsets`); ``block`` may hold fewer rows (the last block).
    """
    n_rows, width = block.shape
    n_block_rows = offsets.shape[0]
    values = buffers["values"][: n_rows * width].reshape(n_rows, width)  # (r, w)
    counters = buffers[offsets.dtype][: n_rows * width]  # (n_rows * width,)
    counters = counters.reshape(n_rows, width)  # (n_rows, width)

    # Separate multiply and add (no fused multiply-add) round a weight the same
    # way wherever it sits; the layer-exact invariance relies on it.
    np.multiply(block, scales, out=values)
    np.add(values, np.float32(n_bins / 2), out=values)

    # A sum propagates NaN and infinity: one cheap pass detects them, and only
    # then is the block searched (huge finite weights may overflow harmlessly).
    if not np.isfinite(np.add.reduce(values, axis=None)) and not np.all(
        np.isfinite(block)
    ):
        return None
    np.clip(values, 0, n_bins - 1, out=values)
    np.copyto(counters, values, casting="unsafe")
    np.add(counters, offsets[:n_rows], out=counters)
    n_counters = n_segments * N_LANES * n_block_rows * n_bins
    counts = torch.bincount(
        torch.from_numpy(counters.reshape(-1)), minlength=n_counters
    ).numpy()  # (n_counters,)
    counts = counts.reshape(n_segments, N_LANES, n_block_rows, n_bins)  # (s, 4, r, B)
    return counts[:, :, :n_rows].sum(axis=1).transpose(1, 0, 2)  # (rows, segs, B)


def _histogram_blocks(
    matrix: np.ndarray,
    scales: np.ndarray,
    n_bins: int,
    plan: list,
    counts: np.ndarray | None,
    blocks: Sequence[tuple[int, int, int]],
) -> np.ndarray:
    """Worker: add the counts of ``blocks`` (row start, row stop, chunk) to counts.

    With ``counts=None`` the worker counts into a private array of its own.
    """
    if counts is None:
        n_segments = plan[-1][0][3]
        shape = (matrix.shape[0], n_segments, n_bins)
        counts = np.zeros(shape, dtype=np.int64)  # (n_models, n_segments, n_bins)
    size = max(
        (plan[chunk][0][1] - plan[chunk][0][0]) * (row_stop - row)
        for row, row_stop, chunk in blocks
    )
    buffers = {"values": np.empty(size, dtype=np.float32)}  # (size,)
    for _, offsets in plan:
        if offsets.dtype not in buffers:
            buffers[offsets.dtype] = np.empty(size, dtype=offsets.dtype)  # (size,)
    with np.errstate(over="ignore", invalid="ignore"):
        for row, row_stop, chunk in blocks:
            (start, stop, first, last), offsets = plan[chunk]
            block = matrix[row:row_stop, start:stop]  # (rows, width)
            result = _count_block(
                block, scales[row:row_stop], n_bins, offsets, last - first, buffers
            )
            if result is None:
                _check_finite_matrix(block, row, start)
            counts[row:row_stop, first:last] += result
    return counts


def _segment_histograms(
    matrix: np.ndarray,
    ranges: np.ndarray,
    n_bins: int,
    boundaries: np.ndarray,
    *,
    chunk_size: int = CHUNK_SIZE,
    n_workers: int | None = None,
) -> np.ndarray:
    """Return the bin counts of every segment ``[boundaries[i], boundaries[i+1])``.

    ``matrix`` is (n_models, n_weights) float32; the result has shape
    (n_models, n_segments, n_bins).
    """
    n_models, n_weights = matrix.shape
    scales = (n_bins / (2 * ranges)).astype(np.float32)[:, None]  # (n_models, 1)
    chunks = _plan_chunks(boundaries, chunk_size)
    # Several short rows share a block, as long as their counters stay few.
    n_counters = N_LANES * (len(boundaries) - 1) * n_bins
    rows_per_block = max(1, min(chunk_size // n_weights, chunk_size // n_counters))
    rows_per_block = min(rows_per_block, n_models) if len(chunks) == 1 else 1
    width = max(stop - start for start, stop, _, _ in chunks)
    plan = [
        (chunk, _block_offsets(chunk, boundaries, rows_per_block, width, n_bins))
        for chunk in chunks
    ]
    row_starts = list(range(0, n_models, rows_per_block))
    n_workers = n_workers or _n_workers(matrix.size)
    shape = (n_models, len(boundaries) - 1, n_bins)
    counts = np.zeros(shape, dtype=np.int64)  # (n_models, n_segments, n_bins)

    # With enough rows, each worker owns whole rows and writes into one shared
    # array; a few long rows are split by chunk, each worker counting apart.
    if len(row_starts) >= n_workers:
        parts = [
            [
                (row, min(row + rows_per_block, n_models), chunk)
                for row in group
                for chunk in range(len(chunks))
            ]
            for group in _split(row_starts, n_workers)
        ]
        work = partial(_histogram_blocks, matrix, scales, n_bins, plan, counts)
        _run_in_threads(work, parts)
        return counts  # (n_models, n_segments, n_bins)
    blocks = [
        (row, min(row + rows_per_block, n_models), chunk)
        for row in row_starts
        for chunk in range(len(chunks))
    ]
    work = partial(_histogram_blocks, matrix, scales, n_bins, plan, None)
    partial_counts = _run_in_threads(work, _split(blocks, n_workers))
    return np.sum(partial_counts, axis=0)  # (n_models, n_segments, n_bins)


def _source_matrix(
    source: object, include: str, layer_sizes: object
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return the (n_models, n_weights) float32 weights and the layer sizes."""
    if isinstance(source, np.ndarray | torch.Tensor):
        matrix = _as_weight_matrix(source, include=include, check_finite=False)
        if layer_sizes is None:
            return matrix, None
        return matrix, _check_layer_sizes(layer_sizes, matrix.shape[1])
    if layer_sizes is not None:
        raise ValueError(
            f"layer_sizes={layer_sizes!r} was given with a model source; expected "
            "layer_sizes only for an array source (a model supplies its own)"
        )
    tensors = weight_tensors(source, include=include)
    vector = np.concatenate(list(tensors.values()))  # (n_weights,)
    sizes = np.array([len(values) for values in tensors.values()])  # (n_layers,)
    return vector[None], sizes  # (1, n_weights), (n_layers,)


# --------------------------------------------------------------------------
# The descriptor
# --------------------------------------------------------------------------


def mi_wd(
    source: object,
    *,
    size: tuple[int, int] | int = (32, 32),
    value_range: float | np.ndarray | None = None,
    windows: str = "contiguous",
    include: str = "all",
    layer_sizes: Sequence[int] | None = None,
) -> np.ndarray:
    """Return the MI-WD descriptor: a histogram of the weights per depth window.

    Parameters
    ----------
    source : torch.nn.Module, Mapping, str, os.PathLike or array-like
        A model, state dict or checkpoint path (see :func:`weight_vector`), a
        1-D weight vector (array, tensor or list of real numbers; integers are
        converted like floats), or a 2-D array of shape ``(n_models,
        n_weights)`` holding one weight vector per row (same architecture),
        which is described in one vectorized call.
    size : (int, int) or int, default=(32, 32)
        ``(S, B)``: number of depth windows and of bins; an int means square.
    value_range : float, array-like of shape (n_models,) or None, default=None
        Bins span ``[-r, r]`` and weights beyond fall into the edge bins. None
        uses :func:`default_value_range` of each model (99th percentile of
        ``|w|``); pass one shared ``r`` so a library shares bins.
    windows : {"contiguous", "layer"}, default="contiguous"
        ``"contiguous"``: each window histograms its own weights. ``"layer"``:
        each window receives the normalized whole-layer histogram of every
        layer it overlaps, weighted by the overlap; exactly invariant to
        permutations that move weights within a tensor.
    include : {"all", "parameters", "weights"}, default="all"
        Which tensors of a model make up the weight vector.
    layer_sizes : sequence of int, optional
        Tensor sizes of an array source (see :func:`layer_sizes`); required
        for ``windows="layer"`` with an array, refused with a model.

    Returns
    -------
    ndarray of shape (S, B) or (n_models, S, B)
        float64; rows run from shallow (row 0) to deep and each row sums to 1.

    Raises
    ------
    TypeError
        If ``source`` or ``value_range`` has an unsupported type.
    ValueError
        If ``size``, ``value_range``, ``windows``, ``include`` or
        ``layer_sizes`` is invalid, weights are non-finite, beyond the float32
        range or missing, or there are fewer weights than windows. A range
        ``r`` must be a finite float32 number whose bin width ``2 r / B`` is a
        normal float32 (not so small that the bin scale overflows); this also
        applies to the default range.

    Notes
    -----
    Bin ``j`` of a model with range ``r`` holds weights ``w`` with
    ``floor(w B / (2 r) + B / 2) = j``, evaluated in float32 and clamped to
    ``[0, B - 1]``. Chapter 3 of the book derives the recipe.

    Weights are read once, in cache-sized chunks, by up to
    ``torch.get_num_threads()`` threads; ``benchmarks/bench_descriptors.py``
    compares a 25-million-weight descriptor with one ``numpy.sum`` pass. Known
    limitations: float64 weights are rounded to float32 first (a finite weight
    beyond the float32 range, ``|w| > 3.4e38``, raises ValueError); the default
    per-model range costs an exact percentile per model (pass a shared
    ``value_range`` for a library, which is also what makes bins comparable);
    the layer-exact variant treats every state-dict tensor as one layer.

    Examples
    --------
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 4))
    >>> descriptor = mi_wd(model, size=(4, 8))
    >>> descriptor.shape, bool(np.allclose(descriptor.sum(axis=1), 1))
    ((4, 8), True)
    """
    n_windows, n_bins = _check_size(size)
    _check_option("windows", windows, WINDOW_OPTIONS)
    source = _as_array(source)
    matrix, sizes = _source_matrix(source, include, layer_sizes)  # (n_models, n)
    n_models, n_weights = matrix.shape
    if n_weights < n_windows:
        raise ValueError(
            f"size={size!r} asks for {n_windows} windows but the model has only "
            f"{n_weights} weights; expected at least one weight per window"
        )
    boundaries = window_boundaries(n_weights, n_windows)  # (S + 1,)
    ranges = _check_value_range(value_range, matrix, n_bins)  # (n_models,)

    if windows == "contiguous":
        counts = _segment_histograms(matrix, ranges, n_bins, boundaries)
        histograms = counts.astype(np.float64)  # (n_models, S, B)
    else:
        if sizes is None:
            raise ValueError(
                "windows='layer' needs the layer sizes of an array source; "
                "expected layer_sizes=... (see wdcore.descriptors.layer_sizes)"
            )
        layers = np.concatenate([[0], np.cumsum(sizes)])  # (n_layers + 1,)
        counts = _segment_histograms(matrix, ranges, n_bins, layers)  # (m, L, B)
        weights = window_overlaps(sizes, n_windows) / sizes  # (S, n_layers)
        histograms = np.einsum("sl,mlb->msb", weights, counts)  # (n_models, S, B)

    descriptors = histograms / histograms.sum(axis=2, keepdims=True)  # (m, S, B)
    if isinstance(source, np.ndarray | torch.Tensor) and source.ndim == 2:
        return descriptors
    return descriptors[0]


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def _parse_size(text: str) -> tuple[int, int]:
    """Parse ``"32x32"`` or ``"32"`` (meaning 32x32) into ``(S, B)`` for argparse."""
    match = re.fullmatch(r"\s*([-+]?\d+)\s*(?:x\s*([-+]?\d+)\s*)?", text.lower())
    values = [int(value) for value in match.groups() if value] if match else []
    if not values or values[0] < 1 or not 1 <= values[-1] <= MAX_BINS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not valid; expected SxB, S >= 1 windows by 1 <= B <= "
            f"{MAX_BINS} bins, such as 32x32 (a single number N means NxN)"
        )
    return values[0], values[-1]


def _attach_negative_sizes(argv: Sequence[str]) -> list[str]:
    """Join ``--size -4x4`` into ``--size=-4x4``.

    Otherwise argparse takes ``-4x4`` for an option and reports a missing
    value, instead of the size check saying what a size must be.
    """
    joined, index = [], 0
    while index < len(argv):
        token = argv[index]
        following = argv[index + 1] if index + 1 < len(argv) else ""
        if token == "--size" and re.match(r"-\d", following):
            joined.append(f"--size={following}")
            index += 2
        else:
            joined.append(token)
            index += 1
    return joined


def _describe_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``python -m wdcore describe``."""
    parser = argparse.ArgumentParser(
        prog="python -m wdcore describe",
        description="Write the MI-WD descriptor of a PyTorch checkpoint and say, "
        "in one line, what was written where.",
    )
    parser.add_argument(
        "checkpoint",
        help=".safetensors or .pt/.pth file holding a state dict (save "
        "model.state_dict(), not the whole model)",
    )
    parser.add_argument(
        "--size",
        type=_parse_size,
        default=(32, 32),
        metavar="SxB",
        help="S windows (rows, shallow to deep) by B bins, e.g. 8x16; a single "
        "number N means NxN (default: 32x32)",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="output file: .npy (array) or .png (image); missing folders on its "
        "path are created",
    )
    _add_descriptor_options(parser)
    return parser


def _add_descriptor_options(parser: argparse.ArgumentParser) -> None:
    """Add the options that choose the range, the windows and the tensors."""
    parser.add_argument(
        "--range",
        type=float,
        default=None,
        dest="value_range",
        metavar="R",
        help="bins span [-R, R] (default: 99th percentile of |w|)",
    )
    parser.add_argument(
        "--windows",
        choices=WINDOW_OPTIONS,
        default="contiguous",
        help="contiguous windows (default) or layer-exact, permutation-invariant",
    )
    parser.add_argument(
        "--include",
        choices=INCLUDE_OPTIONS,
        default="all",
        help="tensors in the weight vector: all float tensors incl. BatchNorm "
        "statistics (default), parameters only, or weights with ndim >= 2",
    )


def _write_png(descriptor: np.ndarray, value_range: float, title: str, out: Path):
    """Save a descriptor image without touching pyplot's global state."""
    from matplotlib.figure import Figure

    from wdcore.plotting import plot_descriptor

    figure = Figure(figsize=(4.5, 4), layout="constrained")
    plot_descriptor(
        descriptor, ax=figure.add_subplot(), value_range=value_range, colorbar=True
    )
    figure.axes[0].set_title(title, fontsize=9)
    figure.savefig(out, dpi=150)


def _prepare_output(out: Path) -> bool:
    """Check ``--out`` before any work is done; say if folders must be created.

    Nothing is created yet. Raises ValueError with a message for the command
    line.
    """
    if out.suffix.lower() not in (".npy", ".png"):
        raise ValueError(f"--out {str(out)!r}: expected a .npy or .png file")
    try:
        if out.is_dir():
            raise ValueError(f"--out {str(out)!r} is a directory; expected a file name")
        missing = [folder for folder in out.parents if not folder.exists()]
    except OSError as error:
        raise ValueError(f"--out {str(out)!r} cannot be checked ({error})") from error
    existing = missing[-1].parent if missing else out.parent
    if not existing.is_dir():
        raise ValueError(
            f"--out {str(out)!r}: {str(existing)!r} is not a directory; expected "
            "the output's parent to be a (possibly new) directory"
        )

    # Creating a scratch file is the one reliable test: permissions, read-only
    # mounts and pseudo file systems such as /proc all show up here.
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(
            f"--out {str(out)!r}: cannot create files in {str(existing)!r} "
            f"({error.strerror or type(error).__name__}); expected a writable "
            "directory"
        ) from error
    return bool(missing)


def _write_descriptor(
    descriptor: np.ndarray, value_range: float, title: str, out: Path
) -> None:
    """Create the folders of ``out`` and save the descriptor as .npy or .png.

    Raises ValueError naming ``--out`` and the path when the file system refuses.
    """
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        folder = str(error.filename or out.parent)
        raise ValueError(
            f"--out {str(out)!r}: cannot create the folder {folder!r} "
            f"({error.strerror or error}); expected a writable directory"
        ) from error
    try:
        if out.suffix.lower() == ".npy":
            # An open file, because np.save appends ".npy" to a name ending ".NPY".
            with open(out, "wb") as handle:
                np.save(handle, descriptor)
        else:
            _write_png(descriptor, value_range, title, out)
    except OSError as error:
        raise ValueError(f"--out {str(out)!r} could not be written: {error}") from error


def _describe_checkpoint(arguments: argparse.Namespace) -> tuple[np.ndarray, float]:
    """The descriptor the command line asks for, and the value range it used."""
    tensors = weight_tensors(arguments.checkpoint, include=arguments.include)
    weights = np.concatenate(list(tensors.values()))  # (n_weights,)
    sizes = [len(values) for values in tensors.values()]
    value_range = arguments.value_range
    if value_range is None:
        value_range = default_value_range(weights)
    descriptor = mi_wd(
        weights,
        size=arguments.size,
        value_range=value_range,
        windows=arguments.windows,
        layer_sizes=sizes,
    )  # (S, B)
    return descriptor, value_range


def main_describe(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m wdcore describe CHECKPOINT --size SxB --out FILE``.

    On success one line on standard output says what was written where (and
    which folders were created for it). Missing folders on the path of
    ``--out`` are created, once the descriptor has been computed. A negative
    size such as ``--size -4x4`` is reported by the size check like any other
    invalid size.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments after ``describe``; ``sys.argv[2:]`` when omitted.

    Returns
    -------
    int
        0 on success, 1 if the checkpoint, the options or the output path are
        rejected or the output cannot be written (the reason is written to
        standard error as one ``error:`` line). The output path is checked
        before the descriptor is computed.

    Raises
    ------
    SystemExit
        From argparse: with status 2 (after a usage message on standard error)
        for a usage error such as a missing ``--out`` or a bad ``--size``, and
        with status 0 after ``--help``.

    Examples
    --------
    >>> import tempfile
    >>> directory = Path(tempfile.mkdtemp())
    >>> _ = io.save_state_dict(torch.nn.Linear(8, 8).state_dict(), directory / "m.pt")
    >>> main_describe([str(directory / "m.pt"), "--size", "4x8",
    ...                "--out", str(directory / "d.npy")])  # doctest: +ELLIPSIS
    wrote the 4x8 descriptor of .../m.pt to .../d.npy (bins span [-..., ...])
    0
    >>> np.load(directory / "d.npy").shape
    (4, 8)
    """
    argv = sys.argv[2:] if argv is None else argv
    arguments = _describe_parser().parse_args(_attach_negative_sizes(argv))
    out = Path(arguments.out)
    try:
        creates_folders = _prepare_output(out)
        descriptor, value_range = _describe_checkpoint(arguments)
        title = Path(arguments.checkpoint).name
        _write_descriptor(descriptor, value_range, title, out)
    except (OSError, TypeError, ValueError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 1
    n_windows, n_bins = descriptor.shape
    created = f"; created the folder {str(out.parent)!r} for it"
    sys.stdout.write(
        f"wrote the {n_windows}x{n_bins} descriptor of {arguments.checkpoint} to "
        f"{out} (bins span [-{value_range:.3g}, {value_range:.3g}])"
        f"{created if creates_folders else ''}\n"
    )
    return 0
