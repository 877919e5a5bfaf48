"""Command line of wdcore.

``python -m wdcore zoo train DIRECTORY ...`` trains (or finishes) a model zoo and
``python -m wdcore describe CHECKPOINT --size 32x32 --out FILE`` writes the MI-WD
descriptor of a checkpoint. ``python -m wdcore COMMAND --help`` lists the options.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator

USAGE = """usage: python -m wdcore {zoo train,describe} ...

commands:
  zoo train DIRECTORY ...   train the models of a zoo that are not trained yet
  describe CHECKPOINT ...   write the MI-WD descriptor of a checkpoint
"""
HELP_FLAGS = (["-h"], ["--help"])


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """Write a warning as one ``warning:`` line, without Python's source line."""
    (file or sys.stderr).write(f"warning: {' '.join(str(message).split())}\n")


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Show warnings as single ``warning: ...`` lines meanwhile.

    Warning filters (``-W``, ``PYTHONWARNINGS``) still decide which are shown.
    """
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        yield


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``python -m wdcore`` to a subcommand and return its exit status.

    ``zoo train`` runs :func:`wdcore.zoo.main_train` and ``describe`` runs
    :func:`wdcore.descriptors.main_describe`; ``-h``/``--help`` prints the
    usage. Warnings the subcommands raise (such as a guessed tensor order or a
    file that is not part of a zoo) are written to standard error as one
    ``warning: ...`` line each, without the Python source line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``python -m wdcore``; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The subcommand's exit status; 0 after printing the usage for ``-h``
        or ``--help``; 2 (with the usage and an ``error:`` line on standard
        error) for a missing or unknown command.

    Raises
    ------
    SystemExit
        From a subcommand's argument parser: status 2 for a bad option and 0
        after its ``--help``.

    Examples
    --------
    >>> main(["--help"])  # doctest: +ELLIPSIS
    usage: python -m wdcore {zoo train,describe} ...
    ...
    0
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["zoo", "train"]:
        from wdcore.zoo import main_train

        with _one_line_warnings():
            return main_train(argv[2:])
    if argv[:1] == ["describe"]:
        from wdcore.descriptors import main_describe

        with _one_line_warnings():
            return main_describe(argv[1:])
    if argv[:1] in HELP_FLAGS or (argv[:1] == ["zoo"] and argv[1:2] in HELP_FLAGS):
        sys.stdout.write(USAGE)
        return 0
    sys.stderr.write(USAGE)
    if argv[:1] == ["zoo"]:
        given = f"unknown command {' '.join(argv[:2])!r}" if argv[1:] else "no command"
        sys.stderr.write(f"error: {given}; expected 'zoo train'\n")
    elif argv:
        sys.stderr.write(
            f"error: unknown command {argv[0]!r}; expected 'zoo train' or 'describe'\n"
        )
    else:
        sys.stderr.write("error: no command given\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
