"""The command-line front ends: `emotion-recognition`, `emotion-train`, `emotion-evaluate` and
`emotion-from-csv` once the package is installed, or recognition.py, train.py and evaluate.py in a clone
(from_csv: `python -m emotion_recognition.cli.from_csv`). Each parses its options, calls the library,
and turns the library's errors into one line of advice in terms of its options."""

import argparse

from .. import __version__


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows an option's default where the default says something: not for switches such as
    --json (off unless given), nor for options that do nothing unless given (their help says what then)."""

    def _get_help_string(self, action):
        switch = action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction)
        if action.default is None or switch:
            return action.help
        return super()._get_help_string(action)


def add_standard_options(parser):
    """--debug and --version, which every command has."""
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version and exit")
