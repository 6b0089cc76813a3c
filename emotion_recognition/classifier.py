"""Running the model: LiteRTClassifier (its int8 LiteRT form, on the standalone LiteRT runtime, without
TensorFlow) and KerasClassifier (the Keras model itself, the fallback). Both take a batch of raw
48x48 faces and return probabilities. Which form of a model file to run is litert_files.py's job.
"""

import os
import threading

import numpy as np

from .config import INPUT_SHAPE, NUM_CLASSES
from .errors import UserError
from .runtime import native_output_silenced

# Interpreters are kept per batch size (resizing one costs more than a call); larger batches are chunked.
MAX_BATCH = 32
# Each interpreter's own threads; with an interpreter per calling thread, more would oversubscribe.
INTERPRETER_THREADS = min(os.cpu_count() or 1, 4)


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
