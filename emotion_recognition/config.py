"""Facts that every part of the project agrees on: labels, input size, file locations."""

from pathlib import Path

# The order of the model's 7 outputs. It is fixed here, once, and the dataset's folder names are
# checked against it, so a folder listing can never reorder the labels.
CLASS_NAMES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
NUM_CLASSES = len(CLASS_NAMES)

# FER2013 faces are 48x48 grayscale; the model takes them raw (uint8 values 0-255) and rescales inside.
IMAGE_SIZE = 48
INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)

# Paths resolve from this file, never from the working directory. The shipped model is package data,
# so an installed package finds it too; the dataset and training runs belong to a clone.
PACKAGE_DIR = Path(__file__).resolve().parent
MODELS_DIR = PACKAGE_DIR / "models"
DEFAULT_MODEL_PATH = MODELS_DIR / "emotion_detection.keras"
PROJECT_ROOT = PACKAGE_DIR.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "dataset" / "FER2013"
DEFAULT_RUNS_DIR = PROJECT_ROOT / "runs"

# What a trained .keras file records about itself (see files.py), beside Keras' own entries.
MODEL_RECORD_NAME = "emotion_recognition.json"

# The web service's defaults (server.py), here so that the command line shows them without its extra:
# this machine only (0.0.0.0 opens it to the network), uvicorn's usual port, and room for a phone's
# photo (2-8 MB; a camera frame as JPEG is about 50 kB).
SERVE_HOST, SERVE_PORT, SERVE_MAX_UPLOAD_MB = "127.0.0.1", 8000, 10
