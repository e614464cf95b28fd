"""Re-runs of ``python -m face_alignment.dataset`` over a changed input set, damaged or foreign
files in its output, a second job, faults of the machine, and a stop at each step of a unit's
completion. The command runs in this process (``cli.main``) with one FaceAlignment built once
(a small FAN with random weights): what is checked is which rows the output holds, each
input's against FaceAlignment run directly on the file as it is, not the landmarks' quality.
"""
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import ROOT, SHARED
from synthetic_video import write_clip
from test_dataset import clip_frames, make_photos

from face_alignment.dataset import cli, job, units


class Stop(BaseException):
    """A stop injected into the job, as a kill would stop it."""


@pytest.fixture(scope="module")
def runner(fan1_h5):
    """run(*args) -> (exit status, stderr): the command in this process, building its
    FaceAlignment once (``loads`` counts the times it is asked for one)."""
    built = {}
    real = cli.face_alignment

    def cached(config, cache_dir):
        runner.loads += 1
        if config not in built:
            built[config] = real(config, cache_dir)
        return built[config]

    def run(*args):
        argv = [str(a) for a in args] + ["--no-progress", "--context", "cpu"]
        if "--model" not in argv:
            argv += ["--model", fan1_h5]
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            status = cli.main(argv)
        return status, stderr.getvalue()

    runner = run
    runner.loads = 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "face_alignment", cached)
        yield runner


@pytest.fixture(scope="module")
def reference(fan1_h5):
    """The number of faces FaceAlignment finds, and their landmarks, in a photo as it is now."""
    from face_alignment.api import FaceAlignment

    fa = FaceAlignment(fan1_h5, context="cpu")

    def faces(path):
        prediction = fa.get_landmarks_from_image(path)
        return prediction.landmarks[np.argsort(prediction.landmarks[:, 0, 0])]
    return faces


def rows(out):
    return pd.read_parquet(os.path.join(out, "landmarks"))


def errors(out):
    return pd.read_parquet(os.path.join(out, "_errors.parquet"))


def assert_each_photo_once_as_it_is(out, photos, reference):
    """Every photo's rows are FaceAlignment's on the file as it is now, and no other photo has rows."""
    df = rows(out)
    assert set(df["video"]) <= {os.path.abspath(p) for p in photos}
    for path in photos:
        mine = df[df["video"] == os.path.abspath(path)]
        got = np.stack(mine["landmarks"].map(np.stack)) if len(mine) else np.zeros((0, 68, 2))
        want = reference(path)
        assert len(got) == len(want), path
        np.testing.assert_allclose(got[np.argsort(got[:, 0, 0])], want, atol=1e-3)


def shard_times(out):
    folder = os.path.join(out, "landmarks")
    return {n: os.stat(os.path.join(folder, n)).st_mtime_ns for n in os.listdir(folder)}


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    return sorted(make_photos(str(folder), 4)), str(folder)


def test_added_changed_and_unlisted_inputs(runner, reference, photos, tmp_path):
    """Item 1: an added photo is the only work, a photo changed in place gets the rows of its new
    content, a photo no longer listed keeps its rows until --prune; nothing is ever doubled."""
    paths, folder = photos
    out = tmp_path / "out"
    status, log = runner("--input", folder, "--output", out, "--photos-per-unit", 2)
    assert status == 0, log
    assert_each_photo_once_as_it_is(out, paths, reference)
    first = shard_times(out)
    # One photo more: one unit to do, the earlier shards untouched.
    extra = os.path.join(folder, "set-a", "photo99.jpg")
    shutil.copy(paths[1], extra)
    status, log = runner("--input", folder, "--output", out, "--photos-per-unit", 2)
    assert status == 0, log
    assert "4 done before, 1 to do" in log and "in 1 units" in log
    assert {n: t for n, t in shard_times(out).items() if n in first} == first
    assert_each_photo_once_as_it_is(out, paths + [extra], reference)
    # A photo replaced by another picture (another size, another time).
    changed = paths[0]
    image = cv2.imread(paths[1])
    cv2.imwrite(changed, cv2.resize(image, None, fx=0.9, fy=0.9)[:, ::-1])
    status, log = runner("--input", folder, "--output", out, "--photos-per-unit", 2)
    assert status == 0, log
    assert "1 to do (1 changed since" in log
    assert_each_photo_once_as_it_is(out, paths + [extra], reference)
    # A photo moved away, and a whole subfolder gone (a mount that dropped): their rows kept.
    before = rows(out)
    away = tmp_path / "away"
    away.mkdir()
    shutil.move(paths[1], away / "moved.jpg")
    shutil.move(os.path.join(folder, "set-b"), away / "set-b")
    gone = {paths[1]} | {p for p in paths if "/set-b/" in p}
    status, log = runner("--input", folder, "--output", out, "--photos-per-unit", 2)
    assert status == 0, log
    assert f"{len(gone)} inputs of an earlier run are no longer listed; their rows are kept; --prune removes them" \
        in log
    assert len(rows(out)) == len(before) and "0 to do" in log
    status, log = runner("--input", folder, "--output", out, "--photos-per-unit", 2, "--prune")
    assert status == 0, log
    assert f"{len(gone)} inputs of an earlier run are no longer listed: their rows were removed" in log
    left = [p for p in paths + [extra] if p not in gone]
    assert_each_photo_once_as_it_is(out, left, reference)
    assert json.load(open(out / "_manifest.json"))["summary"]["faces"] == len(rows(out))


def test_unit_ids_do_not_depend_on_the_order_inputs_are_listed(runner, photos, tmp_path):
    """Item 21: a job stopped after its first unit and resumed with its inputs listed in the
    other order ends with the shards of an uninterrupted run; resuming again has nothing to do."""
    paths, folder = photos
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(paths[2:]) + "\n")
    inputs = [os.path.join(folder, "set-a"), listing]
    whole = tmp_path / "whole"
    assert runner("--input", *inputs, "--output", whole, "--photos-per-unit", 1)[0] == 0

    out = tmp_path / "out"
    real = job.run_unit
    calls = []

    def first_only(*args, **kwargs):
        if calls:
            raise Stop()
        calls.append(1)
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("face_alignment.dataset.local.run_unit", first_only)
        with pytest.raises(Stop):
            runner("--input", *inputs, "--output", out, "--photos-per-unit", 1)
    listing.write_text("\n".join(reversed(paths[2:])) + "\n")
    status, log = runner("--input", *reversed(inputs), "--output", out, "--photos-per-unit", 1)
    assert status == 0, log
    assert sorted(os.listdir(out / "landmarks")) == sorted(os.listdir(whole / "landmarks"))
    status, log = runner("--input", listing, inputs[0], "--output", out, "--photos-per-unit", 1)
    assert status == 0 and " 0 to do" in log, log
    items = units.list_inputs([folder])
    assert units.make_units(items[::-1], 3) == units.make_units(items, 3)


def test_a_second_job_is_refused_naming_the_first_and_a_killed_ones_lock_is_taken_over(runner, photos, tmp_path):
    """Items 3 and 15: while a job holds the output, another is refused in one line naming it,
    before touching anything (the first job's temporary shard stays); once the first is
    killed, its lock is taken over."""
    paths, folder = photos
    out = tmp_path / "out"
    (out / "landmarks").mkdir(parents=True)
    temporary = out / "landmarks" / ".fa-0123abcd.tmp.parquet"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from face_alignment.dataset import job\n"
         "with job.locked(sys.argv[1]):\n"
         "    open(sys.argv[2], 'w').close(); print('locked', flush=True); time.sleep(600)", str(out), str(temporary)],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        loads = runner.loads
        status, log = runner("--input", paths[0], "--output", out)
        assert status == 2 and log.strip().splitlines()[-1].startswith("error: ")
        last = log.strip().splitlines()[-1]
        assert str(out) in last and f"pid {holder.pid} on " in last
        assert temporary.exists() and runner.loads == loads  # nothing touched, no model loaded
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    status, log = runner("--input", paths[0], "--output", out)
    assert status == 0, log
    assert f"taking over the lock of a job that did not end (pid {holder.pid}" in log
    assert not temporary.exists()


def test_every_check_comes_before_the_model_is_loaded(runner, photos, tmp_path):
    """Item 4: a bad --output, a folder of other files, other settings without --force: one
    line, and no model asked for (the model named here is not even a model)."""
    paths, folder = photos
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an HDF5 file at all")
    afile = tmp_path / "afile"
    afile.write_text("x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep")
    loads = runner.loads
    for output, fragment in ((afile, "is a file"), (foreign, "other files"), (afile / "sub", "not a folder")):
        status, log = runner("--input", folder, "--output", output, "--model", garbage)
        assert status == 2 and str(output if fragment != "not a folder" else afile) in log.splitlines()[-1]
        assert fragment in log.splitlines()[-1], log
    assert runner.loads == loads
    assert runner("--input", paths[0], "--output", tmp_path / "out")[0] == 0
    # Into an existing output too, the weight file is checked (its names: nothing is loaded)
    # before the settings are compared or anything is written.
    manifest = (tmp_path / "out" / "_manifest.json").read_text()
    status, log = runner("--input", paths[0], "--output", tmp_path / "out", "--model", garbage)
    assert status == 2 and str(garbage) in log.splitlines()[-1]
    assert runner.loads == loads + 1 and (tmp_path / "out" / "_manifest.json").read_text() == manifest


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    return write_clip(folder / "clip.mp4", clip_frames(6))


def test_a_full_disk_or_no_memory_stops_the_job_and_leaves_the_unit_to_do(runner, clip, tmp_path):
    """Items 11 and 20 (its last point): pyarrow's "No space left" while a video's row group is
    written, and a MemoryError while it is landmarked, stop the job with one line naming the
    file; the video is not recorded as failed, and a re-run does it."""
    import functools

    import face_alignment.landmark_table as table

    data = tmp_path / "data"
    data.mkdir()
    video = shutil.copy(clip, data / "clip.mp4")
    out = tmp_path / "out"
    real_write = pq.ParquetWriter.write_table
    writes = []

    def full_disk(self, *args, **kwargs):
        writes.append(1)
        if len(writes) > 1:
            raise OSError("Error writing bytes to file. Detail: [errno 28] No space left on device")
        return real_write(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        # Small row groups, so that rows are flushed mid-video (the writer seam opens the table).
        patch.setattr(table, "LandmarkTableWriter", functools.partial(table.LandmarkTableWriter, rows_per_group=2))
        patch.setattr(pq.ParquetWriter, "write_table", full_disk)
        status, log = runner("--input", data, "--output", out)
    last = log.strip().splitlines()[-1]
    assert status == 2 and len(writes) == 2, log
    assert last.startswith("error: ") and "No space left on device" in last
    assert os.path.join(str(out), "landmarks", "part-") in last and "Traceback" not in log
    assert not [n for n in os.listdir(out / "landmarks")]  # no shard, no temporary file
    status, log = runner("--input", data, "--output", out)
    assert status == 0 and "0 done before, 1 to do" in log, log
    done = rows(out)
    assert len(done) > 0 and len(errors(out)) == 0

    shutil.rmtree(out)
    from face_alignment.api import FaceAlignment

    real_video = FaceAlignment.get_landmarks_from_video

    def no_memory(self, *args, **kwargs):
        for index, result in enumerate(real_video(self, *args, **kwargs)):
            if index == 3:
                raise MemoryError()
            yield result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FaceAlignment, "get_landmarks_from_video", no_memory)
        status, log = runner("--input", data, "--output", out)
    last = log.strip().splitlines()[-1]
    assert status == 2 and "out of memory" in last and str(video) in last and "Traceback" not in log
    status, log = runner("--input", data, "--output", out)
    assert status == 0 and "1 to do" in log and len(rows(out)) == len(done) and len(errors(out)) == 0


def test_names_that_are_not_utf8_and_folders_that_cannot_be_listed_are_errors_rows(runner, reference, photos,
                                                                                     tmp_path):
    """Items 12 and 17: a photo whose name is not UTF-8 and a folder that cannot be listed are
    rows of errors.parquet, the rest is done; once the folder can be listed, its photos are
    done and its errors row goes, nothing doubled."""
    paths, folder = photos
    latin1 = os.fsdecode(os.path.join(os.fsencode(folder), b"caf\xe9.jpg"))
    shutil.copy(paths[0], latin1)
    out = tmp_path / "out"
    unreadable = os.path.join(folder, "set-b")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == unreadable:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "scandir", scandir)
        status, log = runner("--input", folder, "--output", out, "--photos-per-unit", 2)
    assert status == 0, log
    listed = errors(out).set_index("path")
    assert list(listed.index) == sorted([os.path.join(folder, "caf\\xe9.jpg"), unreadable])
    assert "not valid UTF-8" in listed.loc[os.path.join(folder, "caf\\xe9.jpg"), "reason"]
    assert "cannot list the folder (Permission denied)" in listed.loc[unreadable, "reason"]
    assert_each_photo_once_as_it_is(out, [p for p in paths if "/set-a/" in p], reference)
    status, log = runner("--input", folder, "--output", out, "--photos-per-unit", 2)
    assert status == 0, log
    assert list(errors(out)["path"]) == [os.path.join(folder, "caf\\xe9.jpg")]
    assert_each_photo_once_as_it_is(out, paths, reference)


def test_failed_inputs_are_retried_when_they_change_or_when_asked(runner, reference, photos, tmp_path):
    """Item 18: a listed file that appears later is done on the next run; one that failed and
    did not change (a read that failed once) is named with --retry-errors, which does it."""
    from face_alignment.api import FaceAlignment
    from face_alignment.errors import ImageReadError

    paths, folder = photos
    later = os.path.join(folder, "later.jpg")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{paths[0]}\n{paths[1]}\n{later}\n")
    out = tmp_path / "out"
    real = FaceAlignment.predict_files

    def flaky(self, files, *args, **kwargs):
        if paths[1] in files:
            raise ImageReadError(f"{paths[1]}: Input/output error")
        return real(self, files, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FaceAlignment, "predict_files", flaky)
        status, log = runner("--input", listing, "--output", out)
    assert status == 0, log
    assert list(errors(out)["path"]) == sorted([paths[1], later])
    shutil.copy(paths[2], later)
    status, log = runner("--input", listing, "--output", out)
    assert status == 0 and "1 to do (1 changed since" in log, log
    assert "1 inputs failed before and are unchanged: not tried again (--retry-errors tries them)" in log
    assert list(errors(out)["path"]) == [paths[1]]
    status, log = runner("--input", listing, "--output", out, "--retry-errors")
    assert status == 0 and "1 failed before and retried" in log, log
    assert len(errors(out)) == 0
    assert_each_photo_once_as_it_is(out, [paths[0], paths[1], later], reference)


def test_a_file_reached_by_two_paths_is_one_input_under_the_path_listed(runner, reference, photos, tmp_path):
    """Item 19: a symbolic link to a photo, and a linked folder given beside the folder, give
    each real file once, named by the listed path that sorts first."""
    paths, folder = photos
    link = os.path.join(folder, "set-a", "a-link.jpg")  # sorts before paths[0], set-a/photo01.jpg
    os.symlink(paths[0], link)
    linked = tmp_path / "zlinked"  # sorts after photos/
    os.symlink(folder, linked)
    out = tmp_path / "out"
    status, log = runner("--input", linked, folder, "--output", out)
    assert status == 0 and "4 inputs" in log, log
    assert sorted(Counter(rows(out)["video"])) == sorted([link] + paths[1:])
    assert_each_photo_once_as_it_is(out, [link] + paths[1:], reference)


def test_damaged_shards_are_named_removed_and_done_again(runner, photos, tmp_path):
    """Item 14: a shard cut short, an errors shard of garbage, a shard copied over another: the
    re-run names each, does their units again and ends with a clean run's rows and errors."""
    paths, folder = photos
    broken = os.path.join(folder, "set-a", "broken.jpg")
    open(broken, "wb").write(b"not a JPEG")
    clean, out = tmp_path / "clean", tmp_path / "out"
    for where in (clean, out):
        assert runner("--input", folder, "--output", where, "--photos-per-unit", 1)[0] == 0
    shards = sorted(os.listdir(out / "landmarks"))
    failed = os.listdir(out / "_errors")[0]
    others = [s for s in shards if s != failed]
    data = open(out / "landmarks" / others[0], "rb").read()
    open(out / "landmarks" / others[0], "wb").write(data[:len(data) // 2])
    shutil.copy(out / "landmarks" / others[1], out / "landmarks" / others[2])
    open(out / "_errors" / failed, "wb").write(b"garbage")
    lost = out / "landmarks" / others[3]  # a row lost, its metadata kept
    cut, footer = pq.read_table(lost), pq.ParquetFile(lost).metadata.metadata
    pq.write_table(cut.slice(0, cut.num_rows - 1).replace_schema_metadata(
        {k: v for k, v in footer.items() if k != b"ARROW:schema"}), lost)
    status, log = runner("--input", folder, "--output", out, "--photos-per-unit", 1)
    assert status == 0, log
    for name in (others[0], others[2], others[3], failed):
        assert os.path.join(str(out), "landmarks", name) in log
    assert "not a readable Parquet file" in log and "a copy of another shard" in log
    assert f"{cut.num_rows - 1} rows; its record says {cut.num_rows}" in log
    assert "errors shard" in log and "4 to do" in log
    a, b = rows(out), rows(clean)
    key = ["video", "frame"]
    assert a.sort_values(key)["video"].tolist() == b.sort_values(key)["video"].tolist()
    assert errors(out).equals(errors(clean))


def test_force_removes_only_what_a_dataset_job_wrote(runner, photos, tmp_path):
    """Item 16: --force over another model's output removes its shards and keeps the user's
    files there, naming them (a normal run names them too)."""
    import checkpoints
    import dataclasses
    from face_alignment.registry import ARCHITECTURES, FAN
    from face_alignment.weights.h5 import write_h5
    from face_alignment.weights.loading import architecture_attrs

    paths, folder = photos
    other = str(tmp_path / "other.h5")
    write_h5(other, checkpoints.nnabla_params(checkpoints.authors_fan(1, "avg", seed=8), FAN, 1),
             architecture_attrs(dataclasses.replace(ARCHITECTURES["2DFAN4"], name="FAN1", num_modules=1)))
    out = tmp_path / "out"
    assert runner("--input", paths[0], "--output", out)[0] == 0
    old = os.listdir(out / "landmarks")
    (out / "_workers").mkdir()
    (out / "_workers" / "123").write_text("host\n")
    mine = [out / "landmarks" / "notes.txt", out / "_errors" / "mine.parquet", out / "_workers" / "readme.md"]
    for path in mine:
        path.write_text("keep")
    status, log = runner("--input", paths[1], "--output", out, "--model", other, "--force")
    assert status == 0, log
    for path in mine:
        assert path.read_text() == "keep" and str(path) in log
    assert not set(old) & set(os.listdir(out / "landmarks")) and not (out / "_workers" / "123").exists()
    status, log = runner("--input", paths[1], "--output", out, "--model", other)
    assert status == 0 and str(mine[0]) in log and "not written by a dataset job" in log


@pytest.mark.parametrize("step", ["before errors shard", "after errors shard", "before landmark shard",
                                  "after landmark shard"])
def test_a_stop_at_each_step_of_a_units_completion(runner, photos, tmp_path, step):
    """Item 22: a unit with a failed photo, stopped before or after each rename of its
    completion (errors shard, then landmark shard): the re-run does it again unless its
    landmark shard is in place, finds nothing damaged, and ends with a clean run's rows and
    errors, the failed photo's row included."""
    paths, folder = photos
    broken = os.path.join(folder, "set-b", "broken.jpg")
    open(broken, "wb").write(b"not a JPEG")
    inputs = [paths[0], broken]
    clean, out = tmp_path / "clean", tmp_path / "out"
    assert runner("--input", *inputs, "--output", clean, "--photos-per-unit", 2)[0] == 0
    when, which = step.split(" ", 1)
    folder_of = {"errors shard": os.path.join(str(out), "_errors"),
                 "landmark shard": os.path.join(str(out), "landmarks")}
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if os.path.dirname(os.fspath(dst)) == folder_of[which]:
            if when == "before":
                raise Stop()
            real(src, dst, *args, **kwargs)
            raise Stop()
        return real(src, dst, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "replace", replace)
        with pytest.raises(Stop):
            runner("--input", *inputs, "--output", out, "--photos-per-unit", 2)
    status, log = runner("--input", *inputs, "--output", out, "--photos-per-unit", 2)
    assert status == 0, log
    assert "warning" not in log
    assert ("0 to do" if step == "after landmark shard" else "2 to do") in log
    assert errors(out).equals(errors(clean)) and list(errors(out)["path"]) == [broken]
    assert rows(out)["video"].tolist() == rows(clean)["video"].tolist()
    assert sorted(os.listdir(out / "_errors")) == sorted(os.listdir(clean / "_errors"))
