"""Keep the memory a training step frees for the next step, instead of handing it back.

A training step allocates and frees tens of megabytes of tensors of a few megabytes each. With
glibc's defaults, much of that goes back to the kernel (``munmap``, or a trimmed heap), and the
next step faults fresh zeroed pages in again: about 4 500 page faults and 15–20 ms of kernel time
per step of the text model at two threads (docs/benchmarks.md). Raising glibc's
mmap threshold to its largest value and its trim threshold to 1 GiB keeps those blocks in the
heap for reuse. The cost: the process keeps its peak memory until it exits, the usual trade of a
training process.
"""

import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest: blocks above it are always mapped afresh
TRIM_THRESHOLD = 2**30


def keep_freed_memory():
    """Raise glibc's mmap and trim thresholds for this process; True if they were set.

    Does nothing (False) without glibc (macOS, musl) or when the user tunes malloc already
    (a ``MALLOC_…_`` variable, or ``glibc.malloc`` in ``GLIBC_TUNABLES``): theirs wins.
    """
    if (any(name.startswith("MALLOC_") for name in os.environ)
            or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (glibc's own symbol: is this glibc?)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
