"""The supplement's hand-written configurations and the distances under its figures."""

import itertools

import numpy as np
import pytest

from wdcore.architectures import FIXED_ARCHITECTURE, check_architecture
from wdcore.descriptors import default_value_range, mi_wd
from wdcore.experiments import (
    DYNAMICS_EPOCHS,
    GALLERY_EPOCHS,
    GalleryDistances,
    descriptor_distances,
    distance_to_final,
    drifts_apart,
    dynamics_configs,
    gallery_cell_changes,
    gallery_configs,
    gallery_distances,
    gallery_readings,
    mean_cross_distance,
    mean_pairwise_distance,
    permutation_descriptors,
    sampling_noise_distance,
    setting_title,
    share_left,
    shared_value_range,
    snapshot_descriptors,
    snapshot_indices,
    supplement_settings,
    train_on_demand,
    window_placements,
)
from wdcore.zoo import check_config, model_id

# Supplement, Figures 1-4: (dataset, batch, optimizer, activation, augmentation,
# initialization), with SVHN -> digits, STL-10 -> faces, CIFAR-10 -> textures.
PAPER_TABLE = [
    ("digits", 256, "rmsprop", "elu", False, "glorot_uniform"),
    ("faces", 128, "rmsprop", "relu", True, "glorot_uniform"),
    ("textures", 32, "adam", "relu", False, "glorot_uniform"),
    ("digits", 64, "rmsprop", "relu", False, "glorot_uniform"),
]
SETTING_KEYS = (
    "dataset",
    "batch_size",
    "optimizer",
    "activation",
    "augmentation",
    "initialization",
)


def make_tiny_configs(n_seeds: int = 2) -> list[dict]:
    """Gallery setting 2 (faces, 2 batches an epoch) shrunk to 8 x 8 inputs, 1 epoch."""
    return [
        dict(config, n_epochs=1, input_size=8)
        for config in gallery_configs(n_seeds=n_seeds)[n_seeds : 2 * n_seeds]
    ]


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    """Two tiny trained networks in a temporary zoo."""
    return train_on_demand(
        make_tiny_configs(), tmp_path_factory.mktemp("zoo"), n_jobs=1
    )


def check_random_descriptors(seed: int, shape: tuple) -> np.ndarray:
    """Random non-negative descriptors of ``shape`` from a seeded generator."""
    return np.random.default_rng(seed).random(shape)


def test_supplement_settings_follow_the_paper():
    settings = supplement_settings()
    assert [tuple(s[key] for key in SETTING_KEYS) for s in settings] == PAPER_TABLE
    assert {s["learning_rate"] for s in settings} == {0.001}
    assert {s["space"] for s in settings} == {"fixed"}


@pytest.mark.parametrize("quick", [False, True])
@pytest.mark.parametrize("n_seeds", [1, 3])
def test_gallery_configs_cross_settings_and_seeds(n_seeds, quick):
    configs = gallery_configs(n_seeds=n_seeds, quick=quick)

    assert len(configs) == 4 * n_seeds
    assert all(check_config(config) == config for config in configs)
    assert len({model_id(config) for config in configs}) == len(configs)
    epochs = GALLERY_EPOCHS["quick" if quick else "full"]
    assert {config["n_epochs"] for config in configs} == {epochs}
    for number, setting in enumerate(supplement_settings()):
        block = configs[number * n_seeds : (number + 1) * n_seeds]
        assert [config["seed"] for config in block] == list(range(n_seeds))
        assert all(setting.items() <= config.items() for config in block)
        assert all(
            config["architecture"] == check_architecture(FIXED_ARCHITECTURE)
            for config in block
        )


def test_quick_gallery_trains_fewer_epochs():
    assert GALLERY_EPOCHS["quick"] < GALLERY_EPOCHS["full"]
    assert DYNAMICS_EPOCHS["quick"] < DYNAMICS_EPOCHS["full"]


@pytest.mark.parametrize("n_seeds", [0, -2, 2.5, True])
def test_gallery_configs_refuses_bad_n_seeds(n_seeds):
    with pytest.raises(ValueError, match=r"n_seeds=.* expected an int >= 1"):
        gallery_configs(n_seeds=n_seeds)


@pytest.mark.parametrize("quick", [False, True])
def test_dynamics_networks_differ_only_in_dataset_and_seed(quick):
    first, second = dynamics_configs(quick=quick)

    assert first["initialization"] == second["initialization"] == "glorot_normal"
    assert first["architecture"] == check_architecture(FIXED_ARCHITECTURE)
    assert first["seed"] != second["seed"]
    differing = {key for key in first if first[key] != second[key]}
    assert differing <= {"dataset", "seed"}
    assert first["n_epochs"] == DYNAMICS_EPOCHS["quick" if quick else "full"]


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (
            1,
            "Setting 1: digits (for SVHN), batch 256, RMSProp, ELU, "
            "no augmentation, Glorot uniform",
        ),
        (
            2,
            "Setting 2: faces (for STL-10), batch 128, RMSProp, ReLU, "
            "augmentation, Glorot uniform",
        ),
    ],
)
def test_setting_title_reads_like_the_caption(number, expected):
    assert setting_title(supplement_settings()[number - 1], number=number) == expected


def test_setting_title_refuses_incomplete_settings_and_bad_numbers():
    with pytest.raises(ValueError, match=r"lacks the keys \['initialization'\]"):
        setting_title({key: 1 for key in SETTING_KEYS[:-1]})
    with pytest.raises(ValueError, match=r"number=0 is not valid"):
        setting_title(supplement_settings()[0], number=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_descriptor_distances_are_euclidean(seed):
    first = check_random_descriptors(seed, (3, 4, 5))
    second = check_random_descriptors(seed + 10, (2, 4, 5))

    distances = descriptor_distances(first, second)

    for row, column in itertools.product(range(3), range(2)):
        expected = np.linalg.norm(first[row] - second[column])
        assert distances[row, column] == pytest.approx(expected)
    square = descriptor_distances(first)
    np.testing.assert_allclose(np.diag(square), 0.0)
    np.testing.assert_allclose(square, square.T)


def test_descriptor_distances_refuse_mismatched_or_empty_stacks():
    with pytest.raises(ValueError, match="expected equal shapes"):
        descriptor_distances(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match=r"first has shape \(0, 4, 4\)"):
        descriptor_distances(np.zeros((0, 4, 4)))


@pytest.mark.parametrize(
    "positions", [[0.0, 1.0], [0.0, 1.0, 3.0], [2.0, 5.0, 5.0, 9.0]]
)
def test_mean_distances_on_a_line(positions):
    points = np.array(positions).reshape(-1, 1, 1)  # (n, 1, 1)
    pairs = list(itertools.combinations(positions, 2))
    expected = np.mean([abs(a - b) for a, b in pairs])

    assert mean_pairwise_distance(points) == pytest.approx(expected)
    shifted = points + 10.0
    expected_cross = np.mean([abs(a - b - 10.0) for a in positions for b in positions])
    assert mean_cross_distance(points, shifted) == pytest.approx(expected_cross)


def test_mean_pairwise_distance_needs_two_descriptors():
    with pytest.raises(ValueError, match="at least 2 descriptors"):
        mean_pairwise_distance(np.zeros((1, 4, 4)))


def make_planted_gallery(setting_values, seed_step, variant_step):
    """Descriptors whose three coordinates hold setting, seed and variant offsets."""
    n_settings, n_seeds, n_variants = len(setting_values), 3, 4
    descriptors = np.zeros((n_settings, n_seeds, n_variants, 1, 3))
    descriptors[..., 0, 0] = np.reshape(setting_values, (-1, 1, 1))
    descriptors[..., 0, 1] = seed_step * np.arange(n_seeds).reshape(1, -1, 1)
    descriptors[..., 0, 2] = variant_step * np.arange(n_variants)
    return descriptors


@pytest.mark.parametrize("variant_step", [0.0, 0.01, 0.1])
def test_gallery_distances_recover_planted_levels(variant_step):
    setting_values = [0.0, 5.0, 20.0, 6.0]  # settings 2 and 4 are close
    descriptors = make_planted_gallery(setting_values, 1.0, variant_step)

    distances = gallery_distances(descriptors)

    # Variants 0..3 along one axis: pair gaps 1, 2, 3, 1, 2, 1 steps, mean 10 / 6.
    np.testing.assert_allclose(distances.permutation, variant_step * 10 / 6)
    # Seeds 0..2: pair gaps 1, 2, 1, mean 4 / 3.
    np.testing.assert_allclose(distances.seed, 4 / 3)
    np.testing.assert_allclose(np.diag(distances.setting), distances.seed)
    np.testing.assert_allclose(distances.setting, distances.setting.T)
    seed_gaps = np.subtract.outer(np.arange(3.0), np.arange(3.0))  # (3, 3)
    expected = np.mean(np.hypot(20.0 - 0.0, seed_gaps))
    assert distances.setting[0, 2] == pytest.approx(expected)
    assert distances.setting[1, 3] < distances.setting[0, 2]
    summary = distances.summary()
    assert summary["permutations of one network"] < summary["seeds of one setting"]
    assert summary["seeds of one setting"] < summary["different settings"]


@pytest.mark.parametrize("variant_step", [0.0, 0.01])
def test_gallery_readings_on_planted_settings(variant_step):
    # Settings 2 and 4 are close; settings that moved less are not closer.
    planted = make_planted_gallery([0.0, 5.0, 20.0, 6.0], 1.0, variant_step)
    distances = gallery_distances(planted)
    readings = gallery_readings(distances, np.array([0.1, 0.4, 0.2, 0.3]))
    assert readings.reading.tolist() == [
        "permutations barely change a descriptor",
        "seeds change less than settings",
        "settings 2 and 4 closer than 1 and 3 (paper)",
        "nearest pair of settings moved least (alternative)",
        "settings that moved less are closer (alternative)",
    ]
    assert readings.holds.tolist() == ["holds"] * 3 + ["does not hold"] * 2
    assert readings.numbers[3] == "nearest: 2 and 4; moved least: 1 and 3"


@pytest.mark.parametrize("seed", [0, 1])
def test_gallery_readings_follow_the_distance_moved(seed):
    """Settings drifting independently from one start: the alternative holds."""
    moved = np.random.default_rng(seed).uniform(0.1, 1.0, size=4)
    setting = np.hypot.outer(moved, moved)
    np.fill_diagonal(setting, 0.05)
    distances = GalleryDistances(np.full((4, 2), 0.01), np.diag(setting), setting)
    readings = gallery_readings(distances, moved).set_index("reading").holds
    assert readings["nearest pair of settings moved least (alternative)"] == "holds"
    assert readings["settings that moved less are closer (alternative)"] == "holds"


def make_levels(permutation, seed, setting, *, d24=None, d13=None):
    """GalleryDistances of four settings with the three given mean levels."""
    matrix = np.full((4, 4), float(setting))
    # Small offsets that cancel keep the mean and give Spearman no constant input.
    offsets = [-3e-4, -1e-4, 1e-4, 3e-4, -2e-4, 2e-4]
    for (i, j), offset in zip(
        itertools.combinations(range(4), 2), offsets, strict=True
    ):
        matrix[i, j] = matrix[j, i] = setting + offset
    np.fill_diagonal(matrix, seed)
    if d24 is not None:
        # Keep the off-diagonal mean at ``setting`` while planting d(2, 4), d(1, 3).
        matrix[1, 3] = matrix[3, 1] = d24
        matrix[0, 2] = matrix[2, 0] = d13
        rest = [(0, 1), (0, 3), (1, 2), (2, 3)]
        fill = (6 * setting - d24 - d13) / len(rest)
        for i, j in rest:
            matrix[i, j] = matrix[j, i] = fill
    return GalleryDistances(
        np.full((4, 2), float(permutation)), np.diag(matrix), matrix
    )


@pytest.mark.parametrize(
    ("permutation", "verdict"),
    [(0.0, "holds"), (0.05, "holds"), (0.1, "inconclusive"), (0.18, "inconclusive"),
     (0.185, "does not hold"), (0.3, "does not hold")],
)  # fmt: skip
def test_gallery_readings_barely_has_three_zones(permutation, verdict):
    """Seeds at 0.2: barely up to 0.05 (0.25 x), not barely above 0.18 (0.9 x)."""
    distances = make_levels(permutation, 0.2, 0.4)
    readings = gallery_readings(distances, np.arange(4.0), barely=0.25, gap=0.1)
    assert readings.holds[0] == verdict
    assert readings.numbers[0].startswith(f"{permutation:.4f} vs 0.2000, ratio")


@pytest.mark.parametrize(
    ("seed", "setting", "verdict"),
    [(0.2, 0.3, "holds"), (0.2, 0.21, "inconclusive"), (0.3, 0.2, "does not hold"),
     (0.2, 0.2, "inconclusive")],
)  # fmt: skip
def test_gallery_readings_less_than_needs_the_gap(seed, setting, verdict):
    readings = gallery_readings(make_levels(0.0, seed, setting), np.arange(4.0))
    assert readings.holds[1] == verdict


@pytest.mark.parametrize(
    ("d24", "d13", "verdict"),
    [
        (0.1, 0.3, "holds"),
        (0.2227, 0.2110, "inconclusive"),
        (0.3, 0.1, "does not hold"),
    ],
)
def test_gallery_readings_compare_settings_with_the_gap(d24, d13, verdict):
    distances = make_levels(0.0, 0.1, 0.2, d24=d24, d13=d13)
    readings = gallery_readings(distances, np.arange(4.0), gap=0.1)
    assert readings.holds[2] == verdict
    assert f"d(2, 4) {d24:.4f} vs d(1, 3) {d13:.4f}" in readings.numbers[2]


def test_gallery_readings_need_a_margin_not_a_bare_less_than():
    """Regression (issue 7): the full book printed "permutations change less than
    seeds: HOLDS (0.1879 vs 0.2060)" with a ratio of 0.91, and "seeds change less
    than settings: HOLDS (0.2060 vs 0.2143)"."""
    readings = gallery_readings(make_levels(0.1879, 0.2060, 0.2143), np.arange(4.0))
    assert readings.holds[:2].tolist() == ["does not hold", "inconclusive"]
    assert "ratio 0.91" in readings.numbers[0]
    assert readings.numbers[1] == "0.2060 vs 0.2143, relative gap +0.04 (needs +0.1)"


@pytest.mark.parametrize(
    ("n_settings", "n_moved", "options", "match"),
    [
        (3, 3, {}, r"expected \(n_settings, n_settings\)"),
        (4, 3, {}, r"moved \(3,\)"),
        (4, 4, {"min_correlation": 1.5}, "min_correlation=1.5 is not valid"),
        (
            4,
            4,
            {"barely": 0.0},
            r"barely=0.0 is not valid; expected a number in \(0, 1\)",
        ),
        (4, 4, {"barely": True}, "barely=True is not valid"),
        (4, 4, {"gap": 1.0}, r"gap=1.0 is not valid; expected a number in \[0, 1\)"),
        (4, 4, {"gap": "0.1"}, "gap='0.1' is not valid"),
    ],
)
def test_gallery_readings_refuse_bad_input(n_settings, n_moved, options, match):
    setting = np.ones((n_settings, n_settings))
    distances = GalleryDistances(np.ones((n_settings, 2)), np.ones(n_settings), setting)
    with pytest.raises(ValueError, match=match):
        gallery_readings(distances, np.ones(n_moved), **options)


@pytest.mark.parametrize("n_windows", [4, 32])
@pytest.mark.parametrize("input_size", [8, 16])
def test_window_placements_cover_the_fixed_network(n_windows, input_size):
    from wdcore.architectures import build_cnn
    from wdcore.descriptors import layer_sizes

    sizes = layer_sizes(build_cnn(FIXED_ARCHITECTURE, input_size=input_size))
    placements = window_placements(sizes, n_windows)
    assert placements.n_weights.sum() == sizes.sum()
    assert (placements.stop - placements.start == placements.n_weights).all()
    assert set(placements.placement) <= {
        "inside one tensor",
        "across a boundary",
        "whole tensors only",
    }
    inside = placements.placement == "inside one tensor"
    assert (placements.n_tensors[inside] == 1).all()
    assert (placements.n_cut[placements.placement == "whole tensors only"] == 0).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_windows", [3, 4, 8])
def test_windows_of_whole_tensors_ignore_reordering_within_tensors(seed, n_windows):
    """Reordering entries inside each tensor changes only windows that cut one."""
    rng = np.random.default_rng(seed)
    sizes = np.array([6, 2, 4, 4, 8])  # (n_tensors,)
    weights = rng.standard_normal(sizes.sum())  # (n_weights,)
    pieces = np.split(weights, np.cumsum(sizes)[:-1])
    reordered = np.concatenate([rng.permutation(piece) for piece in pieces])
    placements = window_placements(sizes, n_windows)
    before, after = (mi_wd(w, size=(n_windows, 4), value_range=2.0)
                     for w in (weights, reordered))  # fmt: skip
    whole = (placements.placement == "whole tensors only").to_numpy()
    np.testing.assert_array_equal(before[whole], after[whole])


def test_window_placements_name_each_case():
    placements = window_placements([3, 3, 1, 5], 3)  # windows of 4: [0, 4) ...
    assert placements.placement.tolist() == [
        "across a boundary", "across a boundary", "inside one tensor",
    ]  # fmt: skip
    assert window_placements([4, 4], 2).placement.tolist() == [
        "whole tensors only", "whole tensors only",
    ]  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n_weights", [50, 400])
def test_sampling_noise_distance_matches_simulated_histograms(seed, n_weights):
    rng = np.random.default_rng(seed)
    distribution = rng.dirichlet(np.ones(8), size=3)  # (S=3, B=8)
    draws = np.stack(
        [
            [rng.multinomial(n_weights, row) / n_weights for row in distribution]
            for _ in range(4000)
        ]
    )  # (4000, 3, 8)
    squared = np.sum((draws[::2] - draws[1::2]) ** 2, axis=(1, 2))  # (2000,)
    predicted = sampling_noise_distance(distribution, [n_weights] * 3)
    assert predicted == pytest.approx(np.sqrt(squared.mean()), rel=0.05)


@pytest.mark.parametrize(
    ("descriptors", "lengths", "match"),
    [
        (np.full((2, 2), 0.5), [10], "window_lengths has shape"),
        (np.full((2, 2), 0.5), [10, 0], "one positive length per window"),
        (np.full((2, 2), 0.4), [10, 10], "not distributions"),
    ],
)
def test_sampling_noise_distance_refuses_bad_input(descriptors, lengths, match):
    with pytest.raises(ValueError, match=match):
        sampling_noise_distance(descriptors, lengths)


@pytest.mark.parametrize("seed", [0, 1])
def test_gallery_cell_changes_match_a_direct_count(seed):
    rng = np.random.default_rng(seed)
    descriptors = rng.dirichlet(np.ones(6), size=(2, 3, 3, 4))  # (2, 3, 3, S=4, B=6)
    changes = gallery_cell_changes(descriptors, min_fraction=0.1)
    permutation, seeds = [], []
    for setting in descriptors:
        for network in setting:
            for copy in network[1:]:
                counted = network[0] >= 0.1
                permutation += list(
                    np.abs(copy - network[0])[counted] / network[0][counted]
                )
        for i, j in itertools.permutations(range(3), 2):
            reference, other = setting[i, 0], setting[j, 0]
            counted = reference >= 0.1
            seeds += list(np.abs(other - reference)[counted] / reference[counted])
    assert changes == pytest.approx(
        {"permutations of one network": np.median(permutation),
         "seeds of one setting": np.median(seeds)}
    )  # fmt: skip


@pytest.mark.parametrize(
    ("shape", "min_fraction", "match"),
    [((2, 1, 2, 1, 4), 0.01, "descriptors has shape"),
     ((2, 2, 2, 1, 4), 0.0, r"min_fraction=0.0 is not valid")],
)  # fmt: skip
def test_gallery_cell_changes_refuse_bad_input(shape, min_fraction, match):
    with pytest.raises(ValueError, match=match):
        gallery_cell_changes(np.full(shape, 0.25), min_fraction=min_fraction)


@pytest.mark.parametrize("shape", [(4, 3, 2, 4), (4, 1, 2, 4, 4), (4, 3, 1, 4, 4)])
def test_gallery_distances_refuse_bad_shapes(shape):
    with pytest.raises(ValueError, match=r"descriptors has shape .* expected"):
        gallery_distances(np.zeros(shape))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n_snapshots", [2, 5])
def test_distance_to_final_along_a_straight_path(seed, n_snapshots):
    direction = check_random_descriptors(seed, (3, 4))
    path = np.arange(n_snapshots).reshape(-1, 1, 1) * direction  # (n, 3, 4)

    distances = distance_to_final(path)

    expected = (n_snapshots - 1 - np.arange(n_snapshots)) * np.linalg.norm(direction)
    np.testing.assert_allclose(distances, expected)


def test_distance_to_final_needs_a_descriptor():
    with pytest.raises(ValueError, match="at least 1 descriptors"):
        distance_to_final(np.zeros((0, 2, 2)))


@pytest.mark.parametrize(
    ("n_snapshots", "n_points"), [(20, 8), (20, 2), (20, 20), (5, 3)]
)
def test_snapshot_indices_span_training(n_snapshots, n_points):
    indices = snapshot_indices(n_snapshots, n_points)

    assert len(indices) == n_points
    assert indices[0] == 0 and indices[-1] == n_snapshots - 1
    assert np.all(np.diff(indices) > 0)


@pytest.mark.parametrize(
    ("n_snapshots", "n_points", "match"),
    [(20, 1, "n_points=1"), (20, 21, "n_points=21"), (0, 2, "n_snapshots=0")],
)
def test_snapshot_indices_refuse_impossible_requests(n_snapshots, n_points, match):
    with pytest.raises(ValueError, match=match):
        snapshot_indices(n_snapshots, n_points)


def test_train_on_demand_keeps_order_and_reuses_models(tiny_zoo):
    configs = make_tiny_configs()
    files = [tiny_zoo.path(name) for name in tiny_zoo.model_ids]
    times = [path.stat().st_mtime_ns for path in files]

    again = train_on_demand(configs[::-1], tiny_zoo.directory, n_jobs=1)

    assert tiny_zoo.model_ids == [model_id(config) for config in configs]
    assert again.model_ids == tiny_zoo.model_ids[::-1]
    assert [path.stat().st_mtime_ns for path in files] == times


def test_shared_value_range_pools_the_models(tiny_zoo):
    pooled = np.concatenate([tiny_zoo.weights(name) for name in tiny_zoo.model_ids])

    assert shared_value_range(tiny_zoo) == pytest.approx(default_value_range(pooled))


@pytest.mark.parametrize("seed", [0, 1])
def test_permutations_keep_the_whole_network_histogram(tiny_zoo, seed):
    radius = shared_value_range(tiny_zoo)

    single_window = permutation_descriptors(
        tiny_zoo, size=(1, 16), value_range=radius, random_state=seed
    )  # one window: the histogram of all weights, which permutations keep
    windows = permutation_descriptors(
        tiny_zoo, size=(32, 16), value_range=radius, random_state=seed
    )

    assert single_window.shape == (2, 4, 1, 16)
    np.testing.assert_allclose(single_window, single_window[:, :1].repeat(4, axis=1))
    first = tiny_zoo.model_ids[0]
    expected = mi_wd(tiny_zoo.state_dict(first), size=(32, 16), value_range=radius)
    np.testing.assert_allclose(windows[0, 0], expected)
    assert not np.allclose(windows[:, 1:], windows[:, :1])


def test_permutation_descriptors_refuse_zero_permutations(tiny_zoo):
    with pytest.raises(ValueError, match="n_permutations=0"):
        permutation_descriptors(tiny_zoo, n_permutations=0)


def test_snapshot_descriptors_follow_the_snapshots(tiny_zoo):
    name = tiny_zoo.model_ids[1]

    descriptors = snapshot_descriptors(tiny_zoo, name, [0, 10, -1], size=(8, 8))

    assert descriptors.shape == (3, 8, 8)
    np.testing.assert_allclose(descriptors[0], mi_wd(tiny_zoo.weights(name, 0), size=8))
    np.testing.assert_allclose(distance_to_final(descriptors)[-1], 0.0)


def test_layer_windows_make_permuted_copies_identical(tiny_zoo):
    descriptors = permutation_descriptors(
        tiny_zoo, size=(16, 8), windows="layer", random_state=3
    )

    np.testing.assert_allclose(descriptors, descriptors[:, :1].repeat(4, axis=1))
    assert gallery_distances(descriptors[None]).permutation.max() < 1e-12


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("percent", [10.0, 25.0, 100.0])
def test_share_left_on_straight_paths(seed, percent):
    """Networks moving at a constant speed have 1 - progress / 100 left."""
    rng = np.random.default_rng(seed)
    progress = np.linspace(0, 100, 11)
    speeds = rng.uniform(0.5, 2.0, size=(3, 1))
    to_final = speeds * (100 - progress) / 100  # (3, 11)
    snapshot, shares = share_left(to_final, progress, percent=percent)
    assert progress[snapshot] >= percent
    assert snapshot == 0 or progress[snapshot - 1] < percent
    np.testing.assert_allclose(shares, 1 - progress[snapshot] / 100)


@pytest.mark.parametrize(
    ("to_final", "progress", "percent", "match"),
    [
        (np.ones(3), np.arange(3.0), 25.0, r"to_final has shape \(3,\)"),
        (np.ones((2, 3)), np.arange(4.0), 25.0, "expected .n_networks, n_snapshots."),
        (np.ones((2, 3)), np.array([0.0, 50.0, 50.0]), 25.0, "strictly increasing"),
        (np.ones((2, 3)), np.array([0.0, 50.0, 100.0]), 0.0, "percent=0.0"),
        (np.ones((2, 3)), np.array([0.0, 50.0, 80.0]), 90.0, "last value 80.0"),
        (np.zeros((2, 3)), np.array([0.0, 50.0, 100.0]), 25.0, "have moved"),
    ],
)
def test_share_left_refuses_bad_input(to_final, progress, percent, match):
    with pytest.raises(ValueError, match=match):
        share_left(to_final, progress, percent=percent)


# drifts_apart ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("between", "margin", "expected"),
    [
        ([0.25, 0.5, 0.375], 0.5, True),  # exactly 50 % above the start
        ([0.25, 0.5, 0.37], 0.5, False),  # a higher peak does not count
        ([0.2, 0.21], 0.0, True),
        ([0.2, 0.2], 0.0, True),
        ([0.2, 0.1], 0.0, False),
        ([0.0, 0.0], 0.5, True),  # identical throughout: no rise is needed
    ],
)
def test_drifts_apart_compares_the_end_with_the_start(between, margin, expected):
    assert drifts_apart(between, margin=margin) is expected


@pytest.mark.parametrize("margin", [-0.1, float("nan"), float("inf"), True, "0.1"])
def test_drifts_apart_rejects_bad_margins(margin):
    with pytest.raises(ValueError, match="margin=.* is not valid; expected a finite"):
        drifts_apart([0.1, 0.2], margin=margin)


@pytest.mark.parametrize("between", [[0.1], [[0.1, 0.2]], [0.1, float("nan")], [-1, 1]])
def test_drifts_apart_rejects_bad_distances(between):
    with pytest.raises(ValueError, match="between=.* is not valid; expected at least"):
        drifts_apart(between)
