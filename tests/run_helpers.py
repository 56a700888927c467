"""Tiny memory and text training commands shared by the distributed, fault and robustness tests."""

import csv
import random
import socket
from pathlib import Path

MEMORY = ["memory", "--cells", "lstm", "--lengths", "2", "--seeds", "1", "--steps", "20",
          "--units", "8", "--embedding-dim", "4", "--batch-size", "16", "--heldout-size", "100"]
TEXT = ["text", "train", "--text", "corpus.txt", "--seq-length", "8", "--layers", "1",
        "--units", "8", "--embedding-dim", "4", "--batch-size", "8", "--steps", "4",
        "--log-every", "1", "--sample-length", "10", "--seed", "3"]


def write_corpus(path, words=600):
    """A small seeded English-like text file."""
    rng = random.Random(0)
    vocabulary = "the quick brown fox jumps over a lazy dog and the cat sat on the mat".split()
    Path(path).write_text(" ".join(rng.choice(vocabulary) for _ in range(words)), encoding="utf-8")


def history_file(root, task=""):
    """The one ``history.csv`` under ``root`` from a ``task`` (memory or text) run folder."""
    found = sorted(Path(root).glob(f"{task}*/**/history.csv"))
    assert len(found) == 1, f"expected one history.csv under {root}, found {found}"
    return found[0]


def history_losses(root, task=""):
    """The training-loss column of that ``history.csv``."""
    with open(history_file(root, task), newline="") as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def free_ports(n):
    """``n`` TCP ports on localhost that were free a moment ago (for local TF_CONFIG clusters)."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
