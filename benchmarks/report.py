"""From timing samples to the benchmark's numbers: medians, speed-ups, targets, a table and a chart."""
import statistics
from typing import Dict, List, Optional, Sequence

AUTHORS = "authors"
SECTIONS = ("bare_forward", "steady_state", "batch_job", "startup")


def section(title: str, unit: str, samples: Dict[str, Dict[str, List[float]]], backends: Sequence[str],
            to_value, higher_is_better: bool, runs: int, warmup: int) -> Dict:
    """Medians of ``samples`` ({implementation: {group: [seconds]}}) turned into ``unit`` by
    ``to_value(group, median_seconds)``, and ours' speed-up over the authors' per group."""
    def values(implementation):
        return {group: to_value(group, statistics.median(times)) for group, times in samples[implementation].items()}

    authors = values(AUTHORS)
    ours = {backend: values(backend) for backend in backends}
    speedup = {backend: {group: (value / authors[group]) if higher_is_better else (authors[group] / value)
                         for group, value in ours[backend].items()}
               for backend in backends}
    return {"title": title, "unit": unit, "higher_is_better": higher_is_better, "runs": runs, "warmup": warmup,
            "authors": authors, "ours": ours, "speedup": speedup, "samples_s": samples}


def _best(result: Dict, group: str) -> str:
    """The backend with the largest speed-up in ``group``."""
    return max(result["speedup"], key=lambda backend: result["speedup"][backend][group])


def targets(results: Dict) -> List[Dict]:
    """Each goal with the measured number it is judged on (the best backend unless said otherwise)."""
    found = []

    def add(name, measured, bound, at_most, stretch=None):
        entry = {"name": name, "measured": measured, "target": bound,
                 "met": measured <= bound if at_most else measured >= bound}
        if stretch is not None:
            entry["stretch_target"] = stretch
            entry["stretch_met"] = measured <= stretch if at_most else measured >= stretch
        found.append(entry)

    forward = results["bare_forward"]
    for group in forward["authors"]:
        best = _best(forward, group)
        add(f"bare forward batch {group}: fastest backend ({best}) time / authors' eager",
            forward["ours"][best][group] / forward["authors"][group], 0.75, True, stretch=0.6)
    for key, label, bounds in (("batch_job", "batch job speed-up", {"2D": 1.5, "3D": 1.3}),
                               ("steady_state", "steady-state images/s speed-up", {"2D": 1.3, "3D": 1.3})):
        for group, bound in bounds.items():
            if group not in results[key]["authors"]:
                continue
            best = _best(results[key], group)
            add(f"{label} {group} ({best})", results[key]["speedup"][best][group], bound, False)
    if "nnabla" in forward["ours"] and {"1", "8"} <= set(forward["ours"]["nnabla"]):
        per_face = forward["ours"]["nnabla"]
        add("nnabla bare forward: batch-8 per-face time / batch-1", per_face["8"] / per_face["1"], 1.0, True)
    startup = results["startup"]
    for group in startup["authors"]:
        best = min(startup["ours"], key=lambda backend: startup["ours"][backend][group])
        add(f"start-up to first landmark {group} ({best}), seconds", startup["ours"][best][group], 3.0, True)
    return found


def table(results: Dict, notes: Sequence[str]) -> str:
    lines = []
    for key in SECTIONS:
        result = results[key]
        groups = list(result["authors"])
        lines.append(f"{result['title']}: {result['unit']}, median of {result['runs']} "
                     f"after {result['warmup']} warm-up")
        lines.append(f"  {'':26}" + "".join(f"{g:>20}" for g in groups))
        lines.append(f"  {'authors':26}" + "".join(f"{result['authors'][g]:>20.3f}" for g in groups))
        for backend, values in result["ours"].items():
            cells = "".join(f"{values[g]:>12.3f} ({result['speedup'][backend][g]:.2f}x)" for g in groups)
            lines.append(f"  {'ours ' + backend:26}" + cells)
        lines.append("")
    lines.append("speed-up (in parentheses) = authors' time / ours (for images/s: ours / authors')")
    lines.append("")
    lines.append("targets:")
    for t in results["targets"]:
        verdict = "MET" if t["met"] else "NOT MET"
        stretch = ""
        if "stretch_target" in t:
            stretch = f"; stretch {t['stretch_target']}: {'met' if t['stretch_met'] else 'not met'}"
        lines.append(f"  [{verdict:7}] {t['name']}: {t['measured']:.3f} (target {t['target']}{stretch})")
    lines.extend([""] + list(notes))
    return "\n".join(lines)


COLOURS = {AUTHORS: "#8c8c8c", "nnabla": "#1f77b4", "onnxruntime": "#ff7f0e"}


def _panel(ax, result: Dict, target_of_group: Optional[Dict[str, float]] = None) -> None:
    """Grouped bars, authors' first, each of ours labelled with its speed-up."""
    groups = list(result["authors"])
    implementations = [AUTHORS] + list(result["ours"])
    width = 0.8 / len(implementations)
    for i, implementation in enumerate(implementations):
        values = result["authors"] if implementation == AUTHORS else result["ours"][implementation]
        xs = [g + (i - (len(implementations) - 1) / 2) * width for g in range(len(groups))]
        heights = [values[g] for g in groups]
        label = "authors (PyTorch eager)" if implementation == AUTHORS else f"ours: {implementation}"
        bars = ax.bar(xs, heights, width * 0.95, label=label,
                      color=COLOURS.get(implementation, None), edgecolor="black", linewidth=0.5)
        for bar, group in zip(bars, groups):
            text = f"{values[group]:.0f}" if values[group] >= 100 else f"{values[group]:.3g}"
            if implementation != AUTHORS:
                text += f"\n{result['speedup'][implementation][group]:.2f}x"
            # Above the dashed target line where they cross it, on a backing that keeps both legible.
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                        fontsize=8, xytext=(0, 2), textcoords="offset points", zorder=5,
                        bbox=dict(boxstyle="square,pad=0.1", facecolor="white", edgecolor="none", alpha=0.85))
    if target_of_group:
        for g, group in enumerate(groups):
            if group in target_of_group:
                ax.hlines(target_of_group[group], g - 0.45, g + 0.45, colors="red", linestyles="dashed",
                          label="target" if g == 0 else None)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"batch {g}" if g.isdigit() else g for g in groups])
    ax.set_title(result["title"], fontsize=10)
    ax.set_ylabel(result["unit"] + (" (higher is better)" if result["higher_is_better"] else " (lower is better)"),
                  fontsize=9)
    top = max([result["authors"][g] for g in groups] + [v[g] for v in result["ours"].values() for g in groups]
              + list((target_of_group or {}).values()))
    ax.set_ylim(0, top * 1.2)


def chart(results: Dict, path: str, heading: str, footnote: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    forward, steady = results["bare_forward"], results["steady_state"]
    job, startup = results["batch_job"], results["startup"]
    goals = {
        "bare_forward": {g: 0.75 * forward["authors"][g] for g in forward["authors"]},
        "steady_state": {g: 1.3 * steady["authors"][g] for g in steady["authors"]},
        "batch_job": {g: job["authors"][g] / {"2D": 1.5, "3D": 1.3}[g] for g in job["authors"]},
        "startup": {g: 3.0 for g in startup["authors"]},
    }
    figure, axes = plt.subplots(2, 2, figsize=(13, 10))
    for ax, key in zip(axes.flat, SECTIONS):
        _panel(ax, results[key], goals[key])
    figure.suptitle(heading, fontsize=12)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9, bbox_to_anchor=(0.5, 0.955))
    figure.text(0.5, 0.01, footnote, ha="center", va="bottom", fontsize=8, wrap=True)
    figure.tight_layout(rect=(0, 0.05, 1, 0.92))
    figure.savefig(path, dpi=110)
    plt.close(figure)

