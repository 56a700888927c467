"""Train the character-level language model with ``model.fit`` and export a generator.

Loss: cross-entropy of the next character averaged over every time step and window,
``L = -1/(B·T) Σ_b Σ_t log p(x_{b,t+1} | x_{b,≤t})``; bits per character is ``L / ln 2``.
Adam with global gradient-norm clipping (``clipnorm``, as PyTorch's ``clip_grad_norm_``) and an
optional step decay ``lr · decay^⌊step / decay_steps⌋``. One Keras "epoch" is ``log_every``
steps: TensorBoard, ``history.csv``, the held-out evaluation and the backup (resume after an
interruption: run the same command again) happen then. With ``minutes``, training stops once
that much wall time is spent (``StopAfterMinutes``). After 1/3, 2/3 and 3/3 of training (and
when a time budget ends it), ``SamplesCallback`` writes samples to TensorBoard (text) and
``samples.md``. The hyperparameters go to TensorBoard's HPARAMS tab. The run folder also
gets ``vocabulary.txt``, ``loss.png``, ``accuracy.png`` and ``result.json``; the generator is
exported to ``saved_models/char_lstm/<version>/``.
"""

import dataclasses
import json
import math
from pathlib import Path

from keras_models.backend import keras, tf

import numpy as np

from keras_models.models.char_language_model import CharModel
from keras_models.text.generator import CharGenerator
from keras_models.text.vocabulary import write_vocabulary
from keras_models.utils.atomic import save_figure, write_text
from keras_models.utils.errors import NonFiniteLogits, TrainingDiverged
from pipelines.text import windows
from pipelines.text.corpus import corpus_name, load_corpus
from trainers.core.callbacks import (
    StopAfterMinutes,
    standard_callbacks,
    steps_backed_up,
    training_seconds,
)
from trainers.core.distribute import shard_by_data
from trainers.core.export import SAVED_MODELS_ROOT, export_saved_model
from trainers.core.run_folders import (
    RUNS_ROOT,
    open_run_dir,
    read_history,
    read_status,
    run_status,
)
from trainers.core.seeding import seed_everything
from trainers.text.evaluate import stream_metrics

EXPORT_NAME = "char_lstm"
SAMPLE_TEMPERATURES = (0.5, 1.0, 2.0)
SAMPLE_TOP_P = 0.9  # one nucleus sample at T = 1 besides the temperatures
GREEDY_SAMPLES = 5
SHORT_SAMPLE = 30


def bits_per_character(y_true, y_pred):
    """Cross-entropy in bits: ``-log2 p(target)`` averaged over time steps."""
    loss = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
    return loss / math.log(2.0)


def compile_model(model, config):
    """Adam with global-norm clipping and the optional step decay; loss averaged over steps."""
    learning_rate = config.learning_rate
    if config.lr_decay < 1:
        learning_rate = keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate, config.lr_decay_steps, config.lr_decay, staircase=True
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=config.clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy", bits_per_character],
    )


def sample_markdown(generator, vocabulary, long_length, seed):
    """Greedy samples from 5 random start characters, one per temperature and one with top-p,
    two lengths each."""
    rng = np.random.default_rng(seed)
    letters = [c for c in vocabulary if c.isalpha()] or list(vocabulary)
    settings = [(t, 1.0, f"T = {t} (τ = {1 / t:g})") for t in SAMPLE_TEMPERATURES]
    settings.append((1.0, SAMPLE_TOP_P, f"top-p {SAMPLE_TOP_P} (T = 1)"))
    count = GREEDY_SAMPLES + len(settings)
    starts = list(rng.choice(letters, size=count, replace=len(letters) < count))  # distinct
    rows = [(0.0, 1.0, "greedy", s) for s in starts[:GREEDY_SAMPLES]]
    rows += [(*setting, s) for setting, s in zip(settings, starts[GREEDY_SAMPLES:], strict=True)]
    parts = []
    for temperature, top_p, kind, start in rows:
        for length in (SHORT_SAMPLE, long_length):
            text = generator.generate(start, length, temperature, seed=seed, top_p=top_p)[0]
            parts.append(f"**{kind}, start `{start}`, {length} characters**\n\n"
                         f"```\n{start}{text}\n```\n")
    return "\n".join(parts)


class SamplesCallback(keras.callbacks.Callback):
    """After 1/3, 2/3 and 3/3 of the epochs, and at the epoch a time budget ends training, append
    samples to ``samples.md`` and TensorBoard.

    Non-finite logits raise ``TrainingDiverged``; an epoch that is run again after an interruption
    replaces its own section instead of repeating it.
    """

    def __init__(self, generator, vocabulary, run_dir, epochs, long_length, seed):
        super().__init__()
        self.generator, self.vocabulary = generator, vocabulary
        self.path = Path(run_dir) / "samples.md"
        self.writer = tf.summary.create_file_writer(str(Path(run_dir) / "tensorboard" / "samples"))
        self.at = {math.ceil(k * epochs / 3) - 1: k for k in (1, 2, 3)}
        self.long_length, self.seed = long_length, seed

    def on_epoch_end(self, epoch, logs=None):
        out_of_time = self.model.stop_training  # StopAfterMinutes ended this epoch early
        if epoch not in self.at and not out_of_time:
            return
        step = int(self.model.optimizer.iterations.numpy())
        try:
            body = sample_markdown(self.generator, self.vocabulary, self.long_length,
                                   self.seed + step)
        except NonFiniteLogits:
            raise TrainingDiverged(
                f"by step {step} the model's logits are not finite although the loss was "
                "(the weights exploded); lower the learning rate (--lr)"
            ) from None
        part = f"{self.at[epoch]}/3 of training" if epoch in self.at else "time budget spent"
        heading = f"## Step {step} ({part})\n\n"
        old = self.path.read_text(encoding="utf-8") if self.path.exists() else "# Samples\n\n"
        if heading in old:  # this epoch ran before an interruption: replace its samples
            old = old[: old.index(heading)]
        write_text(self.path, old + heading + body + "\n")
        with self.writer.as_default():
            tf.summary.text("samples", heading + body, step=step)
        self.writer.flush()


def plot_history(history, steps_per_epoch, run_dir):
    """``loss.png`` and ``accuracy.png``: training and held-out curves against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [(e + 1) * steps_per_epoch for e in history["epoch"]]
    for key, ylabel in (("loss", "cross-entropy (nats per character)"), ("accuracy", "accuracy")):
        figure, ax = plt.subplots(figsize=(6, 4))
        ax.plot(steps, history[key], label="training")
        ax.plot(steps, history[f"val_{key}"], label="held-out (last 5%)")
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
        save_figure(figure, Path(run_dir) / f"{key}.png")
        plt.close(figure)


def _hparams_callback(run_dir, config):
    """The run's settings in TensorBoard's HPARAMS tab (unset ones left out), its trial named
    after the run folder."""
    from tensorboard.plugins.hparams import api as hp

    hparams = {k: v for k, v in dataclasses.asdict(config).items() if v is not None}
    return hp.KerasCallback(str(Path(run_dir) / "tensorboard"), hparams, trial_id=run_dir.name)


def train_text(config, runs_dir=RUNS_ROOT, saved_models=SAVED_MODELS_ROOT, export=True,
               verbose=2, run_dir=None):
    """Train, sample, plot and export; returns the result dict (also in ``result.json``).

    The run folder is the newest unfinished ``runs_dir/text-*`` with this config, or a new one;
    or ``run_dir`` when given (a sweep's run: resumed when its status is unfinished)."""
    config.validate()
    corpus = windows.prepare_corpus(  # the text itself is freed once encoded
        load_corpus(config.text, config.tfds, strip_gutenberg_text=config.strip_gutenberg),
        config.seq_length, config.validation_fraction,
    )
    seed_everything(config.seed)
    model = CharModel(corpus.vocab_size, config.embedding_dim, config.units, config.layers,
                      config.cell, config.dropout)
    if run_dir is None:
        run_dir, resumed = open_run_dir("text", dataclasses.asdict(config), root=runs_dir)
    else:
        run_dir, resumed = Path(run_dir), read_status(run_dir) in ("running", "interrupted")
    vocabulary_path = run_dir / "vocabulary.txt"
    write_vocabulary(vocabulary_path, corpus.vocabulary)
    generator = CharGenerator(model, vocabulary_path, config.serving_limits())
    compile_model(model, config)

    steps_per_epoch = min(config.log_every, config.steps)
    epochs = math.ceil(config.steps / steps_per_epoch)
    train = shard_by_data(windows.training_dataset(
        corpus.train_ids, config.seq_length, config.batch_size, config.seed,
        start_batch=steps_backed_up(run_dir, steps_per_epoch),
    ))
    validation = windows.validation_dataset(
        corpus.validation_ids, config.seq_length, config.batch_size
    ).take(config.validation_batches)
    # Samples first: weights that diverged with a finite loss stop training before this epoch's
    # backup overwrites the last good one.
    callbacks = [
        SamplesCallback(generator, corpus.vocabulary, run_dir, epochs, config.sample_length,
                        config.seed)
    ] + standard_callbacks(run_dir) + [_hparams_callback(run_dir, config)]
    if config.minutes is not None:
        history_csv = run_dir / "history.csv"
        spent = training_seconds(read_history(history_csv)) if history_csv.exists() else 0.0
        callbacks.append(StopAfterMinutes(config.minutes, spent))
    print(f"{'Resuming' if resumed else 'Training'} in {run_dir}: "
          f"{corpus_name(config.text, config.tfds)}, {len(corpus.train_ids)} training and "
          f"{len(corpus.validation_ids)} held-out characters, vocabulary {corpus.vocab_size}",
          flush=True)
    with run_status(run_dir):
        model.fit(train, epochs=epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                  validation_data=validation, verbose=verbose)
        history = read_history(run_dir / "history.csv")
        plot_history(history, steps_per_epoch, run_dir)
        stream_accuracy, stream_bits = stream_metrics(model, corpus.validation_ids)
        print(f"Held-out, state carried along the text: accuracy {stream_accuracy:.4f}, "
              f"{stream_bits:.3f} bits per character", flush=True)
        steps = int(model.optimizer.iterations.numpy())  # fewer than config.steps if out of time
        with tf.summary.create_file_writer(str(run_dir / "tensorboard" / "heldout")).as_default():
            tf.summary.scalar("stream_accuracy", stream_accuracy, step=steps)
            tf.summary.scalar("stream_bits_per_character", stream_bits, step=steps)
        result = {
            "run_dir": str(run_dir),
            "steps": steps,
            "resumed": resumed,
            "train_seconds": round(training_seconds(history), 1),
            **{key: round(values[-1], 4) for key, values in history.items()
               if key not in ("epoch", "seconds")},
            "heldout_stream_accuracy": round(stream_accuracy, 4),
            "heldout_stream_bits_per_character": round(stream_bits, 4),
        }
        if export:
            version = export_saved_model(
                generator, EXPORT_NAME, signatures=generator.export_signatures(),
                root=saved_models,
            )
            result["export"] = str(version)
        write_text(run_dir / "result.json", json.dumps(result, indent=2) + "\n")
    return result
