"""EmotionRecognizer: faces in, emotions out. The model and the cascade load once, at construction.

    from emotion_recognition import EmotionRecognizer
    recognizer = EmotionRecognizer()
    for face in recognizer.detect(cv2.imread("photo.jpg")):
        print(face.box, face.emotion, face.confidence)
"""

from dataclasses import asdict, dataclass

import numpy as np

from .classifier import fast_classifier
from .config import CLASS_NAMES, DEFAULT_MODEL_PATH, IMAGE_SIZE, INPUT_SHAPE
from .faces import FaceDetector, crop_faces, to_gray
from .model import load_model


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


class EmotionRecognizer:
    def __init__(self, model_path=DEFAULT_MODEL_PATH, detector=None):
        self.model = load_model(model_path)
        self.detector = detector or FaceDetector()
        # All faces of a frame go through one call of a classifier built once (see classifier.py).
        self.classifier = fast_classifier(self.model, model_path)

    def classify(self, faces):
        """Probabilities (n, 7) for uint8 grayscale 48x48 crops shaped (n, 48, 48) or (n, 48, 48, 1)."""
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
        return self.classifier(faces.astype(np.float32))

    def detect(self, frame):
        """Every face in a BGR (or grayscale) frame, with its emotion, as a list of Face."""
        gray = to_gray(frame)
        boxes = self.detector.detect(gray)
        if len(boxes) == 0:
            return []
        probabilities = self.classify(crop_faces(gray, boxes))
        return [
            Face(box=tuple(int(v) for v in box), emotion=CLASS_NAMES[int(p.argmax())],
                 confidence=float(p.max()), probabilities=dict(zip(CLASS_NAMES, map(float, p))))
            for box, p in zip(boxes, probabilities)
        ]
