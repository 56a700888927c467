"""Text corpus and character pipeline: sources, encoding errors, vocabulary, windows, hold-out."""

from keras_models.backend import tf

import numpy as np
import pytest

from keras_models.text import vocabulary as vocab
from keras_models.utils.errors import UsageError
from pipelines.text import corpus as text_corpus
from pipelines.text import windows as char_dataset


def test_bom_is_dropped_and_never_a_vocabulary_character(tmp_path):
    path = tmp_path / "book.txt"
    path.write_bytes("\ufeffHé\r\nllo".encode())
    text = text_corpus.load_corpus(path)
    assert text == "Hé\nllo"
    assert "\ufeff" not in vocab.vocabulary_of(text)


def test_non_utf8_file_names_file_and_byte_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("abc caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(UsageError, match=r"latin1\.txt is not UTF-8 .*0xe9 at byte offset 7"):
        text_corpus.load_corpus(path)


@pytest.mark.parametrize("content", [None, b""])
def test_missing_or_empty_file_is_one_clear_error(tmp_path, content):
    path = tmp_path / "book.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError, match="does not exist" if content is None else "is empty"):
        text_corpus.load_corpus(path)


def test_nul_characters_stay_with_one_warning_that_counts_them(tmp_path, capsys):
    path = tmp_path / "records.txt"
    path.write_bytes(b"ab\0cd\0\0e")
    assert text_corpus.load_corpus(path) == "ab\0cd\0\0e"
    assert capsys.readouterr().err.splitlines() == [
        f"seqgraph: warning: the corpus {path} holds 3 NUL character(s) (U+0000), trained as a "
        "character of the vocabulary; remove them first (tr -d '\\000') if they are not meant "
        "to be text"
    ]
    path.write_bytes(b"abcde")
    text_corpus.load_corpus(path)
    assert capsys.readouterr().err == ""


def test_folder_is_its_txt_files_in_name_order(tmp_path):
    (tmp_path / "b.txt").write_text("second", encoding="utf-8")
    (tmp_path / "a.txt").write_text("first", encoding="utf-8")
    (tmp_path / "notes.md").write_text("ignored", encoding="utf-8")
    assert text_corpus.load_corpus(tmp_path) == "first\n\nsecond"


def test_builtin_corpus_is_the_python_reference():
    text = text_corpus.load_corpus()
    assert len(text) > 400_000 and text.startswith("The \"assert\" statement")


def test_strip_gutenberg_keeps_only_the_book():
    text = (
        "The Project Gutenberg EBook of X\nlicence\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***"
        "\n\nChapter 1\nIt was.\n\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\nmore licence\n"
    )
    assert text_corpus.strip_gutenberg(text) == "Chapter 1\nIt was."
    trailer = "End of the Project Gutenberg EBook of X, by \nAn Author\n\n"
    older = text.replace("It was.\n\n", "It was.\n\n" + trailer)
    assert text_corpus.strip_gutenberg(older) == "Chapter 1\nIt was."
    with pytest.raises(UsageError, match="drop --strip-gutenberg"):
        text_corpus.strip_gutenberg("no markers here")


def _ids_by_hand(text, vocabulary):
    """The reference: each character's place in the vocabulary, plus one; 0 when absent."""
    return [vocabulary.index(c) + 1 if c in vocabulary else 0 for c in text]


@pytest.mark.parametrize("text", ["hello, wörld\n\tok", "a\0b€😀c\U0010ffff" * 3],
                         ids=["latin-1", "every width"])
def test_vocabulary_round_trips_through_lookup_and_file(text, tmp_path):
    vocabulary = vocab.vocabulary_of(text)
    assert vocabulary == sorted(set(text))
    ids = vocab.encode(text, vocabulary)
    assert ids.dtype == np.uint8 and ids.min() >= 1  # 0 is [UNK]
    np.testing.assert_array_equal(ids, _ids_by_hand(text, vocabulary))
    assert "".join(vocabulary[i - 1] for i in ids) == text
    vocab.write_vocabulary(tmp_path / "v.txt", vocabulary)
    assert vocab.read_vocabulary(tmp_path / "v.txt") == vocabulary
    unknown = vocab.encode("h?", vocabulary)
    assert unknown[1] == 0


def test_ids_take_the_smallest_type_and_long_texts_are_encoded_in_chunks(monkeypatch):
    vocabulary = [chr(c) for c in range(0x100, 0x100 + 300)]  # 301 ids: more than a byte
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(vocabulary + ["?"], size=1000))
    monkeypatch.setattr(vocab, "CHUNK", 64)  # 16 chunks, the last one short
    ids = vocab.encode(text, vocabulary)
    assert ids.dtype == np.uint16 and vocab.id_dtype(65537) == np.uint32
    np.testing.assert_array_equal(ids, _ids_by_hand(text, vocabulary))
    assert vocab.vocabulary_of(text) == sorted(set(text))


def test_windows_are_input_and_next_character_target():
    ids = np.arange(1, 200, dtype=np.int64)  # distinct ids: position is recoverable
    inputs, targets = next(iter(char_dataset.training_dataset(ids, 7, 16, seed=1)))
    inputs, targets = inputs.numpy(), targets.numpy()
    assert inputs.shape == targets.shape == (16, 7)
    np.testing.assert_array_equal(targets, inputs + 1)  # shifted by one character
    np.testing.assert_array_equal(np.diff(inputs, axis=1), 1)  # consecutive text
    assert targets.max() <= ids.max()
    again = next(iter(char_dataset.training_dataset(ids, 7, 16, seed=1)))[0].numpy()
    np.testing.assert_array_equal(again, inputs)  # seeded


def test_validation_is_the_held_out_tail_and_every_char_is_a_target_once():
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    corpus = char_dataset.prepare_corpus(text, seq_length=10, validation_fraction=0.05)
    whole = vocab.encode(text, corpus.vocabulary)
    assert len(corpus.validation_ids) == 50
    np.testing.assert_array_equal(np.concatenate([corpus.train_ids, corpus.validation_ids]), whole)
    batches = char_dataset.validation_dataset(corpus.validation_ids, 10, 2)
    targets = np.concatenate([t.numpy().ravel() for _, t in batches])
    np.testing.assert_array_equal(targets, corpus.validation_ids[1:41])
    train = char_dataset.training_dataset(np.arange(len(corpus.train_ids)), 10, 64, seed=0)
    largest = max(int(tf.reduce_max(t)) for _, t in train.take(20))
    assert largest < len(corpus.train_ids)  # training never reads the held-out tail


def test_corpus_shorter_than_a_window_is_rejected():
    with pytest.raises(UsageError, match="too short for windows of seq_length \\+ 1 = 31"):
        char_dataset.prepare_corpus("x" * 300, seq_length=30)


def test_training_stream_can_start_at_a_later_batch():
    ids = np.arange(500)
    stream = char_dataset.training_dataset(ids, 7, 16, seed=1)
    later = char_dataset.training_dataset(ids, 7, 16, seed=1, start_batch=3)
    for (x1, y1), (x2, y2) in zip(stream.skip(3).take(2), later.take(2), strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
