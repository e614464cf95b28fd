"""face-alignment's API: the same user code (tests/face_alignment_user.py) run against the
authors' face-alignment 1.5.0, unpacked from its wheel, and against ours, with the same
random weights in a temporary TORCH_HOME, gives the same answers.

Both packages get the checkpoints the way face-alignment users have them:
``$TORCH_HOME/hub/checkpoints/2DFAN4-11f355bf06.pth.tar`` and the 3D pair, in the authors'
formats. Ours converts them on first use (with a warning: random weights are not the
published file). What is compared is the API around the networks (detection, crops, flip,
decoding, scores, boxes, batches, folders, depth), so 2DFAN4 and 3DFAN4 are one-hourglass FANs
in both packages (tests/one_hourglass_user.py); FAN-4's parity is test_parity's and
test_pipeline_parity's. Landmarks are compared as the project's parity tests do: x and y exactly
(both truncate argmax points to whole pixels), z and scores to 1e-5 of their largest value.
"""
import json
import os
import pickle
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch

import authors_reference
import checkpoints
from conftest import ROOT, SHARED, TESTS, annotated_box, fresh_home, run_tool
from weight_files import SEEING_DEPTH, STAND_IN_2DFAN4, link

USER_CODE = os.path.join(TESTS, "face_alignment_user.py")
ONE_HOURGLASS = os.path.join(TESTS, "one_hourglass_user.py")  # runs USER_CODE with FAN-1s
TOLERANCE = checkpoints.NETWORK_TOLERANCE  # of the largest value, per coordinate


def write_torch_home(folder, weight_files):
    """The checkpoints face-alignment downloads, where it keeps them, with random weights: a
    one-hourglass FAN's (see the module's docstring), and ResNetDepth's made to look at its
    landmark channels (as test_pipeline_parity's)."""
    hub = folder / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    link(weight_files.checkpoint(STAND_IN_2DFAN4), hub / "2DFAN4-11f355bf06.pth.tar")
    link(weight_files.checkpoint(STAND_IN_2DFAN4), hub / "3DFAN4-7835d9f11d.pth.tar")
    link(weight_files.checkpoint(SEEING_DEPTH, "depth"), hub / "depth-2a464da4ea.pth.tar")


def write_data(folder):
    """The files face_alignment_user.py reads (see its docstring)."""
    einstein = os.path.join(SHARED, "data", "faces", "einstein.jpg")
    box = annotated_box("einstein").tolist()
    blank = np.full((160, 200, 3), 128, np.uint8)
    for sub in ("photos/more", "boxes"):
        (folder / sub).mkdir(parents=True)
    shutil.copy(einstein, folder / "einstein.jpg")
    shutil.copy(os.path.join(SHARED, "data", "faces", "breakingbad.jpg"), folder / "breakingbad.jpg")
    cv2.imwrite(str(folder / "blank.png"), blank)
    (folder / "box.json").write_text(json.dumps(box))
    shutil.copy(einstein, folder / "photos" / "einstein.jpg")
    cv2.imwrite(str(folder / "photos" / "blank.png"), blank)
    cv2.imwrite(str(folder / "photos" / "more" / "blank2.png"), blank)
    shutil.copy(einstein, folder / "boxes" / "einstein.jpg")
    torch.save([box], folder / "boxes" / "einstein.pth")


@pytest.fixture(scope="module")
def runs(module_folder, weight_files):
    root = module_folder("compat")
    results = run_both(root, weight_files)
    # What ours converted (a FAN twice and ResNetDepth, 260 MB) is read by no test: it would
    # stay on disk for the rest of the session. (The exports in it are the session's: only
    # the link to them goes.)
    shutil.rmtree(root / "home")
    return results


def run_both(root, weight_files):
    """{"theirs": results, "ours": results} of the user code, run in two processes at once
    (and their output as "theirs_log", "ours_log"). Ours converts the checkpoints into a home
    of its own, whose export cache is the session's (its converted ResNetDepth is the one
    test_pipeline_parity exports, byte for byte)."""
    write_torch_home(root / "torch", weight_files)
    write_data(root / "data")
    theirs = authors_reference.package_root(root / "theirs")
    home = fresh_home(root / "home", shared_exports=True)
    processes = {}
    for name, path in (("theirs", theirs), ("ours", ROOT)):
        env = dict(os.environ, PYTHONPATH=path, TORCH_HOME=str(root / "torch"),
                   FACE_ALIGNMENT_HOME=home, XDG_CACHE_HOME=str(root / "xdg"),
                   FACE_ALIGNMENT_WEIGHTS_MIRROR="http://127.0.0.1:9/")  # never the internet
        out = root / f"{name}.pkl"
        log = open(root / f"{name}.log", "w")
        processes[name] = (subprocess.Popen([sys.executable, ONE_HOURGLASS, USER_CODE, str(root / "data"), str(out)],
                                            cwd=str(root), env=env, stdout=log, stderr=subprocess.STDOUT),
                           out, log, time.time())
    results = {}
    for name, (process, out, log, started) in processes.items():
        process.wait()
        log.close()
        text = (root / f"{name}.log").read_text()
        assert process.returncode == 0, f"{name}:\n{text}"
        with open(out, "rb") as f:
            results[name] = pickle.load(f)
        results[name + "_log"] = text
    return results


def assert_same(theirs, ours, where):
    """The same structure (list, tuple, None, arrays of the same shape and dtype), with
    arrays equal to TOLERANCE of their largest value, coordinate by coordinate."""
    if theirs is None or ours is None:
        assert theirs is None and ours is None, (where, type(theirs), type(ours))
        return
    if isinstance(theirs, (list, tuple)) and not _is_box(theirs):
        assert type(theirs) is type(ours) and len(theirs) == len(ours), (where, theirs, ours)
        for i, (a, b) in enumerate(zip(theirs, ours)):
            assert_same(a, b, f"{where}[{i}]")
        return
    expected, got = np.asarray(theirs, dtype=np.float64), np.asarray(ours)
    if expected.size == 0:  # [] or an empty array: no faces
        assert got.size == 0, (where, got)
        return
    if isinstance(theirs, np.ndarray):
        assert got.dtype == theirs.dtype, (where, got.dtype, theirs.dtype)
    assert got.shape == expected.shape, (where, got.shape, expected.shape)
    columns = expected.reshape(len(expected), -1) if expected.ndim == 2 else expected.reshape(-1, 1)
    for column in range(columns.shape[1]):
        want = columns[:, column]
        have = np.asarray(got, dtype=np.float64).reshape(columns.shape)[:, column]
        np.testing.assert_allclose(have, want, rtol=0, atol=TOLERANCE * max(np.abs(want).max(), 1e-12),
                                   err_msg=f"{where}, column {column}")


def _is_box(value):
    """A box as face-alignment's dlib and folder detectors give it: a flat list of numbers."""
    return isinstance(value, list) and all(isinstance(v, (int, float)) for v in value)


def _landmarks_exact(theirs, ours, where):
    """x and y are whole pixels in both: they must be equal, not merely close."""
    for i, (a, b) in enumerate(zip(theirs, ours)):
        np.testing.assert_array_equal(b[:, :2], a[:, :2], err_msg=f"{where}[{i}]")


@pytest.mark.parametrize("call", ["path", "get_landmarks", "given"])
def test_landmarks_alone(runs, call):
    theirs, ours = runs["theirs"][call], runs["ours"][call]
    assert isinstance(ours, list) and len(ours) == 1
    assert ours[0].shape == (68, 2) and ours[0].dtype == np.float32
    assert_same(theirs, ours, call)
    _landmarks_exact(theirs, ours, call)


def test_return_bboxes_gives_the_detectors_boxes(runs):
    theirs, ours = runs["theirs"]["bboxes"], runs["ours"]["bboxes"]
    assert isinstance(ours, tuple) and ours[1] is None
    assert_same(theirs, ours, "bboxes")
    _landmarks_exact(theirs[0], ours[0], "bboxes")


def test_return_landmark_score(runs):
    theirs, ours = runs["theirs"]["scores"], runs["ours"]["scores"]
    assert isinstance(ours, tuple) and ours[2] is None and ours[1][0].shape == (68,)
    assert_same(theirs, ours, "scores")


def test_detected_faces_given_with_both_flags(runs):
    theirs, ours = runs["theirs"]["given_both"], runs["ours"]["given_both"]
    assert len(ours[0]) == 2  # two boxes, two faces, in their order
    assert not np.array_equal(ours[0][0], ours[0][1])
    assert_same(theirs, ours, "given_both")
    _landmarks_exact(theirs[0], ours[0], "given_both")


def test_no_face_is_none(runs):
    assert runs["theirs"]["no_face"] is None and runs["ours"]["no_face"] is None
    assert runs["theirs"]["no_face_both"] == (None, None, None)
    assert runs["ours"]["no_face_both"] == (None, None, None)


def test_batch(runs):
    theirs, ours = runs["theirs"]["batch"], runs["ours"]["batch"]
    assert len(theirs) == len(ours) == 2
    assert_same(theirs[0], ours[0], "batch[0]")
    np.testing.assert_array_equal(ours[0], theirs[0])
    # A frame without faces: theirs [], ours an empty (0, 2) array (see the README).
    assert theirs[1] == [] and ours[1].shape == (0, 2)
    theirs, ours = runs["theirs"]["batch_both"], runs["ours"]["batch_both"]
    assert_same(theirs[0][0], ours[0][0], "batch_both landmarks")
    assert_same(theirs[1:], ours[1:], "batch_both scores and boxes")


def test_directory(runs):
    theirs, ours = runs["theirs"]["directory"], runs["ours"]["directory"]
    assert sorted(theirs) == sorted(ours)
    assert len(ours) == 3 and sum(v is None for v in ours.values()) == 2  # the blank images
    for path in theirs:
        assert_same(theirs[path], ours[path], path)
    theirs, ours = runs["theirs"]["directory_scores"], runs["ours"]["directory_scores"]
    assert sorted(theirs) == sorted(ours) and len(ours) == 1  # blank.png alone: not recursive
    assert all(v == (None, None, None) for v in ours.values())


def test_folder_detector(runs):
    theirs, ours = runs["theirs"]["folder"], runs["ours"]["folder"]
    assert_same(theirs, ours, "folder")
    _landmarks_exact(theirs[0], ours[0], "folder")


def test_three_d(runs):
    theirs, ours = runs["theirs"]["3d"], runs["ours"]["3d"]
    assert ours[0][0].shape == (68, 3) and ours[0][0].dtype == np.float32
    assert np.abs(ours[0][0][:, 2]).max() > 0
    assert_same(theirs, ours, "3d")
    _landmarks_exact(theirs[0], ours[0], "3d")


def test_our_run_warned_about_the_unpublished_checkpoints(runs):
    """Random weights under the published names: used, each with one warning naming it."""
    log = runs["ours_log"]
    for name in ("2DFAN4-11f355bf06.pth.tar", "3DFAN4-7835d9f11d.pth.tar", "depth-2a464da4ea.pth.tar"):
        assert any(name in line and "sha256" in line and "warning" in line.lower() for line in log.splitlines()), name


def readme_example():
    """The python block of the README's "Coming from face-alignment" section."""
    with open(os.path.join(ROOT, "README.md")) as f:
        section = f.read().split("## Coming from face-alignment", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_runs_as_pasted(tmp_path, weight_files, one_hourglass_2dfan4):
    """With face-alignment's files in TORCH_HOME the README's example runs from the
    repository. Random weights: 2DFAN4's (a one-hourglass FAN, which one_hourglass_2dfan4 makes
    the registry's 2DFAN4: the example loads it but finds no face to run it on), and S3FD's
    with every face score pushed to zero, since a random S3FD finds hundreds of "faces", each
    costing a FAN run: it prints None. Run in this process (tests/in_process.py), so that the
    registry's stand-in holds."""
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    link(weight_files.checkpoint(STAND_IN_2DFAN4), hub / "2DFAN4-11f355bf06.pth.tar")
    net_s3fd = authors_reference._load("face_alignment/detection/sfd/net_s3fd.py", "authors_net_s3fd")
    torch.manual_seed(0)
    s3fd = net_s3fd.s3fd()
    with torch.no_grad():
        for name, layer in s3fd.named_children():
            if name.endswith("_mbox_conf"):
                layer.bias[-1] = -30.0  # the face channel (the last) of every classifier
    torch.save(s3fd.state_dict(), hub / "s3fd-619a316812.pth")
    example = tmp_path / "readme_example.py"
    example.write_text(readme_example())
    env = {"PYTHONPATH": ROOT, "TORCH_HOME": str(tmp_path / "torch"), "FACE_ALIGNMENT_HOME": str(tmp_path / "home"),
           "XDG_CACHE_HOME": str(tmp_path / "xdg"), "FACE_ALIGNMENT_WEIGHTS_MIRROR": "http://127.0.0.1:9/"}
    result = run_tool(str(example), cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "None", result.stdout


# Ours alone: what face-alignment cannot be compared on (its own bugs, our additions).

def test_import_is_cheap():
    code = ("import sys, face_alignment; face_alignment.LandmarksType.TWO_D; "
            "print(sorted(m for m in ('nnabla', 'cv2', 'dlib', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=ROOT),
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.fixture
def small_weights(monkeypatch, fan1_h5):
    """Every published FAN replaced by a one-hourglass FAN (fast); records the names asked for."""
    from face_alignment import hub

    asked = []
    monkeypatch.setattr(hub, "weights_path", lambda name: asked.append(name) or fan1_h5)
    return asked


def test_a_path_gives_our_own_class_and_a_landmarks_type_theirs(fan1_h5, small_weights):
    import face_alignment
    from face_alignment import api, compat

    ours = face_alignment.FaceAlignment(fan1_h5, backend="nnabla", context="cpu")
    assert type(ours) is api.FaceAlignment
    theirs = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_HALF_D, device="cpu",
                                          face_detector="folder", backend="nnabla")
    assert type(theirs) is compat.FaceAlignment and small_weights == ["3DFAN4"] and not theirs._pipeline.is_3d
    assert theirs._pipeline.flip and theirs._pipeline.decode == "argmax" and theirs._pipeline.integer_landmarks


@pytest.mark.parametrize("device, expected", [("cpu", ("cpu", 0)), ("cuda", ("cudnn", 0)), ("cuda:3", ("cudnn", 3))])
def test_devices(device, expected):
    from face_alignment.compat import _context

    assert _context(device) == expected
    assert _context(torch.device(device)) == expected


def test_bad_options_are_one_line_errors(small_weights):
    from face_alignment import FaceAlignment, LandmarksType, NetworkSize
    from face_alignment.compat import _type_config
    from face_alignment.errors import FaceAlignmentError

    assert _type_config(torch.float32) == _type_config(np.float32) == _type_config("float32") == "float"
    assert _type_config(torch.half) == "half"
    for kwargs, fragment in (({"device": "mps"}, "'mps'"), ({"network_size": 2}, "network_size 2"),
                             ({"dtype": torch.float64}, "torch.float64"), ({"face_detector": "nope"}, "'nope'")):
        with pytest.raises(FaceAlignmentError, match=fragment):
            FaceAlignment(LandmarksType.TWO_D, **{"device": "cpu", **kwargs})
    with pytest.raises(FaceAlignmentError, match="landmarks_type 7"):
        FaceAlignment(7, device="cpu")
    assert NetworkSize.LARGE == 4


def test_folder_boxes_from_npy_and_pth_and_what_is_refused(tmp_path, small_weights):
    from face_alignment import FaceAlignment, LandmarksType
    from face_alignment.compat import FolderDetector
    from face_alignment.errors import FaceAlignmentError

    box = annotated_box("einstein")
    image = tmp_path / "a.jpg"
    shutil.copy(os.path.join(SHARED, "data", "faces", "einstein.jpg"), image)
    detector = FolderDetector()
    with pytest.raises(FaceAlignmentError, match=r"a\.npy, .*a\.t7, .*a\.pth"):
        detector.detect_file(str(image))
    torch.save([torch.tensor(list(box) + [0.9])], tmp_path / "a.pth")
    np.testing.assert_array_equal(detector.detect_file(str(image)), [list(box) + [0.9]])
    np.save(tmp_path / "a.npy", np.stack([box, box + 10]))  # .npy comes first, an array is fine
    np.testing.assert_array_equal(detector.detect_file(str(image)), [box, box + 10])
    fa = FaceAlignment(LandmarksType.TWO_D, device="cpu", face_detector="folder", backend="nnabla")
    with pytest.raises(FaceAlignmentError, match="image's path"):
        fa.get_landmarks_from_image(np.zeros((32, 32, 3), np.uint8))


def test_float_images_are_0_to_255_and_within_0_1_refused(small_weights):
    from face_alignment import FaceAlignment, LandmarksType
    from face_alignment.compat import their_pixels
    from face_alignment.errors import FaceAlignmentError

    pixels = np.array([[[0.0, 127.9, 255.5]]])
    np.testing.assert_array_equal(their_pixels(pixels), [[[0, 127, 255]]])  # truncated, as their crop
    fa = FaceAlignment(LandmarksType.TWO_D, device="cpu", face_detector="folder", backend="nnabla")
    batch = np.random.RandomState(0).rand(2, 3, 64, 64).astype(np.float32)
    with pytest.raises(FaceAlignmentError, match=r"image_batch\[0\].*multiply by 255"):
        fa.get_landmarks_from_batch(batch, detected_faces=[[], []])
    with pytest.raises(FaceAlignmentError, match="2 lists of boxes for 1 images"):
        fa.get_landmarks_from_batch(batch[:1] * 255, detected_faces=[[], []])
    found = fa.get_landmarks_from_batch(batch * 255, detected_faces=[[[8, 8, 56, 56]], []])  # numpy, not torch
    assert [f.shape for f in found] == [(68, 2), (0, 2)]


def test_batch_detection_works_with_dlib(small_weights):
    """Theirs raises NotImplementedError (dlib has no detect_from_batch): the faces are those
    of get_landmarks_from_image, image by image."""
    from face_alignment import FaceAlignment, LandmarksType

    fa = FaceAlignment(LandmarksType.TWO_D, device="cpu", face_detector="dlib", backend="nnabla")
    image = cv2.cvtColor(cv2.imread(os.path.join(SHARED, "data", "faces", "einstein.jpg")), cv2.COLOR_BGR2RGB)
    single, _, boxes = fa.get_landmarks_from_image(image, return_bboxes=True)
    batch = torch.from_numpy(np.stack([image, np.full_like(image, 128)]).transpose(0, 3, 1, 2).copy())
    landmarks, _, found = fa.get_landmarks_from_batch(batch, return_bboxes=True)
    assert len(found[0]) == 1 and found[1] == []
    np.testing.assert_array_equal(found[0][0], boxes[0])
    np.testing.assert_array_equal(landmarks[0], single[0])


def test_the_api_version_followed_is_the_reference_wheels():
    """face_alignment.__version__ stays ours; the face-alignment release whose API compat
    follows is stated apart, and is the one the parity tests run against."""
    import zipfile

    import face_alignment
    from face_alignment import compat

    with zipfile.ZipFile(authors_reference._wheel()) as wheel:
        metadata = wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    released = next(line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Version:"))
    assert compat.FACE_ALIGNMENT_API_VERSION == face_alignment.FACE_ALIGNMENT_API_VERSION == released
    assert face_alignment.__version__ != released


def test_offline_without_the_published_files_every_place_looked_in_is_named(tmp_path, monkeypatch):
    """The README's snippet with no published file anywhere: one error, naming
    $TORCH_HOME/hub/checkpoints (where face-alignment users keep them) and our home, for the
    detector's weights as for FAN's."""
    from face_alignment import hub
    from face_alignment.compat import make_detector
    from face_alignment.errors import WeightsFileError

    torch_home, home = tmp_path / "torch", tmp_path / "home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("FACE_ALIGNMENT_HOME", str(home))
    monkeypatch.setenv("FACE_ALIGNMENT_WEIGHTS_MIRROR", "http://127.0.0.1:9/")  # never the internet
    checkpoints_dir = str(torch_home / "hub" / "checkpoints")
    for name in ("sfd", "retinaface"):
        with pytest.raises(WeightsFileError) as raised:
            make_detector(name, None, "cpu")
        assert checkpoints_dir in str(raised.value) and str(home) in str(raised.value), raised.value
    with pytest.raises(WeightsFileError) as raised:
        hub.weights_path("2DFAN4")
    assert checkpoints_dir in str(raised.value) and str(home) in str(raised.value), raised.value
