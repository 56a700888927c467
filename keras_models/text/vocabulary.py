"""The character vocabulary, one implementation for the training pipeline and the export.

The vocabulary is a corpus's distinct characters in code-point order (deterministic). Id 0 is the
out-of-vocabulary token ``[UNK]``; character ``v[i]`` has id ``i + 1``. Training looks ids up with
a ``StringLookup`` (``make_lookup``); the exported generator with two TensorFlow hash tables built
from the vocabulary file (``code_point_tables``), which travels inside the SavedModel as an asset,
so a process with only TensorFlow needs nothing else.

The file (``write_vocabulary``): line ``i`` is the code point of id ``i``, ``-1`` for ``[UNK]``.
Code points, not characters, because a newline cannot be a line of a text file.
"""

from pathlib import Path

from keras_models.backend import keras, tf

from keras_models.utils.atomic import write_text
from keras_models.utils.errors import UsageError

OOV_TOKEN = "[UNK]"
OOV_CODE_POINT = -1  # stands for [UNK] in the vocabulary file
REPLACEMENT_CHARACTER = 0xFFFD  # what an id outside the vocabulary decodes to


def vocabulary_of(text):
    """The distinct characters of ``text`` in code-point order."""
    return sorted(set(text))


def make_lookup(vocabulary, invert=False):
    """A ``StringLookup`` from characters to ids (``invert``: ids to characters); 0 is ``[UNK]``."""
    return keras.layers.StringLookup(
        vocabulary=list(vocabulary), mask_token=None, oov_token=OOV_TOKEN, invert=invert
    )


def encode(text, lookup):
    """The ids (int64 NumPy array) of every character of ``text``."""
    return lookup(tf.strings.unicode_split(text, "UTF-8")).numpy()


def write_vocabulary(path, vocabulary):
    """Write the vocabulary file of ``vocabulary`` (characters, without ``[UNK]``) atomically."""
    lines = [str(OOV_CODE_POINT)] + [str(ord(c)) for c in vocabulary]
    write_text(path, "\n".join(lines) + "\n")


def read_vocabulary(path):
    """The characters of a vocabulary file written by ``write_vocabulary`` (without ``[UNK]``)."""
    code_points = [int(line) for line in Path(path).read_text(encoding="ascii").split()]
    if not code_points or code_points[0] != OOV_CODE_POINT:
        raise UsageError(f"{path} is not a seqgraph vocabulary file; give the one from the run")
    return [chr(c) for c in code_points[1:]]


def code_point_tables(path, vocab_size):
    """Hash tables ``(ids_from_code_points, code_points_from_ids)`` (int64 → int64) built from
    the vocabulary file ``path``, which must hold ``vocab_size`` ids. Unknown code points map to
    id 0 (``[UNK]``); unknown ids to U+FFFD."""
    lines = len(Path(path).read_text(encoding="ascii").split())
    if lines != vocab_size:
        raise UsageError(
            f"{path} has {lines} ids but the model expects {vocab_size}; "
            "use the vocabulary file written with this model"
        )
    index = tf.lookup.TextFileIndex
    ids_from_code_points = tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(
            str(path), tf.int64, index.WHOLE_LINE, tf.int64, index.LINE_NUMBER
        ),
        default_value=0,
    )
    code_points_from_ids = tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(
            str(path), tf.int64, index.LINE_NUMBER, tf.int64, index.WHOLE_LINE
        ),
        default_value=REPLACEMENT_CHARACTER,
    )
    return ids_from_code_points, code_points_from_ids
