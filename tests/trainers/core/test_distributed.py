"""``--strategy mirrored`` over two logical CPUs and ``multiworker`` as two local processes.

"First-step loss" is the first row of ``history.csv``: for text with ``--log-every 1`` the loss
of the first global batch under the initial weights; for memory (which logs every 10 steps)
the mean loss of the first 10 steps. Same global batch and seed → same numbers (to 1e-5) as
one device. One subprocess runs the single-device and mirrored runs (the CPU must be split
before TensorFlow starts); it also repeats the single-device runs with ``--deterministic`` to
check that two runs give identical curves value for value.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from run_helpers import MEMORY, TEXT, free_ports, history_losses, write_corpus

TEXT_RUN = [*TEXT, "--no-export"]  # exports are checked on the memory runs (faster)

DRIVER = textwrap.dedent(
    """
    import json, sys
    from trainers.core import distribute
    if sys.argv[1] == "split":
        distribute.split_cpu(2)
    from trainers.cli import main
    codes = [main(argv) for argv in json.loads(sys.argv[2])]
    sys.exit(max(codes))
    """
)


def _driver(split, runs, cwd, env=None):
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, split, json.dumps(runs)], cwd=cwd,
        env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process, timeout=400):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"exit {process.returncode}:\n{err[-4000:]}"
    return out


@pytest.fixture(scope="module")
def single_and_mirrored(tmp_path_factory):
    """History losses of single-device runs (twice) and mirrored runs, memory and text."""
    cwd = tmp_path_factory.mktemp("mirrored")
    write_corpus(cwd / "corpus.txt")
    names = {
        "memory_a": MEMORY, "memory_b": MEMORY,
        "memory_mirrored": [*MEMORY, "--strategy", "mirrored"],
        "text_a": TEXT_RUN, "text_b": TEXT_RUN,
        "text_mirrored": [*TEXT_RUN, "--strategy", "mirrored"],
    }
    runs = [[*argv, "--deterministic", "--runs-dir", name, "--saved-models", f"{name}_models"]
            for name, argv in names.items()]
    _finish(_driver("split", runs, cwd))
    return {name: history_losses(cwd / name) for name in names}


@pytest.mark.parametrize("task", ["memory", "text"])
def test_same_seed_same_command_gives_identical_curves(single_and_mirrored, task):
    a, b = single_and_mirrored[f"{task}_a"], single_and_mirrored[f"{task}_b"]
    assert len(a) >= 2 and a == b


@pytest.mark.parametrize("task", ["memory", "text"])
def test_mirrored_on_two_cpus_matches_one_device_and_learns(single_and_mirrored, task):
    single, mirrored = single_and_mirrored[f"{task}_a"], single_and_mirrored[f"{task}_mirrored"]
    assert mirrored[0] == pytest.approx(single[0], abs=1e-5)
    assert len(mirrored) == len(single) and mirrored[-1] < mirrored[0]


def test_two_workers_on_localhost(tmp_path, single_and_mirrored):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        cwd, scratch = tmp_path / f"worker{index}", tmp_path / f"tmp{index}"
        cwd.mkdir()
        scratch.mkdir()
        write_corpus(cwd / "corpus.txt")
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        runs = [[*argv, "--strategy", "multiworker", "--deterministic"]
                for argv in (MEMORY, TEXT_RUN)]
        env = {"TF_CONFIG": json.dumps(tf_config), "TMPDIR": str(scratch)}
        processes.append(_driver("none", runs, cwd, env))
    for process in processes:
        _finish(process)

    chief, worker = tmp_path / "worker0", tmp_path / "worker1"
    for task in ("memory", "text"):
        losses = history_losses(chief / "runs", task)
        assert losses[0] == pytest.approx(single_and_mirrored[f"{task}_a"][0], abs=1e-5)
        assert losses[-1] < losses[0]
    export = chief / "saved_models" / "memory_palindrome_lstm_L2" / "1" / "saved_model.pb"
    assert export.is_file()
    assert sorted(p.name for p in worker.iterdir()) == ["corpus.txt"], "a non-chief wrote"
    assert not any((tmp_path / "tmp1").iterdir()), "the non-chief's scratch folder was kept"
    assert not list(chief.rglob("workertemp*")) and not list(chief.rglob("backup/*"))
