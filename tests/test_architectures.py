"""Tests of wdcore.architectures: the zoo's CNNs and their initialization."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from wdcore.architectures import (
    ACTIVATIONS,
    FIXED_ARCHITECTURE,
    INITIALIZATIONS,
    architecture_label,
    build_cnn,
    check_architecture,
    count_parameters,
    initialize_,
    pool_schedule,
    sample_architecture,
)

FIXED_LAYER_TYPES = [
    *[nn.Conv2d, nn.BatchNorm2d, "activation", nn.MaxPool2d] * 3,
    nn.Flatten,
    *[nn.Linear, "activation", nn.BatchNorm1d, nn.Dropout] * 2,
    nn.Linear,
]
ACTIVATION_TYPES = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}


def make_architecture(**changes):
    """The fixed architecture with some entries changed."""
    return {**FIXED_ARCHITECTURE, **changes}


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fixed_architecture_layers_follow_the_paper(activation):
    model = build_cnn(FIXED_ARCHITECTURE, activation=activation)
    expected = [
        ACTIVATION_TYPES[activation] if kind == "activation" else kind
        for kind in FIXED_LAYER_TYPES
    ]

    assert [type(layer) for layer in model] == expected
    convolutions = [layer for layer in model if isinstance(layer, nn.Conv2d)]
    assert [conv.out_channels for conv in convolutions] == [8, 16, 32]
    assert all(conv.kernel_size == (5, 5) for conv in convolutions)
    linears = [layer for layer in model if isinstance(layer, nn.Linear)]
    assert [linear.out_features for linear in linears] == [128, 64, 10]
    assert all(layer.p == 0.5 for layer in model if isinstance(layer, nn.Dropout))


@pytest.mark.parametrize(("input_size", "n_flat"), [(8, 128), (16, 128), (32, 512)])
def test_fixed_architecture_accepts_input_sizes(input_size, n_flat):
    model = build_cnn(FIXED_ARCHITECTURE, input_size=input_size).eval()
    assert model(torch.zeros(3, 1, input_size, input_size)).shape == (3, 10)
    assert model[13 if input_size > 8 else 12].in_features == n_flat


def test_fixed_architecture_parameter_count():
    # conv: 1*8*25+8, 8*16*25+16, 16*32*25+32; BN: 2*(8+16+32+128+64);
    # linear: 128*128+128, 128*64+64, 64*10+10
    expected = 208 + 3216 + 12832 + 2 * 248 + 16512 + 8256 + 650
    assert count_parameters(build_cnn(FIXED_ARCHITECTURE)) == expected


@pytest.mark.parametrize(
    ("n_conv_layers", "input_size", "expected"),
    [
        (3, 16, [True, True, True]),
        (5, 16, [True, True, True, False, False]),
        (3, 8, [True, True, False]),
        (4, 32, [True, True, True, True]),
        (2, 3, [False, False]),
    ],
)
def test_pool_schedule_stops_at_two_pixels(n_conv_layers, input_size, expected):
    assert pool_schedule(n_conv_layers, input_size) == expected


@pytest.mark.parametrize("seed", range(6))
def test_varied_architectures_build_and_run(seed):
    architecture = sample_architecture(random_state=seed)
    model = build_cnn(architecture, activation="elu").eval()

    assert architecture["kernel_size"] in (3, 5, 7)
    assert len(architecture["conv_channels"]) in (3, 4, 5)
    assert len(architecture["fc_units"]) in (2, 3, 4)
    assert max(architecture["conv_channels"]) <= 32
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 10)
    assert check_architecture(architecture) == architecture
    assert sample_architecture(random_state=seed) == architecture


def test_varied_space_covers_every_choice():
    architectures = [sample_architecture(random_state=seed) for seed in range(60)]
    assert {a["kernel_size"] for a in architectures} == {3, 5, 7}
    assert {len(a["conv_channels"]) for a in architectures} == {3, 4, 5}
    assert {len(a["fc_units"]) for a in architectures} == {2, 3, 4}
    assert {a["conv_channels"][0] for a in architectures} == {4, 8, 16}


@pytest.mark.parametrize("initialization", INITIALIZATIONS)
@pytest.mark.parametrize("seed", [0, 1])
def test_initialization_is_reproducible_and_zeroes_biases(initialization, seed):
    first = initialize_(
        build_cnn(FIXED_ARCHITECTURE), initialization, random_state=seed
    )
    second = initialize_(
        build_cnn(FIXED_ARCHITECTURE), initialization, random_state=seed
    )

    for (name, tensor), other in zip(
        first.state_dict().items(), second.state_dict().values(), strict=True
    ):
        assert torch.equal(tensor, other), name
    for layer in first:
        if isinstance(layer, nn.Conv2d | nn.Linear):
            assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_initialization_distributions(seed):
    model = build_cnn(FIXED_ARCHITECTURE)
    fc = model[13]
    weights = fc.weight.detach()
    bound = math.sqrt(6 / (128 + 128))

    initialize_(model, "constant", random_state=seed)
    assert torch.all(weights == 0.1)
    initialize_(model, "normal", random_state=seed)
    assert float(weights.std()) == pytest.approx(1.0, abs=0.03)
    initialize_(model, "glorot_uniform", random_state=seed)
    assert float(weights.abs().max()) <= bound
    assert float(weights.abs().max()) > 0.95 * bound
    initialize_(model, "glorot_normal", random_state=seed)
    assert float(weights.std()) == pytest.approx(math.sqrt(2 / 256), rel=0.05)


def test_different_seeds_give_different_weights():
    first = initialize_(build_cnn(FIXED_ARCHITECTURE), "glorot_normal", random_state=0)
    second = initialize_(build_cnn(FIXED_ARCHITECTURE), "glorot_normal", random_state=1)
    assert not torch.equal(first[0].weight, second[0].weight)


def test_architecture_label_and_normalization():
    architecture = make_architecture(conv_channels=(np.int64(4), 8), fc_units=(32,))
    normalized = check_architecture(architecture)

    assert normalized["conv_channels"] == [4, 8]
    assert type(normalized["conv_channels"][0]) is int
    assert architecture_label(architecture) == "conv4-8_k5_fc32"


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"kernel_size": 4}, r"architecture\['kernel_size'\]=4 .* odd int"),
        ({"kernel_size": 0}, r"architecture\['kernel_size'\]=0 .* positive int"),
        ({"dropout": 1.0}, r"architecture\['dropout'\]=1.0 .* in \[0, 1\)"),
        ({"conv_channels": []}, r"architecture\['conv_channels'\]=\[\] .* non-empty"),
        ({"fc_units": [64, -1]}, r"architecture\['fc_units'\]=\[64, -1\]"),
        ({"n_outputs": 2.5}, r"architecture\['n_outputs'\]=2.5 .* positive int"),
        ({"conv_channels": [True, 2]}, r"\['conv_channels'\]=\[True, 2\] .* ints"),
        ({"fc_units": (64, False)}, r"architecture\['fc_units'\]=\(64, False\)"),
        ({"dropout": False}, r"architecture\['dropout'\]=False .* in \[0, 1\)"),
        ({"width": 3}, r"unknown keys \['width'\]"),
    ],
)
def test_check_architecture_rejects_bad_entries(changes, match):
    """Regression: conv_channels=[True, 2] and dropout=False were accepted,
    because bool is an Integral (and a Real); bools are refused everywhere."""
    with pytest.raises(ValueError, match=match):
        check_architecture(make_architecture(**changes))


def test_check_architecture_rejects_missing_keys_and_non_dicts():
    partial = {k: v for k, v in FIXED_ARCHITECTURE.items() if k != "fc_units"}
    with pytest.raises(ValueError, match=r"missing keys \['fc_units'\]"):
        check_architecture(partial)
    with pytest.raises(TypeError, match="architecture=.* is not a dict"):
        check_architecture([8, 16, 32])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"activation": "gelu"}, "activation='gelu' is not valid"),
        ({"input_size": 1}, "input_size=1 must be an int"),
        ({"input_size": 16.0}, r"input_size=16.0 must be an int"),
    ],
)
def test_build_cnn_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_cnn(FIXED_ARCHITECTURE, **kwargs)


@pytest.mark.parametrize("initialization", INITIALIZATIONS)
@pytest.mark.parametrize("seed", [0, 1])
def test_initialize_handles_layers_without_bias(initialization, seed):
    """Regression: ``module.bias.zero_()`` crashed on bias-free layers, which
    issue 3 supports (convolutions without bias)."""
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(36, 5, bias=False),
        nn.Linear(5, 2),
    )
    initialize_(model, initialization, random_state=seed)

    assert model[0].bias is None and model[4].bias is None
    assert torch.count_nonzero(model[5].bias) == 0
    assert torch.count_nonzero(model[0].weight) > 0


def test_count_parameters_counts_frozen_and_shared_parameters_once():
    """Regression: the docstring said "trainable" but every parameter counted."""
    shared = nn.Linear(4, 4)
    model = nn.Sequential(nn.Linear(3, 4), shared, nn.ReLU(), shared, nn.BatchNorm1d(4))
    model[0].requires_grad_(False)

    assert count_parameters(model) == (3 * 4 + 4) + (4 * 4 + 4) + 2 * 4


def test_initialize_rejects_unknown_scheme():
    with pytest.raises(ValueError, match="initialization='he' is not valid"):
        initialize_(build_cnn(FIXED_ARCHITECTURE), "he")


@pytest.mark.parametrize("seed", [0, 3])
def test_networks_are_compatible_with_permutations(seed):
    from wdcore.permutations import permute

    architecture = (
        FIXED_ARCHITECTURE if seed == 0 else sample_architecture(random_state=seed)
    )
    model = initialize_(build_cnn(architecture), "glorot_normal", random_state=seed)
    model.eval()
    images = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(seed))
    permuted = permute(model, random_state=seed).eval()

    torch.testing.assert_close(permuted(images), model(images), rtol=1e-4, atol=1e-5)
    assert not torch.equal(permuted[0].weight, model[0].weight)
