"""The bad-input sweep of docs/robustness.md: every row of its first table runs here as written.

Each bad input must give exit code 2 and exactly one line on stderr (no traceback), and leave
nothing half-written: no new run folder, no export. Cases run in-process through
``trainers.cli.main``; only the unreachable-worker case needs its own process.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from run_helpers import TEXT, write_corpus

from trainers.cli import main


def _files(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))


@pytest.fixture(scope="module")
def memory_export(tmp_path_factory):
    """A tiny sequence-memory classifier export, as ``seqgraph memory`` writes them."""
    from keras_models.models.memory_classifier import build_memory_model
    from keras_models.serving.memory_classifier import serving_signatures
    from trainers.core.export import export_saved_model

    model = build_memory_model("lstm", vocab_size=4, num_classes=2, units=4, embedding_dim=2)
    model(np.zeros((1, 5), np.int32))
    return export_saved_model(model, "memory_palindrome_lstm_L1",
                              signatures=serving_signatures(model),
                              root=tmp_path_factory.mktemp("memory_export"))


def _write_inputs(folder, memory_export):
    """The bad files of the sweep, written into ``folder``."""
    shutil.copytree(memory_export, folder / "saved_models" / "memory_palindrome_lstm_L1" / "1")
    (folder / "empty.txt").write_text("")
    (folder / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (folder / "latin1.txt").write_bytes("café au lait ".encode("latin-1") * 50)
    (folder / "short.txt").write_text("abc")
    (folder / "no_text").mkdir()
    os.mkfifo(folder / "pipe")  # never opened: reading it would wait for a writer
    with open(folder / "huge.txt", "wb") as f:  # sparse: no disk space, no reading
        f.truncate(3 * 2**30 + 1)
    (folder / "planetoid").mkdir()
    (folder / "planetoid" / "ind.cora.x").write_bytes(b"not a pickle")


DOC = Path(__file__).resolve().parents[2] / "docs" / "robustness.md"


def documented_rows(heading):
    """``(bad input, argv, exit code, line)`` of each row of the table under ``## heading`` in
    docs/robustness.md; the command is the first backticked part of its cell."""
    section = DOC.read_text(encoding="utf-8").split(f"## {heading}\n", 1)[1].split("\n## ")[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[1].startswith("`seqgraph "):
            continue
        command = cells[1].split("`")[1]
        rows.append((cells[0], shlex.split(command)[1:], int(cells[2]), cells[3]))
    return rows


def matches_documented(line, documented):
    """``line`` equals the documented line, where ``…`` in the documentation stands for any text."""
    pattern = ".*".join(re.escape(part) for part in documented.split("…"))
    return re.fullmatch(pattern, line) is not None


BAD_INPUTS = documented_rows("Files, hyperparameters, datasets (exit 2, one line, nothing written)")


def _assert_one_line_error(capsys, code, expected):
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert expected in lines[0], lines[0]
    return lines[0]


def test_the_documented_sweep_is_all_here():
    assert len(BAD_INPUTS) >= 20
    assert matches_documented("a b 3 c", "a … c") and not matches_documented("a b", "a … c")


@pytest.mark.parametrize("argv, code, documented", [row[1:] for row in BAD_INPUTS],
                         ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_gives_the_documented_line_and_writes_nothing(
    argv, code, documented, tmp_path, monkeypatch, capsys, memory_export
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    _write_inputs(tmp_path, memory_export)
    before = _files(tmp_path)
    assert main(argv) == code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert matches_documented(lines[0], documented), f"{lines[0]}\n!=\n{documented}"
    assert _files(tmp_path) == before


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder with a finished tiny text run and its export (saved_models/char_lstm/1)."""
    folder = tmp_path_factory.mktemp("trained")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        write_corpus(folder / "corpus.txt")
        assert main([*TEXT, "--steps", "2"]) == 0
    finally:
        os.chdir(cwd)
    return folder


def _break_saved_model(model, how):
    if how == "corrupt saved_model.pb":
        (model / "saved_model.pb").write_bytes(b"garbage")
    elif how == "truncated variables":
        data = next((model / "variables").glob("*.data-*"))
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif how == "missing variables":
        shutil.rmtree(model / "variables")
    else:  # a Keras model export has no text-generator signature
        (model / "saved_model.pb").write_bytes(b"")


@pytest.mark.parametrize(
    "how", ["corrupt saved_model.pb", "truncated variables", "missing variables", "empty pb"]
)
def test_broken_saved_model_is_one_line(trained, how, tmp_path, monkeypatch, capsys):
    model = tmp_path / "model"
    shutil.copytree(trained / "saved_models" / "char_lstm" / "1", model)
    _break_saved_model(model, how)
    monkeypatch.chdir(tmp_path)
    line = _assert_one_line_error(
        capsys, main(["text", "sample", "--model", str(model), "--prompt", "the"]),
        "is not a readable text-generator SavedModel",
    )
    assert "export it again" in line


def test_unknown_prompt_characters_are_generated_from(trained, capsys):
    model = trained / "saved_models" / "char_lstm" / "1"
    assert main(["text", "sample", "--model", str(model), "--prompt", "Zé€", "--length", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("Zé€") and len(out[0]) == 3 + 5


def test_sampling_flags_reproduce_a_sample_and_the_export_limit_is_one_line(trained, capsys):
    model = trained / "saved_models" / "char_lstm" / "1"
    sample = ["text", "sample", "--model", str(model), "--prompt", "the", "a dog", "--length",
              "30", "--temperature", "1", "--top-k", "5", "--top-p", "0.9", "--seed", "4",
              "--stop", " o", "."]
    assert main(sample) == 0
    first = capsys.readouterr().out
    assert main(sample) == 0 and capsys.readouterr().out == first
    for line, prompt in zip(first.splitlines(), ["the", "a dog"], strict=True):
        text = line[len(prompt):]
        ends = [text.find(stop) + len(stop) for stop in (" o", ".") if stop in text]
        assert line.startswith(prompt) and len(text) == min(ends, default=30)
    line = _assert_one_line_error(
        capsys, main(["text", "sample", "--model", str(model), "--length", "10001"]),
        "--length must be at most 10000 for")
    assert line.endswith("(exported with seqgraph text train --max-length 10000), got 10001")


def test_an_export_older_than_the_sampling_options_still_answers(tmp_path, capsys):
    """An export with only ``serving_default(prompt, length, temperature)``, as before
    ``generate``: plain requests work, the newer options are one line."""
    from keras_models.backend import tf

    from keras_models.text.generator import LENGTH, PROMPT, TEMPERATURE

    class Previous(tf.Module):
        @tf.function(input_signature=[PROMPT, LENGTH, TEMPERATURE])
        def serving_default(self, prompt, length, temperature):
            return {"generated": tf.strings.substr(prompt, 0, length)}

    module = Previous()
    tf.saved_model.save(module, str(tmp_path / "old"), signatures={
        "serving_default": module.serving_default})
    assert main(["text", "sample", "--model", str(tmp_path / "old"), "--prompt", "abc",
                 "--length", "2"]) == 0
    assert capsys.readouterr().out == "abcab\n"
    _assert_one_line_error(
        capsys, main(["text", "sample", "--model", str(tmp_path / "old"), "--top-p", "0.5"]),
        f"{tmp_path / 'old'} predates --top-k, --top-p, --stop and --seed; export it again with "
        "seqgraph text train")


@pytest.mark.parametrize("how", ["corrupt", "truncated", "data cut short"])
def test_broken_backup_is_one_line_on_resume(trained, how, tmp_path, monkeypatch, capsys):
    """An unfinished run whose backup is unreadable: the rerun says so instead of a traceback."""
    shutil.copytree(trained, tmp_path / "t", ignore=shutil.ignore_patterns("saved_models"))
    monkeypatch.chdir(tmp_path / "t")
    (run,) = Path("runs").iterdir()
    (run / "status.json").write_text(json.dumps({"status": "interrupted"}))
    checkpoints = run / "backup" / "chief"
    checkpoints.mkdir(parents=True)
    (checkpoints / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-1"\nall_model_checkpoint_paths: "ckpt-1"\n'
    )
    if how == "data cut short":  # a real checkpoint whose data file a crash left incomplete
        import tensorflow as tf

        epoch = tf.Variable(tf.constant(1, tf.int64))
        tf.train.Checkpoint(ckpt_saved_epoch=epoch).write(str(checkpoints / "ckpt-1"))
        data = checkpoints / "ckpt-1.data-00000-of-00001"
        data.write_bytes(data.read_bytes()[:1])
    else:
        (checkpoints / "ckpt-1.index").write_bytes(b"garbage" if how == "corrupt" else b"")
        (checkpoints / "ckpt-1.data-00000-of-00001").write_bytes(b"")
    line = _assert_one_line_error(capsys, main([*TEXT, "--steps", "2"]), "cannot be read")
    assert str(run.resolve() / "backup") in line and "run the same command again" in line
    assert list(Path("runs").iterdir()) == [run] and not Path("saved_models").exists()
    assert json.loads((run / "status.json").read_text())["status"] == "failed"


def test_unreachable_worker_fails_in_bounded_time(tmp_path):
    import socket

    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workers = ["127.0.0.1:0", f"127.0.0.1:{port}"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        workers[0] = f"127.0.0.1:{s.getsockname()[1]}"
    tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": 0}}
    env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "SEQGRAPH_CLUSTER_TIMEOUT": "3"}
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "trainers.cli", "memory", "--strategy", "multiworker"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )
    assert time.monotonic() - start < 200
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "seqgraph: error: the workers in TF_CONFIG did not all answer within 3 s; start the "
        "command on every worker listed (or fix the addresses, or raise "
        "SEQGRAPH_CLUSTER_TIMEOUT)"
    )
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())
