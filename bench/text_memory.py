"""Memory per corpus character of ``seqgraph text train``: peak RSS against the corpus size.

Run by hand from the repository root (memory is not a timing: a loaded machine gives the same
numbers, so run it niced)::

    nice -n 10 .venv/bin/python bench/text_memory.py           # 1 MB and 100 MB corpora
    nice -n 10 .venv/bin/python bench/text_memory.py --wide    # ... with one emoji in each
    nice -n 10 .venv/bin/python bench/text_memory.py --write   # ... and record it in
                                                               # docs/benchmarks.md
    .venv/bin/python bench/text_memory.py --quick              # 1 MB and 5 MB: a smoke test

Each corpus is generated (seeded words, Latin-1 accents included, lines of about 80 characters)
into a temporary folder (``--wide`` puts one emoji first, the worst case: Python then stores
every character of the text in 4 bytes instead of 1). ``seqgraph text train`` runs on it in a
process of its own with a tiny model (8 units, 4 steps, no export); ``os.wait4`` gives that
process's peak RSS. The model, TensorFlow and Python cost the same at every size, so the cost of
the corpus is the slope between the sizes:
``(peak(large) - peak(small)) / (characters(large) - characters(small))``.
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import load_average, provenance, write_result  # noqa: E402

WORDS = ("the quick brown fox jumps over a lazy dog and the cat sat on the mat while "
         "café naïve Über façade rôle").split()
TRAIN = ["text", "train", "--seq-length", "8", "--layers", "1", "--units", "8",
         "--embedding-dim", "4", "--batch-size", "8", "--steps", "4", "--log-every", "2",
         "--sample-length", "10", "--seed", "3", "--no-export"]
TARGET = 12  # bytes per character, the bound


def write_corpus(path, characters, wide=False):
    """A seeded text of about ``characters`` characters (lines of 12 words), with one emoji first
    if ``wide``."""
    rng = random.Random(0)
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        if wide:
            written += f.write("\N{GRINNING FACE}\n")
        while written < characters:
            line = " ".join(rng.choice(WORDS) for _ in range(12)) + "\n"
            f.write(line)
            written += len(line)
    return written


def peak_rss(corpus, folder):
    """Peak resident memory in bytes of ``seqgraph text train`` on ``corpus``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "trainers.cli", *TRAIN, "--text", str(corpus),
         "--runs-dir", str(folder / "runs")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"text train failed on {corpus}:\n{process.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss * 1024  # kilobytes on Linux


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small-mb", type=float, default=1)
    parser.add_argument("--large-mb", type=float, default=100)
    parser.add_argument("--quick", action="store_true", help="1 MB and 5 MB")
    parser.add_argument("--wide", action="store_true", help="one emoji first in each corpus")
    parser.add_argument("--write", action="store_true", help="record it in docs/benchmarks.md")
    args = parser.parse_args(argv)
    sizes = (1, 5) if args.quick else (args.small_mb, args.large_mb)
    load = load_average()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for megabytes in sizes:
            folder = Path(tmp) / f"{megabytes:g}"
            folder.mkdir()
            characters = write_corpus(folder / "corpus.txt", int(megabytes * 1e6), args.wide)
            rows.append((characters, (folder / "corpus.txt").stat().st_size,
                         peak_rss(folder / "corpus.txt", folder)))
            print(f"{characters:,} characters: peak RSS {rows[-1][2] / 2**20:,.0f} MiB",
                  flush=True)
    (small_chars, _, small_peak), (large_chars, _, large_peak) = rows
    slope = (large_peak - small_peak) / (large_chars - small_chars)
    print(f"{slope:.1f} bytes per corpus character (target ≤ {TARGET})")
    table = ["| corpus | characters | file bytes | peak RSS |", "|---|---:|---:|---:|"]
    table += [f"| {size:g} MB | {chars:,} | {size_bytes:,} | {peak / 2**20:,.0f} MiB |"
              for size, (chars, size_bytes, peak) in zip(sizes, rows, strict=True)]
    text = (f"{provenance(load)}\n\n" + "\n".join(table) + "\n\n"
            f"**{slope:.1f} bytes per corpus character** above the fixed cost (target ≤ "
            f"{TARGET}).\n")
    if args.write:
        write_result("Text pipeline memory", f"text-memory{'-wide' if args.wide else ''}", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
