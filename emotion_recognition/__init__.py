"""Facial emotion recognition: a Keras CNN trained on FER2013 and an OpenCV face detector."""

from .config import CLASS_NAMES, DEFAULT_MODEL_PATH, IMAGE_SIZE, INPUT_SHAPE, NUM_CLASSES
from .errors import UserError

__all__ = ["CLASS_NAMES", "DEFAULT_MODEL_PATH", "IMAGE_SIZE", "INPUT_SHAPE", "NUM_CLASSES", "UserError",
           "EmotionRecognizer", "Face"]


def __getattr__(name):
    # The recognizer pulls in TensorFlow; import it only when asked for.
    if name in ("EmotionRecognizer", "Face"):
        from . import recognizer
        return getattr(recognizer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
