"""Checks of the settings every chapter notebook shares.

Papermill passes notebook parameters as typed on its command line, so
``-p quick false`` arrives as the string ``"false"``, which Python treats as
true. Each chapter therefore checks its shared parameters before using them.
"""

from __future__ import annotations

import os
from pathlib import Path

from wdcore._random import check_random_state

__all__ = ["check_common_parameters"]


def check_common_parameters(
    *, quick: object, results_dir: object, random_state: object
) -> Path:
    """Check the parameters every chapter shares and create ``results_dir``.

    Parameters
    ----------
    quick : bool
        Run the chapter's small version; must be a real bool (papermill:
        ``-p quick True``, with a capital T).
    results_dir : str or os.PathLike
        Folder for the chapter's figures and tables; created if missing.
    random_state : None or int
        Seed of the chapter, ``None`` or a non-negative int.

    Returns
    -------
    pathlib.Path
        ``results_dir``, which now exists.

    Raises
    ------
    TypeError
        If ``quick`` is not a bool, ``results_dir`` not a path, or
        ``random_state`` not None or an int.
    ValueError
        If ``random_state`` is negative or ``results_dir`` is empty.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     path = check_common_parameters(
    ...         quick=True, results_dir=f"{directory}/out", random_state=0
    ...     )
    ...     print(path.is_dir())
    True
    >>> check_common_parameters(quick="false", results_dir=".", random_state=0)
    Traceback (most recent call last):
    ...
    TypeError: quick='false' is not valid; expected True or False ...
    """
    if not isinstance(quick, bool):
        raise TypeError(
            f"quick={quick!r} is not valid; expected True or False (with "
            "papermill: -p quick True or -p quick False, capitalized)"
        )
    if not isinstance(results_dir, str | os.PathLike):
        raise TypeError(
            f"results_dir={results_dir!r} is not valid; expected a folder path"
        )
    if not str(results_dir):
        raise ValueError("results_dir='' is not valid; expected a folder path")
    if random_state is not None and not isinstance(random_state, int):
        raise TypeError(
            f"random_state={random_state!r} is not valid; expected None or an int"
        )
    check_random_state(random_state)
    path = Path(results_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path
