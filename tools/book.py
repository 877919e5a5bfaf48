"""Execute the book's notebooks with papermill, stage them, build and check the HTML.

The Makefile drives the book through this script. Every command works in one build
directory (``--build-dir``, default ``_build``; ``make test`` uses ``_build/quick``
so that its quick build never overwrites the full book):

``mathjax``
    Download MathJax from the npm registry (no Node.js needed), check it against its
    pinned integrity hash and unpack its ``es5`` build into ``_build/mathjax``, which
    every build shares.
``execute``
    Run notebooks with papermill (repository root as working directory, with
    ``results_dir`` set to ``BUILD_DIR/results``) and write the executed copies to
    ``BUILD_DIR/executed/notebooks``. A failing cell or a cell that runs past the
    timeout stops the run with the notebook's name, the cell's number and its first
    lines. Ctrl-C or SIGTERM stops papermill and its kernel too, keeps the
    notebook's previous executed copy, says so in one line and exits with 130
    (143 for SIGTERM). The wall time of every notebook is appended to
    ``BUILD_DIR/results/timings.csv``.
``stage``
    Assemble the book source in ``BUILD_DIR/book``: the configuration, the markdown
    pages, the executed notebooks and the offline copy of MathJax. Fails when a
    notebook has not been executed, when a cell that draws a figure has no caption,
    or when a cell with a figure caption drew nothing or has no figure name.
``check``
    Open every page of ``BUILD_DIR/html`` in headless Chromium and fail when a page
    with maths still shows raw TeX, or when an image is missing or empty.

Run ``python tools/book.py COMMAND --help`` for the options.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import functools
import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
# MathJax 3 as published on the npm registry; the integrity is npm's own
# (``npm view mathjax@3.2.2 dist.integrity``), so a changed file is refused.
MATHJAX_VERSION = "3.2.2"
MATHJAX_URL = f"https://registry.npmjs.org/mathjax/-/mathjax-{MATHJAX_VERSION}.tgz"
MATHJAX_INTEGRITY = (
    "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/"
    "O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
)
# Shared by the full and the quick build: the es5 build, package.json and LICENSE.
MATHJAX_DIR = BUILD / "mathjax"
MATHJAX = MATHJAX_DIR / "es5"
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


class SignalExit(SystemExit):
    """SystemExit raised by a termination signal; its code is 128 + the signal."""


@dataclass(frozen=True)
class Build:
    """The directories of one build of the book, the full one or the quick one."""

    root: Path

    @property
    def executed(self) -> Path:
        """Papermill's executed copies of the notebooks."""
        return self.root / "executed"

    @property
    def results(self) -> Path:
        """The figures and tables the notebooks write, and ``timings.csv``."""
        return self.root / "results"

    @property
    def book(self) -> Path:
        """The staged book source that Jupyter Book builds."""
        return self.root / "book"

    @property
    def html(self) -> Path:
        """The built HTML book (the Makefile copies it here)."""
        return self.root / "html"


def display_path(path: Path) -> str:
    """Return ``path`` relative to the repository root when it lies inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def mathjax_version(directory: Path = MATHJAX_DIR) -> str | None:
    """Return the version of the MathJax unpacked in ``directory``, or None."""
    try:
        package = json.loads((directory / "package.json").read_text())
    except (OSError, ValueError):
        return None
    if not (directory / "es5" / "tex-chtml.js").exists():
        return None
    return package.get("version")


def check_integrity(archive: Path, integrity: str) -> None:
    """Fail unless ``archive`` has the npm-style ``integrity`` (``sha512-<base64>``)."""
    algorithm, _, expected = integrity.partition("-")
    with archive.open("rb") as handle:
        digest = hashlib.file_digest(handle, algorithm).digest()
    actual = base64.b64encode(digest).decode()
    if actual != expected:
        raise BookError(
            f"{archive.name} does not match its pinned integrity: expected "
            f"{integrity!r}, got {algorithm}-{actual}; refusing to use it"
        )


def unpack_mathjax(
    archive: Path, destination: Path, *, integrity: str = MATHJAX_INTEGRITY
) -> None:
    """Check MathJax's npm tarball and unpack its es5 build into ``destination``.

    Everything is unpacked into a scratch directory beside ``destination`` and
    renamed into place at the end, so an interruption leaves no half-copied MathJax.
    """
    check_integrity(archive, integrity)
    destination.parent.mkdir(parents=True, exist_ok=True)
    wanted = ("package/package.json", "package/LICENSE")
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".mathjax-") as tmp:
        scratch = Path(tmp)
        with tarfile.open(archive, "r:gz") as tar:
            members = [
                member
                for member in tar.getmembers()
                if member.name.startswith("package/es5/") or member.name in wanted
            ]
            try:
                tar.extractall(scratch, members=members, filter="data")
            except tarfile.FilterError as error:
                raise BookError(
                    f"{archive.name} holds an unsafe entry: {error}"
                ) from None
        unpacked = scratch / "package"
        if not (unpacked / "es5" / "tex-chtml.js").exists():
            raise BookError(f"{archive.name} has no package/es5/tex-chtml.js")
        if destination.exists():
            destination.rename(scratch / "previous")
        unpacked.rename(destination)


def fetch_mathjax(
    destination: Path = MATHJAX_DIR,
    *,
    url: str = MATHJAX_URL,
    integrity: str = MATHJAX_INTEGRITY,
    version: str = MATHJAX_VERSION,
) -> bool:
    """Download MathJax ``version`` into ``destination`` unless it is there already.

    Returns True when it was downloaded, False when ``destination`` already held it.
    """
    if mathjax_version(destination) == version:
        return False
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".mathjax-") as tmp:
        archive = Path(tmp) / url.rsplit("/", 1)[-1]
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                with archive.open("wb") as handle:
                    shutil.copyfileobj(response, handle)
        except OSError as error:  # urllib's URLError included
            raise BookError(f"could not download MathJax from {url}: {error}") from None
        unpack_mathjax(archive, destination, integrity=integrity)
    return True


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


def own_cells(cells: list[dict]) -> list[dict]:
    """Drop the cells papermill adds, so cell numbers match the notebook's own.

    Papermill adds a cell of injected parameters and, after an error, markdown
    cells that point to it.
    """
    added = {"injected-parameters", "papermill-error-cell-tag"}
    return [
        cell
        for cell in cells
        if not added & set(cell.get("metadata", {}).get("tags", []))
    ]


def read_cells(executed: Path) -> list[dict]:
    """Return the cells of papermill's output copy that the notebook has."""
    try:
        cells = json.loads(executed.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return []  # not written yet, or cut off mid-write by a timeout
    return own_cells(cells)


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


def stop_notebook(process: subprocess.Popen) -> None:
    """Kill papermill, its kernel and whatever the kernel started; reap papermill."""
    pids = [process.pid]
    with contextlib.suppress(psutil.NoSuchProcess):
        descendants = psutil.Process(process.pid).children(recursive=True)
        pids += [child.pid for child in descendants]

    # The kernel leads a session and group of its own (jupyter_client starts it
    # so), so killing papermill's group alone would leave it training.
    own_group = os.getpgrp()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            group = os.getpgid(pid)
            if group != own_group:
                os.killpg(group, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
    process.wait()
    if process.stderr:
        process.stderr.close()


def executed_copy(notebook: Path, output_dir: Path, cwd: Path = ROOT) -> Path:
    """Where :func:`execute_notebook` puts the executed copy of ``notebook``."""
    inside = notebook.is_relative_to(cwd)
    return output_dir / (notebook.relative_to(cwd) if inside else notebook.name)


def execute_notebook(
    notebook: Path,
    *,
    quick: bool,
    timeout: float,
    output_dir: Path = BUILD / "executed",
    results_dir: Path | None = None,
    cwd: Path = ROOT,
) -> float:
    """Execute one notebook with papermill and return its wall time in seconds.

    ``timeout`` bounds the whole notebook (and so each cell). Papermill runs in a
    process group of its own; when the time is up, or when anything interrupts
    the wait (Ctrl-C, SIGTERM turned into SystemExit), papermill and its kernel
    are killed, and the executed copy of an earlier run is left as it was (the
    failed run's copy stays beside it, as ``NAME.partial.ipynb``).
    ``results_dir``, when given, is passed as the notebook's ``results_dir``
    parameter (relative to ``cwd`` when it lies inside it).
    """
    output = executed_copy(notebook, output_dir, cwd)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Papermill writes as it goes; the copy replaces ``output`` only once it is
    # complete, so a failed or interrupted run never leaves half a notebook to stage.
    partial = output.with_name(f"{output.stem}.partial.ipynb")
    parameters = ["-p", "quick", str(quick)]
    if results_dir is not None:
        if results_dir.is_relative_to(cwd):
            results_dir = results_dir.relative_to(cwd)
        parameters += ["-p", "results_dir", str(results_dir)]
    command = [
        *(sys.executable, "-m", "papermill", str(notebook), str(partial)),
        *parameters, *("--cwd", str(cwd), "-k", "python3"),
        *("--execution-timeout", str(max(1, int(timeout))), "--no-progress-bar"),
    ]  # fmt: skip
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_notebook(process)
        summary = f"the notebook ran past its timeout of {timeout:g} s"
        raise BookError(describe_failure(partial, notebook, summary)) from None
    except BaseException:
        stop_notebook(process)
        raise
    if process.returncode != 0:
        raise BookError(describe_failure(partial, notebook, error_summary(stderr)))
    partial.replace(output)
    return time.perf_counter() - start


def record_timing(notebook: Path, seconds: float, *, quick: bool, path: Path) -> None:
    """Append one notebook's wall time to the CSV file ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["notebook", "quick", "seconds", "finished"])
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        writer.writerow([notebook.stem, quick, f"{seconds:.1f}", stamp])


def command_mathjax(args: argparse.Namespace) -> None:
    """Download MathJax into ``_build/mathjax`` unless it is there already."""
    fetched = fetch_mathjax()
    state = "downloaded and checked" if fetched else "already"
    print(f"MathJax {MATHJAX_VERSION} {state} in {display_path(MATHJAX_DIR)}")


def command_execute(args: argparse.Namespace) -> None:
    """Execute the requested notebooks, or every notebook of the book."""
    build = Build(Path(args.build_dir).resolve())
    notebooks = [Path(name).resolve() for name in args.notebooks] or toc_notebooks()
    for notebook in notebooks:
        print(f"executing {display_path(notebook)} (quick={args.quick})", flush=True)
        try:
            seconds = execute_notebook(
                notebook,
                quick=args.quick,
                timeout=args.timeout,
                output_dir=build.executed,
                results_dir=build.results,
            )
        except (KeyboardInterrupt, SignalExit) as stop:
            kept = executed_copy(notebook, build.executed).exists()
            stop.stopped = f"stopped {notebook.name}; " + (
                "its previous executed copy is kept"
                if kept
                else "it has no executed copy yet"
            )
            raise
        timings = build.results / "timings.csv"
        record_timing(notebook, seconds, quick=args.quick, path=timings)
        print(f"  done in {seconds:.0f} s")


def check_figures(notebook: dict, name: str) -> None:
    """Fail unless every figure cell has an image, a caption and a figure name.

    myst-nb shows a cell's ``mystnb.figure`` metadata only around an image the cell
    produced: without one the figure silently vanishes from the page. Cells are
    numbered as in the notebook itself, without papermill's injected cell.
    """
    for index, cell in enumerate(own_cells(notebook["cells"])):
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", [])
        has_image = any("image/png" in out.get("data", {}) for out in outputs)
        figure = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
        where = f"notebook {name}, cell {index}"
        if has_image and not figure.get("caption"):
            raise BookError(
                f"{where} draws a figure but has no mystnb.figure.caption "
                "in its metadata"
            )
        if figure and not has_image:
            raise BookError(
                f"{where} has figure {figure.get('name', '(no name)')!r} in its "
                "metadata but produced no image/png output"
            )
        if figure.get("caption") and not figure.get("name"):
            raise BookError(
                f"{where} has a figure caption but no mystnb.figure.name "
                f"(caption {figure['caption'][:60]!r})"
            )


def hide_injected_parameters(notebook: dict) -> None:
    """Fold papermill's injected parameters cell behind a toggle.

    It repeats the parameters cell above it with the values this build passed,
    which a reader may want to check but need not read.
    """
    for cell in notebook.get("cells", []):
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "injected-parameters" in tags and "hide-cell" not in tags:
            tags.append("hide-cell")


def stage_book(build: Build, *, mathjax: Path = MATHJAX) -> None:
    """Copy the book source, executed notebooks and MathJax into ``build.book``."""
    stage = build.book
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in BOOK_FILES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, stage / name)
    for entry in toc_entries():
        source = ROOT / f"{entry}.md"
        if source.exists():
            (stage / f"{entry}.md").parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, stage / f"{entry}.md")
            continue
        executed = build.executed / f"{entry}.ipynb"
        if not executed.exists():
            raise BookError(
                f"{entry}.ipynb has not been executed into "
                f"{display_path(build.executed)}: run 'execute' first"
            )
        notebook = json.loads(executed.read_text())
        check_figures(notebook, executed.name)
        (stage / f"{entry}.ipynb").parent.mkdir(parents=True, exist_ok=True)
        hide_injected_parameters(notebook)
        (stage / f"{entry}.ipynb").write_text(json.dumps(notebook, indent=1))
    if not (mathjax / "tex-chtml.js").exists():
        raise BookError(
            f"MathJax is missing at {display_path(mathjax)}: run 'make setup' first"
        )
    shutil.copytree(mathjax, stage / "_vendor" / "mathjax")


def command_stage(args: argparse.Namespace) -> None:
    """Stage the book of the build directory."""
    stage_book(Build(Path(args.build_dir).resolve()))


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
    build = Build(Path(args.build_dir).resolve())
    html = Path(args.html).resolve() if args.html else build.html
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


def exit_on_signal(signum: int, frame: object) -> None:
    """Turn a termination signal into SystemExit, so a running notebook is stopped."""
    raise SignalExit(128 + signum)


def report_stop(stop: KeyboardInterrupt | SignalExit, command: str) -> int:
    """Say in one line what an interrupt stopped; return the exit status.

    The status is 130 for Ctrl-C and 128 + N for signal N (143 for SIGTERM).
    ``stop.stopped``, when a command set it, says what was stopped.
    """
    status = stop.code if isinstance(stop, SignalExit) else 128 + signal.SIGINT
    cause = "interrupted"
    if status != 128 + signal.SIGINT:
        cause += f" by {signal.Signals(status - 128).name}"
    stopped = getattr(stop, "stopped", f"stopped the {command!r} command")
    print(f"{cause}: {stopped}", file=sys.stderr)
    return status


def make_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of the four commands."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--build-dir",
        default=str(BUILD),
        help="directory of this build (default: _build; make test uses _build/quick)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("mathjax", help="download MathJax into _build/mathjax")
    execute = commands.add_parser("execute", help="run notebooks with papermill")
    execute.add_argument("notebooks", nargs="*", help="default: every notebook")
    execute.add_argument("--quick", action="store_true", help="pass quick=True")
    execute.add_argument(
        "--timeout", type=float, default=1200, help="seconds a notebook may run"
    )
    commands.add_parser("stage", help="assemble BUILD_DIR/book")
    check = commands.add_parser("check", help="check built pages in Chromium")
    check.add_argument("--html", help="default: BUILD_DIR/html")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; return the exit status.

    0 on success, 1 after a :class:`BookError`, 130 after Ctrl-C and 128 + N
    after signal N (SIGTERM, SIGHUP); running processes are stopped first, and
    an interrupt is reported in one line, without a traceback.
    """
    args = make_parser().parse_args(argv)
    handlers = {
        "mathjax": command_mathjax,
        "execute": command_execute,
        "stage": command_stage,
        "check": command_check,
    }
    # SIGTERM (and a closed terminal) then unwind like Ctrl-C does, through the
    # handlers that stop papermill and remove temporary directories.
    previous = {
        signum: signal.signal(signum, exit_on_signal)
        for signum in (signal.SIGTERM, signal.SIGHUP)
    }
    try:
        handlers[args.command](args)
    except BookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SignalExit) as stop:
        return report_stop(stop, args.command)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
