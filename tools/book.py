"""Execute the book's notebooks with papermill, stage them, build and check the HTML.

The Makefile drives the book through this script:

``execute``
    Run notebooks with papermill (repository root as working directory) and write
    the executed copies to ``_build/executed/notebooks``. A failing cell or a cell
    that runs past the timeout stops the run with the notebook's name, the cell's
    number and its first lines. The wall time of every notebook is appended to
    ``_build/results/timings.csv``.
``stage``
    Assemble the book source in ``_build/book``: the configuration, the markdown
    pages, the executed notebooks and an offline copy of MathJax. Fails when a
    notebook has not been executed, or when a cell that draws a figure has no
    caption.
``check``
    Open every built page in headless Chromium and fail when a page with maths
    still shows raw TeX, or when an image is missing or empty.

Run ``python tools/book.py COMMAND --help`` for the options.
"""

from __future__ import annotations

import argparse
import csv
import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
EXECUTED = BUILD / "executed"
STAGE = BUILD / "book"
MATHJAX = BUILD / "npm" / "node_modules" / "mathjax" / "es5"
BOOK_FILES = ("_config.yml", "_toc.yml", "references.bib")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    # Resolve no host but the local server, so a page that needs a CDN fails.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


class BookError(RuntimeError):
    """A notebook, the staged book or a built page is not as it must be."""


def toc_entries(root: Path = ROOT) -> list[str]:
    """Return the files of ``_toc.yml`` in reading order, without suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    entries = [toc["root"]]
    for part in toc.get("parts", []):
        entries += [chapter["file"] for chapter in part["chapters"]]
    return entries


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """Return the notebooks listed in ``_toc.yml``, in reading order."""
    paths = [root / f"{entry}.ipynb" for entry in toc_entries(root)]
    return [path for path in paths if path.exists()]


def read_cells(executed: Path) -> list[dict]:
    """Return the cells of papermill's output copy that the notebook has.

    Papermill adds a cell of injected parameters and, after an error, markdown
    cells that point to it; without them the numbers match the notebook's own.
    """
    try:
        cells = json.loads(executed.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return []  # not written yet, or cut off mid-write by a timeout
    added = {"injected-parameters", "papermill-error-cell-tag"}
    return [
        cell
        for cell in cells
        if not added & set(cell.get("metadata", {}).get("tags", []))
    ]


def describe_failure(executed: Path, notebook: Path, summary: str) -> str:
    """Say which cell of ``notebook`` failed or was running, and why."""
    cells = read_cells(executed)
    statuses = [cell.get("metadata", {}).get("papermill", {}) for cell in cells]
    failed = [
        index
        for index, cell in enumerate(cells)
        if statuses[index].get("exception")
        or any(out.get("output_type") == "error" for out in cell.get("outputs", []))
    ]
    running = [
        i for i, status in enumerate(statuses) if status.get("status") == "running"
    ]
    where = "an unknown cell"
    if failed or running:
        index = (failed or running)[0]
        source = "".join(cells[index]["source"]).strip().splitlines()[:3]
        where = f"cell {index} (" + " | ".join(source) + ")"
    return f"notebook {notebook.name} failed in {where}: {summary}"


def error_summary(stderr: str) -> str:
    """The line of papermill's error output that says what went wrong."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    timed_out = [line for line in lines if "timed out" in line]
    return (timed_out or lines or ["papermill failed without a message"])[-1]


def execute_notebook(
    notebook: Path,
    *,
    quick: bool,
    timeout: float,
    output_dir: Path = EXECUTED,
    cwd: Path = ROOT,
) -> float:
    """Execute one notebook with papermill and return its wall time in seconds.

    ``timeout`` bounds the whole notebook (and so each cell): papermill runs in
    a process group of its own, which is killed when the time is up.
    """
    output = output_dir / notebook.relative_to(cwd)
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [
        *(sys.executable, "-m", "papermill", str(notebook), str(output)),
        *("-p", "quick", str(quick), "--cwd", str(cwd), "-k", "python3"),
        *("--execution-timeout", str(max(1, int(timeout))), "--no-progress-bar"),
    ]
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # The kernel watches its parent and exits when papermill is killed.
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        summary = f"the notebook ran past its timeout of {timeout:g} s"
        raise BookError(describe_failure(output, notebook, summary)) from None
    if process.returncode != 0:
        raise BookError(describe_failure(output, notebook, error_summary(stderr)))
    return time.perf_counter() - start


def record_timing(notebook: Path, seconds: float, *, quick: bool) -> None:
    """Append one notebook's wall time to ``_build/results/timings.csv``."""
    path = BUILD / "results" / "timings.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["notebook", "quick", "seconds", "finished"])
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        writer.writerow([notebook.stem, quick, f"{seconds:.1f}", stamp])


def command_execute(args: argparse.Namespace) -> None:
    """Execute the requested notebooks, or every notebook of the book."""
    notebooks = [Path(name).resolve() for name in args.notebooks] or toc_notebooks()
    for notebook in notebooks:
        print(f"executing {notebook.relative_to(ROOT)} (quick={args.quick})")
        sys.stdout.flush()
        seconds = execute_notebook(notebook, quick=args.quick, timeout=args.timeout)
        record_timing(notebook, seconds, quick=args.quick)
        print(f"  done in {seconds:.0f} s")


def check_figure_captions(notebook: dict, name: str) -> None:
    """Fail if a cell that shows an image has no myst-nb figure caption."""
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        has_image = any("image/png" in out.get("data", {}) for out in cell["outputs"])
        figure = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
        if has_image and not figure.get("caption"):
            raise BookError(
                f"notebook {name}, cell {index} draws a figure but has no "
                "mystnb.figure.caption in its metadata"
            )


def command_stage(args: argparse.Namespace) -> None:
    """Copy the book source, executed notebooks and MathJax into ``_build/book``."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    for name in BOOK_FILES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, STAGE / name)
    for entry in toc_entries():
        source = ROOT / f"{entry}.md"
        if source.exists():
            (STAGE / source.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, STAGE / source.relative_to(ROOT))
            continue
        executed = EXECUTED / f"{entry}.ipynb"
        if not executed.exists():
            raise BookError(f"{entry}.ipynb has not been executed: run 'execute' first")
        check_figure_captions(json.loads(executed.read_text()), executed.name)
        (STAGE / f"{entry}.ipynb").parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(executed, STAGE / f"{entry}.ipynb")
    if not (MATHJAX / "tex-chtml.js").exists():
        raise BookError(f"MathJax is missing at {MATHJAX}: run 'make setup' first")
    shutil.copytree(MATHJAX, STAGE / "_vendor" / "mathjax")


def find_chromium() -> str:
    """Return the path of a Chromium executable."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise BookError("no Chromium found: install the Debian package 'chromium'")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serve files without logging every request."""

    def log_message(self, *args: object) -> None:
        """Log nothing."""


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``directory`` on a free loopback port in a background thread."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def rendered_dom(chromium: str, url: str, profile: Path) -> str:
    """Return the page's DOM after its scripts ran in headless Chromium."""
    command = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--virtual-time-budget=20000",
        "--dump-dom",
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or "<html" not in result.stdout:
        raise BookError(f"Chromium could not render {url}: {result.stderr[-500:]}")
    return result.stdout


def page_problems(static_html: str, dom: str, base_url: str, page: str) -> list[str]:
    """List what is wrong with one page: raw TeX, a missing image or a CDN."""
    from bs4 import BeautifulSoup

    problems = []
    static = BeautifulSoup(static_html, "html.parser")
    rendered = BeautifulSoup(dom, "html.parser")
    for element in static.select("script[src], link[rel=stylesheet][href]"):
        address = element.get("src") or element.get("href")
        if urllib.parse.urlparse(address).netloc:
            problems.append(f"{page}: loads {address!r} from another host")
    n_math = len(static.select(".math"))
    if n_math:
        unrendered = [
            element
            for element in rendered.select(".math")
            if not element.find("mjx-container")
        ]
        if unrendered:
            text = unrendered[0].get_text()[:60]
            problems.append(
                f"{page}: {len(unrendered)} of {n_math} formulas show raw TeX, "
                f"e.g. {text!r}"
            )
    for image in rendered.find_all("img"):
        source = image.get("src", "")
        if source.startswith("data:"):
            continue
        url = urllib.parse.urljoin(f"{base_url}/{page}", source)
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                size = len(response.read())
        except OSError as error:
            problems.append(f"{page}: image {source!r} cannot be loaded ({error})")
            continue
        if size == 0:
            problems.append(f"{page}: image {source!r} is empty")
    return problems


def command_check(args: argparse.Namespace) -> None:
    """Render every page of the built book and fail on raw TeX or broken images."""
    html = Path(args.html).resolve()
    chromium = find_chromium()
    server, base_url = serve(html)
    problems, n_math_pages = [], 0
    try:
        with tempfile.TemporaryDirectory() as profile:
            for entry in toc_entries():
                page = f"{entry}.html"
                if not (html / page).exists():
                    problems.append(f"{page}: missing from the built book")
                    continue
                static_html = (html / page).read_text()
                n_math_pages += 'class="math' in static_html
                dom = rendered_dom(chromium, f"{base_url}/{page}", Path(profile))
                problems += page_problems(static_html, dom, base_url, page)
    finally:
        server.shutdown()
    if problems:
        raise BookError("browser check failed:\n  " + "\n  ".join(problems))
    print(
        f"browser check passed: {len(toc_entries())} pages, {n_math_pages} with maths"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    execute = commands.add_parser("execute", help="run notebooks with papermill")
    execute.add_argument("notebooks", nargs="*", help="default: every notebook")
    execute.add_argument("--quick", action="store_true", help="pass quick=True")
    execute.add_argument(
        "--timeout", type=float, default=1200, help="seconds a notebook may run"
    )
    commands.add_parser("stage", help="assemble _build/book")
    check = commands.add_parser("check", help="check built pages in Chromium")
    check.add_argument("--html", default=str(BUILD / "html"))
    args = parser.parse_args(argv)
    handlers = {
        "execute": command_execute,
        "stage": command_stage,
        "check": command_check,
    }
    try:
        handlers[args.command](args)
    except BookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
