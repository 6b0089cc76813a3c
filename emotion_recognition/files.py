"""Files written so that a crash midway never leaves a truncated one, and model files checked
before anything heavy is imported."""

import os
import tempfile
import zipfile
from pathlib import Path

from .errors import UserError


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_sibling(path, suffix=".tmp"):
    """A new, empty file in `path`'s folder, with ordinary permissions; returns its name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    os.chmod(name, 0o666 & ~_umask())  # mkstemp makes files private; these are ordinary files
    return name


def replace_atomic(path, write, suffix=".tmp"):
    """Call write(temporary name), then rename the result onto `path` in one step.

    The temporary file sits in the same folder (a rename across file systems is not atomic) and is
    removed if `write` fails, so `path` holds either its old content or the complete new one.
    """
    name = temporary_sibling(path, suffix)
    try:
        write(name)
        os.replace(name, path)
    finally:
        if os.path.exists(name):
            os.remove(name)


def write_atomic(path, content):
    """Write bytes or text to `path` atomically."""
    data = content.encode() if isinstance(content, str) else content
    replace_atomic(path, lambda name: Path(name).write_bytes(data))


def check_model_file(path):
    """Raise UserError unless `path` is an existing .keras archive (a zip file)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} not found; train one with 'python train.py', or use the "
                        "shipped emotion_detection.keras")
    if not zipfile.is_zipfile(path):
        raise UserError(f"cannot load model file {path}: it is not a Keras .keras file (not a zip archive)")
