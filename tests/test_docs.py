"""The README and docs/ work as pasted. Every ``bash`` and ``python`` block runs, a page's
blocks in the page's order (two pages at a time), in a folder laid out like the repository
(the project's .venv, scripts and commands; empty weights/ and results/; ../shared beside
it), or carries a marker on the line just before it saying why it cannot:

    <!-- not-run: download: fetches the published checkpoints -->
    <!-- run-by: .ci/run -->
    <!-- run-by: tests/test_compat.py::test_the_readme_example_runs_as_pasted -->

``not-run`` names one of REASONS and explains; ``run-by`` names where the block is run instead,
which is checked. Blocks of other languages (``text``, ``json``) are never run, so they may not
hold a command. And the MkDocs site builds with ``--strict``: a broken link or a page missing
from the nav fails."""
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest

from conftest import ROOT, SHARED, fresh_home

DOCS = os.path.join(ROOT, "docs")
PAGES = ["README.md"] + sorted(f"docs/{name}" for name in os.listdir(DOCS) if name.endswith(".md"))
RUN = {"bash", "python"}
NEVER_RUN = {"text", "json"}
# Why a block may not run in a test, and nothing else: a reason outside this list is a block
# that should be made to run.
REASONS = {
    "download": "needs a file from the internet (no trained weights can be had here)",
    "hardware": "needs a GPU, or a CPU unit (bfloat16) this machine may lack",
    "minutes": "minutes of compute on 2 cores",
    "cluster": "needs machines of a Ray cluster",
    "environment": "changes the environment it runs in (installs or removes packages)",
}
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
MARKER = re.compile(r"<!-- (not-run|run-by): (.*?) -->\s*\Z")


@dataclass
class Block:
    file: str
    line: int
    lang: str
    code: str
    marker: str = ""  # "", "not-run" or "run-by"
    reason: str = ""


def blocks(page):
    with open(os.path.join(ROOT, page)) as f:
        text = f.read()
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()]
        marker = MARKER.search(before.rstrip("\n").rsplit("\n", 1)[-1] + "\n")
        found.append(Block(page, before.count("\n") + 1, match.group(1).strip(), match.group(2),
                           *(marker.groups() if marker else ())))
    return found


ALL = [block for page in PAGES for block in blocks(page)]


def test_every_block_says_its_language_and_runs_or_says_why_not():
    problems = []
    for b in ALL:
        where = f"{b.file}:{b.line}"
        if b.lang not in RUN | NEVER_RUN:
            problems.append(f"{where}: fence language {b.lang!r}; expected one of {sorted(RUN | NEVER_RUN)}")
        elif b.lang in NEVER_RUN and (".venv/bin/" in b.code or "import " in b.code):
            problems.append(f"{where}: a command in a {b.lang} block, which is never run")
        if b.marker == "not-run" and b.reason.split(":", 1)[0] not in REASONS:
            problems.append(f"{where}: not-run reason {b.reason!r}; expected '<one of {sorted(REASONS)}>: why'")
        if b.marker == "not-run" and len(b.reason.split(":", 1)[-1].split()) < 2:
            problems.append(f"{where}: not-run without an explanation")
    assert not problems, "\n".join(problems)


def test_run_by_markers_name_what_runs_the_block():
    named = [b for b in ALL if b.marker == "run-by"]
    assert named
    for b in named:
        target = b.reason.split()[0]
        path, _, test = target.partition("::")
        with open(os.path.join(ROOT, path)) as f:
            source = f.read()
        if test:
            assert re.search(rf"^def {re.escape(test)}\(", source, re.M), (b.file, b.line, target)
            # The test reads the block's page, or a page holding the same block.
            read = [page for page in PAGES if page in source]
            assert b.file in read or any(b.code == other.code for page in read for other in blocks(page)), \
                f"{target} runs neither {b.file} nor a copy of its block at line {b.line}"
        else:  # a script that runs the block's commands, each as a line of its own
            lines = {line.strip() for line in source.splitlines()}
            missing = [c for c in b.code.splitlines() if c.strip() and c.split("#")[0].strip() not in lines]
            assert not missing, (b.file, b.line, target, missing)


def test_the_readme_set_up_is_what_ci_runs():
    """CI runs exactly the README's two set-up commands, in its order."""
    block = next(b for b in blocks("README.md") if b.marker == "run-by" and b.reason.startswith(".ci/run"))
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = [line for line in f.read().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert ci == [line.split("#")[0].strip() for line in block.code.splitlines() if line.strip()]


def sandbox(tmp_path):
    """A folder that reads as the repository root from a reader's shell: the .venv, commands,
    scripts and package of this checkout linked in, weights/ and results/ of its own (a block
    never writes into the checkout), and ../shared beside it."""
    repo = tmp_path / "repo"
    repo.mkdir()
    os.symlink(os.path.realpath(SHARED), tmp_path / "shared")
    for name in os.listdir(ROOT):
        if name in ("weights", "results", ".git", "docs", "tests"):
            continue
        os.symlink(os.path.join(ROOT, name), repo / name)
    (repo / "weights").mkdir()
    (repo / "results").mkdir()
    return repo


RUNNABLE = [page for page in PAGES if any(b.lang in RUN and not b.marker for b in blocks(page))]
# The pages' runs are independent of each other (each its own folders, processes and
# TORCH_HOME; the export cache is made for processes that share it), and mostly one-core work
# (starting Python, writing random weights, exporting): they run two at a time, which the
# 2-core machines this suite runs on finish in less time than one after another. README.md
# goes first: the random FAN-4 it writes (scripts/random_weights.py 2DFAN4, the same bytes on
# every page) is exported into the session's cache by its model_inference.py, and the pages
# that write the same file start after it, to find that export there, not make it again at
# the same time.
LANES = 2
FIRST = "README.md"
SAME_FAN4 = "scripts/random_weights.py 2DFAN4 weights/2DFAN4.h5"


def run_page(folder, page):
    """Run ``page``'s blocks as a reader would, in one process (tests/docs_runner.py), in a
    sandbox in ``folder``: (the blocks run, the CompletedProcess)."""
    repo = sandbox(folder)
    todo = [vars(b) for b in blocks(page) if b.lang in RUN and not b.marker]
    listing = folder / "blocks.json"
    listing.write_text(json.dumps(todo))
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1", MPLBACKEND="Agg",
               PATH=os.pathsep.join((os.path.join(ROOT, ".venv", "bin"), os.environ["PATH"])),
               TORCH_HOME=str(folder / "torch"), FACE_ALIGNMENT_WEIGHTS_MIRROR="http://127.0.0.1:9/",
               # Conversions the page makes go with its folder; its exports are the session's.
               FACE_ALIGNMENT_HOME=fresh_home(folder / "home", shared_exports=True))
    return todo, subprocess.run([sys.executable, os.path.join(ROOT, "tests", "docs_runner.py"), str(listing)],
                                cwd=repo, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def page_runs(request, tmp_path_factory):
    """page -> the future of :func:`run_page` for each page this session selected, started at
    once in LANES threads (see LANES)."""
    from concurrent.futures import ThreadPoolExecutor

    selected = [item.callspec.params["page"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_the_page_runs_as_pasted"]
    after_first = {page for page in selected
                   if page != FIRST and FIRST in selected and any(SAME_FAN4 in b.code for b in blocks(page))}
    order = sorted(selected, key=lambda page: (page != FIRST, page in after_first))
    # The folders are made here, before any thread starts: pytest's first mktemp in a worker
    # makes its base folder, removing whatever is there, and two threads doing that at once
    # removed each other's folders.
    folders = {page: tmp_path_factory.mktemp("page") for page in order}
    lanes = ThreadPoolExecutor(LANES, thread_name_prefix="docs-page")
    futures = {}

    def run(page):
        if page in after_first:
            futures[FIRST].exception()  # waits for README.md's run (whatever its outcome)
        folder = folders[page]
        try:
            return run_page(folder, page)
        finally:  # a page's random weights and exports go as soon as it is done (the disk peak)
            shutil.rmtree(folder, ignore_errors=True)

    for page in order:
        futures[page] = lanes.submit(run, page)
    yield futures
    lanes.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("page", RUNNABLE)
def test_the_page_runs_as_pasted(page_runs, page):
    """One process per page runs its blocks in order, as a reader would. The export cache is
    the test session's (conftest's SESSION_EXPORTS), so the random FAN-4 the pages make
    is exported once a session; nothing is downloaded (the mirror is a closed port). Pages
    run two at a time (see LANES)."""
    todo, result = page_runs[page].result()
    assert result.returncode == 0, (result.stdout[-6000:], result.stderr[-6000:])
    assert result.stdout.count("--- ") == len(todo)  # each block ran


def nav_pages(nav):
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            yield from nav_pages(value)
        else:
            yield value


def test_every_page_is_in_the_nav_and_the_site_builds_strictly(tmp_path):
    import yaml

    with open(os.path.join(ROOT, "mkdocs.yml")) as f:
        config = yaml.safe_load(f)
    assert sorted(nav_pages(config["nav"])) == sorted(p[len("docs/"):] for p in PAGES if p.startswith("docs/"))
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "index.html").is_file()


LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readmes_map_links_every_page_and_its_links_lead_to_files():
    """The README is read on its own (GitHub, an editor), outside the MkDocs site: its map
    names every page (the site's home, docs/index.md, repeats the map)."""
    with open(os.path.join(ROOT, "README.md")) as f:
        targets = {link.split("#")[0] for link in LINK.findall(f.read())}
    local = {t for t in targets if t and "://" not in t}
    unmapped = {p for p in PAGES if p.startswith("docs/")} - {"docs/index.md"} - local
    assert not unmapped, unmapped
    missing = {t for t in local if not os.path.exists(os.path.join(ROOT, t))}
    assert not missing, missing
