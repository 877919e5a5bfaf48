"""Permutation robustness and informativeness of weight-space representations.

Chapter 4 of the book (``notebooks/04_robustness.ipynb``) uses this module to
rebuild Table 1 of the supplement on our zoo:

1. :func:`permute_models` permutes every network several times and checks that
   its outputs do not change (:func:`measure_output_change`).
2. :func:`fit_representations` fits global statistics, raw subsets, PCA,
   random projections and MI-WD (contiguous and layer-exact) at several sizes;
   :func:`apply_representations` maps weight vectors through them.
3. :func:`intra_inter_distances`, :func:`intra_inter_ratio` and
   :func:`ratio_table` measure how far a permuted copy moves relative to other
   networks; :func:`informativeness_table` scores how well a linear probe
   predicts hyperparameters from a representation.
4. :func:`load_paper_table`, :func:`merge_with_paper`,
   :func:`compare_with_paper` and :func:`compare_choices` put our numbers beside
   the paper's and check its reading of the table under several choices;
   :func:`read_informativeness` reads the probe's table and
   :func:`plot_tradeoff` draws invariance against informativeness.

Known limitations: the ratio is undefined (NaN, with
:class:`UndefinedRatioWarning`) when all models share one representation; the
informativeness probe is linear and needs ``cv`` members in every class, and
with more features than networks it can fit noise, so a low accuracy there is
a lower bound on what the representation holds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from functools import partial
from importlib import resources
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from scipy.spatial.distance import cdist
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from wdcore._random import RandomState, check_random_state

__all__ = [
    "FINDINGS",
    "METRICS",
    "MIN_RANKED_SHARE",
    "REPRESENTATIONS",
    "Informativeness",
    "OutputChangeError",
    "PermutedWeights",
    "READINGS",
    "VERDICTS",
    "UndefinedRatioWarning",
    "apply_representations",
    "compare_choices",
    "compare_with_paper",
    "findings_by_group",
    "fit_representations",
    "informativeness",
    "informativeness_table",
    "intra_inter_distances",
    "intra_inter_ratio",
    "load_paper_table",
    "measure_output_change",
    "merge_with_paper",
    "permute_models",
    "plot_tradeoff",
    "ratio_by_group",
    "ratio_table",
    "read_informativeness",
]

METRICS = ("euclidean", "cosine")
REPRESENTATIONS = (
    "global_stats",
    "raw",
    "pca",
    "random_projection",
    "mi_wd",
    "mi_wd_layer",
)
TABLE_COLUMNS = ("representation", "dim", "ratio")
COSINE_TOLERANCE = 1e-12
VERDICTS = ("yes", "no", "inconclusive", "not checked")


class UndefinedRatioWarning(RuntimeWarning):
    """A model's inter distance is zero, so its intra/inter ratio is undefined."""


class OutputChangeError(RuntimeError):
    """A permuted copy changed a network's outputs by more than rounding.

    Raised by :func:`permute_models` when ``max_output_change`` is exceeded,
    which points to a wrong permutation rather than float rounding.

    Examples
    --------
    >>> issubclass(OutputChangeError, RuntimeError)
    True
    """


class Informativeness(NamedTuple):
    """Cross-validated accuracy of a probe and the majority-class rate.

    Returned by :func:`informativeness`.

    Attributes
    ----------
    accuracy : float
        Mean fraction of correct predictions over the cross-validation folds.
    chance : float
        Fraction of the most common label: the accuracy of always guessing it.

    Examples
    --------
    >>> score = Informativeness(accuracy=0.8, chance=0.5)
    >>> round(score.accuracy - score.chance, 2)
    0.3
    """

    accuracy: float
    chance: float


class PermutedWeights(NamedTuple):
    """Weight vectors of a set of models and of random permutations of each.

    Returned by :func:`permute_models`.

    Attributes
    ----------
    original : ndarray of shape (n_models, n_weights)
        Weight vector of every model.
    permuted : ndarray of shape (n_models, n_permutations, n_weights)
        Weight vectors of its permuted copies.
    output_change : ndarray of shape (n_models, n_permutations)
        Relative output change of every copy (:func:`measure_output_change`).

    Examples
    --------
    >>> weights = PermutedWeights(np.zeros((2, 5)), np.zeros((2, 3, 5)),
    ...                           np.zeros((2, 3)))
    >>> weights.permuted.shape[1]  # permutations per model
    3
    """

    original: np.ndarray
    permuted: np.ndarray
    output_change: np.ndarray


# --------------------------------------------------------------------------
# The intra/inter ratio
# --------------------------------------------------------------------------


def _paired_distances(left: np.ndarray, right: np.ndarray, metric: str):
    """Distances between matching vectors along the last axis (float64)."""
    if metric == "euclidean":
        return np.linalg.norm(left - right, axis=-1)
    cosine = (left * right).sum(axis=-1) / (
        np.linalg.norm(left, axis=-1) * np.linalg.norm(right, axis=-1)
    )
    distances = np.clip(1.0 - cosine, 0.0, 2.0)
    distances[distances < COSINE_TOLERANCE] = 0.0
    return distances


def _check_representations(original, permuted, metric: str):
    """Validate the inputs of :func:`intra_inter_ratio`; return float64 copies."""
    if metric not in METRICS:
        raise ValueError(
            f"metric={metric!r} is not supported; expected one of {METRICS}"
        )
    original = np.asarray(original, dtype=np.float64)  # (n_models, d)
    permuted = np.asarray(permuted, dtype=np.float64)  # (n_models, n_perms, d)
    if original.ndim != 2 or original.shape[0] < 2:
        raise ValueError(
            f"original has shape {original.shape!r}; expected (n_models, d) with "
            "n_models >= 2"
        )
    expected = (original.shape[0], original.shape[1])
    if permuted.ndim != 3 or permuted.shape[1] < 1 or permuted.shape[::2] != expected:
        raise ValueError(
            f"permuted has shape {permuted.shape!r}; expected (n_models, n_perms, d) "
            f"= ({expected[0]}, n_perms >= 1, {expected[1]})"
        )
    if not (np.isfinite(original).all() and np.isfinite(permuted).all()):
        raise ValueError("original and permuted must hold finite values only")
    if metric == "cosine" and (
        np.any(np.linalg.norm(original, axis=1) == 0)
        or np.any(np.linalg.norm(permuted, axis=2) == 0)
    ):
        raise ValueError("metric='cosine' needs nonzero vectors; got a zero vector")
    return original, permuted


def intra_inter_distances(
    original: np.ndarray,
    permuted: np.ndarray,
    *,
    metric: str = "euclidean",
) -> tuple[np.ndarray, np.ndarray]:
    """Intra and inter distance of every model, the two halves of the ratio.

    For model ``i`` the intra distance is the mean distance from
    ``original[i]`` to its permuted copies ``permuted[i, k]``, and the inter
    distance is the mean distance from ``original[i]`` to ``original[j]`` over
    all other models ``j != i`` (chapter 4, supplement Table 1).

    Parameters
    ----------
    original : array-like of shape (n_models, d)
        Representation of every model, ``n_models >= 2``.
    permuted : array-like of shape (n_models, n_perms, d)
        Representation of ``n_perms >= 1`` permuted copies of every model.
    metric : {"euclidean", "cosine"}, default="euclidean"
        Distance between two representations; ``"cosine"`` is one minus the
        cosine similarity and needs nonzero vectors.

    Returns
    -------
    intra : ndarray of shape (n_models,)
        Mean distance of each model to its permuted copies.
    inter : ndarray of shape (n_models,)
        Mean distance of each model to the other models.

    Raises
    ------
    ValueError
        If ``metric`` is unknown, the shapes do not match, there are fewer than
        two models, a value is not finite, or a vector is zero with
        ``metric="cosine"``.

    Examples
    --------
    >>> original = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    >>> permuted = original[:, None, :] + np.array([0.5, 0.0])
    >>> intra, inter = intra_inter_distances(original, permuted)
    >>> intra.tolist(), inter.tolist()
    ([0.5, 0.5, 0.5], [7.5, 5.0, 7.5])
    """
    original, permuted = _check_representations(original, permuted, metric)
    n_models = original.shape[0]

    between = cdist(original, original, metric=metric)  # (n_models, n_models)
    if metric == "cosine":
        # Identical vectors give a rounding residue of ~1e-16 instead of 0.
        between[between < COSINE_TOLERANCE] = 0.0
    inter = between.sum(axis=1) / (n_models - 1)  # (n_models,)
    intra = _paired_distances(original[:, None, :], permuted, metric).mean(
        axis=1
    )  # (n_models,)
    return intra, inter


def intra_inter_ratio(
    original: np.ndarray,
    permuted: np.ndarray,
    *,
    metric: str = "euclidean",
    average: bool = True,
) -> float | np.ndarray:
    """Intra/inter distance ratio of a representation under permutations.

    For model ``i`` the intra distance is the mean distance from
    ``original[i]`` to its permuted copies ``permuted[i, k]``, and the inter
    distance is the mean distance from ``original[i]`` to ``original[j]`` over
    all other models ``j != i`` (:func:`intra_inter_distances`). The ratio of
    the two is 0 for a representation
    that ignores permutations and about 1 for one in which a permuted copy looks
    as different as another model (chapter 4, supplement Table 1).

    Parameters
    ----------
    original : array-like of shape (n_models, d)
        Representation of every model, ``n_models >= 2``.
    permuted : array-like of shape (n_models, n_perms, d)
        Representation of ``n_perms >= 1`` permuted copies of every model.
    metric : {"euclidean", "cosine"}, default="euclidean"
        Distance between two representations; ``"cosine"`` is one minus the
        cosine similarity and needs nonzero vectors.
    average : bool, default=True
        Return the mean ratio over models instead of the per-model ratios.

    Returns
    -------
    float or ndarray of shape (n_models,)
        The mean ratio, or the ratio of every model. A model whose inter
        distance is zero (it cannot be told apart from any other model) has an
        undefined ratio, returned as NaN; the mean is then NaN too.

    Raises
    ------
    ValueError
        If ``metric`` is unknown, the shapes do not match, there are fewer than
        two models, a value is not finite, or a vector is zero with
        ``metric="cosine"``.

    Warns
    -----
    UndefinedRatioWarning
        If some model's inter distance is zero, for instance when the
        representation is the same constant for every model.

    Examples
    --------
    >>> original = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    >>> permuted = original[:, None, :] + np.array([0.5, 0.0])
    >>> intra_inter_ratio(original, permuted, average=False).round(3).tolist()
    [0.067, 0.1, 0.067]
    >>> intra_inter_ratio(original, original[:, None, :])
    0.0
    """
    intra, inter = intra_inter_distances(original, permuted, metric=metric)
    n_models = len(intra)

    undefined = inter == 0
    if undefined.any():
        warnings.warn(
            f"{int(undefined.sum())} of {n_models} models have inter distance 0 "
            "(the representation cannot tell them from the others); their ratio "
            "is NaN",
            UndefinedRatioWarning,
            stacklevel=2,
        )
    ratios = np.divide(
        intra, inter, out=np.full(n_models, np.nan), where=~undefined
    )  # (n_models,)
    return float(ratios.mean()) if average else ratios


def ratio_table(
    original: Mapping[tuple[str, int], np.ndarray],
    permuted: Mapping[tuple[str, int], np.ndarray],
    *,
    metric: str = "euclidean",
    distances: bool = False,
) -> pd.DataFrame:
    """Intra/inter ratio of every representation, as a long table.

    Parameters
    ----------
    original : mapping of (str, int) to ndarray of shape (n_models, dim)
        Representations of the models.
    permuted : mapping of (str, int) to ndarray of shape (n_models, n_perms, dim)
        Representations of their permuted copies, with the same keys.
    metric : {"euclidean", "cosine"}, default="euclidean"
        Passed to :func:`intra_inter_ratio`.
    distances : bool, default=False
        Add the columns ``intra`` and ``inter``: the two distances of
        :func:`intra_inter_distances`, each averaged over models. The ratio is
        the mean of per-model ratios, so it need not equal ``intra / inter``.

    Returns
    -------
    pandas.DataFrame
        Columns ``representation, dim, ratio`` (then ``intra, inter`` if
        ``distances``) in the order of ``original``.

    Raises
    ------
    ValueError
        If the keys differ, or as :func:`intra_inter_ratio`.

    Examples
    --------
    >>> original = {("raw", 2): np.eye(2)}
    >>> ratio_table(original, {("raw", 2): np.eye(2)[:, None, :]}).ratio.tolist()
    [0.0]
    >>> table = ratio_table(original, {("raw", 2): np.eye(2)[:, None, :] + 0.1},
    ...                     distances=True)
    >>> table[["ratio", "intra", "inter"]].round(3).to_dict("records")
    [{'ratio': 0.1, 'intra': 0.141, 'inter': 1.414}]
    """
    if list(original) != list(permuted):
        raise ValueError(
            f"original has keys {list(original)!r} but permuted has "
            f"{list(permuted)!r}; expected the same keys"
        )
    rows = []
    for (name, dim), values in original.items():
        copies = permuted[(name, dim)]
        row = [name, dim, intra_inter_ratio(values, copies, metric=metric)]
        if distances:
            intra, inter = intra_inter_distances(values, copies, metric=metric)
            row += [float(intra.mean()), float(inter.mean())]
        rows.append(row)
    columns = [*TABLE_COLUMNS, "intra", "inter"] if distances else TABLE_COLUMNS
    return pd.DataFrame(rows, columns=list(columns))


def ratio_by_group(
    original: Mapping[tuple[str, int], np.ndarray],
    permuted: Mapping[tuple[str, int], np.ndarray],
    groups: Sequence[object],
    *,
    metric: str = "euclidean",
) -> pd.DataFrame:
    """Intra/inter ratio of every representation, within each group of models.

    The inter distance of a model is averaged over the other members of its
    group only, so the table shows how a representation separates permuted
    copies from networks that are alike in the grouping (e.g. one
    initialization), rather than from the whole zoo.

    Parameters
    ----------
    original, permuted : mappings as in :func:`ratio_table`
        Representations of the models and of their permuted copies.
    groups : sequence of length n_models
        Group label of every model. Groups with fewer than two members have
        no inter distance and are left out.
    metric : {"euclidean", "cosine"}, default="euclidean"
        Passed to :func:`intra_inter_ratio`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``representation, dim``, one column per group (in order of
        first appearance) with the group's mean ratio.

    Raises
    ------
    ValueError
        If ``groups`` does not have one label per model, no group has two
        members, or as :func:`ratio_table`.

    Examples
    --------
    >>> original = {("raw", 1): np.array([[0.0], [1.0], [10.0], [20.0]])}
    >>> permuted = {("raw", 1): original[("raw", 1)][:, None, :] + 0.5}
    >>> ratio_by_group(original, permuted, ["a", "a", "b", "b"]).to_dict("index")
    {('raw', 1): {'a': 0.5, 'b': 0.05}}
    """
    labels = pd.Series(np.asarray(groups, dtype=object))
    n_models = len(next(iter(original.values()))) if original else 0
    if len(labels) != n_models:
        raise ValueError(
            f"groups has {len(labels)} labels but there are {n_models} models; "
            "expected one label per model"
        )
    columns = {}
    for label in labels.unique():
        members = (labels == label).to_numpy()
        if members.sum() < 2:
            continue
        table = ratio_table(
            {key: values[members] for key, values in original.items()},
            {key: values[members] for key, values in permuted.items()},
            metric=metric,
        )
        columns[label] = table.set_index(["representation", "dim"]).ratio
    if not columns:
        raise ValueError(
            f"no group of {sorted(map(str, labels.unique()))} has two members; "
            "expected at least one group with two or more models"
        )
    return pd.DataFrame(columns)


# --------------------------------------------------------------------------
# Permuted copies of a set of models
# --------------------------------------------------------------------------


def measure_output_change(
    model: torch.nn.Module,
    state_dicts: Sequence[Mapping[str, torch.Tensor]],
    inputs: torch.Tensor,
    *,
    dtype: torch.dtype = torch.float64,
) -> np.ndarray:
    """Relative change of a model's outputs when its weights are replaced.

    Runs ``model`` in eval mode on ``inputs`` with its own weights and with each
    state dict in turn (a permuted copy computes the same function, so its
    change is float rounding only). The change is the largest absolute output
    difference divided by the largest absolute output of the original.

    By default weights and inputs are cast to float64 for the check. A
    permutation reorders sums, and in float32 the rounding of a network with
    large weights whose logits cancel reaches 1e-4 of the output (seen on the
    book's zoo); in float64 it stays near 1e-12, far from any real error.

    Parameters
    ----------
    model : torch.nn.Module
        The model with its original weights; it is not modified.
    state_dicts : sequence of mapping of str to torch.Tensor
        Replacement weights, e.g. permuted copies of ``model.state_dict()``.
    inputs : torch.Tensor of shape (n_inputs, ...)
        A batch the model accepts.
    dtype : torch.dtype, default=torch.float64
        Floating-point type of the computation; ``torch.float32`` checks the
        network as it is stored.

    Returns
    -------
    ndarray of shape (n_state_dicts,)
        The relative output change of every state dict (float64).

    Raises
    ------
    ValueError
        If ``state_dicts`` is empty, the original outputs are all zero or
        ``dtype`` is not a floating-point type.

    Examples
    --------
    >>> from wdcore.permutations import permute_state_dict
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(),
    ...                             torch.nn.Linear(8, 2))
    >>> twin = permute_state_dict(model.state_dict(), model, random_state=0)
    >>> changes = measure_output_change(model, [twin], torch.randn(4, 3))
    >>> bool(changes[0] < 1e-6)
    True
    """
    if len(state_dicts) == 0:
        raise ValueError("state_dicts is empty; expected at least one state dict")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            f"dtype={dtype!r} is not valid; expected a floating-point torch.dtype "
            "such as torch.float64"
        )
    copy = deepcopy(model).eval().to(dtype)
    inputs = inputs.to(dtype)
    n_threads = torch.get_num_threads()

    # A small network on a small batch runs fastest on one thread: more threads
    # only add synchronization, which costs 20x on a busy machine.
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            reference = copy(inputs).double()  # (n_inputs, n_outputs)
            scale = float(reference.abs().max())
            if scale == 0:
                raise ValueError("the model's outputs on inputs are all zero")
            changes = []
            for state_dict in state_dicts:
                copy.load_state_dict(state_dict)  # copies into the dtype's tensors
                outputs = copy(inputs).double()  # (n_inputs, n_outputs)
                changes.append(float((outputs - reference).abs().max()) / scale)
    finally:
        torch.set_num_threads(n_threads)
    return np.asarray(changes)  # (n_state_dicts,)


def _check_permute_options(models, inputs, n_permutations, max_output_change):
    """Validate the arguments of :func:`permute_models`."""
    if len(models) == 0 or len(inputs) != len(models):
        raise ValueError(
            f"got {len(models)} models and {len(inputs)} input batches; expected "
            "at least one model and one batch per model"
        )
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int):
        raise ValueError(f"n_permutations={n_permutations!r} is not a positive int")
    if n_permutations < 1:
        raise ValueError(f"n_permutations={n_permutations!r} is not a positive int")
    if max_output_change is None:
        return
    number = isinstance(max_output_change, (int, float)) and not isinstance(
        max_output_change, bool
    )
    if not number or not max_output_change >= 0:
        raise ValueError(
            f"max_output_change={max_output_change!r} is not valid; expected None "
            "or a non-negative number"
        )


def permute_models(
    models: Sequence[torch.nn.Module],
    inputs: Sequence[torch.Tensor],
    *,
    n_permutations: int = 10,
    dtype: torch.dtype = torch.float64,
    max_output_change: float | None = None,
    random_state: RandomState = None,
    progress: bool = False,
) -> PermutedWeights:
    """Permute every model at random several times and check its outputs.

    Each permuted copy is made on the state dict
    (:func:`wdcore.permutations.permute_state_dict`) and checked with
    :func:`measure_output_change` on the model's own batch of inputs. With
    ``max_output_change`` a copy that changes the outputs by more stops the
    run, so a wrong permutation cannot pass unnoticed.

    Parameters
    ----------
    models : sequence of torch.nn.Sequential
        Models whose weight vectors (:func:`wdcore.descriptors.weight_vector`)
        all have the same length; they are not modified.
    inputs : sequence of torch.Tensor
        One input batch per model, e.g. test images of its dataset.
    n_permutations : int, default=10
        Random permutations per model.
    dtype : torch.dtype, default=torch.float64
        Floating-point type of the output check (see
        :func:`measure_output_change`).
    max_output_change : float, optional
        Largest relative output change a permuted copy may cause; None checks
        nothing.
    random_state : None, int or numpy.random.Generator, default=None
        Source of the permutations.
    progress : bool, default=False
        Show a progress bar over the models.

    Returns
    -------
    PermutedWeights
        ``original`` of shape (n_models, n_weights), ``permuted`` of shape
        (n_models, n_permutations, n_weights), both float32, and
        ``output_change`` of shape (n_models, n_permutations).

    Raises
    ------
    ValueError
        If there are no models, ``inputs`` has another length, or
        ``n_permutations`` is not a positive int, ``max_output_change`` is not
        a non-negative number, or weight vectors differ in length.
    OutputChangeError
        If a permuted copy changes its model's outputs by more than
        ``max_output_change``.

    Examples
    --------
    >>> models = [torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(),
    ...                               torch.nn.Linear(5, 2)) for _ in range(2)]
    >>> result = permute_models(models, [torch.randn(4, 3)] * 2, n_permutations=3,
    ...                         random_state=0)
    >>> result.permuted.shape, bool(result.output_change.max() < 1e-6)
    ((2, 3, 32), True)
    """
    from wdcore.descriptors import weight_vector
    from wdcore.permutations import permutation_spec, permute_state_dict

    _check_permute_options(models, inputs, n_permutations, max_output_change)
    rng = check_random_state(random_state)
    original, permuted, changes = [], [], []
    pairs = list(zip(models, inputs, strict=True))
    for index, (model, batch) in enumerate(
        tqdm(pairs, disable=not progress, desc="permute")
    ):
        state_dict, spec = model.state_dict(), permutation_spec(model)
        copies = [
            permute_state_dict(state_dict, spec, random_state=rng)
            for _ in range(n_permutations)
        ]
        changes.append(measure_output_change(model, copies, batch, dtype=dtype))
        if max_output_change is not None and changes[-1].max() > max_output_change:
            raise OutputChangeError(
                f"a permuted copy of model {index} changed its outputs by "
                f"{changes[-1].max():.1e} (relative); expected at most "
                f"max_output_change={max_output_change!r}"
            )
        original.append(weight_vector(state_dict))  # (n_weights,)
        permuted.append(np.stack([weight_vector(copy) for copy in copies]))
    if len({len(weights) for weights in original}) != 1:
        raise ValueError(
            "models have weight vectors of lengths "
            f"{sorted({len(weights) for weights in original})!r}; expected one "
            "architecture (one length)"
        )
    return PermutedWeights(
        np.stack(original),  # (n_models, n_weights)
        np.stack(permuted),  # (n_models, n_permutations, n_weights)
        np.stack(changes),  # (n_models, n_permutations)
    )


# --------------------------------------------------------------------------
# The representations of Table 1
# --------------------------------------------------------------------------


def _project(weights: np.ndarray, *, mean: np.ndarray, components: np.ndarray):
    """Centre ``weights`` and project them on the rows of ``components``."""
    return (weights - mean) @ components.T  # (n, n_components)


def _flat_descriptors(weights: np.ndarray, **options) -> np.ndarray:
    """MI-WD of every row of ``weights``, flattened to (n_models, S * B)."""
    from wdcore.descriptors import mi_wd

    return mi_wd(weights, **options).reshape(len(weights), -1)


def fit_representations(
    snapshots: np.ndarray,
    *,
    dims: Sequence[int] = (16, 64, 256, 1024),
    layer_sizes: Sequence[int],
    value_range: float | None,
    names: Sequence[str] = REPRESENTATIONS,
    random_state: RandomState = None,
) -> dict[tuple[str, int], Callable[[np.ndarray], np.ndarray]]:
    """Fit every representation of Table 1 on a set of weight vectors.

    PCA is fitted once with ``max(dims)`` components (randomized SVD) and a
    smaller size keeps the leading components; raw subsets and random
    projections are drawn per size. MI-WD of size ``dim`` is the ``S x S``
    descriptor with ``S = sqrt(dim)``, flattened; ``mi_wd_layer`` is its
    layer-exact variant. Global statistics exist at 16 dims only, and PCA only
    at sizes up to ``min(n_snapshots, n_weights)``; other sizes are skipped.

    Parameters
    ----------
    snapshots : ndarray of shape (n_snapshots, n_weights)
        Weight vectors the data-driven baselines are fitted on (chapter 4 uses
        every snapshot of the zoo, so that 1024 principal components exist).
    dims : sequence of int, default=(16, 64, 256, 1024)
        Output sizes; perfect squares (for MI-WD).
    layer_sizes : sequence of int
        Sizes of the tensors making up a weight vector
        (:func:`wdcore.descriptors.layer_sizes`), for ``mi_wd_layer``.
    value_range : float or None
        MI-WD bin range ``r`` shared by all models, or None for each model's
        own default (:func:`wdcore.descriptors.default_value_range`).
    names : sequence of str, default=REPRESENTATIONS
        Which representations to fit.
    random_state : None, int or numpy.random.Generator, default=None
        Source of the raw subsets, projections and the randomized SVD.

    Returns
    -------
    dict of (str, int) to callable
        ``(representation, dim)`` to a function mapping weight vectors of
        shape (n, n_weights) to features of shape (n, dim), ordered by
        representation, then size.

    Raises
    ------
    ValueError
        If a name is unknown or a size is not a positive perfect square.

    Examples
    --------
    >>> snapshots = np.random.default_rng(0).normal(size=(20, 64))
    >>> fitted = fit_representations(snapshots, dims=(4, 16), layer_sizes=[48, 16],
    ...                              value_range=2.0, random_state=0)
    >>> [key for key in fitted if key[0] == "pca"]
    [('pca', 4), ('pca', 16)]
    >>> fitted[("mi_wd", 16)](snapshots[:3]).shape
    (3, 16)
    """
    from wdcore.baselines import GlobalStatistics, make_baseline

    unknown = sorted(set(names) - set(REPRESENTATIONS))
    if unknown:
        raise ValueError(f"names={unknown!r} are unknown; expected {REPRESENTATIONS}")
    for dim in dims:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dims holds {dim!r}; expected positive ints")
        if round(dim**0.5) ** 2 != dim:
            raise ValueError(f"dims holds {dim!r}; expected perfect squares (S x S)")
    rng = check_random_state(random_state)
    dims = sorted(dims)
    fitted = {}
    for name in names:
        if name == "global_stats" and 16 in dims:
            fitted[(name, 16)] = GlobalStatistics().fit(snapshots).transform
        elif name == "pca":
            usable = [dim for dim in dims if dim <= min(snapshots.shape)]
            if usable:
                pca = make_baseline("pca", n_components=usable[-1], random_state=rng)
                pca_ = pca.fit(snapshots).pca_
                for dim in usable:
                    fitted[(name, dim)] = partial(
                        _project, mean=pca_.mean_, components=pca_.components_[:dim]
                    )
        elif name in ("raw", "random_projection"):
            for dim in dims:
                baseline = make_baseline(name, n_components=dim, random_state=rng)
                fitted[(name, dim)] = baseline.fit(snapshots[:1]).transform
        elif name in ("mi_wd", "mi_wd_layer"):
            for dim in dims:
                fitted[(name, dim)] = partial(
                    _flat_descriptors,
                    size=round(dim**0.5),
                    value_range=value_range,
                    windows="layer" if name == "mi_wd_layer" else "contiguous",
                    layer_sizes=layer_sizes,
                )
    return fitted


def apply_representations(
    representations: Mapping[tuple[str, int], Callable[[np.ndarray], np.ndarray]],
    weights: np.ndarray,
) -> dict[tuple[str, int], np.ndarray]:
    """Map weight vectors through every representation.

    Parameters
    ----------
    representations : mapping of (str, int) to callable
        ``(representation, dim)`` to a function from a (n, n_weights) matrix
        to a (n, dim) matrix, e.g. from :func:`fit_representations`.
    weights : ndarray of shape (..., n_weights)
        Weight vectors with any leading shape, e.g. (n_models, n_perms,
        n_weights).

    Returns
    -------
    dict of (str, int) to ndarray of shape (..., dim)
        Same keys and leading shape.

    Raises
    ------
    ValueError
        If a representation returns a shape other than (n, dim).

    Examples
    --------
    >>> first = {("first", 1): lambda weights: weights[:, :1]}
    >>> apply_representations(first, np.ones((2, 3, 4)))[("first", 1)].shape
    (2, 3, 1)
    """
    weights = np.asarray(weights)
    flat = weights.reshape(-1, weights.shape[-1])  # (n, n_weights)
    features = {}
    for (name, dim), represent in representations.items():
        values = np.asarray(represent(flat))  # (n, dim)
        if values.shape != (len(flat), dim):
            raise ValueError(
                f"representation {(name, dim)!r} returned shape {values.shape!r}; "
                f"expected {(len(flat), dim)!r}"
            )
        features[(name, dim)] = values.reshape(*weights.shape[:-1], dim)
    return features


# --------------------------------------------------------------------------
# Informativeness
# --------------------------------------------------------------------------


def informativeness(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    cv: int = 5,
    random_state: int = 0,
) -> Informativeness:
    """Cross-validated accuracy of a linear probe that predicts a label.

    The probe is a standardization followed by a multinomial logistic
    regression, scored by stratified ``cv``-fold cross-validation with shuffled
    folds. Chance is the majority-class rate: the accuracy of always answering
    the most common label.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        One representation per model.
    labels : array-like of shape (n_samples,)
        The hyperparameter to predict (any hashable values), with at least two
        classes and at least ``cv`` samples in every class.
    cv : int, default=5
        Number of folds, at least 2.
    random_state : int, default=0
        Seed of the fold shuffling, so that every representation is scored on
        the same folds.

    Returns
    -------
    Informativeness
        Named tuple ``(accuracy, chance)``, both in [0, 1].

    Raises
    ------
    ValueError
        If the shapes do not match, a feature is not finite, there are fewer
        than two classes, ``cv`` is below 2, or a class has fewer than ``cv``
        samples.

    Examples
    --------
    >>> features = np.repeat([[0.0], [1.0]], 10, axis=0)
    >>> labels = np.repeat(["a", "b"], 10)
    >>> informativeness(features, labels, cv=5)
    Informativeness(accuracy=1.0, chance=0.5)
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(features, dtype=np.float64)  # (n_samples, n_features)
    labels = np.asarray(labels)  # (n_samples,)
    if features.ndim != 2 or labels.shape != features.shape[:1]:
        raise ValueError(
            f"features has shape {features.shape!r} and labels {labels.shape!r}; "
            "expected (n_samples, n_features) and (n_samples,)"
        )
    if not np.isfinite(features).all():
        raise ValueError("features must hold finite values only")
    if isinstance(cv, bool) or not isinstance(cv, int) or cv < 2:
        raise ValueError(f"cv={cv!r} is not valid; expected an int >= 2")
    _, counts = np.unique(labels, return_counts=True)
    if counts.size < 2:
        raise ValueError(f"labels hold {counts.size} class; expected at least 2")
    if counts.min() < cv:
        raise ValueError(
            f"cv={cv!r} is larger than the smallest class ({counts.min()} samples); "
            "expected every class to have at least cv samples"
        )

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)

    # These fits are small; one BLAS thread avoids synchronization that makes
    # them several times slower on a busy machine.
    with threadpool_limits(limits=1):
        scores = cross_val_score(probe, features, labels, cv=folds)
    return Informativeness(float(scores.mean()), float(counts.max() / counts.sum()))


def informativeness_table(
    representations: Mapping[tuple[str, int], np.ndarray],
    targets: pd.DataFrame,
    *,
    cv: int = 5,
    random_state: int = 0,
) -> pd.DataFrame:
    """Informativeness of several representations about several hyperparameters.

    Every representation is scored by :func:`informativeness` on the same folds
    for every column of ``targets``. A target whose smallest class has fewer
    than ``cv`` members is scored with as many folds as that class has members;
    with fewer than two (or with a single class) its accuracy is NaN, which
    happens only in small zoos.

    Parameters
    ----------
    representations : mapping of (str, int) to array-like of shape (n_models, dim)
        Features keyed by ``(representation, dim)``.
    targets : pandas.DataFrame of shape (n_models, n_targets)
        One column per hyperparameter, rows in the order of the features.
    cv : int, default=5
        Largest number of folds, at least 2.
    random_state : int, default=0
        Seed of the fold shuffling.

    Returns
    -------
    pandas.DataFrame
        Columns ``representation, dim, hyperparameter, accuracy, chance,
        n_folds``, one row per representation and hyperparameter.

    Raises
    ------
    ValueError
        If ``representations`` is empty, a feature matrix has a number of rows
        other than ``len(targets)``, or ``cv`` is below 2.

    Examples
    --------
    >>> targets = pd.DataFrame({"optimizer": ["adam", "sgd"] * 10})
    >>> features = {("toy", 1): (targets.optimizer == "sgd").to_numpy()[:, None]}
    >>> table = informativeness_table(features, targets)
    >>> table[["hyperparameter", "accuracy", "chance", "n_folds"]].to_dict("records")
    [{'hyperparameter': 'optimizer', 'accuracy': 1.0, 'chance': 0.5, 'n_folds': 5}]
    """
    if not representations:
        raise ValueError("representations is empty; expected at least one entry")
    if isinstance(cv, bool) or not isinstance(cv, int) or cv < 2:
        raise ValueError(f"cv={cv!r} is not valid; expected an int >= 2")
    rows = []
    for (name, dim), features in representations.items():
        features = np.asarray(features)  # (n_models, dim)
        if features.shape[0] != len(targets):
            raise ValueError(
                f"representations[{(name, dim)!r}] has {features.shape[0]} rows; "
                f"expected one per row of targets ({len(targets)})"
            )
        for column in targets.columns:
            counts = targets[column].value_counts()
            n_folds = int(min(cv, counts.min()))
            score = Informativeness(np.nan, float(counts.max() / counts.sum()))
            if n_folds >= 2 and counts.size >= 2:
                score = informativeness(
                    features,
                    targets[column].to_numpy(),
                    cv=n_folds,
                    random_state=random_state,
                )
            rows.append((name, dim, column, *score, n_folds))
    columns = ["representation", "dim", "hyperparameter", "accuracy", "chance"]
    return pd.DataFrame(rows, columns=[*columns, "n_folds"])


# --------------------------------------------------------------------------
# The paper's table and its findings
# --------------------------------------------------------------------------


def load_paper_table() -> pd.DataFrame:
    """Table 1 of the supplement as printed: ratios of five representations.

    Returns
    -------
    pandas.DataFrame
        Columns ``representation, dim, ratio``; representations are named as in
        :data:`REPRESENTATIONS` (the paper has no ``mi_wd_layer``).

    Examples
    --------
    >>> paper = load_paper_table()
    >>> paper.shape
    (17, 3)
    >>> float(paper.query("representation == 'mi_wd' and dim == 256").ratio.item())
    0.082
    """
    source = resources.files("wdcore") / "paper" / "table1_paper.csv"
    with source.open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle)


def _check_table(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Check that ``table`` is a long ratio table; return its three columns."""
    if not isinstance(table, pd.DataFrame):
        raise ValueError(
            f"{name} must be a DataFrame with columns {TABLE_COLUMNS}; got "
            f"{type(table).__name__!r}"
        )
    if not set(TABLE_COLUMNS) <= set(table.columns):
        raise ValueError(
            f"{name} has columns {list(table.columns)!r}; expected at least "
            f"{TABLE_COLUMNS}"
        )
    if table.duplicated(["representation", "dim"]).any():
        raise ValueError(f"{name} lists a (representation, dim) pair twice")
    return table[list(TABLE_COLUMNS)]


def merge_with_paper(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Put our ratios and the paper's side by side, one row per (representation, dim).

    Parameters
    ----------
    ours, paper : pandas.DataFrame
        Long tables with columns ``representation, dim, ratio``.

    Returns
    -------
    pandas.DataFrame
        Columns ``representation, dim, ratio, paper_ratio`` with the rows of
        ``ours`` in their order; ``paper_ratio`` is NaN where the paper has no
        number.

    Raises
    ------
    ValueError
        If a table lacks a column or lists a (representation, dim) pair twice.

    Examples
    --------
    >>> ours = pd.DataFrame({"representation": ["raw", "mi_wd_layer"],
    ...                      "dim": [16, 16], "ratio": [0.5, 0.0]})
    >>> merge_with_paper(ours, load_paper_table()).paper_ratio.tolist()
    [0.315, nan]
    """
    ours = _check_table(ours, "ours")
    paper = _check_table(paper, "paper").rename(columns={"ratio": "paper_ratio"})
    return ours.merge(paper, on=["representation", "dim"], how="left")


def _ratios(table: pd.DataFrame, representation: str) -> pd.Series:
    """Ratios of one representation indexed by dim, in increasing dim."""
    rows = table[table.representation == representation]
    return rows.set_index("dim").ratio.sort_index()


def _global_stats_lowest(table: pd.DataFrame) -> tuple[bool | None, str]:
    """Global statistics have the lowest ratio at the smallest size."""
    if "global_stats" not in set(table.representation):
        return None, "no global_stats"
    dim = int(_ratios(table, "global_stats").index.min())
    others = table[(table.dim == dim) & (table.representation != "global_stats")]
    others = others[others.representation.isin(REPRESENTATIONS[:5])]
    if others.empty:
        return None, f"nothing else at {dim}"
    best = others.loc[others.ratio.idxmin()]
    value = float(_ratios(table, "global_stats")[dim])
    text = f"{value:.3f} vs next {best.representation} {best.ratio:.3f} ({dim} dims)"
    return bool(value < best.ratio), text


def _raw_and_projection_highest(table: pd.DataFrame) -> tuple[bool | None, str]:
    """Raw and random projection have the highest mean ratio over sizes."""
    names = ("raw", "random_projection", "pca", "mi_wd")
    wide = table.pivot(index="dim", columns="representation", values="ratio")
    if not set(names) <= set(wide.columns):
        return None, "a representation is missing"
    shared = wide[list(names)].dropna()
    if shared.empty:
        return None, "no size shared by all four"
    means = shared.mean()
    sizes = ", ".join(str(int(dim)) for dim in shared.index)
    text = f"mean over sizes {sizes}: " + ", ".join(
        f"{name} {means[name]:.3f}" for name in names
    )
    return bool(means[list(names[:2])].min() > means[list(names[2:])].max()), text


def _pca_grows(table: pd.DataFrame) -> tuple[bool | None, str]:
    """PCA's ratio increases with the number of components."""
    ratios = _ratios(table, "pca").dropna()
    if ratios.size < 2:
        return None, "fewer than two PCA sizes"
    text = ", ".join(f"{dim}: {value:.3f}" for dim, value in ratios.items())
    return bool(np.all(np.diff(ratios.to_numpy()) > 0)), text


def _mi_wd_lowest_large(table: pd.DataFrame) -> tuple[bool | None, str]:
    """MI-WD beats raw, PCA and projection at its two largest sizes."""
    ratios = _ratios(table, "mi_wd").dropna()
    if ratios.empty:
        return None, "no mi_wd"
    holds, parts = True, []
    for dim, value in ratios.iloc[-2:].items():
        rows = table[
            (table.dim == dim) & table.representation.isin(REPRESENTATIONS[1:4])
        ]
        best = float(rows.ratio.min()) if not rows.empty else np.inf
        holds &= bool(value < best)
        parts.append(f"{dim}: {value:.3f} vs {best:.3f}")
    return holds, "; ".join(parts)


def _mi_wd_below_raw(table: pd.DataFrame) -> tuple[bool | None, str]:
    """MI-WD has a lower ratio than raw and random projection at every size."""
    wide = table.pivot(index="dim", columns="representation", values="ratio")
    names = ["mi_wd", "raw", "random_projection"]
    if not set(names) <= set(wide.columns) or wide[names].dropna().empty:
        return None, "a representation is missing"
    shared = wide[names].dropna()
    worst = (shared.mi_wd / shared[names[1:]].min(axis=1)).max()
    return bool(worst < 1), f"largest mi_wd / min(raw, projection) = {worst:.2f}"


FINDINGS: tuple[tuple[str, Callable], ...] = (
    ("Global statistics are the most invariant", _global_stats_lowest),
    ("Raw and random projection are the least invariant", _raw_and_projection_highest),
    ("PCA's ratio grows with the number of components", _pca_grows),
    ("MI-WD is the most invariant at the two largest sizes", _mi_wd_lowest_large),
    ("MI-WD is more invariant than raw and projection", _mi_wd_below_raw),
)


def _mean_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Accuracy and chance averaged over hyperparameters, per representation."""
    columns = {"representation", "dim", "accuracy", "chance"}
    if not isinstance(scores, pd.DataFrame) or not columns <= set(scores.columns):
        found = list(scores.columns) if isinstance(scores, pd.DataFrame) else scores
        raise ValueError(
            f"scores={found!r} is not valid; expected a DataFrame with columns "
            f"{sorted(columns)} (see informativeness_table)"
        )
    # A hyperparameter the probe skipped (NaN accuracy) must not pull the chance
    # level away from the hyperparameters that were scored.
    scored = scores.dropna(subset=["accuracy"])
    return scored.groupby(["representation", "dim"], as_index=False)[
        ["accuracy", "chance"]
    ].mean()


def _global_stats_less_informative(
    scores: pd.DataFrame, margin: float, *, same_size: bool = False
) -> tuple[str, str]:
    """MI-WD (best size, or global statistics' size) beats chance and global stats."""
    means = _mean_scores(scores).set_index("representation")
    if not {"global_stats", "mi_wd"} <= set(means.index):
        return "not checked", "global_stats or mi_wd was not scored"
    stats = means.loc[["global_stats"]].sort_values("accuracy").iloc[-1]
    mi_wd = means.loc[["mi_wd"]]
    if same_size:
        mi_wd = mi_wd[mi_wd.dim == stats.dim]
        if mi_wd.empty:
            return "not checked", f"mi_wd was not scored at {int(stats.dim)} dims"
    best = mi_wd.sort_values("accuracy").iloc[-1]
    chance = float(means.chance.mean())
    text = (
        f"mean accuracy {stats.accuracy:.2f} vs mi_wd {best.accuracy:.2f} "
        f"({int(best.dim)} dims); chance {chance:.2f}; margin {margin:.2f}"
    )
    if max(stats.accuracy, best.accuracy) < chance + margin:
        return "inconclusive", f"{text}; neither beats chance"
    if best.accuracy >= max(chance, stats.accuracy) + margin:
        return "yes", text
    if stats.accuracy >= best.accuracy:
        return "no", text
    return "inconclusive", f"{text}; mi_wd leads by less than the margin"


def _check_margin(margin: object) -> None:
    """Raise unless ``margin`` is a number in [0, 1)."""
    number = isinstance(margin, (int, float)) and not isinstance(margin, bool)
    if not number or not 0 <= margin < 1:
        raise ValueError(f"margin={margin!r} is not valid; expected a float in [0, 1)")


def _verdict(holds: bool | None) -> str:
    """Turn a check's True, False or None into one of :data:`VERDICTS`."""
    return "not checked" if holds is None else ("yes" if holds else "no")


def compare_with_paper(
    ours: pd.DataFrame,
    paper: pd.DataFrame,
    *,
    scores: pd.DataFrame | None = None,
    margin: float = 0.05,
) -> pd.DataFrame:
    """Check the paper's reading of Table 1 on the paper's numbers and on ours.

    Each finding in :data:`FINDINGS` is evaluated on both tables: the
    ``paper`` and ``ours`` columns quote the numbers the finding rests on, and
    ``holds`` says whether it is true of ``ours``. Only the paper's five
    representations enter (``mi_wd``, not the layer-exact ``mi_wd_layer``).
    Sizes missing from a table are skipped, so a finding about "the two
    largest sizes" uses the two largest sizes that table has.

    With ``scores``, two last rows check the paper's remark that global
    statistics carry too little information, which it states without numbers:
    once against MI-WD at its best size, and once against MI-WD at the size of
    global statistics (16 dims), where both keep equally many numbers.
    Accuracies and chance levels are averaged over the scored hyperparameters.
    The remark holds ("yes") when MI-WD beats both chance and global
    statistics by at least ``margin``; it fails ("no") when global statistics
    score at least as high as MI-WD; it is "inconclusive" when neither beats
    chance by ``margin`` (the probe learned nothing, so it cannot rank them)
    or when MI-WD leads global statistics by less than ``margin``.

    Parameters
    ----------
    ours, paper : pandas.DataFrame
        Long tables with columns ``representation, dim, ratio``.
    scores : pandas.DataFrame, optional
        Our informativeness, from :func:`informativeness_table`.
    margin : float, default=0.05
        Accuracy (fraction correct) by which a representation must beat chance
        or another representation to count as more informative.

    Returns
    -------
    pandas.DataFrame
        Columns ``finding, paper, ours, holds``, one row per finding (two more
        with ``scores``); ``holds`` is one of :data:`VERDICTS`: "yes", "no",
        "inconclusive" or "not checked" (a representation or size is missing
        from ``ours``).

    Raises
    ------
    ValueError
        If a table lacks a column or lists a (representation, dim) pair twice,
        ``scores`` lacks a column, or ``margin`` is not a number in [0, 1).

    Examples
    --------
    >>> paper = load_paper_table()
    >>> compare_with_paper(paper, paper).holds.tolist()
    ['yes', 'yes', 'yes', 'yes', 'yes']
    """
    ours, paper = _check_table(ours, "ours"), _check_table(paper, "paper")
    _check_margin(margin)
    rows = []
    for finding, check in FINDINGS:
        _, paper_text = check(paper)
        holds, ours_text = check(ours)
        rows.append((finding, paper_text, ours_text, _verdict(holds)))
    if scores is not None:
        for same_size, size in ((False, "at its best size"), (True, "of equal size")):
            verdict, ours_text = _global_stats_less_informative(
                scores, margin, same_size=same_size
            )
            finding = f"Global statistics carry less information than MI-WD {size}"
            rows.append((finding, "stated without numbers", ours_text, verdict))
    return pd.DataFrame(rows, columns=["finding", "paper", "ours", "holds"])


def findings_by_group(within: pd.DataFrame) -> pd.DataFrame:
    """Check each of the paper's findings inside every group of models.

    Parameters
    ----------
    within : pandas.DataFrame
        What :func:`ratio_by_group` returns: indexed by ``representation,
        dim``, one column of ratios per group (a column of the whole zoo's
        ratios may be added).

    Returns
    -------
    pandas.DataFrame
        Indexed by finding (in the order of :data:`FINDINGS`), one column per
        group holding one of :data:`VERDICTS`.

    Raises
    ------
    ValueError
        If ``within`` is not indexed by ``representation, dim``.

    Examples
    --------
    >>> paper = load_paper_table().set_index(["representation", "dim"]).ratio
    >>> within = pd.DataFrame({"a": paper, "b": paper.iloc[::-1].to_numpy()})
    >>> findings_by_group(within).iloc[:2].to_dict("list")
    {'a': ['yes', 'yes'], 'b': ['no', 'no']}
    """
    names = list(within.index.names) if isinstance(within, pd.DataFrame) else None
    if names != ["representation", "dim"]:
        raise ValueError(
            f"within={type(within).__name__} indexed by {names!r} is not valid; "
            "expected a table from ratio_by_group, indexed by "
            "['representation', 'dim']"
        )
    columns = {}
    for group in within.columns:
        table = within[group].rename("ratio").reset_index()
        columns[group] = [_verdict(check(table)[0]) for _, check in FINDINGS]
    return pd.DataFrame(
        columns, index=pd.Index([f for f, _ in FINDINGS], name="finding")
    )


def compare_choices(
    tables: Mapping[str, pd.DataFrame], paper: pd.DataFrame
) -> pd.DataFrame:
    """Check whether the paper's findings get the same verdict under other choices.

    Each table is one way of computing our ratios (say Euclidean or cosine
    distance, a shared or a per-model bin range). Every finding of
    :data:`FINDINGS` is checked on each with :func:`compare_with_paper`; a
    reading that does not hinge on the choice gets the same verdict from all.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Name of each choice to its long ratio table (columns
        ``representation, dim, ratio``); at least two.
    paper : pandas.DataFrame
        The paper's table, e.g. :func:`load_paper_table`.

    Returns
    -------
    pandas.DataFrame
        Indexed by finding, one column of verdicts per table and ``same``
        (True where every table gets the same verdict).

    Raises
    ------
    ValueError
        If fewer than two tables are given, or as :func:`compare_with_paper`.

    Examples
    --------
    >>> paper = load_paper_table()
    >>> doubled = paper.assign(ratio=2 * paper.ratio)  # same order, other levels
    >>> bool(compare_choices({"paper": paper, "doubled": doubled}, paper).same.all())
    True
    """
    if len(tables) < 2:
        raise ValueError(
            f"tables has {len(tables)} entries; expected at least two choices to "
            "compare"
        )
    verdicts = pd.DataFrame(
        {
            name: compare_with_paper(table, paper).set_index("finding").holds
            for name, table in tables.items()
        }
    )
    return verdicts.assign(same=verdicts.nunique(axis=1) == 1)


# --------------------------------------------------------------------------
# What the informativeness table says beyond the paper
# --------------------------------------------------------------------------

_BASELINES = ("raw", "pca", "random_projection")


# Accuracies are fractions of a count, so "at least the margin" must not hinge on
# the last bit of a float sum such as 0.05 + 1 / 3.
_TOLERANCE = 1e-9

# A reading over hyperparameters needs at least this share of the scored ones
# (and at least two) predicted above chance, or "most" rests on one or two.
MIN_RANKED_SHARE = 0.5


def _lead(first: float, second: float, margin: float, chance: float = -np.inf):
    """ "yes" if ``first`` leads by ``margin``, "no" if it trails by it.

    Neither leads ("inconclusive") if neither beats ``chance`` by ``margin``.
    """
    if max(first, second) < chance + margin - _TOLERANCE:
        return "inconclusive"
    if first >= second + margin - _TOLERANCE:
        return "yes"
    return "no" if second >= first + margin - _TOLERANCE else "inconclusive"


def _stats_beat_baselines(means, scores, margin, n_models):
    """Global statistics beat every size of raw, PCA and random projection."""
    rows = means[means.representation.isin(_BASELINES)]
    if "global_stats" not in set(means.representation) or rows.empty:
        return "not checked", "global_stats or the baselines were not scored"
    stats = means[means.representation == "global_stats"].iloc[0]
    best = rows.loc[rows.accuracy.idxmax()]
    text = (
        f"{stats.accuracy:.2f} vs best baseline {best.representation} "
        f"{int(best.dim)} {best.accuracy:.2f}; chance {stats.chance:.2f}"
    )
    return _lead(stats.accuracy, best.accuracy, margin, stats.chance), text


def _group_hyperparameters(pairs: pd.DataFrame, chance: pd.Series, margin: float):
    """Sort hyperparameters into ahead, behind, within the margin and at chance."""
    groups = {"ahead": [], "behind": [], "within the margin": [], "at chance": []}
    for name, (stats, mi_wd) in pairs.iterrows():
        lead = _lead(stats, mi_wd, margin, chance[name])
        text = f"{name} {stats:.2f} vs {mi_wd:.2f}"
        if max(stats, mi_wd) < chance[name] + margin - _TOLERANCE:
            groups["at chance"].append(f"{text} (chance {chance[name]:.2f})")
            continue
        key = {"yes": "ahead", "no": "behind"}.get(lead, "within the margin")
        groups[key].append(text)
    return groups


def _stats_lead_per_hyperparameter(means, scores, margin, n_models):
    """Global statistics lead equal-size MI-WD on most hyperparameters above chance."""
    if not {"global_stats", "mi_wd"} <= set(means.representation):
        return "not checked", "global_stats or mi_wd was not scored"
    dim = int(means[means.representation == "global_stats"].dim.min())
    scored = scores.dropna(subset=["accuracy"])
    wide = scored.pivot_table(
        index="hyperparameter", columns=["representation", "dim"], values="accuracy"
    )
    if ("mi_wd", dim) not in wide.columns:
        return "not checked", f"mi_wd was not scored at {dim} dims"
    pairs = wide[[("global_stats", dim), ("mi_wd", dim)]].dropna()
    chance = scored.groupby("hyperparameter").chance.first()
    groups = _group_hyperparameters(pairs, chance, margin)
    n_ahead, n_behind = len(groups["ahead"]), len(groups["behind"])
    n_ranked = len(pairs) - len(groups["at chance"])
    text = "; ".join(f"{key}: {', '.join(g) or 'none'}" for key, g in groups.items())
    text = (
        f"{dim} dims, ahead on {n_ahead} of the {n_ranked} hyperparameters either "
        f"predicts above chance by the margin ({len(pairs)} scored); {text}"
    )
    if n_ranked < max(2, MIN_RANKED_SHARE * len(pairs)):
        return "inconclusive", f"{text}; too few above chance to speak of most"
    if 2 * n_ahead > n_ranked:
        return "yes", text
    return ("no" if 2 * n_behind >= n_ranked else "inconclusive"), text


def _mi_wd_grows(means, scores, margin, n_models):
    """MI-WD's mean accuracy rises from its smallest to its largest size."""
    rows = means[means.representation == "mi_wd"].sort_values("dim")
    if len(rows) < 2:
        return "not checked", "fewer than two MI-WD sizes"
    text = ", ".join(f"{int(r.dim)}: {r.accuracy:.2f}" for r in rows.itertuples())
    text += f"; chance {rows.chance.iloc[0]:.2f}"
    stats = means[means.representation == "global_stats"].accuracy
    if not stats.empty:
        floor = np.maximum(float(stats.max()), rows.chance) + margin
        ahead = rows[rows.accuracy >= floor]
        first = f"{int(ahead.dim.iloc[0])} dims" if len(ahead) else "none"
        text += f"; first size ahead of global_stats and chance by the margin: {first}"
    last, first_row = rows.iloc[-1], rows.iloc[0]
    return _lead(last.accuracy, first_row.accuracy, margin, last.chance), text


def _nested_loses(means, scores, margin, n_models):
    """PCA, whose larger sizes contain the smaller ones, loses accuracy as it grows."""
    rows = means[means.representation == "pca"].sort_values("dim")
    if len(rows) < 2:
        return "not checked", "fewer than two PCA sizes"
    largest, smaller = rows.iloc[-1], rows.iloc[:-1]
    best = smaller.loc[smaller.accuracy.idxmax()]
    text = (
        f"pca {int(largest.dim)} dims {largest.accuracy:.2f} vs {int(best.dim)} dims "
        f"{best.accuracy:.2f}; chance {largest.chance:.2f}; {n_models} networks"
    )
    return _lead(best.accuracy, largest.accuracy, margin, largest.chance), text


def _all_beat_chance(means, scores, margin, n_models):
    """Every representation's mean accuracy beats chance by the margin."""
    near = means[means.accuracy < means.chance + margin]
    if near.empty:
        return "yes", "all do"
    text = ", ".join(
        f"{row.representation} {int(row.dim)} ({row.accuracy:.2f} vs {row.chance:.2f})"
        for row in near.itertuples()
    )
    n_wide = int((near.dim > n_models).sum())
    return "no", (
        f"near chance: {text}; {n_wide} of these {len(near)} have more features "
        f"than the {n_models} networks"
    )


READINGS: tuple[tuple[str, Callable], ...] = (
    ("Global statistics beat every raw, PCA and projection size",
     _stats_beat_baselines),
    ("Global statistics beat MI-WD of equal size on most hyperparameters that "
     "either predicts above chance", _stats_lead_per_hyperparameter),
    ("MI-WD gains information as it grows", _mi_wd_grows),
    ("PCA loses accuracy at its largest size although it keeps the smaller sizes",
     _nested_loses),
    ("Every representation beats chance", _all_beat_chance),
)  # fmt: skip


def read_informativeness(
    scores: pd.DataFrame, *, n_models: int, margin: float = 0.05
) -> pd.DataFrame:
    """Read the informativeness table: who beats whom, and where the probe fails.

    Each reading in :data:`READINGS` is checked on ``scores``. Mean accuracies
    are averaged over the scored hyperparameters. One representation beats
    another ("yes") when it scores at least ``margin`` higher, loses ("no")
    when it scores at least ``margin`` lower, and the reading is
    "inconclusive" in between, or when neither beats chance by ``margin`` (the
    probe learned nothing, so it cannot rank them).

    The per-hyperparameter reading looks only at the hyperparameters that
    either global statistics or MI-WD of the same size predicts above chance
    by ``margin``. It holds when global statistics lead by ``margin`` on more
    than half of them, fails when they trail by ``margin`` on at least half,
    and is "inconclusive" in between, or when fewer than
    :data:`MIN_RANKED_SHARE` of the scored hyperparameters (or fewer than two)
    are predicted above chance. Comparisons at exactly the margin count as
    reaching it.

    PCA's larger sizes keep the leading components of the smaller ones, so
    they hold at least the same information: if its accuracy falls as it
    grows, the probe failed (typically when features outnumber networks and
    standardized noise components are fitted), not the representation.

    Parameters
    ----------
    scores : pandas.DataFrame
        From :func:`informativeness_table`.
    n_models : int
        Number of networks the probe was trained on, quoted beside sizes that
        exceed it.
    margin : float, default=0.05
        Accuracy (fraction correct) one side must lead by.

    Returns
    -------
    pandas.DataFrame
        Columns ``reading, numbers, holds``; ``holds`` is one of
        :data:`VERDICTS`.

    Raises
    ------
    ValueError
        If ``scores`` lacks a column, ``n_models`` is not a positive int or
        ``margin`` is not a number in [0, 1).

    Examples
    --------
    >>> scores = pd.DataFrame({
    ...     "representation": ["global_stats", "mi_wd", "mi_wd", "pca", "pca"],
    ...     "dim": [16, 16, 64, 16, 64], "hyperparameter": "optimizer",
    ...     "accuracy": [0.7, 0.5, 0.9, 0.6, 0.4], "chance": 0.4})
    >>> read_informativeness(scores, n_models=50).holds.tolist()
    ['yes', 'inconclusive', 'yes', 'yes', 'no']

    The second reading is inconclusive: one hyperparameter is too few to
    speak of "most".
    """
    means = _mean_scores(scores)
    if isinstance(n_models, bool) or not isinstance(n_models, int) or n_models < 1:
        raise ValueError(f"n_models={n_models!r} is not valid; expected an int >= 1")
    _check_margin(margin)
    rows = []
    for reading, check in READINGS:
        verdict, text = check(means, scores, margin, n_models)
        rows.append((reading, text, verdict))
    return pd.DataFrame(rows, columns=["reading", "numbers", "holds"])


# --------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------


def plot_tradeoff(
    ratios: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    ax: Axes | None = None,
) -> Axes:
    """Scatter invariance against informativeness, one line per representation.

    Each point is labelled with its dimensionality where the label covers no
    other point or label (:func:`wdcore.plotting.label_points`); the legend
    sits below the axes.

    Parameters
    ----------
    ratios : pandas.DataFrame
        Columns ``representation, dim, ratio`` (from :func:`ratio_table`).
    scores : pandas.DataFrame
        Columns ``representation, dim, accuracy, chance`` (from
        :func:`informativeness_table`); accuracies and chances are averaged
        over the hyperparameters that were scored (accuracy not NaN).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure's axes if None.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If ``scores`` lacks a column or no (representation, dim) pair is in both
        tables.

    Examples
    --------
    >>> ratios = pd.DataFrame({"representation": ["raw"], "dim": [16],
    ...                        "ratio": [0.5]})
    >>> scores = pd.DataFrame({"representation": ["raw"], "dim": [16],
    ...                        "accuracy": [0.6], "chance": [0.4]})
    >>> plot_tradeoff(ratios, scores).get_xlabel()
    'mean probe accuracy over hyperparameters (fraction correct)'
    """
    import matplotlib.pyplot as plt

    from wdcore.plotting import label_points

    means = _mean_scores(scores)
    merged = _check_table(ratios, "ratios").merge(means, on=["representation", "dim"])
    if merged.empty:
        raise ValueError(
            "ratios and scores share no (representation, dim) pair; expected both "
            "tables to describe the same representations"
        )
    if ax is None:
        _, ax = plt.subplots()
    # Distinct markers keep lines of similar colour apart. A single point (global
    # statistics) is a large hollow star, so a point under it stays visible.
    markers = "os^DvP<>"
    groups = merged.groupby("representation", sort=False)
    for index, (name, rows) in enumerate(groups):
        rows = rows.sort_values("dim")
        single = len(rows) == 1
        ax.plot(
            rows.accuracy, rows.ratio, "-", label=name, zorder=3 if single else 2,
            marker="*" if single else markers[index % len(markers)],
            markersize=13 if single else 5, markeredgewidth=1.4 if single else 1,
            markerfacecolor="none" if single else None,
        )  # fmt: skip
    ax.axvline(means.chance.mean(), color="grey", linestyle="--", label="chance")
    ax.set_xlabel("mean probe accuracy over hyperparameters (fraction correct)")
    ax.set_ylabel("intra/inter distance ratio (lower = more invariant)")
    # Below the axes, the legend cannot cover a point or a label.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=4, frameon=False)
    points = merged[["accuracy", "ratio"]].to_numpy()  # (n_points, 2)
    label_points(ax, points, merged.dim.astype(str).tolist(), fontsize=8)
    return ax
