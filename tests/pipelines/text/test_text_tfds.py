"""The ``local_text`` TFDS builder: local files served by ``tfds.load`` without the network."""

import socket

import pytest
import tensorflow_datasets as tfds

from keras_models.utils.errors import UsageError
from pipelines.text.corpus import load_corpus
from pipelines.text.tfds_builder import prepare_local_text


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_local_text_is_served_by_tfds_load_offline(tmp_path, offline):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "b_second.txt").write_bytes("\ufeffZweites Buch: Größe.\r\n".encode())
    (manual / "a_first.txt").write_text("First book.", encoding="utf-8")
    prepare_local_text(manual, data_dir=tmp_path / "tfds")

    examples = list(tfds.load("local_text", split="train", data_dir=tmp_path / "tfds"))
    names = sorted(e["name"].numpy().decode() for e in examples)
    assert names == ["a_first.txt", "b_second.txt"]
    texts = {e["name"].numpy().decode(): e["text"].numpy().decode() for e in examples}
    assert texts["b_second.txt"] == "Zweites Buch: Größe.\n"  # BOM dropped, CRLF normalised
    corpus = load_corpus(tfds_name="local_text", data_dir=tmp_path / "tfds")
    assert corpus == "\n".join(e["text"].numpy().decode() for e in examples)


def test_missing_manual_folder_is_one_clear_error(tmp_path, offline):
    with pytest.raises(UsageError, match="manual does not exist or is empty; put the UTF-8"):
        load_corpus(tfds_name="local_text", data_dir=tmp_path / "tfds")
