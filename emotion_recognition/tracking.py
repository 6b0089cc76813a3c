"""Following faces through a stream: stable ids, and probabilities smoothed over time.

Searching every frame in full costs the time `fer` spends (its frames/s is this project's yardstick).
A stream rarely needs it: faces stay where they were, or move a little. So the tracker
- searches the whole frame every FULL_SEARCH_EVERY frames (and while it knows no face), upright and turned
  one of faces.TURNS, the next one the next time;
- in between, keeps a settled face (found twice in a row at about the same box) whose box still shows it
  as it was when it was last found: a still face needs no search. It looks for the others near their
  last box, turned as they were (FaceDetector.detect_near_all), and searches any part of the frame that
  changed (a thumbnail of the frame against the last one) for new faces, upright first and turned
  (faces.TURNS) where none is found upright;
- keeps a face whose search misses while its box still shows the same face (detectors flicker), and
  ends it after MAX_MISSES whole-frame searches without it, or MAX_MISSES frames in which it is gone.
Each face keeps an `id` while it stays in view. A face whose thumbnail suddenly stops looking like
the last one (another person took the place) gets a new id, and its smoothing starts afresh.

Smoothing is an exponential moving average of each face's probabilities with a half-life in seconds
(of the stream's own time), so it behaves the same at any frame rate.
"""

from dataclasses import dataclass, field
from itertools import count

import cv2
import numpy as np

from .geometry import centre_inside, iou, inside, widened

# Frames between searches of the whole frame; tracked faces and changed regions are searched in between.
# A face that appears without changing the frame much waits at most this long to be found (docs/design.md,
# "Numbers behind the defaults").
FULL_SEARCH_EVERY = 30
# Boxes of one face in consecutive frames overlap at least this much (intersection over union).
MATCH_IOU = 0.3
# Side of the thumbnails that say whether a box still shows the same face (correlation of pixels).
IDENTITY_SIZE = 24
# Correlation below which a box shows another face than before. The same FER2013 face under the
# detector's jitter correlates at 0.8-1.0 with itself; two different faces rarely above 0.5.
SAME_FACE_CORRELATION = 0.6
# A face found at about the same box twice in a row (intersection over union) has settled; while its box
# correlates with the box as it was when last found at least this much, it has not moved: it is kept
# without a search. A still face under a video codec's noise stays above 0.99.
SETTLED_IOU = 0.8
STILL_CORRELATION = 0.97
# Whole-frame searches that may miss a tracked face, or frames in which its box may show something else,
# before the track ends.
MAX_MISSES = 3
# The frame thumbnail that finds changed regions: cells of 10x10 px at 640x480.
CHANGE_GRID = (64, 48)
# Mean grey-level change of a thumbnail cell that counts as something new there (sensor noise is ~2).
CHANGE_THRESHOLD = 20
# A changed region is widened by this share of its size on each side before it is searched.
REGION_PADDING = 0.5
# Default half-life of the smoothing, in seconds: labels settle within a few frames of a webcam.
HALF_LIFE = 0.3


def identity_thumbnail(gray, box):
    """A small zero-mean, unit-norm copy of a box: the dot product of two is their correlation."""
    x, y, w, h = (int(v) for v in box)
    patch = gray[max(0, y):y + h, max(0, x):x + w]
    if patch.size == 0:
        return np.zeros(IDENTITY_SIZE * IDENTITY_SIZE, np.float32)
    thumb = cv2.resize(patch, (IDENTITY_SIZE, IDENTITY_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    thumb -= thumb.mean()
    norm = float(np.linalg.norm(thumb))
    return thumb / norm if norm > 1e-6 else thumb


@dataclass
class Track:
    id: int
    box: tuple
    thumbnail: np.ndarray
    angle: float = 0.0                 # how far the face is turned in the picture (faces.py)
    settled: bool = False              # found at about the same box by the last two searches
    misses: int = 0
    probabilities: np.ndarray = None   # smoothed
    time: float = None                 # stream time of the last smoothing step
    seen: bool = field(default=True)   # found (or kept) in the current frame


class FaceTracker:
    """Boxes with ids for consecutive frames of one stream (one tracker per stream)."""

    def __init__(self, detector, full_search_every=FULL_SEARCH_EVERY):
        self.detector = detector
        self.full_search_every = max(1, full_search_every)
        self.tracks = []
        self._ids = count(1)
        self._frames_since_full = None
        self._full_searches = 0
        self._previous_grid = None

    def update(self, gray):
        """The tracks visible in this frame (each with .id and .box), left to right."""
        grid = cv2.resize(gray, CHANGE_GRID, interpolation=cv2.INTER_AREA).astype(np.int16)
        full = (self._frames_since_full is None or self._frames_since_full + 1 >= self.full_search_every
                or not self.tracks)
        still = set()  # ids of the tracks kept without a search
        if full:
            turns = self.detector.turns
            turn = (turns[self._full_searches % len(turns)],) if turns else ()
            boxes, angles = self.detector.detect_all(gray, turn)
            found = [(tuple(box), float(angle)) for box, angle in zip(boxes, angles)]
            self._frames_since_full, self._full_searches = 0, self._full_searches + 1
        else:
            self._frames_since_full += 1
            found = []  # (box, angle)
            for track in self.tracks:
                if track.settled and float(track.thumbnail @ identity_thumbnail(gray, track.box)) >= STILL_CORRELATION:
                    found.append((track.box, track.angle))
                    still.add(track.id)
                    continue
                boxes, angles = self.detector.detect_near_all(gray, track.box, track.angle)
                found.extend((tuple(box), float(angle)) for box, angle in zip(boxes, angles))
            # Whatever changed where no face was just found may be a new face (or another face in a
            # known face's place, at another size): search there, with the whole-frame settings,
            # upright first, turned where none is found upright.
            for changed, region in self._changed_regions(grid, gray.shape):
                if any(inside(changed, widened(box, REGION_PADDING)) for box, _ in found):
                    continue
                boxes, angles = self.detector.detect_in_all(gray, region)
                found.extend((tuple(box), float(angle)) for box, angle in zip(boxes, angles))
        found = _without_duplicates(found)
        self._previous_grid = grid
        self._assign(gray, found, full, still)
        return sorted((t for t in self.tracks if t.seen), key=lambda t: (t.box[0], t.box[1]))

    def _changed_regions(self, grid, shape):
        """(changed, region) per blob of change since the last frame: the changed cells' box, and the
        larger region to search, both (x, y, w, h) in frame pixels."""
        if self._previous_grid is None:
            return []
        changed = (np.abs(grid - self._previous_grid) > CHANGE_THRESHOLD).astype(np.uint8)
        if not changed.any():
            return []
        changed = cv2.dilate(changed, np.ones((3, 3), np.uint8))  # a face's scattered changes make one blob
        count_, _, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
        cell_w, cell_h = shape[1] / CHANGE_GRID[0], shape[0] / CHANGE_GRID[1]
        regions = []
        for x, y, w, h, _ in stats[1:count_]:
            # Widened so that a face only partly changed (a new expression) lies wholly inside.
            pad_x = max(w * cell_w * REGION_PADDING, 2 * self.detector.min_face)
            pad_y = max(h * cell_h * REGION_PADDING, 2 * self.detector.min_face)
            left, top = max(0, int(x * cell_w - pad_x)), max(0, int(y * cell_h - pad_y))
            right = min(shape[1], int((x + w) * cell_w + pad_x))
            bottom = min(shape[0], int((y + h) * cell_h + pad_y))
            changed_box = (int(x * cell_w), int(y * cell_h), int(w * cell_w), int(h * cell_h))
            regions.append((changed_box, (left, top, right - left, bottom - top)))
        return regions

    def _assign(self, gray, found, full, still=()):
        boxes = [box for box, _ in found]
        for track in self.tracks:
            track.seen = False
        pairs = sorted(((iou(t.box, b), i, j) for i, t in enumerate(self.tracks) for j, b in enumerate(boxes)),
                       reverse=True)
        used_tracks, used_boxes = set(), set()
        for overlap, i, j in pairs:
            if overlap < MATCH_IOU:
                break
            if i in used_tracks or j in used_boxes:
                continue
            used_tracks.add(i)
            used_boxes.add(j)
            track, box = self.tracks[i], boxes[j]
            if track.id in still and box == track.box:  # kept where it was, compared with itself as last found
                track.misses, track.seen = 0, True
                continue
            thumbnail = identity_thumbnail(gray, box)
            # Another face took the place when neither the new box nor the old one shows the face
            # as it was (the detector's box alone may jump between sizes of the same face).
            if (float(track.thumbnail @ thumbnail) < SAME_FACE_CORRELATION
                    and float(track.thumbnail @ identity_thumbnail(gray, track.box)) < SAME_FACE_CORRELATION):
                # Another face in the same place: a new track, with its own id and its own smoothing.
                self.tracks[i] = Track(id=next(self._ids), box=box, thumbnail=thumbnail, angle=found[j][1])
            else:
                track.settled = iou(track.box, box) >= SETTLED_IOU
                track.box, track.thumbnail, track.angle, track.misses, track.seen = box, thumbnail, found[j][1], 0, True
        for i, track in enumerate(self.tracks):
            if i in used_tracks:
                continue
            # Unfound, but its box still shows the same face: detectors flicker, faces do not vanish
            # without their pixels changing. Only a whole-frame search that misses it again and again
            # (a false detection on a still background) or a changed box ends it.
            still_there = float(track.thumbnail @ identity_thumbnail(gray, track.box)) >= SAME_FACE_CORRELATION
            if full or not still_there:
                track.misses += 1
            track.seen = still_there and track.misses <= MAX_MISSES
        # A track unfound for a few frames stays (unreported), so that the face keeps its id if found again.
        self.tracks = [t for t in self.tracks if t.misses <= MAX_MISSES]
        for j, (box, angle) in enumerate(found):
            if j not in used_boxes:
                self.tracks.append(Track(id=next(self._ids), box=box, thumbnail=identity_thumbnail(gray, box),
                                         angle=angle))


def _without_duplicates(found):
    """One (box, angle) per face: a box whose centre lies inside an earlier one (or the reverse) is
    dropped. Searches overlap, and the same face found at two sizes must not become two faces."""
    kept = []
    for box, angle in found:
        if not any(centre_inside(box, other) or centre_inside(other, box) for other, _ in kept):
            kept.append((box, angle))
    return kept


def smooth(track, probabilities, time, half_life):
    """Fold this frame's probabilities into the track's running average; returns the average."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if track.probabilities is None or not half_life or track.time is None:
        track.probabilities = probabilities
    else:
        keep = 0.5 ** (max(time - track.time, 0.0) / half_life)
        track.probabilities = keep * track.probabilities + (1.0 - keep) * probabilities
    track.time = time
    return track.probabilities
