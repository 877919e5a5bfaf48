"""The convolutional networks of the model zoo.

The fixed architecture follows the "nws_fixed" subset of the NWS zoo (Eilertsen
et al., ECAI 2020): three 5 x 5 convolutions with 8, 16 and 32 channels, each
followed by BatchNorm, an activation and 2 x 2 max pooling, then fully connected
layers of 128 and 64 units, each followed by an activation, BatchNorm and dropout
0.5, and a linear output layer. Chapter 2 explains how our 1 x 16 x 16 input
differs from the paper's 32 x 32 x 3.

An architecture is a plain JSON-friendly dict, so it can be stored next to the
weights and the network rebuilt from it. Networks are flat ``nn.Sequential``
modules, which keeps their state-dict keys short (``"0.weight"``, ``"1.weight"``,
...) and lets :mod:`wdcore.permutations` walk them layer by layer.
"""

from __future__ import annotations

import numbers
from typing import Any

import torch
from torch import nn

from wdcore._random import RandomState, check_random_state, torch_generator

__all__ = [
    "ACTIVATIONS",
    "FIXED_ARCHITECTURE",
    "INITIALIZATIONS",
    "architecture_label",
    "build_cnn",
    "check_architecture",
    "count_parameters",
    "initialize_",
    "pool_schedule",
    "sample_architecture",
]

FIXED_ARCHITECTURE = {
    "conv_channels": [8, 16, 32],
    "kernel_size": 5,
    "fc_units": [128, 64],
    "in_channels": 1,
    "n_outputs": 10,
    "dropout": 0.5,
}
ACTIVATIONS = ("relu", "elu", "sigmoid", "tanh")
INITIALIZATIONS = ("constant", "normal", "glorot_uniform", "glorot_normal")
KERNEL_SIZES = (3, 5, 7)
CONSTANT_INIT = 0.1

# The "varied" space, modelled on the NWS "nws_main" subset: filter size, number
# of convolutions and of fully connected layers, and layer widths all vary.
VARIED_CONV_DEPTHS = (3, 4, 5)
VARIED_FC_DEPTHS = (2, 3, 4)
VARIED_CONV_WIDTHS = (4, 8, 16)
VARIED_MAX_CONV_WIDTH = 32
VARIED_FC_WIDTHS = (32, 64, 128)
VARIED_MIN_FC_WIDTH = 16

_ACTIVATION_MODULES = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}
_ARCHITECTURE_KEYS = set(FIXED_ARCHITECTURE)


def _check_int_list(name: str, value: Any) -> list[int]:
    """Check a non-empty list of positive ints (bools refused); return a list."""
    if (
        not isinstance(value, list | tuple)
        or not value
        or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
            for v in value
        )
    ):
        raise ValueError(
            f"architecture[{name!r}]={value!r} is not valid; expected a non-empty "
            "list of positive ints"
        )
    return [int(v) for v in value]


def _check_positive_int(name: str, value: Any) -> int:
    """Check one positive int entry of an architecture."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"architecture[{name!r}]={value!r} is not valid; expected a positive int"
        )
    return int(value)


def check_architecture(architecture: dict) -> dict:
    """Validate an architecture dict and return a normalized copy.

    Parameters
    ----------
    architecture : dict
        Keys ``conv_channels`` (list of int), ``kernel_size`` (odd int),
        ``fc_units`` (list of int), ``in_channels`` (int), ``n_outputs`` (int)
        and ``dropout`` (float in [0, 1)).

    Returns
    -------
    dict
        The same architecture with lists and built-in ints and floats, so it
        serializes to canonical JSON.

    Raises
    ------
    TypeError
        If ``architecture`` is not a dict.
    ValueError
        If a key is missing or unknown, or a value is out of range.

    Examples
    --------
    >>> check_architecture(FIXED_ARCHITECTURE)["conv_channels"]
    [8, 16, 32]
    """
    if not isinstance(architecture, dict):
        raise TypeError(f"architecture={architecture!r} is not a dict")
    missing = sorted(_ARCHITECTURE_KEYS - set(architecture))
    unknown = sorted(set(architecture) - _ARCHITECTURE_KEYS)
    if missing or unknown:
        raise ValueError(
            f"architecture has missing keys {missing!r} and unknown keys "
            f"{unknown!r}; expected exactly {sorted(_ARCHITECTURE_KEYS)!r}"
        )
    kernel_size = _check_positive_int("kernel_size", architecture["kernel_size"])
    if kernel_size % 2 == 0:
        raise ValueError(
            f"architecture['kernel_size']={kernel_size!r} is not valid; expected an "
            "odd int so that 'same' padding is symmetric"
        )
    dropout = architecture["dropout"]
    if (
        isinstance(dropout, bool)
        or not isinstance(dropout, numbers.Real)
        or not 0 <= dropout < 1
    ):
        raise ValueError(
            f"architecture['dropout']={dropout!r} is not valid; expected a float "
            "in [0, 1)"
        )
    return {
        "conv_channels": _check_int_list(
            "conv_channels", architecture["conv_channels"]
        ),
        "kernel_size": kernel_size,
        "fc_units": _check_int_list("fc_units", architecture["fc_units"]),
        "in_channels": _check_positive_int("in_channels", architecture["in_channels"]),
        "n_outputs": _check_positive_int("n_outputs", architecture["n_outputs"]),
        "dropout": float(dropout),
    }


def pool_schedule(n_conv_layers: int, input_size: int) -> list[bool]:
    """Decide after which convolutions a 2 x 2 max pooling fits.

    A convolution is followed by pooling only while its feature map is at least
    4 pixels wide, so the map never shrinks below 2 x 2. For the fixed
    architecture on 16 x 16 inputs every convolution is pooled (16, 8, 4, 2);
    deeper networks of the varied space keep their last maps at 2 x 2.

    Parameters
    ----------
    n_conv_layers : int
        Number of convolutions.
    input_size : int
        Height and width of the input images in pixels.

    Returns
    -------
    list of bool
        ``True`` where the convolution is followed by max pooling.

    Examples
    --------
    >>> pool_schedule(5, 16)
    [True, True, True, False, False]
    """
    schedule, size = [], input_size
    for _ in range(n_conv_layers):
        schedule.append(size >= 4)
        size = size // 2 if size >= 4 else size
    return schedule


def _final_map_size(n_conv_layers: int, input_size: int) -> int:
    """Width of the feature map after all convolutions and poolings."""
    size = input_size
    for pooled in pool_schedule(n_conv_layers, input_size):
        size = size // 2 if pooled else size
    return size


def build_cnn(
    architecture: dict, *, input_size: int = 16, activation: str = "relu"
) -> nn.Sequential:
    """Build a CNN as one flat ``nn.Sequential`` from an architecture dict.

    Each convolution block is Conv2d ('same' padding), BatchNorm2d, activation
    and, where :func:`pool_schedule` allows, MaxPool2d(2). After a Flatten,
    each hidden fully connected block is Linear, activation, BatchNorm1d and
    Dropout, and a final Linear gives ``n_outputs`` logits. Parameters keep
    PyTorch's default initialization; see :func:`initialize_`.

    Parameters
    ----------
    architecture : dict
        See :func:`check_architecture`; :data:`FIXED_ARCHITECTURE` is the
        paper's fixed network.
    input_size : int, default=16
        Height and width of the input images in pixels.
    activation : {"relu", "elu", "sigmoid", "tanh"}, default="relu"
        Activation function of every hidden layer.

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    ValueError
        If the architecture, ``input_size`` or ``activation`` is not valid.

    Examples
    --------
    >>> model = build_cnn(FIXED_ARCHITECTURE)
    >>> model(torch.zeros(2, 1, 16, 16)).shape
    torch.Size([2, 10])
    >>> count_parameters(model)
    42170
    """
    architecture = check_architecture(architecture)
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation={activation!r} is not valid; expected one of {ACTIVATIONS}"
        )
    if isinstance(input_size, bool) or not isinstance(input_size, numbers.Integral):
        raise ValueError(f"input_size={input_size!r} must be an int of at least 2")
    if input_size < 2:
        raise ValueError(f"input_size={input_size!r} must be an int of at least 2")
    make_activation = _ACTIVATION_MODULES[activation]
    channels = [architecture["in_channels"], *architecture["conv_channels"]]
    pooled = pool_schedule(len(architecture["conv_channels"]), input_size)
    layers: list[nn.Module] = []
    for n_in, n_out, pool in zip(channels[:-1], channels[1:], pooled, strict=True):
        layers.append(
            nn.Conv2d(n_in, n_out, architecture["kernel_size"], padding="same")
        )
        layers += [nn.BatchNorm2d(n_out), make_activation()]
        layers += [nn.MaxPool2d(2)] if pool else []

    map_size = _final_map_size(len(pooled), input_size)
    units = [channels[-1] * map_size**2, *architecture["fc_units"]]
    layers.append(nn.Flatten())
    for n_in, n_out in zip(units[:-1], units[1:], strict=True):
        layers += [nn.Linear(n_in, n_out), make_activation(), nn.BatchNorm1d(n_out)]
        layers.append(nn.Dropout(architecture["dropout"]))
    layers.append(nn.Linear(units[-1], architecture["n_outputs"]))
    return nn.Sequential(*layers)


def initialize_(
    model: nn.Module, initialization: str, *, random_state: RandomState = None
) -> nn.Module:
    """Initialize the weights of every convolution and linear layer in place.

    Kernels and weight matrices are set by the chosen scheme; biases, where a
    layer has one, are set to zero, and BatchNorm layers keep scale 1 and shift 0.

    Parameters
    ----------
    model : torch.nn.Module
        Network whose Conv2d and Linear layers are initialized.
    initialization : {"constant", "normal", "glorot_uniform", "glorot_normal"}
        ``"constant"`` sets every weight to 0.1, ``"normal"`` draws from
        N(0, 1), and the Glorot (Xavier) schemes scale by fan-in plus fan-out.
    random_state : None, int or numpy.random.Generator, default=None
        Seed of the draws.

    Returns
    -------
    torch.nn.Module
        ``model`` itself.

    Raises
    ------
    ValueError
        If ``initialization`` is not one of :data:`INITIALIZATIONS`.

    Examples
    --------
    >>> model = initialize_(build_cnn(FIXED_ARCHITECTURE), "constant")
    >>> round(model[0].weight.mean().item(), 6)
    0.1
    """
    if initialization not in INITIALIZATIONS:
        raise ValueError(
            f"initialization={initialization!r} is not valid; expected one of "
            f"{INITIALIZATIONS}"
        )
    generator = torch_generator(random_state)
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, nn.Conv2d | nn.Linear):
                continue
            if initialization == "constant":
                nn.init.constant_(module.weight, CONSTANT_INIT)
            elif initialization == "normal":
                nn.init.normal_(module.weight, 0.0, 1.0, generator=generator)
            elif initialization == "glorot_uniform":
                nn.init.xavier_uniform_(module.weight, generator=generator)
            else:
                nn.init.xavier_normal_(module.weight, generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def count_parameters(model: nn.Module) -> int:
    """Count the scalar parameters of a model, trainable or frozen.

    Every tensor of ``model.parameters()`` counts, whatever its
    ``requires_grad``; a parameter shared by two modules counts once. Buffers,
    such as BatchNorm running statistics, are not parameters.

    Parameters
    ----------
    model : torch.nn.Module
        Any module.

    Returns
    -------
    int
        Number of scalar parameters.

    Examples
    --------
    >>> count_parameters(torch.nn.Linear(3, 2))
    8
    """
    return sum(parameter.numel() for parameter in model.parameters())


def sample_architecture(*, random_state: RandomState = None) -> dict:
    """Draw one architecture of the varied space.

    The kernel size is 3, 5 or 7; there are 3, 4 or 5 convolutions whose width
    starts at 4, 8 or 16 channels and doubles per layer up to 32; and 2, 3 or 4
    hidden fully connected layers whose width starts at 32, 64 or 128 units and
    halves per layer down to 16. The widths are smaller than NWS's so that the
    book's zoo trains in minutes on two CPU cores.

    Parameters
    ----------
    random_state : None, int or numpy.random.Generator, default=None
        Source of the draws.

    Returns
    -------
    dict
        An architecture accepted by :func:`build_cnn`.

    Examples
    --------
    >>> architecture = sample_architecture(random_state=0)
    >>> architecture["kernel_size"] in (3, 5, 7)
    True
    """
    rng = check_random_state(random_state)
    n_conv = int(rng.choice(VARIED_CONV_DEPTHS))
    n_fc = int(rng.choice(VARIED_FC_DEPTHS))
    conv_width = int(rng.choice(VARIED_CONV_WIDTHS))
    fc_width = int(rng.choice(VARIED_FC_WIDTHS))
    conv_channels = [
        min(conv_width * 2**layer, VARIED_MAX_CONV_WIDTH) for layer in range(n_conv)
    ]
    fc_units = [max(fc_width // 2**layer, VARIED_MIN_FC_WIDTH) for layer in range(n_fc)]
    return {
        "conv_channels": conv_channels,
        "kernel_size": int(rng.choice(KERNEL_SIZES)),
        "fc_units": fc_units,
        "in_channels": 1,
        "n_outputs": 10,
        "dropout": 0.5,
    }


def architecture_label(architecture: dict) -> str:
    """Describe an architecture in one short string.

    Parameters
    ----------
    architecture : dict
        See :func:`check_architecture`.

    Returns
    -------
    str
        For example ``"conv8-16-32_k5_fc128-64"``.

    Raises
    ------
    TypeError, ValueError
        If ``architecture`` is not valid (see :func:`check_architecture`).

    Examples
    --------
    >>> architecture_label(FIXED_ARCHITECTURE)
    'conv8-16-32_k5_fc128-64'
    """
    architecture = check_architecture(architecture)
    conv = "-".join(str(width) for width in architecture["conv_channels"])
    fc = "-".join(str(width) for width in architecture["fc_units"])
    return f"conv{conv}_k{architecture['kernel_size']}_fc{fc}"
