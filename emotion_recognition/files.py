"""Files written so that a crash midway never leaves a truncated one, and what a model file records
about itself, checked before anything heavy is imported."""

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

from .config import CLASS_NAMES, INPUT_SHAPE, MODEL_RECORD_NAME
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


def write_json_atomic(path, value):
    write_atomic(path, json.dumps(value, indent=2) + "\n")


def save_figure(figure, path, dpi=110):
    """Write a Matplotlib figure as an image file (its format from the suffix), atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi)
    write_atomic(path, buffer.getvalue())


# --- What a model file says about itself ----------------------------------------------------------

def model_record():
    """The record this project adds to every .keras file it writes: the labels and the input contract."""
    return {
        "class_names": list(CLASS_NAMES),
        "input_shape": list(INPUT_SHAPE),
        "input_pixels": "grayscale, raw values 0-255 (the model rescales them itself)",
        "output": "softmax probabilities in class_names order",
    }


def add_model_record(keras_file):
    """Append the record to a freshly written .keras archive (Keras ignores entries it does not know)."""
    with zipfile.ZipFile(keras_file, "a") as archive:
        archive.writestr(MODEL_RECORD_NAME, json.dumps(model_record(), indent=2))


def read_model_record(keras_file):
    """The record inside a .keras file, or None for a model saved before records existed."""
    with zipfile.ZipFile(keras_file) as archive:
        if MODEL_RECORD_NAME not in archive.namelist():
            return None
        try:
            return json.loads(archive.read(MODEL_RECORD_NAME))
        except ValueError:
            return {}


def saved_keras_version(keras_file):
    """The Keras version that wrote a .keras file (its metadata.json), or None if it does not say."""
    try:
        with zipfile.ZipFile(keras_file) as archive:
            return json.loads(archive.read("metadata.json")).get("keras_version")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def check_model_file(path):
    """Raise UserError unless `path` is a .keras archive whose recorded labels (if any) are ours."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} not found; train one, or use the shipped emotion_detection.keras")
    if not zipfile.is_zipfile(path):
        raise UserError(f"cannot load model file {path}: it is not a Keras .keras file (not a zip archive)")
    record = read_model_record(path)
    if record is not None and record.get("class_names") != list(CLASS_NAMES):
        raise UserError(f"model file {path} predicts the classes {record.get('class_names')}, not this project's "
                        f"{list(CLASS_NAMES)} in that order; its answers would be mislabelled")
    return record
