"""A sequence-memory run's settings: ``MemoryConfig``, the presets, the logging period.

``MemoryConfig`` is declared once: its fields' metadata generate the ``seqgraph memory`` flags
that override a preset (``trainers/core/config_flags.py``).
"""

import dataclasses

from trainers.core.config_flags import flag

# Set before TensorFlow loads (``seqgraph memory``, its workers and bench/memory.py): the per-step
# RNN layers at batch 256 allocate [256, 256] and [256, 1024] intermediates every step, which the
# default CPU allocator hands to malloc; the BFC allocator reuses them (docs/benchmarks.md).
TENSORFLOW_ENVIRONMENT = {"TF_CPU_ALLOCATOR_USE_BFC": "true"}

LOG_EVERY = 10
REACHED = 0.99
PRESETS = {
    # The assignment's setting (PyTorch's N(0, 1) embedding of width 1, Kaiming-normal kernels).
    "assignment": {
        "steps": 3000, "batch_size": 256, "units": 256, "embedding_dim": 1,
        "learning_rate": 1e-4, "clipnorm": 10.0, "initializer": "kaiming_normal",
        "forget_bias": None,
    },
    # Ours: a forget-gate bias of 4 lets the first bit survive the sequence at initialisation
    # (σ(4)^50 ≈ 0.4, σ(1)^50 ≈ 1e-7); with a wider embedding, fewer units (cheaper steps) and a
    # larger step size, L = 10 and 20 are learnt in about 50 steps (docs/benchmarks.md).
    "tuned": {
        "steps": 3000, "batch_size": 128, "units": 64, "embedding_dim": 8,
        "learning_rate": 3e-3, "clipnorm": 1.0, "initializer": None, "forget_bias": 4.0,
    },
}


@dataclasses.dataclass(frozen=True)
class MemoryConfig:
    """One run's hyperparameters (``initializer``, ``forget_bias`` None keep the cell's own)."""

    task: str
    cell: str
    length: int
    seed: int
    steps: int = flag(help="training steps per run (rounded up to 10s)")
    batch_size: int = flag()
    units: int = flag()
    embedding_dim: int = flag()
    learning_rate: float = flag()
    clipnorm: float = flag(help="Adam's gradient clipping norm")
    initializer: str | None = flag(
        type=str, help="kernel initialiser, e.g. kaiming_normal, or 'default' for the cell's own")
    forget_bias: float | None = flag(
        type=float, help="start value of the forget-gate bias (the cells' own is 1; keras_gru "
        "has no forget gate and ignores it)")
    heldout_size: int = flag(10_000, help="held-out sequences evaluated at the end")
    heldout_seed: int = flag(7, help="seed of the held-out set; must differ from the training "
                             "seeds")
    early_stop: float | None = flag(
        None, type=float, name="--early-stop", help="stop a run once its held-out accuracy "
        "reaches this value (checked every --eval-every steps)")
    eval_every: int = flag(100, help="steps between held-out checks with --early-stop")

    @property
    def name(self):
        return f"{self.cell}-L{self.length}-seed{self.seed}"

    def hparams(self):
        """Scalar-valued hyperparameters for TensorBoard's hparams view (None as "default")."""
        return {k: ("default" if v is None else v) for k, v in dataclasses.asdict(self).items()}
