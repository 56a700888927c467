"""The largest request a text-generator export answers, fixed when it is exported.

Kept apart from the generator (no TensorFlow import) so that a command can check the values
before anything is loaded or written.
"""

import dataclasses

from keras_models.utils.errors import require

MAX_STOPS = 16  # stop strings per prompt
MAX_STOP_LENGTH = 64  # characters per stop string
MAX_LIMIT = 10**8  # the largest value of any limit


@dataclasses.dataclass(frozen=True)
class ServingLimits:
    """``max_length``: characters generated per prompt (per call of ``stream_next``);
    ``max_prompt_length``: characters per prompt; ``max_batch``: prompts per request.

    Memory per request is bounded by them: the padded prompts take at most
    ``max_batch · max_prompt_length`` ids, the output ``max_batch · max_length``, the states
    ``max_batch`` rows.
    """

    max_length: int = 10_000
    max_prompt_length: int = 100_000
    max_batch: int = 256

    def validate(self):
        """Raise ``UsageError`` unless every limit is in ``[1, MAX_LIMIT]``."""
        for name, value in dataclasses.asdict(self).items():
            require(1 <= value <= MAX_LIMIT, f"{name} must be in [1, {MAX_LIMIT}], got {value}")
