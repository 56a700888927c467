"""Shared fixtures: a fresh Python process for reload tests, and quiet TensorFlow."""

import os
import subprocess
import sys
import textwrap

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras_models.backend  # noqa: E402,F401  (one Keras for the whole test session)


def run_fresh_python(code, *, cwd=None, env=None, timeout=300):
    """Run ``code`` in a new interpreter; return CompletedProcess (text), raising on failure.

    The child starts with a clean ``TF_USE_LEGACY_KERAS`` so a test can show what a process
    that imports only TensorFlow sees.
    """
    child_env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    child_env.update(env or {})
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd, env=child_env, capture_output=True, text=True, timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(f"child failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


@pytest.fixture
def fresh_python():
    """The ``run_fresh_python`` helper as a fixture."""
    return run_fresh_python


def run_cli(*args, cwd=None, timeout=600):
    """Run ``python -m trainers.cli ARGS`` in a subprocess; return CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, "-m", "trainers.cli", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def cli():
    """The ``run_cli`` helper as a fixture: the real command line in a subprocess."""
    return run_cli


@pytest.fixture
def lstm_cell_calls(monkeypatch):
    """A list that grows by one each time ``LSTMCell.call`` runs (per-step, not fused)."""
    from keras_models.layers.lstm_cell import LSTMCell

    calls, per_step_call = [], LSTMCell.call

    def counted_call(self, inputs, states):  # the same signature: Keras reads it at build time
        calls.append(1)
        return per_step_call(self, inputs, states)

    monkeypatch.setattr(LSTMCell, "call", counted_call)
    return calls


@pytest.fixture(scope="session", autouse=True)
def native_lstm_loop():
    """Build (or load) the compiled LSTM loop once, before a test's subprocess would need it."""
    from keras_models.ops.native_lstm import recurrence_ops

    return recurrence_ops()
