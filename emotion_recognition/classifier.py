"""Fast inference without TensorFlow: the model as a LiteRT flatbuffer, run by the LiteRT runtime.

The .keras file stays the single source of truth; its LiteRT form is used only when it is known
to come from exactly that file, by the file's SHA-256:
1. beside the model: `<name>.tflite`, with `<name>.tflite.json` recording the .keras file's SHA-256
   (the shipped model has both; `write_litert_beside` makes them);
2. in the cache: `~/.cache/emotion-recognition/<name>-<sha256 prefix>.tflite` ($XDG_CACHE_HOME, or
   $EMOTION_RECOGNITION_CACHE for the folder itself).
Either way recognition imports the standalone LiteRT runtime (`ai-edge-litert`: 0.1 s and 35 MB on a
2-core AVX-512 CPU), never TensorFlow (3 s and 570 MB there). Only a model with no LiteRT form yet is
converted, once, with TensorFlow, checked against Keras on a probe batch, and cached. The conversion
quantizes the weights to int8 (LiteRT's dynamic-range quantization: the runtime quantizes each
layer's input on the fly and multiplies in int8; input and output stay float): a quarter of the size,
a tenth of a point of accuracy, and 1.2-1.3x (AVX2) to 3.3-3.6x (AVX-512 VNNI) as fast (README, "Speed").
"""

import hashlib
import json
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from .config import INPUT_SHAPE, NUM_CLASSES
from .errors import UserError
from .files import check_model_file, write_atomic, write_json_atomic
from .runtime import native_output_silenced

# The converted model must agree with Keras this closely on a probe batch, or it is not used. int8
# weights move the shipped model's probabilities by 0.008 on the probe (0.026 at most on 800 real
# faces, with the same answer for 99.5 % of them); a broken conversion is off by far more.
MAX_DEVIATION = 0.02
# Interpreters are kept per batch size (resizing one costs more than a call); larger batches are chunked.
MAX_BATCH = 32
# Each interpreter's own threads; with an interpreter per calling thread, more would oversubscribe.
INTERPRETER_THREADS = min(os.cpu_count() or 1, 4)


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


class LiteRTClassifier:
    """A LiteRT flatbuffer run by the standalone runtime; safe to call from several threads.

    Each calling thread gets interpreters of its own (LiteRT interpreters must not be shared
    between threads that run at once); results do not depend on which thread asks.
    """

    name = "litert"

    def __init__(self, flatbuffer, threads=INTERPRETER_THREADS):
        self.flatbuffer, self.threads = flatbuffer, threads
        self._local = threading.local()
        interpreter = self._new_interpreter()
        input_shape = tuple(interpreter.get_input_details()[0]["shape"][1:])
        output_shape = tuple(interpreter.get_output_details()[0]["shape"][1:])
        if input_shape != INPUT_SHAPE or output_shape != (NUM_CLASSES,):
            raise UserError(f"the LiteRT model takes {input_shape} and returns {output_shape}; this project "
                            f"needs {INPUT_SHAPE} grayscale faces in and {NUM_CLASSES} probabilities out")

    def _new_interpreter(self):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # no LiteRT wheel for this platform (Windows): TensorFlow bundles one
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
        with native_output_silenced():
            return Interpreter(model_content=self.flatbuffer, num_threads=self.threads)

    def _interpreter(self, batch):
        interpreters = self._local.__dict__.setdefault("by_batch", {})
        if batch not in interpreters:
            interpreter = self._new_interpreter()
            interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], (batch, *INPUT_SHAPE))
            with native_output_silenced():  # "Created TensorFlow Lite XNNPACK delegate" and the like
                interpreter.allocate_tensors()
            interpreters[batch] = (interpreter, interpreter.get_input_details()[0]["index"],
                                   interpreter.get_output_details()[0]["index"])
        return interpreters[batch]

    def __call__(self, faces):
        faces = np.ascontiguousarray(faces, dtype=np.float32)
        if len(faces) > MAX_BATCH:
            return np.concatenate([self(faces[i:i + MAX_BATCH]) for i in range(0, len(faces), MAX_BATCH)])
        interpreter, input_index, output_index = self._interpreter(len(faces))
        interpreter.set_tensor(input_index, faces)
        interpreter.invoke()
        return interpreter.get_tensor(output_index).copy()


class KerasClassifier:
    """The Keras model inside one tf.function traced once for any batch size (the fallback)."""

    name = "keras-tf.function"

    def __init__(self, model):
        import tensorflow as tf

        self._lock = threading.Lock()  # one traced function; calls from several threads take turns
        self._tf = tf
        self._call = tf.function(lambda faces: model(faces, training=False),
                                 input_signature=[tf.TensorSpec((None, *INPUT_SHAPE), tf.float32)])

    def __call__(self, faces):
        with self._lock:
            return self._call(self._tf.constant(faces, dtype=self._tf.float32)).numpy()


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


def load_classifier(model_path):
    """The fastest classifier for a .keras model: its matching LiteRT form, converting it if needed.

    TensorFlow is imported only when there is no LiteRT form of this exact file yet.
    """
    model_path = Path(model_path)
    check_model_file(model_path)
    digest = file_sha256(model_path)
    flatbuffer = matching_litert(model_path, digest)
    if flatbuffer is not None:
        return LiteRTClassifier(flatbuffer)

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
    return LiteRTClassifier(flatbuffer)


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
