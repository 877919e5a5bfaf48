"""Tests of the book style."""

from __future__ import annotations

import matplotlib as mpl

from wdcore.style import BOOK_RC, use_book_style


def test_use_book_style_sets_and_is_idempotent():
    with mpl.rc_context():
        use_book_style()
        first = {key: mpl.rcParams[key] for key in BOOK_RC}
        use_book_style()
        assert {key: mpl.rcParams[key] for key in BOOK_RC} == first
        assert mpl.rcParams["image.cmap"] == "viridis"
        assert mpl.rcParams["savefig.dpi"] == 150
