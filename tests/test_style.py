"""Tests of the book style."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest

from wdcore.style import (
    BOOK_RC,
    TABLE_CELL_STYLE,
    VERTICAL_HEADER_STYLE,
    styled_table,
    use_book_style,
)


def test_use_book_style_sets_and_is_idempotent():
    with mpl.rc_context():
        use_book_style()
        first = {key: mpl.rcParams[key] for key in BOOK_RC}
        use_book_style()
        assert {key: mpl.rcParams[key] for key in BOOK_RC} == first
        assert mpl.rcParams["image.cmap"] == "viridis"
        assert mpl.rcParams["savefig.dpi"] == 150


@pytest.mark.parametrize("precision", [2, 3])
def test_styled_table_pads_cells_and_formats_numbers(precision):
    """Regression (issue 6): Table 1 rendered as "0.0000.024" without padding."""
    frame = pd.DataFrame({"ours": [0.0, np.nan], "paper": [0.024, 0.315]})
    html = styled_table(frame, precision=precision).to_html()
    assert '<table id="T_' in html and 'class="dataframe"' in html
    assert TABLE_CELL_STYLE.split(";")[0] in html
    assert f">{0.024:.{precision}f}<" in html and ">–<" in html


@pytest.mark.parametrize("precision", [-1, 1.5, True])
def test_styled_table_refuses_bad_precision(precision):
    with pytest.raises(ValueError, match=f"precision={precision!r} is not valid"):
        styled_table(pd.DataFrame({"a": [1.0]}), precision=precision)


@pytest.mark.parametrize("vertical_headers", [False, True])
def test_styled_table_can_turn_column_headers(vertical_headers):
    frame = pd.DataFrame({"initialization": [0.5], "augmentation": [0.25]})
    html = styled_table(frame, vertical_headers=vertical_headers).to_html()
    assert ("writing-mode" in html) == vertical_headers
    assert (VERTICAL_HEADER_STYLE.split(";")[0] in html) == vertical_headers
