"""Serving benchmark: the text-generator export as TensorFlow Serving runs it.

Run by hand from the repository root, on an otherwise idle machine::

    .venv/bin/python bench/serving.py --against b996f68 --against 44e8cda --write
    .venv/bin/python bench/serving.py --quick                        # a smoke run (no timing)

The model is the seed's size (vocabulary 84, embedding 128, 2 × 256 LSTM) with untrained weights
(generation costs the same whatever the weights), drawn after ``seed_everything(0)``: the same in
every run. The parent stops if a second build from the seed gives other weights, and each child
stops unless the export it loads holds exactly those weights (a digest of the arrays). The
parent exports the model once with this checkout's ``CharGenerator`` and, for each ``--against
REV``, once more with the generator of commit ``REV`` (its modules of ``keras_models/text`` but
the vocabulary, read from git). Each measurement runs in a fresh process that imports only
TensorFlow and loads an export with ``tf.saved_model.load``, with TensorFlow's default threads
and with one intra-op thread (what ``tensorflow_model_server
--tensorflow_intra_op_parallelism=1`` gives), alternating, ``--passes`` processes each. A process
measures (medians of repeated calls of ``serving_default``, after a warm-up call):

- batch 1, greedy: 1000 and 100 characters from the prompt "The ": characters/s and the cost
  ratio of 1000 to 100;
- batch 64 different prompts (20–83 characters), greedy, 1000 characters each: aggregate
  characters/s, and its ratio to the matmul floor measured in the same process: the time of the
  products one character needs at batch 64 (``[4H, I] @ [I, 64]`` for the embedding, both
  layers' ``U h``, the second layer's ``W x``, and the output layer: 1.88 MFLOP per character),
  each in the faster of the two orientations, in a ``tf.function`` loop;
- a prompt of 20 000 characters: seconds to the first generated character (``length`` 1), and
  its ratio to the prompt floor measured in the same process: the time of the recurrent products
  the prompt needs one after the other (layers × 20 000 products ``U h``, ``[4H, H] @ [H, 1]``,
  in a NumPy loop: the sequential work no implementation of this 2 × 256 LSTM avoids at batch
  1, without any gate, loop or input product).

Below the table, one line per target and thread setting says whether this checkout's export met
it in this run; a missed prompt target is set against the run's prompt floor, serial and with
the layers side by side. ``--write`` puts both in docs/benchmarks.md (section "Serving").
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VOCAB, EMBED, UNITS, LAYERS = 84, 128, 256, 2
BATCH = 64
LONG_PROMPT = 20_000
# The targets of issue 19: batch-1 characters/s (both thread settings), the cost of 1000
# characters over that of 100, batch 64 over the matmul floor, seconds to the first character.
TARGET_RATE, TARGET_COST, TARGET_PER_FLOOR, TARGET_FIRST_CHARACTER = 8000, 11, 0.6, 0.5
# The products of one character at batch 64: (rows, columns) of each weight matrix.
PRODUCTS = [(4 * UNITS, EMBED), (4 * UNITS, UNITS), (4 * UNITS, 2 * UNITS), (VOCAB, UNITS)]
FLOP_PER_CHARACTER = 2 * sum(rows * columns for rows, columns in PRODUCTS)
TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was "
        "the age of foolishness, it was the epoch of belief, it was the epoch of incredulity. ")


def settings(quick):
    """Lengths and sizes of the measurements (tiny ones with ``quick``: a smoke run)."""
    if quick:
        return {"short": 10, "long": 100, "batch": 4, "batch_length": 20, "prompt": 500,
                "repeats": 1, "floor_repeats": 5, "prompt_floor_repeats": 1}
    return {"short": 100, "long": 1000, "batch": BATCH, "batch_length": 1000,
            "prompt": LONG_PROMPT, "repeats": 7, "floor_repeats": 200, "prompt_floor_repeats": 3}


# ----- the parent: exports


def previous_generator(rev, folder):
    """The ``CharGenerator`` class of commit ``rev``, with that commit's modules of
    ``keras_models/text`` (samplers, steps, limits) but the vocabulary (the same file format)."""
    import importlib

    package = Path(folder) / f"previous_{len(list(Path(folder).glob('previous_*')))}"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    listed = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:keras_models/text"],
                            cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    modules = [name.removesuffix(".py") for name in listed
               if name.endswith(".py") and name not in ("__init__.py", "vocabulary.py")]
    for name in modules:
        source = subprocess.run(["git", "show", f"{rev}:keras_models/text/{name}.py"], cwd=ROOT,
                                check=True, capture_output=True, text=True).stdout
        for other in modules:
            source = source.replace(f"from keras_models.text import {other}",
                                    f"from {package.name} import {other}")
            source = source.replace(f"from keras_models.text.{other} import",
                                    f"from {package.name}.{other} import")
        (package / f"{name}.py").write_text(source, encoding="utf-8")
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module(f"{package.name}.generator").CharGenerator


def weights_digest(arrays):
    """A digest of weight arrays that does not depend on their names or order: the same weights
    in any export, or in the model, give the same digest."""
    import numpy as np

    digests = sorted(hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
                     for a in arrays)
    return hashlib.sha256("".join(digests).encode()).hexdigest()[:16]


def seeded_model():
    """The benchmark's model, its weights drawn after ``seed_everything(0)``.

    Keras' initialisers without a seed of their own draw their seeds from Python's ``random``,
    which ``tf.random.set_seed`` leaves alone: only the seeding of all three generators makes the
    weights the same in every process.
    """
    from keras_models.backend import tf

    from keras_models.models.char_language_model import CharModel
    from trainers.core.seeding import seed_everything

    seed_everything(0)
    model = CharModel(VOCAB, EMBED, UNITS, LAYERS)
    model(tf.zeros((1, 1), tf.int32))
    return model


def export_models(folder, against):
    """``{style: export folder}`` of the seed-size model, same weights in each style, and the
    digest of those weights. Stops if building the model again gives other weights."""
    from keras_models.text.generator import CharGenerator
    from keras_models.text.vocabulary import write_vocabulary
    from trainers.core.export import export_saved_model

    vocabulary = Path(folder) / "vocabulary.txt"
    write_vocabulary(vocabulary, [chr(32 + i) for i in range(VOCAB - 1)])
    model = seeded_model()
    digest = weights_digest(v.numpy() for v in model.variables)
    again = weights_digest(v.numpy() for v in seeded_model().variables)
    if again != digest:
        sys.exit(f"the benchmark's model is not reproducible: weights {digest}, then {again} "
                 "from the same seed")
    generator = CharGenerator(model, vocabulary)
    exports = {"this checkout": export_saved_model(
        generator, "new", signatures=generator.export_signatures(), root=folder)}
    for rev in against:
        previous = previous_generator(rev, folder)(model, vocabulary)
        exports[f"{rev} (previous)"] = export_saved_model(
            previous, f"previous_{rev}", signatures={"serving_default": previous.serving_default},
            root=folder)
    return exports, digest


# ----- a child: one export, one thread setting


def timed(call, repeats):
    call()  # warm-up: the first call builds the graph's kernels
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_floor(tf, repeats):
    """Seconds of the products of one character at batch 64, each in its faster orientation."""
    total = 0.0
    for rows, columns in PRODUCTS:
        best = []
        for shape_a, shape_b in (((rows, columns), (columns, BATCH)),
                                 ((BATCH, columns), (columns, rows))):
            a, b = tf.random.normal(shape_a), tf.random.normal(shape_b)

            @tf.function
            def loop(a, b):
                out = tf.zeros((a.shape[0], b.shape[1]))
                for _ in tf.range(repeats):
                    out += tf.matmul(a, b)
                return out

            best.append(timed(lambda a=a, b=b: loop(a, b).numpy(), 3) / repeats)
        total += min(best)
    return total


def prompt_floor(length, repeats):
    """Seconds of ``LAYERS × length`` recurrent products ``[4H, H] @ [H, 1]`` one after the
    other (NumPy, float32): the best of ``repeats`` runs."""
    import numpy as np

    rng = np.random.default_rng(0)
    kernels = [rng.standard_normal((4 * UNITS, UNITS), dtype=np.float32) / 16
               for _ in range(LAYERS)]
    h = rng.standard_normal((UNITS, 1), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(length):
            for kernel in kernels:
                kernel @ h
        best = min(best, time.perf_counter() - start)
    return best


def child(args):
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    size = settings(args.quick)
    reader = tf.train.load_checkpoint(str(Path(args.child) / "variables" / "variables"))
    digest = weights_digest(reader.get_tensor(name) for name, dtype
                            in reader.get_variable_to_dtype_map().items() if dtype.is_floating)
    if digest != args.weights:
        sys.exit(f"{args.child} holds other weights than the benchmark's model: {digest}, "
                 f"expected {args.weights}")
    serve = tf.saved_model.load(args.child).signatures["serving_default"]

    def generate(prompts, length):
        return lambda: serve(prompt=tf.constant(prompts), length=tf.constant(length),
                             temperature=tf.constant(0.0))["generated"].numpy()

    short = timed(generate(["The "], size["short"]), size["repeats"])
    long = timed(generate(["The "], size["long"]), size["repeats"])
    prompts = [(TEXT * 2)[i:i + 20 + i] for i in range(size["batch"])]
    batch = timed(generate(prompts, size["batch_length"]), size["repeats"])
    long_prompt = (TEXT * (size["prompt"] // len(TEXT) + 1))[: size["prompt"]]
    first = timed(generate([long_prompt], 1), max(1, size["repeats"] // 2))
    floor = matmul_floor(tf, size["floor_repeats"])
    first_floor = prompt_floor(size["prompt"], size["prompt_floor_repeats"])
    print(json.dumps({
        "batch1": size["long"] / long, "cost_ratio": long / short,
        "batch": size["batch"] * size["batch_length"] / batch,
        "floor": BATCH / floor,
        "first_character": first, "prompt_floor": first_floor,
    }))


# ----- the parent: processes, table


def run_child(path, threads, quick, weights):
    command = [sys.executable, __file__, "--child", str(path), "--threads", str(threads),
               "--weights", weights]
    command += ["--quick"] if quick else []
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"the measuring process of {path} failed: "
                 f"{(done.stderr.strip().splitlines() or ['no message'])[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def medians(runs):
    """``{measure: median over the runs}`` of the children's results for one row."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def verdicts(results, prompt_length):
    """One line per target and thread setting of this checkout's export, from the medians of
    this run; a missed prompt target says where it stands against the run's prompt floor."""
    lines, met = [], {True: "met", False: "missed"}
    for (style, threads), runs in results.items():
        if style != "this checkout":
            continue
        median = medians(runs)
        name = "default threads" if threads == 0 else f"{threads} intra-op thread"
        per_floor = median["batch"] / median["floor"]
        lines += [
            f"- {name}: batch 1 ≥ {TARGET_RATE:,} characters/s: {median['batch1']:,.0f}, "
            f"{met[median['batch1'] >= TARGET_RATE]}; 1000 characters ≤ {TARGET_COST}× the cost "
            f"of 100: {median['cost_ratio']:.1f}×, {met[median['cost_ratio'] <= TARGET_COST]}; "
            f"batch {BATCH} ≥ {TARGET_PER_FLOOR} of the floor: {per_floor:.2f}, "
            f"{met[per_floor >= TARGET_PER_FLOOR]}.",
            f"- {name}: " + prompt_verdict(median["first_character"], median["prompt_floor"],
                                           prompt_length),
        ]
    return lines


def prompt_verdict(first, floor, length):
    """The first character of a ``length``-character prompt after ``first`` seconds against the
    target, and a missed target against the prompt floor ``floor`` (serial) and the floor with
    the layers side by side on the machine's cores."""
    target = TARGET_FIRST_CHARACTER
    text = (f"first character of the {length:,}-character prompt ≤ {target} s: "
            f"{first:.3f} s, {'met' if first <= target else 'missed'}")
    if first <= target:
        return text + "."
    side_by_side = floor / min(LAYERS, os.cpu_count() or 1)
    where = ("below the floor even with the layers side by side" if target < side_by_side
             else "below the serial floor, above the floor with the layers side by side"
             if target < floor else "above the floor")
    return (f"{text}; the target is {target / floor:.2f}× the prompt floor of this run "
            f"({floor:.3f} s, the recurrent products one after the other) and "
            f"{target / side_by_side:.2f}× that floor with the {LAYERS} layers side by side "
            f"({side_by_side:.3f} s): {where}.")


def markdown(results, size, weights):
    lines = [
        f"| export | threads | batch 1: characters/s ({size['long']}) | {size['long']} ÷ "
        f"{size['short']} cost | batch {size['batch']}: characters/s | floor characters/s | "
        f"÷ floor | {size['prompt']}-character prompt: first character | prompt floor | "
        "÷ prompt floor |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (style, threads), runs in results.items():
        median = medians(runs)
        lines.append(
            f"| {style} | {'default' if threads == 0 else threads} | {median['batch1']:,.0f} | "
            f"{median['cost_ratio']:.1f}× | {median['batch']:,.0f} | {median['floor']:,.0f} | "
            f"{median['batch'] / median['floor']:.2f} | {median['first_character']:.3f} s | "
            f"{median['prompt_floor']:.3f} s | "
            f"{median['first_character'] / median['prompt_floor']:.2f} |")
    lines += ["", f"Medians over {len(runs)} process(es) per row (the prompt floor: the "
              "recurrent products alone, one after the other). The same weights in every export "
              f"and process (digest {weights})."]
    quick = "" if size["prompt"] == LONG_PROMPT else " (at the tiny sizes of --quick)"
    lines += ["", f"Targets, this checkout{quick}:", "", *verdicts(results, size["prompt"])]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", metavar="REV", action="append", default=[],
                        help="also measure the export of the generator at this git commit "
                             "(repeatable)")
    parser.add_argument("--passes", type=int, default=3,
                        help="processes per export and thread setting, run alternately")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--write", action="store_true",
                        help="replace this result in docs/benchmarks.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick and args.write:
        parser.error("--quick is a smoke run; its figures are not results (drop --write)")
    if args.child:
        return child(args)
    from bench.results import load_average, provenance, write_result

    load_at_start = load_average()
    with tempfile.TemporaryDirectory() as folder:
        exports, weights = export_models(folder, args.against)
        results = {(style, threads): [] for style in exports for threads in (0, 1)}
        for _ in range(args.passes):
            for style, threads in results:
                results[style, threads].append(
                    run_child(exports[style], threads, args.quick, weights))
                print(style, threads, results[style, threads][-1], flush=True)
    text = markdown(results, settings(args.quick), weights)
    print(text)
    if args.write:
        write_result("Serving", "serving", f"{provenance(load_at_start)}\n\n{text}")


if __name__ == "__main__":
    main()
