"""``seqgraph text sweep``: a grid of ``text train`` runs, compared in one report.

Every ``text train`` setting takes one or more values (``--lr 2e-4 2e-3 2e-2 --layers 1 2``);
``--mode product`` runs every combination, ``--mode one-factor`` the base setting (the first value
of each) and then each option's other values one at a time (``trainers/core/grids.py``). Every
value of ``--seed`` repeats each setting. Each run is a normal ``text train`` run in
``runs/text-sweep-<time>/<run name>/`` (the run name lists the varied settings and the seed),
``--jobs N`` at a time in worker processes (``trainers/core/worker_pool.py``). Ctrl-C, then the
same command resumes: finished runs are kept. A run whose training diverges is recorded as
diverged and the sweep goes on. The sweep folder gets TensorBoard's HPARAMS experiment,
``summary.md`` and plots (``trainers/text/sweep_report.py``).

Run as ``python -m trainers.text.sweep RUN_DIR SAVED_MODELS [--export] [--deterministic]``, this
module is the worker process of one run.
"""

import dataclasses
import json
import sys
from pathlib import Path

from trainers.core.config_flags import add_flags, flag_name, flag_values
from trainers.core.grids import MODES, expand_grid, varied
from trainers.text.config import TextConfig

SOURCE_FIELDS = ("text", "tfds")
FIXED_FIELDS = (*SOURCE_FIELDS, "strip_gutenberg")  # one corpus per sweep
REPLICATE = ("seed",)
# The report's study (2.1a): learning rate, sequence length, layers and units varied one at a time
# around the 2 × 256 model at lr 2e-3 and sequence 30 (the first values: the base). Its 9 runs at
# 2500 steps: 9 100 s of training in all, 91 min with --jobs 2 on 2 shared cores (docs/text.md).
PRESETS = {
    "report": {
        "mode": "one-factor",
        "learning_rate": [2e-3, 2e-4, 2e-2], "seq_length": [30, 60, 80], "layers": [2, 1, 3],
        "units": [256, 64, 128], "steps": [2500], "log_every": [250],
    },
}
WORKER = "trainers.text.sweep"


def _fields():
    return {f.name: f for f in dataclasses.fields(TextConfig) if "help" in f.metadata}


def label(name):
    """The flag of a ``TextConfig`` field without its dashes: ``learning_rate`` → ``lr``."""
    return flag_name(_fields()[name]).lstrip("-")


def add_arguments(parser):
    add_flags(parser.add_mutually_exclusive_group(), TextConfig, SOURCE_FIELDS)
    add_flags(parser, TextConfig, ["strip_gutenberg"])
    add_flags(parser.add_argument_group("settings: one or more values each (default: text "
                                        "train's, or the preset's)"),
              TextConfig, exclude=FIXED_FIELDS, defaults=False, several=True)
    parser.add_argument("--mode", choices=MODES, default=None,
                        help="product: every combination (default); one-factor: the first value "
                        "of each setting as the base, then each other value one at a time")
    parser.add_argument("--preset", choices=tuple(PRESETS), default=None,
                        help="report: the report's one-factor study of --lr, --seq-length, "
                        "--layers and --units at 2500 steps (about 1.5 hours with --jobs 2 on 2 "
                        "cores); flags given override it")
    parser.add_argument("--jobs", type=int, default=1,
                        help="train this many runs at once, each in a process of its own with "
                        "cores / JOBS threads (default 1: one run after another)")
    parser.add_argument("--export", action="store_true",
                        help="export every run's generator (default: no exports)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--saved-models", type=Path, default=Path("saved_models"))
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic TensorFlow ops: same seed, same machine, same numbers "
                        "(slower)")


def build_sweep(args):
    """``(mode, options, configs)`` from parsed arguments: ``options`` maps each swept field to
    its values, ``configs`` is the grid's ``TextConfig`` list, each validated. Raises
    ``UsageError`` before anything is written."""
    from keras_models.utils.errors import require

    preset = PRESETS.get(args.preset, {})
    given = flag_values(args, TextConfig)
    options = {name: given[name] if given[name] is not None
               else preset.get(name, [field.default])
               for name, field in _fields().items() if name not in FIXED_FIELDS}
    mode = args.mode or preset.get("mode", "product")
    require(args.jobs >= 1, f"--jobs is {args.jobs}; give an integer ≥ 1")
    settings = expand_grid(options, mode, REPLICATE,
                           labels={name: "--" + label(name) for name in options})
    fixed = {name: given[name] for name in FIXED_FIELDS}
    configs = [TextConfig(**fixed, **setting) for setting in settings]
    for config in configs:
        config.validate()
    return mode, options, configs


def run_names(configs, options):
    """Each run's folder name: the varied settings and the seed, ``lr=0.002,layers=1,seed=0``."""
    names = [*varied(options, REPLICATE), *REPLICATE]
    return [",".join(f"{label(n)}={_exact(getattr(c, n))}" for n in names) for c in configs]


def _exact(value):
    """A float's shortest exact form (``0.002``, ``1e+38``): distinct values, distinct names."""
    return repr(value) if isinstance(value, float) else str(value)


def train_sweep_run(config, run_dir, saved_models, export):
    """Train one run in ``run_dir`` as ``text train`` would (resuming it if unfinished); a run
    whose training diverges gets a result saying so, so the sweep goes on."""
    from keras_models.utils.atomic import write_text
    from keras_models.utils.errors import TrainingDiverged
    from trainers.text.train import train_text

    try:
        return train_text(config, saved_models=saved_models, export=export, run_dir=run_dir)
    except TrainingDiverged as error:
        result = {"run_dir": str(run_dir), "diverged": str(error)}
        write_text(Path(run_dir) / "result.json", json.dumps(result, indent=2) + "\n")
        return result


def result_line(result):
    """One line on a finished run."""
    if "diverged" in result:
        return f"diverged: {result['diverged']}"
    return (f"held-out accuracy {result['val_accuracy']:.4f}, "
            f"{result['val_bits_per_character']:.3f} bits per character after "
            f"{result['steps']} steps, {result['train_seconds']} s")


def run_sweep(configs, names, sweep_dir, saved_models, *, jobs=1, export=False,
              deterministic=False, log=print):
    """Train every config in ``sweep_dir/<name>/`` (skipping runs with a result, resuming
    interrupted ones, starting failed ones over, as ``text train`` starts a failed run in a new
    folder); ``jobs`` > 1 trains them side by side in worker processes. Returns the results in
    grid order."""

    from trainers.core.run_folders import start_over_if_failed, write_config

    results, unfinished = {}, []
    for i, (name, config) in enumerate(zip(names, configs, strict=True), 1):
        run_dir = Path(sweep_dir) / name
        tag = f"[{i}/{len(configs)}] {name}"
        if (run_dir / "result.json").exists():
            log(f"{tag}: finished earlier, skipped")
            results[name] = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
            continue
        if start_over_if_failed(run_dir):
            log(f"{tag}: failed earlier, started over")
        run_dir.mkdir(parents=True, exist_ok=True)
        write_config(run_dir, dataclasses.asdict(config))
        unfinished.append((tag, name, config, run_dir))
    if jobs > 1:
        from trainers.core.worker_pool import WorkerRun, train_in_processes

        runs = [WorkerRun(tag, run_dir, config.steps, min(config.log_every, config.steps))
                for tag, _, config, run_dir in unfinished]
        flags = [*(["--export"] if export else []), *(["--deterministic"] if deterministic else [])]
        by_folder = train_in_processes(runs, jobs, WORKER, [str(saved_models), *flags],
                                       result_line=result_line, log=log)
        results.update({name: by_folder[run_dir] for _, name, _, run_dir in unfinished})
    else:
        from keras_models.backend import keras

        for tag, name, config, run_dir in unfinished:
            log(f"{tag}: training up to {config.steps} steps ...")
            results[name] = train_sweep_run(config, run_dir, saved_models, export)
            log(f"{tag}: {result_line(results[name])}")
            keras.backend.clear_session()
    return [results[name] for name in names]


def write_hparams_experiment(sweep_dir, options):
    """TensorBoard's HPARAMS experiment in ``sweep_dir``: the swept settings with their values,
    and the metrics each run logs (held-out accuracy and bits per character, on windows and
    with the state carried; training accuracy). Written once; a resumed sweep keeps it."""
    from keras_models.backend import tf

    from tensorboard.plugins.hparams import api as hp

    if list(Path(sweep_dir).glob("events.out.tfevents.*")):
        return
    hparams = [hp.HParam(name, hp.Discrete(sorted(set(values))))
               for name, values in options.items() if None not in values]
    metrics = [
        hp.Metric("epoch_accuracy", group="validation", display_name="held-out accuracy"),
        hp.Metric("epoch_bits_per_character", group="validation",
                  display_name="held-out bits per character"),
        hp.Metric("stream_accuracy", group="heldout",
                  display_name="held-out accuracy, state carried"),
        hp.Metric("stream_bits_per_character", group="heldout",
                  display_name="held-out bits per character, state carried"),
        hp.Metric("epoch_accuracy", group="train", display_name="training accuracy"),
    ]
    with tf.summary.create_file_writer(str(sweep_dir)).as_default():
        hp.hparams_config(hparams=hparams, metrics=metrics)


def run(args):
    mode, options, configs = build_sweep(args)  # validates everything before any file is written
    from trainers.core.preflight import check_output_folders

    exports = {"--saved-models": args.saved_models} if args.export else {}
    check_output_folders({"--runs-dir": args.runs_dir, **exports})
    from trainers.core.distribute import make_strategy
    from trainers.core.run_folders import UNFINISHED_GRID, open_run_dir, run_status
    from trainers.text.sweep_report import write_report

    make_strategy("default", deterministic=args.deterministic)
    names = run_names(configs, options)
    sweep_config = {"mode": mode, "export": args.export,
                    "runs": [dataclasses.asdict(c) for c in configs]}
    sweep_dir, resumed = open_run_dir("text-sweep", sweep_config, root=args.runs_dir,
                                       reopen=UNFINISHED_GRID)
    print(f"{'Resuming' if resumed else 'Run folder'}: {sweep_dir} ({len(configs)} runs, "
          f"{mode})", flush=True)
    with run_status(sweep_dir):
        write_hparams_experiment(sweep_dir, options)
        results = run_sweep(configs, names, sweep_dir, args.saved_models, jobs=args.jobs,
                            export=args.export, deterministic=args.deterministic,
                            log=lambda line: print(line, flush=True))
        written = write_report(configs, names, results, options, mode, sweep_dir)
    print(f"Summary: {written[0]}")
    print(f"Figures: {', '.join(str(p) for p in written[1:])}")
    print(f"TensorBoard (HPARAMS tab): tensorboard --logdir {sweep_dir}")
    return 0


def train_one(run_dir, saved_models, *flags):
    """The worker's run: the ``TextConfig`` in ``run_dir/config.json``, trained and recorded."""
    config = TextConfig(**json.loads((run_dir / "config.json").read_text(encoding="utf-8")))
    if "--deterministic" in flags:
        from trainers.core.distribute import make_strategy

        make_strategy("default", deterministic=True)
    train_sweep_run(config, run_dir, Path(saved_models), "--export" in flags)
    return 0


if __name__ == "__main__":
    from trainers.core.worker_pool import worker_main

    sys.exit(worker_main("text", train_one))
