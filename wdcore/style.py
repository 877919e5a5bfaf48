"""The one place that sets the book's matplotlib and seaborn defaults.

Every chapter calls :func:`use_book_style` once, at the end of its imports cell;
plot functions in :mod:`wdcore.plotting` never change global style themselves.
"""

from __future__ import annotations

import matplotlib as mpl

__all__ = ["BOOK_RC", "DESCRIPTOR_CMAP", "use_book_style"]

# Perceptually uniform and readable in grey scale; used for every descriptor.
DESCRIPTOR_CMAP = "viridis"

BOOK_RC = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "image.cmap": DESCRIPTOR_CMAP,
    "image.interpolation": "nearest",
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def use_book_style() -> None:
    """Set the matplotlib and seaborn defaults shared by all chapters.

    Calling it again resets the same values, so it is safe to call from
    every notebook.

    Returns
    -------
    None

    Examples
    --------
    >>> use_book_style()
    >>> mpl.rcParams["image.cmap"]
    'viridis'
    """
    import seaborn as sns  # imported here: it is slow to import and only style needs it

    sns.set_theme(context="notebook", style="ticks", palette="colorblind")
    mpl.rcParams.update(BOOK_RC)
