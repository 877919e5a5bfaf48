"""Tests for wdcore.atlas on synthetic descriptor libraries with known structure."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from wdcore.atlas import (
    atlas_table,
    cluster,
    cluster_composition,
    cluster_means,
    cluster_summary,
    describe_clusters,
    descriptor_features,
    embed,
    explain_clusters,
    judge_scores,
    neighbor_agreement,
    neighbor_table,
    place_new,
    plot_atlas,
    plot_atlas_grid,
    quantile_labels,
    top_values,
)

N_WINDOWS, N_BINS = 6, 8


def make_blob_descriptors(n_per_blob, seed):
    """Two groups of descriptors whose mass sits in opposite bins, plus an index.

    ``group`` defines the blobs; ``parity`` alternates inside each group and is
    therefore independent of it; ``rate`` is a float that grows with the group.
    """
    rng = np.random.default_rng(seed)
    concentration = np.ones(N_BINS)
    low, high = concentration.copy(), concentration.copy()
    low[1], high[-2] = 40.0, 40.0
    descriptors = np.concatenate(
        [
            rng.dirichlet(low, size=(n_per_blob, N_WINDOWS)),
            rng.dirichlet(high, size=(n_per_blob, N_WINDOWS)),
        ]
    )  # (2 * n_per_blob, S, B)
    group = np.repeat(["low", "high"], n_per_blob)
    index = pd.DataFrame(
        {
            "model_id": [f"m{i:03d}" for i in range(2 * n_per_blob)],
            "group": group,
            "parity": np.tile(["even", "odd"], n_per_blob),
            "rate": np.where(group == "low", 1e-3, 1e-2)
            * rng.uniform(1, 2, 2 * n_per_blob),
        }
    )
    return descriptors, index


@pytest.mark.parametrize("transform", ["sqrt", "log", "none"])
@pytest.mark.parametrize("n_components", [None, 5, 500])
def test_descriptor_features_shape(transform, n_components):
    descriptors, _ = make_blob_descriptors(10, seed=0)
    features = descriptor_features(
        descriptors, transform=transform, n_components=n_components
    )
    n_expected = N_WINDOWS * N_BINS if n_components is None else min(n_components, 20)
    assert features.shape == (20, n_expected)
    assert np.all(np.isfinite(features))


@pytest.mark.parametrize("seed", [0, 1])
def test_sqrt_features_give_hellinger_distance(seed):
    descriptors, _ = make_blob_descriptors(2, seed=seed)
    features = descriptor_features(descriptors, n_components=None)
    first, second = descriptors[0], descriptors[1]
    hellinger_squared = np.sum((np.sqrt(first) - np.sqrt(second)) ** 2)
    distance = np.linalg.norm(features[0] - features[1])
    np.testing.assert_allclose(distance**2, hellinger_squared, rtol=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_pca_keeps_distances_when_all_components_are_kept(seed):
    descriptors, _ = make_blob_descriptors(5, seed=seed)
    flat = descriptor_features(descriptors, n_components=None)
    reduced = descriptor_features(descriptors, n_components=10)
    np.testing.assert_allclose(
        np.linalg.norm(flat[0] - flat[7]), np.linalg.norm(reduced[0] - reduced[7])
    )


@pytest.mark.parametrize("method", ["hdbscan", "hdbscan-leaf", "ward"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cluster_finds_two_blobs(method, seed):
    descriptors, index = make_blob_descriptors(15, seed=seed)
    if method == "ward":
        labels = cluster(descriptors, method="ward", n_clusters=2)
    else:
        selection = "leaf" if method == "hdbscan-leaf" else "eom"
        labels = cluster(descriptors, selection=selection, min_cluster_size=8)
    assert sorted(np.unique(labels)) == [0, 1]
    table = explain_clusters(labels, index, ["group", "parity", "rate"])
    assert table.loc["group", "ami"] == pytest.approx(1.0)
    assert table.loc["group", "homogeneity"] == pytest.approx(1.0)
    assert table.loc["rate", "homogeneity"] < 1.0
    assert abs(table.loc["parity", "ami"]) < 0.1


@pytest.mark.parametrize("seed", [0, 1])
def test_cluster_numbers_clusters_by_size(seed):
    descriptors, _ = make_blob_descriptors(12, seed=seed)
    labels = cluster(descriptors[3:], method="ward", n_clusters=2)
    assert np.sum(labels == 0) > np.sum(labels == 1)


@pytest.mark.parametrize("seed", [0, 3])
def test_embed_is_deterministic_and_separates_blobs(seed):
    descriptors, index = make_blob_descriptors(15, seed=seed)
    first = embed(descriptors, random_state=seed, perplexity=8.0, max_iter=500)
    second = embed(descriptors, random_state=seed, perplexity=8.0, max_iter=500)
    assert first.shape == (30, 2)
    np.testing.assert_array_equal(first, second)

    distances = np.linalg.norm(first[:, None] - first[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    nearest = distances.argmin(axis=1)
    groups = index["group"].to_numpy()
    assert np.all(groups[nearest] == groups)


def test_embed_accepts_a_generator():
    descriptors, _ = make_blob_descriptors(8, seed=0)
    coordinates = embed(
        descriptors, random_state=np.random.default_rng(0), perplexity=5.0, max_iter=250
    )
    assert coordinates.shape == (16, 2)


def test_explain_clusters_excludes_noise_unless_asked():
    index = pd.DataFrame({"group": ["a", "a", "b", "b", "a", "b"]})
    labels = np.array([0, 0, 1, 1, -1, -1])
    without_noise = explain_clusters(labels, index, ["group"])
    with_noise = explain_clusters(labels, index, ["group"], include_noise=True)
    assert without_noise.loc["group", "n_models"] == 4
    assert without_noise.loc["group", "ami"] == pytest.approx(1.0)
    assert with_noise.loc["group", "n_models"] == 6
    assert with_noise.loc["group", "ami"] < 1.0


@pytest.mark.parametrize("normalize", [True, False])
def test_cluster_composition_rows(normalize):
    _, index = make_blob_descriptors(6, seed=0)
    labels = np.array([0] * 6 + [1] * 4 + [-1] * 2)
    table = cluster_composition(labels, index, "group", normalize=normalize)
    assert table.index.tolist() == [-1, 0, 1]
    expected = [1.0, 1.0, 1.0] if normalize else [2, 6, 4]
    np.testing.assert_allclose(table.sum(axis=1), expected)
    assert table.loc[0, "low"] == (1.0 if normalize else 6)


def test_cluster_summary_names_the_majority():
    _, index = make_blob_descriptors(4, seed=0)
    labels = np.array([0, 0, 0, 1, 1, 1, 1, -1])
    summary = cluster_summary(labels, index, ["group", "parity"])
    assert summary.index.tolist() == [-1, 0, 1]
    assert summary["n_models"].tolist() == [1, 3, 4]
    assert summary.loc[0, "group"] == "low (100 %)"
    assert summary.loc[1, "group"] == "high (75 %)"
    assert summary.loc[1, "parity"] == "even (50 %)"


def test_describe_clusters_names_shared_values_with_their_library_share():
    _, index = make_blob_descriptors(4, seed=0)
    labels = np.array([0, 0, 0, 1, 1, 1, 1, -1])
    lines = describe_clusters(labels, index, ["group", "parity"])
    assert lines.index.tolist() == [-1, 0, 1]
    assert lines[0] == (
        "cluster 0 (3 models): group low 100 % (overall 50 %); "
        "parity even 67 % (overall 50 %)"
    )
    # A 50 % share reaches the default threshold of one half.
    assert lines[1] == (
        "cluster 1 (4 models): group high 75 % (overall 50 %); "
        "parity even 50 % (overall 50 %); parity odd 50 % (overall 50 %)"
    )
    assert lines[-1].startswith("noise (1 models): group high 100 %")
    strict = describe_clusters(labels, index, ["parity"], min_share=0.9)
    assert strict[1] == "cluster 1 (4 models): no value reaches 90 %"


@pytest.mark.parametrize("seed", [0, 1])
def test_describe_clusters_names_quantiles_of_floats(seed):
    _, index = make_blob_descriptors(8, seed=seed)
    labels = np.repeat([0, 1], 8)  # the blobs: low rates, then high rates
    lines = describe_clusters(labels, index, ["rate"], n_bins=2)
    assert "rate Q1 " in lines[0] and "100 % (overall 50 %)" in lines[0]
    assert "rate Q2 " in lines[1]


def test_quantile_labels_sort_in_bin_order():
    values = np.random.default_rng(0).uniform(1e-4, 5e-3, size=40)
    labels = quantile_labels(values)
    assert sorted(set(labels))[0].startswith("Q1 ")
    assert len(set(labels)) == 4
    assert pd.Series(labels).value_counts().tolist() == [10] * 4
    lowest = labels[np.argmin(values)]
    assert lowest.startswith("Q1 ") and lowest.split()[1].startswith(
        f"{values.min():.4g}-"
    )


@pytest.mark.parametrize("n_top", [1, 2])
def test_top_values_lumps_rare_values(n_top):
    values = ["fixed"] * 5 + ["wide"] * 3 + ["deep", "tiny"]
    kept = top_values(values, n_top=n_top, other="rest")
    expected = {"fixed", "rest"} if n_top == 1 else {"fixed", "wide", "rest"}
    assert set(kept) == expected
    assert (kept == "rest").sum() == (5 if n_top == 1 else 2)


@pytest.mark.parametrize("seed", [0, 1])
def test_cluster_means_match_manual_means(seed):
    descriptors, _ = make_blob_descriptors(5, seed=seed)
    labels = np.array([0, 0, 0, 1, 1, -1, 1, 1, 0, 0])
    clusters, means = cluster_means(descriptors, labels)
    assert clusters.tolist() == [0, 1]
    np.testing.assert_allclose(means[1], descriptors[[3, 4, 6, 7]].mean(axis=0))
    np.testing.assert_allclose(means.sum(axis=2), 1.0)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n_neighbors", [1, 4])
def test_place_new_lands_among_its_own_blob(seed, n_neighbors):
    descriptors, index = make_blob_descriptors(10, seed=seed)
    coordinates = np.where(
        (index["group"] == "low").to_numpy()[:, None], -10.0, 10.0
    ) + np.random.default_rng(seed).normal(size=(20, 2))
    new_descriptors, _ = make_blob_descriptors(3, seed=seed + 100)
    new_coordinates, neighbors, distances = place_new(
        descriptors, coordinates, new_descriptors, n_neighbors=n_neighbors
    )
    assert new_coordinates.shape == (6, 2)
    assert neighbors.shape == distances.shape == (6, n_neighbors)
    assert np.all(neighbors[:3] < 10) and np.all(neighbors[3:] >= 10)
    assert np.all(np.diff(distances, axis=1) >= 0)
    assert np.all(new_coordinates[:3] < 0) and np.all(new_coordinates[3:] > 0)


def test_place_new_positions():
    descriptors, _ = make_blob_descriptors(5, seed=0)
    coordinates = np.zeros((10, 2))
    coordinates[[1, 3, 4]] = [[10.0, 0.0], [10.5, 0.0], [0.0, 20.0]]
    # Neighbours of model 3, closest first, are 3 and then others of its blob.
    _, neighbors, _ = place_new(descriptors, coordinates, descriptors[[3]])
    points = coordinates[neighbors[0]]
    by_position = {
        position: place_new(
            descriptors, coordinates, descriptors[[3]], position=position
        )[0][0]
        for position in ["medoid", "mean", "nearest"]
    }
    np.testing.assert_array_equal(by_position["nearest"], [10.5, 0.0])
    np.testing.assert_allclose(by_position["mean"], points.mean(axis=0))
    spread = np.linalg.norm(points[:, None] - points[None], axis=-1).sum(axis=1)
    np.testing.assert_array_equal(by_position["medoid"], points[spread.argmin()])
    assert any(np.array_equal(by_position["medoid"], point) for point in points)


def test_place_new_finds_an_exact_copy():
    descriptors, _ = make_blob_descriptors(5, seed=0)
    coordinates = np.arange(20, dtype=float).reshape(10, 2)
    new_coordinates, neighbors, distances = place_new(
        descriptors, coordinates, descriptors[[7]], n_neighbors=1
    )
    assert neighbors.tolist() == [[7]]
    assert distances[0, 0] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_array_equal(new_coordinates, coordinates[[7]])


def test_neighbor_table_lists_neighbours_in_order():
    _, index = make_blob_descriptors(3, seed=0)
    neighbors = np.array([[4, 0, 2], [1, 5, 3]])
    distances = np.array([[0.1, 0.2, 0.3], [0.0, 0.5, 0.6]])
    table = neighbor_table(index, neighbors, distances, ["model_id", "group"])
    assert table.index.names == ["model", "rank"]
    assert table.loc["new 0", "model_id"].tolist() == ["m004", "m000", "m002"]
    assert table.loc["new 1", "distance"].tolist() == [0.0, 0.5, 0.6]
    assert table.columns.tolist() == ["distance", "model_id", "group"]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n_neighbors", [1, 5])
def test_neighbor_agreement_separates_defining_from_independent(seed, n_neighbors):
    descriptors, index = make_blob_descriptors(12, seed=seed)
    table = neighbor_agreement(
        descriptors, index, ["group", "parity", "model_id"], n_neighbors=n_neighbors
    )
    assert table.loc["group", "agreement"] == pytest.approx(1.0)
    assert table.loc["group", "chance"] == pytest.approx(11 / 23)
    assert table.loc["parity", "lift"] < 1.6
    assert table.loc["model_id", "chance"] == 0.0
    assert np.isnan(table.loc["model_id", "lift"])


@pytest.mark.parametrize(
    ("ami", "lift", "verdict"),
    [
        (0.5, 0.5, "explains clusters"),
        (0.2, 1.0, "explains clusters"),
        (0.1, 1.5, "shapes neighbourhoods"),
        (0.1, 1.4, "at chance"),
        (-0.1, 0.6, "at chance"),
        (0.0, np.nan, "at chance"),
    ],
)
def test_judge_scores_applies_the_thresholds(ami, lift, verdict):
    scores = pd.DataFrame({"ami": [ami], "lift": [lift]}, index=["setting"])
    assert judge_scores(scores, min_ami=0.2, min_lift=1.5)["verdict"].item() == verdict


@pytest.mark.parametrize("seed", [0, 1])
def test_judge_scores_on_blobs(seed):
    descriptors, index = make_blob_descriptors(8, seed=seed)
    labels = cluster(descriptors, min_cluster_size=3, n_components=None)
    scores = explain_clusters(labels, index, ["group", "parity"]).join(
        neighbor_agreement(descriptors, index, ["group", "parity"], n_neighbors=3)
    )
    judged = judge_scores(scores)
    assert judged.index.tolist() == ["group", "parity"]
    assert judged["verdict"].tolist() == ["explains clusters", "at chance"]


def test_atlas_table_columns():
    descriptors, index = make_blob_descriptors(3, seed=0)
    labels = np.array([0, 0, 0, 1, 1, -1])
    table = atlas_table(index, np.ones((6, 2)), labels, ["group", "rate"])
    assert table.columns.tolist() == ["model_id", "x", "y", "cluster", "group", "rate"]
    assert table["cluster"].tolist() == labels.tolist()


@pytest.mark.parametrize("noise_value", [None, -1])
def test_plot_atlas_draws_one_collection_per_category(noise_value):
    fig, ax = plt.subplots()
    returned = plot_atlas(
        np.zeros((5, 2)), [0, 1, 1, -1, 10], ax=ax, noise_value=noise_value
    )
    assert returned is ax
    assert len(ax.collections) == 4
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    expected = (
        ["noise", "0", "1", "10"] if noise_value == -1 else ["-1", "0", "1", "10"]
    )
    assert labels == expected
    plt.close(fig)


@pytest.mark.parametrize("legend", ["inside", "below", None])
def test_plot_atlas_places_or_omits_the_legend(legend):
    fig, ax = plt.subplots()
    plot_atlas(np.arange(8.0).reshape(4, 2), ["a", "b", "a", "c"], ax=ax, legend=legend)
    if legend is None:
        assert ax.get_legend() is None
    else:
        box = ax.get_legend().get_window_extent()
        below = box.y1 <= ax.get_window_extent().y0 + 1
        assert below == (legend == "below")
    plt.close(fig)


@pytest.mark.parametrize(
    ("labels", "n_columns"),
    [(["a", "b", "c"], 2), (["a", "conv8-16-32_k5_fc128-64"], 1)],
)
def test_plot_atlas_below_puts_long_labels_one_per_line(labels, n_columns):
    fig, ax = plt.subplots()
    plot_atlas(np.zeros((len(labels), 2)), labels, ax=ax, legend="below")
    fig.canvas.draw()
    texts = ax.get_legend().get_texts()
    assert len({round(text.get_window_extent().x0) for text in texts}) == n_columns
    plt.close(fig)


@pytest.mark.parametrize(("n_panels", "n_columns"), [(4, 2), (5, 2), (6, 3), (3, 5)])
def test_plot_atlas_grid_draws_one_panel_per_colouring(n_panels, n_columns):
    """Regression (issue 8): the 2 x 5 atlas was unreadable in the text column."""
    coordinates = np.random.default_rng(n_panels).normal(size=(6, 2))  # (6, 2)
    panels = {f"setting {k}": ["a", "b", "c"] * 2 for k in range(n_panels)}
    panels["cluster"] = [0, 0, 1, 1, -1, -1]
    fig, axes = plot_atlas_grid(
        coordinates, panels, n_columns=n_columns, noise_values={"cluster": -1}
    )
    n_rows = -(-(n_panels + 1) // n_columns)
    assert axes.shape == (n_rows, n_columns)
    shown = [ax for ax in axes.flat if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == list(panels)
    assert fig.get_figwidth() == pytest.approx(3.2 * n_columns)
    legend = [text.get_text() for text in shown[-1].get_legend().get_texts()]
    assert legend == ["noise", "0", "1"]
    assert all(ax.get_xlabel() == "" for ax in shown)
    plt.close(fig)


def make_error_cases():
    """(callable, exception, message) triples for every error path."""
    descriptors, index = make_blob_descriptors(3, seed=0)
    labels = np.array([0, 0, 0, 1, 1, 1])
    coordinates = np.zeros((6, 2))
    return [
        (lambda: descriptor_features(descriptors.tolist()), TypeError, "numpy array"),
        (lambda: descriptor_features(descriptors[0]), ValueError, "shape"),
        (lambda: descriptor_features(-descriptors), ValueError, "non-negative"),
        (
            lambda: descriptor_features(descriptors, transform="exp"),
            ValueError,
            "transform",
        ),
        (
            lambda: descriptor_features(descriptors, n_components=0),
            ValueError,
            "n_components",
        ),
        (
            lambda: embed(descriptors, random_state=0, perplexity=6),
            ValueError,
            "perplexity",
        ),
        (
            lambda: embed(descriptors, random_state=0, perplexity=2, max_iter=10),
            ValueError,
            "max_iter",
        ),
        (
            lambda: embed(descriptors, random_state="0", perplexity=2),
            TypeError,
            "random_state",
        ),
        (lambda: cluster(descriptors, method="kmeans"), ValueError, "method"),
        (lambda: cluster(descriptors, n_clusters=2), ValueError, "n_clusters"),
        (
            lambda: cluster(descriptors, min_cluster_size=1),
            ValueError,
            "min_cluster_size",
        ),
        (lambda: cluster(descriptors, selection="top"), ValueError, "selection"),
        (
            lambda: place_new(descriptors, coordinates, descriptors, position="x"),
            ValueError,
            "position",
        ),
        (lambda: cluster(descriptors, method="ward"), ValueError, "n_clusters"),
        (
            lambda: cluster(descriptors, method="ward", n_clusters=7),
            ValueError,
            "n_clusters",
        ),
        (
            lambda: explain_clusters(labels * 1.0, index, ["group"]),
            ValueError,
            "labels",
        ),
        (lambda: explain_clusters(labels[:4], index, ["group"]), ValueError, "index"),
        (lambda: explain_clusters(labels, index, ["size"]), ValueError, "columns"),
        (lambda: explain_clusters(labels, index, []), ValueError, "columns"),
        (
            lambda: explain_clusters(labels, index, ["group"], n_bins=0),
            ValueError,
            "n_bins",
        ),
        (
            lambda: explain_clusters(labels * 0 - 1, index, ["group"]),
            ValueError,
            "noise",
        ),
        (lambda: cluster_composition(labels, index, "size"), ValueError, "column"),
        (lambda: cluster_means(descriptors, labels[:5]), ValueError, "labels"),
        (
            lambda: place_new(descriptors, coordinates, descriptors[:, :2]),
            ValueError,
            "S x B",
        ),
        (
            lambda: place_new(descriptors, coordinates[:5], descriptors),
            ValueError,
            "coordinates",
        ),
        (
            lambda: place_new(descriptors, coordinates, descriptors, n_neighbors=7),
            ValueError,
            "n_neighbors",
        ),
        (
            lambda: atlas_table(index, coordinates, labels, ["size"]),
            ValueError,
            "missing",
        ),
        (
            lambda: neighbor_table(index, labels[:, None], labels, []),
            ValueError,
            "shape",
        ),
        (
            lambda: neighbor_table(index, coordinates, coordinates, [], names=["a"]),
            ValueError,
            "names",
        ),
        (
            lambda: neighbor_table(index, coordinates, coordinates, ["size"]),
            ValueError,
            "missing",
        ),
        (
            lambda: cluster_means(descriptors, labels * 0 - 1),
            ValueError,
            "noise",
        ),
        (
            lambda: cluster_summary(labels, index, ["size"]),
            ValueError,
            "missing",
        ),
        (
            lambda: neighbor_agreement(descriptors, index, ["size"]),
            ValueError,
            "columns",
        ),
        (
            lambda: neighbor_agreement(descriptors, index, ["group"], n_neighbors=6),
            ValueError,
            "n_neighbors",
        ),
        (
            lambda: neighbor_agreement(descriptors[:5], index, ["group"]),
            ValueError,
            "index",
        ),
        (
            lambda: atlas_table(index, coordinates[:, :1], labels, []),
            ValueError,
            "coordinates",
        ),
        (lambda: plot_atlas(coordinates, ["a"]), ValueError, "coordinates"),
        (
            lambda: plot_atlas(coordinates, ["a"] * 6, legend="right"),
            ValueError,
            "legend='right' is not valid",
        ),
        (lambda: plot_atlas_grid(coordinates, {}), ValueError, "panels is empty"),
        (
            lambda: plot_atlas_grid(coordinates, {"a": ["a"] * 6}, n_columns=0),
            ValueError,
            "n_columns=0 is not valid",
        ),
        (
            lambda: judge_scores(pd.DataFrame({"ami": [0.1]})),
            ValueError,
            "lift",
        ),
        (
            lambda: judge_scores(
                pd.DataFrame({"ami": [0.1], "lift": [1.0]}), min_ami=2
            ),
            ValueError,
            "min_ami",
        ),
        (
            lambda: judge_scores(
                pd.DataFrame({"ami": [0.1], "lift": [1.0]}), min_lift=0
            ),
            ValueError,
            "min_lift",
        ),
        (
            lambda: describe_clusters(labels, index, ["group"], min_share=0),
            ValueError,
            "min_share=0 is not valid",
        ),
        (
            lambda: describe_clusters(labels, index, ["size"]),
            ValueError,
            "missing",
        ),
        (lambda: quantile_labels([1.0, np.nan]), ValueError, "finite"),
        (lambda: quantile_labels([1.0, 2.0], n_bins=0), ValueError, "n_bins"),
        (lambda: top_values(["a"], n_top=0), ValueError, "n_top"),
    ]


@pytest.mark.parametrize("case", range(len(make_error_cases())))
def test_error_paths(case):
    function, exception, message = make_error_cases()[case]
    with pytest.raises(exception, match=message):
        function()
