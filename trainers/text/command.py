"""Character-level text generation: train a stacked LSTM on a book, sample from its export.

``seqgraph text train`` trains on a text file or folder (UTF-8), a TensorFlow Datasets text
dataset, or with neither on Python's built-in language reference, and exports the generator to
``saved_models/char_lstm/<version>/``. ``seqgraph text sweep`` trains a grid of settings and
compares them (``trainers/text/sweep.py``). ``seqgraph text sample`` completes a prompt with an
export.
Temperature T divides the logits (T = 0 is greedy); the assignment's τ multiplies them: τ = 1/T.
"""

import random
from pathlib import Path

from keras_models.utils.errors import UsageError, require

SOURCE_FIELDS = ("text", "tfds")


def _add_train_arguments(parser):
    from trainers.core.config_flags import add_flags
    from trainers.core.distribute import add_strategy_argument
    from trainers.text.config import TextConfig

    add_flags(parser.add_mutually_exclusive_group(), TextConfig, SOURCE_FIELDS)
    add_flags(parser, TextConfig, exclude=SOURCE_FIELDS)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--saved-models", type=Path, default=Path("saved_models"))
    parser.add_argument("--no-export", action="store_true", help="skip the SavedModel export")
    add_strategy_argument(parser)


def _add_sample_arguments(parser):
    parser.add_argument("--model", type=Path, required=True,
                        help="an export folder, e.g. saved_models/char_lstm/1")
    parser.add_argument("--prompt", nargs="+", default=["The "],
                        help="one or more prompts, completed in one batch")
    parser.add_argument("--length", type=int, default=200, help="characters to generate")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="T: 0 greedy, 0.5 conservative, 1 the model's distribution, "
                        "2 wild (the assignment's tau is 1/T)")
    parser.add_argument("--top-k", type=int, default=0,
                        help="draw only from the k most likely characters (0: all)")
    parser.add_argument("--top-p", type=float, default=1.0,
                        help="draw only from the most likely characters that together have "
                        "probability p (nucleus sampling; 1: all)")
    parser.add_argument("--stop", nargs="+", default=[],
                        help="end each completion after the first of these strings (kept in "
                        "the text)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the draws, to reproduce a sample (default: a fresh one)")


def add_arguments(parser):
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    _add_train_arguments(actions.add_parser("train", help="train and export a text generator"))
    from trainers.text import sweep

    sweep.add_arguments(actions.add_parser(
        "sweep", help="train a grid of settings (one or more values each) and compare them"))
    _add_sample_arguments(actions.add_parser("sample", help="complete prompts with an export"))


def run_train(args):
    from trainers.core.config_flags import flag_values
    from trainers.core.distribute import make_strategy, output_dirs
    from trainers.text.config import TextConfig
    from trainers.text.train import train_text

    config = TextConfig(**flag_values(args, TextConfig))
    config.validate()  # before the strategy: a multiworker cluster is not joined for a typo
    from trainers.core.preflight import check_output_folders

    exports = {} if args.no_export else {"--saved-models": args.saved_models}
    check_output_folders({"--runs-dir": args.runs_dir, **exports})
    strategy = make_strategy(args.strategy, deterministic=args.deterministic)
    with output_dirs(strategy, args.runs_dir, args.saved_models) as dirs, strategy.scope():
        result = train_text(config, *dirs, export=not args.no_export)
    print(f"held-out accuracy {result['val_accuracy']:.3f}, "
          f"{result['val_bits_per_character']:.3f} bits per character")
    print(f"Run folder: {result['run_dir']} (samples.md, loss.png, accuracy.png)")
    if "export" in result:
        print(f"Exported: {result['export']}")
    return 0


# The inputs that tell the exports of seqgraph's commands apart.
EXPORT_KINDS = {"tokens": "a sequence-memory classifier export (its signature takes tokens)",
                "x": "a graph node-classifier export (its signature takes x)"}
INT64_MAX = 2**63 - 1


def run_sample(args):
    from keras_models.text.limits import MAX_LIMIT

    require(1 <= args.length, f"--length must be at least 1, got {args.length}")
    require(args.length <= MAX_LIMIT, f"--length must be at most the export's max length "
            f"(seqgraph text train --max-length, 10000 by default), got {args.length}")
    require(args.temperature >= 0, f"--temperature must be >= 0 (0 is greedy), got "
            f"{args.temperature}")
    require(args.top_k >= 0, f"--top-k must be >= 0 (0 keeps every character), got {args.top_k}")
    require(0 < args.top_p <= 1, f"--top-p must be in (0, 1] (1 keeps every character), got "
            f"{args.top_p}")
    require(args.seed is None or 0 <= args.seed <= INT64_MAX,
            f"--seed must be in [0, {INT64_MAX}], got {args.seed}")
    require((args.model / "saved_model.pb").is_file(),
            f"{args.model} is not a SavedModel folder; give e.g. saved_models/char_lstm/1")
    from keras_models.backend import tf

    # One character per step: a matmul of a few rows costs more split over threads than it saves.
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already running in this process (e.g. called from Python)
        pass
    try:
        signatures = tf.saved_model.load(str(args.model)).signatures
        inputs = set(signatures["serving_default"].structured_input_signature[1])
    except (OSError, ValueError, KeyError, IndexError, tf.errors.OpError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise UsageError(
            f"{args.model} is not a readable text-generator SavedModel ({first_line[:200]}); "
            "export it again with seqgraph text train"
        ) from None
    kind = next((what for name, what in EXPORT_KINDS.items() if name in inputs),
                f"not a text-generator export (its signature takes {', '.join(sorted(inputs))})")
    require("prompt" in inputs, f"{args.model} is {kind}; give a text generator's export, e.g. "
            "saved_models/char_lstm/1")
    out = _complete(signatures, args, tf)
    for prompt, generated in zip(args.prompt, out.numpy(), strict=True):
        print(prompt + generated.decode("utf-8"))
    return 0


def _complete(signatures, args, tf):
    """The completions of ``args.prompt`` by the export's ``generate`` signature (or, for an
    export that predates it, ``serving_default``)."""
    from keras_models.text.generator import first_failed_check

    request = {"prompt": tf.constant(args.prompt), "length": tf.constant(args.length),
               "temperature": tf.constant(args.temperature, tf.float32)}
    if "generate" in signatures:
        most = int(signatures["limits"]()["max_length"])
        require(args.length <= most, f"--length must be at most {most} for {args.model} "
                f"(exported with seqgraph text train --max-length {most}), got {args.length}")
        seed = random.SystemRandom().randrange(INT64_MAX) if args.seed is None else args.seed
        serve = signatures["generate"]
        request.update(top_k=tf.constant(args.top_k), top_p=tf.constant(args.top_p, tf.float32),
                       seed=tf.constant(seed, tf.int64), stop=tf.constant([args.stop], tf.string))
    else:
        require(args.top_k == 0 and args.top_p == 1 and not args.stop and args.seed is None,
                f"{args.model} predates --top-k, --top-p, --stop and --seed; export it again "
                "with seqgraph text train")
        serve = signatures["serving_default"]
    try:
        return serve(**request)["generated"]
    except tf.errors.InvalidArgumentError as error:  # the signature's own checks: one line each
        raise UsageError(f"{args.model}: {first_failed_check(error.message)}") from None


def run(args):
    if args.action == "sweep":
        from trainers.text import sweep

        return sweep.run(args)
    return run_train(args) if args.action == "train" else run_sample(args)
