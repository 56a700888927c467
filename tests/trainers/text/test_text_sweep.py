"""``seqgraph text sweep``: the report preset's grid, the summary and plots, HParams logs, resume
after Ctrl-C, worker processes with a diverging run, and the ``--minutes`` budget of a run."""

import csv
import json

from keras_models.backend import tf

import pytest
from run_helpers import TEXT, write_corpus
from tensorboard.plugins.hparams import plugin_data_pb2

from trainers import cli
from trainers.core.callbacks import CheckedBackupAndRestore
from trainers.core.runtime import EXIT_INTERRUPTED
from trainers.text import sweep, sweep_report

SWEEP = ["text", "sweep", *TEXT[2:]]  # the tiny model of text train's tests, one seed
PNG = b"\x89PNG"


def parse(*argv):
    parser = cli.OneLineParser(prog="seqgraph text sweep")
    sweep.add_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


def test_the_report_preset_is_the_one_factor_study_around_the_2x256_model():
    mode, options, configs = sweep.build_sweep(parse("--preset", "report", "--text", "book.txt"))
    assert mode == "one-factor"
    # Factors in the order of TextConfig's fields: sequence length, layers, units, learning rate.
    assert [(c.learning_rate, c.seq_length, c.layers, c.units) for c in configs] == [
        (2e-3, 30, 2, 256),  # the base
        (2e-3, 60, 2, 256), (2e-3, 80, 2, 256),
        (2e-3, 30, 1, 256), (2e-3, 30, 3, 256),
        (2e-3, 30, 2, 64), (2e-3, 30, 2, 128),
        (2e-4, 30, 2, 256), (2e-2, 30, 2, 256),
    ]
    assert {(c.steps, c.log_every, c.text, c.seed, c.embedding_dim) for c in configs} == {
        (2500, 250, "book.txt", 0, 128)}
    assert sweep.run_names(configs, options)[::7] == [
        "seq-length=30,layers=2,units=256,lr=0.002,seed=0",
        "seq-length=30,layers=2,units=256,lr=0.0002,seed=0",
    ]
    # Flags given override the preset; every seed repeats every setting.
    _, _, configs = sweep.build_sweep(parse("--preset", "report", "--steps", "24000",
                                            "--seed", "1", "2"))
    assert len(configs) == 18 and {c.steps for c in configs} == {24000}
    assert [c.seed for c in configs[:4]] == [1, 2, 1, 2]


def _result(accuracy, bits, seconds=10.0):
    return {"val_accuracy": accuracy, "val_bits_per_character": bits,
            "heldout_stream_accuracy": accuracy + 0.05, "steps": 4, "train_seconds": seconds}


def test_summary_averages_seeds_and_names_diverged_runs_and_plots_are_written(tmp_path):
    mode, options, configs = sweep.build_sweep(parse("--units", 8, 16, "--seed", 1, 2))
    names = sweep.run_names(configs, options)
    assert names == ["units=8,seed=1", "units=8,seed=2", "units=16,seed=1", "units=16,seed=2"]
    results = [_result(0.5, 2.0), _result(0.6, 1.8),
               _result(0.7, 1.5, seconds=20.0), {"diverged": "loss became nan at batch 1"}]
    for name in names[:3]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "history.csv").write_text(
            "epoch,seconds,val_accuracy,val_bits_per_character\n0,1.5,0.3,3.0\n1,2.5,0.5,2.0\n")
    written = sweep_report.write_report(configs, names, results, options, mode, tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    # Means and population stds by hand: (0.5 + 0.6) / 2 = 0.55 ± 0.05, (2.0 + 1.8) / 2 = 1.9 ± 0.1.
    rows = [line for line in summary.splitlines() if line.startswith("| 8 |")
            or line.startswith("| 16 |")]
    assert rows == [
        "| 8 | 0.5500 ± 0.0500 | 0.5000 / 0.6000 | 1.900 ± 0.100 | 0.6000 | 4 / 4 | 10 |",
        "| 16 | 0.7000 ± 0.0000 | 0.7000 / diverged | 1.500 ± 0.000 | 0.7500 | 4 / - | 20 |",
    ]
    assert "Shared by every run: `--seq-length 30`, `--layers 2`, `--embedding-dim 128`," in summary
    assert "Best held-out accuracy: 0.7000 (`--units 16`)." in summary
    assert "- `units=16,seed=2` diverged: loss became nan at batch 1" in summary
    assert [p.name for p in written] == ["summary.md", "against_units.png", "wall_time.png"]
    assert all(p.read_bytes()[:4] == PNG for p in written[1:])


def _event_values(log_dir, plugin):
    """``{tag: plugin content}`` of the ``plugin`` summaries in ``log_dir``'s own event files."""
    return {value.tag: value.metadata.plugin_data.content
            for path in sorted(log_dir.glob("events.out.tfevents.*"))
            for event in tf.compat.v1.train.summary_iterator(str(path))
            for value in event.summary.value if value.metadata.plugin_data.plugin_name == plugin}


def _epochs(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_ctrl_c_then_the_same_command_resumes_and_the_sweep_logs_hparams(
    tmp_path, monkeypatch, capsys
):
    write_corpus(tmp_path / "corpus.txt")
    monkeypatch.chdir(tmp_path)
    command = [*SWEEP, "--log-every", "2", "--lr", "0.002", "0.01", "--mode", "one-factor"]
    backup = CheckedBackupAndRestore.on_epoch_end

    def interrupt_the_second_run(self, epoch, logs=None):
        backup(self, epoch, logs)
        if "lr=0.01" in self.backup_dir:
            raise KeyboardInterrupt

    monkeypatch.setattr(CheckedBackupAndRestore, "on_epoch_end", interrupt_the_second_run)
    assert cli.main(command) == EXIT_INTERRUPTED
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    first, second = sweep_dir / "lr=0.002,seed=3", sweep_dir / "lr=0.01,seed=3"
    statuses = [json.loads((d / "status.json").read_text())["status"]
                for d in (sweep_dir, first, second)]
    assert statuses == ["interrupted", "finished", "interrupted"]
    finished_history = (first / "history.csv").read_text()

    monkeypatch.setattr(CheckedBackupAndRestore, "on_epoch_end", backup)
    capsys.readouterr()
    assert cli.main(command) == 0
    out = capsys.readouterr().out
    assert f"Resuming: runs/{sweep_dir.name}" in out
    assert "[1/2] lr=0.002,seed=3: finished earlier, skipped" in out
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [sweep_dir.name]
    assert (first / "history.csv").read_text() == finished_history  # not trained again
    assert _epochs(second) == [1]  # epoch 0's row fell with the interrupt; epoch 0 not rerun
    results = [json.loads((d / "result.json").read_text()) for d in (first, second)]
    assert [(r["resumed"], r["steps"]) for r in results] == [(False, 4), (True, 4)]
    assert not (tmp_path / "saved_models").exists()  # exports only with --export

    summary = (sweep_dir / "summary.md").read_text()
    row = (f"| lr | 0.01 | {results[1]['val_accuracy']:.4f} | "  # one seed: no std, no per seed
           f"{results[1]['val_bits_per_character']:.3f} | ")
    assert row in summary and "±" not in summary
    for name in ("against_lr.png", "wall_time.png"):
        assert (sweep_dir / name).read_bytes()[:4] == PNG

    # HParams: the experiment (swept values, metrics) in the sweep folder, a session per run.
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        _event_values(sweep_dir, "hparams")["_hparams_/experiment"]).experiment
    domains = {h.name: [v.number_value for v in h.domain_discrete.values]
               for h in experiment.hparam_infos if h.name == "learning_rate"}
    assert domains == {"learning_rate": [0.002, 0.01]}
    assert [(m.name.group, m.name.tag) for m in experiment.metric_infos][:2] == [
        ("validation", "epoch_accuracy"), ("validation", "epoch_bits_per_character")]
    session = plugin_data_pb2.HParamsPluginData.FromString(
        _event_values(second / "tensorboard", "hparams")["_hparams_/session_start_info"])
    assert session.session_start_info.hparams["learning_rate"].number_value == 0.01
    assert session.session_start_info.hparams["units"].number_value == 8
    assert _event_values(second / "tensorboard" / "heldout", "scalars").keys() == {
        "stream_accuracy", "stream_bits_per_character"}


def test_jobs_train_in_worker_processes_and_a_diverging_run_is_recorded(
    tmp_path, monkeypatch, capsys
):
    write_corpus(tmp_path / "corpus.txt")
    monkeypatch.chdir(tmp_path)
    # lr 1e38 makes the loss NaN at step 2 (tests/end_to_end/test_faults.py).
    assert cli.main([*SWEEP, "--lr", "0.002", "1e38", "--jobs", "2", "--export"]) == 0
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    good, bad = sweep_dir / "lr=0.002,seed=3", sweep_dir / "lr=1e+38,seed=3"
    assert (good / "worker.log").is_file() and (bad / "worker.log").is_file()
    result = json.loads((good / "result.json").read_text())
    assert result["steps"] == 4 and result["export"] == "saved_models/char_lstm/1"
    diverged = json.loads((bad / "result.json").read_text())["diverged"]
    assert diverged.startswith("loss became nan")
    assert [p.name for p in (tmp_path / "saved_models" / "char_lstm").iterdir()] == ["1"]
    assert f"- `lr=1e+38,seed=3` diverged: {diverged}" in (sweep_dir / "summary.md").read_text()
    assert "lr=1e+38,seed=3: diverged: loss became nan" in capsys.readouterr().out


def test_minutes_stop_a_run_when_its_time_is_spent(tmp_path, monkeypatch):
    write_corpus(tmp_path / "corpus.txt")
    monkeypatch.chdir(tmp_path)
    # A budget far below one step's time: the run stops after its first step, mid-epoch.
    assert cli.main([*TEXT, "--steps", "40", "--log-every", "10", "--minutes", "1e-6",
                     "--no-export"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["steps"] == 1 and _epochs(run_dir) == [0]
    assert "## Step 1 (time budget spent)" in (run_dir / "samples.md").read_text()


@pytest.mark.parametrize("argv, line", [
    (["--lr", "1e-3", "1e-3"], "--lr repeats 0.001; give each value once"),
    (["--minutes", "0"], "--minutes must be a finite number > 0, got 0.0"),
    (["--jobs", "0"], "--jobs is 0; give an integer ≥ 1"),
])
def test_bad_sweep_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, argv,
                                                        line):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["text", "sweep", *argv]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"seqgraph text: error: {line}"]
    assert not list(tmp_path.iterdir())


def test_a_failed_run_starts_over(tmp_path, monkeypatch):
    """A run marked failed (here with an unreadable backup, which would fail it again) is
    trained from scratch in its folder, as ``text train`` starts a failed run anew."""
    write_corpus(tmp_path / "corpus.txt")
    monkeypatch.chdir(tmp_path)
    _, options, configs = sweep.build_sweep(parse(*SWEEP[2:]))
    (name,) = sweep.run_names(configs, options)
    run_dir = tmp_path / "sweep" / name
    (run_dir / "backup" / "chief").mkdir(parents=True)
    (run_dir / "backup" / "chief" / "checkpoint").write_text("garbage")
    (run_dir / "history.csv").write_text("epoch,loss\n0,9.9\n")
    (run_dir / "status.json").write_text('{"status": "failed"}\n')
    lines = []
    (result,) = sweep.run_sweep(configs, [name], tmp_path / "sweep", tmp_path / "models",
                                log=lines.append)
    assert lines[0] == f"[1/1] {name}: failed earlier, started over"
    assert result["steps"] == 4 and not result["resumed"] and _epochs(run_dir) == [0, 1, 2, 3]
