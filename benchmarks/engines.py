"""(e) engines: FAN's bare forward pass on every engine and precision, in one interleaved run.

Each engine lives in a process of its own (ours never imports torch; each has its own thread
pool) and waits; the parent asks each in turn for one timed forward pass of a fixed batch, round
after round, so that load from elsewhere on the machine falls on all of them alike and the
ratios hold within the run even when absolute times do not. Weights are random: speed does not
depend on them. The int8 model is quantized for this run on the benchmark's face crops (as the
gate would, last hourglass's heads in float) but not gated: random weights say nothing of its
accuracy (see README, "Precision and the accuracy gate").
"""
import multiprocessing
import os
import statistics
import time
from typing import Dict, List, Sequence

import numpy as np

AUTHORS_EAGER = "authors eager"
AUTHORS_COMPILE = "authors torch.compile"
ENGINES = (AUTHORS_EAGER, AUTHORS_COMPILE, "onnxruntime fp32", "openvino fp32", "openvino bf16", "openvino int8")
# What every ratio is taken against: the authors' API's default.
BASELINE = AUTHORS_COMPILE


def _sample_batch(batch_size: int) -> np.ndarray:
    return np.random.RandomState(0).rand(batch_size, 3, 256, 256).astype(np.float32)


def _build(engine: str, models: Dict, num_modules: int, int8_model: str):
    """A callable on a float32 batch, for ``engine``."""
    if engine.startswith("authors"):
        import torch

        import workers
        from authors_pipeline import AuthorsPipeline

        fan = AuthorsPipeline(models["fan2d_checkpoint"], None, num_modules, workers.TORCH_THREADS).fan
        if engine == AUTHORS_COMPILE:
            fan = torch.compile(fan)

        def forward(batch):
            with torch.no_grad():
                return fan(torch.from_numpy(batch))[-1].numpy()
        return forward
    from face_alignment.weights import open_weights

    weights = open_weights(models["fan2d_h5"])
    name, precision = engine.split()
    if name == "onnxruntime":
        from face_alignment.backends.onnx_net import OnnxRuntimeNetwork
        return OnnxRuntimeNetwork(weights)
    from face_alignment.backends.openvino_net import OpenVinoNetwork
    return OpenVinoNetwork(weights, precision, int8_model=int8_model if precision == "int8" else None)


def _serve(connection, engine: str, models: Dict, num_modules: int, int8_model: str,
           batch_sizes: Sequence[int]) -> None:
    """In the engine's process: build, warm up every batch size (torch.compile compiles here),
    then answer each batch size sent with the seconds of one forward pass."""
    try:
        forward = _build(engine, models, num_modules, int8_model)
        batches = {size: _sample_batch(size) for size in batch_sizes}
        for batch in batches.values():
            forward(batch)
        connection.send("ready")
        while True:
            size = connection.recv()
            if size is None:
                return
            start = time.perf_counter()
            forward(batches[size])
            connection.send(time.perf_counter() - start)
    except Exception as e:  # reported to the parent, which stops the run
        connection.send(f"error: {engine}: {type(e).__name__}: {e}")


def quantize_for_speed(models: Dict, crops: np.ndarray, path: str) -> str:
    """An int8 model of the benchmark's FAN, calibrated on ``crops``, for timing only."""
    from face_alignment.backends.openvino_net import OpenVinoNetwork
    from face_alignment.precision.quantize import float_scopes, quantize_int8, record, save_ir
    from face_alignment.weights import open_weights

    weights = open_weights(models["fan2d_h5"])
    model = quantize_int8(OpenVinoNetwork(weights).model_path, crops, float_scopes(weights.arch))
    record(model, weights.sha256)
    return save_ir(model, path)


def measure(models: Dict, num_modules: int, int8_model: str, batch_sizes: Sequence[int], runs: int,
            engines: Sequence[str] = ENGINES, log=print) -> Dict[str, Dict[str, List[float]]]:
    """{engine: {batch size: [seconds per batch]}}, ``runs`` interleaved rounds."""
    context = multiprocessing.get_context("spawn")
    workers = {}
    for engine in engines:  # started one at a time: building and compiling compete otherwise
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child, engine, models, num_modules, int8_model, batch_sizes))
        process.start()
        answer = parent.recv()
        if answer != "ready":
            raise SystemExit(answer)
        log(f"  {engine}: ready")
        workers[engine] = (process, parent)
    samples = {engine: {str(size): [] for size in batch_sizes} for engine in engines}
    try:
        for round_index in range(runs):
            for size in batch_sizes:
                for engine, (_, connection) in workers.items():
                    connection.send(size)
                    answer = connection.recv()
                    if isinstance(answer, str):
                        raise SystemExit(answer)
                    samples[engine][str(size)].append(answer)
            log(f"  round {round_index + 1}/{runs} done")
    finally:
        for process, connection in workers.values():
            connection.send(None)
            process.join(timeout=30)
    return samples


def summary(samples: Dict[str, Dict[str, List[float]]]) -> Dict:
    """Median ms per face per engine and batch size, and each engine's ratio to the baseline."""
    per_face = {engine: {size: 1000.0 * statistics.median(times) / int(size) for size, times in groups.items()}
                for engine, groups in samples.items()}
    baseline = per_face.get(BASELINE) or per_face.get(AUTHORS_EAGER)
    ratio = {engine: {size: value / baseline[size] for size, value in groups.items()}
             for engine, groups in per_face.items()}
    return {"ms_per_face": per_face, "ratio_to_baseline": ratio,
            "baseline": BASELINE if BASELINE in per_face else AUTHORS_EAGER, "samples_s": samples}


def table(result: Dict) -> str:
    sizes = list(next(iter(result["ms_per_face"].values())))
    lines = [f"(e) FAN-{result['fan_modules']} bare forward per engine, interleaved, random weights; "
             f"ratio = ms/face over {result['baseline']}'s",
             "| engine | " + " | ".join(f"ms/face, batch {s} | ratio" for s in sizes) + " |",
             "|---" * (1 + 2 * len(sizes)) + "|"]
    for engine, groups in result["ms_per_face"].items():
        cells = [f"{groups[s]:.0f} | {result['ratio_to_baseline'][engine][s]:.2f}" for s in sizes]
        lines.append(f"| {engine} | " + " | ".join(cells) + " |")
    lines.append(f"load average (1 min) before {result['load_before']:.1f}, after {result['load_after']:.1f}")
    return "\n".join(lines)


def run(models: Dict, num_modules: int, crops: np.ndarray, scratch: str, batch_sizes: Sequence[int],
        runs: int, log=print) -> Dict:
    load_before = os.getloadavg()[0]
    log("(e) engines: quantizing an int8 model for timing (not gated: random weights)")
    int8_model = quantize_for_speed(models, crops, os.path.join(scratch, "fan.int8.xml"))
    samples = measure(models, num_modules, int8_model, batch_sizes, runs, log=log)
    result = summary(samples)
    result.update(fan_modules=num_modules, runs=runs, load_before=load_before, load_after=os.getloadavg()[0])
    return result
