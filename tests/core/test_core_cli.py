"""core/cli.py: one log format, one error exit, each default shown once in --help."""

from __future__ import annotations

import argparse
import logging
import re

import pytest

from core.cli import EXIT_ERROR, HelpFormatter, error_exit


def _help(*options) -> str:
    p = argparse.ArgumentParser(prog="x", formatter_class=HelpFormatter)
    for args, kwargs in options:
        p.add_argument(*args, **kwargs)
    return " ".join(p.format_help().split())


def test_help_shows_each_default_once():
    text = _help(
        (("--lr",), {"type": float, "default": 0.5, "help": "rate"}),
        (("--epochs",), {"type": int, "default": None, "help": "epochs (default 20; 3 on demo)"}),
        (("--data",), {"nargs": "+", "default": [], "help": "folders (default: demo data)"}),
        (("--flag",), {"action": "store_true", "help": "a switch"}),
        (("--out",), {"default": None, "help": "folder"}),
    )
    assert "rate (default: 0.5)" in text
    assert "(default 20; 3 on demo) --data" in text
    assert "(default: demo data) --flag" in text
    assert "None" not in text and "False" not in text and "[]" not in text


def test_train_help_names_no_default_twice(capsys):
    from training.cli import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = capsys.readouterr().out
    options = re.split(r"\n  (?=-)", text)
    assert len(options) > 20
    for option in options:
        assert option.lower().count("default") <= 1, option
    for empty in ("(default: None)", "(default: [])", "(default: False)"):
        assert empty not in text


def test_error_exit_logs_one_line_and_returns_2(caplog):
    with caplog.at_level(logging.ERROR):
        assert error_exit(ValueError("model.h5 does not exist")) == EXIT_ERROR == 2
    assert caplog.records[-1].getMessage() == "model.h5 does not exist"
