"""Tests of the MI-WD descriptor, the weight vector and the describe CLI."""

from __future__ import annotations

import errno
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from wdcore import io
from wdcore.architectures import build_cnn
from wdcore.descriptors import (
    CHUNK_SIZE,
    EXACT_PERCENTILE_LIMIT,
    _segment_histograms,
    default_value_range,
    layer_sizes,
    main_describe,
    mi_wd,
    weight_tensors,
    weight_vector,
    window_boundaries,
    window_overlaps,
)
from wdcore.permutations import permute

TINY_CNN = {
    "conv_channels": [3, 4],
    "kernel_size": 3,
    "fc_units": [6],
    "in_channels": 1,
    "n_outputs": 3,
    "dropout": 0.5,
}


def make_batch_norm_statistics(model: nn.Module) -> nn.Module:
    """Give every BatchNorm layer trained-looking parameters and statistics.

    Set directly (no forward pass), which keeps the tests fast.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.5)
                module.running_var.uniform_(0.2, 3.0)
                module.num_batches_tracked.fill_(10)
    return model.eval()


def make_mlp(widths=(12, 16, 8, 3), *, seed=0, batch_norm=True) -> nn.Sequential:
    """A small MLP, with BatchNorm after each hidden layer by default."""
    torch.manual_seed(seed)
    layers = []
    for n_in, n_out in zip(widths[:-2], widths[1:-1], strict=True):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_out))
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return make_batch_norm_statistics(nn.Sequential(*layers))


def make_cnn(seed: int = 0) -> nn.Sequential:
    """A tiny zoo-style CNN from wdcore.architectures."""
    torch.manual_seed(seed)
    return make_batch_norm_statistics(build_cnn(TINY_CNN, input_size=8))


def make_model(kind: str, seed: int) -> nn.Sequential:
    """An MLP or a CNN, by name."""
    return make_mlp(seed=seed) if kind == "mlp" else make_cnn(seed)


def make_binned_weights(n_weights, n_bins, radius, *, seed):
    """Weights placed well inside known bins, so no rounding edge is near.

    Returns the weights and each weight's bin; a tenth of the weights lie beyond
    the range and belong to the edge bins.
    """
    rng = np.random.default_rng(seed)
    bins = rng.integers(0, n_bins, n_weights)  # (n_weights,)
    offsets = rng.uniform(0.1, 0.9, n_weights)  # (n_weights,)
    weights = -radius + (bins + offsets) * 2 * radius / n_bins  # (n_weights,)
    beyond = rng.random(n_weights) < 0.1  # (n_weights,)
    signs = np.where(rng.random(n_weights) < 0.5, -1.0, 1.0)  # (n_weights,)
    weights[beyond] = signs[beyond] * radius * rng.uniform(1.01, 5, beyond.sum())
    bins[beyond] = np.where(signs[beyond] < 0, 0, n_bins - 1)
    return weights.astype(np.float32), bins


def check_reference(weights, bins, size):
    """Build the expected descriptor with plain NumPy from known bins."""
    n_windows, n_bins = size
    n_weights = len(weights)
    expected = np.zeros(size)  # (S, B)
    for window in range(n_windows):
        start = window * n_weights // n_windows
        stop = (window + 1) * n_weights // n_windows
        expected[window] = np.bincount(bins[start:stop], minlength=n_bins)
    return expected / expected.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------
# Shapes, row sums, agreement with a reference
# --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 1), (4, 8), (7, 13), (32, 32), (64, 300)])
@pytest.mark.parametrize("windows", ["contiguous", "layer"])
def test_shape_and_row_sums(size, windows):
    descriptor = mi_wd(make_cnn(0), size=size, windows=windows)
    assert descriptor.shape == size
    assert descriptor.dtype == np.float64
    assert np.all(descriptor >= 0)
    np.testing.assert_allclose(descriptor.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("size", [(3, 5), (16, 16), (32, 300)])
def test_matches_numpy_reference(seed, size):
    weights, bins = make_binned_weights(5000, size[1], 0.3, seed=seed)
    descriptor = mi_wd(weights, size=size, value_range=0.3)
    np.testing.assert_allclose(descriptor, check_reference(weights, bins, size))


def test_integer_size_means_square():
    weights, _ = make_binned_weights(500, 8, 1.0, seed=0)
    np.testing.assert_array_equal(mi_wd(weights, size=8), mi_wd(weights, size=(8, 8)))


def test_sources_agree(tmp_path):
    model = make_mlp(seed=3)
    expected = mi_wd(model)
    state_dict = model.state_dict()
    np.testing.assert_array_equal(mi_wd(state_dict), expected)
    np.testing.assert_array_equal(mi_wd(weight_vector(model)), expected)
    for name in ("model.pt", "model.safetensors"):
        path = io.save_state_dict(state_dict, tmp_path / name)
        np.testing.assert_array_equal(mi_wd(path), expected)
        np.testing.assert_array_equal(mi_wd(str(path)), expected)


def test_first_layer_of_zeros_fills_top_rows():
    model = make_mlp((64, 64, 8, 8, 3), seed=0, batch_norm=False)
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.zero_()
    n_first = 64 * 64 + 64
    n_weights = len(weight_vector(model))
    descriptor = mi_wd(model, size=(16, 16), value_range=0.5)
    n_zero_rows = 16 * n_first // n_weights  # windows lying inside layer 0
    assert n_zero_rows >= 10
    np.testing.assert_array_equal(descriptor[:n_zero_rows, 8], 1.0)
    assert np.all(descriptor[-1, 8] < 0.5)


def test_values_beyond_range_go_to_edge_bins():
    weights = np.array([-10.0, -1.0, -0.2, 0.2, 1.0, 10.0, 1e30], dtype=np.float32)
    descriptor = mi_wd(weights, size=(1, 4), value_range=1.0)
    np.testing.assert_allclose(descriptor[0] * 7, [2, 1, 1, 3])


def test_half_precision_tensors_are_accepted():
    model = make_mlp(seed=0)
    state_dict = model.state_dict()
    half = {name: value.to(torch.float16) for name, value in state_dict.items()}
    half["2.num_batches_tracked"] = state_dict["2.num_batches_tracked"]
    half["5.num_batches_tracked"] = state_dict["5.num_batches_tracked"]
    brain = {name: value.to(torch.bfloat16) for name, value in half.items()}
    brain.update({name: half[name] for name in half if "batches" in name})
    for state_dict in (half, brain):
        vector = weight_vector(state_dict)
        assert vector.dtype == np.float32
        assert np.allclose(vector, weight_vector(model), atol=1e-2, rtol=1e-2)
        assert mi_wd(state_dict).shape == (32, 32)


# --------------------------------------------------------------------------
# Determinism, batches and the two counting paths
# --------------------------------------------------------------------------


@pytest.mark.parametrize("windows", ["contiguous", "layer"])
def test_batch_equals_single_models(windows):
    models = [make_mlp(seed=seed) for seed in range(5)]
    matrix = np.stack([weight_vector(model) for model in models])  # (5, n)
    sizes = layer_sizes(models[0])
    batch = mi_wd(matrix, size=(8, 16), windows=windows, layer_sizes=sizes)
    assert batch.shape == (5, 8, 16)
    for row, model in enumerate(models):
        np.testing.assert_array_equal(
            batch[row], mi_wd(model, size=(8, 16), windows=windows)
        )
    again = mi_wd(matrix, size=(8, 16), windows=windows, layer_sizes=sizes)
    np.testing.assert_array_equal(batch, again)


def test_batch_with_shared_and_per_model_ranges():
    matrix = np.random.default_rng(0).normal(size=(3, 400)).astype(np.float32)
    shared = mi_wd(matrix, size=(4, 8), value_range=2.0)
    per_model = mi_wd(matrix, size=(4, 8), value_range=[2.0, 2.0, 2.0])
    np.testing.assert_array_equal(shared, per_model)
    np.testing.assert_array_equal(
        mi_wd(matrix, size=(4, 8), value_range=[1.0, 2.0, 3.0])[1], shared[1]
    )


@pytest.mark.parametrize("n_bins", [7, 32, 300])
@pytest.mark.parametrize("n_models", [1, 3])
@pytest.mark.parametrize("windows", [(4, 1000, 7000), (12, 3, 900, 100, 400, 5000, 1)])
def test_chunking_and_threads_do_not_change_counts(n_bins, n_models, windows):
    rng = np.random.default_rng(n_bins + n_models)
    boundaries = np.concatenate([[0], np.cumsum(windows)])  # (n_segments + 1,)
    matrix = rng.normal(size=(n_models, boundaries[-1])).astype(np.float32)
    ranges = np.full(n_models, 1.5)
    expected = np.zeros((n_models, len(windows), n_bins), dtype=np.int64)
    for row in range(n_models):
        bins = np.clip(
            np.floor(matrix[row] * (n_bins / 3.0) + n_bins / 2), 0, n_bins - 1
        )
        for segment in range(len(windows)):
            part = bins[boundaries[segment] : boundaries[segment + 1]].astype(int)
            expected[row, segment] = np.bincount(part, minlength=n_bins)
    for chunk_size in (64, 1000, 1 << 16):
        for n_workers in (1, 3):
            counts = _segment_histograms(
                matrix, ranges, n_bins, boundaries,
                chunk_size=chunk_size, n_workers=n_workers,
            )  # fmt: skip
            np.testing.assert_array_equal(counts, expected)


def test_long_vector_uses_chunks_consistently():
    weights, bins = make_binned_weights(3 * CHUNK_SIZE + 17, 32, 1.0, seed=5)
    descriptor = mi_wd(weights, size=(4, 32), value_range=1.0)
    np.testing.assert_allclose(descriptor, check_reference(weights, bins, (4, 32)))


# --------------------------------------------------------------------------
# Permutation invariance of the layer-exact variant
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("size", [(4, 4), (32, 32), (128, 64)])
def test_layer_windows_are_exactly_permutation_invariant(kind, seed, size):
    model = make_model(kind, seed)
    permuted = permute(model, random_state=seed)
    assert not np.array_equal(weight_vector(model), weight_vector(permuted))
    original = mi_wd(model, size=size, windows="layer")
    np.testing.assert_array_equal(original, mi_wd(permuted, size=size, windows="layer"))


def test_contiguous_windows_change_under_permutation():
    model = make_cnn(0)
    permuted = permute(model, random_state=0)
    size = (64, 64)
    assert not np.array_equal(mi_wd(model, size=size), mi_wd(permuted, size=size))


def test_layer_windows_equal_contiguous_when_windows_match_layers():
    weights = np.random.default_rng(0).normal(size=300).astype(np.float32)
    sizes = [100, 100, 100]
    layered = mi_wd(weights, size=(3, 8), windows="layer", layer_sizes=sizes)
    np.testing.assert_allclose(layered, mi_wd(weights, size=(3, 8)))


# --------------------------------------------------------------------------
# Weight vector, include options, layer bookkeeping
# --------------------------------------------------------------------------


def test_weight_vector_order_and_dtype():
    model = make_mlp(seed=0)
    vector = weight_vector(model)
    assert vector.dtype == np.float32
    expected = np.concatenate(
        [
            value.reshape(-1).numpy()
            for value in model.state_dict().values()
            if value.is_floating_point()
        ]
    )
    np.testing.assert_array_equal(vector, expected)
    assert "2.num_batches_tracked" in model.state_dict()


@pytest.mark.parametrize("as_state_dict", [False, True])
def test_include_options(as_state_dict):
    model = make_mlp(seed=0)
    source = model.state_dict() if as_state_dict else model
    names = {
        include: list(weight_tensors(source, include=include))
        for include in ("all", "parameters", "weights")
    }
    assert "2.running_var" in names["all"]
    assert "2.num_batches_tracked" not in names["all"]
    assert names["parameters"] == [name for name, _ in model.named_parameters()]
    assert names["weights"] == ["0.weight", "3.weight", "6.weight"]
    sizes = layer_sizes(source, include="weights")
    assert sizes.tolist() == [12 * 16, 16 * 8, 8 * 3]


def test_window_boundaries_and_overlaps():
    boundaries = window_boundaries(10, 4)
    assert boundaries.tolist() == [0, 2, 5, 7, 10]
    overlaps = window_overlaps([3, 5, 2], 4)
    assert overlaps.sum(axis=1).tolist() == np.diff(boundaries).tolist()
    assert overlaps.sum(axis=0).tolist() == [3, 5, 2]


@pytest.mark.parametrize("seed", [0, 1])
def test_default_value_range_is_percentile(seed):
    rng = np.random.default_rng(seed)
    small = rng.normal(size=1000).astype(np.float32)
    assert default_value_range(small) == pytest.approx(
        np.percentile(np.abs(small), 99), rel=1e-6
    )
    large = rng.standard_t(3, size=EXACT_PERCENTILE_LIMIT + 4097).astype(np.float32)
    assert default_value_range(large) == pytest.approx(
        np.percentile(np.abs(large), 99), rel=1e-6
    )


def test_default_value_range_fallbacks():
    mostly_zero = np.zeros(1000, dtype=np.float32)
    mostly_zero[:3] = [0.5, -2.0, 1.0]
    assert default_value_range(mostly_zero) == 2.0
    assert default_value_range(np.zeros(10, dtype=np.float32)) == 1.0
    matrix = np.stack([mostly_zero, 3 * mostly_zero])  # (2, 1000)
    np.testing.assert_array_equal(default_value_range(matrix), [2.0, 6.0])


def test_default_value_range_is_used_by_default():
    weights = np.random.default_rng(0).normal(size=2000).astype(np.float32)
    radius = default_value_range(weights)
    np.testing.assert_array_equal(mi_wd(weights), mi_wd(weights, value_range=radius))


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_name_the_tensor(bad):
    state_dict = make_mlp(seed=0).state_dict()
    state_dict["3.weight"][1, 1] = bad
    with pytest.raises(ValueError, match=r"tensor '3\.weight'.*non-finite.*index 17"):
        mi_wd(state_dict)
    vector = weight_vector(make_mlp(seed=0))
    vector[5] = bad
    with pytest.raises(ValueError, match=r"non-finite value .* index 5\)"):
        mi_wd(vector)


@pytest.mark.parametrize(
    "source",
    [nn.Sequential(nn.ReLU()), {}, {"steps": torch.tensor(3)}, {"e": torch.zeros(0)}],
)
def test_empty_model_is_refused(source):
    with pytest.raises(ValueError, match="no floating-point tensors"):
        mi_wd(source)


def test_empty_array_is_refused():
    with pytest.raises(ValueError, match=r"shape \(0,\).*non-empty"):
        mi_wd(np.zeros(0, dtype=np.float32))


def test_fewer_weights_than_windows():
    with pytest.raises(ValueError, match="asks for 32 windows.*only 12 weights"):
        mi_wd(nn.Linear(5, 2))
    with pytest.raises(ValueError, match="n_windows=5 is not valid for 3 weights"):
        window_boundaries(3, 5)


@pytest.mark.parametrize(
    "size", [0, (0, 4), (4, 0), (4,), (4, 4, 4), "32x32", (4.0, 4), True, (4, 40000)]
)
def test_invalid_size(size):
    with pytest.raises(ValueError, match=r"size=.* is not valid; expected"):
        mi_wd(np.ones(100, dtype=np.float32), size=size)


@pytest.mark.parametrize("value_range", [0, -1.0, float("nan"), float("inf"), [1, 2]])
def test_invalid_value_range(value_range):
    with pytest.raises(ValueError, match="value_range=.* is not valid; expected"):
        mi_wd(np.ones(100, dtype=np.float32), size=4, value_range=value_range)


@pytest.mark.parametrize(
    ("value_range", "message"),
    [
        (1e300, r"value_range=1e\+300 is not valid; expected a finite number r "),
        (1e-300, r"value_range=1e-300 is not valid; expected .*2.35e-38 <= r <= "),
        (3.5e38, r"value_range=3.5e\+38 .*r <= 3.4e\+38, so that r and the bin"),
        (2e-38, r"value_range=2e-38 .* bin width 2r/4 are normal float32 numbers"),
        ([1.0, 1e-300], r"value_range=\[1.0, 1e-300\] is not valid \(r=1e-300\)"),
        # Regression: an int beyond float64 raised a bare OverflowError.
        (10**400, r"value_range=1000+ is not valid; expected a finite number r "),
    ],
)
def test_value_range_must_suit_float32(value_range, message):
    """Regression: 1e300 put every weight in the centre bin, 1e-300 overflowed."""
    weights = np.ones((2, 100), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=message):
            mi_wd(weights, size=4, value_range=value_range)


@pytest.mark.parametrize("n_bins", [3, 4, 300])
def test_extreme_valid_value_ranges_are_accepted(n_bins):
    smallest = float(np.finfo(np.float32).smallest_normal) * n_bins / 2
    weights = np.array([-1.0, 0.0, 1.0], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny = mi_wd(weights, size=(1, n_bins), value_range=smallest)
        huge = mi_wd(weights, size=(1, n_bins), value_range=3.4e38)
    np.testing.assert_array_equal(tiny[0, [0, -1]], [1 / 3, 1 / 3])
    assert huge[0, n_bins // 2] == 1


def test_default_value_range_too_small_is_refused():
    weights = np.full(100, 1e-40, dtype=np.float32)
    with pytest.raises(
        ValueError, match=r"default value range r=[\d.]+e-41 of model 0"
    ):
        mi_wd(weights, size=4)


@pytest.mark.parametrize(
    "value_range",
    [
        "1.0",
        True,
        object(),
        # Regression: arrays of these were cast to float and accepted.
        np.array([True]),
        np.array(["1.0"]),
        np.array([b"1"]),
        np.array([1 + 0j]),
        torch.tensor([True]),
        [1.0, "2"],
        [[1.0], [2.0, 3.0]],
    ],
)
def test_value_range_of_wrong_type(value_range):
    with pytest.raises(TypeError, match="value_range=.* is not valid"):
        mi_wd(np.ones(100, dtype=np.float32), size=4, value_range=value_range)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"windows": "layers"}, "windows='layers' is not valid"),
        ({"include": "buffers"}, "include='buffers' is not valid"),
        ({"layer_sizes": [10, 10]}, "layer_sizes=.* with a model source"),
    ],
)
def test_invalid_options_with_a_model(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mi_wd(make_mlp(seed=0), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"windows": "layer"}, "needs the layer sizes of an array source"),
        ({"windows": "layer", "layer_sizes": [50, 40]}, "sum to 90.*has 100"),
        ({"windows": "layer", "layer_sizes": [50, 0, 50]}, "positive integers"),
        ({"layer_sizes": [[50, 50]]}, "layer_sizes=.* is not valid"),
        ({"include": "weights"}, "include='weights' applies to models"),
    ],
)
def test_invalid_options_with_an_array(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mi_wd(np.ones(100, dtype=np.float32), size=4, **kwargs)


@pytest.mark.parametrize(
    ("source", "error", "message"),
    [
        (42, TypeError, "source of type 'int' is not valid"),
        (np.array([True, False]), TypeError, "weights of type bool are not valid"),
        (torch.ones(3, dtype=torch.bool), TypeError, "of type torch.bool are not"),
        (torch.ones(3, dtype=torch.complex64), TypeError, "type torch.complex64 are"),
        ({"w": [1.0, 2.0]}, TypeError, "entry 'w' is a 'list'"),
        ({"w": torch.ones(3, dtype=torch.complex64)}, TypeError, "'w' has dtype"),
        (np.ones((2, 2, 2)), ValueError, r"shape \(2, 2, 2\)"),
    ],
)
def test_invalid_sources(source, error, message):
    with pytest.raises(error, match=message):
        mi_wd(source, size=1)


def test_meta_and_sparse_tensors_name_the_tensor():
    """Regression: they gave a raw NotImplementedError / RuntimeError."""
    meta = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)).to("meta")
    with pytest.raises(ValueError, match=r"tensor '0.weight' is on the meta device"):
        mi_wd(meta, size=2)
    with pytest.raises(ValueError, match=r"tensor 'weights' is on the meta device"):
        mi_wd(torch.ones(10, device="meta"), size=2)
    sparse = {"w": torch.eye(4).to_sparse(), "b": torch.ones(4)}
    with pytest.raises(ValueError, match=r"tensor 'w' has layout torch.sparse_coo"):
        weight_vector(sparse)
    with pytest.raises(ValueError, match=r"tensor 'weights' has layout torch.sparse"):
        weight_vector(torch.ones(4).to_sparse())


@pytest.mark.parametrize("seed", [0, 1])
def test_lists_of_numbers_are_accepted(seed):
    """Regression: the docstrings said array-like, but lists were refused."""
    weights = np.random.default_rng(seed).normal(size=(2, 40))  # (2, 40)
    as_list = weights.tolist()
    np.testing.assert_array_equal(
        weight_vector(as_list[0]), weights[0].astype(np.float32)
    )
    np.testing.assert_array_equal(mi_wd(as_list, size=4), mi_wd(weights, size=4))
    np.testing.assert_array_equal(
        mi_wd(tuple(as_list[1]), size=4), mi_wd(weights[1], size=4)
    )
    np.testing.assert_array_equal(
        default_value_range(as_list), default_value_range(weights)
    )
    assert weight_vector([1, 2, 3]).tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    "source",
    [
        [3, -1, 0, 7],
        (3, -1, 0, 7),
        np.array([3, -1, 0, 7]),
        torch.tensor([3, -1, 0, 7]),
    ],
    ids=["list", "tuple", "ndarray", "tensor"],
)
def test_integer_weight_vectors_are_accepted_in_any_container(source):
    """Regression: a list of ints was accepted but an int ndarray was refused.

    The rule is now one: a weight vector of integers is converted to float32,
    whatever holds it (integer tensors inside a state dict are still skipped).
    """
    expected = np.array([3.0, -1.0, 0.0, 7.0], dtype=np.float32)
    np.testing.assert_array_equal(weight_vector(source), expected)
    np.testing.assert_array_equal(
        mi_wd(source, size=(2, 4)), mi_wd(expected, size=(2, 4))
    )
    assert default_value_range(source) == default_value_range(expected)


@pytest.mark.parametrize("as_state_dict", [False, True])
def test_pruned_layers_give_the_weights_they_compute_with(as_state_dict):
    """Regression: a pruned layer's 0/1 mask was read as weights and its
    pruned weights were counted at their unpruned values."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    torch.nn.utils.prune.l1_unstructured(model[0], "weight", amount=0.5)
    pruned = model.state_dict() if as_state_dict else model
    vector = weight_vector(pruned)
    sizes = layer_sizes(pruned)
    torch.nn.utils.prune.remove(model[0], "weight")  # bakes the mask in
    np.testing.assert_array_equal(vector, weight_vector(model))
    np.testing.assert_array_equal(sizes, layer_sizes(model))
    assert (vector == 0).sum() == 24  # half of the 48 first-layer weights


def test_pruning_mask_of_wrong_shape_is_refused():
    state_dict = {"w_orig": torch.ones(2, 3), "w_mask": torch.ones(3, 2)}
    with pytest.raises(ValueError, match=r"pruning mask 'w_mask' has shape \(3, 2\)"):
        weight_vector(state_dict)


def test_bool_tensors_in_a_state_dict_are_skipped():
    """Issue 5: boolean tensors are skipped, like integer num_batches_tracked."""
    state_dict = {
        "0.weight": torch.ones(2, 3),
        "0.mask": torch.tensor([True, False, True]),
        "1.num_batches_tracked": torch.tensor(7),
        "1.bias": torch.full((2,), 0.5),
    }
    assert list(weight_tensors(state_dict)) == ["0.weight", "1.bias"]
    assert weight_vector(state_dict).tolist() == [1.0] * 6 + [0.5, 0.5]
    assert layer_sizes(state_dict).tolist() == [6, 2]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: mi_wd(np.array([1.0, 2.0, 1e300, 3.0]), size=(1, 4)),
            r"weights hold 1 finite value\(s\) too large for float32, the first "
            r"1e\+300 at \(model 0, index 2\); expected \|w\| <= 3.4028235e\+38",
        ),
        (
            lambda: weight_vector([1.0, -1e39, 1e300]),
            r"weights hold 2 finite value\(s\) too large .* first -1e\+39 at "
            r"\(model 0, index 1\)",
        ),
        (
            lambda: mi_wd(np.array([[1.0, 2.0], [3.0, 4e38]]), size=(1, 4)),
            r"the first 4e\+38 at \(model 1, index 1\); .*the float32 limit",
        ),
        (
            lambda: default_value_range(
                torch.tensor([5e300, 1.0], dtype=torch.float64)
            ),
            r"the first 5e\+300 at \(model 0, index 0\)",
        ),
        (
            lambda: mi_wd(
                {
                    "0.weight": torch.tensor(
                        [[1.0, 2.0], [3.0, 1e300]], dtype=torch.float64
                    )
                },
                size=1,
            ),
            r"tensor '0.weight' holds 1 finite value\(s\) too large for float32, the "
            r"first 1e\+300 at flat index 3; expected \|w\| <= 3.4028235e\+38",
        ),
    ],
)
def test_finite_float64_weights_beyond_float32_are_named(call, message):
    """Regression: a finite float64 weight too large for float32 was reported as
    "non-finite value inf", after a NumPy overflow RuntimeWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=message):
            call()


def test_genuine_infinity_in_float64_is_still_non_finite():
    state_dict = {"w": torch.tensor([1.0, float("inf")], dtype=torch.float64)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"tensor 'w' holds 1 non-finite value"):
            weight_vector(state_dict)
        with pytest.raises(ValueError, match=r"non-finite value inf at \(model 0"):
            mi_wd(np.array([1.0, np.inf, 2.0]), size=1)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((10.5, 3), r"n_weights=10.5 is not valid; expected an int"),
        ((10, 2.0), r"n_windows=2.0 is not valid; expected an int"),
        ((True, 1), r"n_weights=True is not valid; expected an int"),
    ],
)
def test_window_boundaries_refuse_non_integers(arguments, message):
    """Regression: window_boundaries(10.5, 3) returned fractional boundaries."""
    with pytest.raises(TypeError, match=message):
        window_boundaries(*arguments)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ([[1.0, 2.0], [3.0]], "source is a list that is not a rectangular array"),
        (["a", "b"], r"source is a list of non-numeric values \(dtype <U1\)"),
        ((True, False), r"source is a tuple of non-numeric values \(dtype bool\)"),
    ],
)
def test_bad_lists_are_refused(source, message):
    with pytest.raises(TypeError, match=message):
        weight_vector(source)
    with pytest.raises(TypeError, match=message):
        mi_wd(source, size=1)


def test_weight_vector_refuses_a_matrix():
    with pytest.raises(ValueError, match=r"shape \(2, 3\); expected a 1-D array"):
        weight_vector(np.ones((2, 3), dtype=np.float32))


def test_percentile_must_be_in_range():
    with pytest.raises(ValueError, match=r"percentile=0 is not valid"):
        default_value_range(np.ones(5), percentile=0)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.pt", None, "does not exist"),
        ("cut.pt", "truncate", "not a readable .*truncated or corrupt"),
        ("cut.safetensors", "truncate", "not a readable .*truncated or corrupt"),
        ("model.txt", b"", "suffix '.txt'"),
    ],
)
def test_bad_files(tmp_path, name, content, message):
    path = tmp_path / name
    if content == "truncate":
        full = io.save_state_dict(make_mlp(seed=0).state_dict(), tmp_path / f"f{name}")
        path.write_bytes(full.read_bytes()[:200])
    elif content is not None:
        path.write_bytes(content)
    error = FileNotFoundError if content is None else ValueError
    with pytest.raises(error, match=message):
        mi_wd(path)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(make_mlp(seed=0), path)  # a whole module needs unpickling
    with pytest.raises(ValueError, match="arbitrary Python objects.*refuses"):
        weight_vector(path)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


@pytest.mark.parametrize("windows", ["contiguous", "layer"])
def test_describe_writes_npy(tmp_path, windows):
    model = make_cnn(1)
    checkpoint = tmp_path / "m.pt"
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, checkpoint)
    out = tmp_path / "out" / "d.npy"
    argv = [str(checkpoint), "--size", "8x16", "--out", str(out), "--windows", windows]
    assert main_describe(argv) == 0
    expected = mi_wd(model, size=(8, 16), windows=windows)
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-12)


def test_describe_options_and_png(tmp_path):
    model = make_mlp(seed=2)
    checkpoint = io.save_state_dict(model.state_dict(), tmp_path / "m.safetensors")
    out = tmp_path / "d.npy"
    argv = [str(checkpoint), "--size", "4", "--range", "0.5", "--out", str(out)]
    assert main_describe([*argv, "--include", "weights"]) == 0
    expected = mi_wd(model, size=(4, 4), value_range=0.5, include="weights")
    np.testing.assert_array_equal(np.load(out), expected)
    png = tmp_path / "d.png"
    assert main_describe([str(checkpoint), "--out", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("argv_tail", "message"),
    [
        (["--out", "d.txt"], "expected a .npy or .png file"),
        (["--out", "d.npy", "--range", "-1"], "value_range=-1.0 is not valid"),
        (["--out", "d.npy", "--size", "128x8"], "asks for 128 windows"),
    ],
)
def test_describe_reports_errors(tmp_path, monkeypatch, capsys, argv_tail, message):
    monkeypatch.chdir(tmp_path)
    io.save_state_dict(nn.Linear(8, 8).state_dict(), tmp_path / "m.pt")
    assert main_describe(["m.pt", *argv_tail]) == 1
    assert message in capsys.readouterr().err


def test_describe_says_what_it_wrote(tmp_path, capsys):
    """Regression: a successful run printed nothing."""
    checkpoint = make_checkpoint(tmp_path)
    out = tmp_path / "d.png"
    assert main_describe([checkpoint, "--size", "4x8", "--out", str(out)]) == 0
    assert re.fullmatch(
        rf"wrote the 4x8 descriptor of {re.escape(checkpoint)} to "
        rf"{re.escape(str(out))} \(bins span \[-[0-9.e-]+, [0-9.e-]+\]\)\n",
        capsys.readouterr().out,
    )


@pytest.mark.parametrize("suffix", [".npy", ".NPY"])
def test_describe_writes_the_named_file(tmp_path, suffix):
    """np.save appends ".npy" to other names: d.NPY must not become d.NPY.npy."""
    out = tmp_path / f"d{suffix}"
    assert main_describe([make_checkpoint(tmp_path), "--out", str(out)]) == 0
    assert [path.name for path in tmp_path.glob("d.*")] == [out.name]
    assert np.load(out).shape == (32, 32)


def test_describe_missing_file(tmp_path, capsys):
    argv = [str(tmp_path / "no.pt"), "--out", str(tmp_path / "d.npy")]
    assert main_describe(argv) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "size", ["32y32", "x", "3x3x3", "-4x4", "-4", "4x-4", "0x3", "4x0", "4x40000"]
)
@pytest.mark.parametrize("joined", [False, True])
def test_describe_bad_size_is_a_usage_error(tmp_path, capsys, size, joined):
    """Regression: ``--size -4x4`` gave argparse's "expected one argument"
    (-4x4 was taken for an option), and ``--size 0x3`` passed the parser."""
    option = [f"--size={size}"] if joined else ["--size", size]
    with pytest.raises(SystemExit) as exit_info:
        main_describe(["m.pt", *option, "--out", str(tmp_path / "d.npy")])
    assert exit_info.value.code == 2
    assert (
        f"error: argument --size: {size!r} is not valid; expected SxB, S >= 1 "
        "windows by 1 <= B <= 32767 bins, such as 32x32 (a single number N means "
        "NxN)\n"
    ) in capsys.readouterr().err


def test_describe_help_states_sizes_and_output_folders(capsys):
    with pytest.raises(SystemExit, match="0"):
        main_describe(["--help"])
    usage = " ".join(capsys.readouterr().out.split())
    assert "--size SxB" in usage
    assert "a single number N means NxN (default: 32x32)" in usage
    assert "missing folders on its path are created" in usage
    assert "save model.state_dict(), not the whole model" in usage


def make_checkpoint(directory) -> str:
    """Save a small Linear state dict as m.pt and return its path."""
    return str(io.save_state_dict(nn.Linear(8, 8).state_dict(), directory / "m.pt"))


def check_one_error_line(capsys, message: str) -> None:
    """Assert standard error is exactly one ``error:`` line containing message."""
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("garbage.pt", b"hello world", "not a readable PyTorch/safetensors checkpoint"),
        ("short.pt", b"ab", "(the file is too short: 2 bytes)"),
        ("dir.pt", None, "is a directory; expected a checkpoint file"),
    ],
)
def test_describe_bad_checkpoint_gives_one_error_line(
    tmp_path, capsys, name, content, message
):
    """Regression: a text file gave a KeyError traceback, a directory "missing"."""
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    assert main_describe([str(path), "--out", str(tmp_path / "d.npy")]) == 1
    check_one_error_line(capsys, message)


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("file/x.npy", "'file' is not a directory; expected the output's parent"),
        ("file/a/b/x.npy", "'file' is not a directory"),
        ("folder.npy", "is a directory; expected a file name"),
    ],
)
def test_describe_checks_output_before_computing(
    tmp_path, monkeypatch, capsys, out, message
):
    """Regression: a bad --out raised FileExistsError after the work was done."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_bytes(b"")
    (tmp_path / "folder.npy").mkdir()
    checkpoint = make_checkpoint(tmp_path)

    def fail(*args, **kwargs):
        raise AssertionError("computed before the output path was checked")

    monkeypatch.setattr("wdcore.descriptors.weight_tensors", fail)
    assert main_describe([checkpoint, "--out", out]) == 1
    check_one_error_line(capsys, message)


def test_describe_refuses_unwritable_directory(tmp_path, monkeypatch, capsys):
    """Regression: --out /proc/x.npy raised FileNotFoundError as a traceback."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.TemporaryFile", refuse)
    out = tmp_path / "d.npy"
    assert main_describe([make_checkpoint(tmp_path), "--out", str(out)]) == 1
    check_one_error_line(capsys, "(Permission denied); expected a writable directory")
    assert not out.exists()


def test_describe_reports_write_failures(tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("wdcore.descriptors.np.save", refuse)
    out = tmp_path / "d.npy"
    assert main_describe([make_checkpoint(tmp_path), "--out", str(out)]) == 1
    check_one_error_line(capsys, "could not be written: [Errno 28] No space left")


def test_describe_creates_missing_output_directories(tmp_path, capsys):
    """Regression: missing folders of --out were created without a word."""
    out = tmp_path / "new" / "sub" / "d.npy"
    assert main_describe([make_checkpoint(tmp_path), "--out", str(out)]) == 0
    assert np.load(out).shape == (32, 32)
    assert capsys.readouterr().out.endswith(
        f"; created the folder {str(out.parent)!r} for it\n"
    )


def test_describe_creates_no_folder_when_it_fails(tmp_path, capsys):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"hello world")
    out = tmp_path / "new" / "d.npy"
    assert main_describe([str(garbage), "--out", str(out)]) == 1
    check_one_error_line(capsys, "not a readable PyTorch/safetensors checkpoint")
    assert not out.parent.exists()


def test_describe_names_out_when_a_folder_cannot_be_created(
    tmp_path, monkeypatch, capsys
):
    """Regression: --out into a missing folder of a read-only directory gave a
    bare "error: [Errno 30] Read-only file system: '/tmp/romnt/sub'"."""
    checkpoint = make_checkpoint(tmp_path)
    out = tmp_path / "sub" / "d.png"

    def refuse(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert main_describe([checkpoint, "--out", str(out)]) == 1
    check_one_error_line(
        capsys,
        f"error: --out {str(out)!r}: cannot create the folder "
        f"{str(out.parent)!r} (Read-only file system); expected a writable directory",
    )


def test_describe_checks_the_nearest_existing_folder_of_out(
    tmp_path, monkeypatch, capsys
):
    """A read-only mount refuses the scratch file in the folder that exists."""
    scratch_folders = []

    def refuse(*args, dir=None, **kwargs):
        scratch_folders.append(dir)
        raise OSError(errno.EROFS, "Read-only file system")

    checkpoint = make_checkpoint(tmp_path)
    monkeypatch.setattr("tempfile.TemporaryFile", refuse)
    out = tmp_path / "sub" / "deeper" / "d.npy"
    assert main_describe([checkpoint, "--out", str(out)]) == 1
    check_one_error_line(
        capsys,
        f"error: --out {str(out)!r}: cannot create files in {str(tmp_path)!r} "
        "(Read-only file system); expected a writable directory",
    )
    assert scratch_folders == [tmp_path]
    assert not (tmp_path / "sub").exists()


@pytest.mark.parametrize(
    ("content", "held"), [(torch.zeros(3), "Tensor"), ([torch.zeros(3)], "list")]
)
def test_describe_names_what_a_checkpoint_must_hold(tmp_path, capsys, content, held):
    """Regression: a bare saved tensor was said to need "... or an nn.Module",
    though a whole saved module is refused."""
    path = tmp_path / "t.pt"
    torch.save(content, path)
    assert main_describe([str(path), "--out", str(tmp_path / "d.npy")]) == 1
    check_one_error_line(
        capsys,
        f"checkpoint path={str(path)!r} holds a {held}, not a state dict; expected "
        "a mapping of tensor names to tensors, possibly under a key such as "
        "'state_dict'. Save model.state_dict() (a whole model saved with "
        "torch.save(model) is refused, since loading it needs unpickling)",
    )
