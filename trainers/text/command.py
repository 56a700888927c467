"""Character-level text generation: train a stacked LSTM on a book, sample from its export.

``seqgraph text train`` trains on a text file or folder (UTF-8), a TensorFlow Datasets text
dataset, or with neither on Python's built-in language reference, and exports the generator to
``saved_models/char_lstm/<version>/``. ``seqgraph text sample`` completes a prompt with an export.
Temperature T divides the logits (T = 0 is greedy); the assignment's τ multiplies them: τ = 1/T.
"""

from pathlib import Path

from keras_models.utils.errors import UsageError, require

CELLS_HELP = ("lstm (ours, default), peephole (ours, the assignment's), peephole_classic (ours, "
              "diagonal peepholes), keras_lstm, keras_gru")


def _add_train_arguments(parser):
    from trainers.core.distribute import add_strategy_argument

    source = parser.add_mutually_exclusive_group()
    source.add_argument("--text", help="a UTF-8 .txt file or a folder of them "
                        "(default: Python's language reference, built in)")
    source.add_argument("--tfds", metavar="NAME",
                        help="a TensorFlow Datasets text dataset, e.g. tiny_shakespeare")
    parser.add_argument("--strip-gutenberg", action="store_true",
                        help="drop Project Gutenberg's header and licence")
    parser.add_argument("--seq-length", type=int, default=30, help="characters per window")
    parser.add_argument("--layers", type=int, default=2, help="stacked RNN layers")
    parser.add_argument("--units", type=int, default=256, help="units per RNN layer")
    parser.add_argument("--embedding-dim", type=int, default=128, help="character embedding")
    parser.add_argument("--cell", default="lstm", help=CELLS_HELP)
    parser.add_argument("--dropout", type=float, default=0.0,
                        help="dropout on each RNN layer's output in training, in [0, 1) "
                        "(default 0, the seed's setting)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    parser.add_argument("--lr-decay", type=float, default=1.0,
                        help="multiply the learning rate by this every --lr-decay-steps (1: off)")
    parser.add_argument("--lr-decay-steps", type=int, default=1000)
    parser.add_argument("--clipnorm", type=float, default=5.0, help="global gradient-norm clip")
    parser.add_argument("--steps", type=int, default=3000, help="training steps")
    parser.add_argument("--log-every", type=int, default=100,
                        help="steps between logs, held-out evaluations and checkpoints")
    parser.add_argument("--validation-fraction", type=float, default=0.05,
                        help="the last part of the text held out for validation")
    parser.add_argument("--sample-length", type=int, default=200,
                        help="length of the long samples (the short ones have 30)")
    parser.add_argument("--seed", type=int, default=0)
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
    _add_sample_arguments(actions.add_parser("sample", help="complete prompts with an export"))


def run_train(args):
    from trainers.core.distribute import make_strategy, output_dirs
    from trainers.text.train import TextConfig, train_text

    config = TextConfig(
        text=args.text, tfds=args.tfds, strip_gutenberg=args.strip_gutenberg,
        seq_length=args.seq_length, layers=args.layers, units=args.units,
        embedding_dim=args.embedding_dim, cell=args.cell, dropout=args.dropout,
        batch_size=args.batch_size,
        learning_rate=args.lr, lr_decay=args.lr_decay, lr_decay_steps=args.lr_decay_steps,
        clipnorm=args.clipnorm, steps=args.steps, log_every=args.log_every,
        validation_fraction=args.validation_fraction, sample_length=args.sample_length,
        seed=args.seed,
    )
    config.validate()  # before the strategy: a multiworker cluster is not joined for a typo
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

    from keras_models.text.generator import NON_FINITE_LOGITS

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
    except tf.errors.InvalidArgumentError as error:
        if NON_FINITE_LOGITS not in str(error):
            raise
        raise UsageError(
            f"{args.model}: {NON_FINITE_LOGITS}; train it again with a lower --lr"
        ) from None
    for prompt, generated in zip(args.prompt, out.numpy(), strict=True):
        print(prompt + generated.decode("utf-8"))
    return 0


def run(args):
    return run_train(args) if args.action == "train" else run_sample(args)
