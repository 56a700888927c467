"""The report of a text sweep: ``summary.md`` and plots, in the sweep folder.

- ``summary.md``: one row per setting, its seeds' held-out accuracy and bits per character on
  ``seq_length`` windows as mean ± std (numpy's population std, as ``seqgraph memory``), per seed,
  the state-carried accuracy, the steps reached and the training seconds; diverged runs are
  named and left out of the means. The settings every run shares are listed above it.
- ``against_<flag>.png`` for each varied setting: held-out accuracy and bits per character
  against its values, the other settings at the base (their first values), mean ± std over seeds
  as error bars; in ``product`` mode every other setting's mean is drawn faintly behind.
- ``wall_time.png``: every run's held-out accuracy and bits per character against its training
  seconds so far (from ``history.csv``), one colour per setting.
"""

import math
from pathlib import Path

import numpy as np

from keras_models.utils.atomic import save_figure, write_text
from trainers.core.grids import varied
from trainers.core.run_folders import read_history
from trainers.text.sweep import REPLICATE, label

METRICS = (("val_accuracy", "held-out accuracy"),
           ("val_bits_per_character", "held-out bits per character"))


def group_runs(configs, names, results, options):
    """``[(setting, [(name, result), ...]), ...]``: the runs grouped by their varied settings
    (``{field: value}``), seeds together, in grid order."""
    fields = varied(options, REPLICATE)
    groups = {}
    for config, name, result in zip(configs, names, results, strict=True):
        key = tuple(getattr(config, f) for f in fields)
        groups.setdefault(key, []).append((name, result))
    return [(dict(zip(fields, key, strict=True)), runs) for key, runs in groups.items()]


def mean_std(runs, key):
    """Mean and std of ``key`` over the runs that did not diverge; (nan, nan) when none."""
    values = [r[key] for _, r in runs if "diverged" not in r]
    return (float(np.mean(values)), float(np.std(values))) if values else (math.nan, math.nan)


def _varies(setting, base):
    differing = [label(f) for f, v in setting.items() if v != base[f]]
    return ", ".join(differing) or "base"


def _several_seeds(options):
    """Whether the sweep has more than one seed: a std and a per-seed column only then."""
    return len(options["seed"]) > 1


def summary_markdown(configs, names, results, options, mode):
    """The summary table (see the module docstring) and the best setting."""
    groups = group_runs(configs, names, results, options)
    fields = varied(options, REPLICATE)
    base = {f: options[f][0] for f in fields}
    one_factor = mode == "one-factor"
    first = configs[0]
    corpus = first.text or first.tfds or "Python's language reference (built in)"
    seeds = options["seed"]
    several = _several_seeds(options)
    lines = [
        f"{len(configs)} runs ({mode}, seed{'s' if several else ''} "
        f"{', '.join(str(s) for s in seeds)}) on {corpus}. Held-out accuracy and bits per "
        "character on windows of `--seq-length` characters of the held-out text"
        f"{' (mean ± std over seeds)' if several else ''}; \"state carried\" reads the "
        "held-out text with the state carried along.",
        "",
    ]
    shared = [f"`--{label(f)} {_value(v[0])}`" for f, v in options.items()
              if len(v) == 1 and f not in REPLICATE and v[0] is not None]
    if shared:
        lines += [f"Shared by every run: {', '.join(shared)}.", ""]
    header = [*(["varies"] if one_factor else []), *(f"`--{label(f)}`" for f in fields),
              "held-out accuracy",
              *([f"per seed ({' / '.join(str(s) for s in seeds)})"] if several else []),
              "bits per character", "state carried",
              "steps", "train s"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for setting, runs in groups:
        accuracy, accuracy_std = mean_std(runs, "val_accuracy")
        bits, bits_std = mean_std(runs, "val_bits_per_character")
        stream, _ = mean_std(runs, "heldout_stream_accuracy")
        seconds, _ = mean_std(runs, "train_seconds")
        per_seed = " / ".join("diverged" if "diverged" in r else f"{r['val_accuracy']:.4f}"
                              for _, r in runs)
        steps = " / ".join(str(r.get("steps", "-")) for _, r in runs)
        row = [*([_varies(setting, base)] if one_factor else []),
               *(_value(setting[f]) for f in fields),
               f"{accuracy:.4f}" + (f" ± {accuracy_std:.4f}" if several else ""),
               *([per_seed] if several else []),
               f"{bits:.3f}" + (f" ± {bits_std:.3f}" if several else ""),
               f"{stream:.4f}", steps, f"{seconds:.0f}"]
        lines.append("| " + " | ".join(row) + " |")
    scored = [(mean_std(runs, "val_accuracy")[0], setting) for setting, runs in groups]
    scored = [(a, s) for a, s in scored if not math.isnan(a)]
    if scored:
        accuracy, setting = max(scored, key=lambda pair: pair[0])
        described = ", ".join(f"`--{label(f)} {_value(v)}`" for f, v in setting.items())
        lines += ["", f"Best held-out accuracy: {accuracy:.4f} ({described or 'the one setting'})."]
    diverged = [(n, r["diverged"]) for n, r in zip(names, results, strict=True)
                if "diverged" in r]
    lines += [f"- `{n}` diverged: {reason}" for n, reason in diverged]
    return "\n".join(lines) + "\n"


def _value(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def _numeric(values):
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def plot_against_settings(configs, names, results, options, mode, out_dir):
    """``against_<flag>.png`` per varied setting (see the module docstring); returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = group_runs(configs, names, results, options)
    fields = varied(options, REPLICATE)
    base = {f: options[f][0] for f in fields}
    written = []
    for field in fields:
        values = options[field]
        numeric = _numeric(values)
        position = (lambda v: v) if numeric else values.index
        through_base = [(s, runs) for s, runs in groups
                        if all(s[f] == base[f] for f in fields if f != field)]
        through_base.sort(key=lambda pair: position(pair[0][field]))  # left to right
        figure, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, (key, ylabel) in zip(axes, METRICS, strict=True):
            if mode == "product":
                others = np.array([(position(s[field]), mean_std(runs, key)[0])
                                   for s, runs in groups], dtype=float)
                ax.scatter(others[:, 0], others[:, 1], color="grey", alpha=0.3, s=12,
                           label="every setting (mean over seeds)")
            x, mean, std = np.array([(position(s[field]), *mean_std(runs, key))
                                     for s, runs in through_base], dtype=float).T
            ax.errorbar(x, mean, yerr=std, marker="o", capsize=4,
                        label="others at the base" + (" (mean ± std over seeds)"
                                                      if _several_seeds(options) else ""))
            if numeric and min(values) > 0 and max(values) / min(values) >= 10:
                ax.set_xscale("log")
            if not numeric:
                ax.set_xticks(range(len(values)), [str(v) for v in values])
            ax.set(xlabel=f"--{label(field)}", ylabel=ylabel)
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
        path = Path(out_dir) / f"against_{label(field)}.png"
        save_figure(figure, path)
        plt.close(figure)
        written.append(path)
    return written


def plot_wall_time(configs, names, results, options, out_dir):
    """``wall_time.png``: held-out metrics against training seconds, every run; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (setting, runs) in enumerate(group_runs(configs, names, results, options)):
        title = ", ".join(f"{label(f)} {_value(v)}" for f, v in setting.items()) or "all runs"
        for j, (name, _) in enumerate(runs):
            history_csv = Path(out_dir) / name / "history.csv"
            if not history_csv.exists():  # diverged in its first logging period
                continue
            history = read_history(history_csv)
            seconds = np.cumsum(history["seconds"])
            for ax, (key, _) in zip(axes, METRICS, strict=True):
                ax.plot(seconds, history[key], color=colours[i % len(colours)], marker=".",
                        label=title if j == 0 else None)
    for ax, (_, ylabel) in zip(axes, METRICS, strict=True):
        ax.set(xlabel="training seconds", ylabel=ylabel)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    figure.tight_layout()
    path = Path(out_dir) / "wall_time.png"
    save_figure(figure, path)
    plt.close(figure)
    return path


def write_report(configs, names, results, options, mode, sweep_dir):
    """Write ``summary.md`` and the plots into ``sweep_dir``; return the written paths."""
    figures = [*plot_against_settings(configs, names, results, options, mode, sweep_dir),
               plot_wall_time(configs, names, results, options, sweep_dir)]
    images = "\n".join(f"![{p.stem}]({p.name})" for p in figures)
    summary = Path(sweep_dir) / "summary.md"
    text = summary_markdown(configs, names, results, options, mode)
    write_text(summary, f"# Text sweep\n\n{text}\n{images}\n")
    return [summary, *figures]
