"""Write an .h5 of RANDOM weights for a known architecture, to try the tools without a download.

    python scripts/random_weights.py 2DFAN4 weights/random-2DFAN4.h5

Landmarks from such a file mean nothing: it exists to exercise the pipeline end to end where
trained weights cannot be had. The file records ``random_weights = 1`` in its attributes.
"""
import sys

import numpy as np

from face_alignment.cli_support import ArgumentParser, command_line
from face_alignment.registry import ARCHITECTURES
from face_alignment.weights.h5 import write_h5
from face_alignment.weights.layout import expected_parameters
from face_alignment.weights.loading import architecture_attrs


def random_parameters(kind, num_modules, seed=0):
    """He-initialised convolutions and BatchNorm statistics near identity, so activations
    keep a sensible scale through the deep stacks."""
    rng = np.random.RandomState(seed)
    params = {}
    for name, shape in expected_parameters(kind, num_modules).items():
        leaf = name.rsplit("/", 1)[1]
        if leaf == "W":
            fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
            value = rng.normal(0, np.sqrt(2.0 / fan_in), shape)
        elif leaf == "gamma":
            value = rng.uniform(0.5, 1.0, shape)
        elif leaf == "var":
            value = rng.uniform(0.8, 1.2, shape)
        else:  # biases, beta, mean
            value = rng.normal(0, 0.05, shape)
        params[name] = value.astype(np.float32)
    return params


@command_line
def main(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("arch", choices=list(ARCHITECTURES))
    p.add_argument("output")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    arch = ARCHITECTURES[args.arch]
    attrs = dict(architecture_attrs(arch), random_weights=1)
    write_h5(args.output, random_parameters(arch.kind, arch.num_modules, args.seed), attrs, force=args.force)
    print(f"{args.output}: RANDOM weights for {arch.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
