"""The seqgraph command line: help, version, one-line errors with exit code 2."""

import argparse

import pytest

from keras_models.utils.errors import UsageError
from keras_models.version import __version__
from trainers import cli
from trainers.core import runtime


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("memory", "text", "graph", "demo"):
        assert command in out


def test_version(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.strip() == f"seqgraph {__version__}"


def test_unknown_subcommand_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["juggle"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "invalid choice: 'juggle'" in err and "--help" in err


def test_usage_error_becomes_one_line_exit_2(capsys):
    def broken_run(args):
        raise UsageError("--steps must be at least 1, got 0; pass a positive number")

    args = argparse.Namespace(command="memory", verbose=False, run=broken_run)
    assert runtime.run_command(args) == 2
    err = capsys.readouterr().err
    assert err == (
        "seqgraph memory: error: --steps must be at least 1, got 0; pass a positive number\n"
    )


def test_real_command_line_bad_value(cli):
    result = cli("demo", "--only", "nonsense")
    assert result.returncode == 2
    assert result.stderr == (
        "seqgraph demo: error: argument --only: invalid choice: 'nonsense' (choose from "
        "'memory', 'text', 'graph') (see 'seqgraph demo --help')\n"
    )
