"""A text corpus as one Python string: from a file, a folder, a TFDS dataset or the built-in text.

Sources (``load_corpus``):

- a ``.txt`` file: strict UTF-8, with or without a byte-order mark (the mark is dropped, never a
  character of the corpus); any other encoding is one ``UsageError`` naming the file and the byte
  offset of the first invalid byte;
- a folder: its ``*.txt`` files in name order, joined by a blank line;
- a TensorFlow Datasets name (``tiny_shakespeare``, ``local_text``, …): every example of the
  ``train`` split's text feature (the one named ``text``, else the first), in order;
- nothing: Python's language reference from the standard library (``pydoc_data.topics``, about
  450 KB of English), so training runs offline with nothing to supply.

Windows line endings become ``\\n``. ``strip_gutenberg`` keeps only the text between Project
Gutenberg's ``*** START OF`` and ``*** END OF`` lines (header and licence removed).

NUL characters (U+0000) stay and become a character of the vocabulary, with one warning line on
stderr that counts them: they are valid UTF-8 and may be meant (a file of records), but in a
book they are damage the user should hear about. (Most binary files fail the UTF-8 check.)
"""

import re
from pathlib import Path

from keras_models.utils.errors import UsageError, warn

# The corpus and its ids live in memory: at most about 5 bytes per character at the peak (3 for
# text of Latin-1 characters; 5 once one character is beyond U+FFFF and Python stores every
# character in 4 bytes), measured in docs/benchmarks.md. 3 GiB of text then peaks near 15 GiB
# above the model's own memory, which leaves room for the system on a 24 GiB machine.
MAX_TEXT_BYTES = 3 * 2**30

BOM = "\ufeff"
BUILTIN_NAME = "pydoc_data.topics"
_GUTENBERG_START = re.compile(r"^\*\*\*\s*START OF.*\*\*\*[^\n]*\n", re.MULTILINE)
_GUTENBERG_END = re.compile(r"^\*\*\*\s*END OF", re.MULTILINE)
# Older books close with "End of the Project Gutenberg EBook of <title>, by <author>" (the line
# may wrap once) just before the END marker.
_GUTENBERG_TRAILER = re.compile(r"\n[ \t]*End of (the )?Project Gutenberg[^\n]*(\n[^\n]+)?\s*\Z",
                                re.IGNORECASE)


def builtin_corpus():
    """Python's language reference topics (``pydoc_data.topics``), in sorted topic order."""
    from pydoc_data.topics import topics

    return "\n".join(topics[name] for name in sorted(topics))


def read_text_file(path):
    """Decode ``path`` as strict UTF-8 (optional BOM dropped); ``\\r\\n`` becomes ``\\n``."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"text file {path} does not exist; give the path of a UTF-8 .txt file")
    if not path.is_file():  # a FIFO, socket or device: its size is unknown, it may never end
        raise UsageError(f"{path} is not a regular file; save the text to a file and give its "
                         "path")
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise UsageError(
            f"{path} has {size / 2**30:.1f} GiB; the character pipeline holds the corpus in "
            f"memory (at most {MAX_TEXT_BYTES // 2**30} GiB): give an excerpt, or a TFDS dataset"
        )
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{path} is not UTF-8 (invalid byte 0x{data[error.start]:02x} at byte offset "
            f"{error.start}); convert it first, e.g. iconv -f latin1 -t utf-8"
        ) from None
    return text.removeprefix(BOM).replace("\r\n", "\n")


def read_text_folder(folder):
    """The ``*.txt`` files of ``folder`` in name order, each decoded as by ``read_text_file``."""
    files = sorted(Path(folder).glob("*.txt"))
    if not files:
        raise UsageError(f"folder {folder} holds no .txt files; put UTF-8 .txt files in it")
    return "\n\n".join(read_text_file(f) for f in files)


def read_tfds(name, data_dir=None):
    """Concatenate the text feature of every example of ``name``'s ``train`` split."""
    import keras_models.backend  # noqa: F401  (tf-keras before TFDS touches tf.keras)

    import tensorflow_datasets as tfds

    import pipelines.text.tfds_builder  # noqa: F401  (registers ``local_text``)

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise UsageError(f"no TensorFlow Datasets dataset named {name!r}; check the name") from None
    features = builder.info.features
    text_keys = [k for k, f in features.items() if isinstance(f, tfds.features.Text)]
    if not text_keys:
        raise UsageError(f"dataset {name!r} has no text feature; choose a text dataset")
    key = "text" if "text" in text_keys else text_keys[0]
    try:
        builder.download_and_prepare()
    except AssertionError as error:  # how TFDS reports a missing manual folder
        problem = str(error).split(". ")[0]
        raise UsageError(f"{problem}; put the UTF-8 .txt files of your corpus there") from None
    dataset = builder.as_dataset(split="train").map(lambda ex: ex[key])
    pieces = [t.decode("utf-8") for t in dataset.as_numpy_iterator()]
    return "\n".join(pieces).replace("\r\n", "\n")


def strip_gutenberg(text):
    """The text between Project Gutenberg's ``*** START OF`` and ``*** END OF`` markers, without
    the "End of the Project Gutenberg EBook of …" line that older books put before the end."""
    start = _GUTENBERG_START.search(text)
    end = _GUTENBERG_END.search(text, start.end() if start else 0)
    if start is None and end is None:
        raise UsageError(
            "no Project Gutenberg '*** START OF' / '*** END OF' markers found; "
            "drop --strip-gutenberg for this text"
        )
    book = text[start.end() if start else 0 : end.start() if end else len(text)]
    return _GUTENBERG_TRAILER.sub("", book).strip("\n")


def load_corpus(path=None, tfds_name=None, *, strip_gutenberg_text=False, data_dir=None):
    """The corpus from ``path`` (file or folder), ``tfds_name`` or, with neither, the built-in."""
    if path is not None and tfds_name is not None:
        raise UsageError("give either a text path or a TFDS name, not both")
    if tfds_name is not None:
        text = read_tfds(tfds_name, data_dir=data_dir)
    elif path is None:
        text = builtin_corpus()
    elif Path(path).is_dir():
        text = read_text_folder(path)
    else:
        text = read_text_file(path)
    if strip_gutenberg_text:
        text = strip_gutenberg(text)
    if not text:
        raise UsageError(f"the corpus {path or tfds_name or BUILTIN_NAME} is empty; give some text")
    nul = text.count("\0")
    if nul:
        warn(f"the corpus {corpus_name(path, tfds_name)} holds {nul} NUL character(s) (U+0000), "
             "trained as a character of the vocabulary; remove them first (tr -d '\\000') if "
             "they are not meant to be text")
    return text


def corpus_name(path=None, tfds_name=None):
    """A short human name for the corpus source, for reports and configs."""
    if tfds_name is not None:
        return f"tfds:{tfds_name}"
    return str(path) if path is not None else BUILTIN_NAME
