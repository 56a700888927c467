"""Checks that run before any training, so that a command fails in its first second, not after
hours: its output folders can be written, and its batches fit in this machine's memory.

Both raise ``UsageError`` naming the flag and the fix, and write nothing.
"""

import os
import tempfile
from pathlib import Path

from keras_models.utils.errors import UsageError, require


def check_output_folders(folders):
    """Each ``{flag: path}`` is a folder that exists or can be created, and can be written to.

    A path that does not exist yet is judged by its nearest existing parent, which must be a
    writable folder; nothing is created. Writability is probed with an unnamed temporary file
    (``O_TMPFILE`` where available), which also catches read-only mounts that permission bits
    do not show.
    """
    for flag, path in folders.items():
        path = Path(path)
        existing = next(p for p in (path, *path.parents) if os.path.lexists(p))
        if not existing.is_dir():
            if existing == path:
                raise UsageError(f"{flag} {path} exists and is not a folder; give a folder path")
            raise UsageError(f"{flag} {path} cannot be created: {existing} is not a folder; "
                             "give a folder path")
        try:
            with tempfile.TemporaryFile(dir=existing):
                pass
        except OSError as error:
            problem = "is not writable" if existing == path else f"cannot be created in {existing}"
            raise UsageError(f"{flag} {path} {problem} ({error.strerror}); give a folder you can "
                             "write to") from None


def physical_memory():
    """This machine's memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_in_memory(flag, value, needed_bytes, how):
    """``needed_bytes`` (estimated as ``how`` says) must not exceed this machine's memory."""
    total = physical_memory()
    require(total is None or needed_bytes <= total,
            f"{flag} {value} needs about {needed_bytes / 2**30:,.0f} GiB ({how}); this machine "
            f"has {total / 2**30 if total else 0:.0f} GiB of memory: give a smaller {flag}")
