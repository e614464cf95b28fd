"""tests/face_alignment_user.py run with 2DFAN4 and 3DFAN4 one-hourglass FANs, in either
package (weight_files.STAND_IN_2DFAN4: what test_compat compares is the face-alignment API
around the network, not FAN-4, whose parity test_parity and test_pipeline_parity prove).

    python one_hourglass_user.py USER_CODE DATA_DIR RESULTS.pkl

The published FAN is FAN-4 in both: the authors' API builds ``FAN(network_size)`` with
network_size 4, ours takes the registry's architecture of 2DFAN4 and 3DFAN4. Both are made
FAN-1 here, before the user code runs, as conftest's one_hourglass_2dfan4 does for ours.
"""
import dataclasses
import runpy
import sys

import face_alignment

if getattr(face_alignment, "__version__", None) == "1.5.0":  # theirs: api.FAN is looked up when loading
    from face_alignment import api, models

    api.FAN = lambda network_size: models.FAN(1)
else:
    from face_alignment import registry

    for name in ("2DFAN4", "3DFAN4"):
        registry.ARCHITECTURES[name] = dataclasses.replace(registry.ARCHITECTURES[name], num_modules=1)

sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
