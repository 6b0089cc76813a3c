"""EmotionRecognizer: faces in, emotions out. The model and the cascade load once, at construction.

    from emotion_recognition import EmotionRecognizer
    recognizer = EmotionRecognizer()
    for face in recognizer.detect(cv2.imread("photo.jpg")):
        print(face.box, face.emotion, face.confidence)

    stream = recognizer.stream()            # consecutive frames of one video or camera
    for face in stream.detect(frame, time_in_seconds):
        print(face.id, face.emotion)        # ids stay while a face stays; probabilities are smoothed

    for face in recognizer.analyze("interview.mp4"):   # a whole video, one face at a time
        print(face.frame, face.time, face.id, face.emotion)

One recognizer may be shared by several threads (a web server's pool, say): each thread gets its
own LiteRT interpreters and its own face cascade, so calls run side by side and give the same
answers as one thread would. With the shipped model it runs without TensorFlow (see classifier.py).
A stream belongs to one thread.
"""

import threading
from dataclasses import asdict, dataclass

import numpy as np

from .litert_files import load_classifier
from .config import CLASS_NAMES, DEFAULT_MODEL_PATH, IMAGE_SIZE, INPUT_SHAPE
from .faces import MIN_FACE, TURNS, FaceDetector
from .preprocessing import faces_pixels, to_gray
from .tracking import FULL_SEARCH_EVERY, HALF_LIFE, FaceTracker, smooth

MAX_PIXEL = 255
# Averaging each face's probabilities with its mirror image's is the cheapest test-time augmentation,
# but it doubles the classifier's cost per face, for a few tenths of a point (docs/speed.md): off by
# default for photos and unsmoothed streams; mirror=True (--mirror) turns it on. A smoothed stream always
# averages both views (CLASSIFY_INTERVAL).
MIRROR = False
# In a stream with smoothing, a face is classified again once this many seconds of stream time have passed
# (a new face at once; every frame of a stream slower than this), each time as it is and as its mirror
# image, averaged: a face's first answer has both views, and the classifier's work per second is that of
# one view every half interval. The smoothing carries the probabilities in between (docs/design.md).
CLASSIFY_INTERVAL = 0.2
# Frame times are rounded (30 frames/s: 0.0333... s): a face is due this much before the interval is over.
TIME_TOLERANCE = 1e-3


@dataclass
class Face:
    """One detected face. Fields read as attributes (face.emotion) or keys (face["emotion"])."""

    box: tuple          # (x, y, w, h) in frame pixels
    emotion: str        # the most likely of CLASS_NAMES
    confidence: float   # its probability
    probabilities: dict  # every class name -> probability; they sum to 1
    id: int = None      # in a stream: the same while the face stays in view; None for single images
    angle: float = 0.0  # degrees the face is turned in the picture, counter-clockwise; box is its upright square
    frame: int = None   # from analyze(): the frame's number in the video, and its time in seconds
    time: float = None

    @classmethod
    def from_probabilities(cls, box, probabilities, id=None, angle=0.0):
        probabilities = np.asarray(probabilities, dtype=np.float64)
        return cls(box=tuple(int(v) for v in box), emotion=CLASS_NAMES[int(probabilities.argmax())],
                   confidence=float(probabilities.max()),
                   probabilities=dict(zip(CLASS_NAMES, map(float, probabilities))), id=id, angle=float(angle))

    def __getitem__(self, key):
        return getattr(self, key)

    def to_dict(self):
        """The face as JSON-ready values; id, frame and time only where they are known."""
        return {key: value for key, value in asdict(self).items()
                if value is not None or key not in ("id", "frame", "time")}


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
    def __init__(self, model_path=DEFAULT_MODEL_PATH, detector=None, min_face=MIN_FACE, mirror=MIRROR, threads=None,
                 turned=True):
        """model_path: a .keras model. min_face: the smallest face looked for, in frame pixels.
        detector: a FaceDetector to use instead (shared by all threads, which then take turns).
        mirror: classify each face and its mirror image and average them (evaluate.py's "mirror"); a
        smoothed stream does so anyway.
        threads: the model runtime's threads per call (default: the cores, up to 4); 1 where several
        recognizers run side by side (one per video in a batch). turned: also find faces turned in the
        picture (faces.TURNS), at some cost; False finds upright faces only."""
        self.model_path = model_path
        self.min_face = min_face
        self.turns = TURNS if turned else ()
        self.mirror = mirror
        # All faces of a frame go through one call of a classifier built once (see classifier.py).
        self.classifier = load_classifier(model_path, threads)
        # OpenCV's cascade keeps scratch buffers per object, so each thread gets its own; a detector
        # passed in is shared, and calls to it take turns.
        self._given_detector = detector
        self._detector_lock = threading.Lock()
        self._local = threading.local()
        self._local.detector = detector or FaceDetector(min_face=min_face, turns=self.turns)  # fails now if no cascade

    @property
    def detector(self):
        if self._given_detector is not None:
            return self._given_detector
        if not hasattr(self._local, "detector"):
            self._local.detector = FaceDetector(min_face=self.min_face, turns=self.turns)
        return self._local.detector

    def _find_faces(self, gray):
        """(boxes, angles) of the faces in a frame, upright and turned."""
        if self._given_detector is None:
            return self.detector.detect_all(gray)
        with self._detector_lock:
            return self._given_detector.detect_all(gray)

    def classify(self, faces, mirror=None):
        """Probabilities (n, 7) for grayscale 48x48 faces shaped (n, 48, 48) or (n, 48, 48, 1), averaged
        with their mirror images' if `mirror` (default: the recognizer's own setting).

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
        faces = faces.astype(np.float32)
        if not (self.mirror if mirror is None else mirror):
            return self.classifier(faces)
        both = self.classifier(np.concatenate([faces, faces[:, :, ::-1]]))  # one call for both views
        return (both[:len(faces)] + both[len(faces):]) / 2

    def detect(self, frame):
        """Every face in a BGR (or grayscale) frame, with its emotion, as a list of Face."""
        return self.detect_many([frame])[0]

    def detect_many(self, frames):
        """detect() for several frames (a folder's images), with their faces classified in one call."""
        grays = [to_gray(frame) for frame in frames]
        found = [self._find_faces(gray) for gray in grays]
        crops = [faces_pixels(gray, boxes, angles) for gray, (boxes, angles) in zip(grays, found)]
        probabilities = self.classify(np.concatenate(crops)) if crops else np.zeros((0, len(CLASS_NAMES)))
        results, start = [], 0
        for boxes, angles in found:
            results.append([Face.from_probabilities(box, p, angle=angle) for box, angle, p
                            in zip(boxes, angles, probabilities[start:start + len(boxes)])])
            start += len(boxes)
        return results

    def analyze(self, source, every=1, max_frames=None, half_life=HALF_LIFE):
        """Every face of every classified frame of a video file (or a camera index, or a stream's
        address), as Face objects with `frame` and `time` set, one at a time: a long video costs no
        more memory than a short one. every=N classifies every Nth frame. reports.to_dataframe()
        turns them into a pandas DataFrame."""
        from .pipeline import StreamSettings, faces_over_time

        settings = StreamSettings(display=False, every=every, max_frames=max_frames, half_life=half_life)
        return faces_over_time(self, source, settings)

    def stream(self, half_life=HALF_LIFE, full_search_every=FULL_SEARCH_EVERY):
        """A StreamRecognizer for consecutive frames of one video or camera (see tracking.py).

        half_life: seconds over which a face's probabilities are smoothed; None or 0 turns it off.
        """
        return StreamRecognizer(self, half_life, full_search_every)


class StreamRecognizer:
    """Faces of consecutive frames with ids that stay while a face stays, and smoothed probabilities."""

    def __init__(self, recognizer, half_life=HALF_LIFE, full_search_every=FULL_SEARCH_EVERY):
        self.recognizer, self.half_life = recognizer, half_life
        self.tracker = FaceTracker(recognizer.detector, full_search_every)

    def detect(self, frame, time):
        """Faces in this frame; `time` is its time in the stream, in seconds (for the smoothing)."""
        gray = to_gray(frame)
        tracks = self.tracker.update(gray)
        if self.half_life:
            due = [track for track in tracks if track.time is None or time < track.time
                   or time - track.time >= CLASSIFY_INTERVAL - TIME_TOLERANCE]
        else:
            due = tracks  # without smoothing, each frame's answer is its own
        if due:
            faces = faces_pixels(gray, [track.box for track in due], [track.angle for track in due])
            # Smoothed, each classification has both views; unsmoothed, each frame is as the recognizer says.
            both_views = True if self.half_life else None
            for track, probabilities in zip(due, self.recognizer.classify(faces, mirror=both_views)):
                smooth(track, probabilities, time, self.half_life)
        return [Face.from_probabilities(track.box, track.probabilities, id=track.id, angle=track.angle)
                for track in tracks]
