"""Tests of wdcore.permutations: function preservation, round trips, errors."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from wdcore.architectures import (
    FIXED_ARCHITECTURE,
    build_cnn,
    initialize_,
    sample_architecture,
)
from wdcore.permutations import (
    PermutationGroup,
    PermutationSpec,
    PermutedAxis,
    UnsupportedArchitectureError,
    apply_permutations,
    invert_permutations,
    log10_n_permutations,
    permutation_spec,
    permute,
    permute_state_dict,
    random_permutations,
)

ARCHITECTURES = (
    "mlp",
    "mlp_bn_before_activation",
    "mlp_bn_after_activation",
    "mlp_layer_norm",
    "mlp_nested",
    "cnn_paper",
    "cnn_without_bias",
    "cnn_adaptive_pool",
    "cnn_norms",
    "conv1d",
    "cnn_batch_norm_after_flatten",
    "cnn_negative_flatten_dims",
)
WIDTHS = (3, 8)
SEEDS = (0, 1)


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Run torch on one thread while this module's tests run.

    On a loaded 2-core machine, tiny forward passes with two intra-op threads
    were about 100 times slower than with one.
    """
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def make_paper_cnn(width: int, *, bias: bool = True) -> nn.Sequential:
    """The zoo's fixed CNN on 1 x 16 x 16 inputs, channel widths scaled."""
    channels = (1, width, 2 * width, 4 * width)
    blocks = [
        nn.Sequential(
            nn.Conv2d(channels[i], channels[i + 1], 5, padding=2, bias=bias),
            nn.BatchNorm2d(channels[i + 1]),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        for i in range(3)
    ]
    return nn.Sequential(
        *blocks,
        nn.Flatten(),
        nn.Linear(4 * width * 2 * 2, 16 * width),
        nn.ReLU(),
        nn.BatchNorm1d(16 * width),
        nn.Dropout(0.5),
        nn.Linear(16 * width, 8 * width),
        nn.ReLU(),
        nn.BatchNorm1d(8 * width),
        nn.Dropout(0.5),
        nn.Linear(8 * width, 10),
    )


def make_model(name: str, width: int) -> tuple[nn.Sequential, tuple[int, ...]]:
    """Build one test architecture and return it with its input shape."""
    w = width
    if name == "mlp":
        layers = [nn.Linear(5, w), nn.ReLU(), nn.Linear(w, w + 1), nn.Tanh()]
        return nn.Sequential(*layers, nn.Linear(w + 1, 3)), (5,)
    if name == "mlp_bn_before_activation":
        layers = [nn.Linear(5, w), nn.BatchNorm1d(w), nn.ReLU(), nn.Dropout(0.2)]
        layers += [nn.Linear(w, w), nn.BatchNorm1d(w), nn.ELU(), nn.Linear(w, 2)]
        return nn.Sequential(*layers), (5,)
    if name == "mlp_bn_after_activation":
        layers = [nn.Linear(5, w), nn.Sigmoid(), nn.BatchNorm1d(w), nn.Dropout(0.5)]
        layers += [nn.Linear(w, w), nn.SiLU(), nn.BatchNorm1d(w), nn.Linear(w, 2)]
        return nn.Sequential(*layers), (5,)
    if name == "mlp_layer_norm":
        layers = [nn.Linear(4, w), nn.LayerNorm(w), nn.GELU()]
        layers += [nn.Linear(w, w), nn.LayerNorm(w), nn.Softplus(), nn.Linear(w, 3)]
        return nn.Sequential(*layers), (4,)
    if name == "mlp_nested":
        inner = nn.Sequential(nn.Sequential(nn.Linear(w, w), nn.LeakyReLU(0.1)))
        layers = [nn.Sequential(nn.Linear(4, w), nn.PReLU(w)), inner, nn.Hardtanh()]
        return nn.Sequential(*layers, nn.Linear(w, 2)), (4,)
    if name == "cnn_paper":
        return make_paper_cnn(w), (1, 16, 16)
    if name == "cnn_without_bias":
        return make_paper_cnn(w, bias=False), (1, 16, 16)
    if name == "cnn_adaptive_pool":
        layers = [nn.Conv2d(2, w, 3), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(w, w, 3)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(w, 3)]
        return nn.Sequential(*layers), (2, 10, 10)
    if name == "cnn_norms":
        layers = [nn.Conv2d(1, w, 3, padding=1), nn.GroupNorm(1, w), nn.PReLU(w)]
        layers += [nn.Conv2d(w, w, 3, padding=1), nn.InstanceNorm2d(w, affine=True)]
        layers += [nn.Conv2d(w, w, 3, padding=1, bias=False), nn.GroupNorm(w, w)]
        layers += [nn.LayerNorm((w, 6, 6)), nn.LayerNorm((6, 6)), nn.Flatten()]
        return nn.Sequential(*layers, nn.Linear(36 * w, 2)), (1, 6, 6)
    if name == "conv1d":
        layers = [nn.Conv1d(3, w, 3), nn.BatchNorm1d(w), nn.ReLU(), nn.MaxPool1d(2)]
        layers += [nn.Conv1d(w, w, 3, bias=False), nn.ReLU(), nn.AvgPool1d(2)]
        layers += [nn.Flatten(), nn.Linear(2 * w, w), nn.Sigmoid(), nn.Linear(w, 2)]
        return nn.Sequential(*layers), (3, 16)
    if name == "cnn_batch_norm_after_flatten":
        layers = [nn.Conv2d(1, w, 3), nn.ReLU(), nn.Flatten(), nn.BatchNorm1d(9 * w)]
        layers += [nn.Dropout(0.1), nn.Linear(9 * w, w), nn.ReLU(), nn.Linear(w, 2)]
        return nn.Sequential(*layers), (1, 5, 5)
    if name == "cnn_negative_flatten_dims":
        layers = [nn.Conv2d(1, w, 3), nn.ReLU(), nn.Flatten(0, 0), nn.Flatten(-3)]
        layers += [nn.Linear(9 * w, w), nn.Flatten(-1), nn.ReLU(), nn.Linear(w, 2)]
        return nn.Sequential(*layers), (1, 5, 5)
    raise ValueError(f"unknown test architecture {name!r}")


def make_randomized(name: str, width: int, seed: int) -> tuple[nn.Module, tuple]:
    """Build a model in eval mode with random parameters and running statistics.

    Default initializations (BatchNorm scale 1, shift 0, running mean 0) are the
    same for every channel, so a wrong permutation of them would go unnoticed.
    """
    model, input_shape = make_model(name, width)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            values = torch.randn(tensor.shape, generator=generator)
            if key.endswith("running_var"):
                values = values.abs() + 0.5
            tensor.copy_(values)
    return model.eval(), input_shape


def make_randomized_statistics(model: nn.Module, seed: int) -> nn.Module:
    """Give every normalization layer distinct per-channel parameters and stats."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n_channels = module.num_features
                module.weight.copy_(
                    1 + 0.3 * torch.randn(n_channels, generator=generator)
                )
                module.bias.copy_(0.3 * torch.randn(n_channels, generator=generator))
                module.running_mean.copy_(torch.randn(n_channels, generator=generator))
                module.running_var.copy_(
                    torch.rand(n_channels, generator=generator) + 0.5
                )
    return model


def check_same_outputs(first: nn.Module, second: nn.Module, inputs: torch.Tensor):
    """Assert the relative output difference is at most 1e-5."""
    with torch.no_grad():
        expected, actual = first(inputs), second(inputs)
    error = (expected - actual).abs().max() / expected.abs().max()
    assert error <= 1e-5, f"relative output error {error:.2e}"


def make_inputs(input_shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """A batch of 16 random inputs."""
    generator = torch.Generator().manual_seed(seed + 100)
    return torch.randn((16, *input_shape), generator=generator)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_permute_preserves_outputs(name, width, seed):
    model, input_shape = make_randomized(name, width, seed)
    permuted = permute(model, random_state=seed)
    check_same_outputs(model, permuted, make_inputs(input_shape, seed))

    before, after = model.state_dict(), permuted.state_dict()
    changed = [key for key in before if not torch.equal(before[key], after[key])]
    assert changed, "no entry was permuted"


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permute_preserves_outputs_of_zoo_cnns(seed, activation):
    architecture = (
        FIXED_ARCHITECTURE if seed == 0 else sample_architecture(random_state=seed)
    )
    model = build_cnn(architecture, activation=activation)
    initialize_(model, "glorot_normal", random_state=seed)
    model = make_randomized_statistics(model, seed).eval()
    permuted = permute(model, random_state=seed)
    check_same_outputs(model, permuted, make_inputs((1, 16, 16), seed))
    n_hidden_layers = len(architecture["conv_channels"] + architecture["fc_units"])
    assert len(permutation_spec(model).groups) == n_hidden_layers


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_round_trip_restores_weights_exactly(name, seed):
    model, _ = make_randomized(name, 5, seed)
    spec = permutation_spec(model)
    perms = random_permutations(spec, random_state=seed)
    state_dict = model.state_dict()

    permuted = apply_permutations(state_dict, spec, perms)
    restored = apply_permutations(permuted, spec, invert_permutations(perms))

    assert list(restored) == list(state_dict)
    for key, tensor in state_dict.items():
        assert torch.equal(restored[key], tensor), key


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_inputs_and_outputs_are_never_permuted(name):
    model, _ = make_randomized(name, 4, 0)
    weights = [key for key, p in model.named_parameters() if p.dim() >= 2]
    last_layer = weights[-1].removesuffix(".weight")
    permuted_axes = {
        (ref.key, ref.axis)
        for group in permutation_spec(model).groups
        for ref in group.axes
    }

    assert (weights[0], 1) not in permuted_axes
    assert (weights[-1], 0) not in permuted_axes
    assert (f"{last_layer}.bias", 0) not in permuted_axes


def test_paper_cnn_spec_lists_every_axis():
    model = make_paper_cnn(8)
    spec = permutation_spec(model)

    assert [group.size for group in spec.groups] == [8, 16, 32, 128, 64]
    assert [group.name for group in spec.groups] == ["0.0", "1.0", "2.0", "4", "8"]
    statistics = ("weight", "bias", "running_mean", "running_var")
    expected_first = (
        [PermutedAxis("0.0.weight", 0), PermutedAxis("0.0.bias", 0)]
        + [PermutedAxis(f"0.1.{name}", 0) for name in statistics]
        + [PermutedAxis("1.0.weight", 1)]
    )
    assert list(spec.groups[0].axes) == expected_first
    # 16 x 16 inputs pooled three times leave 2 x 2 = 4 columns per channel
    assert spec.groups[2].axes[-1] == PermutedAxis("4.weight", 1, block_size=4)
    all_keys = {ref.key for group in spec.groups for ref in group.axes}
    assert not any(key.endswith("num_batches_tracked") for key in all_keys)


@pytest.mark.parametrize("seed", SEEDS)
def test_flatten_moves_whole_blocks_of_columns(seed):
    model = make_paper_cnn(3)
    spec = permutation_spec(model)
    perms = random_permutations(spec, random_state=seed)
    permuted = apply_permutations(model.state_dict(), spec, perms)

    before = model.state_dict()["4.weight"].reshape(48, 12, 4)  # (out, channel, hw)
    after = permuted["4.weight"].reshape(48, 12, 4)  # (out, channel, hw)
    expected = before[perms["4"]][:, perms["2.0"]]  # (out, channel, hw)
    assert torch.equal(after, expected)


def test_apply_matches_a_permutation_by_hand():
    model, _ = make_randomized("mlp", 4, 0)
    spec = permutation_spec(model)
    perms = {"0": np.array([3, 1, 0, 2]), "2": np.array([4, 0, 1, 3, 2])}
    permuted = apply_permutations(model.state_dict(), spec, perms)

    assert torch.equal(permuted["0.weight"], model[0].weight[perms["0"]])
    assert torch.equal(permuted["0.bias"], model[0].bias[perms["0"]])
    by_hand = model[2].weight[perms["2"]][:, perms["0"]]
    assert torch.equal(permuted["2.weight"], by_hand)
    assert torch.equal(permuted["4.weight"], model[4].weight[:, perms["2"]])
    assert torch.equal(permuted["4.bias"], model[4].bias)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["cnn_paper", "conv1d", "mlp_nested"])
def test_state_dict_path_matches_permute(name, seed):
    model, _ = make_randomized(name, 4, seed)
    by_model = permute(model, random_state=seed).state_dict()
    by_spec = permute_state_dict(
        model.state_dict(), permutation_spec(model), random_state=seed
    )
    by_module = permute_state_dict(model.state_dict(), model, random_state=seed)

    for key, tensor in by_model.items():
        assert torch.equal(by_spec[key], tensor), key
        assert torch.equal(by_module[key], tensor), key


@pytest.mark.parametrize("seed", SEEDS)
def test_numpy_state_dict_matches_torch(seed):
    model, _ = make_randomized("cnn_paper", 3, seed)
    spec = permutation_spec(model)
    perms = random_permutations(spec, random_state=seed)
    arrays = {key: value.numpy() for key, value in model.state_dict().items()}

    from_arrays = apply_permutations(arrays, spec, perms)
    from_tensors = apply_permutations(model.state_dict(), spec, perms)

    for key, tensor in from_tensors.items():
        assert isinstance(from_arrays[key], np.ndarray)
        np.testing.assert_array_equal(from_arrays[key], tensor.numpy())


def test_permute_leaves_input_model_untouched_and_keeps_mode():
    model, _ = make_randomized("cnn_paper", 3, 0)
    model.train()
    snapshot = {key: value.clone() for key, value in model.state_dict().items()}

    permuted = permute(model, random_state=0)

    assert permuted is not model and permuted.training
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, snapshot[key]), key


@pytest.mark.parametrize("seed", SEEDS)
def test_random_permutations_are_valid_and_seeded(seed):
    spec = permutation_spec(make_paper_cnn(4))
    first = random_permutations(spec, random_state=seed)
    again = random_permutations(spec, random_state=seed)
    other = random_permutations(spec, random_state=seed + 10)

    for group in spec.groups:
        perm = first[group.name]
        assert perm.dtype == np.int64
        np.testing.assert_array_equal(np.sort(perm), np.arange(group.size))
        np.testing.assert_array_equal(perm, again[group.name])
    assert any(not np.array_equal(first[k], other[k]) for k in first)


@pytest.mark.parametrize("seed", SEEDS)
def test_invert_permutations_composes_to_identity(seed):
    perm = np.random.default_rng(seed).permutation(9)
    inverse = invert_permutations({"layer": perm})["layer"]

    np.testing.assert_array_equal(perm[inverse], np.arange(9))
    np.testing.assert_array_equal(inverse[perm], np.arange(9))


@pytest.mark.parametrize("width", WIDTHS)
def test_log10_n_permutations_is_log_of_product_of_factorials(width):
    spec = permutation_spec(make_paper_cnn(width))
    sizes = [width, 2 * width, 4 * width, 16 * width, 8 * width]
    expected = math.log10(math.prod(math.factorial(size) for size in sizes))

    assert log10_n_permutations(spec) == pytest.approx(expected, rel=1e-12)


def test_model_without_hidden_layers_has_no_groups():
    spec = permutation_spec(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))
    assert spec.groups == ()
    assert log10_n_permutations(spec) == 0.0


def test_sequential_subclass_without_own_forward_is_accepted():
    class Stack(nn.Sequential):
        pass

    model = Stack(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    assert [group.size for group in permutation_spec(model).groups] == [4]


def test_reused_parameter_free_activation_is_accepted():
    activation = nn.ReLU()
    model = nn.Sequential(nn.Linear(3, 4), activation, nn.Linear(4, 4), activation)
    spec = permutation_spec(nn.Sequential(*model, nn.Linear(4, 1)))
    assert [group.size for group in spec.groups] == [4, 4]


def test_reused_pooling_module_is_checked_at_every_position():
    # One MaxPool1d object placed twice: after the convolution it pools along
    # the length, which is safe; after the Linear layer it would pool across
    # neighbouring neurons, so the second position must be refused.
    pool = nn.MaxPool1d(3, stride=1, padding=1)
    model = nn.Sequential(
        nn.Conv1d(1, 4, 3, padding=1),
        pool,
        nn.Flatten(),
        nn.Linear(64, 8),
        nn.ReLU(),
        pool,
        nn.Linear(8, 2),
    )
    with pytest.raises(UnsupportedArchitectureError, match=r"module at '5'"):
        permute(model, random_state=0)


@pytest.mark.parametrize("pool", [nn.MaxPool1d(2), nn.AvgPool1d(2)])
def test_reused_pooling_module_after_convolutions_preserves_outputs(pool):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(1, 4, 3, padding=1),
        nn.ReLU(),
        pool,
        nn.Conv1d(4, 6, 3, padding=1),
        nn.ReLU(),
        pool,
        nn.Flatten(),
        nn.Linear(6 * 4, 3),
    ).eval()
    x = torch.randn(5, 1, 16)
    permuted = permute(model, random_state=1)
    torch.testing.assert_close(permuted(x), model(x), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------
# Every unsupported architecture names the module, its position and the reason
# --------------------------------------------------------------------------


class ResidualBlock(nn.Module):
    """x + f(x): the skip connection ties the input and output orders."""

    def __init__(self, width: int):
        super().__init__()
        self.linear = nn.Linear(width, width)

    def forward(self, inputs):
        return inputs + self.linear(inputs)


class ReversedSequential(nn.Sequential):
    """A Sequential whose forward runs its children backwards."""

    def forward(self, inputs):
        for module in reversed(self):
            inputs = module(inputs)
        return inputs


UNSUPPORTED = {
    "residual": (
        [nn.Linear(3, 4), ResidualBlock(4), nn.Linear(4, 1)],
        r"module at '1' \(ResidualBlock\(\)\): ResidualBlock is not a supported",
    ),
    "attention": (
        [nn.Linear(3, 4), nn.MultiheadAttention(4, 2)],
        r"module at '1' \(MultiheadAttention.*attention layers",
    ),
    "transformer": (
        [nn.Linear(3, 4), nn.TransformerEncoderLayer(4, 2)],
        r"'1' \(TransformerEncoderLayer.*attention layers",
    ),
    "grouped_conv": (
        [nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3, groups=2)],
        r"module at '1' \(Conv2d.*grouped or depthwise.*groups=2",
    ),
    "depthwise_conv": (
        [nn.Conv2d(1, 4, 3), nn.Sequential(nn.Conv2d(4, 4, 3, groups=4))],
        r"module at '1.0' .*grouped or depthwise.*groups=4",
    ),
    "unknown_module": (
        [nn.Linear(3, 4), nn.Softmax(dim=1), nn.Linear(4, 1)],
        r"module at '1' \(Softmax\(dim=1\)\): Softmax is not a supported layer",
    ),
    "nested_unknown_module": (
        [nn.Linear(3, 4), nn.Sequential(nn.ReLU(), nn.Sequential(nn.GLU()))],
        r"module at '1.1.0' \(GLU",
    ),
    "lazy_linear": (
        [nn.Linear(3, 4), nn.LazyLinear(2)],
        r"'1' .*LazyLinear is not a supported layer",
    ),
    "flatten_sizes_do_not_divide": (
        [nn.Conv2d(1, 3, 3), nn.Flatten(), nn.Linear(10, 2)],
        r"module at '2' .*10 input features cannot be split into equal blocks "
        r"for the 3 channels of '0'",
    ),
    "flatten_keeps_spatial_axes": (
        [nn.Conv2d(1, 3, 3), nn.Flatten(start_dim=2), nn.Linear(4, 2)],
        r"module at '1' .*start_dim=2.*only Flatten\(start_dim=1",
    ),
    "flatten_folds_the_batch": (
        [nn.Conv2d(1, 3, 3), nn.Flatten(start_dim=-4), nn.Linear(4, 2)],
        r"module at '1' .*start_dim=-4, end_dim=-1 flattens axes 0 to 3 of its "
        r"rank-4 input \(N, C, H, W\): it folds the batch axis",
    ),
    "flatten_folds_the_batch_after_linear": (
        [nn.Linear(3, 4), nn.Flatten(0), nn.Linear(4, 2)],
        r"module at '1' .*axes 0 to 1 of its rank-2 input \(N, F\): it folds",
    ),
    "flatten_leaves_the_last_axis": (
        [nn.Conv2d(1, 3, 3), nn.Flatten(1, 2), nn.Linear(4, 2)],
        r"module at '1' .*axes 1 to 2 of its rank-4 input \(N, C, H, W\): it "
        r"leaves axes 3 to 3 unflattened",
    ),
    "flatten_dims_out_of_range": (
        [nn.Conv1d(1, 3, 3), nn.Flatten(-4), nn.Linear(4, 2)],
        r"module at '1' .*start_dim=-4, end_dim=-1 are out of range for its rank-3 "
        r"input \(N, C, L\)",
    ),
    "flatten_start_after_end": (
        [nn.Conv2d(1, 3, 3), nn.Flatten(3, 2), nn.Linear(4, 2)],
        r"module at '1' .*start_dim comes after end_dim",
    ),
    "linear_after_conv_without_flatten": (
        [nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Linear(4, 2)],
        r"module at '2' .*put nn.Flatten\(\) between them",
    ),
    "conv_after_linear": (
        [nn.Linear(3, 4), nn.Conv1d(4, 2, 1)],
        r"module at '1' .*convolution after a Linear layer",
    ),
    "pooling_after_linear": (
        [nn.Linear(3, 4), nn.MaxPool1d(2), nn.Linear(2, 1)],
        r"module at '1' \(MaxPool1d.*pools over the feature axis",
    ),
    "pooling_of_wrong_dimension": (
        [nn.Conv1d(2, 4, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 1)],
        r"module at '1' .*2-d pooling after a 1-d convolution",
    ),
    "in_features_mismatch": (
        [nn.Linear(3, 4), nn.ReLU(), nn.Linear(5, 1)],
        r"module at '2' .*expects 5 input features but '0' produces 4",
    ),
    "batch_norm_mismatch": (
        [nn.Linear(3, 4), nn.BatchNorm1d(6), nn.Linear(4, 1)],
        r"module at '1' \(BatchNorm1d.*expects 6 input features",
    ),
    "layer_norm_over_two_axes": (
        [nn.Linear(3, 4), nn.LayerNorm((2, 4)), nn.Linear(4, 1)],
        r"module at '1' .*normalized_shape=\(2, 4\) is not the feature axis",
    ),
    "group_norm_with_groups": (
        [nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4), nn.Conv2d(4, 2, 1)],
        r"module at '1' .*num_groups=2 splits the channels",
    ),
    "instance_norm_after_linear": (
        [nn.Linear(3, 4), nn.InstanceNorm1d(4), nn.Linear(4, 1)],
        r"module at '1' .*instance normalization after a Linear",
    ),
    "transposed_conv": (
        [nn.Conv2d(1, 4, 3), nn.ConvTranspose2d(4, 2, 3)],
        r"module at '1' .*transposed convolutions are not supported",
    ),
    "recurrent": (
        [nn.Linear(3, 4), nn.LSTM(4, 2)],
        r"module at '1' .*recurrent layers are not supported",
    ),
    "module_list": (
        [nn.Linear(3, 4), nn.ModuleList([nn.Linear(4, 4)])],
        r"module at '1' .*only nn.Sequential fixes the order",
    ),
    "sequential_with_own_forward": (
        [nn.Linear(3, 4), ReversedSequential(nn.ReLU(), nn.Linear(4, 4))],
        r"module at '1' .*overrides forward",
    ),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_architecture_raises_naming_module(case):
    layers, message = UNSUPPORTED[case]
    model = nn.Sequential(*layers)
    with pytest.raises(UnsupportedArchitectureError, match=message):
        permutation_spec(model)
    with pytest.raises(UnsupportedArchitectureError, match=message):
        permute(model, random_state=0)


def test_shared_module_raises():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(nn.Linear(3, 4), shared, nn.ReLU(), shared, nn.Linear(4, 1))
    with pytest.raises(
        UnsupportedArchitectureError, match=r"'3.weight' and '1.weight'"
    ):
        permutation_spec(model)


@pytest.mark.parametrize("entry_point", [permutation_spec, permute])
def test_non_sequential_model_raises_unsupported_architecture(entry_point):
    """Regression: a top-level non-Sequential model raised a bare TypeError
    while every other unsupported model raised UnsupportedArchitectureError."""
    message = (
        r"cannot permute module at root \(Linear\(in_features=3, out_features=2, "
        r"bias=True\)\): the model is a Linear, not a torch.nn.Sequential"
    )
    with pytest.raises(UnsupportedArchitectureError, match=message):
        entry_point(nn.Linear(3, 2))
    # Callers that caught the TypeError raised before still catch it.
    with pytest.raises(TypeError, match="at root"):
        entry_point(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="at root"):
        entry_point(nn.ModuleList([nn.Linear(3, 2)]))


def test_non_module_model_raises_type_error():
    with pytest.raises(TypeError, match=r"model of type 'str' is not valid; expect"):
        permutation_spec("model")


def test_sequential_subclass_at_root_is_named_root():
    model = ReversedSequential(nn.Linear(3, 4), nn.Linear(4, 3))
    with pytest.raises(
        UnsupportedArchitectureError, match=r"module at root \(ReversedSequential"
    ):
        permutation_spec(model)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("flatten", "input_shape"),
    [(nn.Flatten(-3), (1, 6, 6)), (nn.Flatten(-2, -1), (2, 7))],
    ids=["conv2d", "conv1d"],
)
def test_negative_flatten_dims_are_counted_from_the_input_rank(
    flatten, input_shape, seed
):
    """Regression: Flatten(start_dim=-3) after a Conv2d, which is Flatten(1)
    for batched (N, C, H, W) inputs, was refused as folding the batch."""
    n_channels = input_shape[0]
    conv = nn.Conv2d if len(input_shape) == 3 else nn.Conv1d
    n_features = 4 * math.prod(size - 2 for size in input_shape[1:])
    model = nn.Sequential(
        conv(n_channels, 4, 3), nn.ReLU(), flatten, nn.Linear(n_features, 2)
    )
    reference = nn.Sequential(*model[:2], nn.Flatten(), model[3])

    spec = permutation_spec(model)
    assert spec == permutation_spec(reference)
    assert spec.groups[0].axes[-1].block_size == n_features // 4
    check_same_outputs(
        model.eval(),
        permute(model, random_state=seed).eval(),
        make_inputs(input_shape, seed),
    )


def test_permute_state_dict_rejects_other_architecture_argument():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    with pytest.raises(TypeError, match=r"model_or_spec='spec'.*expected a torch"):
        permute_state_dict(model.state_dict(), "spec")


def test_bad_random_state_raises():
    spec = permutation_spec(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1)))
    with pytest.raises(TypeError, match=r"random_state=1.5"):
        random_permutations(spec, random_state=1.5)


def make_mlp_case():
    """A small MLP, its spec and a valid set of permutations."""
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    spec = permutation_spec(model)
    return model, spec, {"0": np.array([1, 0, 3, 2])}


@pytest.mark.parametrize(
    ("perms", "message"),
    [
        ({}, r"perms has groups \[\]; expected exactly \['0'\]"),
        ({"0": [0, 1, 2, 3], "9": [0]}, r"expected exactly \['0'\]"),
        ({"0": [0, 0, 1, 2]}, r"perms\['0'\]=\[0, 0, 1, 2\] is not a permutation"),
        ({"0": [0, 1, 2, 7]}, r"is not a permutation of range\(4\)"),
        ({"0": [0.0, 1.0, 2.0, 3.0]}, r"expected a 1-D integer array"),
        ({"0": [[0, 1], [2, 3]]}, r"expected a 1-D integer array"),
        ({"0": [2, 0, 1]}, r"perms\['0'\] has 3 entries; expected 4"),
    ],
)
def test_apply_permutations_rejects_bad_permutations(perms, message):
    model, spec, _ = make_mlp_case()
    with pytest.raises(ValueError, match=message):
        apply_permutations(model.state_dict(), spec, perms)


def test_apply_permutations_rejects_mismatched_state_dict():
    model, spec, perms = make_mlp_case()
    missing = {k: v for k, v in model.state_dict().items() if k != "2.weight"}
    with pytest.raises(ValueError, match=r"no entry '2.weight'.*another architect"):
        apply_permutations(missing, spec, perms)

    wrong = dict(model.state_dict(), **{"0.bias": torch.zeros(5)})
    with pytest.raises(ValueError, match=r"state_dict\['0.bias'\] has shape \(5,\)"):
        apply_permutations(wrong, spec, perms)

    listed = dict(model.state_dict(), **{"0.bias": ShapedList([0.0] * 4)})
    with pytest.raises(TypeError, match=r"state_dict\['0.bias'\] has type 'Shape"):
        apply_permutations(listed, spec, perms)


class ShapedList(list):
    """A list with a shape attribute, to reach the type check of entries."""

    @property
    def shape(self):
        return (len(self),)


def test_invert_permutations_rejects_non_permutation():
    with pytest.raises(ValueError, match=r"perms\['a'\]=\[1, 1\] is not a perm"):
        invert_permutations({"a": [1, 1]})


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        (
            (
                PermutationGroup("0", 2, (PermutedAxis("w", 0),)),
                PermutationGroup("0", 2, (PermutedAxis("w", 0),)),
            ),
            r"groups=\['0', '0'\] repeat a name",
        ),
        ((PermutationGroup("0", 0, ()),), r"group '0' has size=0; expected >= 1"),
        (
            (PermutationGroup("0", 2, (PermutedAxis("v", 0),)),),
            r"permutes key='v', which is not in shapes",
        ),
        (
            (PermutationGroup("0", 2, (PermutedAxis("w", 2),)),),
            r"axis=2 of 'w' is out of range",
        ),
        (
            (PermutationGroup("0", 3, (PermutedAxis("w", 1, block_size=2),)),),
            r"axis 1 of 'w' has length 4; expected size \* block_size = 3 \* 2",
        ),
    ],
)
def test_permutation_spec_validates_hand_written_groups(groups, message):
    with pytest.raises(ValueError, match=message):
        PermutationSpec(groups=groups, shapes=(("w", (2, 4)),))


def make_hooked_mlp(kind: str, seed: int) -> tuple[nn.Sequential, object]:
    """An MLP whose middle layer scales its neurons by position in a hook.

    ``kind`` is "forward hook", "forward pre-hook", "kwargs hook" or "none".
    """
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2)
    )
    scales = torch.arange(16.0)
    if kind == "none":
        return model, None
    if kind == "forward hook":
        handle = model[2].register_forward_hook(
            lambda module, inputs, output: output * scales
        )
    elif kind == "forward pre-hook":
        handle = model[2].register_forward_pre_hook(
            lambda module, inputs: inputs[0] * scales
        )
    else:
        handle = model[2].register_forward_hook(
            lambda module, args, kwargs, output: output * scales, with_kwargs=True
        )
    return model, handle


@pytest.mark.parametrize("kind", ["forward hook", "forward pre-hook", "kwargs hook"])
@pytest.mark.parametrize("seed", [0, 1])
def test_models_with_hooks_are_refused(kind, seed):
    """Regression: a hook on a hidden layer broke equivalence silently."""
    model, _ = make_hooked_mlp(kind, seed)
    described = kind.replace("kwargs hook", "forward hook")
    message = rf"module at '2' \(Linear\(in_features=16.*it has a {described}"
    with pytest.raises(UnsupportedArchitectureError, match=message):
        permute(model, random_state=seed)
    with pytest.raises(UnsupportedArchitectureError, match=message):
        permute_state_dict(model.state_dict(), model, random_state=seed)


@pytest.mark.parametrize("seed", [0, 1])
def test_hooks_do_not_affect_spec_paths_or_plain_models(seed):
    model, handle = make_hooked_mlp("forward hook", seed)
    plain, _ = make_hooked_mlp("none", seed)
    spec = permutation_spec(plain)
    permuted = permute_state_dict(model.state_dict(), spec, random_state=seed)
    assert not torch.equal(permuted["2.weight"], model.state_dict()["2.weight"])

    handle.remove()
    twin = permute(model, random_state=seed).eval()
    check_same_outputs(model.eval(), twin, make_inputs((8,), seed))


@pytest.mark.parametrize("kind", ["pre-hook", "hook"])
def test_global_forward_hooks_are_refused(kind):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    name = f"register_module_forward_{kind.replace('-', '_')}"
    register = getattr(nn.modules.module, name)
    handle = register(lambda *args: None)
    try:
        with pytest.raises(UnsupportedArchitectureError, match="global forward hook"):
            permute(model, random_state=0)
    finally:
        handle.remove()
    permute(model, random_state=0)


@pytest.mark.parametrize(
    ("norm", "message"),
    [
        (
            torch.nn.utils.weight_norm,
            r"module at '0' \(Linear\(in_features=8.*old-style weight norm \(torch"
            r".nn.utils.weight_norm\).*remove_weight_norm",
        ),
        (
            torch.nn.utils.spectral_norm,
            r"module at '0' \(Linear\(in_features=8.*old-style spectral norm "
            r"\(torch.nn.utils.spectral_norm\).*remove_spectral_norm",
        ),
    ],
)
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_old_style_weight_and_spectral_norm_are_refused(norm, message):
    """Regression: they failed with "'0.weight', which is not in shapes"."""
    model = nn.Sequential(norm(nn.Linear(8, 16)), nn.ReLU(), nn.Linear(16, 2))
    with pytest.raises(UnsupportedArchitectureError, match=message):
        permutation_spec(model)
    with pytest.raises(UnsupportedArchitectureError, match=message):
        permute(model, random_state=0)


@pytest.mark.parametrize("amount", [0.0, 0.5])
def test_pruned_layers_are_refused_as_pruned(amount):
    """Regression: a pruned layer was said to carry spectral norm."""
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    torch.nn.utils.prune.l1_unstructured(model[2], "weight", amount=amount)
    with pytest.raises(
        UnsupportedArchitectureError,
        match=r"module at '2' .*pruning \(torch.nn.utils.prune\) recomputes "
        r"'weight' from 'weight_orig' and 'weight_mask'.*prune.remove\(module, "
        r"'weight'\)",
    ):
        permute(model, random_state=0)
    torch.nn.utils.prune.remove(model[2], "weight")
    permute(model, random_state=0)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_weight_norm_parameters_without_hook_are_refused():
    model = nn.Sequential(
        torch.nn.utils.weight_norm(nn.Linear(8, 16)), nn.ReLU(), nn.Linear(16, 2)
    )
    model[0]._forward_pre_hooks.clear()  # the parameters alone still tell
    with pytest.raises(UnsupportedArchitectureError, match="old-style weight norm"):
        permutation_spec(model)


def test_negative_random_state_names_the_argument():
    """Regression: numpy's "expected non-negative integer" named no argument."""
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    with pytest.raises(ValueError, match=r"random_state=-1 is not valid"):
        permute(model, random_state=-1)
