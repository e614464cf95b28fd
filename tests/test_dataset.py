"""``python -m face_alignment.dataset`` with the local engine: its rows against FaceAlignment run
directly on the same files, kill -9 and resume against an uninterrupted run, bad inputs in
errors.parquet while the rest completes, a changed model refused. Weights are random (no
trained weights here): the rows are compared as numbers, not judged as landmarks.
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import CPU, ROOT, SHARED, assert_one_line_error, run_tool
from synthetic_video import write_clip
from face_alignment.api import FaceAlignment
from face_alignment.errors import FaceAlignmentError
from face_alignment.landmark_table import read_landmark_table

PHOTOS = 10
CLIP_FRAMES = 12
KEY = ["video", "frame", "track"]

CNN_MODEL = os.path.join(SHARED, "data", "models", "mmod_human_face_detector.dat")


def make_photos(folder, count):
    """``count`` photos from the shared ones: shrunk, some mirrored, in two subfolders."""
    sources = [cv2.imread(os.path.join(SHARED, "data", "faces", n + ".jpg")) for n in ("breakingbad", "einstein")]
    paths = []
    for i in range(count):
        image = sources[i % 2]  # einstein (odd i) is found by HOG from 0.6 of its size
        scale = (0.3 + 0.05 * (i % 4)) if i % 2 == 0 else (0.8 + 0.1 * (i % 3))
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if i % 3 == 0:
            image = image[:, ::-1]
        sub = os.path.join(folder, "set-a" if i % 2 else "set-b")
        os.makedirs(sub, exist_ok=True)
        path = os.path.join(sub, f"photo{i:02d}" + (".png" if i % 5 == 0 else ".jpg"))
        cv2.imwrite(path, image)
        paths.append(path)
    return paths


def clip_frames(count):
    """breakingbad.jpg at 0.3 of its size (HOG finds its faces), moving 2 px a frame."""
    photo = cv2.imread(os.path.join(SHARED, "data", "faces", "breakingbad.jpg"))[..., ::-1]
    photo = cv2.resize(photo, (576, 324), interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(np.roll(photo, 2 * i, axis=1)) for i in range(count)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A folder with photos, a clip, a clip cut short and a file that is no image."""
    root = tmp_path_factory.mktemp("dataset") / "data"
    root.mkdir()
    photos = make_photos(str(root), PHOTOS)
    frames = clip_frames(CLIP_FRAMES)
    video = write_clip(root / "clip.mp4", frames)
    # Every frame a keyframe, so that the first half of the file holds whole frames.
    whole = write_clip(tmp_path_factory.mktemp("whole") / "whole.mkv", frames, options={"x264-params": "keyint=1"})
    data = open(whole, "rb").read()
    cut = root / "set-a" / "cut.mkv"
    cut.write_bytes(data[:len(data) // 2])
    bad = root / "set-b" / "broken.jpg"
    bad.write_bytes(b"this is not a JPEG")
    return {"root": str(root), "photos": photos, "video": video, "cut": str(cut), "bad": str(bad)}


def run_dataset(*args):
    return run_tool("-m face_alignment.dataset", *args, "--no-progress", *CPU)


def sorted_rows(out_dir):
    df = pd.read_parquet(os.path.join(out_dir, "landmarks"))
    df["lm0"] = [float(np.stack(lm)[0, 0]) for lm in df["landmarks"]]
    return df.sort_values(KEY + ["lm0"]).reset_index(drop=True)


def assert_same_rows(a, b):
    assert len(a) == len(b)
    assert list(a["video"]) == list(b["video"]) and list(a["frame"]) == list(b["frame"])
    assert list(a["track"]) == list(b["track"]) and list(a["source"]) == list(b["source"])
    assert np.array_equal(np.stack(a["time"]), np.stack(b["time"]))
    assert np.array_equal(np.stack(a["box"].map(np.stack)), np.stack(b["box"].map(np.stack)))
    assert np.array_equal(np.stack(a["landmarks"].map(np.stack)), np.stack(b["landmarks"].map(np.stack)))
    assert np.array_equal(np.stack(a["scores"].map(np.stack)), np.stack(b["scores"].map(np.stack)))


@pytest.fixture(scope="module")
def finished(dataset, fan1_h5, tmp_path_factory):
    """One uninterrupted run over the whole dataset, in units of 3 photos."""
    out = str(tmp_path_factory.mktemp("finished") / "out")
    result = run_dataset("--input", dataset["root"], "--output", out, "--model", fan1_h5, "--photos-per-unit", 3)
    assert result.returncode == 0, result.stderr
    return out, result


def test_rows_equal_face_alignment_run_directly_and_bad_files_are_listed(dataset, fan1_h5, finished):
    out, result = finished
    fa = FaceAlignment(fan1_h5, context="cpu")
    rows = sorted_rows(out)
    photos = rows[rows["frame"].eq(0) & rows["video"].str.endswith(("jpg", "png"))]
    # Photos: each alone through FaceAlignment (the job batches faces of several photos:
    # the same numbers up to float rounding).
    expected_faces = 0
    for path in sorted(dataset["photos"]):
        mine = photos[photos["video"] == os.path.abspath(path)]
        reference = fa.get_landmarks_from_image(path)
        assert len(mine) == len(reference.boxes) > 0, path
        order = np.argsort(reference.landmarks[:, 0, 0])
        np.testing.assert_allclose(np.stack(mine["landmarks"].map(np.stack)), reference.landmarks[order], atol=1e-3)
        np.testing.assert_allclose(np.stack(mine["box"].map(np.stack)), reference.boxes[order])
        assert set(mine["source"]) == {"detector"} and set(mine["track"]) == {-1} and set(mine["time"]) == {0.0}
        expected_faces += len(mine)
    # The clip: every frame's faces as get_landmarks_from_video gives them, exactly.
    clip = rows[rows["video"] == os.path.abspath(dataset["video"])]
    reference = list(fa.get_landmarks_from_video(dataset["video"]))
    assert list(clip["frame"]) == [r.index for r in reference for t in sorted(r.tracks)]
    got = np.stack(clip["landmarks"].map(np.stack))
    want = np.concatenate([r.prediction.landmarks[np.argsort(r.tracks)] for r in reference])
    np.testing.assert_allclose(got, want, atol=1e-9)
    # The clip cut short: its decoded frames' rows kept, and an errors row; the broken photo:
    # an errors row and no rows.
    cut = rows[rows["video"] == os.path.abspath(dataset["cut"])]
    assert rows["video"].eq(os.path.abspath(dataset["bad"])).sum() == 0
    errors = pd.read_parquet(os.path.join(out, "_errors.parquet"))
    assert list(errors["path"]) == sorted([os.path.abspath(dataset["bad"]), os.path.abspath(dataset["cut"])])
    by_path = errors.set_index("path")
    assert "broken.jpg" in by_path.loc[os.path.abspath(dataset["bad"]), "reason"]
    assert "breaks off" in by_path.loc[os.path.abspath(dataset["cut"]), "reason"]
    assert by_path.loc[os.path.abspath(dataset["cut"]), "kept_rows"] == len(cut) > 0
    assert len(rows) == expected_faces + len(clip) + len(cut)
    # Every shard is a landmark table; the manifest records the model's sha256.
    for name in os.listdir(os.path.join(out, "landmarks")):
        read_landmark_table(os.path.join(out, "landmarks", name))
    manifest = json.load(open(os.path.join(out, "_manifest.json")))
    assert manifest["settings"]["config"]["model_sha256"] == hashlib.sha256(open(fan1_h5, "rb").read()).hexdigest()
    assert manifest["complete"] and manifest["summary"]["errors"] == 2
    assert manifest["summary"]["items"] == PHOTOS + 3
    assert "2 errors" in result.stderr.splitlines()[-1]


def test_rerun_does_nothing_and_changes_nothing(dataset, fan1_h5, finished, tmp_path):
    out, _ = finished
    before = sorted_rows(out)
    result = run_dataset("--input", dataset["root"], "--output", out, "--model", fan1_h5, "--photos-per-unit", 3)
    assert result.returncode == 0, result.stderr
    assert " 0 to do" in result.stderr and "0 this run" in result.stderr
    assert_same_rows(sorted_rows(out), before)


def test_the_output_folder_read_as_a_parquet_dataset_is_exactly_the_landmark_rows(finished):
    """pandas and Ray Data read OUT_DIR itself: the manifest and the errors are kept under names
    pyarrow skips. The row count is the one the shards' own metadata records."""
    import pyarrow.parquet as pq
    import ray

    out, _ = finished
    recorded = sum(json.loads(pq.ParquetFile(os.path.join(out, "landmarks", name)).metadata.metadata[
        b"face_alignment.dataset"])["rows"] for name in os.listdir(os.path.join(out, "landmarks")))
    whole = pd.read_parquet(out)
    assert len(whole) == recorded > 0 and list(whole.columns) == list(sorted_rows(out).columns[:-1])
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        assert ray.data.read_parquet(out).count() == recorded
    finally:
        ray.shutdown()


def test_an_earlier_versions_layout_is_moved_and_resumed(dataset, fan1_h5, finished, tmp_path):
    """manifest.json, errors.parquet and errors/ (which pandas read as data) are renamed, and
    the run resumes: nothing is done again."""
    import shutil

    out = str(tmp_path / "old")
    shutil.copytree(finished[0], out)
    for new, old in (("_manifest.json", "manifest.json"), ("_errors.parquet", "errors.parquet"),
                     ("_errors", "errors")):
        os.rename(os.path.join(out, new), os.path.join(out, old))
    before = sorted_rows(out)
    result = run_dataset("--input", dataset["root"], "--output", out, "--model", fan1_h5, "--photos-per-unit", 3)
    assert result.returncode == 0, result.stderr
    assert " 0 to do" in result.stderr and "0 this run" in result.stderr
    assert sorted(os.listdir(out)) == [".lock", "_errors", "_errors.parquet", "_manifest.json", "landmarks"]
    assert_same_rows(sorted_rows(out), before)
    assert len(pd.read_parquet(os.path.join(out, "_errors.parquet"))) == 2
    # Both names at once: refused, naming the one to move away, and nothing touched.
    os.mkdir(os.path.join(out, "errors"))
    assert_one_line_error(run_dataset("--input", dataset["root"], "--output", out, "--model", fan1_h5),
                          os.path.join(out, "errors"), "_errors")


def test_an_output_named_like_a_parquet_file_is_said_to_be_a_folder(dataset, fan1_h5, tmp_path):
    out = tmp_path / "out.parquet"
    result = run_dataset("--input", dataset["photos"][1], "--output", out, "--model", fan1_h5)
    assert result.returncode == 0, result.stderr
    assert f"{out}: made a folder" in result.stderr and out.is_dir()
    assert len(pd.read_parquet(out)) == 1


def test_kill_9_then_resume_equals_an_uninterrupted_run(dataset, fan1_h5, finished, tmp_path):
    reference, _ = finished
    out = str(tmp_path / "out")
    env = dict(os.environ, PYTHONPATH=ROOT)
    command = [sys.executable, "-m", "face_alignment.dataset", "--input", dataset["root"], "--output", out,
               "--model", fan1_h5, "--photos-per-unit", 3, "--no-progress", *CPU]
    process = subprocess.Popen(list(map(str, command)), cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    shards = os.path.join(out, "landmarks")
    for _ in range(6000):  # bounded: 10 minutes at most
        if os.path.isdir(shards) and any(n.startswith("part-") for n in os.listdir(shards)):
            break
        if process.poll() is not None:
            break
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished_before = len([n for n in os.listdir(shards) if n.startswith("part-")])
    total = len(os.listdir(os.path.join(reference, "landmarks")))
    assert 1 <= finished_before < total  # killed mid-job, with work done
    result = run_dataset("--input", dataset["root"], "--output", out, "--model", fan1_h5, "--photos-per-unit", 3)
    assert result.returncode == 0, result.stderr
    assert f"in {total - finished_before} units" in result.stderr
    assert_same_rows(sorted_rows(out), sorted_rows(reference))
    assert pd.read_parquet(os.path.join(out, "_errors.parquet")).equals(
        pd.read_parquet(os.path.join(reference, "_errors.parquet")))
    assert sorted(os.listdir(shards)) == sorted(os.listdir(os.path.join(reference, "landmarks")))
    assert not [n for n in os.listdir(shards) if not n.startswith("part-")]  # no temporary file left


def test_a_changed_model_or_option_is_refused_and_force_starts_over(dataset, fan1_h5, tmp_path):
    import checkpoints
    import dataclasses
    from face_alignment.registry import ARCHITECTURES, FAN
    from face_alignment.weights.h5 import write_h5
    from face_alignment.weights.loading import architecture_attrs

    other = str(tmp_path / "other.h5")
    arch = dataclasses.replace(ARCHITECTURES["2DFAN4"], name="FAN1", num_modules=1)
    write_h5(other, checkpoints.nnabla_params(checkpoints.authors_fan(1, "avg", seed=8), FAN, 1),
             architecture_attrs(arch))
    out = str(tmp_path / "out")
    photo = dataset["photos"][0]
    assert run_dataset("--input", photo, "--output", out, "--model", fan1_h5).returncode == 0
    before = {n: os.stat(os.path.join(out, "landmarks", n)).st_mtime_ns for n in os.listdir(os.path.join(out, "landmarks"))}
    manifest = open(os.path.join(out, "_manifest.json")).read()
    assert_one_line_error(run_dataset("--input", photo, "--output", out, "--model", other), out, "model_sha256")
    assert_one_line_error(run_dataset("--input", photo, "--output", out, "--model", fan1_h5, "--flip"), "flip")
    assert open(os.path.join(out, "_manifest.json")).read() == manifest
    assert {n: os.stat(os.path.join(out, "landmarks", n)).st_mtime_ns
            for n in os.listdir(os.path.join(out, "landmarks"))} == before
    result = run_dataset("--input", photo, "--output", out, "--model", other, "--force")
    assert result.returncode == 0, result.stderr
    assert "in 1 units" in result.stderr
    assert json.load(open(os.path.join(out, "_manifest.json")))["settings"]["config"]["model_sha256"] == \
        hashlib.sha256(open(other, "rb").read()).hexdigest()


def test_defaults_spelled_out_are_the_same_settings_and_a_real_change_is_named(dataset, fan1_h5, tmp_path):
    out = str(tmp_path / "out")
    photo = dataset["photos"][0]
    assert run_dataset("--input", photo, "--output", out, "--model", fan1_h5).returncode == 0

    def shards():
        folder = os.path.join(out, "landmarks")
        return {n: os.stat(os.path.join(folder, n)).st_mtime_ns for n in os.listdir(folder)}

    before = shards()
    # The defaults --help states, spelled out (the backend is onnxruntime here: see
    # test_onnx_backend's test of what is installed). The finished unit is kept, not redone.
    spelled_out = ("--decode", "centroid", "--detector", "blazeface", "--backend", "onnxruntime", "--precision", "fp32",
                   "--reference-scale", "195", "--batch-size", "8", "--max-pixels", "150000000",
                   "--type-config", "float", "--network-size", "1", "--arch", "FAN1")
    for options in (("--decode", "centroid"), ("--detector", "blazeface"), spelled_out):
        result = run_dataset("--input", photo, "--output", out, "--model", fan1_h5, *options)
        assert result.returncode == 0, (options, result.stderr)
        assert shards() == before, options
        assert json.load(open(os.path.join(out, "_manifest.json")))["complete"]
    # The same weights under another name are the same model.
    copy = tmp_path / "copy.h5"
    copy.write_bytes(open(fan1_h5, "rb").read())
    assert run_dataset("--input", photo, "--output", out, "--model", copy).returncode == 0 and shards() == before
    # A real change is refused, naming the option and both values.
    manifest = open(os.path.join(out, "_manifest.json")).read()
    assert_one_line_error(run_dataset("--input", photo, "--output", out, "--model", fan1_h5, "--decode", "argmax"),
                          "decode 'centroid' -> 'argmax'")
    assert_one_line_error(run_dataset("--input", photo, "--output", out, "--model", fan1_h5, "--backend", "nnabla"),
                          "backend 'onnxruntime' -> 'nnabla'")
    assert_one_line_error(run_dataset("--input", photo, "--output", out, "--model", fan1_h5, "--detect-every", "3"),
                          "detect_every")
    assert open(os.path.join(out, "_manifest.json")).read() == manifest and shards() == before


def test_the_detector_weights_are_part_of_the_settings(dataset, fan1_h5, tmp_path):
    """dlib's CNN detector from a weight file: the same file changed in place (same path, other
    content) is another detector, refused by its sha256, and nothing is removed or redone."""
    detector_model = tmp_path / "mmod.dat"
    detector_model.write_bytes(open(CNN_MODEL, "rb").read())
    out = str(tmp_path / "out")
    photo = dataset["photos"][0]
    command = ("--input", photo, "--output", out, "--model", fan1_h5, "--detector", "cnn",
               "--detector-model", detector_model)
    assert run_dataset(*command).returncode == 0
    manifest = open(os.path.join(out, "_manifest.json")).read()
    assert json.loads(manifest)["settings"]["config"]["detector_model_sha256"] == \
        hashlib.sha256(detector_model.read_bytes()).hexdigest()
    with open(detector_model, "ab") as f:
        f.write(b"\0")
    assert_one_line_error(run_dataset(*command), out, "detector_model_sha256")
    assert open(os.path.join(out, "_manifest.json")).read() == manifest


def test_a_3d_job_compares_the_depth_weights_too(tmp_path):
    """A 3D job's settings hold ResNetDepth's sha256: the depth file changed in place is
    another model, refused naming it; unchanged, the settings match."""
    from face_alignment.config import ModelConfig
    from face_alignment.dataset import job
    from face_alignment.dataset.cli import parser
    from face_alignment.registry import ARCHITECTURES, FAN, RESNET_DEPTH
    from face_alignment.weights import expected_parameters
    from face_alignment.weights.h5 import write_h5
    from face_alignment.weights.loading import architecture_attrs

    # Files with the networks' parameter names: a configuration reads names only.
    fan_3d, depth = str(tmp_path / "fan_3d.h5"), str(tmp_path / "depth.h5")
    arch = ARCHITECTURES["3DFAN4"]
    write_h5(fan_3d, {n: np.zeros(1, np.float32) for n in expected_parameters(FAN, arch.num_modules)},
             architecture_attrs(arch))
    write_h5(depth, {n: np.zeros(1, np.float32) for n in expected_parameters(RESNET_DEPTH)}, {})
    args = parser().parse_args(["--input", "x", "--output", "y"])
    out = str(tmp_path / "out")
    with job.locked(out):
        first = job.settings(ModelConfig.build(fan_3d, depth), args)
        job.prepare_output(out, first, job.check_settings(out, first, force=False))
        job.write_manifest(out, first, {})
        assert job.check_settings(out, job.settings(ModelConfig.build(fan_3d, depth), args), force=False) is False
        write_h5(depth, {n: np.ones(1, np.float32) for n in expected_parameters(RESNET_DEPTH)}, {}, force=True)
        with pytest.raises(FaceAlignmentError, match="depth_model_sha256"):
            job.check_settings(out, job.settings(ModelConfig.build(fan_3d, depth), args), force=False)


def test_a_list_of_paths_with_a_missing_file_lists_it_in_errors(dataset, fan1_h5, tmp_path):
    listing = tmp_path / "inputs.txt"
    photo = os.path.abspath(dataset["photos"][1])
    listing.write_text(f"# two photos, one missing\n{photo}\n\nmissing.jpg\n")
    out = str(tmp_path / "out")
    result = run_dataset("--input", listing, "--output", out, "--model", fan1_h5)
    assert result.returncode == 0, result.stderr
    errors = pd.read_parquet(os.path.join(out, "_errors.parquet"))
    assert list(errors["path"]) == [str(tmp_path / "missing.jpg")]
    assert set(pd.read_parquet(os.path.join(out, "landmarks"))["video"]) == {photo}


def test_bad_command_lines_are_one_line_errors_and_write_nothing(dataset, fan1_h5, tmp_path):
    assert_one_line_error(run_dataset("--input", tmp_path / "nowhere", "--output", tmp_path / "o", "--model", fan1_h5),
                          "nowhere")
    notes = tmp_path / "notes.md"
    notes.write_text("hello")
    assert_one_line_error(run_dataset("--input", notes, "--output", tmp_path / "o", "--model", fan1_h5), "notes.md")
    assert_one_line_error(run_dataset("--input", dataset["photos"][0], "--output", notes, "--model", fan1_h5),
                          "notes.md", "folder")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep")
    assert_one_line_error(run_dataset("--input", dataset["photos"][0], "--output", foreign, "--model", fan1_h5),
                          "foreign", "_manifest.json")
    assert sorted(os.listdir(tmp_path)) == ["foreign", "notes.md"] and os.listdir(foreign) == ["mine.txt"]


def _close(a, b, path="report"):
    """Two JSON values equal, numbers within 1e-6 (label and source names aside)."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for key in a:
            if key not in ("label", "source", "predictions"):
                _close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-9), path
    else:
        assert a == b, path


def test_evaluate_scores_a_dataset_output_as_the_same_predictions_saved_as_json(fan1_h5, tmp_path):
    import shutil

    truth = tmp_path / "truth"
    shutil.copytree(os.path.join(SHARED, "data", "faces"), truth)
    out = str(tmp_path / "out")
    assert run_dataset("--input", truth, "--output", out, "--model", fan1_h5).returncode == 0
    saved = tmp_path / "pred.json"
    made = run_tool("model_inference.py", "--model", fan1_h5, "--test-image", truth, "--save-json", saved,
                    "--no-progress", *CPU)
    assert made.returncode == 0, made.stderr
    reports = []
    for predictions in (out, saved):
        result = run_tool("-m face_alignment.evaluate", "--ground-truth", truth, "--predictions", predictions, "--json")
        assert result.returncode == 0, result.stderr
        reports.append(json.loads(result.stdout))
    _close(reports[0], reports[1])
    assert_one_line_error(run_tool("-m face_alignment.evaluate", "--ground-truth", truth, "--predictions", tmp_path,
                                   "--json"), "not a dataset job's output")
