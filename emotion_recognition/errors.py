"""One exception type for problems a user can fix, and one way to report it from a script."""

import os
import sys
from contextlib import contextmanager
from pathlib import Path


# The exit status of a command whose reader stopped reading (a closed pipe), as shells report a program
# that SIGPIPE ended: `head -1` took what it wanted, nothing went wrong.
CLOSED_PIPE_EXIT = 141


class UserError(Exception):
    """A problem with the user's input (a missing file, a bad folder, ...).

    Its message is one line that names the file or folder and says what to do, in terms of the
    library. `reason` names the kind of problem, so that a command-line front end can add advice in
    terms of its own options (friendly_errors' `advice`). The scripts print it without a traceback
    and exit with `exit_code` (2 unless said otherwise).
    """

    def __init__(self, message, exit_code=2, reason=None):
        super().__init__(message)
        self.exit_code = exit_code
        self.reason = reason


@contextmanager
def friendly_errors(debug=False, advice=None):
    """Turn UserError (and Ctrl-C) into one clear line on stderr and a non-zero exit; a reader that
    closed stdout's pipe ends the command quietly.

    advice maps an error's `reason` to what the user of this command should do, in the command's
    own terms (its options), appended to the message. With debug=True the full traceback is shown
    instead, for bug reports.
    """
    try:
        yield
    except UserError as error:
        if debug:
            raise
        extra = (advice or {}).get(error.reason)
        print(f"error: {error}" + (f"; {extra}" if extra else ""), file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        from .runtime import close_stdout_quietly

        close_stdout_quietly()
        sys.exit(CLOSED_PIPE_EXIT)


def check_writable(path, option="output path"):
    """Raise UserError unless a file can be written at `path` (its folder must exist).

    option names what the path was given as (a command-line option, in a script)."""
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: folder {parent} does not exist; create it or choose another {option}")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"cannot write {path}: permission denied; choose another {option}")


def ensure_folder(folder, option="folder"):
    """Create `folder` if needed; raise UserError if that fails or it cannot be written into."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create folder {folder} ({error.strerror}); choose another {option}") from error
    if not os.access(folder, os.W_OK):
        raise UserError(f"cannot write into {folder}: permission denied; choose another {option}")
