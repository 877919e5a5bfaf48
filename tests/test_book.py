"""The book's notebooks and the runner in tools/book.py."""

import ast
import base64
import hashlib
import importlib.util
import io
import json
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import nbformat
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REQUIRED_PARAMETERS = {"quick": False, "results_dir": "_build/results"}


def load_book_tool():
    """Import tools/book.py as a module."""
    spec = importlib.util.spec_from_file_location("book", ROOT / "tools" / "book.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["book"] = module  # dataclasses look their module up there
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

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "broken.ipynb").write_text("{}")  # an earlier, complete run

    with pytest.raises(
        book.BookError, match=r"broken\.ipynb failed in cell 2 .*ValueError: boom"
    ):
        book.execute_notebook(
            path, quick=True, timeout=60, output_dir=tmp_path / "out", cwd=tmp_path
        )
    assert (tmp_path / "out" / "broken.ipynb").read_text() == "{}"


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
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["fine.ipynb"]
    executed = nbformat.read(tmp_path / "out" / "fine.ipynb", as_version=4)
    assert "quick = True" in executed.cells[1].source  # papermill's injected cell


def make_figure_notebook(figure: dict, *, draws: bool) -> nbformat.NotebookNode:
    """A notebook whose cell 1 has ``figure`` metadata and maybe an image output."""
    notebook = make_notebook("quick = False", "plot()")
    if figure:
        notebook.cells[1].metadata["mystnb"] = {"figure": figure}
    if draws:
        notebook.cells[1].outputs = [
            nbformat.v4.new_output("display_data", data={"image/png": "iVBOR"})
        ]
    return notebook


def test_a_figure_with_caption_and_name_is_accepted():
    figure = {"caption": "A plot.", "name": "fig-plot"}
    book.check_figures(make_figure_notebook(figure, draws=True), "plots.ipynb")


def test_a_figure_without_caption_is_refused():
    notebook = make_figure_notebook({}, draws=True)

    with pytest.raises(book.BookError, match="plots.ipynb, cell 1 draws a figure"):
        book.check_figures(notebook, "plots.ipynb")


def test_a_figure_caption_without_an_image_is_refused():
    """Missing figures: myst-nb silently drops a captioned cell that drew nothing."""
    notebook = make_figure_notebook(
        {"caption": "A plot.", "name": "fig-plot"}, draws=False
    )

    with pytest.raises(
        book.BookError,
        match=r"plots\.ipynb, cell 1 has figure 'fig-plot' .* no image/png output",
    ):
        book.check_figures(notebook, "plots.ipynb")


def test_a_figure_caption_without_a_name_is_refused():
    """Missing figures: STYLE rule 23 asks every figure for a caption and a name."""
    notebook = make_figure_notebook({"caption": "A plot."}, draws=True)

    with pytest.raises(
        book.BookError, match=r"plots\.ipynb, cell 1 has a figure caption but no"
    ):
        book.check_figures(notebook, "plots.ipynb")


def test_figure_cells_are_numbered_without_the_injected_cell():
    notebook = make_figure_notebook({}, draws=True)
    injected = nbformat.v4.new_code_cell("quick = True")
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(1, injected)

    with pytest.raises(book.BookError, match="cell 1 draws a figure"):
        book.check_figures(notebook, "plots.ipynb")


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


def test_runner_passes_results_dir_relative_to_its_working_directory(tmp_path):
    notebook = make_notebook(
        "quick = False\nresults_dir = '_build/results'",
        "assert results_dir == 'out/results', results_dir",
    )
    path = tmp_path / "paths.ipynb"
    nbformat.write(notebook, path)

    book.execute_notebook(
        path,
        quick=True,
        timeout=60,
        output_dir=tmp_path / "out" / "executed",
        results_dir=tmp_path / "out" / "results",
        cwd=tmp_path,
    )
    assert (tmp_path / "out" / "executed" / "paths.ipynb").exists()


def test_execute_writes_copies_results_and_timings_into_the_build_dir(tmp_path):
    """Separate builds: the quick build must not overwrite the full one's files."""
    build = tmp_path / "quick"
    notebook = make_notebook(
        "quick = False\nresults_dir = '_build/results'",
        "from pathlib import Path\n"
        "Path(results_dir).mkdir(parents=True, exist_ok=True)\n"
        "(Path(results_dir) / 'table.csv').write_text('a\\n1\\n')",
    )
    path = tmp_path / "chapter.ipynb"
    nbformat.write(notebook, path)

    argv = ["--build-dir", str(build), "execute", str(path), "--quick"]
    assert book.main(argv) == 0

    assert (build / "executed" / "chapter.ipynb").exists()
    assert (build / "results" / "table.csv").read_text() == "a\n1\n"
    timings = (build / "results" / "timings.csv").read_text().splitlines()
    assert timings[0] == "notebook,quick,seconds,finished"
    assert timings[1].startswith("chapter,True,")


def test_stage_reads_and_writes_the_build_dir(tmp_path):
    build = book.Build(tmp_path / "quick")
    mathjax = tmp_path / "mathjax" / "es5"
    mathjax.mkdir(parents=True)
    (mathjax / "tex-chtml.js").write_text("// MathJax")
    with pytest.raises(book.BookError, match="has not been executed into"):
        book.stage_book(build, mathjax=mathjax)

    for notebook in book.toc_notebooks(ROOT):
        executed = build.executed / notebook.relative_to(ROOT)
        executed.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(make_notebook("quick = True"), executed)
    book.stage_book(build, mathjax=mathjax)

    assert (build.book / "_toc.yml").exists()
    assert (build.book / "intro.md").exists()
    assert (build.book / "_vendor" / "mathjax" / "tex-chtml.js").exists()
    assert len(list((build.book / "notebooks").glob("*.ipynb"))) == len(NOTEBOOKS)


def test_stage_folds_the_injected_parameters_cell(tmp_path):
    build = book.Build(tmp_path / "quick")
    mathjax = tmp_path / "mathjax" / "es5"
    mathjax.mkdir(parents=True)
    (mathjax / "tex-chtml.js").write_text("// MathJax")
    for notebook in book.toc_notebooks(ROOT):
        executed = build.executed / notebook.relative_to(ROOT)
        executed.parent.mkdir(parents=True, exist_ok=True)
        cells = make_notebook("quick = False", "# Parameters\nquick = True", "x = 1")
        cells.cells[0].metadata["tags"] = ["parameters"]
        cells.cells[1].metadata["tags"] = ["injected-parameters"]
        nbformat.write(cells, executed)
    book.stage_book(build, mathjax=mathjax)

    staged = nbformat.read(next((build.book / "notebooks").glob("*.ipynb")), 4)
    assert [cell.metadata.get("tags", []) for cell in staged.cells] == [
        ["parameters"],
        ["injected-parameters", "hide-cell"],
        [],
    ]


def make_tarball(path: Path, files: dict[str, bytes]) -> str:
    """Write a gzipped tarball of ``files`` and return its npm-style integrity."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


MATHJAX_FILES = {
    "package/package.json": b'{"name": "mathjax", "version": "3.2.2"}',
    "package/LICENSE": b"Apache-2.0",
    "package/README.md": b"not needed",
    "package/es5/tex-chtml.js": b"// MathJax",
    "package/es5/input/tex/extensions/ams.js": b"// ams",
    "package/es6/tex-chtml.js": b"// not needed",
}


def test_mathjax_is_checked_and_only_its_es5_build_unpacked(tmp_path):
    archive = tmp_path / "mathjax-3.2.2.tgz"
    integrity = make_tarball(archive, MATHJAX_FILES)
    destination = tmp_path / "build" / "mathjax"

    fetched = book.fetch_mathjax(
        destination, url=archive.as_uri(), integrity=integrity, version="3.2.2"
    )

    assert fetched
    unpacked = sorted(
        str(path.relative_to(destination))
        for path in destination.rglob("*")
        if path.is_file()
    )
    assert unpacked == [
        "LICENSE",
        "es5/input/tex/extensions/ams.js",
        "es5/tex-chtml.js",
        "package.json",
    ]
    assert book.mathjax_version(destination) == "3.2.2"
    assert [path.name for path in destination.parent.iterdir()] == ["mathjax"]
    assert not book.fetch_mathjax(
        destination, url=archive.as_uri(), integrity=integrity, version="3.2.2"
    ), "a second call downloads nothing"


def test_mathjax_with_another_hash_is_refused_and_nothing_is_written(tmp_path):
    archive = tmp_path / "mathjax-3.2.2.tgz"
    make_tarball(archive, MATHJAX_FILES)
    destination = tmp_path / "build" / "mathjax"

    with pytest.raises(book.BookError, match="does not match its pinned integrity"):
        book.fetch_mathjax(destination, url=archive.as_uri(), version="3.2.2")
    assert list(destination.parent.iterdir()) == []


def test_mathjax_pin_is_npm_sha512_of_the_version():
    assert book.MATHJAX_INTEGRITY.startswith("sha512-")
    assert len(base64.b64decode(book.MATHJAX_INTEGRITY[7:])) == 64
    assert book.MATHJAX_URL.endswith(f"/mathjax-{book.MATHJAX_VERSION}.tgz")


def test_mathjax_entry_outside_the_destination_is_refused(tmp_path):
    archive = tmp_path / "evil.tgz"
    files = {**MATHJAX_FILES, "package/es5/../../../escaped.js": b"// evil"}
    integrity = make_tarball(archive, files)
    destination = tmp_path / "build" / "mathjax"

    with pytest.raises(book.BookError, match="unsafe entry"):
        book.unpack_mathjax(archive, destination, integrity=integrity)
    assert not destination.exists()
    assert not list(tmp_path.rglob("escaped.js"))


def test_a_failed_mathjax_update_keeps_the_previous_copy(tmp_path):
    good = tmp_path / "good.tgz"
    destination = tmp_path / "build" / "mathjax"
    book.unpack_mathjax(good, destination, integrity=make_tarball(good, MATHJAX_FILES))
    broken = tmp_path / "broken.tgz"
    files = {"package/package.json": b'{"version": "9.9.9"}'}

    with pytest.raises(book.BookError, match="no package/es5/tex-chtml.js"):
        book.unpack_mathjax(broken, destination, integrity=make_tarball(broken, files))
    assert book.mathjax_version(destination) == "3.2.2"
    assert [path.name for path in destination.parent.iterdir()] == ["mathjax"]


def check_process_gone(pid: int, *, wait: float = 10) -> None:
    """Fail unless process ``pid`` is gone (or a zombie) within ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.2)
    pytest.fail(f"process {pid} still runs after the runner was stopped")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_runner_stops_papermill_and_the_kernel(tmp_path, signum):
    """Interrupts: Ctrl-C or SIGTERM must not leave a kernel training on."""
    marker = tmp_path / "pids.txt"
    notebook = make_notebook(
        "quick = False",
        f"import os, pathlib\npathlib.Path({str(marker)!r}).write_text("
        "f'{os.getpid()} {os.getppid()}')",
        "import time; time.sleep(120)",
    )
    path = tmp_path / "sleepy.ipynb"
    nbformat.write(notebook, path)
    command = [sys.executable, str(ROOT / "tools" / "book.py")]
    command += ["--build-dir", str(tmp_path / "build"), "execute", str(path)]
    runner = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 90
        while not marker.exists() or not marker.read_text():
            assert runner.poll() is None, "the runner stopped before the kernel ran"
            assert time.monotonic() < deadline, "the kernel never started"
            time.sleep(0.2)
        kernel, papermill = map(int, marker.read_text().split())

        runner.send_signal(signum)
        _, error = runner.communicate(timeout=30)
    finally:
        runner.kill()
        runner.wait()

    # Regression: Ctrl-C printed a KeyboardInterrupt traceback from book.py.
    assert runner.returncode == 128 + signum  # 130 for Ctrl-C, 143 for SIGTERM
    cause = "interrupted" if signum == signal.SIGINT else "interrupted by SIGTERM"
    assert error == f"{cause}: stopped sleepy.ipynb; it has no executed copy yet\n"
    check_process_gone(papermill)
    check_process_gone(kernel)
    executed = tmp_path / "build" / "executed"
    assert not (executed / "sleepy.ipynb").exists(), "half a notebook would be staged"


@pytest.mark.parametrize(
    ("stop", "status", "cause"),
    [
        (KeyboardInterrupt(), 130, "interrupted"),
        (book.SignalExit(128 + signal.SIGTERM), 143, "interrupted by SIGTERM"),
    ],
)
@pytest.mark.parametrize("executed_before", [False, True])
def test_an_interrupted_notebook_is_named_in_one_line(
    tmp_path, monkeypatch, capsys, stop, status, cause, executed_before
):
    notebook = tmp_path / "chapter.ipynb"
    nbformat.write(make_notebook("quick = False"), notebook)
    build = tmp_path / "build"
    if executed_before:
        (build / "executed").mkdir(parents=True)
        (build / "executed" / "chapter.ipynb").write_text("{}")

    def interrupted(*args, **kwargs):
        raise stop

    monkeypatch.setattr(book, "execute_notebook", interrupted)
    assert book.main(["--build-dir", str(build), "execute", str(notebook)]) == status
    kept = (
        "its previous executed copy is kept"
        if executed_before
        else "it has no executed copy yet"
    )
    assert capsys.readouterr().err == f"{cause}: stopped chapter.ipynb; {kept}\n"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_an_interrupt_of_another_command_is_one_line(tmp_path, monkeypatch, capsys):
    def interrupted(build):
        raise KeyboardInterrupt

    monkeypatch.setattr(book, "stage_book", interrupted)
    assert book.main(["--build-dir", str(tmp_path), "stage"]) == 130
    assert capsys.readouterr().err == "interrupted: stopped the 'stage' command\n"
