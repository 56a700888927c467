"""The matrix products of one character-LSTM training step: TensorFlow's CPU GEMM beside PyTorch's.

A training step of the original text model (batch 64, sequence 30, embedding 128, 2 × 256 LSTM) is
almost all matrix products: per step and layer ``[64, 256] @ [256, 1024]`` forward and
``[64, 1024] @ [1024, 256]`` backward, and per layer a few whole-sequence products
(``[1920, I] @ [I, 1024]`` input projection, ``[I, 1920] @ [1920, 1024]`` weight gradients). This
times each shape in TensorFlow (inside one ``tf.function`` loop, as the fused LSTM runs it) and in
PyTorch (torch 2.13.0 CPU wheel, installed by hand, never a seqgraph dependency), alternating,
at 1 and 2 threads, and adds them up into the floor of a whole training step for each library.
TensorFlow also computes each product transposed (``Cᵀ = Bᵀ Aᵀ`` from transposed operands), the
layout a feature-major LSTM loop would use::

    .venv/bin/python bench/gemm.py [--write]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BATCH, SEQ, EMBED, UNITS, LAYERS = 64, 30, 128, 256, 2
ROWS = BATCH * SEQ
# (m, k, n, how many per training step): forward and backward of both layers and the logits.
SHAPES = [
    (BATCH, UNITS, 4 * UNITS, LAYERS * SEQ),  # h U, every step and layer
    (BATCH, 4 * UNITS, UNITS, LAYERS * SEQ),  # δz Uᵀ, every step and layer
    (ROWS, EMBED, 4 * UNITS, 1),  # layer 1: x W
    (ROWS, 4 * UNITS, EMBED, 1),  # layer 1: δZ Wᵀ
    (EMBED, ROWS, 4 * UNITS, 1),  # layer 1: xᵀ δZ
    (ROWS, UNITS, 4 * UNITS, LAYERS - 1),  # upper layers: x W
    (ROWS, 4 * UNITS, UNITS, LAYERS - 1),  # upper layers: δZ Wᵀ
    (UNITS, ROWS, 4 * UNITS, LAYERS - 1 + LAYERS),  # upper layers xᵀ δZ; every layer H_prevᵀ δZ
    (ROWS, UNITS, 84, 1),  # logits (vocabulary 84)
    (ROWS, 84, UNITS, 1),  # their input gradient
    (UNITS, ROWS, 84, 1),  # their weight gradient
]
REPEATS = 30


def time_shape(m, k, n, rounds):
    """Median seconds of one ``[m, k] @ [k, n]`` in each library, alternating rounds."""
    from keras_models.backend import tf

    import numpy as np
    import torch

    a = np.random.default_rng(0).normal(size=(m, k)).astype(np.float32)
    b = np.random.default_rng(1).normal(size=(k, n)).astype(np.float32)
    ta, tb, pa, pb = tf.constant(a), tf.constant(b), torch.tensor(a), torch.tensor(b)

    @tf.function
    def tf_loop(x, y):
        total = tf.zeros((tf.shape(x)[0], tf.shape(y)[1]))
        for _ in tf.range(REPEATS):
            total += tf.matmul(x, y)
        return total

    def torch_loop():
        total = torch.zeros((m, n))
        for _ in range(REPEATS):
            total += pa @ pb
        return total

    # The same product computed transposed, Cᵀ = Bᵀ Aᵀ ([n, k] @ [k, m]), from operands stored
    # transposed: TensorFlow's CPU kernels are much faster in one orientation for some shapes.
    ta_t, tb_t = tf.constant(a.T.copy()), tf.constant(b.T.copy())
    runs = {"tensorflow": lambda: tf_loop(ta, tb).numpy(),
            "tensorflow_transposed": lambda: tf_loop(tb_t, ta_t).numpy(),
            "pytorch": torch_loop}
    times = {name: [] for name in runs}
    for run in runs.values():
        run()
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) / REPEATS)
    return {name: statistics.median(t) for name, t in times.items()}


def child(threads, rounds):
    from keras_models.backend import tf

    import torch

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    torch.set_num_threads(threads)
    rows = [{"shape": [m, k, n], "count": count, **time_shape(m, k, n, rounds)}
            for m, k, n, count in SHAPES]
    print(json.dumps({"threads": threads, "rows": rows}))


def markdown(results):
    lines = ["| shape m×k×n | per step | threads | TensorFlow µs | TF as Cᵀ = BᵀAᵀ µs | "
             "PyTorch µs | TF / PyTorch | TF best / PyTorch |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        for row in result["rows"]:
            m, k, n = row["shape"]
            best = min(row["tensorflow"], row["tensorflow_transposed"])
            lines.append(
                f"| {m}×{k}×{n} | {row['count']} | {result['threads']} | "
                f"{row['tensorflow'] * 1e6:.0f} | {row['tensorflow_transposed'] * 1e6:.0f} | "
                f"{row['pytorch'] * 1e6:.0f} | {row['tensorflow'] / row['pytorch']:.2f} | "
                f"{best / row['pytorch']:.2f} |"
            )
    lines += ["", "Sum over one training step (the matmul floor, ms; \"best\" takes the faster "
              "orientation of each product):", ""]
    for result in results:
        rows = result["rows"]
        floor = {name: sum(r[name] * r["count"] for r in rows) * 1e3
                 for name in ("tensorflow", "pytorch")}
        best = sum(min(r["tensorflow"], r["tensorflow_transposed"]) * r["count"]
                   for r in rows) * 1e3
        lines.append(f"- {result['threads']} thread(s): TensorFlow {floor['tensorflow']:.0f} ms "
                     f"(best orientation {best:.0f} ms), PyTorch {floor['pytorch']:.0f} ms "
                     f"({floor['tensorflow'] / floor['pytorch']:.2f}×; best "
                     f"{best / floor['pytorch']:.2f}×)")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--thread-counts", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--write", action="store_true",
                        help="replace this result in docs/benchmarks.md")
    args = parser.parse_args()
    if args.threads:
        return child(args.threads, args.rounds)
    from bench.results import load_average

    load_at_start = load_average()
    results = []
    for threads in args.thread_counts:
        out = subprocess.run([sys.executable, __file__, "--threads", str(threads),
                              "--rounds", str(args.rounds)],
                             check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    text = markdown(results)
    print(text)
    if args.write:
        from bench.results import provenance, write_result

        write_result("GEMM floor", "gemm", f"{provenance(load_at_start)}\n\n{text}")


if __name__ == "__main__":
    main()
