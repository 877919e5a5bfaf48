import pytest

from wdcore.settings import check_common_parameters


@pytest.mark.parametrize("quick", [True, False])
def test_valid_parameters_create_the_results_folder(tmp_path, quick):
    path = check_common_parameters(
        quick=quick, results_dir=tmp_path / "a" / "b", random_state=3
    )
    assert path == tmp_path / "a" / "b" and path.is_dir()


def test_no_random_state_is_valid(tmp_path):
    assert check_common_parameters(
        quick=False, results_dir=str(tmp_path), random_state=None
    ).is_dir()


@pytest.mark.parametrize("quick", ["false", "False", 0, 1, None])
def test_quick_must_be_a_bool(tmp_path, quick):
    """papermill's `-p quick false` gives a string, which reads as true."""
    with pytest.raises(TypeError, match=rf"quick={quick!r} is not valid"):
        check_common_parameters(quick=quick, results_dir=tmp_path, random_state=0)


@pytest.mark.parametrize(
    ("random_state", "error", "match"),
    [
        (-1, ValueError, r"random_state=-1 is not valid; expected None, a non-neg"),
        ("7", TypeError, r"random_state='7' is not valid; expected None or an int"),
        (1.5, TypeError, r"random_state=1.5 is not valid"),
        (True, TypeError, r"random_state=True is not valid"),
    ],
)
def test_random_state_errors(tmp_path, random_state, error, match):
    with pytest.raises(error, match=match):
        check_common_parameters(
            quick=True, results_dir=tmp_path, random_state=random_state
        )


@pytest.mark.parametrize(("results_dir", "error"), [("", ValueError), (3, TypeError)])
def test_results_dir_errors(results_dir, error):
    with pytest.raises(error, match=rf"results_dir={results_dir!r} is not valid"):
        check_common_parameters(quick=True, results_dir=results_dir, random_state=0)
