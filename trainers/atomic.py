"""Atomic writes: a file or folder appears complete under its final name, or not at all."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(final_path):
    """Yield a temporary sibling path; on success rename it to ``final_path``, else remove it.

    Works for files and folders: the caller writes whatever it likes at the yielded path.
    """
    final_path = Path(final_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{final_path.name}.", dir=final_path.parent))
    tmp_path = scratch / final_path.name
    try:
        yield tmp_path
        os.replace(tmp_path, final_path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_figure(figure, path):
    """Save a matplotlib figure atomically; the format follows the suffix (.png, .svg)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip("."), bbox_inches="tight", dpi=120)
