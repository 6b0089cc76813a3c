"""One exception type for problems a user can fix, and one way to report it from a script."""

import sys
from contextlib import contextmanager


class UserError(Exception):
    """A problem with the user's input (a missing file, a bad folder, ...).

    Its message is one line that names the file or folder and says what to do. The command-line
    scripts print it without a traceback and exit with `exit_code` (2 unless said otherwise).
    """

    def __init__(self, message, exit_code=2):
        super().__init__(message)
        self.exit_code = exit_code


@contextmanager
def friendly_errors(debug=False):
    """Turn UserError (and Ctrl-C) into one clear line on stderr and a non-zero exit.

    With debug=True the full traceback is shown instead, for bug reports.
    """
    try:
        yield
    except UserError as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        sys.exit(130)
