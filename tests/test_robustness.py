"""Tests of wdcore.robustness: the intra/inter ratio and the informativeness probe."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.decomposition import PCA
from torch import nn

from wdcore.descriptors import layer_sizes, weight_vector
from wdcore.permutations import permute_state_dict
from wdcore.robustness import (
    REPRESENTATIONS,
    OutputChangeError,
    UndefinedRatioWarning,
    apply_representations,
    compare_choices,
    compare_with_paper,
    findings_by_group,
    fit_representations,
    informativeness,
    informativeness_table,
    intra_inter_distances,
    intra_inter_ratio,
    load_paper_table,
    measure_output_change,
    merge_with_paper,
    permute_models,
    plot_tradeoff,
    ratio_by_group,
    ratio_table,
    read_informativeness,
)


def make_representations(n_models=30, n_perms=4, dim=8, *, noise=0.0, seed=0):
    """Models far apart, each with copies at Gaussian distance ``noise``."""
    rng = np.random.default_rng(seed)
    original = rng.normal(size=(n_models, dim))
    permuted = original[:, None, :] + noise * rng.normal(size=(n_models, n_perms, dim))
    return original, permuted


def make_table(ratios):
    """A long ratio table from a {representation: {dim: ratio}} dict."""
    rows = [
        (name, dim, ratio)
        for name, by_dim in ratios.items()
        for dim, ratio in by_dim.items()
    ]
    return pd.DataFrame(rows, columns=["representation", "dim", "ratio"])


# intra_inter_ratio ---------------------------------------------------------------


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("seed", [0, 1])
def test_identical_copies_give_zero(metric, seed):
    original, permuted = make_representations(seed=seed)
    assert intra_inter_ratio(original, permuted, metric=metric) == 0.0


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_independent_of_the_model_gives_about_one(metric, seed):
    # Copies drawn from the same distribution as other models are as far from
    # their model as other models are.
    rng = np.random.default_rng(seed)
    original = rng.normal(size=(200, 32))
    permuted = rng.normal(size=(200, 5, 32))
    assert intra_inter_ratio(original, permuted, metric=metric) == pytest.approx(
        1.0, abs=0.03
    )


@pytest.mark.parametrize("noise", [0.01, 0.1, 0.5])
def test_ratio_grows_with_the_distance_of_the_copies(noise):
    original, permuted = make_representations(noise=noise, seed=3)
    smaller = intra_inter_ratio(
        original, make_representations(noise=noise / 2, seed=3)[1]
    )
    ratio = intra_inter_ratio(original, permuted)
    assert 0 < smaller < ratio < 1


def test_per_model_ratios_match_a_hand_computation():
    original = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    permuted = np.stack([original + [1.0, 0.0], original - [0.0, 2.0]], axis=1)
    # Model 0: intra (1 + 2) / 2 = 1.5, inter (5 + 10) / 2 = 7.5.
    expected = [1.5 / 7.5, 1.5 / 5.0, 1.5 / 7.5]
    ratios = intra_inter_ratio(original, permuted, average=False)
    np.testing.assert_allclose(ratios, expected)
    assert intra_inter_ratio(original, permuted) == pytest.approx(np.mean(expected))


@pytest.mark.parametrize("seed", [0, 1])
def test_intra_and_inter_distances_make_up_the_ratio(seed):
    original, permuted = make_representations(noise=0.2, seed=seed)
    intra, inter = intra_inter_distances(original, permuted)
    ratios = intra_inter_ratio(original, permuted, average=False)
    np.testing.assert_allclose(intra / inter, ratios)
    others = np.linalg.norm(original[0] - original[1:], axis=1).mean()
    assert inter[0] == pytest.approx(others)
    copies = np.linalg.norm(permuted[0] - original[0], axis=1).mean()
    assert intra[0] == pytest.approx(copies)


@pytest.mark.parametrize("scale", [1e-3, 7.0])
def test_ratio_does_not_depend_on_the_scale(scale):
    original, permuted = make_representations(noise=0.2, seed=4)
    assert intra_inter_ratio(scale * original, scale * permuted) == pytest.approx(
        intra_inter_ratio(original, permuted)
    )


def test_cosine_ignores_the_length_of_each_vector():
    original, permuted = make_representations(noise=0.2, seed=5)
    lengths = np.random.default_rng(5).uniform(0.5, 2.0, size=permuted.shape[:2])
    assert intra_inter_ratio(
        original, permuted * lengths[..., None], metric="cosine"
    ) == pytest.approx(intra_inter_ratio(original, permuted, metric="cosine"))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_constant_representation_warns_and_gives_nan(metric):
    original = np.ones((4, 3))
    permuted = np.ones((4, 2, 3))
    with pytest.warns(UndefinedRatioWarning, match="4 of 4 models have inter"):
        ratio = intra_inter_ratio(original, permuted, metric=metric)
    assert np.isnan(ratio)


def test_copies_that_move_do_not_hide_a_constant_representation():
    # Inter distances vanish only when all models coincide; the ratio is then
    # undefined even if the permuted copies differ.
    original = np.zeros((3, 1))
    permuted = np.array([[[0.0]], [[1.0]], [[0.0]]])
    with pytest.warns(UndefinedRatioWarning, match="3 of 3"):
        ratios = intra_inter_ratio(original, permuted, average=False)
    assert np.isnan(ratios).all()


@pytest.mark.parametrize(
    ("original", "permuted", "kwargs", "match"),
    [
        (np.ones((3, 2)), np.ones((3, 1, 2)), {"metric": "l1"}, "metric='l1'"),
        (np.ones(3), np.ones((3, 1, 1)), {}, r"original has shape \(3,\)"),
        (np.ones((1, 2)), np.ones((1, 1, 2)), {}, "n_models >= 2"),
        (np.ones((3, 2)), np.ones((3, 2)), {}, r"permuted has shape \(3, 2\)"),
        (np.ones((3, 2)), np.ones((4, 1, 2)), {}, r"permuted has shape \(4, 1, 2\)"),
        (np.ones((3, 2)), np.ones((3, 1, 5)), {}, r"= \(3, n_perms >= 1, 2\)"),
        (np.ones((3, 2)), np.ones((3, 0, 2)), {}, r"permuted has shape \(3, 0, 2\)"),
        (np.full((3, 2), np.nan), np.ones((3, 1, 2)), {}, "finite values"),
        (np.ones((3, 2)), np.full((3, 1, 2), np.inf), {}, "finite values"),
        (np.zeros((3, 2)), np.ones((3, 1, 2)), {"metric": "cosine"}, "nonzero"),
        (np.ones((3, 2)), np.zeros((3, 1, 2)), {"metric": "cosine"}, "nonzero"),
    ],
)
def test_intra_inter_ratio_rejects_bad_input(original, permuted, kwargs, match):
    with pytest.raises(ValueError, match=match):
        intra_inter_ratio(original, permuted, **kwargs)


# measure_output_change -----------------------------------------------------------


def make_cnn(seed):
    """A tiny CNN with BatchNorm and a Flatten, with non-trivial statistics."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 6),
        nn.Tanh(),
        nn.Linear(6, 3),
    )
    model(torch.randn(8, 1, 6, 6))  # updates the running statistics
    return model


@pytest.mark.parametrize("seed", [0, 1])
def test_permuted_copies_leave_outputs_unchanged(seed):
    model = make_cnn(seed)
    copies = [
        permute_state_dict(model.state_dict(), model, random_state=seed + k)
        for k in range(3)
    ]
    inputs = torch.randn(5, 1, 6, 6, generator=torch.Generator().manual_seed(seed))
    changes = measure_output_change(model, copies, inputs)
    assert changes.shape == (3,)
    assert changes.max() < 1e-5
    assert model.training, "the model's mode must not change"


def test_float64_check_separates_rounding_from_errors():
    """Large weights make float32 rounding visible; float64 shows it is rounding."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(16, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, 4),
    )  # fmt: skip
    for parameter in model.parameters():
        nn.init.normal_(parameter, std=1.0)
    copies = [permute_state_dict(model.state_dict(), model, random_state=0)]
    inputs = torch.randn(32, 16, generator=torch.Generator().manual_seed(1))
    in_float32 = measure_output_change(model, copies, inputs, dtype=torch.float32)
    in_float64 = measure_output_change(model, copies, inputs)
    assert 0 < in_float32[0] < 1e-3
    assert in_float64[0] < 1e-12
    assert model[0].weight.dtype == torch.float32, "the model must not be cast"


@pytest.mark.parametrize("dtype", [torch.int64, "float64", None])
def test_measure_output_change_rejects_a_bad_dtype(dtype):
    model = make_cnn(0)
    with pytest.raises(ValueError, match="expected a floating-point torch.dtype"):
        measure_output_change(
            model, [model.state_dict()], torch.ones(2, 1, 6, 6), dtype=dtype
        )


def test_measure_output_change_restores_the_thread_count():
    model = make_cnn(0)
    before = torch.get_num_threads()
    measure_output_change(model, [model.state_dict()], torch.ones(2, 1, 6, 6))
    assert torch.get_num_threads() == before


def test_other_weights_change_outputs():
    model, other = make_cnn(0), make_cnn(1)
    inputs = torch.randn(5, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    changes = measure_output_change(model, [other.state_dict()], inputs)
    assert changes[0] > 1e-2
    assert torch.equal(model[0].weight, make_cnn(0)[0].weight)


@pytest.mark.parametrize(
    ("n_copies", "zero", "match"),
    [(0, False, "state_dicts is empty"), (1, True, "outputs on inputs are all zero")],
)
def test_measure_output_change_rejects_bad_input(n_copies, zero, match):
    model = make_cnn(0)
    if zero:
        nn.init.zeros_(model[-1].weight)
        nn.init.zeros_(model[-1].bias)
    inputs = torch.randn(2, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=match):
        measure_output_change(model, [model.state_dict()] * n_copies, inputs)


# permute_models, apply_representations, ratio_table --------------------------------


@pytest.mark.parametrize("n_permutations", [1, 3])
def test_permute_models_returns_permuted_weights_with_unchanged_outputs(n_permutations):
    models = [make_cnn(seed) for seed in range(3)]
    inputs = [torch.randn(4, 1, 6, 6, generator=torch.Generator().manual_seed(0))] * 3
    result = permute_models(
        models, inputs, n_permutations=n_permutations, random_state=0
    )
    n_weights = weight_vector(models[0]).size
    assert result.original.shape == (3, n_weights)
    assert result.permuted.shape == (3, n_permutations, n_weights)
    assert result.output_change.shape == (3, n_permutations)
    assert result.output_change.max() < 1e-5
    np.testing.assert_array_equal(result.original[1], weight_vector(models[1]))
    # A permutation keeps the multiset of weights but moves them.
    np.testing.assert_array_equal(
        np.sort(result.permuted[1, 0]), np.sort(result.original[1])
    )
    assert not np.array_equal(result.permuted[1, 0], result.original[1])


def test_permute_models_is_reproducible_with_a_seed():
    models, inputs = [make_cnn(0), make_cnn(1)], [torch.zeros(1, 1, 6, 6)] * 2
    first = permute_models(models, inputs, n_permutations=2, random_state=4)
    second = permute_models(models, inputs, n_permutations=2, random_state=4)
    np.testing.assert_array_equal(first.permuted, second.permuted)


@pytest.mark.parametrize(
    ("n_inputs", "n_permutations", "match"),
    [
        (1, 2, "got 2 models and 1 input batches"),
        (2, 0, "n_permutations=0 is not a positive int"),
        (2, 1.5, "n_permutations=1.5 is not a positive int"),
        (2, True, "n_permutations=True is not a positive int"),
    ],
)
def test_permute_models_rejects_bad_input(n_inputs, n_permutations, match):
    models = [make_cnn(0), make_cnn(1)]
    inputs = [torch.zeros(1, 1, 6, 6)] * n_inputs
    with pytest.raises(ValueError, match=match):
        permute_models(models, inputs, n_permutations=n_permutations)


def test_permute_models_checks_in_the_requested_dtype():
    models, inputs = [make_cnn(0), make_cnn(1)], [torch.randn(4, 1, 6, 6)] * 2
    in_float32 = permute_models(models, inputs, dtype=torch.float32, random_state=0)
    in_float64 = permute_models(models, inputs, random_state=0)
    np.testing.assert_array_equal(in_float32.permuted, in_float64.permuted)
    assert in_float64.output_change.max() < 1e-12
    assert in_float32.output_change.max() < 1e-5


def test_permute_models_stops_on_a_wrong_permutation(monkeypatch):
    """A copy whose outputs change (a broken permutation) stops the run."""
    import wdcore.permutations

    def check_broken_permutation(state_dict, spec, *, random_state):
        broken = dict(state_dict)
        broken["0.weight"] = state_dict["0.weight"].flip(0)  # moves a channel only
        return broken

    monkeypatch.setattr(
        wdcore.permutations, "permute_state_dict", check_broken_permutation
    )
    models, inputs = [make_cnn(0)], [torch.randn(4, 1, 6, 6)]
    result = permute_models(models, inputs, random_state=0)
    assert result.output_change.min() > 1e-3
    with pytest.raises(OutputChangeError, match="model 0 changed its outputs by"):
        permute_models(models, inputs, max_output_change=1e-9, random_state=0)


@pytest.mark.parametrize("tolerance", [-1e-9, "1e-9", True, np.nan])
def test_permute_models_rejects_a_bad_tolerance(tolerance):
    with pytest.raises(ValueError, match="max_output_change=.* is not valid"):
        permute_models(
            [make_cnn(0)], [torch.zeros(1, 1, 6, 6)], max_output_change=tolerance
        )


def test_permute_models_rejects_mixed_architectures():
    small = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    large = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match=r"lengths \[26, 50\]; expected one"):
        permute_models([small, large], [torch.ones(2, 3)] * 2, random_state=0)


def test_apply_representations_keeps_leading_shape():
    weights = np.random.default_rng(0).normal(size=(3, 2, 5))
    representations = {
        ("head", 2): lambda matrix: matrix[:, :2],
        ("norm", 1): lambda matrix: np.linalg.norm(matrix, axis=1, keepdims=True),
    }
    features = apply_representations(representations, weights)
    assert list(features) == [("head", 2), ("norm", 1)]
    np.testing.assert_array_equal(features[("head", 2)], weights[..., :2])
    assert features[("norm", 1)].shape == (3, 2, 1)


def test_apply_representations_rejects_a_wrong_dimension():
    with pytest.raises(ValueError, match=r"\('bad', 3\) returned shape \(4, 2\)"):
        apply_representations(
            {("bad", 3): lambda matrix: matrix[:, :2]}, np.ones((4, 5))
        )


def test_ratio_table_lists_every_representation():
    original, permuted = make_representations(noise=0.1, seed=0)
    table = ratio_table(
        {("a", 8): original, ("b", 8): permuted[:, 0]},
        {("a", 8): permuted, ("b", 8): permuted},
        metric="cosine",
    )
    assert table.representation.tolist() == ["a", "b"]
    assert table.ratio[0] == pytest.approx(
        intra_inter_ratio(original, permuted, metric="cosine")
    )


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_ratio_table_can_add_mean_intra_and_inter(metric):
    original, permuted = make_representations(noise=0.1, seed=2)
    table = ratio_table(
        {("a", 8): original}, {("a", 8): permuted}, metric=metric, distances=True
    )
    intra, inter = intra_inter_distances(original, permuted, metric=metric)
    assert table.columns.tolist() == [
        "representation",
        "dim",
        "ratio",
        "intra",
        "inter",
    ]
    assert table.intra[0] == pytest.approx(intra.mean())
    assert table.inter[0] == pytest.approx(inter.mean())


def test_ratio_table_rejects_different_keys():
    with pytest.raises(ValueError, match="expected the same keys"):
        ratio_table({("a", 1): np.ones((2, 1))}, {("b", 1): np.ones((2, 1, 1))})


def test_plot_tradeoff_draws_one_line_per_representation():
    import matplotlib

    matplotlib.use("Agg")
    ratios = make_table({"raw": {16: 0.5, 64: 0.4}, "pca": {16: 0.1}})
    scores = pd.DataFrame(
        {
            "representation": ["raw", "raw", "raw", "pca"],
            "dim": [16, 16, 64, 16],
            "accuracy": [0.5, 0.7, 0.6, 0.9],
            "chance": [0.3, 0.5, 0.4, 0.4],
        }
    )
    ax = plot_tradeoff(ratios, scores)
    raw = ax.get_lines()[0]
    np.testing.assert_allclose(raw.get_xdata(), [0.6, 0.6])
    np.testing.assert_allclose(raw.get_ydata(), [0.5, 0.4])
    assert len(ax.get_lines()) == 3  # raw, pca and the chance line
    matplotlib.pyplot.close(ax.figure)


def test_plot_tradeoff_labels_do_not_overlap():
    """Regression (issue 6): PCA "256" sat on random projection "64" in Fig. 4.1."""
    import matplotlib

    matplotlib.use("Agg")
    ratios = make_table(
        {
            "pca": {16: 0.06, 64: 0.116, 256: 0.147},
            "random_projection": {16: 0.203, 64: 0.19, 256: 0.178},
            "global_stats": {16: 0.0},
            "mi_wd_layer": {16: 0.0, 64: 0.0},
        }
    )
    accuracy = {
        ("pca", 16): 0.43, ("pca", 64): 0.45, ("pca", 256): 0.434,
        ("random_projection", 16): 0.395, ("random_projection", 64): 0.44,
        ("random_projection", 256): 0.463, ("global_stats", 16): 0.532,
        ("mi_wd_layer", 16): 0.463, ("mi_wd_layer", 64): 0.528,
    }  # fmt: skip
    scores = pd.DataFrame(
        [(name, dim, value, 0.34) for (name, dim), value in accuracy.items()],
        columns=["representation", "dim", "accuracy", "chance"],
    )
    fig, ax = matplotlib.pyplot.subplots(figsize=(7, 4.5))
    plot_tradeoff(ratios, scores, ax=ax)
    boxes = [text.get_window_extent() for text in ax.texts]
    assert len(boxes) == len(accuracy)
    for first in range(len(boxes)):
        for second in range(first + 1, len(boxes)):
            assert not boxes[first].overlaps(boxes[second])
    matplotlib.pyplot.close(fig)


def test_plot_tradeoff_needs_shared_representations():
    scores = pd.DataFrame(
        {"representation": ["pca"], "dim": [16], "accuracy": [0.5], "chance": [0.5]}
    )
    with pytest.raises(ValueError, match="share no"):
        plot_tradeoff(make_table({"raw": {16: 0.5}}), scores)


# fit_representations --------------------------------------------------------------


def make_snapshots(n_snapshots=20, seed=0):
    """Weight vectors of the tiny CNN (one per seed) and its tensor sizes."""
    models = [make_cnn(seed + index) for index in range(n_snapshots)]
    weights = np.stack([weight_vector(model) for model in models])
    return models, weights, layer_sizes(models[0])


def test_fit_representations_lists_every_representation_and_size():
    _, weights, sizes = make_snapshots()
    fitted = fit_representations(
        weights, dims=(64, 16), layer_sizes=sizes, value_range=1.0, random_state=0
    )
    assert list(fitted) == [
        ("global_stats", 16),
        ("raw", 16),
        ("raw", 64),
        ("pca", 16),
        ("random_projection", 16),
        ("random_projection", 64),
        ("mi_wd", 16),
        ("mi_wd", 64),
        ("mi_wd_layer", 16),
        ("mi_wd_layer", 64),
    ], "PCA stops at min(n_snapshots, n_weights) = 20"
    for (_, dim), represent in fitted.items():
        assert represent(weights[:3]).shape == (3, dim)


def test_pca_features_keep_the_leading_components_in_order():
    _, weights, sizes = make_snapshots()
    fitted = fit_representations(
        weights,
        dims=(4, 16),
        layer_sizes=sizes,
        value_range=1.0,
        names=["pca"],
        random_state=0,
    )
    small, large = fitted[("pca", 4)](weights), fitted[("pca", 16)](weights)
    np.testing.assert_allclose(small, large[:, :4], rtol=1e-5, atol=1e-6)
    # An exact PCA gives the same projections up to the sign of each component.
    exact = PCA(n_components=16, svd_solver="full").fit_transform(weights)
    np.testing.assert_allclose(np.abs(large), np.abs(exact), atol=1e-3)


@pytest.mark.parametrize("seed", [0, 1])
def test_layer_exact_and_order_free_representations_ignore_permutations(seed):
    models, weights, sizes = make_snapshots(n_snapshots=4, seed=seed)
    fitted = fit_representations(
        weights,
        dims=(16,),
        layer_sizes=sizes,
        value_range=0.5,
        names=["global_stats", "mi_wd_layer", "raw"],
        random_state=seed,
    )
    inputs = [torch.ones(1, 1, 6, 6)] * len(models)
    study = permute_models(models, inputs, n_permutations=2, random_state=seed)
    original = apply_representations(fitted, study.original)
    permuted = apply_representations(fitted, study.permuted)
    table = ratio_table(original, permuted).set_index("representation").ratio
    assert table["mi_wd_layer"] == 0.0
    assert table["global_stats"] < 1e-6
    assert table["raw"] > 0.1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"names": ["mi_wd", "histogram"]}, r"names=\['histogram'\] are unknown"),
        ({"dims": (16, 20)}, "dims holds 20; expected perfect squares"),
        ({"dims": (0,)}, "dims holds 0; expected positive ints"),
        ({"dims": (16.0,)}, "dims holds 16.0; expected positive ints"),
    ],
)
def test_fit_representations_rejects_bad_input(kwargs, match):
    _, weights, sizes = make_snapshots(n_snapshots=3)
    with pytest.raises(ValueError, match=match):
        fit_representations(weights, layer_sizes=sizes, value_range=1.0, **kwargs)


# informativeness -----------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_separable_features_are_fully_informative(n_classes, seed):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), 15)
    features = np.eye(n_classes)[labels] * 10 + rng.normal(
        size=(labels.size, n_classes)
    )
    score = informativeness(features, labels, random_state=seed)
    assert score.accuracy == 1.0
    assert score.chance == pytest.approx(1 / n_classes)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_features_score_near_chance(seed):
    rng = np.random.default_rng(seed)
    labels = rng.choice(["adam", "sgd", "rmsprop"], size=300, p=[0.5, 0.3, 0.2])
    score = informativeness(rng.normal(size=(300, 5)), labels, random_state=seed)
    assert score.chance == pytest.approx(np.mean(labels == "adam"))
    assert abs(score.accuracy - score.chance) < 0.1


def test_informativeness_is_reproducible_with_a_seed():
    rng = np.random.default_rng(2)
    features, labels = rng.normal(size=(60, 3)), rng.integers(0, 2, size=60)
    first = informativeness(features, labels, random_state=7)
    assert informativeness(features, labels, random_state=7) == first


@pytest.mark.parametrize(
    ("features", "labels", "cv", "match"),
    [
        (np.ones(10), np.arange(10) % 2, 5, r"features has shape \(10,\)"),
        (np.ones((10, 2)), np.arange(9) % 2, 5, r"labels \(9,\)"),
        (np.full((10, 2), np.nan), np.arange(10) % 2, 5, "finite values"),
        (np.ones((10, 2)), np.arange(10) % 2, 1, "cv=1 is not valid"),
        (np.ones((10, 2)), np.arange(10) % 2, True, "cv=True is not valid"),
        (np.ones((10, 2)), np.arange(10) % 2, 2.5, "cv=2.5 is not valid"),
        (np.ones((10, 2)), np.zeros(10), 5, "hold 1 class"),
        (np.ones((10, 2)), np.r_[np.zeros(7), np.ones(3)], 5, "smallest class"),
    ],
)
def test_informativeness_rejects_bad_input(features, labels, cv, match):
    with pytest.raises(ValueError, match=match):
        informativeness(features, labels, cv=cv)


def test_informativeness_table_scores_every_pair():
    rng = np.random.default_rng(0)
    targets = pd.DataFrame(
        {"optimizer": np.repeat(["adam", "sgd"], 20), "seed": rng.integers(0, 3, 40)}
    )
    separable = (targets.optimizer == "sgd").to_numpy(float)[:, None]
    representations = {("a", 1): separable, ("b", 4): rng.normal(size=(40, 4))}
    table = informativeness_table(representations, targets, random_state=0)
    assert table.shape == (4, 6)
    assert list(table.columns) == [
        "representation",
        "dim",
        "hyperparameter",
        "accuracy",
        "chance",
        "n_folds",
    ]
    row = table.query("representation == 'a' and hyperparameter == 'optimizer'")
    assert row.accuracy.item() == 1.0
    assert row.chance.item() == 0.5


def test_informativeness_table_adapts_folds_to_small_classes():
    targets = pd.DataFrame(
        {"three": list("aaabbbbbbb"), "single": list("abbbbbbbbb"), "one": ["a"] * 10}
    )
    features = {("x", 2): np.random.default_rng(0).normal(size=(10, 2))}
    table = informativeness_table(features, targets).set_index("hyperparameter")
    assert table.n_folds.to_dict() == {"three": 3, "single": 1, "one": 5}
    assert np.isfinite(table.accuracy["three"])
    assert np.isnan(table.accuracy["single"]) and np.isnan(table.accuracy["one"])
    assert table.chance["single"] == 0.9


@pytest.mark.parametrize(
    ("representations", "cv", "match"),
    [
        ({}, 5, "representations is empty"),
        ({("x", 1): np.ones((3, 1))}, 5, r"representations\[\('x', 1\)\] has 3 rows"),
        ({("x", 1): np.ones((10, 1))}, 1, "cv=1 is not valid"),
    ],
)
def test_informativeness_table_rejects_bad_input(representations, cv, match):
    targets = pd.DataFrame({"label": np.arange(10) % 2})
    with pytest.raises(ValueError, match=match):
        informativeness_table(representations, targets, cv=cv)


# the paper's table ---------------------------------------------------------------


def test_paper_table_is_the_supplements_table_1():
    paper = load_paper_table()
    assert list(paper.columns) == ["representation", "dim", "ratio"]
    assert set(paper.representation) <= set(REPRESENTATIONS)
    assert paper.groupby("representation").size().to_dict() == {
        "global_stats": 1,
        "mi_wd": 4,
        "pca": 4,
        "random_projection": 4,
        "raw": 4,
    }
    assert paper.ratio.between(0, 1).all()
    assert paper.set_index(["representation", "dim"]).ratio[("pca", 1024)] == 0.317


def test_merge_with_paper_keeps_our_rows_and_marks_missing_numbers():
    ours = make_table({"mi_wd_layer": {16: 0.0}, "raw": {1024: 0.4, 16: 0.5}})
    merged = merge_with_paper(ours, load_paper_table())
    assert list(merged.columns) == ["representation", "dim", "ratio", "paper_ratio"]
    assert merged.ratio.tolist() == [0.0, 0.4, 0.5]
    np.testing.assert_equal(merged.paper_ratio.to_numpy(), [np.nan, 0.247, 0.315])


@pytest.mark.parametrize("function", [merge_with_paper, compare_with_paper])
@pytest.mark.parametrize(
    ("table", "match"),
    [
        (pd.DataFrame({"representation": ["raw"], "dim": [16]}), "expected at least"),
        ([("raw", 16, 0.5)], "must be a DataFrame"),
        (make_table({"raw": {16: 0.5}}).pipe(lambda t: pd.concat([t, t])), "twice"),
    ],
)
def test_table_functions_reject_bad_tables(function, table, match):
    with pytest.raises(ValueError, match=match):
        function(table, load_paper_table())
    with pytest.raises(ValueError, match="^paper"):
        function(make_table({"raw": {16: 0.5}}), table)


def test_every_finding_holds_on_the_paper_itself():
    paper = load_paper_table()
    comparison = compare_with_paper(paper, paper)
    assert list(comparison.columns) == ["finding", "paper", "ours", "holds"]
    assert comparison.holds.tolist() == ["yes"] * len(comparison)
    assert (comparison.paper == comparison.ours).all()
    assert "0.024" in comparison.paper[0] and "0.049" in comparison.paper[0]


def test_findings_fail_on_a_reversed_table():
    paper = load_paper_table()
    reversed_table = paper.assign(ratio=1 - paper.ratio)
    comparison = compare_with_paper(reversed_table, paper)
    assert comparison.holds.tolist() == ["no"] * len(comparison)


def test_findings_use_the_sizes_a_table_has():
    ours = make_table(
        {
            "global_stats": {16: 0.0},
            "raw": {16: 0.5, 64: 0.5},
            "random_projection": {16: 0.6, 64: 0.6},
            "pca": {16: 0.1},
            "mi_wd": {16: 0.15, 64: 0.2},
            "mi_wd_layer": {16: 0.0},
        }
    )
    comparison = compare_with_paper(ours, load_paper_table()).set_index("finding")
    assert comparison.holds.tolist() == ["yes", "yes", "not checked", "no", "yes"]
    assert comparison.ours.iloc[2] == "fewer than two PCA sizes"
    assert "16: 0.150 vs 0.100; 64: 0.200 vs 0.500" == comparison.ours.iloc[3]


def make_scores(accuracies):
    """An informativeness table from a {(representation, dim): accuracy} dict."""
    rows = [
        (name, dim, hyperparameter, accuracy, 0.3)
        for (name, dim), accuracy in accuracies.items()
        for hyperparameter in ("optimizer", "dataset")
    ]
    columns = ["representation", "dim", "hyperparameter", "accuracy", "chance"]
    return pd.DataFrame(rows, columns=columns)


@pytest.mark.parametrize(
    ("accuracies", "holds"),
    [
        ({("global_stats", 16): 0.5, ("mi_wd", 16): 0.4, ("mi_wd", 64): 0.7}, "yes"),
        ({("global_stats", 16): 0.8, ("mi_wd", 16): 0.4, ("mi_wd", 64): 0.7}, "no"),
        ({("global_stats", 16): 0.5, ("mi_wd", 64): 0.52}, "inconclusive"),
        ({("global_stats", 16): 0.8, ("raw", 16): 0.4}, "not checked"),
    ],
)
def test_informativeness_finding_compares_global_stats_with_mi_wd(accuracies, holds):
    paper = load_paper_table()
    comparison = compare_with_paper(paper, paper, scores=make_scores(accuracies))
    best = comparison.iloc[-2]
    assert len(comparison) == 7
    assert best.finding == (
        "Global statistics carry less information than MI-WD at its best size"
    )
    assert best.paper == "stated without numbers"
    assert best.holds == holds
    if holds != "not checked":
        assert "dims); chance 0.30; margin 0.05" in best.ours


@pytest.mark.parametrize(
    ("accuracies", "holds"),
    [
        ({("global_stats", 16): 0.5, ("mi_wd", 16): 0.4, ("mi_wd", 64): 0.7}, "no"),
        ({("global_stats", 16): 0.4, ("mi_wd", 16): 0.5, ("mi_wd", 64): 0.3}, "yes"),
        ({("global_stats", 16): 0.5, ("mi_wd", 16): 0.52}, "inconclusive"),
        ({("global_stats", 16): 0.5, ("mi_wd", 64): 0.9}, "not checked"),
    ],
)
def test_informativeness_finding_at_equal_size(accuracies, holds):
    """Global statistics against MI-WD with as many numbers (16), not its best."""
    paper = load_paper_table()
    last = compare_with_paper(paper, paper, scores=make_scores(accuracies)).iloc[-1]
    assert last.finding == (
        "Global statistics carry less information than MI-WD of equal size"
    )
    assert last.holds == holds
    if holds == "not checked":
        assert last.ours == "mi_wd was not scored at 16 dims"
    else:
        assert "(16 dims)" in last.ours


@pytest.mark.parametrize(
    ("stats", "mi_wd", "holds"),
    [
        (0.23, 0.38, "inconclusive"),  # the quick-mode case of the issue
        (0.45, 0.40, "inconclusive"),
        (0.23, 0.50, "yes"),
        (0.50, 0.40, "no"),
    ],
)
def test_informativeness_finding_needs_mi_wd_above_chance(stats, mi_wd, holds):
    """Regression: below-chance scores made the remark hold (quick chapter 4)."""
    scores = make_scores({("global_stats", 16): stats, ("mi_wd", 1024): mi_wd})
    scores["chance"] = 0.43
    paper = load_paper_table()
    last = compare_with_paper(paper, paper, scores=scores).iloc[-2]
    assert last.holds == holds
    if max(stats, mi_wd) < 0.48:
        assert last.ours.endswith("neither beats chance")


def test_informativeness_finding_ignores_skipped_hyperparameters():
    scores = make_scores({("global_stats", 16): 0.3, ("mi_wd", 64): 0.9})
    skipped = scores[scores.hyperparameter == "dataset"].assign(
        accuracy=np.nan, chance=0.99
    )
    scores = pd.concat([scores[scores.hyperparameter != "dataset"], skipped])
    paper = load_paper_table()
    last = compare_with_paper(paper, paper, scores=scores).iloc[-2]
    assert last.holds == "yes"
    assert "chance 0.30" in last.ours


@pytest.mark.parametrize("margin", [-0.1, 1.0, "0.05", True, None])
def test_compare_with_paper_rejects_bad_margin(margin):
    paper = load_paper_table()
    with pytest.raises(ValueError, match=f"margin={margin!r} is not valid"):
        compare_with_paper(paper, paper, margin=margin)


@pytest.mark.parametrize("scores", [pd.DataFrame({"dim": [16]}), [1, 2]])
def test_compare_with_paper_rejects_bad_scores(scores):
    paper = load_paper_table()
    with pytest.raises(ValueError, match="scores=.* is not valid"):
        compare_with_paper(paper, paper, scores=scores)


def test_findings_say_when_a_representation_is_missing():
    comparison = compare_with_paper(make_table({"raw": {16: 0.5}}), load_paper_table())
    assert (comparison.holds == "not checked").all()


# compare_choices ---------------------------------------------------------------


def test_compare_choices_marks_findings_that_hinge_on_a_choice():
    paper = load_paper_table()
    reversed_ = paper.assign(ratio=1 - paper.ratio)
    choices = compare_choices({"paper": paper, "reversed": reversed_}, paper)
    assert choices.columns.tolist() == ["paper", "reversed", "same"]
    assert choices.paper.tolist() == ["yes"] * 5
    assert not choices.same.loc["PCA's ratio grows with the number of components"]
    scaled = compare_choices(
        {"a": paper, "b": paper.assign(ratio=paper.ratio / 3)}, paper
    )
    assert scaled.same.all()


def test_compare_choices_needs_two_tables():
    paper = load_paper_table()
    with pytest.raises(ValueError, match="tables has 1 entries; expected at least two"):
        compare_choices({"paper": paper}, paper)


# read_informativeness ----------------------------------------------------------


def make_reading_scores(means, hyperparameters=("optimizer", "dataset")):
    """Scores where every hyperparameter of a (representation, dim) scores alike."""
    rows = [
        (name, dim, hyperparameter, accuracy, 0.3)
        for (name, dim), accuracy in means.items()
        for hyperparameter in hyperparameters
    ]
    columns = ["representation", "dim", "hyperparameter", "accuracy", "chance"]
    return pd.DataFrame(rows, columns=columns)


def test_read_informativeness_on_a_known_table():
    scores = make_reading_scores(
        {
            ("global_stats", 16): 0.6,
            ("raw", 16): 0.4,
            ("pca", 16): 0.5,
            ("pca", 64): 0.32,
            ("mi_wd", 16): 0.45,
            ("mi_wd", 64): 0.8,
        }
    )
    reading = read_informativeness(scores, n_models=40).set_index("reading")
    assert reading.holds.tolist() == ["yes", "yes", "yes", "yes", "no"]
    numbers = reading.numbers.tolist()
    assert numbers[0] == "0.60 vs best baseline pca 16 0.50; chance 0.30"
    assert numbers[1].startswith(
        "16 dims, ahead on 2 of the 2 hyperparameters either predicts above chance "
        "by the margin (2 scored); ahead: dataset 0.60 vs 0.45, optimizer"
    )
    assert numbers[2].endswith(
        "first size ahead of global_stats and chance by the margin: 64 dims"
    )
    assert numbers[3] == "pca 64 dims 0.32 vs 16 dims 0.50; chance 0.30; 40 networks"
    assert numbers[4] == (
        "near chance: pca 64 (0.32 vs 0.30); 1 of these 1 have more features than "
        "the 40 networks"
    )


def test_read_informativeness_cannot_rank_probes_below_chance():
    """Quick-mode case: every accuracy under chance, so nothing can be ranked."""
    scores = make_reading_scores(
        {("global_stats", 16): 0.2, ("raw", 16): 0.4, ("pca", 16): 0.35,
         ("pca", 64): 0.2, ("mi_wd", 16): 0.2, ("mi_wd", 64): 0.4}
    )  # fmt: skip
    scores["chance"] = 0.42
    reading = read_informativeness(scores, n_models=12)
    assert reading.holds.tolist() == ["inconclusive"] * 4 + ["no"]
    assert "at chance: dataset 0.20 vs 0.20 (chance 0.42)" in reading.numbers[1]
    assert reading.numbers[1].endswith("too few above chance to speak of most")
    assert reading.numbers[2].endswith("by the margin: none")


@pytest.mark.parametrize(
    ("stats", "mi_wd", "verdict"),
    [(0.6, 0.4, "yes"), (0.4, 0.6, "no"), (0.5, 0.52, "inconclusive")],
)
def test_read_informativeness_counts_hyperparameters_by_the_margin(
    stats, mi_wd, verdict
):
    scores = make_reading_scores({("global_stats", 16): stats, ("mi_wd", 16): mi_wd})
    reading = read_informativeness(scores, n_models=100)
    assert reading.holds[1] == verdict


def make_paired_scores(pairs, chance=0.3):
    """Scores of global statistics and MI-WD at 16 dims, one pair per hyperparameter."""
    rows = [
        (name, 16, f"h{index}", accuracy, chance)
        for index, pair in enumerate(pairs)
        for name, accuracy in zip(("global_stats", "mi_wd"), pair, strict=True)
    ]
    columns = ["representation", "dim", "hyperparameter", "accuracy", "chance"]
    return pd.DataFrame(rows, columns=columns)


@pytest.mark.parametrize(
    ("pairs", "verdict", "counts"),
    [
        # Ahead on 1 of 4 scored, the rest at chance: too few to speak of most.
        (
            [(0.6, 0.3), (0.3, 0.3), (0.2, 0.31), (0.32, 0.3)],
            "inconclusive",
            "1 of the 1 ",
        ),
        # Every representation at or below chance.
        ([(0.3, 0.3), (0.25, 0.2), (0.3, 0.34)], "inconclusive", "0 of the 0 "),
        # Ahead on 3 of 4 above chance; two at chance do not count against.
        (
            [(0.7, 0.5), (0.8, 0.6), (0.6, 0.4), (0.5, 0.48), (0.3, 0.3), (0.2, 0.3)],
            "yes",
            "3 of the 4 ",
        ),
        # Ahead on 2 of 4 above chance is not most; behind on none.
        (
            [(0.7, 0.5), (0.8, 0.6), (0.5, 0.48), (0.6, 0.62)],
            "inconclusive",
            "2 of the 4 ",
        ),
        # Behind on half of those above chance: even ties could not make it most.
        ([(0.7, 0.5), (0.4, 0.6), (0.4, 0.6), (0.5, 0.52)], "no", "1 of the 4 "),
    ],
)
def test_read_informativeness_needs_most_hyperparameters_above_chance(
    pairs, verdict, counts
):
    """Regression (issue 6): the "most hyperparameters" reading said yes with 1 of 4.

    It only needed more hyperparameters ahead than behind, so one lead over a
    probe at chance everywhere else counted as "most".
    """
    reading = read_informativeness(make_paired_scores(pairs), n_models=100)
    assert reading.holds[1] == verdict
    assert f"ahead on {counts}hyperparameters" in reading.numbers[1]


def test_read_informativeness_counts_a_lead_of_exactly_the_margin():
    """0.05 + 1/3 is not 23/60 in floats; a lead of exactly the margin still counts."""
    pairs = [(23 / 60, 20 / 60), (0.7, 0.5), (0.8, 0.6)]
    reading = read_informativeness(make_paired_scores(pairs, chance=1 / 3), n_models=60)
    assert reading.holds[1] == "yes"
    assert "ahead on 3 of the 3 hyperparameters" in reading.numbers[1]


def test_read_informativeness_says_what_it_could_not_check():
    scores = make_reading_scores({("raw", 16): 0.5, ("raw", 64): 0.6})
    reading = read_informativeness(scores, n_models=100)
    assert reading.holds.tolist() == ["not checked"] * 4 + ["yes"]
    assert reading.numbers.tolist()[:4] == [
        "global_stats or the baselines were not scored",
        "global_stats or mi_wd was not scored",
        "fewer than two MI-WD sizes",
        "fewer than two PCA sizes",
    ]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_models": 0}, "n_models=0 is not valid"),
        ({"n_models": 2.5}, "n_models=2.5 is not valid"),
        ({"n_models": 10, "margin": 1.5}, "margin=1.5 is not valid"),
    ],
)
def test_read_informativeness_rejects_bad_input(kwargs, match):
    scores = make_reading_scores({("raw", 16): 0.5})
    with pytest.raises(ValueError, match=match):
        read_informativeness(scores, **kwargs)


def test_read_informativeness_rejects_a_table_without_scores():
    with pytest.raises(ValueError, match="scores=.* is not valid"):
        read_informativeness(pd.DataFrame({"dim": [16]}), n_models=10)


# ratio_by_group ------------------------------------------------------------------


def test_ratio_by_group_uses_only_the_group_for_inter_distances():
    # Two tight pairs far apart: within a pair the inter distance is 1, so a
    # shift of 0.5 gives 0.5; over the whole set the far pair dominates.
    points = np.array([[0.0], [1.0], [100.0], [101.0]])
    original = {("raw", 1): points}
    permuted = {("raw", 1): points[:, None, :] + 0.5}
    table = ratio_by_group(original, permuted, ["near", "near", "far", "far"])
    assert list(table.columns) == ["near", "far"]
    assert table.loc[("raw", 1)].tolist() == pytest.approx([0.5, 0.5])
    whole = ratio_table(original, permuted).ratio.item()
    assert whole < 0.05


def test_ratio_by_group_leaves_out_singletons():
    points = np.arange(5.0)[:, None]
    table = ratio_by_group(
        {("raw", 1): points},
        {("raw", 1): points[:, None, :]},
        ["a", "a", "b", "b", "c"],
    )
    assert list(table.columns) == ["a", "b"]
    assert table.to_numpy().tolist() == [[0.0, 0.0]]


@pytest.mark.parametrize(
    "groups, message",
    [
        (["a", "b"], "groups has 2 labels but there are 3 models"),
        (["a", "b", "c"], "no group of"),
    ],
)
def test_ratio_by_group_rejects_bad_groups(groups, message):
    points = np.arange(3.0)[:, None]
    with pytest.raises(ValueError, match=message):
        ratio_by_group({("raw", 1): points}, {("raw", 1): points[:, None, :]}, groups)


# findings_by_group ---------------------------------------------------------------


def test_findings_by_group_agrees_with_compare_with_paper():
    # Each group's verdicts are those compare_with_paper gives its own table.
    paper = load_paper_table()
    flipped = paper.assign(ratio=paper.ratio.to_numpy()[::-1])
    within = pd.DataFrame(
        {
            "as printed": paper.set_index(["representation", "dim"]).ratio,
            "flipped": flipped.set_index(["representation", "dim"]).ratio,
        }
    )
    verdicts = findings_by_group(within)
    for group, table in (("as printed", paper), ("flipped", flipped)):
        expected = compare_with_paper(table, paper).set_index("finding").holds
        assert verdicts[group].to_dict() == expected.to_dict()
    assert set(verdicts["as printed"]) == {"yes"}
    assert "no" in set(verdicts["flipped"])


def test_findings_by_group_marks_missing_representations_not_checked():
    within = pd.DataFrame(
        {"a": [0.1, 0.2]},
        index=pd.MultiIndex.from_tuples(
            [("mi_wd", 16), ("mi_wd", 64)], names=["representation", "dim"]
        ),
    )
    verdicts = findings_by_group(within)["a"]
    assert verdicts["Global statistics are the most invariant"] == "not checked"
    assert verdicts["PCA's ratio grows with the number of components"] == "not checked"


@pytest.mark.parametrize(
    "within", [pd.DataFrame({"a": [0.1]}), "table", pd.Series([0.1], name="a")]
)
def test_findings_by_group_rejects_other_tables(within):
    with pytest.raises(ValueError, match="within=.* is not valid; expected a table"):
        findings_by_group(within)
