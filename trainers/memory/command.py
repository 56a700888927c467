"""Sequence-memory experiments: train a grid of cells × lengths × seeds on a memory task.

Example: ``seqgraph memory --task palindrome --cells lstm peephole --lengths 10 20
--seeds 42 1337 1994 --preset tuned``. Writes ``runs/memory-<task>-<timestamp>/`` with one folder
per run (history.csv, TensorBoard logs with hparams, result.json), ``summary.md``, and figures
(``curves_<cell>.png``, ``cells.png``, also as SVG); exports each model to ``saved_models/``.
Running the same command again after an interruption resumes the grid.
"""

import math
from pathlib import Path

from trainers.memory.config import TENSORFLOW_ENVIRONMENT  # noqa: F401  (read by trainers/cli.py)

TASK_HELP = "palindrome, baum_sweet or random_combinations"
CELL_HELP = ("lstm, peephole, peephole_classic (ours), keras_lstm, keras_gru or bilstm (Keras' "
             "built-ins)")
OVERRIDABLE = ("steps", "batch_size", "units", "embedding_dim", "learning_rate", "clipnorm",
               "initializer", "forget_bias")
RUN_SETTINGS = ("early_stop", "eval_every", "heldout_size", "heldout_seed")
TOKEN_BYTES = 32  # NumPy's int64 draws of a token and their intermediates (pipelines/memory)


def add_arguments(parser):
    from trainers.core.config_flags import add_flags
    from trainers.core.distribute import add_strategy_argument
    from trainers.memory.config import MemoryConfig

    parser.add_argument("--task", default="palindrome", help=f"{TASK_HELP} (default palindrome)")
    parser.add_argument("--cells", nargs="+", default=["lstm", "peephole"], help=CELL_HELP)
    parser.add_argument("--lengths", nargs="+", type=int, default=[10, 20],
                        help="task lengths L (palindrome input is 4L+1 tokens; default 10 20)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 1337, 1994])
    parser.add_argument("--preset", choices=("assignment", "tuned"), default="tuned",
                        help="assignment: Adam 1e-4, Kaiming normal, batch 256, 256 units, clip "
                        "10, 3000 steps; tuned: ours (see README). Flags below override it")
    add_flags(parser.add_argument_group("overrides of the preset"), MemoryConfig, OVERRIDABLE,
              defaults=False)
    add_flags(parser, MemoryConfig, RUN_SETTINGS)
    parser.add_argument("--jobs", type=int, default=1,
                        help="train this many runs at once, each in a process of its own with "
                        "cores / JOBS threads (default 1: one run after another)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--saved-models", type=Path, default=Path("saved_models"))
    add_strategy_argument(parser)


def build_configs(args):
    """The grid's ``MemoryConfig`` list from parsed arguments; UsageError on bad values."""
    from keras_models.models.memory_classifier import MEMORY_CELLS
    from keras_models.utils.errors import UsageError, require
    from pipelines.memory.tasks import check_task
    from trainers.core.grids import expand_grid
    from trainers.memory.config import PRESETS, MemoryConfig

    settings = dict(PRESETS[args.preset])
    for key in OVERRIDABLE:
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if settings["initializer"] == "default":
        settings["initializer"] = None
    for length in args.lengths:
        try:
            check_task(args.task, length)
        except ValueError as error:
            raise UsageError(str(error)) from None
    for cell in args.cells:
        require(cell in MEMORY_CELLS, f"unknown cell {cell!r}; choose from {CELL_HELP}")
    for key in ("steps", "batch_size", "units", "embedding_dim", "heldout_size", "eval_every"):
        value = settings.get(key, getattr(args, key, None))
        require(value >= 1, f"--{key.replace('_', '-')} is {value}; give an integer ≥ 1")
    require(0 < settings["learning_rate"] < math.inf,
            "--learning-rate must be a finite number > 0; try 1e-3")
    require(settings["clipnorm"] > 0, "--clipnorm must be > 0; try 1.0")
    require(args.early_stop is None or 0 < args.early_stop <= 1,
            f"--early-stop {args.early_stop} is not an accuracy; give a value in (0, 1]")
    # Every combination, seeds innermost; a repeated value would train one run twice and count
    # it as two in the summary, so it is refused.
    grid = expand_grid({"cell": args.cells, "length": args.lengths, "seed": args.seeds},
                       "product", labels={"cell": "--cells", "length": "--lengths",
                                          "seed": "--seeds"})
    require(args.jobs >= 1, f"--jobs is {args.jobs}; give an integer ≥ 1")
    require(args.jobs == 1 or (args.strategy == "default" and not args.deterministic),
            f"--jobs {args.jobs} trains each run in a plain one-device process; use it without "
            "--strategy and --deterministic")
    require(args.heldout_seed not in args.seeds,
            f"--heldout-seed {args.heldout_seed} is also a training seed; choose another")
    _check_batches_fit(args.task, max(args.lengths), settings["batch_size"], args.heldout_size,
                       settings["embedding_dim"] + 6 * settings["units"])
    no_forget_gate = {"forget_bias": None}
    return [
        MemoryConfig(task=args.task, **run, heldout_size=args.heldout_size,
                     heldout_seed=args.heldout_seed, early_stop=args.early_stop,
                     eval_every=args.eval_every,
                     **{**settings, **(no_forget_gate if run["cell"] == "keras_gru" else {})})
        for run in grid
    ]


def _check_batches_fit(task, length, batch_size, heldout_size, floats_per_token):
    """A training batch and the held-out set must fit in memory (else NumPy or TensorFlow fail
    with a traceback once the run folder exists): a lower bound of each, against the machine's.

    NumPy draws the tokens as int64 through a few intermediates (``TOKEN_BYTES`` per token), and
    a step keeps ``embedding + 6·units`` float32 per token for the gradient (the embedding, the
    four gates, the cell and hidden states)."""
    from pipelines.memory.tasks import task_spec
    from trainers.core.preflight import check_fits_in_memory

    tokens = task_spec(task, length).input_length
    check_fits_in_memory("--batch-size", batch_size,
                         batch_size * tokens * (TOKEN_BYTES + 4 * floats_per_token),
                         f"{tokens} tokens per sequence, {TOKEN_BYTES} + 4 × (embedding + 6 × "
                         "units) bytes per token")
    check_fits_in_memory("--heldout-size", heldout_size, heldout_size * tokens * TOKEN_BYTES,
                         f"{tokens} tokens per sequence, {TOKEN_BYTES} bytes per token")


def run(args):
    import dataclasses

    configs = build_configs(args)  # validates everything before any file is written
    from trainers.core.preflight import check_output_folders

    check_output_folders({"--runs-dir": args.runs_dir, "--saved-models": args.saved_models})
    from trainers.core.distribute import make_strategy, output_dirs

    strategy = make_strategy(args.strategy, deterministic=args.deterministic)
    from trainers.core.run_folders import UNFINISHED_GRID, open_run_dir, run_status
    from trainers.memory.grid import run_grid
    from trainers.memory.report import write_report

    grid_config = {"preset": args.preset, "runs": [dataclasses.asdict(c) for c in configs]}
    with output_dirs(strategy, args.runs_dir, args.saved_models) as (runs_dir, saved_models):
        grid_dir, resumed = open_run_dir(f"memory-{args.task}", grid_config, root=runs_dir,
                                         reopen=UNFINISHED_GRID)
        print(f"{'Resuming' if resumed else 'Run folder'}: {grid_dir}", flush=True)
        with run_status(grid_dir):
            results = run_grid(configs, grid_dir, saved_models, strategy=strategy, jobs=args.jobs,
                               log=lambda line: print(line, flush=True))
            written = write_report(results, grid_dir)
    print(f"Summary: {written[0]}")
    print(f"Figures: {', '.join(str(p) for p in written[1:] if p.suffix == '.png')}")
    print(f"TensorBoard: tensorboard --logdir {grid_dir}")
    return 0
