"""Running the recognizer over images and streams (sources.py opens them): drawing, windows, JSON,
output files."""

import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from .errors import UserError, check_writable, ensure_folder
from .files import write_atomic
from .preprocessing import decode_image
from . import sources
from .sources import RECONNECT_S, LatestFrame, PatientCamera, StreamClock, describe, open_source
from .tracking import HALF_LIFE

WINDOW_TITLE = "Emotion recognition (q or Esc quits)"
QUIT_KEYS = (ord("q"), ord("Q"), 27)
BOX_COLOR = (0, 200, 0)        # BGR green
TEXT_COLOR = (255, 255, 255)
OUTLINE_COLOR = (0, 0, 0)      # around the frame rate, which may sit on any background
FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_FONT_SCALE, FPS_FONT_SCALE = 0.6, 0.7
LINE_WIDTH = 2                 # pixels, on a frame no larger than DRAWING_REFERENCE_SIZE
# Beside each face, its seven probabilities as bars (sizes in pixels of a webcam-sized frame): the
# label names only the likeliest emotion, the bars show what it was weighed against.
BARS_WIDTH, BARS_ROW_HEIGHT, BARS_NAME_WIDTH, BARS_GAP = 130, 14, 62, 4
BARS_FONT_SCALE = 0.4
BARS_BACKGROUND, BARS_OPACITY = 32, 0.6   # a dark grey panel that keeps the names readable on any picture
BAR_COLOR = (170, 170, 170)    # grey; the face's emotion's bar in BOX_COLOR
# Lines and text are sized for a frame up to this many pixels across (a webcam's); a larger image
# gets them proportionally larger, so that they stay readable when it is shrunk to fit the window.
DRAWING_REFERENCE_SIZE = 800
# The window shows a larger image shrunk to fit this (width, height): a phone photo would otherwise
# open at full size, far beyond the screen, with the faces out of sight.
MAX_WINDOW_SIZE = (1280, 720)
# While a live stream's next frame is late, the window is still asked this often (seconds) whether
# the user wants to stop: without it, q and the close button would do nothing until a frame came.
WINDOW_POLL_S = 0.05
RECONNECTING_NOTICE = "stream lost: reconnecting..."


class Window:
    """The window that frames and images are shown in. show() returns True once the user asks to
    stop: q or Esc, or the window's close button (after which OpenCV would quietly open it again)."""

    def __init__(self, title=WINDOW_TITLE):
        self.title = title
        self.reports_closing = None  # whether this GUI backend tells a closed window (GTK's does not)

    def _visible(self):
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:  # Qt's answer once the window is gone
            return False

    def show(self, image, wait_ms):
        """Show `image` (shrunk to fit MAX_WINDOW_SIZE) and wait up to `wait_ms` milliseconds (0: until
        a key) for the user."""
        height, width = image.shape[:2]
        shrink = min(1.0, MAX_WINDOW_SIZE[0] / width, MAX_WINDOW_SIZE[1] / height)
        if shrink < 1.0:
            image = cv2.resize(image, (max(1, round(width * shrink)), max(1, round(height * shrink))),
                               interpolation=cv2.INTER_AREA)
        cv2.imshow(self.title, image)
        if self.reports_closing is None:  # asked once, while the window is surely open
            self.reports_closing = self._visible()
        key = cv2.waitKey(wait_ms) & 0xFF
        return key in QUIT_KEYS or (self.reports_closing and not self._visible())


def annotate(frame, faces, fps=None, bars=True, sides=None):
    """Draw each face's box, emotion and confidence, its probabilities as bars beside it (unless
    bars=False), and optionally the frame rate onto `frame`, lines and text in proportion to the
    frame (DRAWING_REFERENCE_SIZE). sides: for the frames of one stream, a dict (face id -> side)
    that keeps each face's bars on the side they were drawn on last while it stays clear, so that
    they do not jump about as other faces come and go."""
    scale, px = drawing_units(frame)
    line = px(LINE_WIDTH)
    areas = []  # each face's box with its label
    for face in faces:
        x, y, w, h = face.box
        label = f"{face.emotion} {face.confidence:.0%}"
        cv2.rectangle(frame, (x, y), (x + w, y + h), BOX_COLOR, line)
        (text_w, text_h), baseline = cv2.getTextSize(label, FONT, LABEL_FONT_SCALE * scale, line)
        top = max(y - text_h - baseline - px(4), 0)
        cv2.rectangle(frame, (x, top), (x + text_w + px(6), top + text_h + baseline + px(4)), BOX_COLOR, cv2.FILLED)
        cv2.putText(frame, label, (x + px(3), top + text_h + px(2)), FONT, LABEL_FONT_SCALE * scale, TEXT_COLOR, line)
        areas.append((x, top, max(w, text_w + px(6)), y + h - top))
    if bars:
        taken = list(areas)  # what the bars should not cover: the faces, their labels and the panels drawn so far
        for face, area in zip(faces, areas):
            placed = draw_bars(frame, face, px, scale, taken, area,
                               prefer=sides.get(face.id) if sides is not None else None)
            if placed:
                side, panel = placed
                taken.append(panel)
                if sides is not None and face.id is not None:
                    sides[face.id] = side
        if sides is not None:  # faces gone are forgotten
            for gone in set(sides) - {face.id for face in faces}:
                del sides[gone]
    if fps is not None:
        outlined_text(frame, f"{fps:.1f} fps", (px(10), px(25)), FPS_FONT_SCALE * scale, line)
    return frame


def drawing_units(frame):
    """(scale, px) for drawing on `frame`: how much larger than on a webcam-sized frame lines and text
    are, and px(n), n pixels of a webcam-sized frame in this frame's pixels."""
    scale = max(1.0, max(frame.shape[:2]) / DRAWING_REFERENCE_SIZE)
    return scale, lambda n: max(1, round(n * scale))


def outlined_text(frame, text, origin, font_scale, line):
    """White text outlined in black, readable on any background."""
    for color, width in ((OUTLINE_COLOR, 2 * line), (TEXT_COLOR, line)):
        cv2.putText(frame, text, origin, FONT, font_scale, color, width)


def draw_notice(frame, text):
    """A line of text at the bottom left of `frame`, in the frame rate's style."""
    scale, px = drawing_units(frame)
    outlined_text(frame, text, (px(10), frame.shape[0] - px(15)), FPS_FONT_SCALE * scale, px(LINE_WIDTH))
    return frame


def overlap_area(a, b):
    """The area two rectangles (x, y, w, h) share."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, width) * max(0, height)


def draw_bars(frame, face, px, scale, taken=(), area=None, prefer=None):
    """The face's probabilities as bars on a dark panel: right of its box, else left of it, else
    below it, else above its label (`area`: the box and its label, x, y, w, h), wherever the frame has
    room and the panel covers the least of `taken` (rectangles x, y, w, h: the faces, their labels and
    the panels drawn before); on the side `prefer` if it has room and covers nothing; over the face
    where the frame has no room (a face that fills it); nothing where the frame is smaller than the
    panel. Returns (side, the panel's rectangle), or None."""
    x, y, w, h = face.box
    area_top = (area or face.box)[1]
    gap, row = px(BARS_GAP), px(BARS_ROW_HEIGHT)
    width, height = px(BARS_WIDTH), row * len(face.probabilities) + 2 * gap
    frame_h, frame_w = frame.shape[:2]
    if width > frame_w or height > frame_h:
        return None
    beside = min(max(y, 0), frame_h - height)  # the top of a panel beside the face, inside the frame
    across = min(max(x, 0), frame_w - width)  # the left of a panel below or above the face
    places = {side: (left, top) for side, (left, top) in
              {"right": (x + w + gap, beside), "left": (x - gap - width, beside), "below": (across, y + h + gap),
               "above": (across, area_top - gap - height)}.items()
              if 0 <= left <= frame_w - width and 0 <= top <= frame_h - height}
    covered = {side: sum(overlap_area((*place, width, height), other) for other in taken)
               for side, place in places.items()}
    # The side preferred if it covers nothing, else the first that covers nothing, else the one that covers least.
    if prefer in places and not covered[prefer]:
        side = prefer
    else:
        side = min(places, key=covered.get, default="over")
    left, top = places.get(side, (frame_w - width, beside))
    panel = frame[top:top + height, left:left + width]
    panel[:] = cv2.convertScaleAbs(panel, alpha=1 - BARS_OPACITY, beta=BARS_OPACITY * BARS_BACKGROUND)  # blended
    bar_left, longest = left + px(BARS_NAME_WIDTH), width - px(BARS_NAME_WIDTH) - gap
    for index, (name, probability) in enumerate(face.probabilities.items()):
        row_top = top + gap + index * row
        color = BOX_COLOR if name == face.emotion else BAR_COLOR
        cv2.putText(frame, name, (left + gap, row_top + row - px(4)), FONT, BARS_FONT_SCALE * scale, TEXT_COLOR, px(1))
        if probability * longest >= 1:
            cv2.rectangle(frame, (bar_left, row_top + px(3)), (bar_left + round(probability * longest) - 1,
                                                               row_top + row - px(3)), color, cv2.FILLED)
    return side, (left, top, width, height)


def faces_json(faces, **key):
    """One line of --json output, e.g. {"frame": 0, "faces": [...]} or {"image": "a.png", "faces": [...]}."""
    return json.dumps({**key, "faces": [face.to_dict() for face in faces]})


def check_display():
    """Fail early, with advice, where no window can open (servers, containers, SSH sessions)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("no display to open a window on (DISPLAY is not set)", reason="no-display")


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


def write_image(path, image):
    check_writable(path)
    suffix = Path(path).suffix or ".png"
    ok, encoded = cv2.imencode(suffix, image)
    if not ok:
        raise UserError(f"cannot write {path}: OpenCV cannot encode '{suffix}' images; use .png or .jpg")
    write_atomic(path, encoded.tobytes())


# A folder's images are decoded and their faces classified this many at a time (one model call).
IMAGES_PER_CALL = 16


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


def run_images(recognizer, paths, output=None, display=True, as_json=False, bars=True):
    """Recognize emotions in image files and folders of them. Returns a summary dict.

    A file named directly must be a readable image (checked before any work); a file found in a
    folder that is not one is skipped with a warning. With several images, `output` is a folder
    (mirroring a folder's layout). Faces of several images are classified in one model call.
    """
    from tqdm import tqdm

    entries = list_images(paths)
    several = len(entries) > 1 or any(Path(p).is_dir() for p in paths)
    if output and several:
        ensure_folder(output, "output folder")
    named = {path: read_image(path) for path, _, is_named in entries if is_named}  # every named file first
    if not entries:
        raise UserError(f"no files in {', '.join(map(str, paths))}")
    skipped, images_done, faces_seen = [], 0, 0
    progress = tqdm(total=len(entries), unit="image", file=sys.stderr, leave=False, disable=len(entries) < 2)
    window = Window() if display else None
    try:
        for start in range(0, len(entries), IMAGES_PER_CALL):
            chunk = []
            for path, place, is_named in entries[start:start + IMAGES_PER_CALL]:
                image = named[path] if is_named else _read_or_none(path)
                if image is None:
                    skipped.append(path)
                    progress.write(f"warning: skipped {path}: not a readable image", file=sys.stderr)
                    progress.update(1)
                else:
                    chunk.append((path, place, image))
            for (path, place, image), faces in zip(chunk, recognizer.detect_many([image for _, _, image in chunk])):
                images_done += 1
                faces_seen += len(faces)
                if as_json:
                    print(faces_json(faces, image=str(path)), flush=True)
                else:
                    summary = ", ".join(f"{f.emotion} {f.confidence:.0%}" for f in faces) or "no face found"
                    progress.write(f"{path}: {summary}", file=sys.stderr)
                progress.update(1)
                annotate(image, faces, bars=bars)
                if output:
                    target = Path(output) / place if several else Path(output)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    write_image(target, image)
                if window and window.show(image, 0):  # 0: until a key
                    return _images_summary(images_done, faces_seen, skipped)
    finally:
        progress.close()
        if display:
            cv2.destroyAllWindows()
    if not images_done:
        raise UserError(f"no readable images among the {len(entries)} file(s) in {', '.join(map(str, paths))}")
    return _images_summary(images_done, faces_seen, skipped)


def _read_or_none(path):
    try:
        return decode_image(Path(path).read_bytes())
    except OSError:
        return None


def _images_summary(images, faces, skipped):
    return {"images": images, "faces": faces, "skipped": [str(p) for p in skipped]}


class FrameRate:
    """Frames per second over a sliding window of recent frames, for the on-screen counter."""

    def __init__(self, window=30):
        self.times, self.window = [], window

    def tick(self):
        self.times = (self.times + [time.perf_counter()])[-self.window:]
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


def run_stream(recognizer, source, output=None, display=True, as_json=False, max_frames=None, every=1,
               half_life=HALF_LIFE, bars=True, reconnect_s=RECONNECT_S, selfie=False):
    """Recognize emotions in the frames of a camera, a network stream or a video file until it ends,
    or q, Esc or the window's close button.

    Faces are tracked from frame to frame (ids) and their probabilities smoothed over `half_life`
    seconds of the stream's time (None: off). every=N classifies every Nth frame (the others are
    skipped undecoded). In a window, a file plays at its own frame rate. A live network stream that
    stops is opened again for up to `reconnect_s` seconds; a camera that gives no frame is waited for
    a few seconds before it counts as stopped. selfie: every frame is mirrored left to right before
    anything else, so the window, the output video and the boxes show it as a mirror does (as video
    calls show you to yourself). Returns a summary dict (frames, faces, seconds, fps; live and
    source_ended: whether it was a camera or live stream, and whether it ended by itself; for a live
    network stream also dropped, the frames that arrived while others were being classified, and
    reconnects). The capture and the output video are always released, so a
    stream that stops mid-run still leaves a finished, playable file.
    """
    from tqdm import tqdm

    if every < 1:
        raise UserError(f"every must be 1 or more (1 classifies every frame), not {every}")
    if output:
        check_writable(output)
    capture, live = open_source(source, reconnect_s=reconnect_s)
    ok, frame = capture.read()
    if not ok:
        capture.release()
        if isinstance(capture, PatientCamera):
            what = (f"camera {source} gave no frames within {sources.CAMERA_PATIENCE_S:g} s; check that no other "
                    "program is using it (and on macOS, that the terminal may use the camera)")
        elif live:
            what = f"{describe(source)} gave no frames; check that it is a working video stream"
        else:
            what = f"cannot read video {source}: no frame decodes; check the file"
        raise UserError(what, reason="no-frames")
    stream = recognizer.stream(half_life=half_life)
    clock = StreamClock(capture, live, every)
    video_out = OutputVideo(output, clock.fps / every, follows_clock=live) if output else None
    total = None if live else (int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) + every - 1) // every or None
    if max_frames:
        total = min(total, max_frames) if total else max_frames
    # A video file gets a progress bar on stderr; a camera or a live stream has no end to show.
    progress = tqdm(total=total, unit="frame", disable=live, file=sys.stderr, leave=False)
    rate = FrameRate()
    bar_sides = {}  # each face's bars stay on their side from frame to frame while it is clear
    window = Window() if display else None
    index = frames = faces_seen = 0  # index: the frame's number in the source; frames: those classified
    started = time.perf_counter()
    try:
        while ok and (max_frames is None or frames < max_frames):
            if selfie:
                frame = cv2.flip(frame, 1)
            seconds = clock.time(index)
            faces = stream.detect(frame, seconds)
            if as_json:
                print(faces_json(faces, frame=index, time=round(seconds, 3)), flush=True)
            frames += 1
            faces_seen += len(faces)
            progress.update(1)
            fps = rate.tick()
            if output or display:
                annotate(frame, faces, fps=fps if display else None, bars=bars, sides=bar_sides)
            if video_out:
                video_out.write(frame, seconds)
            if window and window.show(frame, clock.wait_ms(seconds)):
                break
            for _ in range(every - 1):  # frames not classified are not even decoded
                ok = capture.grab()
                index += 1
                if not ok:
                    break
            if ok:
                if window and isinstance(capture, LatestFrame) and wait_in_window(window, capture, frame):
                    break
                ok, frame = capture.read()  # False at the end of a file or when a camera stops
                index += 1
    finally:
        progress.close()
        capture.release()
        if video_out:
            video_out.release()
        if display:
            cv2.destroyAllWindows()
    seconds = time.perf_counter() - started
    summary = {"frames": frames, "faces": faces_seen, "seconds": seconds, "fps": frames / seconds if seconds else 0.0,
               "live": live, "source_ended": not ok}
    if isinstance(capture, LatestFrame):
        summary.update(dropped=capture.dropped, reconnects=capture.reconnects)
    return summary


def wait_in_window(window, stream, frame):
    """Wait for a live stream's next frame with the window still answering q, Esc and its close
    button; while the stream reconnects, its last frame shows a notice. True if the user quit."""
    while not stream.wait(WINDOW_POLL_S):
        shown = draw_notice(frame.copy(), RECONNECTING_NOTICE) if stream.reconnecting else frame
        if window.show(shown, 1):
            return True
    return False


class OutputVideo:
    """The annotated video being written (--output), opened at the first frame, in real time.

    A file's classified frames are written once each at the file's rate (over --every), so the video
    keeps the file's pace. A camera's frames come only as fast as they are classified, so each is
    written at the time the clock gives it, the picture before it filling the video up to then
    (repeated while classification is slower than the rate, or while a stream reconnects), and left
    out while frames come faster than the rate. A frame of another size than the first (a stream
    that came back at another resolution, a phone turned) is fitted into the first one's, with black
    borders: a video has one size, and OpenCV would leave such frames out.
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
