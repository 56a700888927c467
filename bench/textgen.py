"""Text-generation benchmark: training speed against the original PyTorch model, generation speed.

Run by hand from the repository root (torch is NOT a seqgraph dependency; on these machines
``.venv/bin/pip install torch==2.13.0`` installs the CPU wheel from disk)::

    .venv/bin/python bench/textgen.py            # training speed at 1 and 2 threads, generation
    .venv/bin/python bench/textgen.py --write    # ... and replace its result in docs/benchmarks.md
    .venv/bin/python bench/textgen.py --cells lstm lstm-tf-loop  # compiled loop against none
    .venv/bin/python bench/textgen.py --cells lstm lstm-glibc-heap pytorch-kept-heap

Training speed: characters per second of a full training step (forward, loss, backward, global
norm clip 5, Adam) at the original model's setting: vocabulary 84, embedding 128, 2 × 256 LSTM,
batch 64,
sequence 30. The original PyTorch model (``nn.Embedding → nn.LSTM(2 layers) → nn.Linear``) and ours
(``CharModel`` through ``model.fit``, keeping the memory each step frees for the next, as
``seqgraph`` does: ``trainers/core/heap.py``) each run in processes of their own, alternating
(``--passes`` processes per model, ``--rounds`` timed rounds each), so both see the same machine
load; the figure is the median round, and the ratio of each back-to-back pair is listed too.
Generation: characters per second of ``serving_default`` of an exported SavedModel, reloaded with
``tf.saved_model.load``, at batch 1, greedy, for 100 and 1000 characters (median of repeats), at
each thread count: with one intra-op thread (what ``seqgraph text sample`` and a latency-minded
server use) and with two.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VOCAB, EMBED, UNITS, LAYERS, BATCH, SEQ = 84, 128, 256, 2, 64, 30
CHARS_PER_STEP = BATCH * SEQ
TORCH, TORCH_NAME = "pytorch", "pytorch nn.LSTM (original)"
# Variants for ``--cells``: (model, environment, keeps freed memory). Our models keep it, as
# ``seqgraph`` does (trainers/core/heap.py); the original PyTorch model runs with glibc's
# defaults, as it did.
VARIANTS = {
    "lstm-tf-loop": ("lstm", {"SEQGRAPH_NATIVE": "0"}, True),  # our LSTM, compiled loop off
    "lstm-glibc-heap": ("lstm", {}, False),  # our LSTM with glibc's default heap
    "pytorch-kept-heap": (TORCH, {}, True),  # the original PyTorch model keeping its freed memory
}


def variant(model):
    """(model, environment, keeps freed memory) of a ``--cells`` name or a plain model."""
    return VARIANTS.get(model, (model, {}, model != TORCH))


def torch_reference(threads):
    """The original PyTorch model and one training step as a closure."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class SeedModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(VOCAB, EMBED)
            self.lstm = torch.nn.LSTM(EMBED, UNITS, num_layers=LAYERS, batch_first=True)
            self.linear = torch.nn.Linear(UNITS, VOCAB)

        def forward(self, x):
            return self.linear(self.lstm(self.embedding(x))[0])

    model = SeedModel()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    x = torch.randint(0, VOCAB, (BATCH, SEQ))
    y = torch.randint(0, VOCAB, (BATCH, SEQ))

    def steps(n):
        start = time.perf_counter()
        for _ in range(n):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
        return time.perf_counter() - start

    return steps


def keras_model(cell):
    """Our ``CharModel`` compiled as ``seqgraph text train`` does; ``model.fit`` for n steps.

    The seconds returned run from the first step's start to the last step's end, as for the
    PyTorch loop: ``fit``'s own set-up and tear-down are left out (on a core with no spare
    capacity they stalled for seconds, rounding a whole call up to a multiple of about 5 s).
    """
    from keras_models.backend import keras, tf

    class StepClock(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.seconds = time.perf_counter() - self.start

    from keras_models.models.char_language_model import CharModel
    from trainers.text.config import TextConfig
    from trainers.text.train import compile_model

    model = CharModel(VOCAB, EMBED, UNITS, LAYERS, cell)
    compile_model(model, TextConfig())
    x = tf.random.uniform((BATCH, SEQ), 0, VOCAB, tf.int64, seed=1)
    y = tf.random.uniform((BATCH, SEQ), 0, VOCAB, tf.int64, seed=2)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()

    def steps(n):
        clock = StepClock()
        model.fit(data, steps_per_epoch=n, epochs=1, verbose=0, callbacks=[clock])
        return clock.seconds

    return steps


def measure_training(threads, model, rounds, steps):
    """Chars/s of each of ``rounds`` rounds of ``steps`` steps of one model, after a warm-up.

    Each model runs in a process of its own: in one process, PyTorch's OpenMP threads and
    TensorFlow's thread pools kept spinning after their own work and slowed the other side
    (PyTorch at two threads measured anywhere from 5k to 19k characters/s).
    """
    model = variant(model)[0]
    from keras_models.backend import tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    run = torch_reference(threads) if model == TORCH else keras_model(model)
    run(3)  # warm-up: tracing, allocation
    return [steps * CHARS_PER_STEP / run(steps) for _ in range(rounds)]


def measure_generation(repeats):
    """Median wall and CPU seconds of ``serving_default`` at batch 1, 100 and 1000 greedy chars.

    CPU seconds (all threads of this process) are what a call costs whatever else the machine
    runs; wall seconds are what a client waits.
    """
    from keras_models.backend import tf

    from keras_models.models.char_language_model import CharModel
    from keras_models.text.generator import CharGenerator
    from keras_models.text.vocabulary import write_vocabulary
    from trainers.core.export import export_saved_model

    with tempfile.TemporaryDirectory() as tmp:
        vocabulary = [chr(32 + i) for i in range(VOCAB - 1)]
        write_vocabulary(Path(tmp) / "vocabulary.txt", vocabulary)
        model = CharModel(VOCAB, EMBED, UNITS, LAYERS)
        generator = CharGenerator(model, Path(tmp) / "vocabulary.txt")
        path = export_saved_model(generator, "char_lstm", root=tmp,
                                  signatures={"serving_default": generator.serving_default})
        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        wall, cpu = {}, {}
        for length in (100, 1000):
            call = dict(prompt=tf.constant(["The "]), length=tf.constant(length),
                        temperature=tf.constant(0.0))
            serve(**call)  # warm-up
            walls, cpus = [], []
            for _ in range(repeats):
                start, start_cpu = time.perf_counter(), time.process_time()
                serve(**call)["generated"].numpy()
                walls.append(time.perf_counter() - start)
                cpus.append(time.process_time() - start_cpu)
            wall[length], cpu[length] = statistics.median(walls), statistics.median(cpus)
    return wall, cpu


def child(args):
    """One model (or generation) at one thread count in this process: print a JSON line."""
    from trainers.core.heap import keep_freed_memory

    if variant(args.model)[2]:
        keep_freed_memory()
    if args.model == "generation":
        from keras_models.backend import tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        wall, cpu = measure_generation(args.repeats)
        result = {"generation": wall, "generation_cpu": cpu}
    else:
        result = {"rates": measure_training(args.threads, args.model, args.rounds, args.steps)}
    print(json.dumps(result))


def run_child(threads, model, args):
    cmd = [sys.executable, __file__, "--threads", str(threads), "--model", model,
           "--rounds", str(args.rounds), "--steps", str(args.steps), "--repeats", str(args.repeats)]
    env = {**os.environ, **variant(model)[1]}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(threads, args):
    """Training rates (median over every round of ``--passes`` alternating processes per model)
    and generation at one thread count."""
    models = [TORCH, *args.cells]
    rates = {model: [] for model in models}
    for _ in range(args.passes):
        for model in models:
            rates[model].append(run_child(threads, model, args)["rates"])
    names = {model: TORCH_NAME if model == TORCH else f"{TORCH_NAME}, {model}"
             if variant(model)[0] == TORCH else f"seqgraph {model}" for model in models}
    result = {"threads": threads,
              "training": {names[m]: statistics.median(sum(r, [])) for m, r in rates.items()},
              "pass_ratios": {names[m]: [statistics.median(a) / statistics.median(b)
                                         for a, b in zip(r, rates[TORCH], strict=True)]
                              for m, r in rates.items() if m != TORCH}}
    result.update(run_child(threads, "generation", args))
    print(json.dumps(result), flush=True)
    return result


def machine():
    load = os.getloadavg()
    cpu = platform.processor() or platform.machine()
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}; "
            f"load average at start {load[0]:.1f}")


def markdown(results, command, started):
    lines = [f"### Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             f"`{command}`  ", f"Machine: {started}", "",
             "Training, characters per second (batch 64 × sequence 30, 2 × 256 LSTM, median "
             "of the rounds of alternating processes, one model per process):", ""]
    names = list(results[0]["training"])
    reference = names[0]
    lines += ["| model | " + " | ".join(f"{r['threads']} thread(s)" for r in results) + " |",
              "|---|" + "---|" * len(results)]
    for name in names:
        cells = []
        for r in results:
            rate = r["training"][name]
            ratio = rate / r["training"][reference]
            cells.append(f"{rate / 1000:.1f}k ({ratio:.2f}×)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Ratio to PyTorch in each pass (one process of each model, back to back):", ""]
    for r in results:
        for name, ratios in r["pass_ratios"].items():
            at_par = sum(x >= 1.0 for x in ratios)
            lines.append(f"- {name}, {r['threads']} thread(s): "
                         + ", ".join(f"{x:.2f}×" for x in ratios)
                         + f" (median {statistics.median(ratios):.2f}×; {at_par} of {len(ratios)}"
                         " at or above 1.0×)")
    for r in results:
        lines += ["", "Generation from the exported SavedModel (`serving_default`, batch 1, "
                  f"greedy, {r['threads']} thread(s), median of repeats):", ""]
        for key, label in (("generation", "wall clock"), ("generation_cpu", "CPU time")):
            t100, t1000 = r[key]["100"], r[key]["1000"]  # JSON: string keys
            lines.append(f"- {label}: 1000 characters in {t1000:.3f} s = **{1000 / t1000:.0f} "
                         f"characters/s**; 100 in {t100:.3f} s; 1000 cost **{t1000 / t100:.1f}×**"
                         " what 100 cost.")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, help="(internal) run one child process")
    parser.add_argument("--model", help="(internal) the child's model, or generation")
    parser.add_argument("--cells", nargs="+", default=["lstm", "keras_lstm"],
                        help="models against the original PyTorch model: cells of make_rnn, or a "
                        "variant: "
                             + ", ".join(VARIANTS))
    parser.add_argument("--passes", type=int, default=2,
                        help="processes per model and thread count, run alternately")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per process")
    parser.add_argument("--steps", type=int, default=20, help="training steps per round")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--thread-counts", type=int, nargs="+", default=[1, 2],
                        help="intra- and inter-op thread counts to measure")
    parser.add_argument("--write", action="store_true",
                        help="replace this result in docs/benchmarks.md")
    args = parser.parse_args()
    if args.threads:
        return child(args)
    started = machine()
    from bench.results import load_average

    load_at_start = load_average()
    results = [measure(threads, args) for threads in args.thread_counts]
    command = "python bench/textgen.py " + " ".join(sys.argv[1:])
    text = markdown(results, command.strip(), started)
    print(text)
    if args.write:
        from bench.results import provenance, write_result

        write_result("Text generation", "textgen", f"{provenance(load_at_start)}\n\n{text}")


if __name__ == "__main__":
    main()
