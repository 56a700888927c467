"""The errors seqgraph raises for bad input and for diverged training.

Library code raises ``UsageError`` (a ``ValueError``) with a message that names the problem and
the fix in the library's own terms; the command line (``trainers/cli.py``) turns it into one line
on stderr with exit code 2.
"""


class UsageError(ValueError):
    """A mistake in the caller's input; the message names the problem and the fix."""


def require(condition, message):
    """Raise ``UsageError(message)`` unless ``condition`` holds."""
    if not condition:
        raise UsageError(message)


class TrainingDiverged(ArithmeticError):
    """The loss or the logits became NaN or infinite; the last good checkpoint is kept."""


class NonFiniteLogits(TrainingDiverged):
    """A model's logits are NaN or infinite (its weights exploded), so nothing can be sampled."""
