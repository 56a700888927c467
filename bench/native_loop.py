"""Training the text model as it runs against without one of its speed-ups, in one process.

Run by hand from the repository root::

    .venv/bin/python bench/native_loop.py --threads 2 --rounds 8                    # TF loop
    .venv/bin/python bench/native_loop.py --threads 2 --rounds 20 --against unfolded

Two copies of the text model of ``bench/textgen.py`` (vocabulary 84, embedding 128, 2 × 256 LSTM,
batch 64, sequence 30, compiled as ``seqgraph text train`` does): one traced as ``seqgraph`` runs
it, one traced without the compiled loop of ``keras_models/ops/native_lstm.cc`` (``--against
tf-loop``) or without the embedding lookup folded into layer 1's input kernel (``--against
unfolded``, ``FusedLSTM.call_on_ids``). Rounds of ``--steps`` training steps alternate between
them in this one process, so both see the same machine; separate processes of the same model
differed by up to 30 % here. Prints characters per second of each round and the median ratio.
"""

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import textgen  # noqa: E402  (bench/textgen.py: the model and its timed training rounds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="intra- and inter-op threads")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30, help="training steps per round")
    parser.add_argument("--against", choices=["tf-loop", "unfolded"], default="tf-loop",
                        help="the speed-up the second copy goes without")
    args = parser.parse_args()

    from trainers.core.heap import keep_freed_memory

    keep_freed_memory()  # as seqgraph does
    from keras_models.backend import tf

    from keras_models.layers import fused_lstm

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    if fused_lstm.recurrence_ops() is None:
        sys.exit("the compiled loop is unavailable here (see the warning above)")
    as_run = textgen.keras_model("lstm")
    as_run(3)  # traced now, as seqgraph runs it
    # The second copy is traced without the speed-up, which is then put back.
    owner, name, replacement = {
        "tf-loop": (fused_lstm, "recurrence_ops", lambda: None),
        "unfolded": (fused_lstm.FusedLSTM, "_folds_lookup", lambda *args: False),
    }[args.against]
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    without = textgen.keras_model("lstm")
    without(3)
    setattr(owner, name, original)

    chars = args.steps * textgen.CHARS_PER_STEP
    ratios = []
    for round_ in range(1, args.rounds + 1):
        seconds, seconds_without = as_run(args.steps), without(args.steps)
        ratios.append(seconds_without / seconds)
        print(f"round {round_}: as run {chars / seconds:,.0f} characters/s, without "
              f"({args.against}) {chars / seconds_without:,.0f}, ratio {ratios[-1]:.2f}",
              flush=True)
    print(f"{args.threads} thread(s): as run, the model trains {statistics.median(ratios):.2f}× as "
          f"fast as {args.against} (median of {args.rounds} rounds; "
          f"{min(ratios):.2f}–{max(ratios):.2f})")


if __name__ == "__main__":
    main()
