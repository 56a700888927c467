"""The character vocabulary, one implementation for the training pipeline and the export.

The vocabulary is a corpus's distinct characters in code-point order (deterministic). Id 0 is the
out-of-vocabulary token ``[UNK]``; character ``v[i]`` has id ``i + 1``. Training encodes the corpus
with NumPy (``encode``): the text's code points (UTF-32, a chunk at a time) index a table from code
point to id, and the ids take the smallest unsigned type that holds them, one byte per character
for up to 255 characters; no TensorFlow string tensor of the corpus, which cost tens of bytes per
character, is ever made. The exported generator maps code points with two TensorFlow hash tables
built from the vocabulary file (``code_point_tables``), which travels inside the SavedModel as an
asset, so a process with only TensorFlow needs nothing else.

The file (``write_vocabulary``): line ``i`` is the code point of id ``i``, ``-1`` for ``[UNK]``.
Code points, not characters, because a newline cannot be a line of a text file.
"""

from pathlib import Path

from keras_models.backend import tf

import numpy as np

from keras_models.utils.atomic import write_text
from keras_models.utils.errors import UsageError

OOV_CODE_POINT = -1  # stands for [UNK] in the vocabulary file
REPLACEMENT_CHARACTER = 0xFFFD  # what an id outside the vocabulary decodes to
CODE_POINTS = 0x110000  # U+0000 .. U+10FFFF
CHUNK = 1 << 22  # characters converted at a time: 16 MiB of UTF-32 scratch


def _code_point_chunks(text):
    """``(start, code points)`` of consecutive pieces of ``text``, as uint32 arrays."""
    for start in range(0, len(text), CHUNK):
        piece = text[start : start + CHUNK].encode("utf-32-le", "surrogatepass")
        yield start, np.frombuffer(piece, np.uint32)


def vocabulary_of(text):
    """The distinct characters of ``text`` in code-point order."""
    seen = np.zeros(CODE_POINTS, bool)
    for _, code_points in _code_point_chunks(text):
        seen[code_points] = True
    return [chr(c) for c in np.flatnonzero(seen)]


def id_dtype(vocab_size):
    """The smallest unsigned NumPy type that holds ids ``0 .. vocab_size - 1``."""
    return next(t for t in (np.uint8, np.uint16, np.uint32) if vocab_size <= np.iinfo(t).max + 1)


def encode(text, vocabulary):
    """The id of every character of ``text``: ``vocabulary[i]`` is ``i + 1``, any other character
    0 (``[UNK]``); a NumPy array of ``id_dtype(len(vocabulary) + 1)``, one item per character."""
    dtype = id_dtype(len(vocabulary) + 1)
    ids_of_code_points = np.zeros(CODE_POINTS, dtype)
    ids_of_code_points[[ord(c) for c in vocabulary]] = np.arange(1, len(vocabulary) + 1)
    ids = np.empty(len(text), dtype)
    for start, code_points in _code_point_chunks(text):
        np.take(ids_of_code_points, code_points, out=ids[start : start + len(code_points)])
    return ids


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
