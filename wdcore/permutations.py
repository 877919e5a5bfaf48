"""Permutation symmetry of feed-forward networks, stored as data.

Reordering the hidden neurons of a fully connected layer (or the channels of a
convolution) and reordering the matching inputs of the next layer gives a
different parameter vector that computes exactly the same function. This
module describes that symmetry of a model as a :class:`PermutationSpec` (which
permutation groups exist and which axes of which state-dict entries each one
reorders) and applies permutations to a model or to a bare state dict. Chapter
1 of the book (``notebooks/01_permutation_symmetry.ipynb``) derives it.

Supported models are ``torch.nn.Sequential`` containers (nested ones included)
made of ``Linear``, ``Conv1d/2d/3d`` (``groups=1``, with or without bias),
``BatchNorm``, ``InstanceNorm``, ``LayerNorm`` over the feature axis,
``GroupNorm`` with one group or one group per channel, element-wise
activations, dropout, pooling and ``Flatten`` between a convolution and a
linear layer. Any other module raises :class:`UnsupportedArchitectureError`
naming the module, its state-dict prefix and the reason; so do modules with
forward hooks or pre-hooks (which may act on neurons by position), old-style
weight or spectral norm, and global forward hooks.
"""

from __future__ import annotations

import copy
import functools
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from wdcore._random import RandomState, check_random_state
from wdcore.io import pruned_tensor_names

__all__ = [
    "PermutationGroup",
    "PermutationSpec",
    "PermutedAxis",
    "UnsupportedArchitectureError",
    "apply_permutations",
    "invert_permutations",
    "log10_n_permutations",
    "permutation_spec",
    "permute",
    "permute_state_dict",
    "random_permutations",
]

Permutations = dict[str, np.ndarray]


class UnsupportedArchitectureError(ValueError, TypeError):
    """A model contains a module whose permutation symmetry is not known.

    It subclasses ``ValueError`` (the model is a valid module whose
    architecture is not supported) and ``TypeError``, which a model that is not
    a ``torch.nn.Sequential`` used to raise, so callers catching either still
    catch it.

    Examples
    --------
    >>> issubclass(UnsupportedArchitectureError, ValueError)
    True
    >>> issubclass(UnsupportedArchitectureError, TypeError)
    True
    """


@dataclass(frozen=True)
class PermutedAxis:
    """One axis of one state-dict entry that a permutation group reorders.

    Parameters
    ----------
    key : str
        State-dict key, e.g. ``"0.weight"``.
    axis : int
        Axis of that entry that is reordered.
    block_size : int, default=1
        Number of consecutive entries along ``axis`` that belong to one neuron.
        It is 1 everywhere except after a ``Flatten``: there each channel owns
        a contiguous block of ``H * W`` input columns of the next layer, and
        the block moves as a whole.

    Examples
    --------
    >>> PermutedAxis("3.weight", 1, block_size=4)
    PermutedAxis(key='3.weight', axis=1, block_size=4)
    """

    key: str
    axis: int
    block_size: int = 1


@dataclass(frozen=True)
class PermutationGroup:
    """One permutation: the hidden neurons (or channels) of one layer.

    Parameters
    ----------
    name : str
        State-dict prefix of the layer whose outputs are permuted, e.g.
        ``"features.0"``; unique within a spec.
    size : int
        Number of neurons or channels, so the group has ``size!`` elements.
    axes : tuple of PermutedAxis
        Every axis the permutation reorders: the layer's own weights and bias
        along their output axis, per-channel normalization parameters and
        statistics, and the next layer's weights along their input axis.

    Examples
    --------
    >>> group = PermutationGroup("0", 3, (PermutedAxis("0.weight", 0),))
    >>> group.size
    3
    """

    name: str
    size: int
    axes: tuple[PermutedAxis, ...]


@dataclass(frozen=True)
class PermutationSpec:
    """The permutation symmetry of one architecture.

    Parameters
    ----------
    groups : tuple of PermutationGroup
        One group per hidden layer, in forward order. Inputs of the first layer
        and outputs of the last layer have no group: they are never permuted.
    shapes : tuple of (str, tuple of int)
        Shape of every state-dict entry of the model, in state-dict order.

    Raises
    ------
    ValueError
        If a group name repeats, a group size is not positive, an axis names an
        entry missing from ``shapes``, or an axis length differs from
        ``size * block_size``.

    Examples
    --------
    >>> spec = PermutationSpec(
    ...     groups=(PermutationGroup("0", 2, (PermutedAxis("0.weight", 0),)),),
    ...     shapes=(("0.weight", (2, 5)),),
    ... )
    >>> [group.size for group in spec.groups]
    [2]
    """

    groups: tuple[PermutationGroup, ...]
    shapes: tuple[tuple[str, tuple[int, ...]], ...]

    def __post_init__(self) -> None:
        shapes = dict(self.shapes)
        names = [group.name for group in self.groups]
        if len(set(names)) != len(names):
            raise ValueError(f"groups={names!r} repeat a name; expected unique names")
        for group in self.groups:
            if group.size < 1:
                raise ValueError(
                    f"group {group.name!r} has size={group.size!r}; expected >= 1"
                )
            for ref in group.axes:
                _check_axis(ref, group, shapes)

    @functools.cached_property
    def shape_of(self) -> dict[str, tuple[int, ...]]:
        """Shape of each state-dict entry, by key."""
        return dict(self.shapes)


def _check_axis(
    ref: PermutedAxis, group: PermutationGroup, shapes: dict[str, tuple[int, ...]]
) -> None:
    """Raise ValueError unless ``ref`` fits the entry shape it names."""
    if ref.key not in shapes:
        raise ValueError(
            f"group {group.name!r} permutes key={ref.key!r}, which is not in shapes"
        )
    shape = shapes[ref.key]
    if not 0 <= ref.axis < len(shape):
        raise ValueError(
            f"group {group.name!r}: axis={ref.axis!r} of {ref.key!r} is out of range "
            f"for shape {shape!r}"
        )
    if shape[ref.axis] != group.size * ref.block_size:
        raise ValueError(
            f"group {group.name!r}: axis {ref.axis} of {ref.key!r} has length "
            f"{shape[ref.axis]}; expected size * block_size = "
            f"{group.size} * {ref.block_size}"
        )


# --------------------------------------------------------------------------
# Building a spec by walking a Sequential model
# --------------------------------------------------------------------------


@dataclass
class _Walk:
    """Mutable state of the forward walk through a Sequential model."""

    groups: list[PermutationGroup] = field(default_factory=list)
    # State-dict prefix of the layer that produced the current hidden units;
    # None while the data are still the network input, which is never permuted.
    producer: str | None = None
    n_channels: int = 0
    # Columns per channel after a Flatten; None until the next layer reveals it.
    block_size: int | None = 1
    layout: str = "input"  # "input", "conv" (N, C, *spatial) or "flat" (N, F)
    n_spatial: int = 0
    axes: list[PermutedAxis] = field(default_factory=list)


def _key(prefix: str, name: str) -> str:
    """Join a module prefix and a parameter name into a state-dict key."""
    return f"{prefix}.{name}" if prefix else name


def _describe(module: nn.Module) -> str:
    """One-line description of a module: class name and its extra_repr."""
    return f"{type(module).__name__}({module.extra_repr()})"


def _unsupported(
    module: nn.Module, prefix: str, reason: str
) -> UnsupportedArchitectureError:
    """Build the error for a module whose symmetry cannot be described.

    The model itself (empty ``prefix``) is named as position ``root``.
    """
    position = repr(prefix) if prefix else "root"
    return UnsupportedArchitectureError(
        f"cannot permute module at {position} ({_describe(module)}): {reason}"
    )


def _match_features(
    walk: _Walk, module: nn.Module, prefix: str, n_features: int
) -> int:
    """Check ``n_features`` against the open group and return its block size."""
    if walk.block_size is None:
        if n_features % walk.n_channels != 0:
            raise _unsupported(
                module,
                prefix,
                f"after the Flatten, its {n_features} input features cannot be "
                f"split into equal blocks for the {walk.n_channels} channels of "
                f"{walk.producer!r}",
            )
        walk.block_size = n_features // walk.n_channels
    if n_features != walk.n_channels * walk.block_size:
        raise _unsupported(
            module,
            prefix,
            f"it expects {n_features} input features but {walk.producer!r} "
            f"produces {walk.n_channels * walk.block_size}",
        )
    return walk.block_size


def _attach(
    walk: _Walk,
    module: nn.Module,
    prefix: str,
    n_features: int,
    names: tuple[str, ...],
) -> None:
    """Let per-channel entries of ``module`` move with the open group."""
    if walk.producer is None:
        return
    block_size = _match_features(walk, module, prefix, n_features)
    for name in names:
        if getattr(module, name, None) is not None:
            walk.axes.append(PermutedAxis(_key(prefix, name), 0, block_size))


def _close_group(
    walk: _Walk, module: nn.Module, prefix: str, n_features: int, axis: int
) -> None:
    """Record the open group, ending at the input axis of a weight layer."""
    if walk.producer is None:
        return
    block_size = _match_features(walk, module, prefix, n_features)
    walk.axes.append(PermutedAxis(_key(prefix, "weight"), axis, block_size))
    walk.groups.append(
        PermutationGroup(walk.producer, walk.n_channels, tuple(walk.axes))
    )


def _open_group(
    walk: _Walk, module: nn.Module, prefix: str, size: int, n_spatial: int
) -> None:
    """Start a group for the outputs of the weight layer ``module``."""
    walk.producer = prefix
    walk.n_channels = size
    walk.block_size = 1
    walk.layout = "conv" if n_spatial else "flat"
    walk.n_spatial = n_spatial
    walk.axes = [PermutedAxis(_key(prefix, "weight"), 0)]
    if module.bias is not None:
        walk.axes.append(PermutedAxis(_key(prefix, "bias"), 0))


def _visit_linear(module: nn.Linear, prefix: str, walk: _Walk) -> None:
    """A Linear layer closes the open group and opens one for its outputs."""
    if walk.layout == "conv":
        raise _unsupported(
            module,
            prefix,
            "a Linear layer after a convolution acts on the last spatial axis, "
            "not on the channels; put nn.Flatten() between them",
        )
    _close_group(walk, module, prefix, module.in_features, axis=1)
    _open_group(walk, module, prefix, module.out_features, n_spatial=0)


def _visit_conv(module: nn.modules.conv._ConvNd, prefix: str, walk: _Walk) -> None:
    """A convolution closes the open group and opens one for its channels."""
    if module.groups != 1:
        raise _unsupported(
            module,
            prefix,
            f"grouped or depthwise convolutions (groups={module.groups}) tie each "
            "output channel to a subset of the input channels; only groups=1 is "
            "supported",
        )
    if walk.layout == "flat":
        raise _unsupported(
            module,
            prefix,
            "a convolution after a Linear layer or Flatten is not supported",
        )
    _close_group(walk, module, prefix, module.in_channels, axis=1)
    _open_group(walk, module, prefix, module.out_channels, len(module.kernel_size))


def _visit_batch_norm(
    module: nn.modules.batchnorm._NormBase, prefix: str, walk: _Walk
) -> None:
    """Scale, shift and running statistics move with their channel."""
    is_instance_norm = isinstance(module, nn.modules.instancenorm._InstanceNorm)
    if walk.layout == "flat" and is_instance_norm:
        raise _unsupported(
            module,
            prefix,
            "instance normalization after a Linear layer or Flatten normalizes "
            "across the feature axis and mixes neurons",
        )
    names = ("weight", "bias", "running_mean", "running_var")
    _attach(walk, module, prefix, module.num_features, names)


def _visit_layer_norm(module: nn.LayerNorm, prefix: str, walk: _Walk) -> None:
    """LayerNorm is allowed over the feature axis (and trailing spatial axes)."""
    shape = tuple(module.normalized_shape)
    if walk.layout == "flat" and len(shape) == 1:
        _attach(walk, module, prefix, shape[0], ("weight", "bias"))
    elif walk.layout == "conv" and len(shape) == walk.n_spatial + 1:
        _attach(walk, module, prefix, shape[0], ("weight", "bias"))
    elif walk.layout == "conv" and len(shape) <= walk.n_spatial:
        return  # spatial axes only: its affine is shared by all channels
    elif walk.layout != "input":
        raise _unsupported(
            module,
            prefix,
            f"normalized_shape={shape!r} is not the feature axis (after a Linear "
            "layer) nor the channel axis plus all spatial axes (after a "
            "convolution)",
        )


def _visit_group_norm(module: nn.GroupNorm, prefix: str, walk: _Walk) -> None:
    """GroupNorm commutes with permutations for 1 group or 1 group per channel."""
    if module.num_groups not in (1, module.num_channels):
        raise _unsupported(
            module,
            prefix,
            f"num_groups={module.num_groups} splits the channels into groups, so a "
            "random permutation would move channels between groups; only 1 or "
            "num_channels groups are supported",
        )
    _attach(walk, module, prefix, module.num_channels, ("weight", "bias"))


def _visit_prelu(module: nn.PReLU, prefix: str, walk: _Walk) -> None:
    """PReLU with one slope per channel moves the slopes with the channels."""
    if module.num_parameters > 1:
        _attach(walk, module, prefix, module.num_parameters, ("weight",))


def _visit_pooling(module: nn.Module, prefix: str, walk: _Walk) -> None:
    """Pooling acts on each channel's spatial axes separately."""
    if walk.layout == "flat":
        raise _unsupported(
            module,
            prefix,
            "pooling after a Linear layer or Flatten pools over the feature axis "
            "and mixes neurons",
        )
    n_spatial = _POOLING_DIMS[type(module)]
    if walk.layout == "conv" and n_spatial != walk.n_spatial:
        raise _unsupported(
            module,
            prefix,
            f"a {n_spatial}-d pooling after a {walk.n_spatial}-d convolution "
            "treats the channel axis as a spatial axis",
        )


_SPATIAL_AXES = {1: "L", 2: "H, W", 3: "D, H, W"}


def _flatten_axes(module: nn.Flatten, prefix: str, rank: int, shape: str) -> tuple:
    """Return Flatten's (start, end) axes, negative dims counted from ``rank``."""
    dims = (module.start_dim, module.end_dim)
    if not all(-rank <= dim < rank for dim in dims):
        raise _unsupported(
            module,
            prefix,
            f"start_dim={dims[0]}, end_dim={dims[1]} are out of range for its "
            f"rank-{rank} input {shape}",
        )
    return dims[0] % rank, dims[1] % rank


def _visit_flatten(module: nn.Flatten, prefix: str, walk: _Walk) -> None:
    """Flatten (N, C, *spatial) to (N, C * prod(spatial)), channel-major.

    Negative dims count from the end of the input, whose rank is known after a
    weight layer (inputs are batched), so ``Flatten(-3)`` after a Conv2d is
    ``Flatten(1)``; a Flatten of a single axis changes nothing.
    """
    if walk.layout == "input":
        return  # nothing is permuted yet, so any reshaping of the input is safe
    rank = 2 + walk.n_spatial if walk.layout == "conv" else 2
    shape = f"(N, C, {_SPATIAL_AXES[walk.n_spatial]})" if rank > 2 else "(N, F)"
    start, end = _flatten_axes(module, prefix, rank, shape)
    if start == end:
        return
    if (start, end) != (1, rank - 1):
        if start > end:
            why = "start_dim comes after end_dim"
        elif start == 0:
            why = "it folds the batch axis into the features"
        elif start > 1:
            why = "it keeps the channel axis apart from the axes it flattens"
        else:
            why = f"it leaves axes {end + 1} to {rank - 1} unflattened"
        raise _unsupported(
            module,
            prefix,
            f"start_dim={module.start_dim}, end_dim={module.end_dim} flattens "
            f"axes {start} to {end} of its rank-{rank} input {shape}: {why}; only "
            "Flatten(start_dim=1, end_dim=-1), or a Flatten of one axis, is "
            "supported",
        )
    if walk.layout == "conv":
        walk.layout = "flat"
        walk.block_size = None


def _visit_elementwise(module: nn.Module, prefix: str, walk: _Walk) -> None:
    """Element-wise maps and dropout commute with any permutation."""


def _visit_sequential(module: nn.Sequential, prefix: str, walk: _Walk) -> None:
    """Visit the children of a Sequential in the order they run.

    ``named_children`` would list a module object only once, so a pooling or
    activation module placed at two positions would be checked at the first
    position only; every position must be visited.
    """
    for name, child in module._modules.items():
        if child is not None:
            _visit(child, _key(prefix, name), walk)


_ELEMENTWISE = (
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.RReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardshrink,
    nn.Softshrink,
    nn.Softplus,
    nn.Softsign,
    nn.Tanhshrink,
    nn.LogSigmoid,
    nn.Threshold,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)
_POOLING_DIMS = {
    nn.MaxPool1d: 1,
    nn.MaxPool2d: 2,
    nn.MaxPool3d: 3,
    nn.AvgPool1d: 1,
    nn.AvgPool2d: 2,
    nn.AvgPool3d: 3,
    nn.AdaptiveMaxPool1d: 1,
    nn.AdaptiveMaxPool2d: 2,
    nn.AdaptiveMaxPool3d: 3,
    nn.AdaptiveAvgPool1d: 1,
    nn.AdaptiveAvgPool2d: 2,
    nn.AdaptiveAvgPool3d: 3,
    nn.LPPool1d: 1,
    nn.LPPool2d: 2,
}
_NORMS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
)
_HANDLERS: dict[type, Callable[[nn.Module, str, _Walk], None]] = {
    nn.Sequential: _visit_sequential,
    nn.Linear: _visit_linear,
    nn.Conv1d: _visit_conv,
    nn.Conv2d: _visit_conv,
    nn.Conv3d: _visit_conv,
    nn.LayerNorm: _visit_layer_norm,
    nn.GroupNorm: _visit_group_norm,
    nn.PReLU: _visit_prelu,
    nn.Flatten: _visit_flatten,
    **{norm: _visit_batch_norm for norm in _NORMS},
    **{pool: _visit_pooling for pool in _POOLING_DIMS},
    **{kind: _visit_elementwise for kind in _ELEMENTWISE},
}


def _why_unsupported(module: nn.Module) -> str:
    """Explain why a module without a handler cannot be permuted."""
    if isinstance(module, nn.Sequential):
        return (
            "this subclass of nn.Sequential overrides forward, so its data flow is "
            "unknown"
        )
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return "transposed convolutions are not supported"
    if (
        isinstance(module, nn.MultiheadAttention)
        or "Transformer" in type(module).__name__
    ):
        return "attention layers are not supported"
    if isinstance(module, nn.RNNBase):
        return "recurrent layers are not supported"
    if isinstance(module, (nn.ModuleList, nn.ModuleDict)):
        return "only nn.Sequential fixes the order in which children run"
    return (
        f"{type(module).__name__} is not a supported layer (residual blocks, "
        "attention and custom modules can route neurons in ways a spec cannot "
        "see); supported are nn.Sequential containers of Linear, Conv1d/2d/3d, "
        "normalization, element-wise activation, dropout, pooling and Flatten "
        "layers"
    )


def _visit(module: nn.Module, prefix: str, walk: _Walk) -> None:
    """Dispatch on the exact type of ``module``; subclasses are not trusted."""
    handler = _HANDLERS.get(type(module))
    if handler is None and isinstance(module, nn.Sequential):
        if type(module).forward is nn.Sequential.forward:
            handler = _visit_sequential
    if handler is None:
        raise _unsupported(module, prefix, _why_unsupported(module))
    handler(module, prefix, walk)


def _check_no_sharing(model: nn.Module) -> None:
    """Raise if one tensor appears under two state-dict keys (tied weights)."""
    first_key: dict[int, str] = {}
    named = [
        *model.named_parameters(remove_duplicate=False),
        *model.named_buffers(remove_duplicate=False),
    ]
    for key, tensor in named:
        if id(tensor) in first_key:
            raise UnsupportedArchitectureError(
                f"cannot permute model: {key!r} and {first_key[id(tensor)]!r} are the "
                "same tensor (a shared module or tied weights), which cannot be "
                "permuted for two layers at once"
            )
        first_key[id(tensor)] = key


def _reparametrization(module: nn.Module) -> str | None:
    """Say why a pruning, weight-norm or spectral-norm hook on ``module`` is refused.

    These older tools keep the real weight under another name and recompute
    ``weight`` in a forward pre-hook, so permuting ``weight`` would be undone.
    """
    names = {name for name, _ in module.named_parameters(recurse=False)}
    buffers = {name for name, _ in module.named_buffers(recurse=False)}
    hooks = [*module._forward_pre_hooks.values(), *module._forward_hooks.values()]
    hook_types = {type(hook).__name__ for hook in hooks}
    pruned = pruned_tensor_names(names | buffers)
    if pruned or any(isinstance(hook, prune.BasePruningMethod) for hook in hooks):
        tensor = pruned[0] if pruned else "weight"
        return (
            f"pruning (torch.nn.utils.prune) recomputes {tensor!r} from "
            f"'{tensor}_orig' and '{tensor}_mask' in a pre-hook; make it permanent "
            f"first with torch.nn.utils.prune.remove(module, {tensor!r})"
        )
    if "WeightNorm" in hook_types or any(
        name.endswith("_g") and f"{name[:-2]}_v" in names for name in names
    ):
        norm, function = "weight norm", "weight_norm"
    elif "SpectralNorm" in hook_types or any(name.endswith("_orig") for name in names):
        norm, function = "spectral norm", "spectral_norm"
    else:
        return None
    return (
        f"old-style {norm} (torch.nn.utils.{function}) recomputes the weight from "
        "other parameters in a pre-hook; remove it first with "
        f"torch.nn.utils.remove_{function}"
    )


def _check_no_hooks(model: nn.Module) -> None:
    """Raise if a forward hook or reparametrization could change the data flow."""
    for prefix, module in model.named_modules():
        reason = _reparametrization(module)
        if reason is not None:
            raise _unsupported(module, prefix, reason)
        if type(module) not in _HANDLERS and not isinstance(module, nn.Sequential):
            continue  # refused by _visit, with a more specific reason
        kinds = [
            kind
            for kind, hooks in (
                ("forward pre-hook", module._forward_pre_hooks),
                ("forward hook", module._forward_hooks),
            )
            if hooks
        ]
        if kinds:
            raise _unsupported(
                module,
                prefix,
                f"it has a {' and a '.join(kinds)}, which may act on neurons by "
                "position; remove hooks (handle.remove()) before permuting",
            )
    global_hooks = (
        nn.modules.module._global_forward_pre_hooks,
        nn.modules.module._global_forward_hooks,
    )
    if any(global_hooks):
        raise UnsupportedArchitectureError(
            "cannot permute model: a global forward hook is registered (torch.nn."
            "modules.module.register_module_forward_hook or _pre_hook), which may "
            "act on neurons by position; remove it before permuting"
        )


def permutation_spec(model: nn.Module) -> PermutationSpec:
    """Describe the permutation symmetry of a Sequential model as data.

    Walks the model in forward order. Every weight layer (Linear or
    convolution) that is followed by another weight layer gets one permutation
    group for its outputs; see chapter 1 of the book for the derivation.

    Parameters
    ----------
    model : torch.nn.Sequential
        The model; nested Sequentials are walked in order. It is not modified.

    Returns
    -------
    PermutationSpec
        One group per hidden layer and the shape of every state-dict entry.

    Raises
    ------
    TypeError
        If ``model`` is not a ``torch.nn.Module``.
    UnsupportedArchitectureError
        If the model is a module but not a ``torch.nn.Sequential``, or a
        module's symmetry is unknown (residual blocks, attention, grouped or
        depthwise convolutions, unknown modules, a Flatten that folds the batch
        or whose sizes do not divide, tied weights, old-style weight or
        spectral norm, forward hooks or forward pre-hooks on any module, or
        global forward hooks); the message names the module, its state-dict
        prefix (``root`` for the model itself) and the reason.

    Notes
    -----
    Inputs are assumed to be batched: ``(N, C, *spatial)`` for convolutions and
    ``(N, F)`` for linear layers. Subclasses of supported layers are rejected
    because they may change ``forward``.

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> spec = permutation_spec(model)
    >>> [(group.name, group.size) for group in spec.groups]
    [('0', 3)]
    >>> [(ref.key, ref.axis) for ref in spec.groups[0].axes]
    [('0.weight', 0), ('0.bias', 0), ('2.weight', 1)]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model of type {type(model).__name__!r} is not valid; expected a "
            "torch.nn.Sequential"
        )
    if not isinstance(model, nn.Sequential):
        raise _unsupported(
            model,
            "",
            f"the model is a {type(model).__name__}, not a torch.nn.Sequential, so "
            "the order in which its layers run is unknown; wrap supported layers "
            "in an nn.Sequential",
        )
    _check_no_hooks(model)
    _check_no_sharing(model)
    walk = _Walk()
    _visit(model, "", walk)
    shapes = tuple(
        (key, tuple(value.shape)) for key, value in model.state_dict().items()
    )
    return PermutationSpec(groups=tuple(walk.groups), shapes=shapes)


# --------------------------------------------------------------------------
# Drawing, inverting and applying permutations
# --------------------------------------------------------------------------


def random_permutations(
    spec: PermutationSpec, *, random_state: RandomState = None
) -> Permutations:
    """Draw one uniformly random permutation per group of ``spec``.

    Parameters
    ----------
    spec : PermutationSpec
        The symmetry, e.g. from :func:`permutation_spec`.
    random_state : None, int or numpy.random.Generator, default=None
        Source of randomness; groups are drawn in the order of ``spec.groups``.

    Returns
    -------
    dict of str to ndarray of shape (size,)
        Group name to a permutation of ``range(size)`` (int64).

    Examples
    --------
    >>> from torch import nn
    >>> spec = permutation_spec(nn.Sequential(nn.Linear(2, 4), nn.Linear(4, 1)))
    >>> perms = random_permutations(spec, random_state=0)
    >>> sorted(perms["0"].tolist())
    [0, 1, 2, 3]
    """
    rng = check_random_state(random_state)
    return {
        group.name: rng.permutation(group.size).astype(np.int64)  # (size,)
        for group in spec.groups
    }


def _check_permutation(name: str, perm: object) -> np.ndarray:
    """Return ``perm`` as an int64 array, raising unless it is a permutation."""
    values = np.asarray(perm)  # (size,)
    is_integer = values.dtype.kind in "iu"
    if values.ndim != 1 or not is_integer or values.size == 0:
        raise ValueError(
            f"perms[{name!r}]={perm!r} is not valid; expected a 1-D integer array"
        )
    in_range = values.min() >= 0 and values.max() < values.size
    if not in_range or np.bincount(values, minlength=values.size).max() != 1:
        raise ValueError(
            f"perms[{name!r}]={perm!r} is not a permutation of range({values.size})"
        )
    return values.astype(np.int64, copy=False)


def invert_permutations(perms: Mapping[str, object]) -> Permutations:
    """Return the inverse of every permutation in ``perms``.

    Parameters
    ----------
    perms : mapping of str to array-like of shape (size,)
        Group name to permutation, as from :func:`random_permutations`.

    Returns
    -------
    dict of str to ndarray of shape (size,)
        Applying ``perms`` and then the result restores the original weights.

    Raises
    ------
    ValueError
        If a value is not a permutation of ``range(size)``.

    Examples
    --------
    >>> invert_permutations({"0": [2, 0, 1]})["0"].tolist()
    [1, 2, 0]
    """
    inverses = {}
    for name, perm in perms.items():
        values = _check_permutation(name, perm)  # (size,)
        inverses[name] = np.argsort(values).astype(np.int64)  # (size,)
    return inverses


def _block_index(perm: np.ndarray, block_size: int) -> np.ndarray:
    """Expand a permutation of neurons to a permutation of their blocks."""
    if block_size == 1:
        return perm
    offsets = np.arange(block_size)  # (block_size,)
    return (perm[:, None] * block_size + offsets).reshape(-1)  # (size * block_size,)


def _take(values: object, index: np.ndarray, axis: int, key: str) -> object:
    """Reorder ``values`` (tensor or ndarray) along ``axis`` by ``index``."""
    if isinstance(values, torch.Tensor):
        return values.index_select(axis, torch.from_numpy(index))
    if isinstance(values, np.ndarray):
        return np.take(values, index, axis=axis)
    raise TypeError(
        f"state_dict[{key!r}] has type {type(values).__name__!r}; expected a "
        "torch.Tensor or a numpy.ndarray"
    )


def _check_state_dict(state_dict: Mapping[str, object], spec: PermutationSpec) -> None:
    """Raise unless every entry the spec permutes is present with its shape."""
    for group in spec.groups:
        for ref in group.axes:
            if ref.key not in state_dict:
                raise ValueError(
                    f"state_dict has no entry {ref.key!r}, which group "
                    f"{group.name!r} permutes; was it saved from another "
                    "architecture?"
                )
            shape = tuple(state_dict[ref.key].shape)
            if shape != spec.shape_of[ref.key]:
                raise ValueError(
                    f"state_dict[{ref.key!r}] has shape {shape!r}; expected "
                    f"{spec.shape_of[ref.key]!r} from the spec"
                )


def apply_permutations(
    state_dict: Mapping[str, object],
    spec: PermutationSpec,
    perms: Mapping[str, object],
) -> OrderedDict[str, object]:
    """Reorder a state dict by the given permutation of every group.

    Along each permuted axis the new entry at position ``i`` is the old entry
    at ``perms[group][i]`` (whole blocks of ``block_size`` after a Flatten).

    Parameters
    ----------
    state_dict : mapping of str to torch.Tensor or ndarray
        The weights, as from ``model.state_dict()``; not modified.
    spec : PermutationSpec
        The symmetry of the architecture the weights belong to.
    perms : mapping of str to array-like of shape (size,)
        One permutation per group name of ``spec``.

    Returns
    -------
    collections.OrderedDict
        A new state dict in the same key order. Permuted entries are new
        tensors (or arrays); entries no group touches are the same objects as
        in ``state_dict``, not copies.

    Raises
    ------
    ValueError
        If ``perms`` lacks a group or has an unknown one, a permutation is
        invalid or has the wrong size, or ``state_dict`` lacks an entry the
        spec permutes or has it with another shape.
    TypeError
        If a permuted entry is neither a tensor nor an ndarray.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> spec = permutation_spec(model)
    >>> perms = {"0": [2, 0, 1]}
    >>> permuted = apply_permutations(model.state_dict(), spec, perms)
    >>> torch.equal(permuted["0.bias"], model.state_dict()["0.bias"][[2, 0, 1]])
    True
    >>> restored = apply_permutations(permuted, spec, invert_permutations(perms))
    >>> torch.equal(restored["0.weight"], model.state_dict()["0.weight"])
    True
    """
    names = {group.name for group in spec.groups}
    if set(perms) != names:
        raise ValueError(
            f"perms has groups {sorted(perms)!r}; expected exactly {sorted(names)!r}"
        )
    _check_state_dict(state_dict, spec)
    permuted = OrderedDict(state_dict)
    for group in spec.groups:
        perm = _check_permutation(group.name, perms[group.name])  # (size,)
        if perm.size != group.size:
            raise ValueError(
                f"perms[{group.name!r}] has {perm.size} entries; expected {group.size}"
            )
        for ref in group.axes:
            index = _block_index(perm, ref.block_size)  # (size * block_size,)
            permuted[ref.key] = _take(permuted[ref.key], index, ref.axis, ref.key)
    if hasattr(state_dict, "_metadata"):
        permuted._metadata = state_dict._metadata
    return permuted


def permute_state_dict(
    state_dict: Mapping[str, object],
    model_or_spec: nn.Module | PermutationSpec,
    *,
    random_state: RandomState = None,
) -> OrderedDict[str, object]:
    """Randomly permute every hidden neuron and channel of a bare state dict.

    Parameters
    ----------
    state_dict : mapping of str to torch.Tensor or ndarray
        The weights; not modified.
    model_or_spec : torch.nn.Sequential or PermutationSpec
        The architecture the weights belong to. Pass a spec (from
        :func:`permutation_spec`) when permuting many state dicts: building it
        walks the model every time.
    random_state : None, int or numpy.random.Generator, default=None
        Source of randomness.

    Returns
    -------
    collections.OrderedDict
        The permuted state dict (see :func:`apply_permutations`).

    Raises
    ------
    TypeError
        If ``model_or_spec`` is neither a module nor a PermutationSpec.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    >>> permuted = permute_state_dict(model.state_dict(), model, random_state=0)
    >>> torch.equal(permuted["2.bias"], model.state_dict()["2.bias"])
    True
    """
    if isinstance(model_or_spec, PermutationSpec):
        spec = model_or_spec
    elif isinstance(model_or_spec, nn.Module):
        spec = permutation_spec(model_or_spec)
    else:
        raise TypeError(
            f"model_or_spec={model_or_spec!r} is not valid; expected a "
            "torch.nn.Module or a PermutationSpec"
        )
    perms = random_permutations(spec, random_state=random_state)
    return apply_permutations(state_dict, spec, perms)


def permute(model: nn.Module, *, random_state: RandomState = None) -> nn.Module:
    """Return a copy of ``model`` with every hidden neuron and channel permuted.

    Each hidden layer's outputs are reordered at random and the next layer's
    inputs are reordered to match, so the copy computes the same function (in
    eval mode, up to float rounding). Inputs of the first layer and outputs of
    the last layer are never permuted. It draws the permutations with
    :func:`random_permutations` (same ``random_state``, same draws) and applies
    them with :func:`apply_permutations`.

    Parameters
    ----------
    model : torch.nn.Sequential
        The model; it is not modified.
    random_state : None, int or numpy.random.Generator, default=None
        Source of randomness.

    Returns
    -------
    torch.nn.Module
        A deep copy of ``model`` (same training mode) with permuted weights.

    Raises
    ------
    TypeError, UnsupportedArchitectureError
        As :func:`permutation_spec`.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 2)).eval()
    >>> twin = permute(model, random_state=0)
    >>> inputs = torch.randn(5, 3)
    >>> torch.allclose(model(inputs), twin(inputs), atol=1e-6)
    True
    >>> torch.equal(model[0].weight, twin[0].weight)
    False
    """
    spec = permutation_spec(model)
    perms = random_permutations(spec, random_state=random_state)
    permuted = copy.deepcopy(model)
    permuted.load_state_dict(apply_permutations(model.state_dict(), spec, perms))
    return permuted


def log10_n_permutations(spec: PermutationSpec) -> float:
    """Base-10 logarithm of the number of permutations, ``prod(size!)``.

    This counts the parameter vectors that :func:`permute` can reach from one
    network; it equals the number of distinct equivalent parameterizations
    when no two neurons of a layer have identical weights.

    Parameters
    ----------
    spec : PermutationSpec
        The symmetry of an architecture.

    Returns
    -------
    float
        ``sum(log10(size!))`` over the groups, computed with ``math.lgamma``
        so that it does not overflow.

    Examples
    --------
    >>> from torch import nn
    >>> spec = permutation_spec(nn.Sequential(nn.Linear(2, 4), nn.Linear(4, 1)))
    >>> round(10 ** log10_n_permutations(spec))
    24
    """
    return sum(math.lgamma(group.size + 1) for group in spec.groups) / math.log(10)
