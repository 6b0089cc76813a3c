"""Image and video files: reading and writing images, listing a folder's files, and the annotated
video being written (OutputVideo)."""

from pathlib import Path

import cv2
import numpy as np

from .errors import UserError, check_writable
from .files import write_atomic
from .preprocessing import decode_image


def read_image(path):
    """Read an image file as a BGR array, with a clear error for missing or undecodable files."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image {path} not found; check the path")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read image {path}: {error.strerror}; check its permissions") from error
    image = decode_image(data)
    if image is None:
        raise UserError(f"{path} is not an image OpenCV can read (JPEG, PNG, BMP, ...); check the file")
    return image


def read_image_or_none(path):
    """An image file as a BGR array, or None where it cannot be read or is not an image."""
    try:
        return decode_image(Path(path).read_bytes())
    except OSError:
        return None


def write_image(path, image):
    """Write an image atomically, in the format its suffix names (PNG without one)."""
    check_writable(path)
    suffix = Path(path).suffix or ".png"
    ok, encoded = cv2.imencode(suffix, image)
    if not ok:
        raise UserError(f"cannot write {path}: OpenCV cannot encode '{suffix}' images; use .png or .jpg")
    write_atomic(path, encoded.tobytes())


def list_images(paths):
    """(file, place under --output, named) for each file to read: the files named, and every file in
    the folders named, recursively, in sorted order (hidden files and folders left out).

    With a single folder named, the places mirror its layout; otherwise files named go to their
    own name and each folder's files under the folder's name."""
    entries, single_folder = [], len(paths) == 1 and Path(paths[0]).is_dir()
    for path in map(Path, paths):
        if not path.is_dir():
            entries.append((path, Path(path.name), True))
            continue
        files = sorted(p for p in path.rglob("*")
                       if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
        for file in files:
            relative = file.relative_to(path)
            entries.append((file, relative if single_folder else Path(path.name) / relative, False))
    return entries


class OutputVideo:
    """The annotated video being written (--output), opened at the first frame, in real time.

    A file's classified frames are written once each at the file's rate (over --every), so the video
    keeps the file's pace. A live source's frames come only as fast as they are classified, so each
    is written at the time the clock gives it, the picture before it filling the gap (repeated while
    classification is slower than the rate, or while a stream reconnects), and left out while frames
    come faster than the rate. A frame of another size than the first (a stream that came back at
    another resolution, a phone turned) is fitted into the first one's, with black borders.
    """

    def __init__(self, path, fps, follows_clock):
        self.path, self.fps, self.follows_clock = path, fps, follows_clock
        self.writer, self.size, self.written, self.last = None, None, 0, None

    def write(self, frame, seconds):
        """Write `frame`, shown `seconds` after the first one."""
        if self.writer is None:
            self.size = frame.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*("XVID" if str(self.path).lower().endswith(".avi") else "mp4v"))
            self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self.size[::-1])
            if not self.writer.isOpened():
                raise UserError(f"cannot write video {self.path}; use a .mp4 or .avi file name in a writable folder")
        if frame.shape[:2] != self.size:
            frame = fit_into(frame, self.size)
        if self.follows_clock:
            due = int(seconds * self.fps)  # the video frame it is shown from
            while self.written < due:
                self._put(frame if self.last is None else self.last)
            self.last = frame
            if self.written > due:  # this video frame already shows an earlier picture
                return
        self._put(frame)

    def _put(self, frame):
        self.writer.write(frame)
        self.written += 1

    def release(self):
        if self.writer is not None:
            self.writer.release()


def fit_into(frame, size):
    """`frame` shrunk or enlarged to fit (height, width) `size` whole, centred on black."""
    height, width = size
    scale = min(height / frame.shape[0], width / frame.shape[1])
    fitted_w, fitted_h = max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale))
    canvas = np.zeros((height, width, frame.shape[2]), frame.dtype)
    top, left = (height - fitted_h) // 2, (width - fitted_w) // 2
    canvas[top:top + fitted_h, left:left + fitted_w] = cv2.resize(frame, (fitted_w, fitted_h),
                                                                  interpolation=cv2.INTER_AREA)
    return canvas
