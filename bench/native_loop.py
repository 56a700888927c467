"""Training the text model with the compiled LSTM loop and with the TensorFlow loop, in one process.

Run by hand from the repository root::

    .venv/bin/python bench/native_loop.py --threads 2 --rounds 8

Two copies of the text model of ``bench/textgen.py`` (vocabulary 84, embedding 128, 2 × 256 LSTM,
batch 64, sequence 30, compiled as ``seqgraph text train`` does): one traced with the compiled
loop of ``keras_models/native_lstm.cc``, one with it switched off. Rounds of ``--steps`` training
steps alternate between them in this one process, so both see the same machine; separate
processes of the same model differed by up to 30 % here. Prints characters per second of each
round and the median ratio.
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
    args = parser.parse_args()

    from trainers.heap import keep_freed_memory

    keep_freed_memory()  # as seqgraph does
    from keras_models.backend import tf

    from keras_models import fused_lstm

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    if fused_lstm.recurrence_ops() is None:
        sys.exit("the compiled loop is unavailable here (see the warning above)")
    compiled = textgen.keras_model("lstm")
    compiled(3)  # traced now, with the compiled loop
    fused_lstm.recurrence_ops, available = (lambda: None), fused_lstm.recurrence_ops
    tensorflow_loop = textgen.keras_model("lstm")
    tensorflow_loop(3)  # traced without it
    fused_lstm.recurrence_ops = available

    chars = args.steps * textgen.CHARS_PER_STEP
    ratios = []
    for round_ in range(1, args.rounds + 1):
        with_loop, without = compiled(args.steps), tensorflow_loop(args.steps)
        ratios.append(without / with_loop)
        print(f"round {round_}: compiled loop {chars / with_loop:,.0f} characters/s, "
              f"TensorFlow loop {chars / without:,.0f}, ratio {ratios[-1]:.2f}", flush=True)
    print(f"{args.threads} thread(s): the compiled loop trains {statistics.median(ratios):.2f}× "
          f"as fast (median of {args.rounds} rounds; {min(ratios):.2f}–{max(ratios):.2f})")


if __name__ == "__main__":
    main()
