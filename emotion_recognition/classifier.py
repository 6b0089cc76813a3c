"""Fast inference for the emotion CNN: per-call overhead, not arithmetic, dominates small batches.

The .keras file stays the single source of truth. At load it is converted to a LiteRT (TFLite)
flatbuffer, which runs a batch-1 face in about a millisecond instead of 4-5 ms for a compiled
tf.function (benchmarks/speed.py). The conversion is cached under ~/.cache, keyed by the .keras
file's SHA-256, and its outputs are checked against the Keras model on every load; if anything
about it fails, the compiled tf.function is used instead.
"""

import contextlib
import hashlib
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from .config import INPUT_SHAPE

# The converted model must agree with Keras this closely on a probe batch, or it is not used.
MAX_DEVIATION = 1e-4
# Interpreters are kept per batch size (resizing one costs more than a call); larger batches are chunked.
MAX_BATCH = 32


@contextlib.contextmanager
def quiet_native_output():
    """Silence stdout and stderr at the file-descriptor level, where TensorFlow's C++ side writes.

    The converter and the interpreter announce themselves there; --json output must stay clean.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. TF's notice that tf.lite moves to ai_edge_litert
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "emotion-recognition"


class KerasClassifier:
    """The Keras model inside one tf.function traced once for any batch size."""

    name = "keras-tf.function"

    def __init__(self, model):
        self._call = tf.function(lambda faces: model(faces, training=False),
                                 input_signature=[tf.TensorSpec((None, *INPUT_SHAPE), tf.float32)])

    def __call__(self, faces):
        return self._call(tf.constant(faces, dtype=tf.float32)).numpy()


class LiteRTClassifier:
    """The same network as a TFLite flatbuffer run by the interpreter bundled with TensorFlow."""

    name = "litert"

    def __init__(self, flatbuffer, threads=None):
        self.flatbuffer = flatbuffer
        self.threads = threads or min(os.cpu_count() or 1, 4)
        self._interpreters = {}

    def _interpreter(self, batch):
        if batch not in self._interpreters:
            with quiet_native_output():
                interpreter = tf.lite.Interpreter(model_content=self.flatbuffer, num_threads=self.threads)
                interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], (batch, *INPUT_SHAPE))
                interpreter.allocate_tensors()
            self._interpreters[batch] = (interpreter, interpreter.get_input_details()[0]["index"],
                                         interpreter.get_output_details()[0]["index"])
        return self._interpreters[batch]

    def __call__(self, faces):
        faces = np.ascontiguousarray(faces, dtype=np.float32)
        if len(faces) > MAX_BATCH:
            return np.concatenate([self(faces[i:i + MAX_BATCH]) for i in range(0, len(faces), MAX_BATCH)])
        interpreter, input_index, output_index = self._interpreter(len(faces))
        interpreter.set_tensor(input_index, faces)
        interpreter.invoke()
        return interpreter.get_tensor(output_index).copy()


def convert_to_litert(model):
    with quiet_native_output():
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def cached_flatbuffer(model, model_path):
    """The LiteRT conversion of `model`, from the cache when the .keras file is unchanged."""
    digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()
    cached = cache_dir() / f"{Path(model_path).stem}-{digest[:16]}.tflite"
    if cached.is_file():
        return cached.read_bytes()
    flatbuffer = convert_to_litert(model)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            file.write(flatbuffer)
        os.replace(tmp, cached)
    except OSError:
        pass  # a read-only home only costs the conversion again next time
    return flatbuffer


def fast_classifier(model, model_path=None):
    """The fastest classifier that reproduces `model`: LiteRT if it checks out, else a tf.function."""
    reference = KerasClassifier(model)
    try:
        flatbuffer = cached_flatbuffer(model, model_path) if model_path else convert_to_litert(model)
        candidate = LiteRTClassifier(flatbuffer)
        probe = np.random.default_rng(0).integers(0, 256, (8, *INPUT_SHAPE)).astype(np.float32)
        deviation = np.abs(candidate(probe) - reference(probe)).max()
        if deviation <= MAX_DEVIATION:
            return candidate
        warnings.warn(f"LiteRT conversion deviates from Keras by {deviation:.2g}; using Keras")
    except Exception as error:  # conversion support varies by platform; Keras always works
        warnings.warn(f"LiteRT unavailable ({type(error).__name__}: {error}); using Keras")
    return reference
