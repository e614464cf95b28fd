import atexit
import glob
import os
import shutil
import sys
import tempfile

import numpy as np
import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
SHARED = os.path.join(ROOT, "..", "shared")
# Where nnabla's CUDA extension is installed, cudnn is the default context: tests that mean
# the CPU say so.
CPU = ("--context", "cpu")
sys.path.insert(0, TESTS)

# What the package keeps for a user (exported models, converted weights) goes to a folder of
# this test session's, removed at its end, not to the user's ~/.cache; the command lines the
# tests start inherit it.
_USER_HOME = os.environ.get("FACE_ALIGNMENT_HOME") or os.path.join(os.path.expanduser("~"), ".cache",
                                                                    "face_alignment")


def fresh_home(folder, shared_exports=False) -> str:
    """``folder`` made a FACE_ALIGNMENT_HOME with nothing in it but the detectors' models that
    scripts/setup.sh converted into the user's (the default detector needs them); with
    ``shared_exports``, its export cache is the session's (for a test of something else than
    that cache: FAN-4's and ResNetDepth's exports take a minute, and hundreds of MB, each)."""
    os.makedirs(folder, exist_ok=True)
    for model in glob.glob(os.path.join(glob.escape(_USER_HOME), "blazeface_*.h5")):
        os.symlink(model, os.path.join(folder, os.path.basename(model)))
    if shared_exports:
        os.makedirs(SESSION_EXPORTS, exist_ok=True)
        os.symlink(SESSION_EXPORTS, os.path.join(folder, "exports"))
    return str(folder)


# What the whole session shares: its home (with the export cache) and its random weight files
# (weight_files.py). With pytest-xdist, the process that starts the workers makes the folder
# (it imports this file first) and removes it at its exit; the workers inherit its name.
_SESSION_VARIABLE = "FACE_ALIGNMENT_TEST_SESSION"
if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get(_SESSION_VARIABLE):
    SESSION_FOLDER = os.environ[_SESSION_VARIABLE]
else:
    SESSION_FOLDER = tempfile.mkdtemp(prefix="fa-test-session-")
    os.environ[_SESSION_VARIABLE] = SESSION_FOLDER
    atexit.register(shutil.rmtree, SESSION_FOLDER, True)
    fresh_home(os.path.join(SESSION_FOLDER, "home"))
SESSION_HOME = os.path.join(SESSION_FOLDER, "home")
# The export cache every test shares unless its subject is that cache (onnx_cache's folder).
SESSION_EXPORTS = os.path.join(SESSION_HOME, "exports")
os.environ["FACE_ALIGNMENT_HOME"] = SESSION_HOME


def run_tool(script, *args, cwd=ROOT, env=None):
    """Run one of the project's command lines as a user would, inside this process (see
    tests/in_process.py); returns a CompletedProcess. ``script`` is a path from the repository
    root, or ``-m module``; ``env`` adds variables (its PYTHONPATH goes first on sys.path). A
    test about the process itself (an exit on a signal, what an import pulls in, two processes
    at once) starts one with subprocess."""
    import in_process

    command = script.split() if script.startswith("-m ") else [os.path.join(ROOT, script)]
    extra = dict(env or {})
    path = [p for p in (extra.pop("PYTHONPATH", None) or "").split(os.pathsep) if p]
    return in_process.run(command, list(map(str, args)), cwd, extra, [ROOT, *path])


def peak_memory(call):
    """(what ``call()`` returns, the peak of memory Python and numpy allocated meanwhile, in
    bytes, by tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    # Progress and log lines may come before it; the error itself is one line, and last.
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def annotated_box(name):
    """The box around a shared photo's annotated points (iBUG .pts, 1-based), widened a little
    as a detector's box would be."""
    with open(os.path.join(SHARED, "data", "faces", name + ".pts")) as f:
        lines = f.read().split("{")[1].split("}")[0].split()
    points = np.array(lines, dtype=np.float64).reshape(68, 2) - 1
    (left, top), (right, bottom) = points.min(0), points.max(0)
    pad = 0.05 * (right - left)
    return np.floor([left - pad, top - pad, right + pad, bottom + pad])


@pytest.fixture(scope="session")
def weight_files():
    """The session's random weight files, each written once (tests/weight_files.py), shared by
    pytest-xdist's workers."""
    from weight_files import WeightFiles

    return WeightFiles(os.path.join(SESSION_FOLDER, "weight_files"))


@pytest.fixture(scope="module")
def module_folder(tmp_path_factory):
    """``module_folder(name)``: a new folder for a module's fixtures, removed when the module is
    done (pytest keeps tmp_path_factory's folders to the session's end: the suite's disk peak)."""
    made = []

    def make(name):
        made.append(tmp_path_factory.mktemp(name))
        return made[-1]

    yield make
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def one_hourglass_2dfan4(monkeypatch):
    """The registry's 2DFAN4 made a one-hourglass FAN, as weight_files.STAND_IN_2DFAN4 is."""
    import dataclasses

    from face_alignment import registry
    from weight_files import STAND_IN_2DFAN4

    monkeypatch.setitem(registry.ARCHITECTURES, "2DFAN4", dataclasses.replace(
        registry.ARCHITECTURES["2DFAN4"], num_modules=STAND_IN_2DFAN4.modules))


@pytest.fixture(scope="session")
def fan4(weight_files):
    from weight_files import FAN4

    return weight_files.model(FAN4)


@pytest.fixture(scope="session")
def depth_net(weight_files):
    from weight_files import DEPTH

    return weight_files.model(DEPTH)


@pytest.fixture(scope="session")
def fan1_h5(weight_files):
    """A small, fast FAN (one hourglass) with random weights, as an .h5 that records its
    architecture: for tests of the pipeline around the network rather than the network."""
    import dataclasses

    from face_alignment.registry import ARCHITECTURES
    from face_alignment.weights.loading import architecture_attrs
    from weight_files import Net

    arch = dataclasses.replace(ARCHITECTURES["2DFAN4"], name="FAN1", num_modules=1)
    return weight_files.h5(Net("fan", 1, "avg", seed=3), architecture_attrs(arch), "fan1.h5")


@pytest.fixture(scope="session")
def fan1_3d_h5(weight_files):
    """The authors' FAN with one hourglass (weight_files.STAND_IN_2DFAN4), random weights,
    recorded as a 3D-FAN (3D landmarks need one)."""
    import dataclasses

    from face_alignment.registry import ARCHITECTURES
    from face_alignment.weights.loading import architecture_attrs
    from weight_files import STAND_IN_2DFAN4

    fan_3d = dataclasses.replace(ARCHITECTURES["3DFAN4"], name="3DFAN1", num_modules=1)
    return weight_files.h5(STAND_IN_2DFAN4, architecture_attrs(fan_3d), "3dfan1.h5")


@pytest.fixture(scope="session")
def fan2_h5(tmp_path_factory):
    """ibug's 2-module FAN (max pooling, ibug crop), random weights."""
    import checkpoints
    from face_alignment.registry import ARCHITECTURES, FAN
    from face_alignment.weights.h5 import write_h5
    from face_alignment.weights.loading import architecture_attrs

    path = tmp_path_factory.mktemp("fan2") / "2dfan2.h5"
    params = checkpoints.nnabla_params(checkpoints.authors_fan(2, "max", seed=32), FAN, 2)
    write_h5(str(path), params, architecture_attrs(ARCHITECTURES["ibug-2dfan2"]))
    return str(path)


# The test files that go first. pytest-xdist hands out whole files in collection order, and two
# workers finish together when the long files (a minute or so of one worker's time each,
# longest first) go first and the many short ones fill in behind them. test_docs.py leads: its
# README page exports the random FAN-4 that test_export.py and others then find in the cache.
# test_random_checkpoints.py is short but writes 600 MB of checkpoints: early, the session's
# shared weights and exports are still small, and the disk peak stays lower.
FIRST_FILES = ("test_docs.py", "test_train_learns.py", "test_export.py", "test_random_checkpoints.py",
               "test_compat.py", "test_benchmark.py", "test_dataset_ray.py", "test_convert.py", "test_ibug_parity.py",
               "test_parity.py", "test_dataset.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: index for index, name in enumerate(FIRST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST_FILES)))  # stable: the rest keep their order


# A passed test's tmp_path is removed as soon as its teardown is done. pytest would keep every
# one to the session's end (and then only the failed tests', as tmp_path_retention_policy says):
# with random weights and exports in them, that was most of the suite's disk peak.
_TMP_PATH = pytest.StashKey()
_FAILED = pytest.StashKey()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "setup" and "tmp_path" in getattr(item, "funcargs", {}):
        item.stash[_TMP_PATH] = item.funcargs["tmp_path"]
    if report.failed:
        item.stash[_FAILED] = True
    if report.when == "teardown" and _TMP_PATH in item.stash and not item.stash.get(_FAILED, False):
        shutil.rmtree(item.stash[_TMP_PATH], ignore_errors=True)
