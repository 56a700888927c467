"""trainers/core/heap.py: memory a step frees stays in the heap; the next step faults no pages."""

import json
import os
import platform

import pytest

from trainers.core import heap

# Faults while 8 MiB are allocated, written and freed, three times: fresh pages fault once each.
REUSE_PROBE = """
import ctypes, json, resource
from trainers.core.heap import keep_freed_memory

kept = keep_freed_memory() if {keep} else None
libc, size = ctypes.CDLL(None), 8 * 2**20
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
faults = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({{"kept": kept, "faults": faults}}))
"""

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")


@pytest.fixture
def no_malloc_settings(monkeypatch):
    """An environment without the user's own malloc settings (they would take precedence)."""
    for name in [n for n in os.environ if n.startswith("MALLOC_")] + ["GLIBC_TUNABLES"]:
        monkeypatch.delenv(name, raising=False)


def _probe(fresh_python, keep):
    out = fresh_python(REUSE_PROBE.format(keep=keep)).stdout
    return json.loads(out.strip().splitlines()[-1])


@glibc_only
@pytest.mark.usefixtures("no_malloc_settings")
def test_freed_memory_is_reused_without_faulting_pages_again(fresh_python):
    pages = 8 * 2**20 // 4096
    kept = _probe(fresh_python, keep=True)
    assert kept["kept"] is True
    assert kept["faults"][0] >= pages * 0.9  # the first use touches fresh pages
    assert max(kept["faults"][1:]) < pages * 0.05  # then the freed block is reused
    defaults = _probe(fresh_python, keep=False)
    assert defaults["faults"][1] >= pages * 0.9  # glibc's defaults fault them in again


@pytest.mark.parametrize("name, value", [("MALLOC_ARENA_MAX", "2"),
                                         ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0")])
def test_the_users_own_malloc_settings_win(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    monkeypatch.setattr(heap.ctypes, "CDLL", lambda _: pytest.fail("mallopt was called"))
    assert heap.keep_freed_memory() is False


@pytest.mark.usefixtures("no_malloc_settings")
def test_without_glibc_nothing_is_set(monkeypatch):
    class Musl:  # a C library without glibc's gnu_get_libc_version
        def mallopt(self, parameter, value):
            pytest.fail("mallopt was called")

    monkeypatch.setattr(heap.ctypes, "CDLL", lambda _: Musl())
    assert heap.keep_freed_memory() is False
