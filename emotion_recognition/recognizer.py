"""EmotionRecognizer: faces in, emotions out. The model and the cascade load once, at construction.

    from emotion_recognition import EmotionRecognizer
    recognizer = EmotionRecognizer()
    for face in recognizer.detect(cv2.imread("photo.jpg")):
        print(face.box, face.emotion, face.confidence)

One recognizer may be shared by several threads (a web server's pool, say): each thread gets its
own LiteRT interpreters and its own face cascade, so calls run side by side and give the same
answers as one thread would. With the shipped model it runs without TensorFlow (see classifier.py).
"""

import threading
from dataclasses import asdict, dataclass

import numpy as np

from .classifier import load_classifier
from .config import CLASS_NAMES, DEFAULT_MODEL_PATH, IMAGE_SIZE, INPUT_SHAPE

MAX_PIXEL = 255
from .faces import FaceDetector
from .preprocessing import faces_pixels, to_gray


@dataclass
class Face:
    """One detected face. Fields read as attributes (face.emotion) or keys (face["emotion"])."""

    box: tuple          # (x, y, w, h) in frame pixels
    emotion: str        # the most likely of CLASS_NAMES
    confidence: float   # its probability
    probabilities: dict  # every class name -> probability; they sum to 1

    def __getitem__(self, key):
        return getattr(self, key)

    def to_dict(self):
        return asdict(self)


def check_pixel_range(faces):
    """Raise ValueError unless `faces` can be raw grayscale pixels 0-255."""
    if faces.dtype == np.uint8:
        return
    if not (np.issubdtype(faces.dtype, np.number) and not np.issubdtype(faces.dtype, np.complexfloating)):
        raise ValueError(f"faces must be numbers (uint8 pixels 0-255), got dtype {faces.dtype}")
    low, high = float(faces.min()), float(faces.max())
    if not (np.isfinite(low) and np.isfinite(high)) or low < 0 or high > MAX_PIXEL:
        raise ValueError(f"faces must hold raw pixel values 0-{MAX_PIXEL}, got values from {low:g} to {high:g}")
    if np.issubdtype(faces.dtype, np.floating) and high <= 1.0:
        raise ValueError("faces look normalised already (every value within 0-1); pass raw pixels 0-255, "
                         "the model rescales them itself")


class EmotionRecognizer:
    def __init__(self, model_path=DEFAULT_MODEL_PATH, detector=None):
        self.model_path = model_path
        # All faces of a frame go through one call of a classifier built once (see classifier.py).
        self.classifier = load_classifier(model_path)
        # OpenCV's cascade keeps scratch buffers per object, so each thread gets its own; a detector
        # passed in is shared, and calls to it take turns.
        self._given_detector = detector
        self._detector_lock = threading.Lock()
        self._local = threading.local()
        self._local.detector = detector or FaceDetector()  # built now, so a missing cascade fails early

    @property
    def detector(self):
        if self._given_detector is not None:
            return self._given_detector
        if not hasattr(self._local, "detector"):
            self._local.detector = FaceDetector()
        return self._local.detector

    def _find_faces(self, gray):
        if self._given_detector is None:
            return self.detector.detect(gray)
        with self._detector_lock:
            return self._given_detector.detect(gray)

    def classify(self, faces):
        """Probabilities (n, 7) for grayscale 48x48 faces shaped (n, 48, 48) or (n, 48, 48, 1).

        Faces are raw pixels 0-255 (uint8, or floats on that scale), as preprocessing.face_pixels
        makes them: the model rescales them itself. Faces already scaled to 0-1 are refused, since
        the model would see them as nearly black and answer with confident nonsense.
        """
        faces = np.asarray(faces)
        if faces.ndim == 2:
            raise ValueError("classify() takes a batch of faces (n, 48, 48); wrap one face as faces[None]")
        if faces.ndim == 3:
            faces = faces[..., None]
        if faces.ndim != 4 or faces.shape[1:] != INPUT_SHAPE:
            raise ValueError(f"faces must be shaped (n, {IMAGE_SIZE}, {IMAGE_SIZE}) or (n, {IMAGE_SIZE}, "
                             f"{IMAGE_SIZE}, 1), got {faces.shape}")
        if len(faces) == 0:
            return np.zeros((0, len(CLASS_NAMES)), dtype=np.float32)
        check_pixel_range(faces)
        return self.classifier(faces.astype(np.float32))

    def detect(self, frame):
        """Every face in a BGR (or grayscale) frame, with its emotion, as a list of Face."""
        gray = to_gray(frame)
        boxes = self._find_faces(gray)
        if len(boxes) == 0:
            return []
        probabilities = self.classify(faces_pixels(gray, boxes))
        return [
            Face(box=tuple(int(v) for v in box), emotion=CLASS_NAMES[int(p.argmax())],
                 confidence=float(p.max()), probabilities=dict(zip(CLASS_NAMES, map(float, p))))
            for box, p in zip(boxes, probabilities)
        ]
