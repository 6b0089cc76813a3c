"""Face detection with OpenCV's Haar cascade, tuned for speed on a CPU.

The cascade runs on a reduced grayscale copy of the frame (faces in webcam frames are large, so
little is lost) and the boxes are scaled back to the full frame.
"""

from pathlib import Path

import cv2
import numpy as np

from .errors import UserError

CASCADE_FILE = "haarcascade_frontalface_default.xml"
# The cascade looks for faces in a copy at most this wide: 4x fewer pixels than 640x480.
DETECTION_WIDTH = 320
# Each pyramid step shrinks the image by this factor. 1.2 needs half the steps of 1.1 and, at this
# detection width, found every face of benchmarks/speed.py's video that 1.1 found.
SCALE_FACTOR = 1.2
# Overlapping hits needed to accept a face; lower finds more faces and more false ones.
MIN_NEIGHBORS = 5
# Smallest face, as a share of the frame's shorter side: 0.125 of 480 px = 60 px, a face about 2.5 m
# from a laptop webcam. Each halving of it adds pyramid levels; 0.1 cost 25 % more time per frame.
MIN_FACE_FRACTION = 0.125


def cascade_path():
    """The frontal-face cascade shipped inside the installed OpenCV wheel."""
    folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
    path = Path(folder) / CASCADE_FILE if folder else None
    if path is None or not path.is_file():
        raise UserError(
            f"OpenCV {cv2.__version__} ships no {CASCADE_FILE} (OpenCV 5 wheels dropped the Haar "
            "cascades); install the pinned version with 'pip install -r requirements.txt'")
    return path


class FaceDetector:
    """Finds faces in BGR or grayscale frames; returns boxes (x, y, w, h) in frame pixels."""

    def __init__(self, detection_width=DETECTION_WIDTH, scale_factor=SCALE_FACTOR,
                 min_neighbors=MIN_NEIGHBORS, min_face_fraction=MIN_FACE_FRACTION):
        self.cascade = cv2.CascadeClassifier(str(cascade_path()))
        if self.cascade.empty():
            raise UserError(f"OpenCV could not load its face cascade {cascade_path()}; reinstall opencv-python")
        self.detection_width = detection_width
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_fraction = min_face_fraction

    def detect(self, gray):
        """Boxes of the faces in a grayscale uint8 frame, as an (n, 4) int array of x, y, w, h."""
        height, width = gray.shape[:2]
        scale = min(1.0, self.detection_width / width) if self.detection_width else 1.0
        small = cv2.resize(gray, (round(width * scale), round(height * scale)),
                           interpolation=cv2.INTER_AREA) if scale < 1.0 else gray
        # The cascade's own window is 24 px, so smaller faces cannot be found anyway.
        min_side = max(24, round(self.min_face_fraction * min(small.shape[:2])))
        boxes = self.cascade.detectMultiScale(small, scaleFactor=self.scale_factor,
                                              minNeighbors=self.min_neighbors, minSize=(min_side, min_side))
        if len(boxes) == 0:
            return np.zeros((0, 4), dtype=np.int32)
        boxes = np.round(np.asarray(boxes, dtype=np.float64) / scale).astype(np.int32)
        # OpenCV's parallel search returns the same faces in a varying order; left to right, then top
        # to bottom, makes the answer for a frame always the same.
        return boxes[np.lexsort((boxes[:, 1], boxes[:, 0]))]
