"""Facts that every part of the project agrees on: labels, input size, file locations."""

from pathlib import Path

# The order of the model's 7 outputs. It is fixed here, once, and the dataset's folder names are
# checked against it, so a folder listing can never reorder the labels.
CLASS_NAMES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
NUM_CLASSES = len(CLASS_NAMES)

# FER2013 faces are 48x48 grayscale; the model takes them raw (uint8 values 0-255) and rescales inside.
IMAGE_SIZE = 48
INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)

# Paths resolve from this file, never from the working directory.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_PATH = PROJECT_ROOT / "emotion_detection.keras"
DEFAULT_DATA_DIR = PROJECT_ROOT / "dataset" / "FER2013"

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
