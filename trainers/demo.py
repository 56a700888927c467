"""Run a short guided tour of every capability on built-in data, with no downloads.

Writes plots, TensorBoard logs and ``report.md`` under ``runs/demo-<timestamp>/`` and exports
under ``saved_models/``. Each part is a module with ``TITLE`` and ``run(run_dir, saved_models)``
returning the markdown section of the report.
"""

import importlib
import time
from pathlib import Path

PARTS = ("trainers.memory.demo", "trainers.text.demo", "trainers.graph.demo")


def part_name(module_name):
    """The capability a part of the tour shows: ``trainers.memory.demo`` is ``memory``."""
    return module_name.split(".")[1]


def add_arguments(parser):
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run folders go")
    parser.add_argument(
        "--saved-models", type=Path, default=Path("saved_models"), help="where exports go"
    )
    parser.add_argument(
        "--only", nargs="+", choices=[part_name(p) for p in PARTS],
        help="run only these parts of the tour",
    )


def run(args):
    from keras_models.utils.atomic import write_text
    from trainers.core.preflight import check_output_folders
    from trainers.core.run_folders import new_run_dir

    check_output_folders({"--runs-dir": args.runs_dir, "--saved-models": args.saved_models})
    run_dir = new_run_dir("demo", root=args.runs_dir)
    sections = [f"# seqgraph demo\n\nRun folder: `{run_dir}`\n"]
    for module_name in PARTS:
        short = part_name(module_name)
        if args.only and short not in args.only:
            continue
        part = importlib.import_module(module_name)
        print(f"\n== {part.TITLE} ==", flush=True)
        start = time.perf_counter()
        section = part.run(run_dir / short, args.saved_models)
        seconds = time.perf_counter() - start
        sections.append(f"## {part.TITLE}\n\n{section.strip()}\n\n_{seconds:.0f} s_\n")
        write_text(run_dir / "report.md", "\n".join(sections))
    print(f"\nDemo finished. Report: {run_dir / 'report.md'}")
    print(f"Exports: {args.saved_models}/")
    print(f"TensorBoard: tensorboard --logdir {run_dir}")
    return 0
