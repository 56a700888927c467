"""The recurrent loop of the LSTM and both peephole cells as compiled TensorFlow ops, built on
first use.

``native_lstm.cc`` (beside this file) holds the loop that must go step by step (one op forward,
one backward, for any of the three cells, with an optional mask), which splits the batch into one
chain per intra-op thread where TensorFlow's per-step matmuls gain little from a second thread,
and a third op for the weight gradients (see docs/benchmarks.md). It is compiled against the
installed TensorFlow with the system's C++ compiler the first time it is needed (about 20 s),
into ``$SEQGRAPH_CACHE`` (default ``~/.cache/seqgraph``) under a key of the source, the
TensorFlow version and the flags, and loaded from there afterwards. ``SEQGRAPH_NATIVE=0`` turns
it off. Without a compiler, or if the build fails, ``recurrence_ops()`` returns None after one
warning line on stderr, and
``FusedLSTM`` keeps its TensorFlow path, which computes the same.

The ops never enter a SavedModel: ``FusedLSTM`` takes the TensorFlow path while one is being
saved, so a process with only TensorFlow can load it (TensorFlow Serving included).
"""

import functools
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from keras_models.backend import tf

from keras_models.utils.atomic import atomic_path

SOURCE = Path(__file__).with_suffix(".cc")
BUILD_SECONDS_LIMIT = 600


def find_compiler():
    """The C++ compiler to build with: ``$CXX``, else ``c++`` or ``g++`` on the PATH, else None."""
    return os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")


def _cpu_flags():
    """``-mavx2 -mfma`` when this CPU has both (Linux), else nothing: Eigen picks its kernels."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    return ["-mavx2", "-mfma"] if {"avx2", "fma"} <= set(flags) else []


def _build_command(compiler, output):
    return [compiler, "-shared", "-fPIC", "-O3", "-DNDEBUG", "-w", *_cpu_flags(),
            *tf.sysconfig.get_compile_flags(), str(SOURCE), "-o", str(output),
            *tf.sysconfig.get_link_flags()]


def _library_path(compiler):
    """Where the build for this source, TensorFlow and set of flags lives."""
    key = hashlib.sha256(SOURCE.read_bytes())
    key.update(" ".join([tf.__version__, *_build_command(compiler, "")]).encode())
    cache = Path(os.environ.get("SEQGRAPH_CACHE", Path.home() / ".cache" / "seqgraph"))
    return cache / "native" / key.hexdigest()[:16] / "lstm_recurrence.so"


def _build(compiler, library):
    """Compile into ``library`` atomically (two processes may build at once); raise on failure."""
    print(f"seqgraph: compiling the native LSTM loop for TensorFlow {tf.__version__} "
          f"(once, about 20 s) into {library.parent}", file=sys.stderr, flush=True)
    with atomic_path(library) as scratch:
        result = subprocess.run(_build_command(compiler, scratch), capture_output=True,
                                text=True, timeout=BUILD_SECONDS_LIMIT)
        if result.returncode != 0:
            raise RuntimeError(result.stderr.strip().splitlines()[-1] if result.stderr
                               else f"{compiler} exited with {result.returncode}")


@functools.cache
def recurrence_ops():
    """The loaded op library or None: ``seqgraph_recurrence``, ``seqgraph_recurrence_grad`` and
    ``seqgraph_weight_gradient``."""
    if os.environ.get("SEQGRAPH_NATIVE", "1") == "0" or tf.config.list_physical_devices("GPU"):
        return None
    compiler = find_compiler()
    try:
        if compiler is None:
            raise RuntimeError("no C++ compiler found (install g++ or set CXX)")
        library = _library_path(compiler)
        if not library.exists():
            library.parent.mkdir(parents=True, exist_ok=True)
            _build(compiler, library)
        return tf.load_op_library(str(library))
    except (OSError, RuntimeError, subprocess.SubprocessError, tf.errors.OpError) as error:
        print(f"seqgraph: warning: the native LSTM loop is unavailable ({error}); FusedLSTM "
              "uses its TensorFlow path, which is slower. SEQGRAPH_NATIVE=0 silences this.",
              file=sys.stderr, flush=True)
        return None
