"""The command-line front ends: `emotion-recognition`, `emotion-train` and `emotion-evaluate` once the
package is installed, or recognition.py, train.py and evaluate.py in a clone. Each parses its options,
calls the library, and turns the library's errors into one line of advice in terms of its options."""

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows an option's default where the default says something: not for switches such as
    --json (off unless given), nor for options that do nothing unless given (their help says what then)."""

    def _get_help_string(self, action):
        switch = action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction)
        if action.default is None or switch:
            return action.help
        return super()._get_help_string(action)
