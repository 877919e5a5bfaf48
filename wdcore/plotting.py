"""Pictures of MI-WD descriptors.

A descriptor is drawn as an image: rows are depth windows from shallow (top) to
deep (bottom), columns are weight-value bins from ``-r`` to ``r``, and colour is
the fraction of a window's weights in a bin on a log scale (empty bins get the
lowest colour). :func:`label_points` writes short labels beside the points of a
scatter or line plot where they overlap nothing. The functions return their
Axes, Figure or labels and never call ``show`` or ``savefig``; the book's style
comes from :func:`wdcore.style.use_book_style`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from wdcore.style import DESCRIPTOR_CMAP

__all__ = [
    "LABEL_POSITIONS",
    "descriptor_norm",
    "label_points",
    "plot_descriptor",
    "plot_descriptor_grid",
]

# Where a label may sit relative to its point: offset in points and alignment.
# Tried in this order; the first with the least overlap wins, so ties are
# broken the same way every time.
LABEL_POSITIONS = (
    ((4, 3), "left", "bottom"),
    ((4, -3), "left", "top"),
    ((-4, 3), "right", "bottom"),
    ((-4, -3), "right", "top"),
    ((0, 6), "center", "bottom"),
    ((0, -6), "center", "top"),
    ((7, 0), "left", "center"),
    ((-7, 0), "right", "center"),
)


def _check_descriptor(descriptor: object, name: str = "descriptor") -> np.ndarray:
    """Return ``descriptor`` as a finite, non-negative 2-D float array."""
    array = np.asarray(descriptor, dtype=np.float64)  # (S, B)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(
            f"{name} has shape {array.shape!r}; expected a non-empty 2-D array "
            "(n_windows, n_bins)"
        )
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(
            f"{name} holds negative or non-finite values; expected a "
            "histogram (non-negative, finite)"
        )
    return array


def _scaled(descriptor: np.ndarray, density: bool) -> np.ndarray:
    """Return the values to colour: fractions, or fractions times ``B``."""
    return descriptor * descriptor.shape[1] if density else descriptor


def descriptor_norm(descriptors: Sequence[np.ndarray], *, density: bool = False):
    """Return one log colour scale covering every positive value of ``descriptors``.

    Parameters
    ----------
    descriptors : sequence of ndarray of shape (S, B)
        Descriptors to share the scale; their shapes may differ.
    density : bool, default=False
        Scale fractions by the number of bins ``B`` (1 = uniform), so grids of
        different granularity are comparable.

    Returns
    -------
    matplotlib.colors.LogNorm
        From the smallest positive value (at most a tenth of the largest) to
        the largest.

    Raises
    ------
    ValueError
        If a descriptor is not a non-negative 2-D array.

    Examples
    --------
    >>> norm = descriptor_norm([np.array([[0.5, 0.5]]), np.array([[0.99, 0.01]])])
    >>> float(norm.vmin), float(norm.vmax)
    (0.01, 0.99)
    """
    values = np.concatenate(
        [_scaled(_check_descriptor(item), density).ravel() for item in descriptors]
    )  # (n_values,)
    positive = values[values > 0]  # (n_positive,)
    if positive.size == 0:
        return LogNorm(vmin=1e-3, vmax=1.0)
    vmax = float(positive.max())
    return LogNorm(vmin=min(float(positive.min()), vmax / 10), vmax=vmax)


def plot_descriptor(
    descriptor: np.ndarray,
    *,
    ax: Axes | None = None,
    value_range: float | None = None,
    norm: Normalize | None = None,
    density: bool = False,
    cmap: str = DESCRIPTOR_CMAP,
    colorbar: bool = False,
    labels: bool = True,
) -> Axes:
    """Draw one descriptor as an image on a log colour scale.

    Parameters
    ----------
    descriptor : ndarray of shape (S, B)
        Rows shallow to deep, as returned by :func:`wdcore.descriptors.mi_wd`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; the current Axes when omitted.
    value_range : float, optional
        The ``r`` the bins span; the horizontal axis then shows weight values
        from ``-r`` to ``r``, otherwise bin indices.
    norm : matplotlib.colors.Normalize, optional
        Colour scale; by default a :func:`descriptor_norm` of this descriptor.
    density : bool, default=False
        Colour fraction times ``B`` (1 = uniform) instead of the fraction.
    cmap : str, default="viridis"
        Colormap; empty bins get its lowest colour.
    colorbar : bool, default=False
        Add a colorbar beside the Axes.
    labels : bool, default=True
        Label both axes.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If ``descriptor`` is not a non-negative 2-D array or ``value_range`` is
        not positive.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_descriptor(np.full((4, 4), 0.25), value_range=1.0)
    >>> ax.get_xlabel()
    'weight value'
    """
    values = _scaled(_check_descriptor(descriptor), density)  # (S, B)
    if value_range is not None and not (np.isfinite(value_range) and value_range > 0):
        raise ValueError(
            f"value_range={value_range!r} is not valid; expected a positive number"
        )
    ax = plt.gca() if ax is None else ax
    norm = descriptor_norm([descriptor], density=density) if norm is None else norm
    colormap = plt.get_cmap(cmap).with_extremes(bad=plt.get_cmap(cmap)(0.0))
    left, right = (-value_range, value_range) if value_range else (0, values.shape[1])
    image = ax.imshow(
        np.ma.masked_less_equal(values, 0),  # (S, B)
        norm=norm,
        cmap=colormap,
        aspect="auto",
        interpolation="nearest",
        extent=(left, right, 1.0, 0.0),
    )
    ax.set_yticks([0.0, 0.5, 1.0])
    if labels:
        ax.set_xlabel("weight value" if value_range else "bin (index)")
        ax.set_ylabel("depth (fraction of weights)\nshallow → deep")
    if colorbar:
        label = "density (1 = uniform)" if density else "fraction of window"
        ax.figure.colorbar(image, ax=ax, label=label).minorticks_off()
    return ax


def plot_descriptor_grid(
    descriptors: Sequence[Sequence[np.ndarray]] | np.ndarray,
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    value_range: float | None = None,
    norm: Normalize | None = None,
    density: bool = False,
    cmap: str = DESCRIPTOR_CMAP,
    panel_size: float = 1.8,
) -> tuple[Figure, np.ndarray]:
    """Draw a grid of descriptors with one shared log colour scale and a colorbar.

    By default the scale covers the grid's own values; pass ``norm`` (e.g. a
    :func:`descriptor_norm` of every descriptor of a chapter) to give several
    figures one scale.

    Parameters
    ----------
    descriptors : array of shape (n_rows, n_cols, S, B) or nested sequences
        ``descriptors[i][j]`` is drawn in row ``i``, column ``j``; with nested
        sequences the cells may have different shapes.
    row_labels, col_labels : sequence of str
        One label per row (left) and per column (top).
    value_range : float, optional
        Shared ``r`` of the bins, for weight-value tick labels.
    norm : matplotlib.colors.Normalize, optional
        Colour scale of every panel; by default a :func:`descriptor_norm` of
        the grid. Values outside it take the colormap's end colours.
    density : bool, default=False
        Colour fraction times ``B``; use it when cells differ in ``B``.
    cmap : str, default="viridis"
        Colormap.
    panel_size : float, default=1.8
        Width and height of one panel in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : ndarray of shape (n_rows, n_cols) of Axes

    Raises
    ------
    ValueError
        If the grid is ragged or empty, or the label counts do not match it.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> grid = np.full((2, 3, 4, 4), 0.25)
    >>> fig, axes = plot_descriptor_grid(grid, row_labels=["a", "b"],
    ...                                  col_labels=["x", "y", "z"])
    >>> axes.shape
    (2, 3)
    >>> wide = descriptor_norm([np.array([[0.001, 0.999]])])
    >>> fig, axes = plot_descriptor_grid(grid, row_labels=["a", "b"],
    ...                                  col_labels=["x", "y", "z"], norm=wide)
    >>> float(axes[1, 2].images[0].norm.vmin)
    0.001
    """
    rows = [list(row) for row in descriptors]
    n_rows, n_cols = len(rows), len(rows[0]) if rows else 0
    if n_rows == 0 or n_cols == 0 or any(len(row) != n_cols for row in rows):
        raise ValueError(
            "descriptors is empty or ragged; expected n_rows x n_cols descriptors"
        )
    if len(row_labels) != n_rows or len(col_labels) != n_cols:
        raise ValueError(
            f"got {len(row_labels)} row_labels and {len(col_labels)} col_labels for "
            f"a {n_rows} x {n_cols} grid; expected one label per row and column"
        )
    cells = [cell for row in rows for cell in row]
    norm = descriptor_norm(cells, density=density) if norm is None else norm
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        squeeze=False,
        layout="constrained",
        figsize=(panel_size * n_cols + 1.2, panel_size * n_rows + 0.4),
    )  # (n_rows, n_cols)
    for (row, column), ax in np.ndenumerate(axes):
        plot_descriptor(
            rows[row][column],
            ax=ax,
            value_range=value_range,
            norm=norm,
            density=density,
            cmap=cmap,
            labels=False,
        )
        ax.label_outer()
        if row == 0:
            ax.set_title(col_labels[column])
    for row, label in enumerate(row_labels):
        axes[row, 0].set_ylabel(f"{label}\ndepth (shallow → deep)")
    for ax in axes[-1]:
        ax.set_xlabel("weight value" if value_range else "bin (index)")
    label = "density (1 = uniform)" if density else "fraction of window"
    # Minor ticks of a log scale crowd a short colorbar; the decades suffice.
    bar = fig.colorbar(axes[0, 0].images[0], ax=axes, label=label, shrink=0.8)
    bar.minorticks_off()
    return fig, axes


def _overlap(box: np.ndarray, others: np.ndarray) -> float:
    """Total area shared by ``box`` (x0, y0, x1, y1) and each row of ``others``."""
    width = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0])
    height = np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1])
    return float(np.sum(np.clip(width, 0, None) * np.clip(height, 0, None)))


def label_points(
    ax: Axes,
    points: np.ndarray,
    labels: Sequence[str],
    *,
    obstacles: np.ndarray | None = None,
    marker_size: float = 8.0,
    fontsize: float = 7.0,
) -> list[Annotation]:
    """Label points where the labels overlap no marker, other label or axes edge.

    Each label tries the positions of :data:`LABEL_POSITIONS` around its point
    in turn and keeps the one whose box overlaps least with every marker,
    every label placed before it and the outside of the axes. The placement
    reads the axes' current limits and size, so call it after everything else
    is drawn. It is deterministic: the same plot gets the same labels.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes holding the points.
    points : array-like of shape (n_points, 2)
        Data coordinates of the points to label.
    labels : sequence of str
        One label per point.
    obstacles : array-like of shape (n_obstacles, 2), optional
        Further markers (data coordinates) labels should not cover; ``points``
        are always avoided.
    marker_size : float, default=8.0
        Width of the square, in points, that a marker occupies.
    fontsize : float, default=7.0
        Label size in points.

    Returns
    -------
    list of matplotlib.text.Annotation
        The labels, in the order of ``points``.

    Raises
    ------
    ValueError
        If ``points`` is not of shape (n_points, 2) or ``labels`` has another
        length.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig, ax = plt.subplots()
    >>> _ = ax.set(xlim=(0, 1), ylim=(0, 1))  # two points 1 % of the width apart
    >>> first, second = label_points(ax, [[0.5, 0.5], [0.51, 0.5]], ["256", "64"])
    >>> bool(first.get_window_extent().overlaps(second.get_window_extent()))
    False
    >>> plt.close(fig)
    """
    points = np.asarray(points, dtype=np.float64)  # (n_points, 2)
    if points.ndim != 2 or points.shape[1] != 2 or len(labels) != len(points):
        raise ValueError(
            f"points has shape {points.shape!r} and labels length {len(labels)}; "
            "expected (n_points, 2) and one label per point"
        )
    extra = np.empty((0, 2)) if obstacles is None else np.asarray(obstacles, float)
    ax.autoscale_view()  # apply pending limits before reading pixel positions
    renderer = ax.figure.canvas.get_renderer()
    to_pixels = ax.figure.dpi / 72  # pixels per point
    markers = ax.transData.transform(np.concatenate([points, extra]))  # (n, 2)
    half = marker_size * to_pixels / 2
    taken = np.hstack([markers - half, markers + half])  # (n, 4) boxes in pixels
    frame = ax.get_window_extent(renderer).extents  # (x0, y0, x1, y1)
    annotations = []
    for point, label in zip(points, labels, strict=True):
        annotation = ax.annotate(
            str(label), point, xytext=(0, 0), textcoords="offset points",
            fontsize=fontsize,
        )  # fmt: skip
        costs = []
        for offset, horizontal, vertical in LABEL_POSITIONS:
            annotation.set(position=offset, ha=horizontal, va=vertical)
            box = np.array(annotation.get_window_extent(renderer).extents)  # (4,)
            inside = _overlap(box, frame[None])
            area = (box[2] - box[0]) * (box[3] - box[1])
            costs.append(_overlap(box, taken) + 2 * (area - inside))
        offset, horizontal, vertical = LABEL_POSITIONS[int(np.argmin(costs))]
        annotation.set(position=offset, ha=horizontal, va=vertical)
        box = np.array(annotation.get_window_extent(renderer).extents)  # (4,)
        taken = np.vstack([taken, box])  # (n + 1, 4)
        annotations.append(annotation)
    return annotations
