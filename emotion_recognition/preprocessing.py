"""The one face preprocessing: image bytes -> grayscale -> face region -> 48x48 uint8 pixels.

Training (data.py), evaluation and the recognizer (recognizer.py) all go through these functions,
so the path users run is the path that was scored. Pixel values stay raw 0-255: the model rescales
them itself.
"""

import cv2
import numpy as np

from .config import IMAGE_SIZE

# INTER_AREA averages the pixels a shrunk pixel covers (no aliasing); FER2013's faces are 48x48 already.
RESIZE_INTERPOLATION = cv2.INTER_AREA


def decode_image(data):
    """A BGR uint8 image from encoded bytes (JPEG, PNG, ...), or None if they are not a readable image."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    return cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None


def to_gray(frame):
    """The grayscale uint8 form of a BGR, BGRA or grayscale frame (a grayscale frame is returned as is)."""
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    if frame.shape[2] == 1:
        return frame[:, :, 0]
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def face_pixels(gray, box=None, angle=0.0):
    """The 48x48 uint8 model input for one face: the box (x, y, w, h) of a grayscale frame, or all of it.
    A face turned by `angle` degrees (counter-clockwise; faces.py) is turned back upright about the box's
    centre first, so the model sees faces as it was trained on them."""
    if box is not None and angle:
        x, y, w, h = (int(v) for v in box)
        upright = cv2.getRotationMatrix2D((x + w / 2, y + h / 2), -angle, 1.0)
        upright[:, 2] -= (x, y)  # and the box's corner to the origin: the output is the box alone
        gray = cv2.warpAffine(gray, upright, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    elif box is not None:
        x, y, w, h = (int(v) for v in box)
        gray = gray[y:y + h, x:x + w]
    if gray.shape == (IMAGE_SIZE, IMAGE_SIZE):
        return np.ascontiguousarray(gray)
    return cv2.resize(gray, (IMAGE_SIZE, IMAGE_SIZE), interpolation=RESIZE_INTERPOLATION)


def faces_pixels(gray, boxes, angles=None):
    """Model inputs for several boxes of one frame (turned by `angles`, if given), shaped (n, 48, 48)."""
    crops = np.empty((len(boxes), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for i, box in enumerate(boxes):
        crops[i] = face_pixels(gray, box, 0.0 if angles is None else angles[i])
    return crops
