"""Face detection with OpenCV's Haar cascade: in a whole frame, or near where a face was; upright, or
turned in the picture.

Whole-frame search follows the `fer` package's defaults (scale step 1.1, faces from 50 px, every
position), because a missed face is the failure a user sees first. In a stream, the tracker
(tracking.py) searches the whole frame only now and then, and otherwise looks for each known face
in a small region around its last box, at sizes close to its last size: a few cheap searches.

The cascade was trained on upright faces and misses faces turned more than about 15 degrees in the
picture (a tilted head, a camera looking up). So copies of the frame turned by TURNS are searched too,
and a face found in a copy is reported in the frame's pixels with its angle: its box is the square
around it as it would be upright, centred where the face is, and `angle` says how far it is turned
(degrees, counter-clockwise positive, as cv2.getRotationMatrix2D counts). preprocessing.face_pixels
turns it back before it is classified.
"""

from pathlib import Path

import cv2
import numpy as np

from .errors import UserError
from .geometry import centre_inside

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
# The turned copies searched besides the upright frame, in degrees: with the cascade's own tolerance of
# about 15 degrees either way they reach faces turned up to about 45 degrees.
TURNS = (30.0, -30.0)
# Near a known face the search stops at the first angle whose best box has this many overlapping hits:
# a face found surely needs no other angle (those searches cost time). Where the frame changed, the
# first angle that finds a face at all ends the search: a change brings one new face as a rule.
SURE_NEIGHBOURS = 12
# A turned copy holds more face-like patterns than the frame (its fill, its turned edges, a cat): a
# search of a whole turned frame accepts a face only with this many overlapping hits; a search of a
# region that changed (something moved there) with REGION_TURNED_MIN_NEIGHBORS. The values are chosen
# on benchmarks/detection.py's face-free photos (docs/design.md, "Numbers behind the defaults").
TURNED_MIN_NEIGHBORS = 23
REGION_TURNED_MIN_NEIGHBORS = 11
NO_BOXES = np.zeros((0, 4), dtype=np.int32)


def turned(image, angle):
    """`image` turned by `angle` degrees (counter-clockwise) about its centre, on a canvas that holds all
    of it (the corners filled with its mean grey, which makes no edges for the cascade to see), and the
    2x3 matrix that takes its pixels to the copy's."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_width, new_height = round(height * sin + width * cos), round(height * cos + width * sin)
    matrix[0, 2] += new_width / 2 - width / 2
    matrix[1, 2] += new_height / 2 - height / 2
    fill = float(image.mean()) if image.size else 0.0
    copy = cv2.warpAffine(image, matrix, (new_width, new_height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    return copy, matrix


def boxes_turned_back(boxes, matrix, shape):
    """Boxes found in a turned copy, as squares around the same faces in the original's pixels (centred
    where they are, sized as found), float (n, 4); those whose centre falls outside the original are
    dropped. Also returns which were kept (a boolean mask)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centres = np.stack([boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2, np.ones(len(boxes))])
    back = cv2.invertAffineTransform(matrix) @ centres  # (2, n): the centres in the original's pixels
    inside = (back[0] >= 0) & (back[0] < shape[1]) & (back[1] >= 0) & (back[1] < shape[0])
    result = np.stack([back[0] - boxes[:, 2] / 2, back[1] - boxes[:, 3] / 2, boxes[:, 2], boxes[:, 3]], axis=1)
    return result[inside], inside


def cascade_path():
    """The frontal-face cascade shipped inside the installed OpenCV wheel."""
    folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
    path = Path(folder) / CASCADE_FILE if folder else None
    if path is None or not path.is_file():
        raise UserError(
            f"OpenCV {cv2.__version__} ships no {CASCADE_FILE} (OpenCV 5 wheels dropped the Haar "
            "cascades); install the pinned version with 'pip install -r requirements.txt'")
    return path


def left_to_right(boxes, neighbours):
    """Boxes (and their neighbours) left to right, then top to bottom. OpenCV's parallel search returns
    the same faces in a varying order; sorting makes the answer for a frame always the same."""
    order = np.lexsort((boxes[:, 1], boxes[:, 0]))
    return boxes[order], neighbours[order]


class FaceDetector:
    """Finds faces in grayscale frames; returns boxes (x, y, w, h) in frame pixels."""

    def __init__(self, min_face=MIN_FACE, scale_factor=SCALE_FACTOR, min_neighbors=MIN_NEIGHBORS,
                 detection_width=DETECTION_WIDTH, turns=TURNS):
        if min_face < 1 or not scale_factor > 1.0 or min_neighbors < 0:
            raise UserError(f"detection settings out of range: minimum face {min_face} px (at least 1), "
                            f"scale factor {scale_factor} (above 1), neighbours {min_neighbors} (0 or more)")
        self.cascade = cv2.CascadeClassifier(str(cascade_path()))
        if self.cascade.empty():
            raise UserError(f"OpenCV could not load its face cascade {cascade_path()}; reinstall opencv-python")
        self.min_face, self.scale_factor = min_face, scale_factor
        self.min_neighbors, self.detection_width = min_neighbors, detection_width
        self.turns = tuple(turns)  # the angles searched besides upright; () finds upright faces only

    def detect(self, gray, angle=0.0):
        """Boxes of the faces in a whole grayscale uint8 frame, as an (n, 4) int array of x, y, w, h; with
        an angle, of the faces turned by it (their upright squares, see the module's docstring)."""
        return self._detect(gray, angle)[0]

    def detect_all(self, gray, turns=None):
        """Faces upright and turned by each of the detector's turns (or of `turns`, a part of them), one box
        per face: (boxes (n, 4), angles (n,))."""
        turns = self.turns if turns is None else turns
        return best_of_angles([(angle, *self._detect(gray, angle)) for angle in (0.0, *turns)])

    def detect_in_all(self, gray, region):
        """Faces upright or turned inside region (x, y, w, h), searched as a whole-frame search would
        search it, upright first, up to the first angle that finds one: (boxes (n, 4), angles (n,))."""
        return best_of_angles(until_sure(lambda angle: self._detect_in(gray, region, angle=angle),
                                         (0.0, *self.turns), sure=1))

    def _detect(self, gray, angle):
        """detect()'s boxes, and each one's neighbours (the cascade's overlapping hits)."""
        height, width = gray.shape[:2]
        scale = min(1.0, self.detection_width / width) if self.detection_width else 1.0
        small = cv2.resize(gray, (round(width * scale), round(height * scale)),
                           interpolation=cv2.INTER_AREA) if scale < 1.0 else gray
        side = max(CASCADE_WINDOW, round(self.min_face * scale))
        boxes, neighbours = self._search(small, -angle, scaleFactor=self.scale_factor,
                                         minNeighbors=max(self.min_neighbors, TURNED_MIN_NEIGHBORS) if angle
                                         else self.min_neighbors, minSize=(side, side))
        if len(boxes) == 0:
            return NO_BOXES, np.zeros(0, dtype=np.int32)
        boxes, neighbours = left_to_right(boxes, neighbours)
        return np.round(boxes / scale).astype(np.int32), neighbours

    def _search(self, image, angle, **settings):
        """The cascade's boxes in `image` (float (n, 4)) and their neighbours; in a copy of it turned by
        `angle`, mapped back: that finds the faces turned by -angle, upright in the copy."""
        if not angle:
            boxes, neighbours = self.cascade.detectMultiScale2(image, **settings)
            return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(neighbours, dtype=np.int32)
        copy, matrix = turned(image, angle)
        boxes, neighbours = self.cascade.detectMultiScale2(copy, **settings)
        boxes, inside = boxes_turned_back(boxes, matrix, image.shape)
        return boxes, np.asarray(neighbours, dtype=np.int32).reshape(-1)[inside]

    def detect_near_all(self, gray, box, angle=0.0):
        """Faces of about `box`'s size around it (tracking), upright and turned, the face's last `angle`
        first (another face may have taken its place, turned the other way): (boxes (n, 4), angles (n,))."""
        angles = [angle, *(other for other in (0.0, *self.turns) if other != angle)]
        return best_of_angles(until_sure(lambda other: self._detect_near(gray, box, other), angles))

    def _detect_near(self, gray, box, angle):
        """Faces of about `box`'s size in a region around it, turned by `angle`: their boxes in frame
        pixels, and each one's neighbours."""
        x, y, w, h = (int(v) for v in box)
        margin_x, margin_y = round(w * LOCAL_MARGIN), round(h * LOCAL_MARGIN)
        left, top = max(0, x - margin_x), max(0, y - margin_y)
        right, bottom = min(gray.shape[1], x + w + margin_x), min(gray.shape[0], y + h + margin_y)
        return self._detect_in(gray, (left, top, right - left, bottom - top),
                               smallest=min(w, h) / LOCAL_SIZE_RANGE, largest=max(w, h) * LOCAL_SIZE_RANGE,
                               scale_factor=LOCAL_SCALE_FACTOR, min_neighbors=LOCAL_MIN_NEIGHBORS, angle=angle)

    def _detect_in(self, gray, region, smallest=None, largest=None, scale_factor=None, min_neighbors=None,
                   angle=0.0):
        """Faces inside region (x, y, w, h) of a frame, sized smallest..largest px (default: any), turned
        by `angle` degrees (their upright squares, see the module's docstring): their boxes, and each
        one's neighbours.

        Without `smallest`, the region is searched exactly as a whole-frame search would search it
        (same sizes, same settings), so it finds what that search finds there."""
        nothing = NO_BOXES, np.zeros(0, dtype=np.int32)
        left, top, width, height = (int(v) for v in region)
        floor = max(CASCADE_WINDOW, self.min_face)
        smallest = max(floor, round(smallest)) if smallest else floor
        if min(width, height) < smallest:
            return nothing
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
            return nothing
        if min_neighbors is None:  # searched as a whole frame is
            min_neighbors = max(self.min_neighbors, REGION_TURNED_MIN_NEIGHBORS) if angle else self.min_neighbors
        boxes, neighbours = self._search(patch, -angle, scaleFactor=scale_factor or self.scale_factor,
                                         minNeighbors=min_neighbors, minSize=(low, low),
                                         maxSize=(high, high) if high else (0, 0))
        if len(boxes) == 0:
            return nothing
        boxes = np.round(boxes / shrink)
        boxes[:, 0] += left
        boxes[:, 1] += top
        boxes, neighbours = left_to_right(boxes, neighbours)
        return boxes.astype(np.int32), neighbours


def until_sure(search, angles, sure=SURE_NEIGHBOURS):
    """[(angle, boxes, neighbours), ...] of search(angle) for each angle in turn, up to the first that
    finds a box with `sure` overlapping hits (1: any box)."""
    searches = []
    for angle in angles:
        boxes, neighbours = search(angle)
        searches.append((angle, boxes, neighbours))
        if len(neighbours) and neighbours.max() >= sure:
            break
    return searches


def best_of_angles(searches):
    """One box per face from searches at several angles, [(angle, boxes, neighbours), ...] in order of
    preference: (boxes (n, 4), angles (n,)), left to right. The cascade finds a face a little off its
    angle too, so a face may be found at two angles: the one with the more overlapping hits (the
    cascade's neighbours) is kept, the earlier search's on a tie."""
    found = [(int(n), order, tuple(int(v) for v in box), angle)
             for order, (angle, boxes, neighbours) in enumerate(searches) for box, n in zip(boxes, neighbours)]
    kept = []
    for _, _, box, angle in sorted(found, key=lambda item: (-item[0], item[1])):
        if not any(centre_inside(box, other) or centre_inside(other, box) for other, _ in kept):
            kept.append((box, angle))
    kept.sort(key=lambda item: (item[0][0], item[0][1]))
    return (np.asarray([box for box, _ in kept], dtype=np.int32).reshape(-1, 4),
            np.asarray([angle for _, angle in kept], dtype=np.float64))
