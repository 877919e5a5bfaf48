"""The one place that sets the book's matplotlib and seaborn defaults.

Every chapter calls :func:`use_book_style` once, at the end of its imports cell;
plot functions in :mod:`wdcore.plotting` never change global style themselves.
:func:`styled_table` gives a formatted table the look of a plain DataFrame in
the rendered book.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib as mpl

if TYPE_CHECKING:
    import pandas as pd
    from pandas.io.formats.style import Styler

__all__ = [
    "BOOK_RC",
    "DESCRIPTOR_CMAP",
    "TABLE_CELL_STYLE",
    "VERTICAL_HEADER_STYLE",
    "styled_table",
    "use_book_style",
]

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

# A pandas Styler writes a bare <table>: the book theme styles only tables of
# class "dataframe" and gives cells no padding, so numbers ran together.
TABLE_CELL_STYLE = "padding: 0.2em 0.5em; font-size: 0.9em;"
VERTICAL_HEADER_STYLE = "writing-mode: vertical-rl; transform: rotate(180deg);"


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


def styled_table(
    frame: pd.DataFrame,
    *,
    precision: int = 3,
    na_rep: str = "–",
    vertical_headers: bool = False,
) -> Styler:
    """Format a table's numbers and give it the book's table look.

    The Styler gets the class ``dataframe``, which the book theme draws with
    borders and striped rows like any DataFrame, and padded cells
    (:data:`TABLE_CELL_STYLE`), so adjacent numbers stay apart.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table.
    precision : int, default=3
        Decimals of every float.
    na_rep : str, default="–"
        Text of a missing value.
    vertical_headers : bool, default=False
        Turn column headers to read upwards, so that a table of short numbers
        under long column names fits the text column.

    Returns
    -------
    pandas.io.formats.style.Styler

    Raises
    ------
    ValueError
        If ``precision`` is not a non-negative int.

    Examples
    --------
    >>> import pandas as pd
    >>> html = styled_table(pd.DataFrame({"ours": [0.0, None]})).to_html()
    >>> 'class="dataframe"' in html, "padding" in html, ">0.000<" in html
    (True, True, True)
    """
    if isinstance(precision, bool) or not isinstance(precision, int) or precision < 0:
        raise ValueError(f"precision={precision!r} is not valid; expected an int >= 0")
    styles = [
        {"selector": "th", "props": TABLE_CELL_STYLE},
        {"selector": "td", "props": TABLE_CELL_STYLE + " text-align: right;"},
    ]
    if vertical_headers:
        styles.append({"selector": "th.col_heading", "props": VERTICAL_HEADER_STYLE})
    return (
        frame.style.format(precision=precision, na_rep=na_rep)
        .set_table_attributes('class="dataframe"')
        .set_table_styles(styles)
    )
