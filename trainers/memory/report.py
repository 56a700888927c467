"""Figures and the summary table of a sequence-memory grid.

- ``curves_<cell>.png/.svg``: training accuracy and loss against step, one line per length,
  mean over seeds with a shaded ± std band (accuracy band clipped to [0, 1]).
- ``cells.png/.svg``: the cells side by side, one panel per length (mean accuracy ± std).
- ``summary.md``: held-out accuracy mean ± std per cell and length, and per seed the step at which
  the training accuracy (mean of the last 10 steps) first reached 0.99.
"""

from collections import defaultdict
from pathlib import Path

import numpy as np

from keras_models.utils.atomic import save_figure, write_text
from trainers.memory.config import REACHED
from trainers.memory.train import read_steps_history


def mean_std_curves(histories, key):
    """Steps, mean and std of ``key`` over runs of different lengths (runs stopped early count
    only where they have values)."""
    steps = sorted({s for h in histories for s in h["step"]})
    values = [dict(zip(h["step"], h[key], strict=True)) for h in histories]
    stacked = [[v[s] for v in values if s in v] for s in steps]
    return (np.array(steps), np.array([np.mean(x) for x in stacked]),
            np.array([np.std(x) for x in stacked]))


def _group(results, grid_dir):
    """``{cell: {length: [history, ...]}}`` read from each run's history.csv."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in results:
        run_dir = Path(grid_dir) / f"{r['cell']}-L{r['length']}-seed{r['seed']}"
        groups[r["cell"]][r["length"]].append(read_steps_history(run_dir / "history.csv"))
    return groups


def _band(ax, histories, key, label, color=None, clip=None):
    steps, mean, std = mean_std_curves(histories, key)
    low, high = mean - std, mean + std
    if clip:
        mean, low, high = (np.clip(a, *clip) for a in (mean, low, high))
    (line,) = ax.plot(steps, mean, label=label, color=color)
    ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.25, linewidth=0)


def _save(figure, out_dir, stem):
    paths = [Path(out_dir) / f"{stem}.{suffix}" for suffix in ("png", "svg")]
    for path in paths:
        save_figure(figure, path)
    return paths


def plot_grid(results, grid_dir, out_dir=None):
    """Draw the per-cell figures and the cell comparison; return the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir or grid_dir)
    groups = _group(results, grid_dir)
    task = results[0]["task"]
    written = []
    for cell, by_length in groups.items():
        figure, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(11, 4))
        for length in sorted(by_length):
            runs = by_length[length]
            label = f"L = {length} (input {_input_length(results, length)}), {len(runs)} seeds"
            _band(acc_ax, runs, "accuracy", label, clip=(0.0, 1.0))
            _band(loss_ax, runs, "loss", label, clip=(0.0, None))
        acc_ax.set(xlabel="training step", ylabel="training accuracy (mean ± std over seeds)",
                   ylim=(0.0, 1.02), title=f"{task}: {cell}")
        loss_ax.set(xlabel="training step", ylabel="training loss (mean ± std over seeds)",
                    title=f"{task}: {cell}")
        for ax in (acc_ax, loss_ax):
            ax.grid(alpha=0.3)
            ax.legend()
        written += _save(figure, out_dir, f"curves_{cell}")
        plt.close(figure)

    lengths = sorted({r["length"] for r in results})
    figure, axes = plt.subplots(1, len(lengths), figsize=(5.5 * len(lengths), 4), squeeze=False)
    for ax, length in zip(axes[0], lengths, strict=True):
        for cell, by_length in groups.items():
            if length in by_length:
                _band(ax, by_length[length], "accuracy", cell, clip=(0.0, 1.0))
        title = f"{task}, L = {length} (input {_input_length(results, length)})"
        ax.set(xlabel="training step", ylabel="training accuracy (mean ± std over seeds)",
               ylim=(0.0, 1.02), title=title)
        ax.grid(alpha=0.3)
        ax.legend()
    written += _save(figure, out_dir, "cells")
    plt.close(figure)
    return written


def _input_length(results, length):
    return next(r["input_length"] for r in results if r["length"] == length)


def summary_markdown(results):
    """The summary table: held-out accuracy mean ± std per cell and length, steps to 0.99."""
    groups = defaultdict(list)
    for r in results:
        groups[(r["cell"], r["length"])].append(r)
    lines = [
        f"Task `{results[0]['task']}`. Held-out accuracy on {results[0]['heldout_size']} sequences "
        f"drawn with seed {results[0]['heldout_seed']}; \"first ≥ {REACHED}\" is the first step "
        f"whose training accuracy (mean of the last 10 steps) reached {REACHED}.",
        "",
        "| cell | L | input | held-out accuracy | per seed | first ≥ 0.99 (step) | steps run "
        "| train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (cell, length), runs in sorted(groups.items()):
        runs = sorted(runs, key=lambda r: r["seed"])
        accuracies = np.array([r["heldout_accuracy"] for r in runs])
        per_seed = " / ".join(f"{r['seed']}: {r['heldout_accuracy']:.4f}" for r in runs)
        first = " / ".join(str(r["first_step_99"] or "never") for r in runs)
        steps_run = " / ".join(str(r["steps_run"]) for r in runs)
        seconds = " / ".join(f"{r['train_seconds']:.0f}" for r in runs)
        lines.append(
            f"| {cell} | {length} | {runs[0]['input_length']} | {accuracies.mean():.4f} ± "
            f"{accuracies.std():.4f} | {per_seed} | {first} | {steps_run} | {seconds} |"
        )
    return "\n".join(lines) + "\n"


def write_report(results, grid_dir):
    """Write ``summary.md`` and the figures into ``grid_dir``; return the written paths."""
    figures = plot_grid(results, grid_dir)
    images = "\n".join(
        f"![{p.stem}]({p.name})" for p in figures if p.suffix == ".png"
    )
    summary = Path(grid_dir) / "summary.md"
    write_text(summary, f"# Sequence memory\n\n{summary_markdown(results)}\n{images}\n")
    return [summary, *figures]
