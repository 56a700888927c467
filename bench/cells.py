"""Training-step time of seqgraph's cells against ``tf.keras.layers.LSTM`` (run by hand).

Task: the palindrome setting of the assignment (digits 0–9, embedding width 1, one recurrent
layer, Dense over 10 classes, Adam), batch 256, 256 units, sequence lengths 41 and 81. All
models of a length are built in one process and timed interleaved, one step each in turn, so
background load hits them alike; the median of ``--steps`` steps after ``--warmup`` is reported,
with the ratio to the built-in LSTM, and the arithmetic floor: training FLOPs per step (3× the
forward matmuls) over the matmul rate, measured in the same rounds. ``--memory`` adds each
model's peak resident memory, measured in a child process per model (peak RSS minus the RSS
before building it).

    .venv/bin/python bench/cells.py [--write]   # --write replaces its result in docs/benchmarks.md
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from keras_models.backend import keras, tf

import numpy as np

from bench.results import load_average, provenance, write_result
from keras_models.layers.fused_lstm import FusedLSTM
from keras_models.layers.lstm_cell import LSTMCell
from keras_models.layers.peephole_lstm_cell import PeepholeLSTMCell

VOCAB, EMBED = 10, 1

MODELS = {
    "keras.layers.LSTM": lambda units: keras.layers.LSTM(units),
    "RNN(LSTMCell)": lambda units: keras.layers.RNN(LSTMCell(units)),
    "FusedLSTM(LSTMCell)": lambda units: FusedLSTM(LSTMCell(units)),
    "RNN(PeepholeLSTMCell) assignment": lambda units: keras.layers.RNN(PeepholeLSTMCell(units)),
    "RNN(PeepholeLSTMCell) classic": lambda units: keras.layers.RNN(
        PeepholeLSTMCell(units, variant="classic")
    ),
    "FusedLSTM(PeepholeLSTMCell) assignment": lambda units: FusedLSTM(PeepholeLSTMCell(units)),
    "FusedLSTM(PeepholeLSTMCell) classic": lambda units: FusedLSTM(
        PeepholeLSTMCell(units, variant="classic")
    ),
}
BASELINE = "keras.layers.LSTM"


def forward_matmul_flops(name, batch, units, length):
    """Multiply-add FLOPs of the recurrent layer's matmuls in one forward pass."""
    per_step = 2 * batch * units * 4 * units  # recurrent kernel, [B, H] @ [H, 4H]
    per_step += 2 * batch * EMBED * 4 * units  # input kernel
    if "assignment" in name:
        per_step = 2 * batch * (units * 3 * units + EMBED * 4 * units)
    return per_step * length


def build(name, batch, units, length, seed=0):
    """The compiled palindrome model and one batch of data."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((length,), batch_size=batch),
            keras.layers.Embedding(VOCAB, EMBED),
            MODELS[name](units),
            keras.layers.Dense(VOCAB),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-4), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    rng = np.random.default_rng(seed)
    x = rng.integers(0, VOCAB, (batch, length))
    return model, x, x[:, 0]


def matmul_probe(units, batch, repeats=20):
    """A function that runs ``repeats`` [B, H] @ [H, 4H] matmuls; and their FLOPs."""
    a = tf.random.normal((batch, units))
    b = tf.random.normal((units, 4 * units))

    @tf.function
    def loop():
        acc = tf.zeros((batch, 4 * units))
        for _ in tf.range(repeats):
            acc += tf.matmul(a, b)
        return acc

    return lambda: loop().numpy(), 2 * batch * units * 4 * units * repeats


def time_interleaved(names, batch, units, length, steps, warmup):
    """Median seconds per training step for each model, and the matmul rate (FLOP/s).

    Each round times one step of every model and one matmul probe, so all see the same load.
    """
    runs = {}
    for name in names:
        model, x, y = build(name, batch, units, length)
        runs[name] = lambda model=model, x=x, y=y: model.train_on_batch(x, y)
    runs["matmul"], probe_flops = matmul_probe(units, batch)
    for run in runs.values():
        for _ in range(warmup):
            run()
    times = {name: [] for name in runs}
    for _ in range(steps):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    return medians, probe_flops / medians.pop("matmul")


def memory_status_kib(field):
    """``VmRSS`` or ``VmHWM`` (peak RSS) of this process in KiB, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory_child(name, batch, units, length, warmup):
    """Run in a child: build and train one model; print its peak RSS growth in MiB."""
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = memory_status_kib("VmRSS")
    model, x, y = build(name, batch, units, length)
    for _ in range(warmup + 3):
        model.train_on_batch(x, y)
    print(json.dumps((memory_status_kib("VmHWM") - before) / 1024))


def peak_memory(name, args, length):
    command = [
        sys.executable, __file__, "--memory-child", name, "--length", str(length),
        "--batch", str(args.batch), "--units", str(args.units), "--warmup", str(args.warmup),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def machine():
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}; load average at the "
        f"end {load}"
    )


def report(args, rows, rates):
    lines = [
        "",
        f"`{' '.join(['.venv/bin/python', 'bench/cells.py', *sys.argv[1:]])}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}). "
        f"Batch {args.batch}, {args.units} units, median of {args.steps} interleaved steps after "
        f"{args.warmup} warm-up steps; matmul rate measured between the steps: "
        f"{', '.join(f'{r / 1e9:.1f}' for r in rates)} GFLOP/s (per length).",
        "",
        "| model | length | step time | vs keras LSTM | floor | step / floor | peak memory |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        memory = "—" if row["memory"] is None else f"{row['memory']:.0f} MiB"
        lines.append(
            f"| {row['name']} | {row['length']} | {row['time'] * 1e3:.0f} ms | "
            f"{row['ratio']:.2f}× | {row['floor'] * 1e3:.0f} ms | "
            f"{row['time'] / row['floor']:.1f}× | {memory} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[41, 81])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--memory", action="store_true", help="peak memory per model (slow)")
    parser.add_argument("--write", action="store_true",
                        help="replace this result in docs/benchmarks.md")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        return peak_memory_child(args.memory_child, args.batch, args.units, args.length,
                                 args.warmup)

    load_at_start = load_average()
    names = [BASELINE] + [n for n in args.models if n != BASELINE]
    rows, rates = [], []
    for length in args.lengths:
        medians, rate = time_interleaved(
            names, args.batch, args.units, length, args.steps, args.warmup
        )
        rates.append(rate)
        for name in names:
            floor = 3 * forward_matmul_flops(name, args.batch, args.units, length) / rate
            rows.append({
                "name": name, "length": length, "time": medians[name],
                "ratio": medians[name] / medians[BASELINE], "floor": floor,
                "memory": peak_memory(name, args, length) if args.memory else None,
            })
            print(rows[-1], flush=True)
    text = report(args, rows, rates)
    print(text)
    if args.write:
        write_result("Cells", "cells", f"{provenance(load_at_start)}\n\n{text}")


if __name__ == "__main__":
    main()
