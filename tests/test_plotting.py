"""Tests of the descriptor plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from wdcore.plotting import (  # noqa: E402
    LABEL_POSITIONS,
    descriptor_norm,
    label_points,
    plot_descriptor,
    plot_descriptor_grid,
)


@pytest.fixture(autouse=True)
def check_no_output(monkeypatch):
    """Fail if a plot function shows or saves; close figures afterwards."""

    def refuse(*args, **kwargs):
        raise AssertionError("plot functions must not show or save figures")

    monkeypatch.setattr(Figure, "savefig", refuse)
    monkeypatch.setattr(plt, "show", refuse)
    yield
    plt.close("all")


def make_descriptor(size=(8, 16), *, seed=0):
    """A random descriptor with some empty bins; rows sum to 1."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(3.0, size=size).astype(float)  # (S, B)
    counts[:, 0] = 0
    counts[:, 1] += 1
    return counts / counts.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("size", [(4, 4), (32, 32), (16, 64)])
@pytest.mark.parametrize("value_range", [None, 0.25])
def test_plot_descriptor(size, value_range):
    fig, ax = plt.subplots()
    descriptor = make_descriptor(size)
    returned = plot_descriptor(descriptor, ax=ax, value_range=value_range)
    assert returned is ax
    image = ax.images[0]
    assert isinstance(image.norm, LogNorm)
    assert image.get_array().shape == size
    assert np.ma.count_masked(image.get_array()) == np.sum(descriptor == 0)
    assert "shallow" in ax.get_ylabel() and "deep" in ax.get_ylabel()
    left, right, bottom, top = image.get_extent()
    assert (bottom, top) == (1.0, 0.0)  # row 0 (shallow) at the top
    if value_range is None:
        assert ax.get_xlabel() == "bin (index)" and (left, right) == (0, size[1])
    else:
        assert ax.get_xlabel() == "weight value" and (left, right) == (-0.25, 0.25)


def test_plot_descriptor_uses_current_axes_and_colorbar():
    fig = plt.figure()
    ax = plot_descriptor(make_descriptor(), colorbar=True, density=True)
    assert ax.figure is fig
    assert len(fig.axes) == 2
    assert "uniform" in fig.axes[1].get_ylabel()
    np.testing.assert_allclose(
        ax.images[0].get_array().max(), make_descriptor().max() * 16
    )


def test_descriptor_norm_is_shared():
    descriptors = [make_descriptor(seed=0), make_descriptor(seed=1) * 0.5]
    norm = descriptor_norm(descriptors)
    positive = np.concatenate([d[d > 0] for d in descriptors])
    assert norm.vmin == pytest.approx(positive.min())
    assert norm.vmax == pytest.approx(positive.max())
    empty = descriptor_norm([np.zeros((2, 2))])
    assert empty.vmin < empty.vmax


@pytest.mark.parametrize(("n_rows", "n_cols"), [(1, 1), (2, 3)])
def test_plot_descriptor_grid(n_rows, n_cols):
    grid = [
        [make_descriptor(seed=row * 10 + col) for col in range(n_cols)]
        for row in range(n_rows)
    ]
    fig, axes = plot_descriptor_grid(
        grid,
        row_labels=[f"net {row}" for row in range(n_rows)],
        col_labels=[f"seed {col}" for col in range(n_cols)],
        value_range=1.0,
    )
    assert axes.shape == (n_rows, n_cols)
    norms = {(ax.images[0].norm.vmin, ax.images[0].norm.vmax) for ax in axes.flat}
    assert len(norms) == 1
    assert len(fig.axes) == n_rows * n_cols + 1  # one shared colorbar
    assert axes[0, -1].get_title() == f"seed {n_cols - 1}"
    assert axes[-1, 0].get_ylabel().startswith(f"net {n_rows - 1}")


@pytest.mark.parametrize("seed", [0, 1])
def test_grids_share_a_norm_that_is_passed_in(seed):
    first = [[make_descriptor(seed=seed)]]
    second = [[make_descriptor(seed=seed + 5)]]
    norm = descriptor_norm([first[0][0], second[0][0]])
    grids = [
        plot_descriptor_grid(grid, row_labels=["a"], col_labels=["b"], norm=norm)[1]
        for grid in (first, second)
    ]
    scales = {(axes[0, 0].images[0].norm.vmin, axes[0, 0].images[0].norm.vmax)
              for axes in grids}  # fmt: skip
    assert scales == {(norm.vmin, norm.vmax)}
    own = plot_descriptor_grid(first, row_labels=["a"], col_labels=["b"])[1]
    assert own[0, 0].images[0].norm.vmax == pytest.approx(first[0][0].max())


def test_grid_of_different_granularities():
    grid = [[make_descriptor((size, size)) for size in (4, 8, 16)]] * 2
    fig, axes = plot_descriptor_grid(
        grid, row_labels=["a", "b"], col_labels=["4", "8", "16"], density=True
    )
    assert [ax.images[0].get_array().shape for ax in axes[0]] == [
        (4, 4),
        (8, 8),
        (16, 16),
    ]


@pytest.mark.parametrize(
    ("descriptor", "message"),
    [
        (np.ones(4), r"shape \(4,\); expected a non-empty 2-D"),
        (np.ones((0, 3)), r"shape \(0, 3\)"),
        (-np.ones((2, 2)), "negative or non-finite"),
        (np.full((2, 2), np.nan), "negative or non-finite"),
    ],
)
def test_invalid_descriptor(descriptor, message):
    with pytest.raises(ValueError, match=message):
        plot_descriptor(descriptor)


@pytest.mark.parametrize("value_range", [0.0, -1.0, np.inf])
def test_invalid_value_range(value_range):
    with pytest.raises(ValueError, match="value_range=.* is not valid"):
        plot_descriptor(make_descriptor(), value_range=value_range)


def test_invalid_grids():
    cell = make_descriptor()
    with pytest.raises(ValueError, match="empty or ragged"):
        plot_descriptor_grid([[cell, cell], [cell]], row_labels="ab", col_labels="ab")
    with pytest.raises(ValueError, match="empty or ragged"):
        plot_descriptor_grid([], row_labels=[], col_labels=[])
    with pytest.raises(ValueError, match="got 1 row_labels and 2 col_labels"):
        plot_descriptor_grid([[cell, cell]] * 2, row_labels="a", col_labels="ab")


def make_crowded_axes(seed):
    """Axes with 30 random points in a small patch, so naive labels would collide."""
    rng = np.random.default_rng(seed)
    points = 0.5 + 0.05 * rng.standard_normal((30, 2))  # (30, 2)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(*points.T, "o", markersize=3)
    ax.set(xlim=(0, 1), ylim=(0, 1))
    return fig, ax, points


@pytest.mark.parametrize("seed", [0, 1])
def test_label_points_is_deterministic(seed):
    placements = []
    for _ in range(2):
        fig, ax, points = make_crowded_axes(seed)
        labels = label_points(ax, points, [str(k) for k in range(len(points))])
        placements.append([(label.get_position(), label.get_ha()) for label in labels])
        plt.close(fig)
    assert placements[0] == placements[1]


@pytest.mark.parametrize("seed", [0, 1])
def test_label_points_avoids_markers_and_labels_when_there_is_room(seed):
    rng = np.random.default_rng(seed)
    points = rng.uniform(0.2, 0.8, size=(6, 2))  # (6, 2), sparse
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.set(xlim=(0, 1), ylim=(0, 1))
    labels = label_points(ax, points, ["1024"] * len(points), obstacles=[[0.1, 0.1]])
    boxes = [label.get_window_extent() for label in labels]
    for first in range(len(boxes)):
        for second in range(first + 1, len(boxes)):
            assert not boxes[first].overlaps(boxes[second])
    pixels = ax.transData.transform(points)  # (6, 2)
    for box in boxes:
        assert not any(box.contains(x, y) for x, y in pixels)
        assert ax.get_window_extent().contains(box.x0, box.y0)
    assert {label.get_position() for label in labels} <= {
        offset for offset, _, _ in LABEL_POSITIONS
    }


@pytest.mark.parametrize(
    ("points", "labels"),
    [(np.zeros((2, 3)), ["a", "b"]), (np.zeros((2, 2)), ["a"])],
)
def test_label_points_refuses_mismatched_input(points, labels):
    fig, ax = plt.subplots()
    with pytest.raises(
        ValueError, match=r"points has shape .* expected \(n_points, 2\)"
    ):
        label_points(ax, points, labels)
