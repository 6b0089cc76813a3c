"""Facial emotion recognition: a Keras CNN trained on FER2013 and an OpenCV face detector."""

__version__ = "0.19.1"

from .runtime import set_tensorflow_environment

set_tensorflow_environment()  # before any module of the package imports TensorFlow

from .config import CLASS_NAMES, DEFAULT_MODEL_PATH, IMAGE_SIZE, INPUT_SHAPE, NUM_CLASSES  # noqa: E402
from .errors import UserError  # noqa: E402

__all__ = ["__version__", "CLASS_NAMES", "DEFAULT_MODEL_PATH", "IMAGE_SIZE", "INPUT_SHAPE", "NUM_CLASSES",
           "UserError", "EmotionRecognizer", "Face"]


def __getattr__(name):
    # The recognizer pulls in the model runtime; import it only when asked for.
    if name in ("EmotionRecognizer", "Face"):
        from . import recognizer
        return getattr(recognizer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
