"""What a library and its command lines print: a script that imports the package sees none of
its INFO lines (nnabla puts a timestamped handler on the root logger at import), warnings are
not prefixed twice, and the command lines choose the level with -v / -q."""
import os
import subprocess
import sys

from conftest import CPU, ROOT, SHARED, run_tool

EINSTEIN = os.path.join(SHARED, "data", "faces", "einstein.jpg")
SCRIPT = """
import sys
import numpy as np
from face_alignment.api import FaceAlignment  # nnabla puts its handler on the root logger
boxes = lambda image: np.array([[250.0, 260, 600, 640], [10, 10, 100, 100]])
fa = FaceAlignment(sys.argv[1], backend="nnabla", context="cpu", detector=boxes, max_faces=1)  # an INFO line
fa.get_landmarks_from_image(sys.argv[2])  # a warning: 2 faces found, 1 kept
"""


def test_a_script_sees_no_info_lines_and_warnings_once_prefixed(fan1_h5):
    result = subprocess.run([sys.executable, "-c", SCRIPT, fan1_h5, EINSTEIN], cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert not [line for line in lines if "INFO" in line], lines
    [warning] = [line for line in lines if "max_faces" in line]
    assert "[WARNING]" in warning and "warning:" not in warning, warning


def test_the_command_lines_choose_the_level_with_v_and_q(fan1_h5, tmp_path):
    boxes = tmp_path / "boxes.json"
    boxes.write_text("[[250, 260, 600, 640]]")

    def run(*flags):
        result = run_tool("model_inference.py", "--model", fan1_h5, "--test-image", EINSTEIN, "--boxes", boxes,
                          "--save-json", tmp_path / "p.json", "--backend", "nnabla", *CPU, *flags)
        assert result.returncode == 0, result.stderr
        return result.stderr

    default, quiet = run(), run("-q")
    assert "wrote" in default and "FAN1" in default
    assert quiet.strip() == ""
