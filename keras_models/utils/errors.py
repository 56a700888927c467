"""User mistakes: one exception type that the CLI turns into one line on stderr and exit code 2."""


class UsageError(Exception):
    """A mistake in the user's input; the message names the problem and the fix."""


def require(condition, message):
    """Raise ``UsageError(message)`` unless ``condition`` holds."""
    if not condition:
        raise UsageError(message)


class TrainingDiverged(Exception):
    """The loss became NaN or infinite; the last good checkpoint is kept for a resume."""
