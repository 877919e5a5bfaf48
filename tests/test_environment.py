"""The pinned stack: constraints.txt (used by make) and environment.yml agree."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STACK = (
    "torch",
    "numpy",
    "scikit-learn",
    "matplotlib",
    "seaborn",
    "jupyter-book",
    "sphinx",
    "sphinx-exercise",
    "myst-nb",
    "papermill",
    "nbclient",
)


def normalize(name: str) -> str:
    """Return a package name in PyPI's canonical form."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(lines: list[str]) -> dict[str, str]:
    """Parse ``name==version`` lines into a dict keyed by canonical name."""
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[normalize(name)] = version.strip()
    return pins


def make_environment_pins() -> dict[str, str]:
    """Return the pip pins of environment.yml (conda-level entries excluded)."""
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lists = [
        item["pip"] for item in environment["dependencies"] if isinstance(item, dict)
    ]
    return read_pins(pip_lists[0])


def test_constraints_pin_torch_exactly():
    pins = read_pins((ROOT / "constraints.txt").read_text().splitlines())
    assert pins["torch"] == "2.13.0"


@pytest.mark.parametrize("package", STACK)
def test_stack_is_pinned_in_both_files(package):
    constraints = read_pins((ROOT / "constraints.txt").read_text().splitlines())
    environment = make_environment_pins()
    assert package in constraints, f"{package} is not pinned in constraints.txt"
    assert package in environment, f"{package} is not listed in environment.yml"


def test_environment_lists_exactly_the_pins_of_constraints():
    """Issue #2: environment.yml lists the same packages as constraints.txt."""
    constraints = read_pins((ROOT / "constraints.txt").read_text().splitlines())
    environment = make_environment_pins()
    only_constraints = sorted(constraints.keys() - environment.keys())
    only_environment = sorted(environment.keys() - constraints.keys())
    assert not only_constraints, f"missing from environment.yml: {only_constraints}"
    assert not only_environment, f"missing from constraints.txt: {only_environment}"
    assert environment == constraints


def test_environment_asks_conda_for_python_only():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [item for item in environment["dependencies"] if isinstance(item, str)]
    assert "python=3.11" in conda
    assert not [item for item in conda if item.startswith("nodejs")], "npm is unused"


def make_project_dependencies() -> list[str]:
    """Return the canonical names of pyproject.toml's dependencies and extras."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    names = re.findall(r'^\s+"([A-Za-z0-9_.\-]+)[<>=!~ ]', pyproject, re.MULTILINE)
    assert "torch" in names and "pytest" in names, "the dependency lists moved"
    return [normalize(name) for name in names]


def test_project_dependencies_are_pinned():
    constraints = read_pins((ROOT / "constraints.txt").read_text().splitlines())
    missing = [name for name in make_project_dependencies() if name not in constraints]
    assert not missing, f"dependencies without a pin in constraints.txt: {missing}"


def test_project_dependencies_are_in_the_environment_file():
    environment = make_environment_pins()
    missing = [name for name in make_project_dependencies() if name not in environment]
    assert not missing, f"dependencies missing from environment.yml: {missing}"
