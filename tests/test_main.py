"""Tests of the command line dispatcher ``python -m wdcore``."""

import warnings

import pytest
from safetensors.torch import save_file
from torch import nn

from wdcore.__main__ import USAGE, _one_line_warnings, _show_warning, main


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


def test_warnings_are_one_clean_line(tmp_path, capsys):
    """Regression: describing a plain safetensors checkpoint printed the warning
    with a Python source line ("io.py:396 ... return extract_state_dict(...)")."""
    model = nn.Module()
    model.features = nn.Linear(4, 4)
    model.classifier = nn.Linear(4, 2)
    checkpoint = tmp_path / "named.safetensors"
    save_file(dict(model.state_dict()), checkpoint)

    argv = [
        "describe",
        str(checkpoint),
        "--size",
        "4",
        "--out",
        str(tmp_path / "d.npy"),
    ]
    assert main(argv) == 0
    error = capsys.readouterr().err
    assert error.startswith(f"warning: checkpoint {str(checkpoint)!r} does not ")
    assert error.count("\n") == 1
    assert "io.py" not in error
    assert "CheckpointOrderWarning" not in error


def test_one_line_warnings_join_lines_and_keep_filters(capsys):
    with _one_line_warnings():
        warnings.warn("first line\n  second line", UserWarning, stacklevel=1)
    assert capsys.readouterr().err == "warning: first line second line\n"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _one_line_warnings():
            warnings.warn("hidden", UserWarning, stacklevel=1)
    assert capsys.readouterr().err == ""
    assert warnings.showwarning is not _show_warning
