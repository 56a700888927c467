"""The errors seqgraph raises for bad input and for diverged training.

Library code raises ``UsageError`` (a ``ValueError``) with a message that names the problem and
the fix in the library's own terms; the command line (``trainers/cli.py``) turns it into one line
on stderr with exit code 2. ``warn`` tells the user about a choice made for them, in one line.
"""

import sys


class UsageError(ValueError):
    """A mistake in the caller's input; the message names the problem and the fix."""


def require(condition, message):
    """Raise ``UsageError(message)`` unless ``condition`` holds."""
    if not condition:
        raise UsageError(message)


def warn(message):
    """Print ``seqgraph: warning: <message>`` on stderr: a choice the user should hear about."""
    print(f"seqgraph: warning: {message}", file=sys.stderr, flush=True)


class TrainingDiverged(ArithmeticError):
    """The loss or the logits became NaN or infinite; the last good checkpoint is kept."""


class NonFiniteLogits(TrainingDiverged):
    """A model's logits are NaN or infinite (its weights exploded), so nothing can be sampled."""
