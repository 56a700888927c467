"""One training step of ``seqgraph memory``'s model against PyTorch, at the assignment's setting.

Run by hand from the repository root on an otherwise idle machine (torch is NOT a seqgraph
dependency; on these machines ``.venv/bin/pip install torch==2.13.0`` installs the CPU wheel from
disk)::

    .venv/bin/python bench/memory_step.py --write    # L = 10 and 20, 1 and 2 threads
    .venv/bin/python bench/memory_step.py --quick    # a tiny setting, to check that it runs

The setting is ``seqgraph memory --preset assignment`` on palindromes: batch 256, 256 units,
embedding width 1, Adam 1e-4 with gradient clipping at norm 10, L = 10 and 20 (41 and 81 tokens).
Models:

- ``seqgraph lstm``, ``seqgraph peephole`` (the matrix variant) and ``seqgraph peephole_classic``:
  the model ``seqgraph memory`` builds (``build_memory_model`` with the preset, the masked
  embedding and ``FusedLSTM``), one step of its compiled ``model.train_function`` on the task's
  ``tf.data`` stream, exactly what ``model.fit`` runs per step;
- ``torch nn.LSTM``: ``Embedding → nn.LSTM → Linear``, forward, backward, clip, Adam;
- ``torch peephole loop``: a port of the assignment's peephole cell (matrix variant) as a
  hand-written loop over the steps with one ``nn.Linear`` per gate block, as its code had it.

The PyTorch models run on the same NumPy batches, unmasked, as the assignment's did. Each model
runs in a process of its own (PyTorch's and TensorFlow's thread pools slow each other down in one
process), at each thread count, and the processes alternate: ``--passes`` passes over the models,
each pass starting one model later, so background load hits them alike. Each process times
``--steps`` steps after ``--warmup``; the median over every step of every pass is reported.
The TensorFlow processes also time a matmul probe (``bench/cells.py``) between their steps: the
floor is the training FLOPs of the recurrent layer's matrix products at full length (3× the
forward ones) over that rate. A target that asks
for less than the floor (``factor × reference < floor``) gets a line of its own under the table:
no loop reaches it without cutting the float32 arithmetic.
"""

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import load_average, provenance, write_result  # noqa: E402

OURS = ("lstm", "peephole", "peephole_classic")
TORCH_LSTM, TORCH_PEEPHOLE = "torch nn.LSTM", "torch peephole loop"
MODELS = (*(f"seqgraph {cell}" for cell in OURS), TORCH_LSTM, TORCH_PEEPHOLE)
FULL = {"lengths": [10, 20], "threads": [1, 2], "batch": 256, "units": 256, "steps": 20,
        "warmup": 3, "passes": 3}
# Each of our models' target: at most this factor times that reference's step time.
TARGETS = {"seqgraph lstm": (TORCH_LSTM, 0.8), "seqgraph peephole": (TORCH_PEEPHOLE, 0.5),
           "seqgraph peephole_classic": ("seqgraph lstm", 1.1)}
QUICK = {"lengths": [2], "threads": [1], "batch": 16, "units": 16, "steps": 2, "warmup": 1,
         "passes": 1}


def seqgraph_step(cell, length, batch, units):
    """One compiled training step of ``seqgraph memory --preset assignment``'s model."""
    from keras_models.backend import keras

    from keras_models.models.memory_classifier import build_memory_model
    from pipelines.memory.tasks import make_dataset, task_spec
    from trainers.memory.config import PRESETS

    preset = PRESETS["assignment"]
    spec = task_spec("palindrome", length)
    keras.utils.set_random_seed(0)
    model = build_memory_model(
        cell, vocab_size=spec.vocab_size, num_classes=spec.num_classes, units=units,
        embedding_dim=preset["embedding_dim"], initializer=preset["initializer"],
        forget_bias=preset["forget_bias"])
    model.compile(optimizer=keras.optimizers.Adam(preset["learning_rate"],
                                                  clipnorm=preset["clipnorm"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    batches = iter(make_dataset("palindrome", length, batch_size=batch, seed=0))
    train_function = model.make_train_function()
    return lambda: float(train_function(batches)["loss"])


def torch_step(model_name, length, batch, units, threads):
    """One training step of a PyTorch model on the palindromes (forward, backward, clip, Adam)."""
    import numpy as np
    import torch

    from pipelines.memory.tasks import sample_batch, task_spec
    from trainers.memory.config import PRESETS

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    preset, spec = PRESETS["assignment"], task_spec("palindrome", length)
    width = preset["embedding_dim"]

    class PeepholeLoop(torch.nn.Module):
        """The assignment's peephole cell: f, i, o = σ(W_·x x + W_·h c + b), c' = σ(W_cx x + b_c)
        ⊙ i + c ⊙ f, h' = tanh(c') ⊙ o; one step at a time."""

        def __init__(self):
            super().__init__()
            self.x = torch.nn.ModuleDict({g: torch.nn.Linear(width, units) for g in "fioc"})
            self.c = torch.nn.ModuleDict({g: torch.nn.Linear(units, units, bias=False)
                                          for g in "fio"})

        def forward(self, x):
            c = torch.zeros(x.shape[0], units)
            for t in range(x.shape[1]):
                x_t = x[:, t]
                f, i, o = (torch.sigmoid(self.x[g](x_t) + self.c[g](c)) for g in "fio")
                c = torch.sigmoid(self.x["c"](x_t)) * i + c * f
                h = torch.tanh(c) * o
            return h

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(spec.vocab_size, width)
            self.rnn = (PeepholeLoop() if model_name == TORCH_PEEPHOLE
                        else torch.nn.LSTM(width, units, batch_first=True))
            self.linear = torch.nn.Linear(units, spec.num_classes)

        def forward(self, tokens):
            x = self.embedding(tokens)
            h = self.rnn(x) if model_name == TORCH_PEEPHOLE else self.rnn(x)[0][:, -1]
            return self.linear(h)

    model = Classifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=preset["learning_rate"])
    rng = np.random.default_rng(0)
    # Drawn before timing (ours come from a tf.data stream that prefetches them).
    batches = itertools.cycle([
        tuple(torch.from_numpy(a).long() for a in sample_batch("palindrome", length, batch, rng))
        for _ in range(8)])

    def step():
        tokens, labels = next(batches)
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(tokens), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), preset["clipnorm"])
        optimizer.step()
        return float(loss)

    return step


def child(args):
    """One model at one thread count in this process: print its step times (and matmul rates)."""
    os.environ.update({"TF_NUM_INTRAOP_THREADS": str(args.threads),
                       "TF_NUM_INTEROP_THREADS": str(args.threads)})
    ours = args.model.startswith("seqgraph ")
    if ours:  # as `seqgraph memory` loads it; PyTorch keeps its own allocator and heap
        from trainers.core import runtime
        from trainers.memory.config import TENSORFLOW_ENVIRONMENT

        runtime.load_tensorflow(False, TENSORFLOW_ENVIRONMENT)
        from bench.cells import matmul_probe

    result = {}
    for length in args.lengths:
        if ours:
            step = seqgraph_step(args.model.split()[1], length, args.batch, args.units)
            probe, probe_flops = matmul_probe(args.units, args.batch)
        else:
            step = torch_step(args.model, length, args.batch, args.units, args.threads)
        for _ in range(args.warmup):
            step()
        times, rates = [], []
        for _ in range(args.steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
            if ours:
                start = time.perf_counter()
                probe()
                rates.append(probe_flops / (time.perf_counter() - start))
        result[str(length)] = {"times": times, "rates": rates}
    print(json.dumps(result))


def run_child(model, threads, settings):
    command = [sys.executable, __file__, "--child", model, "--threads", str(threads),
               "--lengths", *map(str, settings["lengths"])]
    for key in ("batch", "units", "steps", "warmup"):
        command += [f"--{key}", str(settings[key])]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def floor_seconds(model, length, batch, units, rate):
    """3× the forward matmul FLOPs of the recurrent layer over all 4L + 1 steps, at ``rate``."""
    from bench.cells import forward_matmul_flops  # its EMBED is the preset's width, 1

    kind = "assignment" if model == "seqgraph peephole" else "lstm"
    return 3 * forward_matmul_flops(kind, batch, units, 4 * length + 1) / rate


def measure(settings):
    """``{(threads, L): {model: median step seconds, "rate": matmul FLOP/s}}``."""
    results = {}
    for threads in settings["threads"]:
        samples = {}
        for rotation in range(settings["passes"]):
            # Pass k starts at the k-th model, so that no model always runs right after another.
            for model in MODELS[rotation % len(MODELS):] + MODELS[:rotation % len(MODELS)]:
                for length, run in run_child(model, threads, settings).items():
                    entry = samples.setdefault((threads, int(length)), {})
                    entry.setdefault(model, []).extend(run["times"])
                    entry.setdefault("rate", []).extend(run["rates"])
                print(f"{threads} thread(s), {model}: done", file=sys.stderr, flush=True)
        for key, entry in samples.items():
            results[key] = {name: statistics.median(values) for name, values in entry.items()}
    return results


def table(results, settings):
    """The result table, then one line for each missed target that asks for less time than the
    model's own floor (its matrix products alone at the rate measured in the run), beside the
    fastest step of the run relative to its floor: how far below the floor anything got."""
    lines = [
        "| threads | L (tokens) | model | step | ratio | target | floor | step / floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    unreachable, per_floor_values = [], []
    for (threads, length), medians in sorted(results.items()):
        for model in MODELS:
            reference, factor = TARGETS.get(model, (None, None))
            ratio = f"{medians[model] / medians[reference]:.2f}× {reference}" if reference else ""
            floor, per_floor = "", ""
            if model.startswith("seqgraph "):
                floor_s = floor_seconds(model, length, settings["batch"], settings["units"],
                                        medians["rate"])
                floor, per_floor = f"{floor_s * 1e3:.0f} ms", f"{medians[model] / floor_s:.2f}×"
                target_s = factor * medians[reference]
                per_floor_values.append(medians[model] / floor_s)
                if medians[model] > target_s and target_s < floor_s:
                    unreachable.append(
                        f"- {threads} thread(s), L = {length}, {model}: {factor}× {reference} = "
                        f"{target_s * 1e3:.0f} ms, {target_s / floor_s:.2f}× the floor of "
                        f"{floor_s * 1e3:.0f} ms.")
            lines.append(f"| {threads} | {length} ({4 * length + 1}) | {model} | "
                         f"{medians[model] * 1e3:.0f} ms | {ratio} | "
                         f"{f'≤ {factor}' if factor else ''} | {floor} | {per_floor} |")
    if unreachable:
        lines += ["", "Missed targets that ask for less than the model's floor (float32 products "
                  f"at the matmul rate measured in this run; the fastest seqgraph step of the run "
                  f"is {min(per_floor_values):.2f}× its floor):", "", *unreachable]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny setting: does it run?")
    parser.add_argument("--passes", type=int, help="passes of alternating processes (default 3)")
    parser.add_argument("--write", action="store_true",
                        help="replace this result in docs/benchmarks.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--lengths", type=int, nargs="+", help=argparse.SUPPRESS)
    for key in ("batch", "units", "steps", "warmup"):
        parser.add_argument(f"--{key}", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.model = args.child
        return child(args)
    settings = dict(QUICK if args.quick else FULL)
    if args.passes is not None:
        settings["passes"] = args.passes
    load_at_start = load_average()
    results = measure(settings)
    text = (f"Batch {settings['batch']}, {settings['units']} units, embedding width 1, Adam, "
            f"clip 10; median of {settings['steps']} steps × {settings['passes']} passes of "
            f"alternating processes, after {settings['warmup']} warm-up steps each.\n\n"
            + table(results, settings))
    print(text)
    if args.write:
        write_result("Sequence memory", "memory-step", f"{provenance(load_at_start)}\n\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
