"""Face detection with OpenCV's Haar cascade: in a whole frame, or near where a face was.

Whole-frame search follows the `fer` package's defaults (scale step 1.1, faces from 50 px, every
position), because a missed face is the failure a user sees first. In a stream, the tracker
(tracking.py) searches the whole frame only now and then, and otherwise looks for each known face
in a small region around its last box, at sizes close to its last size: a few cheap searches.
"""

from pathlib import Path

import cv2
import numpy as np

from .errors import UserError

CASCADE_FILE = "haarcascade_frontalface_default.xml"
# Frames wider than this are searched in a reduced copy (boxes are scaled back): a 4000-px photo
# would otherwise cost seconds. 640 px, a webcam's width, is searched as it is.
DETECTION_WIDTH = 640
# Each pyramid step shrinks the image by this factor; 1.2 is twice as fast but finds fewer faces
# (docs/design.md, "Numbers behind the defaults").
SCALE_FACTOR = 1.1
# Overlapping hits needed to accept a face; lower finds more faces and more false ones.
MIN_NEIGHBORS = 5
# Smallest face searched for, in frame pixels (fer's default): a face about 3 m from a laptop webcam.
# Most of a search's time goes into the smallest sizes (docs/usage.md, "Detection settings").
MIN_FACE = 50
# The cascade's own window: no smaller face can be found in the searched image.
CASCADE_WINDOW = 24
# Near a known face: its box widened by this share of its size on each side, sizes from its last
# size / LOCAL_SIZE_RANGE to its last size * LOCAL_SIZE_RANGE, in finer steps than a full search.
LOCAL_MARGIN = 0.5
LOCAL_SIZE_RANGE = 1.3
LOCAL_SCALE_FACTOR = 1.05
# A narrow size range collects fewer overlapping hits than a full search, and a face was just here.
LOCAL_MIN_NEIGHBORS = 2


def cascade_path():
    """The frontal-face cascade shipped inside the installed OpenCV wheel."""
    folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
    path = Path(folder) / CASCADE_FILE if folder else None
    if path is None or not path.is_file():
        raise UserError(
            f"OpenCV {cv2.__version__} ships no {CASCADE_FILE} (OpenCV 5 wheels dropped the Haar "
            "cascades); install the pinned version with 'pip install -r requirements.txt'")
    return path


def sorted_boxes(boxes):
    """Boxes as an (n, 4) int32 array, left to right, then top to bottom.

    OpenCV's parallel search returns the same faces in a varying order; sorting makes the answer
    for a frame always the same."""
    boxes = np.asarray(boxes, dtype=np.int32).reshape(-1, 4)
    return boxes[np.lexsort((boxes[:, 1], boxes[:, 0]))]


class FaceDetector:
    """Finds faces in grayscale frames; returns boxes (x, y, w, h) in frame pixels."""

    def __init__(self, min_face=MIN_FACE, scale_factor=SCALE_FACTOR, min_neighbors=MIN_NEIGHBORS,
                 detection_width=DETECTION_WIDTH):
        if min_face < 1 or not scale_factor > 1.0 or min_neighbors < 0:
            raise UserError(f"detection settings out of range: minimum face {min_face} px (at least 1), "
                            f"scale factor {scale_factor} (above 1), neighbours {min_neighbors} (0 or more)")
        self.cascade = cv2.CascadeClassifier(str(cascade_path()))
        if self.cascade.empty():
            raise UserError(f"OpenCV could not load its face cascade {cascade_path()}; reinstall opencv-python")
        self.min_face, self.scale_factor = min_face, scale_factor
        self.min_neighbors, self.detection_width = min_neighbors, detection_width

    def detect(self, gray):
        """Boxes of the faces in a whole grayscale uint8 frame, as an (n, 4) int array of x, y, w, h."""
        height, width = gray.shape[:2]
        scale = min(1.0, self.detection_width / width) if self.detection_width else 1.0
        small = cv2.resize(gray, (round(width * scale), round(height * scale)),
                           interpolation=cv2.INTER_AREA) if scale < 1.0 else gray
        side = max(CASCADE_WINDOW, round(self.min_face * scale))
        boxes = self.cascade.detectMultiScale(small, scaleFactor=self.scale_factor,
                                              minNeighbors=self.min_neighbors, minSize=(side, side))
        if len(boxes) == 0:
            return np.zeros((0, 4), dtype=np.int32)
        return sorted_boxes(np.round(np.asarray(boxes, dtype=np.float64) / scale))

    def detect_near(self, gray, box):
        """Faces of about `box`'s size in a region around it (tracking); boxes in frame pixels."""
        x, y, w, h = (int(v) for v in box)
        margin_x, margin_y = round(w * LOCAL_MARGIN), round(h * LOCAL_MARGIN)
        left, top = max(0, x - margin_x), max(0, y - margin_y)
        right, bottom = min(gray.shape[1], x + w + margin_x), min(gray.shape[0], y + h + margin_y)
        return self.detect_in(gray, (left, top, right - left, bottom - top),
                              smallest=min(w, h) / LOCAL_SIZE_RANGE, largest=max(w, h) * LOCAL_SIZE_RANGE,
                              scale_factor=LOCAL_SCALE_FACTOR, min_neighbors=LOCAL_MIN_NEIGHBORS)

    def detect_in(self, gray, region, smallest=None, largest=None, scale_factor=None, min_neighbors=None):
        """Faces inside region (x, y, w, h) of a frame, sized smallest..largest px (default: any).

        Without `smallest`, the region is searched exactly as a whole-frame search would search it
        (same sizes, same settings), so it finds what that search finds there."""
        left, top, width, height = (int(v) for v in region)
        floor = max(CASCADE_WINDOW, self.min_face)
        smallest = max(floor, round(smallest)) if smallest else floor
        if min(width, height) < smallest:
            return np.zeros((0, 4), dtype=np.int32)
        patch = gray[top:top + height, left:left + width]
        # Near a known face the wanted sizes are few and large: the region is shrunk until the
        # smallest of them fills the cascade's window (a 200-px face is searched in a copy 7x smaller).
        shrink = min(1.0, (CASCADE_WINDOW + 2) / smallest) if largest else 1.0
        if shrink < 1.0:
            patch = cv2.resize(patch, (max(1, round(width * shrink)), max(1, round(height * shrink))),
                               interpolation=cv2.INTER_AREA)
        low = max(CASCADE_WINDOW, round(smallest * shrink))
        high = round(largest * shrink) if largest else 0
        if high and high < low:
            return np.zeros((0, 4), dtype=np.int32)
        boxes = self.cascade.detectMultiScale(patch, scaleFactor=scale_factor or self.scale_factor,
                                              minNeighbors=self.min_neighbors if min_neighbors is None else min_neighbors,
                                              minSize=(low, low), maxSize=(high, high) if high else (0, 0))
        if len(boxes) == 0:
            return np.zeros((0, 4), dtype=np.int32)
        boxes = np.round(np.asarray(boxes, dtype=np.float64) / shrink)
        boxes[:, 0] += left
        boxes[:, 1] += top
        return sorted_boxes(boxes)
