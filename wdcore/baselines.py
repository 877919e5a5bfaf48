"""The representations MI-WD is compared against in the robustness test.

Four baselines turn a weight vector into a fixed number of features
(supplement, Table 1; chapter 4 of the book runs the comparison):

- :class:`GlobalStatistics`: 16 summary statistics of all weights
  (:data:`GLOBAL_STATISTICS` lists them).
- :class:`RawSubset`: a fixed random subset of the weight coordinates.
- :class:`PCABaseline`: projection on the leading principal components of a
  set of weight vectors, wrapping :class:`sklearn.decomposition.PCA`.
- :class:`RandomProjectionBaseline`: a fixed Gaussian random projection,
  wrapping :class:`sklearn.random_projection.GaussianRandomProjection`.

All are scikit-learn transformers: ``fit`` on a matrix of weight vectors of
shape ``(n_models, n_weights)`` (one architecture), then ``transform``.
:func:`make_baseline` builds one by name.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.random_projection import GaussianRandomProjection
from sklearn.utils.validation import check_is_fitted

from wdcore._random import RandomState, check_random_state

__all__ = [
    "BASELINES",
    "GLOBAL_STATISTICS",
    "NEAR_ZERO",
    "GlobalStatistics",
    "PCABaseline",
    "RandomProjectionBaseline",
    "RawSubset",
    "global_statistics",
    "make_baseline",
]

BASELINES = ("global_statistics", "raw", "pca", "random_projection")

# Weights with |w| below this count as "near zero"; 1e-3 is small against the
# typical spread of trained weights (~1e-2 to 1e-1) and exact zeros count too.
NEAR_ZERO = 1e-3

GLOBAL_STATISTICS = (
    "mean",
    "std",
    "skewness",
    "excess_kurtosis",
    "min",
    "q05",
    "q25",
    "median",
    "q75",
    "q95",
    "max",
    "abs_mean",
    "abs_std",
    "rms",
    "fraction_positive",
    "fraction_near_zero",
)


def _check_weight_matrix(weights: object, name: str = "weights") -> np.ndarray:
    """Return ``weights`` as a finite float 2-D array (1-D becomes one row)."""
    array = np.asarray(weights)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{name} have dtype {array.dtype}; expected floating point")
    if array.ndim == 1:
        array = array[None]  # (1, n_weights)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{name} have shape {np.shape(weights)!r}; expected a non-empty array of "
            "shape (n_models, n_weights)"
        )
    finite = np.isfinite(array)  # (n_models, n_weights)
    if not finite.all():
        row, column = np.argwhere(~finite)[0]
        raise ValueError(
            f"{name} hold {int(finite.size - finite.sum())} NaN or infinite "
            f"value(s), the first {float(array[row, column])!r} at (model {row}, index "
            f"{column}); expected finite weights"
        )
    return array


def _check_n_components(n_components: object) -> int:
    """Return ``n_components`` if it is a positive int, else raise ValueError."""
    if (
        not isinstance(n_components, numbers.Integral)
        or isinstance(n_components, bool)
        or n_components < 1
    ):
        raise ValueError(
            f"n_components={n_components!r} is not valid; expected a positive int"
        )
    return int(n_components)


def _seed(random_state: RandomState) -> int:
    """Draw an int seed for scikit-learn from a wdcore ``random_state``."""
    return int(check_random_state(random_state).integers(2**31 - 1))


def global_statistics(weights: np.ndarray) -> np.ndarray:
    """Return 16 summary statistics of the weights of each model.

    Parameters
    ----------
    weights : array-like of shape (n_weights,) or (n_models, n_weights)
        Weight vectors, one per row.

    Returns
    -------
    ndarray of shape (16,) or (n_models, 16)
        float64, in the order of :data:`GLOBAL_STATISTICS`: mean, standard
        deviation, skewness, excess kurtosis (both 0 for constant weights,
        e.g. a constant initialization),
        minimum, 5/25/50/75/95th percentiles, maximum, mean and standard
        deviation of ``|w|``, root mean square, fraction of positive weights
        and fraction with ``|w| < NEAR_ZERO``.

    Raises
    ------
    TypeError
        If the weights are not floating point.
    ValueError
        If they are empty or not finite.

    Examples
    --------
    >>> stats = global_statistics(np.array([-1.0, 0.0, 1.0, 2.0]))
    >>> dict(zip(GLOBAL_STATISTICS[:2], stats[:2].round(3).tolist()))
    {'mean': 0.5, 'std': 1.118}
    """
    matrix = _check_weight_matrix(weights).astype(np.float64)  # (n_models, n)
    # A constant row gets its value as mean exactly, so its spread is exactly 0.
    constant = matrix.max(axis=1) == matrix.min(axis=1)  # (n_models,)
    mean = np.where(constant, matrix[:, 0], matrix.mean(axis=1))  # (n_models,)
    centred = matrix - mean[:, None]  # (n_models, n_weights)
    # Products instead of ** 3 and ** 4: numpy's general power is far slower.
    squared = centred * centred  # (n_models, n_weights)
    variance = squared.mean(axis=1)  # (n_models,)
    std = np.sqrt(variance)  # (n_models,)

    safe = np.where(variance > 0, variance, 1.0)  # (n_models,)
    third = np.mean(squared * centred, axis=1)  # (n_models,)
    fourth = np.mean(squared * squared, axis=1)  # (n_models,)
    skewness = np.where(variance > 0, third / safe**1.5, 0.0)  # (n_models,)
    kurtosis = np.where(variance > 0, fourth / safe**2 - 3, 0.0)  # (n_models,)
    quantiles = np.quantile(matrix, [0.05, 0.25, 0.5, 0.75, 0.95], axis=1).T  # (m, 5)
    magnitudes = np.abs(matrix)  # (n_models, n_weights)
    columns = [
        mean, std, skewness, kurtosis, matrix.min(axis=1), *quantiles.T,
        matrix.max(axis=1), magnitudes.mean(axis=1), magnitudes.std(axis=1),
        np.sqrt(np.mean(matrix**2, axis=1)), np.mean(matrix > 0, axis=1),
        np.mean(magnitudes < NEAR_ZERO, axis=1),
    ]  # fmt: skip
    statistics = np.stack(columns, axis=1)  # (n_models, 16)
    return statistics[0] if np.ndim(weights) == 1 else statistics


class GlobalStatistics(TransformerMixin, BaseEstimator):
    """Transformer returning the 16 :func:`global_statistics` of each model.

    It has nothing to learn; ``fit`` only records the number of weights.

    Examples
    --------
    >>> weights = np.random.default_rng(0).normal(size=(3, 50))
    >>> GlobalStatistics().fit_transform(weights).shape
    (3, 16)
    """

    def fit(self, weights: np.ndarray, y: object = None) -> GlobalStatistics:
        """Record the weight-vector length; there is nothing else to learn.

        Parameters
        ----------
        weights : array-like of shape (n_models, n_weights)
            Floating-point weight vectors, one per row.
        y : None
            Ignored; present for scikit-learn pipelines.

        Returns
        -------
        GlobalStatistics
            ``self``, with ``n_features_in_`` set.

        Raises
        ------
        TypeError
            If the weights are not floating point.
        ValueError
            If they are empty, not 2-D or not finite.

        Examples
        --------
        >>> GlobalStatistics().fit(np.zeros((2, 5))).n_features_in_
        5
        """
        self.n_features_in_ = _check_weight_matrix(weights).shape[1]
        return self

    def transform(self, weights: np.ndarray) -> np.ndarray:
        """Return the 16 statistics of each weight vector.

        Parameters
        ----------
        weights : array-like of shape (n_models, n_weights)
            Floating-point weight vectors, one per row; any length.

        Returns
        -------
        ndarray of shape (n_models, 16)
            See :func:`global_statistics`.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If ``fit`` was not called.
        TypeError, ValueError
            If the weights are invalid, as in :meth:`fit`.

        Examples
        --------
        >>> weights = np.array([[-1.0, 1.0, 3.0]])
        >>> GlobalStatistics().fit(weights).transform(weights)[0, :2].tolist()
        [1.0, 1.632993161855452]
        """
        check_is_fitted(self)
        return global_statistics(_check_weight_matrix(weights))


class RawSubset(TransformerMixin, BaseEstimator):
    """Transformer keeping a fixed random subset of the weight coordinates.

    Parameters
    ----------
    n_components : int, default=16
        Number of coordinates kept (without replacement).
    random_state : None, int or numpy.random.Generator, default=None
        Chooses the coordinates.

    Attributes
    ----------
    indices_ : ndarray of shape (n_components,)
        The kept coordinates, sorted (so their depth order is preserved).

    Examples
    --------
    >>> weights = np.arange(20.0).reshape(2, 10)
    >>> RawSubset(n_components=3, random_state=0).fit_transform(weights).shape
    (2, 3)
    """

    def __init__(self, n_components: int = 16, *, random_state: RandomState = None):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, weights: np.ndarray, y: object = None) -> RawSubset:
        """Choose the coordinates to keep.

        Parameters
        ----------
        weights : array-like of shape (n_models, n_weights)
            Floating-point weight vectors; only their length is used.
        y : None
            Ignored; present for scikit-learn pipelines.

        Returns
        -------
        RawSubset
            ``self``, with ``indices_`` and ``n_features_in_`` set.

        Raises
        ------
        TypeError
            If the weights are not floating point.
        ValueError
            If ``n_components`` is not a positive int or exceeds the number of
            weights, or the weights are empty or not finite.

        Examples
        --------
        >>> RawSubset(n_components=2, random_state=0).fit(np.zeros((1, 5))).indices_
        array([3, 4])
        """
        n_components = _check_n_components(self.n_components)
        n_weights = _check_weight_matrix(weights).shape[1]
        if n_components > n_weights:
            raise ValueError(
                f"n_components={n_components!r} exceeds the {n_weights} weights; "
                "expected at most n_weights"
            )
        rng = check_random_state(self.random_state)
        self.indices_ = np.sort(rng.choice(n_weights, n_components, replace=False))
        self.n_features_in_ = n_weights
        return self

    def transform(self, weights: np.ndarray) -> np.ndarray:
        """Return the kept coordinates of each weight vector.

        Parameters
        ----------
        weights : array-like of shape (n_models, n_weights)
            Floating-point weight vectors of the length seen in ``fit``.

        Returns
        -------
        ndarray of shape (n_models, n_components)
            ``weights[:, indices_]``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If ``fit`` was not called.
        TypeError, ValueError
            If the weights are invalid or their length differs from ``fit``'s.

        Examples
        --------
        >>> weights = np.arange(10.0).reshape(2, 5)
        >>> RawSubset(n_components=2, random_state=0).fit(weights).transform(weights)
        array([[3., 4.],
               [8., 9.]])
        """
        check_is_fitted(self)
        matrix = _check_weight_matrix(weights)  # (n_models, n_weights)
        _check_n_features(matrix, self.n_features_in_)
        return matrix[:, self.indices_]  # (n_models, n_components)


def _check_n_features(matrix: np.ndarray, n_features: int) -> None:
    """Raise ValueError unless ``matrix`` has ``n_features`` columns."""
    if matrix.shape[1] != n_features:
        raise ValueError(
            f"weights have {matrix.shape[1]} columns; expected {n_features}, the "
            "number of weights seen in fit (one architecture)"
        )


class PCABaseline(TransformerMixin, BaseEstimator):
    """Projection on the leading principal components of a set of weight vectors.

    A thin wrapper of :class:`sklearn.decomposition.PCA` that takes a wdcore
    ``random_state`` and checks its inputs.

    Parameters
    ----------
    n_components : int, default=16
        Number of components; at most ``min(n_models, n_weights)`` of the
        fitting set.
    svd_solver : {"randomized", "full", "auto", "covariance_eigh"}, default="randomized"
        Passed to scikit-learn; randomized SVD is fast for long weight vectors.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the randomized solver.

    Attributes
    ----------
    pca_ : sklearn.decomposition.PCA
        The fitted scikit-learn estimator.

    Notes
    -----
    A zoo of ``n_models`` networks has at most ``n_models`` principal
    components, so the 1024-dimensional PCA of the paper needs more than 1024
    models; a larger request raises ValueError instead of padding.

    Examples
    --------
    >>> weights = np.random.default_rng(0).normal(size=(20, 100))
    >>> PCABaseline(n_components=4, random_state=0).fit_transform(weights).shape
    (20, 4)
    """

    def __init__(
        self,
        n_components: int = 16,
        *,
        svd_solver: str = "randomized",
        random_state: RandomState = None,
    ):
        self.n_components = n_components
        self.svd_solver = svd_solver
        self.random_state = random_state

    def fit(self, weights: np.ndarray, y: object = None) -> PCABaseline:
        """Fit the principal components of a set of weight vectors.

        Parameters
        ----------
        weights : array-like of shape (n_models, n_weights)
            Floating-point weight vectors of one architecture.
        y : None
            Ignored; present for scikit-learn pipelines.

        Returns
        -------
        PCABaseline
            ``self``, with ``pca_`` and ``n_features_in_`` set.

        Raises
        ------
        TypeError
            If the weights are not floating point.
        ValueError
            If ``n_components`` is not a positive int or exceeds
            ``min(n_models, n_weights)``, or the weights are empty or not
            finite.

        Examples
        --------
        >>> weights = np.random.default_rng(0).normal(size=(6, 20))
        >>> PCABaseline(n_components=3, random_state=0).fit(weights).pca_.n_components
        3
        """
        n_components = _check_n_components(self.n_components)
        matrix = _check_weight_matrix(weights)  # (n_models, n_weights)
        if n_components > min(matrix.shape):
            raise ValueError(
                f"n_components={n_components!r} exceeds min(n_models, n_weights) = "
                f"{min(matrix.shape)}; expected at most that many components"
            )
        self.pca_ = PCA(
            n_components=n_components,
            svd_solver=self.svd_solver,
            random_state=_seed(self.random_state),
        ).fit(matrix)
        self.n_features_in_ = matrix.shape[1]
        return self

    def transform(self, weights: np.ndarray) -> np.ndarray:
        """Project weight vectors on the fitted principal components.

        Parameters
        ----------
        weights : array-like of shape (n_models, n_weights)
            Floating-point weight vectors of the length seen in ``fit``.

        Returns
        -------
        ndarray of shape (n_models, n_components)
            Coordinates along the components, after centring by the fitted mean.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If ``fit`` was not called.
        TypeError, ValueError
            If the weights are invalid or their length differs from ``fit``'s.

        Examples
        --------
        >>> weights = np.random.default_rng(0).normal(size=(6, 20))
        >>> pca = PCABaseline(n_components=3, random_state=0).fit(weights)
        >>> pca.transform(weights[:2]).shape
        (2, 3)
        """
        check_is_fitted(self)
        matrix = _check_weight_matrix(weights)  # (n_models, n_weights)
        _check_n_features(matrix, self.n_features_in_)
        return self.pca_.transform(matrix)  # (n_models, n_components)


class RandomProjectionBaseline(TransformerMixin, BaseEstimator):
    """A fixed Gaussian random projection of the weight vector.

    Wraps :class:`sklearn.random_projection.GaussianRandomProjection`: entries
    of the projection matrix are drawn from N(0, 1 / n_components).

    Parameters
    ----------
    n_components : int, default=16
        Output dimensionality.
    random_state : None, int or numpy.random.Generator, default=None
        Draws the projection matrix.

    Attributes
    ----------
    projection_ : sklearn.random_projection.GaussianRandomProjection
        The fitted scikit-learn estimator; ``projection_.components_`` has shape
        ``(n_components, n_weights)``.

    Notes
    -----
    The matrix is dense: ``n_components * n_weights`` float64 values (about
    350 MB for 1024 components of a 42,000-weight network).

    Examples
    --------
    >>> weights = np.random.default_rng(0).normal(size=(5, 100))
    >>> projection = RandomProjectionBaseline(n_components=8, random_state=0)
    >>> projection.fit_transform(weights).shape
    (5, 8)
    """

    def __init__(self, n_components: int = 16, *, random_state: RandomState = None):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, weights: np.ndarray, y: object = None) -> RandomProjectionBaseline:
        """Draw the projection matrix for the length of these weight vectors.

        Parameters
        ----------
        weights : array-like of shape (n_models, n_weights)
            Floating-point weight vectors; only their length is used.
        y : None
            Ignored; present for scikit-learn pipelines.

        Returns
        -------
        RandomProjectionBaseline
            ``self``, with ``projection_`` and ``n_features_in_`` set.

        Raises
        ------
        TypeError
            If the weights are not floating point.
        ValueError
            If ``n_components`` is not a positive int, or the weights are empty
            or not finite.

        Examples
        --------
        >>> projection = RandomProjectionBaseline(n_components=4, random_state=0)
        >>> projection.fit(np.zeros((2, 30))).projection_.components_.shape
        (4, 30)
        """
        n_components = _check_n_components(self.n_components)
        matrix = _check_weight_matrix(weights)  # (n_models, n_weights)
        self.projection_ = GaussianRandomProjection(
            n_components=n_components, random_state=_seed(self.random_state)
        ).fit(matrix)
        self.n_features_in_ = matrix.shape[1]
        return self

    def transform(self, weights: np.ndarray) -> np.ndarray:
        """Multiply weight vectors by the fixed random projection matrix.

        Parameters
        ----------
        weights : array-like of shape (n_models, n_weights)
            Floating-point weight vectors of the length seen in ``fit``.

        Returns
        -------
        ndarray of shape (n_models, n_components)
            ``weights @ projection_.components_.T``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If ``fit`` was not called.
        TypeError, ValueError
            If the weights are invalid or their length differs from ``fit``'s.

        Examples
        --------
        >>> weights = np.ones((3, 30))
        >>> projection = RandomProjectionBaseline(n_components=4, random_state=0)
        >>> projection.fit(weights).transform(weights).shape
        (3, 4)
        """
        check_is_fitted(self)
        matrix = _check_weight_matrix(weights)  # (n_models, n_weights)
        _check_n_features(matrix, self.n_features_in_)
        return self.projection_.transform(matrix)  # (n_models, n_components)


def make_baseline(
    name: str, *, n_components: int = 16, random_state: RandomState = None
) -> BaseEstimator:
    """Build a baseline transformer by name.

    Parameters
    ----------
    name : {"global_statistics", "raw", "pca", "random_projection"}
        Which baseline.
    n_components : int, default=16
        Output dimensionality; must be 16 for ``"global_statistics"``.
    random_state : None, int or numpy.random.Generator, default=None
        Randomness of ``"raw"``, ``"pca"`` and ``"random_projection"``.

    Returns
    -------
    sklearn.base.BaseEstimator
        An unfitted transformer.

    Raises
    ------
    ValueError
        If ``name`` is unknown or global statistics are asked for other than
        16 components.

    Examples
    --------
    >>> make_baseline("pca", n_components=8, random_state=0)
    PCABaseline(n_components=8, random_state=0)
    """
    if name == "global_statistics":
        if n_components != len(GLOBAL_STATISTICS):
            raise ValueError(
                f"n_components={n_components!r} is not valid for global statistics; "
                f"expected {len(GLOBAL_STATISTICS)}"
            )
        return GlobalStatistics()
    classes = {
        "raw": RawSubset,
        "pca": PCABaseline,
        "random_projection": RandomProjectionBaseline,
    }
    if name not in classes:
        raise ValueError(f"name={name!r} is not valid; expected one of {BASELINES}")
    return classes[name](n_components=n_components, random_state=random_state)
