"""Atomic writes: a file or folder appears complete under its final name, or not at all."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def scratch_folder(parent, name):
    """Yield a new hidden folder ``parent/.<name>.*``, deleted when the block ends, however."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=parent))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(final_path):
    """Yield a temporary sibling path; on success rename it to ``final_path``, else remove it.

    Works for files and folders: the caller writes whatever it likes at the yielded path.
    """
    final_path = Path(final_path)
    with scratch_folder(final_path.parent, final_path.name) as scratch:
        tmp_path = scratch / final_path.name
        yield tmp_path
        os.replace(tmp_path, final_path)


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_figure(figure, path):
    """Save a matplotlib figure atomically; the format follows the suffix (.png, .svg)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip("."), bbox_inches="tight", dpi=120)
