"""What every entry point shares: one log format, one error exit, one help formatter.

``train.py``, ``drive.py``, ``evaluate.py``, ``export.py``, ``slim.py``, ``video.py``
and the ``python -m`` tools set up logging with :func:`setup_logging` (one format:
time, level, logger, message), end on an expected error with :func:`error_exit` (the
error logged as one line, exit status 2, argparse's own status for a bad command
line) and show defaults in ``--help`` with :class:`HelpFormatter`, which shows each
default once; :func:`fields_from` builds a settings dataclass back from the options
named after its fields.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import fields

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%H:%M:%S"
#: Exit status of an expected error (a missing file, a bad model, an occupied folder),
#: the same as argparse's for a bad command line.
EXIT_ERROR = 2


def setup_logging(*, verbose: bool = False, quiet: bool = False) -> None:
    """Log to stderr in the one format: DEBUG with ``verbose``, WARNING with ``quiet``."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt=DATE_FORMAT)


def error_exit(exc: BaseException | str, log: logging.Logger | None = None) -> int:
    """Log ``exc`` as one error line and return :data:`EXIT_ERROR` for ``main`` to return."""
    (log or logging.getLogger()).error("%s", exc)
    return EXIT_ERROR


def fields_from(cls: type, args: argparse.Namespace) -> dict:
    """The parsed options named after fields of dataclass ``cls``, by field name (the
    options that set a settings dataclass carry its field names as their ``dest``)."""
    return {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds ``(default: X)`` to an option's help once, and only where it says something.

    Not where the help already states its default in words (it mentions "default"),
    nor for defaults that are no value: ``None``, ``False`` (a flag), an empty list.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            "default" in text.lower()
            or action.default is None
            or action.default is False
            or action.default == []
            or action.default == ()
            or action.default is argparse.SUPPRESS
        ):
            return action.help
        return super()._get_help_string(action)
