"""What a newcomer trips over in the first hour: flags that would be silently ignored or do
work for nothing, inputs read without bound, help that does not say the defaults, docs and
hints that do not work as pasted. Each is refused (before anything loads) or said."""
import json
import os
import re

import cv2
import numpy as np
import pytest

from conftest import ROOT, SHARED, assert_one_line_error
from synthetic_video import write_clip
from test_cli_safety import fan1_h5, run_in_process

FACES = os.path.join(SHARED, "data", "faces")
EINSTEIN = os.path.join(FACES, "einstein.jpg")


@pytest.fixture(scope="module")
def fan1(tmp_path_factory):
    return fan1_h5(tmp_path_factory.mktemp("fan1") / "fan1.h5")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames = [np.full((32, 48, 3), 40 * i, np.uint8) for i in range(2)]
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames)


@pytest.fixture
def nothing_loads(monkeypatch):
    """The model must not be built, nor the video opened, before the flags are checked."""
    from face_alignment import api
    from face_alignment.video import reader

    monkeypatch.setattr(api.FaceAlignment, "__init__", lambda *a, **k: pytest.fail("the model was loaded"))
    monkeypatch.setattr(reader, "probe_video", lambda *a, **k: pytest.fail("the video was opened"))


def inference(capsys, *args):
    from face_alignment import inference_cli

    return run_in_process(capsys, inference_cli.main, *args)


# --- Item 5: a video run must write something, and take each video it is given ---------------

def test_a_video_with_nothing_to_write_is_refused_before_anything_loads(capsys, fan1, clip, nothing_loads):
    status, error = inference(capsys, "-m", fan1, "--test-video", clip)
    assert status == 2
    assert error.startswith("error: ") and "clip.mp4" in error and "--output" in error and "--save-landmarks" in error


def test_a_repeated_test_video_is_refused_not_half_taken(capsys, fan1, clip, nothing_loads, tmp_path):
    other = tmp_path / "other.mp4"
    status, error = inference(capsys, "-m", fan1, "--test-video", clip, "--test-video", other,
                              "--save-landmarks", tmp_path / "l.parquet")
    assert status == 2
    assert "--test-video given 2 times" in error and "clip.mp4" in error and "other.mp4" in error, error
    assert not (tmp_path / "l.parquet").exists()


# --- Item 6: a depth model without 3D; a boxes file without bound ---------------------------------

@pytest.mark.parametrize("source", [("--test-image", EINSTEIN), ("--test-video", "clip")])
def test_a_depth_model_without_3d_is_refused(capsys, fan1, clip, nothing_loads, tmp_path, source):
    flag, path = source
    outputs = ("--save-json", tmp_path / "r.json") if flag == "--test-image" else ("--output", tmp_path / "a.mp4")
    status, error = inference(capsys, "-m", fan1, "--resnet-depth-model", fan1, flag,
                              clip if path == "clip" else path, *outputs)
    assert status == 2
    assert "--resnet-depth-model" in error and "--landmarks-type-3D" in error, error


def test_the_dataset_command_refuses_a_depth_model_without_3d(capsys, fan1, nothing_loads, tmp_path):
    from face_alignment.dataset import cli

    status, error = run_in_process(capsys, cli.main, "--input", EINSTEIN, "--output", tmp_path / "out", "-m", fan1,
                                   "--resnet-depth-model", fan1)
    assert status == 2 and "--resnet-depth-model" in error and "--landmarks-type-3D" in error, error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "folder"])
def test_boxes_that_are_not_a_regular_file_are_refused_unread(capsys, fan1, nothing_loads, tmp_path, special):
    if special == "fifo":  # opened, it would wait for a writer for ever
        special = tmp_path / "boxes.fifo"
        os.mkfifo(special)
    elif special == "folder":
        special = tmp_path
    status, error = inference(capsys, "-m", fan1, "--test-image", EINSTEIN, "--boxes", special,
                              "--save-json", tmp_path / "r.json")
    assert status == 2
    assert error.startswith(f"error: {special}: ") and "not a regular file" in error, error


def test_boxes_larger_than_the_bound_are_refused_unparsed(capsys, fan1, nothing_loads, tmp_path, monkeypatch):
    from face_alignment import boxes as box_files

    monkeypatch.setattr(box_files, "MAX_BOXES_BYTES", 1000)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({f"image{i}.jpg": [[1, 2, 30, 40]] for i in range(60)}))
    assert boxes.stat().st_size > 1000
    monkeypatch.setattr(json, "loads", lambda *a, **k: pytest.fail("the boxes were parsed"))
    status, error = inference(capsys, "-m", fan1, "--test-image", EINSTEIN, "--boxes", boxes,
                              "--save-json", tmp_path / "r.json")
    assert status == 2
    assert error.startswith(f"error: {boxes}: ") and "more than" in error, error


# --- Item 9: --help says each default --------------------------------------------------------------

def option_help(text, flag):
    """What ``--help`` ``text`` says of ``flag``, its wrapped lines joined into one."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"\s+{re.escape(flag)}( |,|$)", line))
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith(" ") or re.match(r"\s+-", line):
            break
        block.append(line)
    return " ".join(" ".join(block).split())


def help_text(tool):
    from conftest import run_tool

    result = run_tool(tool, "--help")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_help_states_the_defaults_of_model_inference_and_evaluate():
    from face_alignment import evaluate, inference_cli
    from face_alignment.detection.registry import DEFAULT_DETECTOR, default_detector
    from face_alignment.pipeline.image import MAX_IMAGE_PIXELS

    text = help_text("model_inference.py")
    defaults = inference_cli.parser()
    for flag, dest in (("--type-config", "type_config"), ("--device-id", "device_id")):
        assert f"(default: {defaults.get_default(dest)})" in option_help(text, flag), option_help(text, flag)
    text = help_text("-m face_alignment.evaluate")
    defaults = evaluate.build_parser()
    # No flag: the registry's default, which the help names.
    assert defaults.get_default("detector") is None and default_detector() == DEFAULT_DETECTOR
    assert f"(default: {DEFAULT_DETECTOR};" in option_help(text, "--detector")
    assert f"(default: {MAX_IMAGE_PIXELS})" in option_help(text, "--max-pixels")
    assert defaults.get_default("max_pixels") == MAX_IMAGE_PIXELS  # the number said is the one used


def test_the_depth_converter_says_its_default_architecture_is_resnet_depth():
    said = option_help(help_text("converters/convert_resnet_depth_weights.py"), "--arch")
    assert "default: ResNetDepth" in said and "2DFAN4 for" not in said, said


@pytest.mark.parametrize("script", ["benchmarks/benchmark.py", "benchmarks/video.py"])
def test_the_benchmarks_say_their_default_out_dir_overwrites_the_committed_results(script):
    said = option_help(help_text(script), "--out-dir")
    assert "results/" in said and "overwrites" in said, said


# --- Item 8: docs and hints that work as pasted ----------------------------------------------------

DOCS = ["README.md", "weights/README.md", "benchmarks/README.md"] + sorted(
    f"docs/{name}" for name in os.listdir(os.path.join(ROOT, "docs")) if name.endswith(".md"))
# A command of this project run with a bare python: on many machines the python on PATH is
# another version without nnabla (here 3.11), and the command ends in a traceback.
BARE_PYTHON = re.compile(r"(?<![\w/.-])python3? +(converters/|scripts/|benchmarks/|model_inference\.py|export_model\.py)"
                         r"|(?<!-m )(?<![\w/.-])pip3? install")


def base_dependencies():
    """The names in pyproject.toml's [project] dependencies."""
    text = open(os.path.join(ROOT, "pyproject.toml")).read()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    return {re.match(r"[A-Za-z0-9_.-]+", spec).group(0).lower()
            for spec in re.findall(r'^\s*"([^"]+)"', block, re.M)}


@pytest.mark.parametrize("doc", DOCS)
def test_docs_run_the_tools_with_the_projects_python(doc):
    with open(os.path.join(ROOT, doc)) as f:
        bare = [line.strip() for line in f if BARE_PYTHON.search(line) and "pip install \".[ray]\"" not in line]
    assert not bare, bare


def test_the_no_model_hint_works_as_pasted(capsys, tmp_path, monkeypatch):
    from face_alignment import inference_cli

    monkeypatch.chdir(tmp_path)  # no weights here
    status, error = run_in_process(capsys, inference_cli.main, "--test-image", EINSTEIN)
    assert status == 2 and not BARE_PYTHON.search(error), error
    command = re.search(r"\.venv/bin/python (\S+) (\S+)", error)
    assert command and os.path.isfile(os.path.join(ROOT, command.group(1))) and command.group(2) == "2DFAN4", error
    scripts = open(os.path.join(ROOT, "pyproject.toml")).read()
    assert "fan-fetch 2DFAN4" in error and 'fan-fetch = "face_alignment.weights.cli:fetch_main"' in scripts


def test_reading_the_outputs_as_the_readme_shows_needs_only_the_base_dependencies():
    """The docs read landmark tables with pandas: it must come with every set-up, not only
    with the dev extra."""
    import ast

    docs = "".join(open(os.path.join(ROOT, doc)).read() for doc in DOCS)
    snippets = [s for s in re.findall(r"```python\n(.*?)```", docs, re.S) if "read_parquet" in s]
    assert len(snippets) >= 2  # the video table's and the dataset's
    imported = set()
    for snippet in snippets:
        for node in ast.walk(ast.parse(snippet)):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module.split(".")[0])
    assert "pandas" in imported
    distributions = {"face_alignment": None, "numpy": "numpy", "pandas": "pandas", "pyarrow": "pyarrow"}
    imported.discard("ray")  # the Ray dataset reading, shown beside pandas for --engine ray users
    assert imported <= distributions.keys(), imported - distributions.keys()
    assert {d for d in distributions.values() if d} <= base_dependencies()


# --- Item 10: smaller mismatches -------------------------------------------------------------------

def test_a_ced_plot_named_as_another_type_is_refused_before_scoring(tmp_path):
    from test_evaluate_cli import run_cli, synthetic_face, write_predictions
    from face_alignment.evaluation import write_pts

    folder = tmp_path / "gt"
    folder.mkdir()

    cv2.imwrite(str(folder / "a.png"), np.zeros((300, 400, 3), np.uint8))
    write_pts(str(folder / "a.pts"), synthetic_face())
    predictions = write_predictions(tmp_path / "p.json", {"a.png": [synthetic_face()]})
    result = run_cli("--ground-truth", folder, "--predictions", predictions, "--ced-plot", tmp_path / "ced.txt")
    assert result.returncode == 2 and result.stdout == "", result.stdout  # refused before any report
    assert result.stderr.startswith(f"error: {tmp_path / 'ced.txt'}: ") and "'.txt'" in result.stderr \
        and ".png" in result.stderr, result.stderr
    assert not (tmp_path / "ced.txt").exists()
    result = run_cli("--ground-truth", folder, "--predictions", predictions, "--ced-plot", tmp_path / "ced.PNG")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ced.PNG").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_predictions_folder_given_with_a_trailing_slash_is_labelled_by_its_name(tmp_path):
    """A dataset job's output folder, as `out/` (as shells complete it): its label was ''."""

    from test_evaluate_cli import run_cli, synthetic_face
    from face_alignment.evaluation import write_pts
    from face_alignment.landmark_table import LandmarkTableWriter

    folder = tmp_path / "gt"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((300, 400, 3), np.uint8))
    write_pts(str(folder / "a.pts"), synthetic_face())
    out = tmp_path / "out"
    (out / "landmarks").mkdir(parents=True)
    (out / "_manifest.json").write_text("{}")
    face = synthetic_face()
    with LandmarkTableWriter(out / "landmarks" / "part-0123456789abcdef.parquet") as rows:  # a unit's shard
        rows.add(str(folder / "a.png"), 0, 0.0, None, [[140.0, 50, 260, 214]], [face], np.ones((1, 68)), "detector")
    result = run_cli("--ground-truth", folder, "--predictions", f"{out}{os.sep}", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["label"] == "out" and report["faces"] == 1 and report["nme"] == 0


def _netpbm(kind, maxval, samples):
    """A Netpbm file of ``samples`` (H, W) or (H, W, 3), stored as ``kind`` (2, 3, 5, 6)."""
    height, width = samples.shape[:2]
    header = f"P{kind}\n{width} {height}\n{maxval}\n".encode()
    if kind in (2, 3):
        return header + " ".join(map(str, samples.ravel().tolist())).encode() + b"\n"
    return header + samples.astype(">u2" if maxval > 255 else np.uint8).tobytes()


@pytest.mark.parametrize("maxval", [1, 15, 100, 255, 1023, 4095, 65535])
@pytest.mark.parametrize("kind", [2, 3, 5, 6])
def test_netpbm_of_any_maxval_reads_at_its_brightness(tmp_path, kind, maxval):
    """maxval is full brightness: a sample v reads as v * 255 / maxval, worked out here by
    hand; binary files of maxval 100 or 1023 used to read as stored (dark)."""
    from face_alignment.pipeline.image import read_image

    shape = (5, 7, 3) if kind in (3, 6) else (5, 7)
    samples = np.random.default_rng(kind * maxval).integers(0, maxval + 1, shape)
    samples.flat[:2] = (0, maxval)
    path = tmp_path / f"p{kind}.{'ppm' if kind in (3, 6) else 'pgm'}"
    path.write_bytes(_netpbm(kind, maxval, samples))
    expected = samples * 255.0 / maxval
    got = read_image(str(path)).astype(np.float64)
    got = got if kind in (3, 6) else got[..., 0]
    assert np.abs(got - expected).max() <= 1.0, (got.ravel()[:8], expected.ravel()[:8])
    assert got.flat[0] == 0 and got.flat[1] == 255


def test_the_dataset_summary_names_errors_parquet_without_a_double_slash(tmp_path, fan1):
    from test_dataset import run_dataset

    data = tmp_path / "data"
    data.mkdir()
    (data / "broken.png").write_bytes(b"not a PNG")
    out = f"{tmp_path / 'out'}{os.sep}"  # as a shell completes a folder's name
    result = run_dataset("--input", data, "--output", out, "--model", fan1, "--backend", "nnabla")
    assert result.returncode == 0, result.stderr
    assert f"(see {tmp_path / 'out' / '_errors.parquet'})" in result.stderr, result.stderr
    assert "//" not in result.stderr


# --- Issue 25, item 8: a folder where a file is expected is called a folder --------------------

def test_a_folder_given_as_model_or_video_is_called_a_folder(capsys, fan1, tmp_path):
    weights, clips = tmp_path / "weights", tmp_path / "clips"
    weights.mkdir(), clips.mkdir()
    status, error = inference(capsys, "--model", weights, "--test-image", EINSTEIN, "--context", "cpu")
    assert status == 2 and error == f"error: {weights}: a folder; expected a file", error
    status, error = inference(capsys, "--model", fan1, "--test-video", clips, "--save-landmarks",
                              tmp_path / "l.parquet", "--context", "cpu")
    assert status == 2 and error == f"error: {clips}: a folder; expected a video file", error


# --- Issue 25, item 7: an authors' checkpoint as --model is converted once, into the cache ----

def test_a_checkpoint_as_model_is_converted_once_into_the_cache(capsys, tmp_path, monkeypatch):
    """The same random weights as an authors'-format .pth.tar and as an .h5 written straight
    from the tensors (not through the converter) give the same landmarks; the second run uses
    the cached conversion."""
    import checkpoints
    from face_alignment.weights import convert
    from test_cli_safety import fan1_h5 as write_fan1

    home = tmp_path / "home"
    monkeypatch.setenv("FACE_ALIGNMENT_HOME", str(home))
    checkpoint = tmp_path / "fan1.pth.tar"
    checkpoints.save_legacy(checkpoints.authors_fan(1, "avg", seed=3), checkpoint)  # fan1_h5's weights
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([[250.0, 260.0, 600.0, 640.0]]))

    def landmarks(model, name):
        status, error = inference(capsys, "--model", model, "--test-image", EINSTEIN, "--boxes", boxes,
                                  "--save-json", tmp_path / name, "--backend", "nnabla", "--context", "cpu")
        assert status == 0, error
        return np.array(json.loads((tmp_path / name).read_text())["images"][0]["faces"][0]["landmarks"])

    converted = landmarks(checkpoint, "a.json")
    [cached] = os.listdir(home)
    assert re.fullmatch(r"fan1-[0-9a-f]{16}\.h5", cached)
    monkeypatch.setattr(convert, "convert_checkpoint", lambda *a, **k: pytest.fail("converted again"))
    np.testing.assert_array_equal(landmarks(checkpoint, "b.json"), converted)
    direct = landmarks(write_fan1(tmp_path / "direct.h5", "2DFAN4"), "c.json")
    np.testing.assert_allclose(converted, direct, atol=1e-3)
    assert os.listdir(home) == [cached]


# --- Issue 25, item 9: flags are never abbreviated, and an unknown one is named ---------------

@pytest.mark.parametrize("flag, closest", [("--test_image", "--test-image"), ("--test-imag", "--test-image"),
                                           ("--save_json", "--save-json"), ("--frobnicate", None)])
def test_an_unknown_or_abbreviated_flag_is_named_with_the_closest_real_one(capsys, fan1, nothing_loads, flag,
                                                                         closest):
    status, error = inference(capsys, "--model", fan1, flag, EINSTEIN)
    assert status == 2 and error.startswith(f"error: unknown flag {flag}"), error
    assert (f"did you mean {closest}?" in error) if closest else "did you mean" not in error, error


def test_a_negative_value_is_not_taken_for_a_flag(capsys, fan1, nothing_loads):
    status, error = inference(capsys, "--model", fan1, "--test-image", EINSTEIN, "--detect-every", "-1")
    assert status == 2 and "unknown flag" not in error and "--detect-every" in error and "-1" in error, error


# --- Issue 25, item 10: evaluate takes the landmark tables our commands write -----------------

def test_evaluate_takes_a_landmark_table_of_photos_and_names_what_it_takes_otherwise(tmp_path):
    """A face predicted exactly where it is annotated scores NME 0 from a .parquet and from a
    .json landmark table; a video's table and a binary file are one line naming what is taken."""
    from test_evaluate_cli import run_cli, synthetic_face
    from face_alignment.evaluation import write_pts
    from face_alignment.landmark_table import LandmarkTableWriter

    folder = tmp_path / "gt"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((300, 400, 3), np.uint8))
    write_pts(str(folder / "a.pts"), synthetic_face())
    for name in ("faces.parquet", "faces.json"):
        with LandmarkTableWriter(tmp_path / name) as rows:
            rows.add(str(folder / "a.png"), 0, 0.0, None, [[140.0, 50, 260, 214]], [synthetic_face()],
                     np.ones((1, 68)), "detector")
        result = run_cli("--ground-truth", folder, "--predictions", tmp_path / name, "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["faces"] == 1 and report["nme"] == 0, report
    with LandmarkTableWriter(tmp_path / "clip.parquet") as rows:
        rows.add(str(tmp_path / "clip.mp4"), 3, 0.1, [0], [[140.0, 50, 260, 214]], [synthetic_face()],
                 np.ones((1, 68)), "tracking")
    (tmp_path / "noise.bin").write_bytes(bytes(range(256)))
    for name in ("clip.parquet", "noise.bin"):
        result = run_cli("--ground-truth", folder, "--predictions", tmp_path / name)
        assert_one_line_error(result, name, "landmark table of photos", "--save-json")
