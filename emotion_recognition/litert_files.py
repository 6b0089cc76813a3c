"""A model file's LiteRT form: made from the .keras file, checked against it, and found again by the
.keras file's SHA-256, so that it is used only when it comes from exactly that file:
1. beside the model: `<name>.tflite`, with `<name>.tflite.json` recording the .keras file's SHA-256
   (the shipped model has both; `write_litert_beside` makes them);
2. in the cache: `~/.cache/emotion-recognition/<name>-<sha256 prefix>.tflite` ($XDG_CACHE_HOME, or
   $EMOTION_RECOGNITION_CACHE for the folder itself).
Either way recognition runs on the standalone LiteRT runtime, never importing TensorFlow. Only a model
with no LiteRT form yet is converted, once, with TensorFlow. The conversion quantizes the weights to
int8 (dynamic-range quantization: input and output stay float), a quarter of the size, for a tenth of
a point of accuracy (docs/speed.md has the figures).
"""

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from .classifier import INTERPRETER_THREADS, KerasClassifier, LiteRTClassifier
from .config import INPUT_SHAPE
from .errors import UserError
from .files import check_model_file, write_atomic, write_json_atomic
from .runtime import native_output_silenced

# The converted model must agree with Keras this closely on a probe batch, or it is not used: int8
# weights move the probabilities far less (docs/speed.md), a broken conversion far more.
MAX_DEVIATION = 0.02


def cache_dir():
    if os.environ.get("EMOTION_RECOGNITION_CACHE"):
        return Path(os.environ["EMOTION_RECOGNITION_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "emotion-recognition"


def file_sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def beside_paths(model_path):
    """The LiteRT file kept beside a .keras model, and the record of which .keras it was made from."""
    model_path = Path(model_path)
    tflite = model_path.with_suffix(".tflite")
    return tflite, tflite.with_name(tflite.name + ".json")


def cached_path(model_path, digest):
    return cache_dir() / f"{Path(model_path).stem}-{digest[:16]}.tflite"


def convert_to_litert(model, quantize=True):
    """The LiteRT flatbuffer of a Keras model, weights quantized to int8 unless quantize=False
    (needs TensorFlow)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        # Without calibration data this is dynamic-range quantization: int8 weights and float input
        # and output, so the model contract is unchanged.
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with native_output_silenced():
        return converter.convert()


def deviation_from_keras(flatbuffer, model):
    """The largest difference between a LiteRT flatbuffer's and the Keras model's probabilities on a
    fixed probe batch of random faces."""
    probe = np.random.default_rng(0).integers(0, 256, (8, *INPUT_SHAPE)).astype(np.float32)
    return float(np.abs(LiteRTClassifier(flatbuffer)(probe) - model.predict(probe, verbose=0)).max())


def checked_conversion(model):
    """Convert `model` and check the result against Keras on a probe batch; raise if they disagree."""
    flatbuffer = convert_to_litert(model)
    deviation = deviation_from_keras(flatbuffer, model)
    if deviation > MAX_DEVIATION:
        raise ValueError(f"the LiteRT conversion deviates from Keras by {deviation:.2g}")
    return flatbuffer


def matching_litert(model_path, digest):
    """The LiteRT flatbuffer made from exactly this .keras file (by SHA-256), or None."""
    tflite, record = beside_paths(model_path)
    if tflite.is_file() and record.is_file():
        try:
            if json.loads(record.read_text()).get("keras_sha256") == digest:
                return tflite.read_bytes()
        except (OSError, ValueError):
            pass  # an unreadable record is no record: fall through to the cache or a conversion
    cached = cached_path(model_path, digest)
    return cached.read_bytes() if cached.is_file() else None


def write_litert_beside(model_path, flatbuffer=None):
    """Write `<name>.tflite` and its SHA-256 record beside a .keras model; returns the .tflite path."""
    from .model import load_model

    tflite, record = beside_paths(model_path)
    if flatbuffer is None:
        flatbuffer = checked_conversion(load_model(model_path))
    write_atomic(tflite, flatbuffer)
    write_json_atomic(record, {"keras_file": Path(model_path).name, "keras_sha256": file_sha256(model_path)})
    return tflite


def load_classifier(model_path, threads=None):
    """The fastest classifier for a .keras model: its matching LiteRT form, converting it if needed.

    TensorFlow is imported only when there is no LiteRT form of this exact file yet. threads: the
    LiteRT interpreters' threads (default: classifier.INTERPRETER_THREADS).
    """
    model_path = Path(model_path)
    check_model_file(model_path)
    digest = file_sha256(model_path)
    flatbuffer = matching_litert(model_path, digest)
    if flatbuffer is not None:
        return LiteRTClassifier(flatbuffer, threads or INTERPRETER_THREADS)

    from .model import load_model  # TensorFlow from here on

    model = load_model(model_path)
    try:
        flatbuffer = checked_conversion(model)
    except Exception as error:  # conversion support varies by platform; Keras always works
        warnings.warn(f"LiteRT unavailable ({type(error).__name__}: {error}); using Keras")
        return KerasClassifier(model)
    try:
        write_atomic(cached_path(model_path, digest), flatbuffer)
    except OSError:
        pass  # a read-only cache only costs the conversion again next time
    return LiteRTClassifier(flatbuffer, threads or INTERPRETER_THREADS)


def export_litert(model_path, destination):
    """Write the LiteRT form the recognizer uses for a .keras model to `destination`, after checking it
    against Keras once more. Returns the largest deviation found (needs TensorFlow)."""
    from .model import load_model

    model = load_model(model_path)
    flatbuffer = matching_litert(model_path, file_sha256(model_path)) or convert_to_litert(model)
    deviation = deviation_from_keras(flatbuffer, model)
    if deviation > MAX_DEVIATION:
        raise UserError(f"the LiteRT form of {model_path} deviates from Keras by {deviation:.2g} (more than "
                        f"{MAX_DEVIATION:g}); it was not written")
    write_atomic(destination, flatbuffer)
    return deviation
