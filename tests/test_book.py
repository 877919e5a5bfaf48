"""The book's notebooks and the runner in tools/book.py."""

import ast
import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REQUIRED_PARAMETERS = {"quick": False, "results_dir": "_build/results"}


def load_book_tool():
    """Import tools/book.py as a module."""
    spec = importlib.util.spec_from_file_location("book", ROOT / "tools" / "book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


book = load_book_tool()


def make_notebook(*sources: str) -> nbformat.NotebookNode:
    """Build a notebook of code cells; the first one holds the parameters."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    notebook.cells[0].metadata["tags"] = ["parameters"]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return notebook


def parameter_cells(notebook: dict) -> list[dict]:
    """Return the cells tagged ``parameters``."""
    return [
        cell
        for cell in notebook["cells"]
        if "parameters" in cell.get("metadata", {}).get("tags", [])
    ]


def test_every_notebook_is_in_the_toc_and_every_entry_exists():
    entries = book.toc_entries(ROOT)
    listed = {ROOT / f"{entry}.ipynb" for entry in entries}
    assert set(NOTEBOOKS) <= listed, "a notebook is missing from _toc.yml"
    for entry in entries:
        assert (ROOT / f"{entry}.ipynb").exists() or (ROOT / f"{entry}.md").exists()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_committed_without_outputs(path):
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name} has outputs"
            assert cell["execution_count"] is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_has_one_parameters_cell_of_literals(path):
    cells = parameter_cells(json.loads(path.read_text()))
    assert len(cells) == 1, f"{path.name} has {len(cells)} parameters cells"
    values = {}
    for statement in ast.parse("".join(cells[0]["source"])).body:
        assert isinstance(statement, ast.Assign), "only assignments belong there"
        values[statement.targets[0].id] = ast.literal_eval(statement.value)
    for name, default in REQUIRED_PARAMETERS.items():
        assert values.get(name) == default, f"{path.name}: {name} is not {default!r}"
    assert "random_state" in values


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_opens_with_a_title_and_defines_nothing(path):
    notebook = json.loads(path.read_text())
    first = notebook["cells"][0]
    assert first["cell_type"] == "markdown"
    assert "".join(first["source"]).startswith("# ")
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse("".join(cell["source"]))
        definitions = [
            node
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Lambda))
        ]
        assert not definitions, f"{path.name} defines code; move it to wdcore"


def test_runner_names_the_notebook_and_the_failing_cell(tmp_path):
    notebook = make_notebook(
        "quick = False",
        "x = 1",
        "raise ValueError('boom')",
    )
    path = tmp_path / "broken.ipynb"
    nbformat.write(notebook, path)

    with pytest.raises(
        book.BookError, match=r"broken\.ipynb failed in cell 2 .*ValueError: boom"
    ):
        book.execute_notebook(
            path, quick=True, timeout=60, output_dir=tmp_path / "out", cwd=tmp_path
        )


def test_runner_stops_a_cell_that_runs_past_the_timeout(tmp_path):
    notebook = make_notebook("quick = False", "import time; time.sleep(30)")
    path = tmp_path / "slow.ipynb"
    nbformat.write(notebook, path)

    with pytest.raises(book.BookError, match=r"slow\.ipynb failed in cell .*sleep"):
        book.execute_notebook(
            path, quick=True, timeout=2, output_dir=tmp_path / "out", cwd=tmp_path
        )


def test_runner_stops_a_notebook_whose_cells_together_run_too_long(tmp_path):
    notebook = make_notebook(
        "quick = False", *["import time; time.sleep(1.5)"] * 6, "finished = True"
    )
    path = tmp_path / "long.ipynb"
    nbformat.write(notebook, path)

    with pytest.raises(
        book.BookError, match=r"long\.ipynb failed in cell [2-6] .*past its timeout"
    ):
        book.execute_notebook(
            path, quick=True, timeout=6, output_dir=tmp_path / "out", cwd=tmp_path
        )


def test_runner_passes_quick_and_writes_the_executed_copy(tmp_path):
    notebook = make_notebook("quick = False", "assert quick is True")
    path = tmp_path / "fine.ipynb"
    nbformat.write(notebook, path)

    seconds = book.execute_notebook(
        path, quick=True, timeout=60, output_dir=tmp_path / "out", cwd=tmp_path
    )
    assert seconds > 0
    executed = nbformat.read(tmp_path / "out" / "fine.ipynb", as_version=4)
    assert "quick = True" in executed.cells[1].source  # papermill's injected cell


def test_a_figure_without_caption_is_refused():
    notebook = make_notebook("quick = False", "plot()")
    notebook.cells[1].outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": "iVBOR"})
    ]

    with pytest.raises(book.BookError, match="cell 1 draws a figure"):
        book.check_figure_captions(notebook, "plots.ipynb")

    notebook.cells[1].metadata["mystnb"] = {"figure": {"caption": "A plot."}}
    book.check_figure_captions(notebook, "plots.ipynb")


def test_page_check_reports_scripts_and_styles_from_other_hosts(tmp_path):
    static = (
        '<html><script src="https://cdn.example.org/mathjax.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.org/a.css">'
        '<script src="_static/local.js"></script></html>'
    )
    server, base_url = book.serve(tmp_path)
    try:
        problems = book.page_problems(static, "<html></html>", base_url, "page.html")
    finally:
        server.shutdown()
    assert len(problems) == 2
    assert "cdn.example.org" in problems[0] and "another host" in problems[0]
    assert "fonts.example.org" in problems[1]


def test_page_check_reports_raw_tex_and_missing_images(tmp_path):
    (tmp_path / "ok.png").write_bytes(b"\x89PNG")
    server, base_url = book.serve(tmp_path)
    static = '<html><span class="math">\\(x^2\\)</span></html>'
    broken = static.replace("</span>", '</span><img src="missing.png">')
    rendered = (
        '<html><span class="math"><mjx-container>x</mjx-container></span>'
        '<img src="ok.png"></html>'
    )
    try:
        problems = book.page_problems(static, broken, base_url, "page.html")
        assert len(problems) == 2
        assert "1 of 1 formulas show raw TeX" in problems[0]
        assert "missing.png" in problems[1]
        assert book.page_problems(static, rendered, base_url, "page.html") == []
    finally:
        server.shutdown()
