"""Tests of the baseline representations (global statistics, raw, PCA, RP)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.random_projection import GaussianRandomProjection

from wdcore.baselines import (
    BASELINES,
    GLOBAL_STATISTICS,
    GlobalStatistics,
    PCABaseline,
    RandomProjectionBaseline,
    RawSubset,
    global_statistics,
    make_baseline,
)

# Tolerance of the PCA comparison: randomized SVD against the exact SVD on data
# with a clear spectral gap agrees to about 1e-10; 1e-6 leaves room for BLAS.
PCA_RTOL = 1e-6


def make_weights(n_models=40, n_weights=300, *, rank=6, seed=0):
    """Low-rank weight vectors plus small noise (a clear spectral gap)."""
    rng = np.random.default_rng(seed)
    scales = np.linspace(10, 4, rank)  # (rank,)
    factors = rng.normal(size=(n_models, rank)) * scales  # (n_models, rank)
    basis = rng.normal(size=(rank, n_weights))  # (rank, n_weights)
    noise = 1e-3 * rng.normal(size=(n_models, n_weights))  # (n_models, n_weights)
    return factors @ basis + noise


def check_equal_up_to_sign(first, second, rtol):
    """Assert two projections agree column by column up to a sign flip."""
    signs = np.sign(np.sum(first * second, axis=0))  # (n_components,)
    scale = np.abs(second).max()
    np.testing.assert_allclose(first * signs, second, atol=rtol * scale)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_global_statistics_match_numpy_and_scipy(seed):
    weights = np.random.default_rng(seed).standard_t(4, size=(3, 2000))
    statistics = global_statistics(weights)
    assert statistics.shape == (3, len(GLOBAL_STATISTICS)) == (3, 16)
    named = dict(zip(GLOBAL_STATISTICS, statistics.T, strict=True))
    np.testing.assert_allclose(named["mean"], weights.mean(axis=1))
    np.testing.assert_allclose(named["std"], weights.std(axis=1))
    np.testing.assert_allclose(named["skewness"], stats.skew(weights, axis=1))
    np.testing.assert_allclose(
        named["excess_kurtosis"], stats.kurtosis(weights, axis=1)
    )
    np.testing.assert_allclose(named["q25"], np.quantile(weights, 0.25, axis=1))
    np.testing.assert_allclose(named["max"], weights.max(axis=1))
    np.testing.assert_allclose(named["abs_std"], np.abs(weights).std(axis=1))
    np.testing.assert_allclose(named["rms"], np.sqrt((weights**2).mean(axis=1)))
    np.testing.assert_allclose(named["fraction_positive"], (weights > 0).mean(axis=1))
    np.testing.assert_array_equal(global_statistics(weights[1]), statistics[1])


def test_global_statistics_of_constant_weights():
    statistics = global_statistics(np.full(50, 0.1))
    named = dict(zip(GLOBAL_STATISTICS, statistics, strict=True))
    assert named["std"] == 0 and named["skewness"] == 0
    assert named["excess_kurtosis"] == 0
    assert named["fraction_near_zero"] == 0 and named["fraction_positive"] == 1


@pytest.mark.parametrize("seed", [0, 1])
def test_global_statistics_ignore_order(seed):
    weights = np.random.default_rng(seed).normal(size=(2, 500))
    shuffled = np.random.default_rng(seed + 1).permuted(weights, axis=1)
    np.testing.assert_allclose(
        global_statistics(weights), global_statistics(shuffled), rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("n_components", [1, 16, 64])
@pytest.mark.parametrize("seed", [0, 1])
def test_raw_subset(n_components, seed):
    weights = make_weights(seed=seed)
    raw = RawSubset(n_components, random_state=seed).fit(weights)
    assert raw.indices_.shape == (n_components,)
    assert np.all(np.diff(raw.indices_) > 0)
    np.testing.assert_array_equal(raw.transform(weights), weights[:, raw.indices_])
    again = RawSubset(n_components, random_state=seed).fit(weights)
    np.testing.assert_array_equal(again.indices_, raw.indices_)


@pytest.mark.parametrize("n_components", [2, 6])
@pytest.mark.parametrize("seed", [0, 1])
def test_pca_matches_exact_sklearn_pca(n_components, seed):
    weights = make_weights(seed=seed)
    ours = PCABaseline(n_components, random_state=seed).fit_transform(weights)
    exact = PCA(n_components=n_components, svd_solver="full").fit_transform(weights)
    assert ours.shape == (40, n_components)
    check_equal_up_to_sign(ours, exact, PCA_RTOL)


def test_pca_transforms_new_models_like_sklearn():
    weights = make_weights(seed=0)
    ours = PCABaseline(4, svd_solver="full").fit(weights[:30])
    reference = PCA(n_components=4, svd_solver="full").fit(weights[:30])
    np.testing.assert_allclose(
        ours.transform(weights[30:]), reference.transform(weights[30:]), rtol=1e-10
    )


@pytest.mark.parametrize("n_components", [4, 64])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_projection_matches_sklearn(n_components, seed):
    weights = make_weights(seed=seed)
    ours = RandomProjectionBaseline(n_components, random_state=seed).fit(weights)
    matrix = ours.projection_.components_  # (n_components, n_weights)
    assert matrix.shape == (n_components, 300)
    np.testing.assert_allclose(ours.transform(weights), weights @ matrix.T, rtol=1e-10)
    assert np.var(matrix) == pytest.approx(1 / n_components, rel=0.1)
    seed_used = ours.projection_.random_state
    reference = GaussianRandomProjection(n_components, random_state=seed_used)
    np.testing.assert_allclose(
        ours.transform(weights), reference.fit_transform(weights), rtol=1e-12
    )


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("seed", [0, 1])
def test_make_baseline_is_deterministic(name, seed):
    weights = make_weights(seed=seed)
    first = make_baseline(name, n_components=16, random_state=seed)
    second = make_baseline(name, n_components=16, random_state=seed)
    features = first.fit_transform(weights)
    assert features.shape == (40, 16)
    np.testing.assert_allclose(features, second.fit_transform(weights), rtol=1e-10)


def test_generator_random_state_is_accepted():
    weights = make_weights(seed=0)
    rng = np.random.default_rng(3)
    assert RawSubset(8, random_state=rng).fit_transform(weights).shape == (40, 8)


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (RawSubset(0), "n_components=0 is not valid"),
        (RawSubset(2.5), "n_components=2.5 is not valid"),
        (PCABaseline(True), "n_components=True is not valid"),
        (RandomProjectionBaseline(-1), "n_components=-1 is not valid"),
        (RawSubset(301), "n_components=301 exceeds the 300 weights"),
        (PCABaseline(41), r"exceeds min\(n_models, n_weights\) = 40"),
    ],
)
def test_invalid_n_components(estimator, message):
    with pytest.raises(ValueError, match=message):
        estimator.fit(make_weights())


@pytest.mark.parametrize(
    "estimator",
    [GlobalStatistics(), RawSubset(4), PCABaseline(4), RandomProjectionBaseline(4)],
)
def test_input_checks(estimator):
    weights = make_weights()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        estimator.transform(weights)
    with pytest.raises(TypeError, match="dtype int64; expected floating point"):
        estimator.fit(np.ones((3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"hold 12 NaN or infinite value\(s\), the"):
        estimator.fit(np.full((3, 4), np.nan))
    with pytest.raises(ValueError, match=r"shape \(0, 4\)"):
        estimator.fit(np.ones((0, 4)))
    estimator.fit(weights)
    if not isinstance(estimator, GlobalStatistics):
        with pytest.raises(ValueError, match="have 299 columns; expected 300"):
            estimator.transform(weights[:, 1:])


@pytest.mark.parametrize(
    "estimator",
    [GlobalStatistics(), RawSubset(4), PCABaseline(4), RandomProjectionBaseline(4)],
)
def test_non_finite_weights_are_located(estimator):
    """Regression: "weights hold NaN or infinity" said neither where nor how many."""
    weights = make_weights()
    weights[2, 7], weights[5, 0] = np.inf, np.nan
    message = r"weights hold 2 NaN or infinite value\(s\), the first inf at \(model 2, "
    with pytest.raises(ValueError, match=message + r"index 7\); expected finite"):
        estimator.fit(weights)
    estimator.fit(make_weights())
    with pytest.raises(ValueError, match=message):
        estimator.transform(weights)


def test_make_baseline_errors():
    with pytest.raises(ValueError, match="name='svd' is not valid"):
        make_baseline("svd")
    with pytest.raises(ValueError, match="n_components=64 is not valid for global"):
        make_baseline("global_statistics", n_components=64)
