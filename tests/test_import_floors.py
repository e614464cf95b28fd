"""Imports follow the floors: the API loads no plotting, cluster or PyTorch code, and the
evaluation and video packages do not import each other (what both need, the landmark table
and IoU matching, lives a floor below them)."""
import ast
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "face_alignment")


def test_importing_the_api_loads_neither_matplotlib_ray_nor_torch():
    probe = ("import json, sys; import face_alignment.api, face_alignment.config; "
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "face_alignment" in loaded and "nnabla" in loaded  # the probe did import what it should
    assert not loaded & {"matplotlib", "ray", "torch", "pandas"}, loaded & {"matplotlib", "ray", "torch", "pandas"}


def imported_modules(path):
    """The face_alignment modules a file imports (absolute names), at any depth of the file."""
    package = os.path.relpath(os.path.dirname(path), ROOT).replace(os.sep, ".")
    names = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.startswith("face_alignment")}


@pytest.mark.parametrize("package, forbidden", [("evaluation", "face_alignment.video"),
                                                ("video", "face_alignment.evaluation")])
def test_evaluation_and_video_do_not_import_each_other(package, forbidden):
    folder = os.path.join(PACKAGE, package)
    found = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            bad = sorted(m for m in imported_modules(os.path.join(folder, name)) if m.startswith(forbidden))
            if bad:
                found[name] = bad
    assert not found


def test_the_import_reader_sees_relative_imports():
    """The check above would pass vacuously if relative imports were misread."""
    tracking = imported_modules(os.path.join(PACKAGE, "video", "tracking.py"))
    assert "face_alignment.video.box_sources" in tracking and "face_alignment.boxes" in tracking
