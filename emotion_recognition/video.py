"""Running the recognizer over images, video files and cameras: drawing, windows, JSON, output files."""

import json
import os
import sys
import time
from pathlib import Path

import cv2

from .errors import UserError, check_writable, ensure_folder
from .files import write_atomic
from .preprocessing import decode_image

WINDOW_TITLE = "Emotion recognition (q or Esc quits)"
QUIT_KEYS = (ord("q"), ord("Q"), 27)
BOX_COLOR = (0, 200, 0)        # BGR green
TEXT_COLOR = (255, 255, 255)
FALLBACK_FPS = 30.0            # cameras often report 0 frames/s; output videos still need a rate


def annotate(frame, faces, fps=None):
    """Draw each face's box, emotion and confidence (and optionally the frame rate) onto `frame`."""
    for face in faces:
        x, y, w, h = face.box
        label = f"{face.emotion} {face.confidence:.0%}"
        cv2.rectangle(frame, (x, y), (x + w, y + h), BOX_COLOR, 2)
        (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 2)
        top = max(y - text_h - baseline - 4, 0)
        cv2.rectangle(frame, (x, top), (x + text_w + 6, top + text_h + baseline + 4), BOX_COLOR, cv2.FILLED)
        cv2.putText(frame, label, (x + 3, top + text_h + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, TEXT_COLOR, 2)
    if fps is not None:
        cv2.putText(frame, f"{fps:.1f} fps", (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4)
        cv2.putText(frame, f"{fps:.1f} fps", (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, TEXT_COLOR, 2)
    return frame


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


def run_images(recognizer, paths, output=None, display=True, as_json=False):
    """Recognize emotions in image files. With several images, `output` is a folder."""
    if output and len(paths) > 1:
        ensure_folder(output, "output folder")
    images = [(path, read_image(path)) for path in paths]  # every path checked before any work
    for path, image in images:
        faces = recognizer.detect(image)
        if as_json:
            print(faces_json(faces, image=str(path)), flush=True)
        else:
            summary = ", ".join(f"{f.emotion} {f.confidence:.0%}" for f in faces) or "no face found"
            print(f"{path}: {summary}", file=sys.stderr)
        annotate(image, faces)
        if output:
            write_image(Path(output) / Path(path).name if len(paths) > 1 else output, image)
        if display:
            cv2.imshow(WINDOW_TITLE, image)
            if (cv2.waitKey(0) & 0xFF) in QUIT_KEYS:
                break
    if display:
        cv2.destroyAllWindows()


def open_source(source):
    """A cv2.VideoCapture for a camera index ('0') or a video file path, or a clear error."""
    is_camera = str(source).isdigit()
    if not is_camera and not Path(source).is_file():
        raise UserError(f"video file {source} not found; pass a camera index such as 0, or a video file")
    # OpenCV logs every backend it tries; the one line below says what matters.
    previous_level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        capture = cv2.VideoCapture(int(source)) if is_camera else cv2.VideoCapture(str(source))
    finally:
        cv2.utils.logging.setLogLevel(previous_level)
    if not capture.isOpened():
        capture.release()
        if is_camera:
            raise UserError(f"cannot open camera {source}; check that it is connected and not used by another "
                            "program", reason="no-camera")
        raise UserError(f"cannot read video {source}: OpenCV cannot decode it; check the file or convert it to MP4")
    return capture, is_camera


class FrameRate:
    """Frames per second over a sliding window of recent frames, for the on-screen counter."""

    def __init__(self, window=30):
        self.times, self.window = [], window

    def tick(self):
        self.times = (self.times + [time.perf_counter()])[-self.window:]
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


def run_stream(recognizer, source, output=None, display=True, as_json=False, max_frames=None):
    """Recognize emotions frame by frame from a camera or video file until it ends or q/Esc.

    Returns a summary dict (frames, faces, seconds, fps). The capture and the output video are
    always released, so a stream that stops mid-run still leaves a finished, playable file.
    """
    from tqdm import tqdm

    if output:
        check_writable(output)
    capture, is_camera = open_source(source)
    ok, frame = capture.read()
    if not ok:
        capture.release()
        what = f"camera {source} gave no frames" if is_camera else f"cannot read video {source}: no frame decodes"
        raise UserError(f"{what}; check the {'camera' if is_camera else 'file'}", reason="no-frames")
    writer = None
    total = None if is_camera else int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if max_frames:
        total = min(total, max_frames) if total else max_frames
    # A video file gets a progress bar on stderr; a live camera has no end to show.
    progress = tqdm(total=total, unit="frame", disable=is_camera, file=sys.stderr, leave=False)
    rate = FrameRate()
    frames = faces_seen = 0
    started = time.perf_counter()
    try:
        while ok and (max_frames is None or frames < max_frames):
            faces = recognizer.detect(frame)
            if as_json:
                print(faces_json(faces, frame=frames), flush=True)
            frames += 1
            faces_seen += len(faces)
            progress.update(1)
            fps = rate.tick()
            if output or display:
                annotate(frame, faces, fps=fps if display else None)
            if output:
                if writer is None:
                    writer = _open_writer(output, capture, frame)
                writer.write(frame)
            if display:
                cv2.imshow(WINDOW_TITLE, frame)
                if (cv2.waitKey(1) & 0xFF) in QUIT_KEYS:
                    break
            ok, frame = capture.read()  # False at the end of a file or when a camera stops
    finally:
        progress.close()
        capture.release()
        if writer is not None:
            writer.release()
        if display:
            cv2.destroyAllWindows()
    seconds = time.perf_counter() - started
    return {"frames": frames, "faces": faces_seen, "seconds": seconds, "fps": frames / seconds if seconds else 0.0}


def _open_writer(path, capture, frame):
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and fps > 0 else FALLBACK_FPS
    height, width = frame.shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*("XVID" if str(path).lower().endswith(".avi") else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (width, height))
    if not writer.isOpened():
        raise UserError(f"cannot write video {path}; use a .mp4 or .avi file name in a writable folder")
    return writer
