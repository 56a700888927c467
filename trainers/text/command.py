"""Character-level text generation: train a stacked LSTM on a book, sample from its export.

``seqgraph text train`` trains on a text file or folder (UTF-8), a TensorFlow Datasets text
dataset, or with neither on Python's built-in language reference, and exports the generator to
``saved_models/char_lstm/<version>/``. ``seqgraph text sweep`` trains a grid of settings and
compares them (``trainers/text/sweep.py``). ``seqgraph text sample`` completes a prompt with an
export.
Temperature T divides the logits (T = 0 is greedy); the assignment's τ multiplies them: τ = 1/T.
"""

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


def run_sample(args):
    require(args.length >= 1, f"--length must be at least 1, got {args.length}")
    require(args.temperature >= 0, f"--temperature must be >= 0 (0 is greedy), got "
            f"{args.temperature}")
    require(all(args.prompt), "every --prompt needs at least one character")
    require((args.model / "saved_model.pb").is_file(),
            f"{args.model} is not a SavedModel folder; give e.g. saved_models/char_lstm/1")
    from keras_models.backend import tf

    # One character per step: a matmul of a few rows costs more split over threads than it saves.
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already running in this process (e.g. called from Python)
        pass
    try:
        serve = tf.saved_model.load(str(args.model)).signatures["serving_default"]
    except (OSError, ValueError, KeyError, IndexError, tf.errors.OpError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise UsageError(
            f"{args.model} is not a readable text-generator SavedModel ({first_line[:200]}); "
            "export it again with seqgraph text train"
        ) from None
    try:
        out = serve(prompt=tf.constant(args.prompt), length=tf.constant(args.length),
                    temperature=tf.constant(args.temperature, tf.float32))["generated"]
    except tf.errors.InvalidArgumentError as error:  # the signature's own checks: one line each
        raise UsageError(f"{args.model}: {_first_line(error.message)}") from None
    for prompt, generated in zip(args.prompt, out.numpy(), strict=True):
        print(prompt + generated.decode("utf-8"))
    return 0


def _first_line(message):
    """The failed check of a TensorFlow error message (its ``assertion failed: [...]`` line), or
    else its first line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith("assertion failed:")]
    line = failed[0] if failed else (lines[0] if lines else "invalid request")
    return line.removeprefix("assertion failed:").strip(" []").replace("\\'", "'")


def run(args):
    if args.action == "sweep":
        from trainers.text import sweep

        return sweep.run(args)
    return run_train(args) if args.action == "train" else run_sample(args)
