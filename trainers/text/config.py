"""A text-generation run's settings, declared once: ``TextConfig`` fields generate the
``seqgraph text train`` flags (``trainers/core/config_flags.py``)."""

import dataclasses
import math

from keras_models.text.limits import ServingLimits
from keras_models.utils.errors import require
from trainers.core.config_flags import flag

CELLS_HELP = ("lstm (ours, default), peephole (ours, full-matrix peepholes), peephole_classic "
              "(ours, diagonal peepholes), keras_lstm, keras_gru")


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """One training run's settings; the defaults are the original PyTorch model's (sequence 30,
    2 × 256 LSTM, batch 64)."""

    text: str | None = flag(None, type=str, help="a UTF-8 .txt file or a folder of them "
                            "(default: Python's language reference, built in)")
    tfds: str | None = flag(None, type=str, help="a TensorFlow Datasets text dataset, e.g. "
                            "tiny_shakespeare")
    strip_gutenberg: bool = flag(False, help="drop Project Gutenberg's header and licence")
    seq_length: int = flag(30, help="characters per window")
    layers: int = flag(2, help="stacked RNN layers")
    units: int = flag(256, help="units per RNN layer")
    embedding_dim: int = flag(128, help="character embedding width")
    cell: str = flag("lstm", help=CELLS_HELP)
    dropout: float = flag(0.0, help="dropout on each RNN layer's output in training, in [0, 1)")
    batch_size: int = flag(64, help="windows per training batch")
    learning_rate: float = flag(2e-3, name="--lr", help="Adam learning rate")
    lr_decay: float = flag(1.0, help="multiply the learning rate by this every --lr-decay-steps "
                           "(1: off)")
    lr_decay_steps: int = flag(1000, help="steps between learning-rate decays")
    clipnorm: float = flag(5.0, help="global gradient-norm clip")
    steps: int = flag(3000, help="training steps")
    minutes: float | None = flag(None, type=float, help="stop training after this many minutes "
                                 "of wall time, or at --steps if that comes first (default: no "
                                 "time limit)")
    log_every: int = flag(100, help="steps between logs, held-out evaluations and checkpoints")
    validation_fraction: float = flag(0.05, help="the last part of the text held out for "
                                      "validation")
    validation_batches: int = 50
    sample_length: int = flag(200, help="length of the long samples (the short ones have 30)")
    seed: int = flag(0, help="seed of the initial weights and the training windows")
    max_length: int = flag(10_000, help="the export generates at most this many characters per "
                           "prompt and request")
    max_prompt_length: int = flag(100_000, help="the export reads prompts of at most this many "
                                  "characters")
    max_batch: int = flag(256, help="the export answers at most this many prompts per request")

    def serving_limits(self):
        """The export's ``ServingLimits``."""
        return ServingLimits(self.max_length, self.max_prompt_length, self.max_batch)

    def validate(self):
        """Raise ``UsageError`` for impossible values, before anything is read or written."""
        for name in ("seq_length", "layers", "units", "embedding_dim", "batch_size", "steps",
                     "log_every", "lr_decay_steps", "validation_batches", "sample_length"):
            value = getattr(self, name)
            require(value >= 1, f"{name} must be at least 1, got {value}; pass a positive value")
        require(0 < self.learning_rate < math.inf,
                f"learning rate must be a finite number > 0, got {self.learning_rate}")
        require(0 < self.lr_decay <= 1, f"lr decay must be in (0, 1], got {self.lr_decay}")
        require(0 <= self.dropout < 1, f"--dropout must be in [0, 1), got {self.dropout}")
        require(self.minutes is None or 0 < self.minutes < math.inf,
                f"--minutes must be a finite number > 0, got {self.minutes}")
        require(self.clipnorm > 0, f"clipnorm must be > 0, got {self.clipnorm}")
        require(0 < self.validation_fraction < 1,
                f"--validation-fraction must be in (0, 1), got {self.validation_fraction}; "
                "training evaluates on that last part of the text (e.g. 0.05)")
        self.serving_limits().validate()
