"""Benchmark the sequence-memory grid and the data generators; write to docs/benchmarks.md.

Run by hand from the repository root, with the same flags as ``seqgraph memory``::

    .venv/bin/python bench/memory.py --preset tuned      # 12 runs: 2 cells × 2 L × 3 seeds
    .venv/bin/python bench/memory.py --preset assignment
    .venv/bin/python bench/memory.py --preset tuned --seeds 42 --early-stop 0.995
    .venv/bin/python bench/memory.py --preset assignment --jobs 2   # two runs at a time
    .venv/bin/python bench/memory.py --generation-only

Measures the generators' examples/s (NumPy batches of 256, and through tf.data), then trains the
grid (rerunning an interrupted command resumes its grid: finished runs are kept, the unfinished
one continues from its backup), timing its wall clock, and appends the summary table, the wall
time, the exact command, the machine and its load to the "Sequence memory" section of
docs/benchmarks.md; the figures are copied to docs/figures/.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import load_average, provenance, write_result  # noqa: E402
from trainers.core import runtime  # noqa: E402
from trainers.memory import command as memory_command  # noqa: E402
from trainers.memory.config import TENSORFLOW_ENVIRONMENT  # noqa: E402

RESUMED_NOTE = "in the session that finished it (resumed: earlier sessions ran part of it) "
GENERATION = (("palindrome", 10), ("palindrome", 20), ("baum_sweet", 6), ("baum_sweet", 10),
              ("random_combinations", 20))


def generation_rates(batch_size=256, seconds=2.0):
    """``[(task, L, numpy examples/s, tf.data examples/s)]``, each measured for ``seconds``."""
    import numpy as np

    from pipelines.memory.tasks import make_dataset, sample_batch

    def rate(batches):
        count, start = 0, time.perf_counter()
        for _ in batches:
            count += batch_size
            if time.perf_counter() - start > seconds:
                return count / (time.perf_counter() - start)

    rows = []
    for task, length in GENERATION:
        rng = np.random.default_rng(0)
        numpy_rate = rate(sample_batch(task, length, batch_size, rng) for _ in iter(int, 1))
        tf_rate = rate(make_dataset(task, length, batch_size=batch_size, seed=0))
        rows.append((task, length, numpy_rate, tf_rate))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    memory_command.add_arguments(parser)
    parser.add_argument("--generation-only", action="store_true")
    args = parser.parse_args(argv)
    load_at_start = load_average()

    runtime.load_tensorflow(False, TENSORFLOW_ENVIRONMENT)
    from keras_models.backend import tf

    rows = generation_rates()
    lines = ["Data generation, batches of 256:", "",
             "| task | L | NumPy examples/s | tf.data examples/s |", "|---|---|---|---|"]
    lines += [f"| {t} | {n} | {a:,.0f} | {b:,.0f} |" for t, n, a, b in rows]
    if not args.generation_only:
        lines += ["", *grid_section(args)]
    lines = [f"{provenance(load_at_start)} TensorFlow {tf.__version__}.", "", *lines]
    write_result("Sequence memory", "memory-generation" if args.generation_only else
                 f"memory-{args.preset}", "\n".join(lines))
    print("\n".join(lines))
    return 0


def grid_section(args):
    """Train the grid; return markdown lines with the summary, wall time and figures."""
    import dataclasses

    from trainers.core.run_folders import open_run_dir, run_status
    from trainers.memory.grid import run_grid
    from trainers.memory.report import summary_markdown, write_report

    configs = memory_command.build_configs(args)
    runs = [dataclasses.asdict(c) for c in configs]
    grid_dir, resumed = open_run_dir(f"bench-memory-{args.preset}",
                                     {"preset": args.preset, "runs": runs}, root=args.runs_dir)
    print(f"{'Resuming' if resumed else 'Run folder'}: {grid_dir}", flush=True)
    start = time.perf_counter()
    with run_status(grid_dir):
        results = run_grid(configs, grid_dir, args.saved_models, jobs=args.jobs,
                           log=lambda line: print(line, flush=True))
    wall = time.perf_counter() - start
    written = write_report(results, grid_dir)
    figures = ROOT / "docs" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    links = []
    for path in written:
        if path.suffix == ".png":  # one file per preset and figure: a new run replaces it
            target = figures / f"bench-memory-{args.preset}-{path.name}"
            shutil.copyfile(path, target)
            links.append(f"![{path.stem}](figures/{target.name})")
    return [
        f"Grid of {len(configs)} runs, preset `{args.preset}`: wall time {wall / 60:.1f} min "
        f"{RESUMED_NOTE if resumed else ''}"
        f"(training, evaluation, export and TensorBoard logging; run folder `{grid_dir}`; each "
        "run's own training time is in the table).", "",
        summary_markdown(results), *links,
    ]


if __name__ == "__main__":
    sys.exit(main())
