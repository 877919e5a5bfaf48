"""The hand-written networks of the supplement's figures, and the numbers under them.

Figures 1-4 of the supplement show four training settings of one fixed
architecture; Figures 5 and 6 follow two Glorot-normal networks through
training. This module writes those configurations down (in the
:mod:`wdcore.zoo` format), trains them on demand, and computes the descriptor
distances that the book prints under each figure, with their readings
(:func:`gallery_readings`) and what explains the distance a permutation causes
with contiguous windows (:func:`window_placements`,
:func:`sampling_noise_distance`, :func:`gallery_cell_changes`). Chapters 5 and
6 draw the figures; chapter 3 reuses :func:`dynamics_configs` for Figure 6.

The paper trained on SVHN, STL-10 and CIFAR-10, which are not bundled. We map
them onto our offline datasets (:data:`PAPER_DATASETS`): SVHN, photographed
house-number digits, becomes ``"digits"``; STL-10 becomes ``"faces"`` and
CIFAR-10 ``"textures"``, the two natural-photo datasets we have. Every setting
keeps the paper's batch size, optimizer, activation, augmentation and
initialization; the paper does not list the learning rate of these networks, so
all of them use :data:`LEARNING_RATE`. They train for 20 epochs (2 in quick mode),
not to convergence with early stopping as in the paper, to keep the book's build
short.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from wdcore._random import RandomState, check_random_state
from wdcore.architectures import FIXED_ARCHITECTURE
from wdcore.descriptors import (
    DEFAULT_PERCENTILE,
    default_value_range,
    layer_sizes,
    mi_wd,
    weight_vector,
    window_boundaries,
    window_overlaps,
)
from wdcore.permutations import permutation_spec, permute_state_dict
from wdcore.zoo import Zoo, check_config, train_zoo

__all__ = [
    "DYNAMICS_EPOCHS",
    "GALLERY_EPOCHS",
    "LEARNING_RATE",
    "PAPER_DATASETS",
    "PLACEMENTS",
    "GalleryDistances",
    "descriptor_distances",
    "distance_to_final",
    "dynamics_configs",
    "dynamics_zoo",
    "drifts_apart",
    "gallery_cell_changes",
    "gallery_configs",
    "gallery_distances",
    "gallery_readings",
    "gallery_zoo",
    "mean_cross_distance",
    "mean_pairwise_distance",
    "permutation_descriptors",
    "sampling_noise_distance",
    "setting_title",
    "share_left",
    "shared_value_range",
    "snapshot_descriptors",
    "snapshot_indices",
    "supplement_settings",
    "train_on_demand",
    "window_placements",
]

PAPER_DATASETS = {"SVHN": "digits", "STL-10": "faces", "CIFAR-10": "textures"}
PLACEMENTS = ("inside one tensor", "across a boundary", "whole tensors only")
LEARNING_RATE = 0.001
GALLERY_EPOCHS = {"full": 20, "quick": 2}
DYNAMICS_EPOCHS = {"full": 20, "quick": 2}

# The supplement's Figures 1-4: (paper dataset, batch size, optimizer,
# activation, augmentation, initialization).
_PAPER_SETTINGS = (
    ("SVHN", 256, "rmsprop", "elu", False, "glorot_uniform"),
    ("STL-10", 128, "rmsprop", "relu", True, "glorot_uniform"),
    ("CIFAR-10", 32, "adam", "relu", False, "glorot_uniform"),
    ("SVHN", 64, "rmsprop", "relu", False, "glorot_uniform"),
)

# Figures 5 and 6: two Glorot-normal networks that differ in dataset and seed.
_DYNAMICS_NETWORKS = (("digits", 5), ("textures", 6))
_DYNAMICS_SETTING = {
    "learning_rate": LEARNING_RATE,
    "batch_size": 64,
    "augmentation": False,
    "optimizer": "adam",
    "activation": "relu",
    "initialization": "glorot_normal",
}

_TITLE_KEYS = (
    "dataset",
    "batch_size",
    "optimizer",
    "activation",
    "augmentation",
    "initialization",
)
_DISPLAY_NAMES = {
    "adam": "Adam",
    "rmsprop": "RMSProp",
    "sgd": "SGD",
    "relu": "ReLU",
    "elu": "ELU",
    "glorot_uniform": "Glorot uniform",
    "glorot_normal": "Glorot normal",
}


def _check_positive_int(name: str, value: object) -> int:
    """Check an int option that must be at least 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}={value!r} is not valid; expected an int >= 1")
    return int(value)


def supplement_settings() -> list[dict]:
    """Return the four training settings of the supplement's Figures 1-4.

    Each setting is a partial :mod:`wdcore.zoo` configuration: ``dataset``,
    ``learning_rate``, ``batch_size``, ``augmentation``, ``optimizer``,
    ``activation``, ``initialization`` and ``space`` (always ``"fixed"``, the
    paper's fixed architecture). The paper's datasets map onto ours through
    :data:`PAPER_DATASETS`: SVHN -> ``"digits"``, STL-10 -> ``"faces"``,
    CIFAR-10 -> ``"textures"``. The learning rate is :data:`LEARNING_RATE`
    (0.001) for all four, because the paper does not state one.

    Returns
    -------
    list of dict
        Settings 1 to 4, in the supplement's order:

        1. digits (SVHN), batch 256, RMSProp, ELU, no augmentation, Glorot uniform
        2. faces (STL-10), batch 128, RMSProp, ReLU, augmentation, Glorot uniform
        3. textures (CIFAR-10), batch 32, Adam, ReLU, no augmentation, Glorot
           uniform
        4. digits (SVHN), batch 64, RMSProp, ReLU, no augmentation, Glorot uniform

    Examples
    --------
    >>> [setting["dataset"] for setting in supplement_settings()]
    ['digits', 'faces', 'textures', 'digits']
    >>> supplement_settings()[0]["activation"]
    'elu'
    """
    return [
        {
            "space": "fixed",
            "dataset": PAPER_DATASETS[paper_dataset],
            "learning_rate": LEARNING_RATE,
            "batch_size": batch_size,
            "augmentation": augmentation,
            "optimizer": optimizer,
            "activation": activation,
            "initialization": initialization,
        }
        for paper_dataset, batch_size, optimizer, activation, augmentation, (
            initialization
        ) in _PAPER_SETTINGS
    ]


def setting_title(setting: dict, *, number: int | None = None) -> str:
    """Describe a training setting in the words of the supplement's captions.

    Parameters
    ----------
    setting : dict
        A setting or configuration with at least ``dataset``, ``batch_size``,
        ``optimizer``, ``activation``, ``augmentation`` and ``initialization``.
    number : int, optional
        Prefix the title with ``"Setting {number}: "``.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If a key is missing or ``number`` is not a positive int.

    Examples
    --------
    >>> setting_title(supplement_settings()[3])
    'digits (for SVHN), batch 64, RMSProp, ReLU, no augmentation, Glorot uniform'
    >>> setting_title(supplement_settings()[2], number=3).split(",")[0]
    'Setting 3: textures (for CIFAR-10)'
    """
    missing = [key for key in _TITLE_KEYS if key not in setting]
    if missing:
        raise ValueError(f"setting={setting!r} lacks the keys {missing!r}")
    paper_names = [
        name for name, ours in PAPER_DATASETS.items() if ours == setting["dataset"]
    ]
    dataset = setting["dataset"] + (f" (for {paper_names[0]})" if paper_names else "")
    title = ", ".join(
        [
            dataset,
            f"batch {setting['batch_size']}",
            _DISPLAY_NAMES.get(setting["optimizer"], setting["optimizer"]),
            _DISPLAY_NAMES.get(setting["activation"], setting["activation"]),
            "augmentation" if setting["augmentation"] else "no augmentation",
            _DISPLAY_NAMES.get(setting["initialization"], setting["initialization"]),
        ]
    )
    if number is None:
        return title
    return f"Setting {_check_positive_int('number', number)}: {title}"


def gallery_configs(*, n_seeds: int = 4, quick: bool = False) -> list[dict]:
    """Return the configurations of Figures 1-4: every setting times seeds.

    Parameters
    ----------
    n_seeds : int, default=4
        Networks per setting, with seeds ``0, ..., n_seeds - 1``.
    quick : bool, default=False
        Train for ``GALLERY_EPOCHS["quick"]`` (2) instead of
        ``GALLERY_EPOCHS["full"]`` (20) epochs.

    Returns
    -------
    list of dict
        ``4 * n_seeds`` canonical configurations (:func:`wdcore.zoo.check_config`),
        setting-major: the seeds of setting 1 first.

    Raises
    ------
    ValueError
        If ``n_seeds`` is not a positive int.

    Examples
    --------
    >>> configs = gallery_configs(n_seeds=2, quick=True)
    >>> [(config["dataset"], config["seed"]) for config in configs[:3]]
    [('digits', 0), ('digits', 1), ('faces', 0)]
    >>> configs[0]["n_epochs"]
    2
    """
    n_seeds = _check_positive_int("n_seeds", n_seeds)
    n_epochs = GALLERY_EPOCHS["quick" if quick else "full"]
    return [
        check_config(
            dict(setting, seed=seed, n_epochs=n_epochs, architecture=FIXED_ARCHITECTURE)
        )
        for setting in supplement_settings()
        for seed in range(n_seeds)
    ]


def dynamics_configs(*, quick: bool = False) -> list[dict]:
    """Return the two Glorot-normal networks of Figures 5 and 6.

    Both have the fixed architecture and the same training setting (Adam,
    learning rate 0.001, batch 64, ReLU, no augmentation, Glorot-normal
    initialization); they differ in dataset (``"digits"`` and ``"textures"``)
    and seed, so they start from different draws and drift apart.

    Parameters
    ----------
    quick : bool, default=False
        Train for ``DYNAMICS_EPOCHS["quick"]`` (2) instead of
        ``DYNAMICS_EPOCHS["full"]`` (20) epochs.

    Returns
    -------
    list of dict
        Two canonical configurations.

    Examples
    --------
    >>> first, second = dynamics_configs()
    >>> first["initialization"], second["initialization"]
    ('glorot_normal', 'glorot_normal')
    >>> first["dataset"], second["dataset"], first["n_epochs"]
    ('digits', 'textures', 20)
    """
    n_epochs = DYNAMICS_EPOCHS["quick" if quick else "full"]
    return [
        check_config(
            dict(
                _DYNAMICS_SETTING,
                space="fixed",
                dataset=dataset,
                seed=seed,
                n_epochs=n_epochs,
                architecture=FIXED_ARCHITECTURE,
            )
        )
        for dataset, seed in _DYNAMICS_NETWORKS
    ]


def train_on_demand(
    configs: Sequence[dict],
    directory: str | Path,
    *,
    n_jobs: int = 2,
    progress: bool = False,
) -> Zoo:
    """Train the configurations that ``directory`` does not hold yet.

    A thin wrapper of :func:`wdcore.zoo.train_zoo`: models already on disk are
    reused, so a second call only opens the zoo.

    Parameters
    ----------
    configs : sequence of dict
        Configurations (see :func:`wdcore.zoo.check_config`).
    directory : str or pathlib.Path
        Zoo directory, created if needed.
    n_jobs : int, default=2
        Worker processes for the models still to train.
    progress : bool, default=False
        Show a progress bar over those models.

    Returns
    -------
    Zoo
        The models of ``configs``, in their order (``zoo.index`` row ``i`` is
        ``configs[i]``).

    Examples
    --------
    >>> import tempfile
    >>> config = dict(gallery_configs(n_seeds=1, quick=True)[1], n_epochs=1,
    ...     input_size=8)
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     zoo = train_on_demand([config], directory, n_jobs=1)
    >>> zoo.index.dataset.tolist()
    ['faces']
    """
    return train_zoo(list(configs), Path(directory), n_jobs=n_jobs, progress=progress)


def gallery_zoo(
    directory: str | Path = "_build/zoo",
    *,
    n_seeds: int = 4,
    quick: bool = False,
    n_jobs: int = 2,
    progress: bool = False,
) -> Zoo:
    """Train (if needed) and open the networks of Figures 1-4.

    Parameters
    ----------
    directory : str or pathlib.Path, default="_build/zoo"
        Parent directory; the zoo lives in ``<directory>/gallery`` (or
        ``gallery-quick``).
    n_seeds : int, default=4
        Networks per setting.
    quick : bool, default=False
        Use the quick configurations (fewer epochs).
    n_jobs : int, default=2
        Worker processes for training.
    progress : bool, default=False
        Show a progress bar while training.

    Returns
    -------
    Zoo
        ``4 * n_seeds`` models in the order of :func:`gallery_configs`.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as directory:  # doctest: +SKIP
    ...     zoo = gallery_zoo(directory, n_seeds=1, quick=True)
    """
    name = "gallery-quick" if quick else "gallery"
    configs = gallery_configs(n_seeds=n_seeds, quick=quick)
    return train_on_demand(
        configs, Path(directory) / name, n_jobs=n_jobs, progress=progress
    )


def dynamics_zoo(
    directory: str | Path = "_build/zoo",
    *,
    quick: bool = False,
    n_jobs: int = 2,
    progress: bool = False,
) -> Zoo:
    """Train (if needed) and open the two networks of Figures 5 and 6.

    Parameters
    ----------
    directory : str or pathlib.Path, default="_build/zoo"
        Parent directory; the zoo lives in ``<directory>/dynamics`` (or
        ``dynamics-quick``).
    quick : bool, default=False
        Use the quick configurations (fewer epochs).
    n_jobs : int, default=2
        Worker processes for training.
    progress : bool, default=False
        Show a progress bar while training.

    Returns
    -------
    Zoo
        Two models, in the order of :func:`dynamics_configs`; each keeps
        ``zoo.n_snapshots`` snapshots from initialization to the end.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as directory:  # doctest: +SKIP
    ...     zoo = dynamics_zoo(directory, quick=True)
    """
    name = "dynamics-quick" if quick else "dynamics"
    return train_on_demand(
        dynamics_configs(quick=quick),
        Path(directory) / name,
        n_jobs=n_jobs,
        progress=progress,
    )


def shared_value_range(
    zoo: Zoo,
    model_ids: Sequence[str] | None = None,
    *,
    snapshots: Sequence[int] = (-1,),
    percentile: float = DEFAULT_PERCENTILE,
) -> float:
    """Return one bin range ``r`` for a group of networks, so they share bins.

    ``r`` is the ``percentile`` of ``|w|`` over the pooled weights of every
    listed model and snapshot (:func:`wdcore.descriptors.default_value_range`).
    A permutation does not change it, so the original network and its permuted
    copies get identical bins.

    Parameters
    ----------
    zoo : Zoo
        The trained networks.
    model_ids : sequence of str, optional
        The networks to pool; all of the zoo by default.
    snapshots : sequence of int, default=(-1,)
        The snapshots to pool (``-1`` is the trained network).
    percentile : float, default=99.0
        Percentile of the absolute weights.

    Returns
    -------
    float

    Examples
    --------
    >>> import tempfile
    >>> config = dict(gallery_configs(n_seeds=1)[1], n_epochs=1, input_size=8)
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     zoo = train_on_demand([config], directory, n_jobs=1)
    ...     radius = shared_value_range(zoo, snapshots=(0, -1))
    >>> radius > 0
    True
    """
    model_ids = zoo.model_ids if model_ids is None else list(model_ids)
    pooled = np.concatenate(
        [zoo.weights(name, snapshot) for name in model_ids for snapshot in snapshots]
    )  # (n_models * n_snapshots * n_weights,)
    return float(default_value_range(pooled, percentile=percentile))


def permutation_descriptors(
    zoo: Zoo,
    model_ids: Sequence[str] | None = None,
    *,
    n_permutations: int = 3,
    size: tuple[int, int] = (32, 32),
    value_range: float | None = None,
    windows: str = "contiguous",
    random_state: RandomState = None,
) -> np.ndarray:
    """Describe each trained network and random permutations of it.

    Every hidden neuron and channel is permuted at once
    (:func:`wdcore.permutations.permute_state_dict`), as in the supplement.

    Parameters
    ----------
    zoo : Zoo
        The trained networks.
    model_ids : sequence of str, optional
        The networks, all of the zoo by default.
    n_permutations : int, default=3
        Permuted copies per network.
    size : (int, int), default=(32, 32)
        Descriptor size ``(S, B)``.
    value_range : float, optional
        Shared bin range (e.g. :func:`shared_value_range`); None uses each
        network's own range.
    windows : {"contiguous", "layer"}, default="contiguous"
        Window rule of :func:`wdcore.descriptors.mi_wd`; ``"layer"`` is
        exactly invariant, so its permuted copies equal the original.
    random_state : None, int or numpy.random.Generator, default=None
        Source of the permutations.

    Returns
    -------
    ndarray of shape (n_models, 1 + n_permutations, S, B)
        Index 0 along axis 1 is the original network.

    Raises
    ------
    ValueError
        If ``n_permutations`` is not a positive int.

    Examples
    --------
    >>> import tempfile
    >>> config = dict(gallery_configs(n_seeds=1)[1], n_epochs=1, input_size=8)
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     zoo = train_on_demand([config], directory, n_jobs=1)
    ...     descriptors = permutation_descriptors(zoo, size=(8, 8), random_state=0)
    >>> descriptors.shape
    (1, 4, 8, 8)
    """
    n_permutations = _check_positive_int("n_permutations", n_permutations)
    rng = check_random_state(random_state)
    model_ids = zoo.model_ids if model_ids is None else list(model_ids)
    descriptors = []
    for name in model_ids:
        state_dict = zoo.state_dict(name)
        spec = permutation_spec(zoo.model(name))
        variants = [state_dict] + [
            permute_state_dict(state_dict, spec, random_state=rng)
            for _ in range(n_permutations)
        ]
        vectors = np.stack([weight_vector(variant) for variant in variants])
        # vectors: (1 + n_permutations, n_weights)
        descriptors.append(
            mi_wd(
                vectors,
                size=size,
                value_range=value_range,
                windows=windows,
                layer_sizes=layer_sizes(state_dict) if windows == "layer" else None,
            )
        )
    return np.stack(descriptors)  # (n_models, 1 + n_permutations, S, B)


def snapshot_indices(n_snapshots: int, n_points: int) -> np.ndarray:
    """Pick ``n_points`` evenly spaced snapshots, always the first and the last.

    Parameters
    ----------
    n_snapshots : int
        Snapshots available (20 in a zoo).
    n_points : int
        Snapshots wanted, at least 2 and at most ``n_snapshots``.

    Returns
    -------
    ndarray of shape (n_points,)
        Increasing snapshot numbers from 0 to ``n_snapshots - 1``.

    Raises
    ------
    ValueError
        If ``n_points`` is below 2 or above ``n_snapshots``.

    Examples
    --------
    >>> snapshot_indices(20, 8).tolist()
    [0, 3, 5, 8, 11, 14, 16, 19]
    """
    n_snapshots = _check_positive_int("n_snapshots", n_snapshots)
    n_points = _check_positive_int("n_points", n_points)
    if not 2 <= n_points <= n_snapshots:
        raise ValueError(
            f"n_points={n_points!r} is not valid; expected an int in "
            f"[2, n_snapshots={n_snapshots}]"
        )
    return np.rint(np.linspace(0, n_snapshots - 1, n_points)).astype(int)  # (n_points,)


def snapshot_descriptors(
    zoo: Zoo,
    model_id: str,
    snapshots: Sequence[int],
    *,
    size: tuple[int, int] = (32, 32),
    value_range: float | None = None,
    windows: str = "contiguous",
) -> np.ndarray:
    """Describe one network at several snapshots of its training.

    Parameters
    ----------
    zoo : Zoo
        The trained networks.
    model_id : str
        The network.
    snapshots : sequence of int
        Snapshot numbers (0 is the initialization, -1 the trained network).
    size : (int, int), default=(32, 32)
        Descriptor size ``(S, B)``.
    value_range : float, optional
        Shared bin range; pass one (e.g. :func:`shared_value_range`) so that a
        change of scale during training shows. None uses each snapshot's own.

    Returns
    -------
    ndarray of shape (n_points, S, B)

    Examples
    --------
    >>> import tempfile
    >>> config = dict(gallery_configs(n_seeds=1)[1], n_epochs=1, input_size=8)
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     zoo = train_on_demand([config], directory, n_jobs=1)
    ...     name = zoo.model_ids[0]
    ...     descriptors = snapshot_descriptors(zoo, name, [0, 19], size=(4, 4))
    >>> descriptors.shape
    (2, 4, 4)
    """
    vectors = np.stack([zoo.weights(model_id, snapshot) for snapshot in snapshots])
    # vectors: (n_points, n_weights)
    sizes = layer_sizes(zoo.state_dict(model_id)) if windows == "layer" else None
    return mi_wd(
        vectors, size=size, value_range=value_range, windows=windows, layer_sizes=sizes
    )  # (n_points, S, B)


def _as_descriptor_stack(
    name: str, descriptors: object, *, min_count: int
) -> np.ndarray:
    """Check a stack of descriptors (n, ...) and return it as float64."""
    array = np.asarray(descriptors, dtype=float)
    if array.ndim < 2 or len(array) < min_count:
        raise ValueError(
            f"{name} has shape {array.shape!r}; expected a stack of at least "
            f"{min_count} descriptors, shape (n, S, B)"
        )
    return array


def descriptor_distances(
    first: np.ndarray, second: np.ndarray | None = None
) -> np.ndarray:
    """Euclidean distances between two stacks of descriptors.

    A descriptor of shape ``(S, B)`` is compared as a vector of ``S * B``
    numbers: ``d(D, D') = sqrt(sum_ij (D_ij - D'_ij) ** 2)``.

    Parameters
    ----------
    first : array-like of shape (n, S, B)
        Descriptors (any trailing shape works; it is flattened).
    second : array-like of shape (m, S, B), optional
        Second stack; ``first`` again by default.

    Returns
    -------
    ndarray of shape (n, m)

    Raises
    ------
    ValueError
        If a stack is empty or the descriptor shapes differ.

    Examples
    --------
    >>> stack = np.array([[[0.0, 0.0]], [[3.0, 4.0]]])  # (2, 1, 2)
    >>> descriptor_distances(stack).tolist()
    [[0.0, 5.0], [5.0, 0.0]]
    """
    first = _as_descriptor_stack("first", first, min_count=1)  # (n, S, B)
    second = (
        first if second is None else _as_descriptor_stack("second", second, min_count=1)
    )  # (m, S, B)
    if first.shape[1:] != second.shape[1:]:
        raise ValueError(
            f"first holds descriptors of shape {first.shape[1:]!r} and second of "
            f"shape {second.shape[1:]!r}; expected equal shapes"
        )
    rows = first.reshape(len(first), 1, -1)  # (n, 1, S * B)
    columns = second.reshape(1, len(second), -1)  # (1, m, S * B)
    return np.sqrt(np.sum((rows - columns) ** 2, axis=-1))  # (n, m)


def mean_pairwise_distance(descriptors: np.ndarray) -> float:
    """Mean distance over the distinct pairs of a stack of descriptors.

    Parameters
    ----------
    descriptors : array-like of shape (n, S, B)
        At least two descriptors.

    Returns
    -------
    float
        The mean of :func:`descriptor_distances` over pairs ``i < j``.

    Raises
    ------
    ValueError
        If fewer than two descriptors are given.

    Examples
    --------
    >>> stack = np.array([[[0.0, 0.0]], [[3.0, 4.0]], [[0.0, 0.0]]])  # (3, 1, 2)
    >>> round(mean_pairwise_distance(stack), 4)  # pairs: 5, 0, 5
    3.3333
    """
    stack = _as_descriptor_stack("descriptors", descriptors, min_count=2)
    distances = descriptor_distances(stack)  # (n, n)
    upper = np.triu_indices(len(stack), k=1)
    return float(distances[upper].mean())


def mean_cross_distance(first: np.ndarray, second: np.ndarray) -> float:
    """Mean distance between every descriptor of ``first`` and of ``second``.

    Parameters
    ----------
    first : array-like of shape (n, S, B)
    second : array-like of shape (m, S, B)

    Returns
    -------
    float

    Raises
    ------
    ValueError
        As :func:`descriptor_distances`.

    Examples
    --------
    >>> first = np.zeros((2, 1, 2))
    >>> second = np.array([[[3.0, 4.0]], [[6.0, 8.0]]])
    >>> mean_cross_distance(first, second)
    7.5
    """
    return float(descriptor_distances(first, second).mean())


@dataclass(frozen=True)
class GalleryDistances:
    """Mean descriptor distances at the three levels of Figures 1-4.

    Attributes
    ----------
    permutation : ndarray of shape (n_settings, n_seeds)
        Per network: mean distance over pairs of its variants (the original
        and its permuted copies).
    seed : ndarray of shape (n_settings,)
        Per setting: mean distance over pairs of its original networks
        (different seeds).
    setting : ndarray of shape (n_settings, n_settings)
        Mean distance between the original networks of two settings, over
        all seed pairs; the diagonal repeats ``seed``.

    Examples
    --------
    >>> distances = GalleryDistances(
    ...     permutation=np.full((2, 3), 0.1), seed=np.array([0.2, 0.4]),
    ...     setting=np.array([[0.2, 0.5], [0.5, 0.4]]))
    >>> float(distances.setting[0, 1])
    0.5
    """

    permutation: np.ndarray
    seed: np.ndarray
    setting: np.ndarray

    def summary(self) -> dict[str, float]:
        """Reduce the three levels to one number each.

        Returns
        -------
        dict of str to float
            ``"permutations of one network"``: the mean of ``permutation``;
            ``"seeds of one setting"``: the mean of ``seed``;
            ``"different settings"``: the mean of the off-diagonal entries of
            ``setting``.

        Examples
        --------
        >>> distances = GalleryDistances(
        ...     permutation=np.full((2, 3), 0.1), seed=np.array([0.2, 0.4]),
        ...     setting=np.array([[0.2, 0.5], [0.5, 0.4]]))
        >>> for level, value in distances.summary().items():
        ...     print(f"{level}: {value:.2f}")
        permutations of one network: 0.10
        seeds of one setting: 0.30
        different settings: 0.50
        """
        off_diagonal = ~np.eye(len(self.setting), dtype=bool)
        return {
            "permutations of one network": float(self.permutation.mean()),
            "seeds of one setting": float(self.seed.mean()),
            "different settings": float(self.setting[off_diagonal].mean()),
        }


def gallery_distances(descriptors: np.ndarray) -> GalleryDistances:
    """Compare descriptors across permutations, seeds and training settings.

    Parameters
    ----------
    descriptors : array-like of shape (n_settings, n_seeds, n_variants, S, B)
        Variant 0 of each network is the original; the others are permuted
        copies (as from :func:`permutation_descriptors`, reshaped). Needs at
        least 2 seeds and 2 variants.

    Returns
    -------
    GalleryDistances

    Raises
    ------
    ValueError
        If ``descriptors`` does not have five axes or has fewer than two
        seeds or variants.

    Notes
    -----
    With contiguous windows the permutation level is not zero: a permutation
    changes which rows of a weight matrix fall into a window that cuts through
    a layer, so that window's histogram changes by sampling noise. Chapter 5
    measures this floor; ``windows="layer"`` descriptors remove it.

    Examples
    --------
    >>> descriptors = np.zeros((2, 2, 2, 1, 1))
    >>> descriptors[1, :, :, 0, 0] = 3.0  # setting 2 sits at distance 3
    >>> descriptors[:, 1, :, 0, 0] += 1.0  # seed 2 sits at distance 1
    >>> distances = gallery_distances(descriptors)
    >>> distances.seed.tolist(), float(distances.setting[0, 1])
    ([1.0, 1.0], 3.0)
    >>> float(distances.permutation.max())
    0.0
    """
    array = np.asarray(descriptors, dtype=float)
    if array.ndim != 5 or array.shape[1] < 2 or array.shape[2] < 2:
        raise ValueError(
            f"descriptors has shape {array.shape!r}; expected (n_settings, "
            "n_seeds >= 2, n_variants >= 2, S, B)"
        )
    n_settings, n_seeds = array.shape[:2]
    permutation = np.array(
        [[mean_pairwise_distance(network) for network in setting] for setting in array]
    )  # (n_settings, n_seeds)
    originals = array[:, :, 0]  # (n_settings, n_seeds, S, B)
    setting = np.array(
        [
            [
                mean_pairwise_distance(originals[row])
                if row == column
                else mean_cross_distance(originals[row], originals[column])
                for column in range(n_settings)
            ]
            for row in range(n_settings)
        ]
    )  # (n_settings, n_settings)
    return GalleryDistances(permutation, np.diag(setting).copy(), setting)


def _verdict(holds: bool) -> str:
    """Word a check's outcome as the chapters print it."""
    return "holds" if holds else "does not hold"


def _relative_difference(first: float, second: float) -> float:
    """How far ``first`` falls below ``second``, as a share of the larger one."""
    larger = max(first, second)
    return 0.0 if larger == 0 else (second - first) / larger


def _less_than(first: float, second: float, gap: float) -> str:
    """Whether ``first`` is below ``second`` by at least ``gap`` of the larger."""
    # A difference of exactly the gap reaches it, whatever the last float bit says.
    difference = _relative_difference(first, second)
    if difference >= gap - 1e-9:
        return "holds"
    return "does not hold" if difference <= -gap + 1e-9 else "inconclusive"


def _barely(first: float, second: float, barely: float, gap: float) -> str:
    """Whether ``first`` is at most ``barely`` of ``second`` (see gallery_readings)."""
    if first <= barely * second * (1 + 1e-9):
        return "holds"
    clearly_less = _less_than(first, second, gap) == "holds"
    return "inconclusive" if clearly_less else "does not hold"


def _check_fraction(name: str, value: object, *, low_open: bool) -> float:
    """Check a number in (0, 1) or [0, 1)."""
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not number or not (0 < value < 1 if low_open else 0 <= value < 1):
        interval = "(0, 1)" if low_open else "[0, 1)"
        raise ValueError(
            f"{name}={value!r} is not valid; expected a number in {interval}"
        )
    return float(value)


def _level_readings(
    distances: GalleryDistances, barely: float, gap: float
) -> list[tuple[str, str, str]]:
    """The paper's three readings: (reading, verdict, numbers)."""
    permutation, seed, setting = distances.summary().values()
    matrix = distances.setting  # (n_settings, n_settings)
    ratio = permutation / seed if seed > 0 else float("nan")
    pair_gap = _relative_difference(matrix[1, 3], matrix[0, 2])
    return [
        ("permutations barely change a descriptor",
         _barely(permutation, seed, barely, gap),
         f"{permutation:.4f} vs {seed:.4f}, ratio {ratio:.2f} (holds at <= "
         f"{barely:g}, fails above {1 - gap:g})"),
        ("seeds change less than settings", _less_than(seed, setting, gap),
         f"{seed:.4f} vs {setting:.4f}, relative gap "
         f"{_relative_difference(seed, setting):+.2f} (needs +{gap:g})"),
        ("settings 2 and 4 closer than 1 and 3 (paper)",
         _less_than(matrix[1, 3], matrix[0, 2], gap),
         f"d(2, 4) {matrix[1, 3]:.4f} vs d(1, 3) {matrix[0, 2]:.4f}, relative "
         f"gap {pair_gap:+.2f} (needs +{gap:g})"),
    ]  # fmt: skip


def gallery_readings(
    distances: GalleryDistances,
    moved: np.ndarray,
    *,
    barely: float = 0.25,
    gap: float = 0.1,
    min_correlation: float = 0.5,
) -> pd.DataFrame:
    """Check the supplement's reading of Figures 1-4, and one alternative.

    The paper reads three things by eye: permutations barely change a
    descriptor, seeds change it more, and settings 2 and 4 (same optimizer,
    activation and initialization) are more alike than 1 and 3. Each is
    checked against a stated margin:

    - "barely": the permutation distance is at most ``barely`` times the seed
      distance (holds); it is not "barely" when it falls short of the seed
      distance by less than ``gap`` of it, that is, above ``1 - gap`` times
      it (does not hold); inconclusive in between.
    - "less than" (seeds vs settings, d(2, 4) vs d(1, 3)): the side said to
      be smaller must fall below the other by at least ``gap`` of the larger
      (holds); if it exceeds the other by that much, the reading does not
      hold; if the two are closer than that, it is inconclusive. A
      difference of exactly ``gap`` counts as reaching it.

    The alternative reading: all four settings start from the same
    Glorot-uniform distribution, so two settings are close when their
    networks moved little from it. It is checked twice: the nearest pair of
    settings is the pair that moved least, and the distance between two
    settings rises with how far the two moved in total (Spearman correlation
    of ``setting[i, j]`` with ``moved[i] + moved[j]`` over all pairs).

    Parameters
    ----------
    distances : GalleryDistances
        From :func:`gallery_distances`, with the supplement's four settings
        (or more; settings are numbered from 1).
    moved : array-like of shape (n_settings,)
        How far each setting's descriptors moved from initialization to the
        end of training, e.g. the mean :func:`distance_to_final` of its seeds.
    barely : float, default=0.25
        Largest permutation-to-seed distance ratio that counts as "barely";
        in (0, 1).
    gap : float, default=0.1
        Relative difference that counts as "less than"; in [0, 1).
    min_correlation : float, default=0.5
        Smallest Spearman correlation that counts as "distances rise with the
        distance moved".

    Returns
    -------
    pandas.DataFrame
        Columns ``reading, numbers, holds``; ``holds`` is "holds", "does not
        hold" or "inconclusive". The numbers of a "less than" reading quote the
        relative gap: how far the side said to be smaller falls below the
        other, as a share of the larger (negative if it is above).

    Raises
    ------
    ValueError
        If there are fewer than four settings, ``moved`` does not have one
        value per setting, ``barely`` is not in (0, 1), ``gap`` is not in
        [0, 1) or ``min_correlation`` is not in [-1, 1].

    Examples
    --------
    >>> moved = np.array([0.1, 0.2, 0.15, 0.4])
    >>> setting = moved[:, None] + moved[None, :]  # apart as far as both moved
    >>> np.fill_diagonal(setting, 0.1)
    >>> distances = GalleryDistances(np.full((4, 2), 0.05), np.diag(setting), setting)
    >>> gallery_readings(distances, moved).holds.tolist()
    ['inconclusive', 'holds', 'does not hold', 'holds', 'holds']
    """
    matrix = np.asarray(distances.setting, dtype=float)  # (n_settings, n_settings)
    moved = np.asarray(moved, dtype=float)  # (n_settings,)
    if matrix.ndim != 2 or len(matrix) < 4 or moved.shape != (len(matrix),):
        raise ValueError(
            f"distances.setting has shape {matrix.shape!r} and moved {moved.shape!r}; "
            "expected (n_settings, n_settings) and (n_settings,) with n_settings >= 4"
        )
    barely = _check_fraction("barely", barely, low_open=True)
    gap = _check_fraction("gap", gap, low_open=False)
    if not -1 <= min_correlation <= 1:
        raise ValueError(
            f"min_correlation={min_correlation!r} is not valid; expected a number "
            "in [-1, 1]"
        )
    pairs = list(combinations(range(len(matrix)), 2))
    between = np.array([matrix[i, j] for i, j in pairs])  # (n_pairs,)
    total = np.array([moved[i] + moved[j] for i, j in pairs])  # (n_pairs,)
    nearest = pairs[int(np.argmin(between))]
    least = tuple(sorted(np.argsort(moved)[:2].tolist()))
    rho = float(spearmanr(between, total).statistic)
    rows = _level_readings(distances, barely, gap) + [
        ("nearest pair of settings moved least (alternative)",
         _verdict(nearest == least),
         f"nearest: {nearest[0] + 1} and {nearest[1] + 1}; moved least: "
         f"{least[0] + 1} and {least[1] + 1}"),
        ("settings that moved less are closer (alternative)",
         _verdict(rho >= min_correlation),
         f"Spearman {rho:.2f} over {len(pairs)} pairs, needs {min_correlation}"),
    ]  # fmt: skip
    return pd.DataFrame(
        [(reading, numbers, holds) for reading, holds, numbers in rows],
        columns=["reading", "numbers", "holds"],
    )


def window_placements(layer_sizes: Sequence[int], n_windows: int) -> pd.DataFrame:
    """Say where each contiguous window lies among the tensors of a network.

    A permutation reorders entries within a tensor, never across tensors. A
    window that holds whole tensors only keeps the same weights under every
    permutation; a window that holds part of a tensor can receive other
    entries of it (other neurons or channels), so its histogram can change.

    Parameters
    ----------
    layer_sizes : sequence of int
        Number of weights of each tensor in depth order
        (:func:`wdcore.descriptors.layer_sizes`).
    n_windows : int
        Number of windows ``S``.

    Returns
    -------
    pandas.DataFrame
        One row per window: ``start``, ``stop`` (positions in the weight
        vector), ``n_weights``, ``n_tensors`` (tensors it touches),
        ``n_cut`` (tensors it holds part of, not all) and ``placement``, a
        categorical of :data:`PLACEMENTS`: "inside one tensor", "across a
        boundary" (touches several tensors and cuts at least one) or "whole
        tensors only".

    Raises
    ------
    ValueError
        As :func:`wdcore.descriptors.window_overlaps`.

    Notes
    -----
    A cut tensor that no permutation reorders (the output layer's biases)
    cannot change either; in our networks it is the last tensor, which the
    last window holds whole.

    Examples
    --------
    >>> window_placements([4, 2, 2], 2)[["n_weights", "placement"]].values.tolist()
    [[4, 'whole tensors only'], [4, 'whole tensors only']]
    >>> window_placements([6, 2], 2).placement.tolist()
    ['inside one tensor', 'across a boundary']
    """
    overlaps = window_overlaps(layer_sizes, n_windows)  # (S, n_tensors)
    sizes = np.asarray(layer_sizes, dtype=np.int64)  # (n_tensors,)
    touched = overlaps > 0  # (S, n_tensors)
    n_tensors = touched.sum(axis=1)  # (S,)
    n_cut = (touched & (overlaps < sizes)).sum(axis=1)  # (S,)
    placement = np.where(
        n_cut == 0,
        "whole tensors only",
        np.where(n_tensors == 1, "inside one tensor", "across a boundary"),
    )  # (S,)
    # Categorical, so that a count by placement also lists placements no window has.
    placement = pd.Categorical(placement, categories=PLACEMENTS)
    bounds = window_boundaries(int(sizes.sum()), n_windows)  # (S + 1,)
    return pd.DataFrame(
        {
            "start": bounds[:-1],
            "stop": bounds[1:],
            "n_weights": overlaps.sum(axis=1),
            "n_tensors": n_tensors,
            "n_cut": n_cut,
            "placement": placement,
        },
        index=pd.RangeIndex(n_windows, name="window"),
    )


def sampling_noise_distance(
    descriptors: np.ndarray, window_lengths: Sequence[int]
) -> np.ndarray:
    """Distance two descriptors would have from sampling alone.

    If each window of a second descriptor held a fresh random sample of
    ``n_s`` weights from the distribution ``p_s`` that the first shows, the
    expected squared Euclidean distance between the two would be
    ``sum_s sum_b 2 p_sb (1 - p_sb) / n_s`` (each bin a binomial share,
    counted on both sides). The function returns its square root, using each
    descriptor as its own ``p``.

    Parameters
    ----------
    descriptors : array-like of shape (..., S, B)
        Descriptors whose rows sum to 1 (MI-WD rows).
    window_lengths : sequence of int of length S
        Number of weights in each window (e.g. the ``n_weights`` column of
        :func:`window_placements`).

    Returns
    -------
    ndarray of shape (...)
        One predicted distance per descriptor.

    Raises
    ------
    ValueError
        If ``window_lengths`` does not give one positive length per row, or a
        row is not a distribution.

    Notes
    -----
    The prediction treats the weights of a window as independent draws. A
    permutation instead hands a window other whole rows (neurons) of the same
    tensor, which may share scale within a row and overlap the rows it held,
    so the measured distance can differ somewhat; chapter 5 compares them.

    Examples
    --------
    >>> half = np.full((1, 2), 0.5)  # one window, two equal bins
    >>> float(sampling_noise_distance(half, [100])[()])  # sqrt(2 * 0.5 / 100)
    0.1
    """
    stack = np.asarray(descriptors, dtype=np.float64)  # (..., S, B)
    lengths = np.asarray(window_lengths, dtype=np.float64)  # (S,)
    if stack.ndim < 2 or lengths.shape != stack.shape[-2:-1] or np.any(lengths < 1):
        raise ValueError(
            f"window_lengths has shape {lengths.shape!r} for descriptors of shape "
            f"{stack.shape!r}; expected one positive length per window (row)"
        )
    if np.any(stack < 0) or not np.allclose(stack.sum(axis=-1), 1.0, atol=1e-6):
        raise ValueError(
            "descriptors has rows that are not distributions; expected "
            "non-negative rows summing to 1"
        )
    spread = 1.0 - np.sum(stack**2, axis=-1)  # (..., S)
    return np.sqrt(np.sum(2.0 * spread / lengths, axis=-1))  # (...)


def gallery_cell_changes(
    descriptors: np.ndarray, *, min_fraction: float = 0.01
) -> dict[str, float]:
    """Median relative change of a descriptor cell under permutations and seeds.

    The paper reads its figures by eye, cell by cell, on a log colour scale,
    where what shows is a cell's relative change ``|b - a| / a``. This
    function measures it over the cells that hold at least ``min_fraction``
    of their window in the reference descriptor ``a``.

    Parameters
    ----------
    descriptors : array-like of shape (n_settings, n_seeds, n_variants, S, B)
        As for :func:`gallery_distances`; variant 0 is the original.
    min_fraction : float, default=0.01
        Smallest cell value counted, in (0, 1).

    Returns
    -------
    dict of str to float
        ``"permutations of one network"``: original against each permuted
        copy; ``"seeds of one setting"``: each original against every other
        seed's original of its setting (both orders).

    Raises
    ------
    ValueError
        As :func:`gallery_distances`, or if ``min_fraction`` is not in (0, 1).

    Examples
    --------
    >>> descriptors = np.full((1, 2, 2, 1, 2), 0.5)
    >>> descriptors[0, 0, 1, 0] = [0.55, 0.45]  # a permutation moves 10 %
    >>> descriptors[0, 1, :, 0] = [0.6, 0.4]  # the second seed, 20 % away
    >>> changes = gallery_cell_changes(descriptors)
    >>> [round(value, 2) for value in changes.values()]
    [0.05, 0.2]
    """
    array = np.asarray(descriptors, dtype=float)
    if array.ndim != 5 or array.shape[1] < 2 or array.shape[2] < 2:
        raise ValueError(
            f"descriptors has shape {array.shape!r}; expected (n_settings, "
            "n_seeds >= 2, n_variants >= 2, S, B)"
        )
    min_fraction = _check_fraction("min_fraction", min_fraction, low_open=True)
    originals = array[:, :, 0]  # (n_settings, n_seeds, S, B)
    n_seeds = array.shape[1]
    others = [(i, j) for i in range(n_seeds) for j in range(n_seeds) if i != j]
    references = np.stack([originals[:, i] for i, _ in others], axis=1)
    seeds = np.stack([originals[:, j] for _, j in others], axis=1)
    # references, seeds: (n_settings, n_ordered_pairs, S, B)
    levels = {
        "permutations of one network": (array[:, :, :1], array[:, :, 1:]),
        "seeds of one setting": (references, seeds),
    }
    changes = {}
    for level, (reference, other) in levels.items():
        reference = np.broadcast_to(reference, other.shape)
        counted = reference >= min_fraction
        changes[level] = float(
            np.median(np.abs(other - reference)[counted] / reference[counted])
        )
    return changes


def distance_to_final(descriptors: np.ndarray) -> np.ndarray:
    """Distance of each snapshot's descriptor to the last one.

    Parameters
    ----------
    descriptors : array-like of shape (n_snapshots, S, B)
        Descriptors of one network in training order.

    Returns
    -------
    ndarray of shape (n_snapshots,)
        Ends with 0.

    Raises
    ------
    ValueError
        If ``descriptors`` holds no descriptor.

    Examples
    --------
    >>> path = np.arange(4.0).reshape(4, 1, 1) * 2  # snapshots at 0, 2, 4, 6
    >>> distance_to_final(path).tolist()
    [6.0, 4.0, 2.0, 0.0]
    """
    stack = _as_descriptor_stack("descriptors", descriptors, min_count=1)
    return descriptor_distances(stack, stack[-1:])[:, 0]  # (n_snapshots,)


def drifts_apart(between: np.ndarray, *, margin: float = 0.1) -> bool:
    """Whether two networks end training further apart than they started.

    Parameters
    ----------
    between : array-like of shape (n_snapshots,)
        Descriptor distance between the two networks at each snapshot, from
        initialization to the end of training.
    margin : float, default=0.1
        The final distance must be at least ``1 + margin`` times the first; a
        smaller rise is read as no drift, since it is within what a slightly
        different snapshot choice can change.

    Returns
    -------
    bool
        ``between[-1] >= (1 + margin) * between[0]``.

    Raises
    ------
    ValueError
        If ``between`` is not 1-D with at least two finite distances >= 0, or
        ``margin`` is not a finite number >= 0.

    Examples
    --------
    >>> drifts_apart([0.18, 0.20, 0.21]), drifts_apart([0.18, 0.20, 0.19])
    (True, False)
    """
    if (
        isinstance(margin, bool)
        or not isinstance(margin, numbers.Real)
        or not 0 <= margin < np.inf
    ):
        raise ValueError(
            f"margin={margin!r} is not valid; expected a finite number >= 0"
        )
    distances = np.asarray(between, dtype=float)  # (n_snapshots,)
    if (
        distances.ndim != 1
        or len(distances) < 2
        or not np.all(np.isfinite(distances))
        or np.any(distances < 0)
    ):
        raise ValueError(
            f"between={np.round(distances, 4).tolist()!r} is not valid; expected "
            "at least two finite distances >= 0, one per snapshot"
        )
    return bool(distances[-1] >= (1 + margin) * distances[0])


def share_left(
    to_final: np.ndarray, progress: np.ndarray, *, percent: float = 25.0
) -> tuple[int, np.ndarray]:
    """Share of each network's drift still to come at a point of training.

    Parameters
    ----------
    to_final : array-like of shape (n_networks, n_snapshots)
        Distances of each snapshot's descriptor to the network's final one, as
        returned by :func:`distance_to_final` for each network.
    progress : array-like of shape (n_snapshots,)
        Training progress of each snapshot in percent, increasing, from 0 to 100.
    percent : float, default=25.0
        Point of training to look at; the first snapshot at or after it is used.

    Returns
    -------
    snapshot : int
        Index of the snapshot used.
    shares : ndarray of shape (n_networks,)
        ``to_final[:, snapshot] / to_final[:, 0]``: 1 means no change yet, 0 means
        the descriptor has reached its final state.

    Raises
    ------
    ValueError
        If the shapes do not match, ``progress`` is not increasing, ``percent`` is
        not in (0, 100] or a network never moved from its first snapshot.

    Examples
    --------
    >>> to_final = np.array([[4.0, 1.0, 0.5, 0.0], [2.0, 1.5, 1.0, 0.0]])
    >>> snapshot, shares = share_left(to_final, np.array([0, 30, 60, 100]))
    >>> snapshot, shares.tolist()
    (1, [0.25, 0.75])
    """
    to_final = np.asarray(to_final, dtype=float)  # (n_networks, n_snapshots)
    progress = np.asarray(progress, dtype=float)  # (n_snapshots,)
    if to_final.ndim != 2 or progress.shape != to_final.shape[1:]:
        raise ValueError(
            f"to_final has shape {to_final.shape!r} and progress {progress.shape!r}; "
            "expected (n_networks, n_snapshots) and (n_snapshots,)"
        )
    if np.any(np.diff(progress) <= 0):
        raise ValueError(f"progress={progress.tolist()!r} is not strictly increasing")
    if not 0 < percent <= 100 or percent > progress[-1]:
        raise ValueError(
            f"percent={percent!r} is not valid; expected a number in (0, 100] "
            f"reached by progress (last value {float(progress[-1])!r})"
        )
    if np.any(to_final[:, 0] <= 0):
        raise ValueError(
            f"to_final[:, 0]={to_final[:, 0].tolist()!r}; expected every network to "
            "have moved (a positive distance at its first snapshot)"
        )

    snapshot = int(np.searchsorted(progress, percent))
    return snapshot, to_final[:, snapshot] / to_final[:, 0]  # (n_networks,)
