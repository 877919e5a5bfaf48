"""Tests of the command line dispatcher ``python -m wdcore``."""

import pytest

from wdcore.__main__ import USAGE, main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["foo"], "error: unknown command 'foo'; expected 'zoo train' or 'describe'"),
        (["zoo", "bar"], "error: unknown command 'zoo bar'; expected 'zoo train'"),
        (["zoo"], "error: no command; expected 'zoo train'"),
        ([], "error: no command given"),
    ],
)
def test_unknown_commands_are_named(capsys, argv, message):
    """Regression: ``python -m wdcore foo`` printed the usage without saying why."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"{USAGE}{message}\n"


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["zoo", "--help"]])
def test_help_goes_to_standard_output(capsys, argv):
    assert main(argv) == 0
    assert capsys.readouterr().out == USAGE


def test_subcommands_are_dispatched(capsys):
    with pytest.raises(SystemExit, match="0"):
        main(["zoo", "train", "--help"])
    assert "python -m wdcore zoo train" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="0"):
        main(["describe", "--help"])
    assert "describe" in capsys.readouterr().out
