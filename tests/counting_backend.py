"""A backend of one's own for tests/test_runtime.py, named as "counting_backend:Counting": it runs
every network on NNabla's cpu context and records what it ran and on which target it was asked to."""
from face_alignment.backends.nnabla_net import NNablaNetwork, NNablaRunner

RUNS = []  # (network name, target context, precision) of every batch run


class Counting:
    """Runs everything on NNabla's cpu context, counting what it runs and where it was asked to."""
    contexts = ("cpu", "cudnn")
    precisions = ("fp32",)

    def __init__(self, weights, target):
        self.arch, self.source, self.target = weights.arch, weights.source, target
        self._net = NNablaNetwork(weights.arch, weights.params, None, weights.source)
        self.input_channels = self._net.input_channels

    def __call__(self, batch):
        RUNS.append((self.arch.name, self.target.context, self.target.precision))
        return self._net(batch)

    @staticmethod
    def runner(description, target):
        inner = NNablaRunner(description)

        def run(batch):
            RUNS.append((description.name, target.context, target.precision))
            return inner(batch)
        return run


class FanOnly(Counting):
    runner = None


class Int8Counting(Counting):
    """Counting that also takes int8 (and runs it as fp32, like the rest): what is recorded is
    the precision each network was asked to run in."""
    precisions = ("fp32", "int8")
