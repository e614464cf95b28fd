"""Validation metrics equal ibug's: AUC@0.07 their compute_auc (straight segments between the CED's
points) and mAcc their compute_accuracy averaged over 100 thresholds, run by their evaluation.py
in a process of its own."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from train_reference import IBUG_TRAINING

SCRIPT = """
import sys, json, numpy as np
sys.path.insert(0, sys.argv[1])
from evaluation import compute_auc, compute_accuracy
errors = np.load(sys.argv[2])
out = []
for threshold in (0.07, 0.2):
    auc = compute_auc(errors, threshold)[0]
    macc = np.mean([compute_accuracy(errors, t) for t in np.arange(1, 101) * threshold / 100])
    out.append([float(auc), float(macc)])
print(json.dumps(out))
"""


@pytest.mark.parametrize("case", ["spread", "all-below", "all-above", "ties"])
def test_auc_and_macc_equal_ibugs(tmp_path, case):
    from face_alignment.evaluation.metrics import auc, interpolated_auc, mean_accuracy

    rng = np.random.RandomState(4)
    errors = {"spread": rng.gamma(2.0, 0.03, 57), "all-below": rng.uniform(0.001, 0.05, 9),
              "all-above": rng.uniform(0.3, 0.5, 6), "ties": np.array([0.01, 0.03, 0.03, 0.03, 0.09, 0.1])}[case]
    np.save(tmp_path / "errors.npy", errors)
    done = subprocess.run([sys.executable, "-c", SCRIPT, IBUG_TRAINING, str(tmp_path / "errors.npy")],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH="", NO_ALBUMENTATIONS_UPDATE="1"))
    assert done.returncode == 0, done.stderr[-2000:]
    for (their_auc, their_macc), threshold in zip(json.loads(done.stdout), (0.07, 0.2)):
        assert interpolated_auc(errors, threshold) == pytest.approx(their_auc, abs=1e-12)
        assert mean_accuracy(errors, threshold) == pytest.approx(their_macc, abs=1e-12)
    if case == "spread":  # the step function's exact area is another number: ibug's is the one to match
        assert abs(auc(errors, 0.07) - interpolated_auc(errors, 0.07)) > 1e-3
