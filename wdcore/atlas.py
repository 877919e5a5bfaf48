"""Model atlas: embed a library of MI-WD descriptors in 2-D, cluster and explain it.

Chapter 7 of the book (``notebooks/07_model_atlas.ipynb``) uses these functions to
reproduce the application of Eilertsen et al. (EuroVis 2024): descriptors of a
whole model library are projected to a 2-D map with t-SNE, clustered, and every
cluster is read through the hyperparameters of its members.

Every function takes descriptors as an array of shape ``(n_models, S, B)``, one
row-normalized ``S x B`` histogram per model (see :func:`wdcore.descriptors.mi_wd`).
They are turned into feature vectors by :func:`descriptor_features`: flattened,
square-rooted by default and optionally reduced with PCA. The square root makes the
Euclidean distance between two descriptors the (scaled) Hellinger distance between
their window distributions, so sparse tails count and no ``log(0)`` arises.

Notes
-----
t-SNE has no ``transform`` for new points, so :func:`place_new` positions unseen
models at the medoid of their nearest neighbours in descriptor space (by default:
the neighbour whose map distances to the other neighbours sum to the least; their
mean or the nearest one are options). The 2-D map is only used for display;
clustering runs on the descriptor features.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.cluster import HDBSCAN, AgglomerativeClustering
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import (
    adjusted_mutual_info_score,
    completeness_score,
    homogeneity_score,
    normalized_mutual_info_score,
)
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from wdcore._random import RandomState, check_random_state

__all__ = [
    "CLUSTER_METHODS",
    "LEGENDS",
    "NOISE",
    "POSITIONS",
    "SELECTIONS",
    "SHORT_LABEL",
    "TRANSFORMS",
    "atlas_table",
    "cluster",
    "cluster_composition",
    "cluster_means",
    "cluster_summary",
    "describe_clusters",
    "descriptor_features",
    "embed",
    "explain_clusters",
    "judge_scores",
    "neighbor_agreement",
    "neighbor_table",
    "place_new",
    "plot_atlas",
    "plot_atlas_grid",
    "quantile_labels",
    "top_values",
]

TRANSFORMS = ("sqrt", "log", "none")
CLUSTER_METHODS = ("hdbscan", "ward")
SELECTIONS = ("eom", "leaf")
POSITIONS = ("medoid", "mean", "nearest")
LEGENDS = ("inside", "below", None)
SHORT_LABEL = 14  # characters; longer legend labels go one per line
NOISE = -1
LOG_EPSILON = 1e-4


def _check_descriptors(descriptors: np.ndarray, name: str = "descriptors") -> None:
    """Raise unless ``descriptors`` is a finite array of shape (n_models, S, B)."""
    if not isinstance(descriptors, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array of shape (n_models, S, B); got "
            f"{type(descriptors).__name__}"
        )
    if descriptors.ndim != 3 or descriptors.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (n_models, S, B) with n_models >= 1; got "
            f"shape {descriptors.shape!r}"
        )
    if not np.all(np.isfinite(descriptors)) or descriptors.min() < 0:
        raise ValueError(f"{name} must hold finite, non-negative histogram values")


def _check_positive_int(value: object, name: str) -> None:
    """Raise unless ``value`` is an int >= 1."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r} is not valid; expected an int >= 1")


def descriptor_features(
    descriptors: np.ndarray,
    *,
    transform: str = "sqrt",
    n_components: int | None = 50,
) -> np.ndarray:
    """Turn MI-WD descriptors into feature vectors for embedding and clustering.

    Parameters
    ----------
    descriptors : ndarray of shape (n_models, S, B)
        One row-normalized descriptor per model.
    transform : {"sqrt", "log", "none"}, default="sqrt"
        Applied elementwise before flattening. ``"sqrt"`` makes Euclidean
        distances Hellinger distances between window distributions; ``"log"``
        uses ``log(p + 1e-4)`` and stresses empty versus rare bins.
    n_components : int or None, default=50
        Number of principal components kept (capped at ``min(n_models, S * B)``);
        ``None`` keeps the flattened features. PCA uses an exact SVD, so the
        result is deterministic.

    Returns
    -------
    ndarray of shape (n_models, n_features)
        ``n_features`` is ``S * B`` without PCA, else the number of components.

    Raises
    ------
    ValueError
        If ``descriptors`` is not a non-negative (n_models, S, B) array, or
        ``transform`` or ``n_components`` is not valid.
    TypeError
        If ``descriptors`` is not a numpy array.

    Examples
    --------
    >>> descriptors = np.full((3, 2, 4), 0.25)
    >>> descriptor_features(descriptors, n_components=None).shape
    (3, 8)
    >>> float(descriptor_features(descriptors, n_components=None)[0, 0])
    0.5
    """
    _check_descriptors(descriptors)
    if transform not in TRANSFORMS:
        raise ValueError(
            f"transform={transform!r} is not valid; expected one of {TRANSFORMS}"
        )
    if n_components is not None:
        _check_positive_int(n_components, "n_components")

    flat = descriptors.reshape(len(descriptors), -1).astype(np.float64)  # (n, S*B)
    if transform == "sqrt":
        flat = np.sqrt(flat)  # (n, S*B)
    elif transform == "log":
        flat = np.log(flat + LOG_EPSILON)  # (n, S*B)
    if n_components is None:
        return flat

    n_kept = min(n_components, *flat.shape)
    return PCA(n_components=n_kept, svd_solver="full").fit_transform(flat)  # (n, k)


def embed(
    descriptors: np.ndarray,
    *,
    random_state: RandomState,
    perplexity: float = 30.0,
    transform: str = "sqrt",
    n_components: int | None = 50,
    max_iter: int = 1000,
) -> np.ndarray:
    """Project descriptors to a 2-D atlas with t-SNE.

    Parameters
    ----------
    descriptors : ndarray of shape (n_models, S, B)
        One descriptor per model.
    random_state : None, int or numpy.random.Generator
        Passed on to t-SNE. With the PCA initialization used here scikit-learn's
        t-SNE draws no random numbers, so the coordinates are the same for every
        value; it is kept for an initialization that does.
    perplexity : float, default=30.0
        Effective number of neighbours t-SNE balances; must be below ``n_models``.
    transform : {"sqrt", "log", "none"}, default="sqrt"
        Passed to :func:`descriptor_features`.
    n_components : int or None, default=50
        PCA components kept before t-SNE, passed to :func:`descriptor_features`.
    max_iter : int, default=1000
        Number of t-SNE optimization steps.

    Returns
    -------
    ndarray of shape (n_models, 2)
        Map coordinates (arbitrary units; only neighbourhoods are meaningful).

    Raises
    ------
    ValueError
        If ``perplexity`` is not in ``(0, n_models)``, ``max_iter`` is below 250,
        or the descriptors are invalid (see :func:`descriptor_features`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> descriptors = rng.dirichlet(np.ones(4), size=(20, 3))
    >>> coordinates = embed(descriptors, random_state=0, perplexity=5.0)
    >>> coordinates.shape
    (20, 2)
    >>> bool(np.array_equal(coordinates, embed(descriptors, random_state=0,
    ...                                         perplexity=5.0)))
    True
    """
    features = descriptor_features(
        descriptors, transform=transform, n_components=n_components
    )  # (n, k)
    n_models = len(features)
    if not isinstance(perplexity, numbers.Real) or not 0 < perplexity < n_models:
        raise ValueError(
            f"perplexity={perplexity!r} is not valid; expected a number in "
            f"(0, n_models={n_models})"
        )
    if not isinstance(max_iter, numbers.Integral) or max_iter < 250:
        raise ValueError(f"max_iter={max_iter!r} is not valid; expected an int >= 250")

    seed = int(check_random_state(random_state).integers(2**31 - 1))
    tsne = TSNE(
        n_components=2,
        perplexity=float(perplexity),
        init="pca",
        max_iter=int(max_iter),
        random_state=seed,
    )
    # One thread: on a busy machine t-SNE's OpenMP workers spin and a 300-model
    # atlas takes over a minute instead of seconds; the result is the same.
    with threadpool_limits(limits=1):
        return tsne.fit_transform(features)  # (n, 2)


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0, 1, ... by decreasing size (ties: first member)."""
    clusters = [label for label in np.unique(labels) if label != NOISE]
    order = sorted(
        clusters, key=lambda c: (-np.sum(labels == c), np.argmax(labels == c))
    )
    relabelled = np.full_like(labels, NOISE)  # (n,)
    for new_label, old_label in enumerate(order):
        relabelled[labels == old_label] = new_label
    return relabelled


def cluster(
    descriptors: np.ndarray,
    *,
    method: str = "hdbscan",
    min_cluster_size: int = 5,
    selection: str = "eom",
    n_clusters: int | None = None,
    transform: str = "sqrt",
    n_components: int | None = 50,
) -> np.ndarray:
    """Cluster descriptors in feature space (not on the 2-D map).

    Parameters
    ----------
    descriptors : ndarray of shape (n_models, S, B)
        One descriptor per model.
    method : {"hdbscan", "ward"}, default="hdbscan"
        ``"hdbscan"``: density-based, finds the number of clusters itself and
        labels models in no dense region as noise (-1). ``"ward"``:
        agglomerative clustering with Ward linkage into ``n_clusters`` clusters.
    min_cluster_size : int, default=5
        Smallest group HDBSCAN reports as a cluster (ignored by ``"ward"``).
    selection : {"eom", "leaf"}, default="eom"
        HDBSCAN's cluster selection: ``"eom"`` keeps the most persistent, often
        large clusters; ``"leaf"`` the finest ones, with more noise.
    n_clusters : int or None, default=None
        Number of clusters; required by ``"ward"``, must be None for HDBSCAN.
    transform, n_components
        Passed to :func:`descriptor_features`.

    Returns
    -------
    ndarray of shape (n_models,)
        Cluster label per model, numbered 0, 1, ... by decreasing size; -1 marks
        noise. Both methods are deterministic.

    Raises
    ------
    ValueError
        If ``method`` or ``selection`` is unknown, ``n_clusters`` does not fit
        the method or the number of models, or ``min_cluster_size`` is not an
        int >= 2.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> low = rng.dirichlet([20, 1, 1, 1], size=(10, 2))
    >>> high = rng.dirichlet([1, 1, 1, 20], size=(10, 2))
    >>> labels = cluster(np.concatenate([low, high]), method="ward", n_clusters=2)
    >>> labels.tolist()
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    """
    if method not in CLUSTER_METHODS:
        raise ValueError(
            f"method={method!r} is not valid; expected one of {CLUSTER_METHODS}"
        )
    features = descriptor_features(
        descriptors, transform=transform, n_components=n_components
    )  # (n, k)

    if method == "hdbscan":
        if n_clusters is not None:
            raise ValueError(
                f"n_clusters={n_clusters!r} is not valid for method='hdbscan'; "
                "expected None (HDBSCAN chooses the number of clusters)"
            )
        _check_positive_int(min_cluster_size, "min_cluster_size")
        if min_cluster_size < 2:
            raise ValueError(
                f"min_cluster_size={min_cluster_size!r} is not valid; expected an "
                "int >= 2"
            )
        if selection not in SELECTIONS:
            raise ValueError(
                f"selection={selection!r} is not valid; expected one of {SELECTIONS}"
            )
        model = HDBSCAN(
            min_cluster_size=min(min_cluster_size, len(features)),
            cluster_selection_method=selection,
            copy=True,
        )
    else:
        _check_positive_int(n_clusters, "n_clusters")
        if n_clusters > len(features):
            raise ValueError(
                f"n_clusters={n_clusters!r} is not valid; expected at most "
                f"n_models={len(features)}"
            )
        model = AgglomerativeClustering(n_clusters=n_clusters, linkage="ward")
    return _relabel_by_size(model.fit_predict(features))  # (n,)


def _as_categories(values: pd.Series, n_bins: int) -> np.ndarray:
    """Return hashable category codes; floats are cut into quantile bins."""
    if pd.api.types.is_float_dtype(values) and values.nunique() > n_bins:
        return pd.qcut(values, n_bins, labels=False, duplicates="drop").to_numpy()
    return values.map(str).to_numpy()


def _check_labels_index(labels: np.ndarray, index: pd.DataFrame) -> np.ndarray:
    """Return labels as an int array after checking they match the index."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be a 1-D integer array; got shape {labels.shape!r} and "
            f"dtype {labels.dtype}"
        )
    if not isinstance(index, pd.DataFrame) or len(index) != len(labels):
        raise ValueError(
            f"index must be a DataFrame with one row per label ({len(labels)}); got "
            f"{type(index).__name__} of length {len(index)!r}"
        )
    return labels


def explain_clusters(
    labels: np.ndarray,
    index: pd.DataFrame,
    columns: Sequence[str],
    *,
    include_noise: bool = False,
    n_bins: int = 4,
) -> pd.DataFrame:
    """Score how strongly each hyperparameter explains a clustering.

    Parameters
    ----------
    labels : ndarray of shape (n_models,)
        Cluster labels from :func:`cluster` (-1 = noise).
    index : pandas.DataFrame
        One row per model in the same order, e.g. ``Zoo.index``.
    columns : sequence of str
        Hyperparameter columns of ``index`` to score. Float columns with more than
        ``n_bins`` distinct values are cut into ``n_bins`` quantile bins; all other
        values are compared by their string form.
    include_noise : bool, default=False
        Whether noise models (label -1) enter the scores as one extra group.
    n_bins : int, default=4
        Number of quantile bins for continuous columns.

    Returns
    -------
    pandas.DataFrame
        Indexed by column name, with ``ami`` (adjusted mutual information: 0 at
        chance, 1 for identical partitions), ``nmi`` (normalized mutual
        information), ``homogeneity`` (1 if each cluster holds one value),
        ``completeness`` (1 if each value lies in one cluster), ``n_values`` and
        ``n_models`` (models scored).

    Raises
    ------
    ValueError
        If ``labels`` and ``index`` do not match, a column is missing, or no
        model is left to score.

    Examples
    --------
    >>> index = pd.DataFrame({"dataset": ["a", "a", "b", "b"],
    ...                       "seed": [0, 1, 0, 1]})
    >>> table = explain_clusters(np.array([0, 0, 1, 1]), index, ["dataset", "seed"])
    >>> table["ami"].round(2).tolist()
    [1.0, -0.5]
    """
    labels = _check_labels_index(labels, index)
    missing = [column for column in columns if column not in index.columns]
    if missing or len(columns) == 0:
        raise ValueError(
            f"columns={list(columns)!r} is not valid; expected a non-empty list of "
            f"columns of index ({list(index.columns)!r})"
        )
    _check_positive_int(n_bins, "n_bins")
    keep = np.ones(len(labels), dtype=bool) if include_noise else labels != NOISE
    if not keep.any():
        raise ValueError("labels has no clustered model to score (all are noise)")

    rows = {}
    for column in columns:
        values = _as_categories(index[column].reset_index(drop=True), n_bins)[keep]
        clusters = labels[keep]
        rows[column] = {
            "ami": adjusted_mutual_info_score(values, clusters),
            "nmi": normalized_mutual_info_score(values, clusters),
            "homogeneity": homogeneity_score(values, clusters),
            "completeness": completeness_score(values, clusters),
            "n_values": len(pd.unique(values)),
            "n_models": int(keep.sum()),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def cluster_composition(
    labels: np.ndarray,
    index: pd.DataFrame,
    column: str,
    *,
    normalize: bool = True,
) -> pd.DataFrame:
    """Tabulate the values of one hyperparameter inside each cluster.

    Parameters
    ----------
    labels : ndarray of shape (n_models,)
        Cluster labels (-1 = noise, kept as its own row).
    index : pandas.DataFrame
        One row per model in the same order.
    column : str
        Column of ``index`` to tabulate (values compared by their string form).
    normalize : bool, default=True
        If True, each row holds fractions summing to 1; else counts.

    Returns
    -------
    pandas.DataFrame
        Rows are clusters (named ``cluster``), columns the values of ``column``.

    Raises
    ------
    ValueError
        If ``labels`` and ``index`` do not match or ``column`` is missing.

    Examples
    --------
    >>> index = pd.DataFrame({"optimizer": ["adam", "sgd", "sgd", "sgd"]})
    >>> cluster_composition(np.array([0, 0, 1, 1]), index, "optimizer")
    ... # doctest: +NORMALIZE_WHITESPACE
    optimizer  adam  sgd
    cluster
    0           0.5  0.5
    1           0.0  1.0
    """
    labels = _check_labels_index(labels, index)
    if column not in index.columns:
        raise ValueError(
            f"column={column!r} is not valid; expected a column of index "
            f"({list(index.columns)!r})"
        )
    values = index[column].reset_index(drop=True).map(str).rename(column)
    clusters = pd.Series(labels, name="cluster")
    return pd.crosstab(clusters, values, normalize="index" if normalize else False)


def cluster_summary(
    labels: np.ndarray, index: pd.DataFrame, columns: Sequence[str]
) -> pd.DataFrame:
    """Name the most common value of each hyperparameter in every cluster.

    Parameters
    ----------
    labels : ndarray of shape (n_models,)
        Cluster labels (-1 = noise, kept as its own row).
    index : pandas.DataFrame
        One row per model in the same order.
    columns : sequence of str
        Columns of ``index`` to summarize; floats are binned as in
        :func:`explain_clusters` (bin numbers 0 = lowest quantile).

    Returns
    -------
    pandas.DataFrame
        One row per cluster: ``n_models`` and, per column, a string
        ``"value (share %)"`` with the most common value (ties: the smallest)
        and its share.

    Raises
    ------
    ValueError
        If ``labels`` and ``index`` do not match or a column is missing.

    Examples
    --------
    >>> index = pd.DataFrame({"activation": ["relu", "relu", "tanh", "tanh"]})
    >>> summary = cluster_summary(np.array([0, 0, 0, 1]), index, ["activation"])
    >>> summary["activation"].tolist()
    ['relu (67 %)', 'tanh (100 %)']
    """
    labels = _check_labels_index(labels, index)
    missing = [column for column in columns if column not in index.columns]
    if missing:
        raise ValueError(
            f"columns {missing!r} are missing from index ({list(index.columns)!r})"
        )
    clusters = np.unique(labels)  # (n_clusters,)
    summary = pd.DataFrame(
        {"n_models": [int(np.sum(labels == label)) for label in clusters]},
        index=pd.Index(clusters, name="cluster"),
    )
    for column in columns:
        values = pd.Series(_as_categories(index[column].reset_index(drop=True), 4))
        entries = []
        for label in clusters:
            shares = values[labels == label].value_counts(normalize=True)
            shares = shares.sort_index().sort_values(ascending=False, kind="stable")
            entries.append(f"{shares.index[0]} ({100 * shares.iloc[0]:.0f} %)")
        summary[column] = entries
    return summary


def quantile_labels(values: Sequence[float], *, n_bins: int = 4) -> np.ndarray:
    """Name the quantile bin of every value, with the bin's range.

    Parameters
    ----------
    values : sequence of float of length n_models
        A continuous setting, e.g. the learning rate.
    n_bins : int, default=4
        Number of quantile bins (quartiles by default); ties may merge bins.

    Returns
    -------
    ndarray of shape (n_models,) of str
        ``"Q1 0.0002-0.0013"`` and so on: ``Q1`` is the lowest bin, followed by
        the smallest and largest value that fall into the bin (4 significant
        digits). Labels sort in bin order for up to 9 bins.

    Raises
    ------
    ValueError
        If ``values`` holds a non-finite value or ``n_bins`` is not an int >= 1.

    Examples
    --------
    >>> quantile_labels([0.001, 0.002, 0.003, 0.004], n_bins=2).tolist()
    ['Q1 0.001-0.002', 'Q1 0.001-0.002', 'Q2 0.003-0.004', 'Q2 0.003-0.004']
    """
    _check_positive_int(n_bins, "n_bins")
    numbers_ = pd.Series(np.asarray(values, dtype=np.float64))  # (n_models,)
    if not np.all(np.isfinite(numbers_)):
        raise ValueError("values must hold finite numbers only")
    bins = pd.qcut(numbers_, n_bins, labels=False, duplicates="drop")  # (n_models,)
    ranges = numbers_.groupby(bins).agg(["min", "max"])
    names = {
        code: f"Q{rank + 1} {low:.4g}-{high:.4g}"
        for rank, (code, (low, high)) in enumerate(ranges.iterrows())
    }
    return bins.map(names).to_numpy(dtype=object).astype(str)


def top_values(
    values: Sequence[object], *, n_top: int = 3, other: str = "other"
) -> np.ndarray:
    """Keep the ``n_top`` most common values and lump the rest together.

    Parameters
    ----------
    values : sequence of length n_models
        A categorical setting with many rare values, e.g. the architecture of
        every network (compared by string form).
    n_top : int, default=3
        Number of values kept (ties: the smaller string first).
    other : str, default="other"
        Label of every other value.

    Returns
    -------
    ndarray of shape (n_models,) of str

    Raises
    ------
    ValueError
        If ``n_top`` is not an int >= 1.

    Examples
    --------
    >>> top_values(["a", "b", "a", "c", "a", "b"], n_top=2).tolist()
    ['a', 'b', 'a', 'other', 'a', 'b']
    """
    _check_positive_int(n_top, "n_top")
    strings = pd.Series(list(values), dtype=object).map(str)  # (n_models,)
    counts = (
        strings.value_counts().sort_index().sort_values(ascending=False, kind="stable")
    )
    kept = set(counts.index[:n_top])
    return strings.where(strings.isin(kept), other).to_numpy().astype(str)


def describe_clusters(
    labels: np.ndarray,
    index: pd.DataFrame,
    columns: Sequence[str],
    *,
    min_share: float = 0.5,
    n_bins: int = 4,
) -> pd.Series:
    """Describe every cluster in one line by the values most of its members share.

    A value of a setting enters a cluster's line if at least ``min_share`` of
    the cluster's members have it; its share among all models (noise included)
    follows in brackets, so that a value common everywhere is not mistaken for
    a mark of the cluster.

    Parameters
    ----------
    labels : ndarray of shape (n_models,)
        Cluster labels (-1 = noise, described as ``"noise"``).
    index : pandas.DataFrame
        One row per model in the same order.
    columns : sequence of str
        Settings to look at. Float columns with more than ``n_bins`` distinct
        values are named by :func:`quantile_labels`; other values by their
        string form.
    min_share : float, default=0.5
        Smallest share of a cluster's members (a fraction in (0, 1]).
    n_bins : int, default=4
        Quantile bins for continuous columns.

    Returns
    -------
    pandas.Series of str
        Indexed by cluster, e.g. ``"cluster 0 (12 models): optimizer sgd 75 %
        (overall 40 %)"``; a cluster in which no value reaches ``min_share``
        says so.

    Raises
    ------
    ValueError
        If ``labels`` and ``index`` do not match, a column is missing or
        ``min_share`` is not in (0, 1].

    Examples
    --------
    >>> index = pd.DataFrame({"optimizer": ["sgd", "sgd", "adam", "adam", "sgd"]})
    >>> lines = describe_clusters(np.array([0, 0, 1, 1, 1]), index, ["optimizer"])
    >>> lines[0]
    'cluster 0 (2 models): optimizer sgd 100 % (overall 60 %)'
    >>> lines[1]
    'cluster 1 (3 models): optimizer adam 67 % (overall 40 %)'
    """
    labels = _check_labels_index(labels, index)
    missing = [column for column in columns if column not in index.columns]
    if missing:
        raise ValueError(
            f"columns {missing!r} are missing from index ({list(index.columns)!r})"
        )
    if not isinstance(min_share, numbers.Real) or not 0 < min_share <= 1:
        raise ValueError(
            f"min_share={min_share!r} is not valid; expected a number in (0, 1]"
        )
    parts = {label: [] for label in np.unique(labels)}
    for column in columns:
        values = index[column].reset_index(drop=True)
        if pd.api.types.is_float_dtype(values) and values.nunique() > n_bins:
            values = pd.Series(quantile_labels(values, n_bins=n_bins))
        named = pd.DataFrame({column: values.map(str)})
        overall = named[column].value_counts(normalize=True)
        shares = cluster_composition(labels, named, column)  # (n_clusters, n_values)
        for label, row in shares.iterrows():
            for value, share in row[row >= min_share - 1e-12].items():
                parts[label].append(
                    f"{column} {value} {100 * share:.0f} % "
                    f"(overall {100 * overall[value]:.0f} %)"
                )
    lines = {}
    for label, entries in parts.items():
        name = "noise" if label == NOISE else f"cluster {label}"
        head = f"{name} ({int(np.sum(labels == label))} models): "
        body = "; ".join(entries) or f"no value reaches {100 * min_share:.0f} %"
        lines[label] = head + body
    return pd.Series(lines, name="description").rename_axis("cluster")


def cluster_means(
    descriptors: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Average the descriptors of each cluster (noise excluded).

    Parameters
    ----------
    descriptors : ndarray of shape (n_models, S, B)
        One descriptor per model.
    labels : ndarray of shape (n_models,)
        Cluster labels (-1 = noise).

    Returns
    -------
    clusters : ndarray of shape (n_clusters,)
        Cluster labels in increasing order.
    means : ndarray of shape (n_clusters, S, B)
        Mean descriptor of each cluster; rows still sum to 1.

    Raises
    ------
    ValueError
        If the shapes do not match or every model is noise.

    Examples
    --------
    >>> descriptors = np.stack([np.full((2, 2), 0.5), np.eye(2), np.eye(2)])
    >>> clusters, means = cluster_means(descriptors, np.array([-1, 0, 0]))
    >>> clusters.tolist(), means.shape
    ([0], (1, 2, 2))
    """
    _check_descriptors(descriptors)
    labels = np.asarray(labels)
    if labels.shape != (len(descriptors),):
        raise ValueError(
            f"labels must have shape ({len(descriptors)},) to match descriptors; "
            f"got {labels.shape!r}"
        )
    clusters = np.unique(labels[labels != NOISE])  # (n_clusters,)
    if len(clusters) == 0:
        raise ValueError("labels has no cluster to average (all models are noise)")
    means = np.stack(
        [descriptors[labels == label].mean(axis=0) for label in clusters]
    )  # (n_clusters, S, B)
    return clusters, means


def _map_position(points: np.ndarray, position: str) -> np.ndarray:
    """Reduce neighbour map positions (closest first) to one point of shape (2,)."""
    if position == "mean":
        return points.mean(axis=0)  # (2,)
    if position == "nearest":
        return points[0]  # (2,)
    spread = np.linalg.norm(points[:, None] - points[None], axis=-1).sum(axis=1)
    return points[np.argmin(spread)]  # (2,)


def place_new(
    descriptors: np.ndarray,
    coordinates: np.ndarray,
    new_descriptors: np.ndarray,
    *,
    n_neighbors: int = 5,
    position: str = "medoid",
    transform: str = "sqrt",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place unseen models on an existing atlas by their nearest neighbours.

    t-SNE cannot map new points, so each new model is drawn where its
    ``n_neighbors`` nearest atlas models lie, nearness measured in descriptor
    feature space (:func:`descriptor_features` without PCA).

    Parameters
    ----------
    descriptors : ndarray of shape (n_models, S, B)
        Descriptors of the models on the atlas.
    coordinates : ndarray of shape (n_models, 2)
        Their atlas coordinates, from :func:`embed`.
    new_descriptors : ndarray of shape (n_new, S, B)
        Descriptors of the models to place.
    n_neighbors : int, default=5
        Number of neighbours used; at most ``n_models``.
    position : {"medoid", "mean", "nearest"}, default="medoid"
        Where to draw a new model: at the neighbour whose map distances to the
        other neighbours sum to the least, at the mean of their map positions
        (which can fall into empty space between two islands), or at the
        nearest neighbour.
    transform : {"sqrt", "log", "none"}, default="sqrt"
        Passed to :func:`descriptor_features`.

    Returns
    -------
    new_coordinates : ndarray of shape (n_new, 2)
        Position of each new model on the atlas.
    neighbors : ndarray of shape (n_new, n_neighbors)
        Row indices of the nearest atlas models, closest first.
    distances : ndarray of shape (n_new, n_neighbors)
        Their distances in feature space.

    Raises
    ------
    ValueError
        If the shapes do not match, ``n_neighbors`` is not in [1, n_models] or
        ``position`` is unknown.

    Examples
    --------
    >>> descriptors = np.stack([np.eye(2), np.full((2, 2), 0.5), np.eye(2)[::-1]])
    >>> coordinates = np.array([[0.0, 0.0], [5.0, 5.0], [9.0, 9.0]])
    >>> new_coordinates, neighbors, _ = place_new(
    ...     descriptors, coordinates, np.eye(2)[None], n_neighbors=1)
    >>> new_coordinates.tolist(), neighbors.tolist()
    ([[0.0, 0.0]], [[0]])
    >>> place_new(descriptors, coordinates, np.eye(2)[None], n_neighbors=2,
    ...           position="mean")[0].tolist()
    [[2.5, 2.5]]
    """
    _check_descriptors(descriptors)
    _check_descriptors(new_descriptors, "new_descriptors")
    if new_descriptors.shape[1:] != descriptors.shape[1:]:
        raise ValueError(
            f"new_descriptors has S x B = {new_descriptors.shape[1:]!r}; expected "
            f"{descriptors.shape[1:]!r} like descriptors"
        )
    coordinates = np.asarray(coordinates, dtype=np.float64)
    if coordinates.shape != (len(descriptors), 2):
        raise ValueError(
            f"coordinates must have shape ({len(descriptors)}, 2); got "
            f"{coordinates.shape!r}"
        )
    _check_positive_int(n_neighbors, "n_neighbors")
    if n_neighbors > len(descriptors):
        raise ValueError(
            f"n_neighbors={n_neighbors!r} is not valid; expected at most "
            f"n_models={len(descriptors)}"
        )
    if position not in POSITIONS:
        raise ValueError(
            f"position={position!r} is not valid; expected one of {POSITIONS}"
        )

    features = descriptor_features(
        descriptors, transform=transform, n_components=None
    )  # (n, S*B)
    new_features = descriptor_features(
        new_descriptors, transform=transform, n_components=None
    )  # (n_new, S*B)
    search = NearestNeighbors(n_neighbors=n_neighbors).fit(features)
    distances, neighbors = search.kneighbors(new_features)  # (n_new, k) each
    new_coordinates = np.stack(
        [_map_position(coordinates[rows], position) for rows in neighbors]
    )  # (n_new, 2)
    return new_coordinates, neighbors, distances


def neighbor_table(
    index: pd.DataFrame,
    neighbors: np.ndarray,
    distances: np.ndarray,
    columns: Sequence[str],
    *,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """List the nearest atlas models of each placed model with their settings.

    Parameters
    ----------
    index : pandas.DataFrame
        One row per atlas model, in the order the neighbours index.
    neighbors, distances : ndarray of shape (n_new, n_neighbors)
        From :func:`place_new`.
    columns : sequence of str
        Columns of ``index`` to show.
    names : sequence of str, optional
        A name per new model; defaults to ``"new 0"``, ``"new 1"``, ...

    Returns
    -------
    pandas.DataFrame
        Indexed by (new model, rank), with ``distance`` and then ``columns``.

    Raises
    ------
    ValueError
        If the shapes or names do not match, or a column is missing.

    Examples
    --------
    >>> index = pd.DataFrame({"dataset": ["a", "b", "c"]})
    >>> table = neighbor_table(index, np.array([[2, 0]]), np.array([[0.1, 0.4]]),
    ...                        ["dataset"], names=["mine"])
    >>> table.loc["mine", "dataset"].tolist()
    ['c', 'a']
    """
    neighbors = np.asarray(neighbors)
    distances = np.asarray(distances, dtype=np.float64)
    if neighbors.ndim != 2 or neighbors.shape != distances.shape:
        raise ValueError(
            f"neighbors and distances must share a 2-D shape; got {neighbors.shape!r} "
            f"and {distances.shape!r}"
        )
    names = [f"new {i}" for i in range(len(neighbors))] if names is None else names
    if len(names) != len(neighbors):
        raise ValueError(
            f"names={list(names)!r} is not valid; expected {len(neighbors)} names"
        )
    missing = [column for column in columns if column not in index.columns]
    if missing:
        raise ValueError(
            f"columns {missing!r} are missing from index ({list(index.columns)!r})"
        )

    parts = {}
    for name, rows, row_distances in zip(names, neighbors, distances, strict=True):
        part = index.iloc[rows][list(columns)].reset_index(drop=True)
        part.insert(0, "distance", row_distances)
        parts[name] = part
    return pd.concat(parts, names=["model", "rank"])


def neighbor_agreement(
    descriptors: np.ndarray,
    index: pd.DataFrame,
    columns: Sequence[str],
    *,
    n_neighbors: int = 5,
    transform: str = "sqrt",
    n_bins: int = 4,
) -> pd.DataFrame:
    """Measure how often a model's nearest neighbours share its hyperparameters.

    Unlike :func:`explain_clusters` this needs no clustering: a setting is
    separated by the descriptor if neighbours in feature space (no PCA) agree on
    it more often than models drawn at random.

    Parameters
    ----------
    descriptors : ndarray of shape (n_models, S, B)
        One descriptor per model.
    index : pandas.DataFrame
        One row per model in the same order.
    columns : sequence of str
        Columns to check; floats are binned as in :func:`explain_clusters`.
    n_neighbors : int, default=5
        Neighbours per model (the model itself excluded); below ``n_models``.
    transform : {"sqrt", "log", "none"}, default="sqrt"
        Passed to :func:`descriptor_features`.
    n_bins : int, default=4
        Quantile bins for continuous columns.

    Returns
    -------
    pandas.DataFrame
        Indexed by column, with ``agreement`` (mean share of neighbours with the
        model's own value), ``chance`` (the same share for random other models)
        and ``lift`` (``agreement / chance``; NaN if every value is unique).

    Raises
    ------
    ValueError
        If shapes do not match, a column is missing or ``n_neighbors`` is not in
        [1, n_models - 1].

    Examples
    --------
    >>> descriptors = np.stack([np.eye(2)] * 3 + [np.eye(2)[::-1]] * 3)
    >>> index = pd.DataFrame({"dataset": list("aaabbb")})
    >>> neighbor_agreement(descriptors, index, ["dataset"], n_neighbors=2)
             agreement  chance  lift
    dataset        1.0     0.4   2.5
    """
    _check_descriptors(descriptors)
    labels = _check_labels_index(np.zeros(len(descriptors), dtype=int), index)
    missing = [column for column in columns if column not in index.columns]
    if missing or len(columns) == 0:
        raise ValueError(
            f"columns={list(columns)!r} is not valid; expected a non-empty list of "
            f"columns of index ({list(index.columns)!r})"
        )
    _check_positive_int(n_neighbors, "n_neighbors")
    if n_neighbors >= len(labels):
        raise ValueError(
            f"n_neighbors={n_neighbors!r} is not valid; expected at most "
            f"n_models - 1 = {len(labels) - 1}"
        )

    features = descriptor_features(
        descriptors, transform=transform, n_components=None
    )  # (n, S*B)
    search = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(features)
    # Column 0 is normally the model itself; drop it rather than trust ties.
    _, neighbors = search.kneighbors(features)  # (n, k + 1)
    others = np.array(
        [[j for j in row if j != i][:n_neighbors] for i, row in enumerate(neighbors)]
    )  # (n, k)

    rows = {}
    for column in columns:
        values = _as_categories(index[column].reset_index(drop=True), n_bins)
        counts = pd.Series(values).value_counts()
        chance = (counts[values].to_numpy() - 1) / (len(values) - 1)  # (n,)
        agreement = (values[others] == values[:, None]).mean(axis=1)  # (n,)
        rows[column] = {
            "agreement": agreement.mean(),
            "chance": chance.mean(),
            "lift": agreement.mean() / chance.mean() if chance.any() else np.nan,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def judge_scores(
    scores: pd.DataFrame, *, min_ami: float = 0.2, min_lift: float = 1.5
) -> pd.DataFrame:
    """Turn cluster and neighbour scores into one verdict per hyperparameter.

    A hyperparameter *explains clusters* if its AMI reaches ``min_ami``; failing
    that, it *shapes neighbourhoods* if its neighbour lift reaches ``min_lift``;
    otherwise it is *at chance* (this includes lifts below 1, and a NaN lift).

    Parameters
    ----------
    scores : pandas.DataFrame
        Indexed by hyperparameter, with columns ``ami`` (from
        :func:`explain_clusters`) and ``lift`` (from :func:`neighbor_agreement`).
    min_ami : float, default=0.2
        Smallest adjusted mutual information that counts as explaining clusters.
    min_lift : float, default=1.5
        Smallest neighbour lift that counts as shaping neighbourhoods.

    Returns
    -------
    pandas.DataFrame
        Columns ``ami``, ``lift`` and ``verdict``, sorted by ``ami`` (descending).

    Raises
    ------
    ValueError
        If ``scores`` lacks ``ami`` or ``lift``, or a threshold is not a finite
        number (``min_ami`` at most 1, ``min_lift`` positive).

    Examples
    --------
    >>> scores = pd.DataFrame({"ami": [0.8, 0.0, 0.05], "lift": [3.0, 2.0, 0.9]},
    ...                       index=["initialization", "activation", "dataset"])
    >>> judge_scores(scores)["verdict"].tolist()
    ['explains clusters', 'at chance', 'shapes neighbourhoods']
    """
    missing = {"ami", "lift"} - set(scores.columns)
    if missing:
        raise ValueError(
            f"scores has columns {list(scores.columns)!r}; expected at least "
            f"'ami' and 'lift' (missing {sorted(missing)!r})"
        )
    if not np.isfinite(min_ami) or min_ami > 1:
        raise ValueError(f"min_ami={min_ami!r} is not valid; expected a number <= 1")
    if not np.isfinite(min_lift) or min_lift <= 0:
        raise ValueError(
            f"min_lift={min_lift!r} is not valid; expected a positive number"
        )

    table = scores[["ami", "lift"]].sort_values("ami", ascending=False)
    verdict = np.where(
        table["ami"] >= min_ami,
        "explains clusters",
        np.where(table["lift"] >= min_lift, "shapes neighbourhoods", "at chance"),
    )  # (n_hyperparameters,)
    return table.assign(verdict=verdict)


def atlas_table(
    index: pd.DataFrame,
    coordinates: np.ndarray,
    labels: np.ndarray,
    columns: Sequence[str],
) -> pd.DataFrame:
    """Collect atlas coordinates, clusters and hyperparameters in one table.

    Parameters
    ----------
    index : pandas.DataFrame
        One row per model with a ``model_id`` column, e.g. ``Zoo.index``.
    coordinates : ndarray of shape (n_models, 2)
        Atlas coordinates from :func:`embed`.
    labels : ndarray of shape (n_models,)
        Cluster labels from :func:`cluster`.
    columns : sequence of str
        Hyperparameter columns of ``index`` to copy.

    Returns
    -------
    pandas.DataFrame
        Columns ``model_id``, ``x``, ``y``, ``cluster`` and then ``columns``.

    Raises
    ------
    ValueError
        If the lengths do not match or a column is missing.

    Examples
    --------
    >>> index = pd.DataFrame({"model_id": ["m0", "m1"], "dataset": ["a", "b"]})
    >>> atlas_table(index, np.zeros((2, 2)), np.array([0, -1]), ["dataset"])
      model_id    x    y  cluster dataset
    0       m0  0.0  0.0        0       a
    1       m1  0.0  0.0       -1       b
    """
    labels = _check_labels_index(labels, index)
    missing = [c for c in ["model_id", *columns] if c not in index.columns]
    if missing:
        raise ValueError(
            f"columns {missing!r} are missing from index ({list(index.columns)!r})"
        )
    coordinates = np.asarray(coordinates, dtype=np.float64)
    if coordinates.shape != (len(index), 2):
        raise ValueError(
            f"coordinates must have shape ({len(index)}, 2); got {coordinates.shape!r}"
        )
    table = pd.DataFrame(
        {
            "model_id": index["model_id"].to_numpy(),
            "x": coordinates[:, 0],
            "y": coordinates[:, 1],
            "cluster": labels,
        }
    )
    for column in columns:
        table[column] = index[column].to_numpy()
    return table


def _sorted_categories(categories: set[str]) -> list[str]:
    """Sort category strings numerically if they all parse as numbers."""
    try:
        return sorted(categories, key=float)
    except ValueError:
        return sorted(categories)


def plot_atlas(
    coordinates: np.ndarray,
    values: Sequence[object],
    *,
    ax: plt.Axes | None = None,
    title: str | None = None,
    noise_value: object | None = None,
    marker_size: float = 10.0,
    legend: str | None = "inside",
    axis_labels: bool = True,
) -> plt.Axes:
    """Scatter the atlas with each model coloured by a categorical value.

    Parameters
    ----------
    coordinates : ndarray of shape (n_models, 2)
        Atlas coordinates from :func:`embed`.
    values : sequence of length n_models
        Category of each model (e.g. its dataset or cluster); compared by their
        string form and listed in sorted order.
    ax : matplotlib Axes, optional
        Where to draw; defaults to the current Axes.
    title : str, optional
        Axes title.
    noise_value : object, optional
        Category drawn in light grey below the others (e.g. -1 for noise).
    marker_size : float, default=10.0
        Marker area in points squared.
    legend : {"inside", "below"} or None, default="inside"
        Legend inside the axes where it covers the fewest points, under the
        axes (for small panels, where an inside legend hides points; two
        columns unless a label is longer than :data:`SHORT_LABEL` characters),
        or none.
    axis_labels : bool, default=True
        Whether to label the axes (a grid of panels labels the figure once).

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    ValueError
        If ``coordinates`` and ``values`` do not match or ``legend`` is not one
        of the options.

    Examples
    --------
    >>> ax = plot_atlas(np.zeros((3, 2)), ["a", "b", "a"], title="dataset")
    >>> ax.get_title()
    'dataset'
    >>> plt.close(ax.figure)
    """
    coordinates = np.asarray(coordinates, dtype=np.float64)
    values = pd.Series(list(values), dtype=object).map(str)
    if coordinates.ndim != 2 or coordinates.shape != (len(values), 2):
        raise ValueError(
            f"coordinates must have shape ({len(values)}, 2) to match values; got "
            f"{coordinates.shape!r}"
        )
    if legend not in LEGENDS:
        raise ValueError(f"legend={legend!r} is not valid; expected one of {LEGENDS}")
    ax = plt.gca() if ax is None else ax
    noise = None if noise_value is None else str(noise_value)
    categories = _sorted_categories(set(values) - {noise})
    palette = plt.get_cmap("tab10" if len(categories) <= 10 else "tab20")

    if noise in set(values):
        mask = (values == noise).to_numpy()
        ax.scatter(*coordinates[mask].T, s=marker_size, c="0.8", label="noise")
    for position, category in enumerate(categories):
        mask = (values == category).to_numpy()
        color = palette(position % palette.N)
        ax.scatter(*coordinates[mask].T, s=marker_size, color=color, label=category)

    if axis_labels:
        ax.set(xlabel="t-SNE 1 (arb. units)", ylabel="t-SNE 2 (arb. units)")
    ax.set(xticks=[], yticks=[], title=title)
    if legend == "inside":
        ax.legend(fontsize="x-small", markerscale=1.5, frameon=False, loc="best")
    elif legend == "below":
        # Two columns fit a panel's width only when the labels are short.
        wide = max(len(category) for category in categories) > SHORT_LABEL
        ax.legend(
            fontsize=9, markerscale=1.5, frameon=False, loc="upper center",
            bbox_to_anchor=(0.5, -0.12 if axis_labels else -0.01),
            ncol=1 if wide else 2, handletextpad=0.2, columnspacing=1.0,
        )  # fmt: skip
    return ax


def plot_atlas_grid(
    coordinates: np.ndarray,
    panels: Mapping[str, Sequence[object]],
    *,
    n_columns: int = 2,
    panel_size: tuple[float, float] = (3.2, 3.1),
    noise_values: Mapping[str, object] | None = None,
    marker_size: float = 9.0,
) -> tuple[plt.Figure, np.ndarray]:
    """Draw the atlas once per colouring, in a grid with legends under the panels.

    Every panel is :func:`plot_atlas` of the same map with another colouring;
    the axes are labelled once for the figure. With the default two columns
    the figure is 6.4 inches wide, about the width of a book's text column,
    so it is shown at nearly its own size.

    Parameters
    ----------
    coordinates : ndarray of shape (n_models, 2)
        Atlas coordinates from :func:`embed`.
    panels : mapping of str to sequence of length n_models
        Title of each panel to the category of every model, in panel order.
    n_columns : int, default=2
        Panels per row; unused cells of the last row are left blank.
    panel_size : (float, float), default=(3.2, 3.1)
        Width and height of one panel, legend included, in inches.
    noise_values : mapping of str to object, optional
        ``noise_value`` of :func:`plot_atlas` per panel title (e.g.
        ``{"cluster": -1}``).
    marker_size : float, default=9.0
        Marker area in points squared.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : ndarray of shape (n_rows, n_columns) of Axes

    Raises
    ------
    ValueError
        If ``panels`` is empty, ``n_columns`` is not a positive int, or as
        :func:`plot_atlas`.

    Examples
    --------
    >>> panels = {"dataset": ["a", "b", "a"], "optimizer": ["x", "x", "y"],
    ...           "cluster": [0, -1, 0]}
    >>> fig, axes = plot_atlas_grid(np.zeros((3, 2)), panels,
    ...                             noise_values={"cluster": -1})
    >>> axes.shape, [ax.get_title() for ax in axes.flat if ax.get_visible()]
    ((2, 2), ['dataset', 'optimizer', 'cluster'])
    >>> plt.close(fig)
    """
    _check_positive_int(n_columns, "n_columns")
    if not panels:
        raise ValueError("panels is empty; expected at least one colouring")
    noise_values = {} if noise_values is None else noise_values
    n_rows = -(-len(panels) // n_columns)
    fig, axes = plt.subplots(
        n_rows, n_columns, squeeze=False, layout="constrained",
        figsize=(panel_size[0] * n_columns, panel_size[1] * n_rows),
    )  # fmt: skip
    # The last row may have more axes than panels; those are hidden below.
    for ax, (title, values) in zip(axes.flat, panels.items(), strict=False):
        plot_atlas(
            coordinates, values, ax=ax, title=title, marker_size=marker_size,
            noise_value=noise_values.get(title), legend="below", axis_labels=False,
        )  # fmt: skip
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    fig.supxlabel("t-SNE 1 (arb. units)", fontsize=10)
    fig.supylabel("t-SNE 2 (arb. units)", fontsize=10)
    return fig, axes
