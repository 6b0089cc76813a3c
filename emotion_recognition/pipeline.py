"""Images and streams through the recognizer: each image or frame's faces go to the window, the
annotated output file, and whatever else listens (JSON lines on stdout, a report). Each loop returns
a typed summary."""

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from .errors import UserError, check_writable, ensure_folder
from .media import OutputVideo, list_images, read_image, read_image_or_none, write_image
from .overlay import Overlay
from .sources import RECONNECT_S, StreamClock, open_source
from .tracking import HALF_LIFE
from .window import Window

# A folder's images are decoded and their faces classified this many at a time (one model call).
IMAGES_PER_CALL = 16
FRAME_RATE_WINDOW = 30  # frames the on-screen frame rate is averaged over


def faces_json(faces, **key):
    """One line of --json output, e.g. {"frame": 0, "time": 0.0, "faces": [...]} or {"image": "a.png", ...}."""
    return json.dumps({**key, "faces": [face.to_dict() for face in faces]})


class JsonLines:
    """--json for a stream: one line per classified frame on stdout, flushed at once."""

    def add(self, index, seconds, faces):
        print(faces_json(faces, frame=index, time=round(seconds, 3)), flush=True)

    def close(self, finished=True):
        pass


# --- Images ------------------------------------------------------------------------------------------

@dataclass
class ImagesSummary:
    images: int = 0                               # images read and classified
    faces: int = 0
    skipped: list = field(default_factory=list)   # files in folders that are not readable images


def run_images(recognizer, paths, output=None, display=True, as_json=False, bars=True):
    """Recognize emotions in image files and folders of them; returns an ImagesSummary.

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
    summary, overlay = ImagesSummary(), Overlay(bars)
    progress = tqdm(total=len(entries), unit="image", file=sys.stderr, leave=False, disable=len(entries) < 2)
    window = Window() if display else None
    try:
        for start in range(0, len(entries), IMAGES_PER_CALL):
            chunk = []
            for path, place, is_named in entries[start:start + IMAGES_PER_CALL]:
                image = named[path] if is_named else read_image_or_none(path)
                if image is None:
                    summary.skipped.append(str(path))
                    progress.write(f"warning: skipped {path}: not a readable image", file=sys.stderr)
                    progress.update(1)
                else:
                    chunk.append((path, place, image))
            for (path, place, image), faces in zip(chunk, recognizer.detect_many([image for _, _, image in chunk])):
                summary.images += 1
                summary.faces += len(faces)
                if as_json:
                    print(faces_json(faces, image=str(path)), flush=True)
                else:
                    said = ", ".join(f"{f.emotion} {f.confidence:.0%}" for f in faces) or "no face found"
                    progress.write(f"{path}: {said}", file=sys.stderr)
                progress.update(1)
                overlay.draw(image, faces)
                if output:
                    target = Path(output) / place if several else Path(output)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    write_image(target, image)
                if window and window.show(image, 0):  # 0: until a key
                    return summary
    finally:
        progress.close()
        if window:
            window.close()
    if not summary.images:
        raise UserError(f"no readable images among the {len(entries)} file(s) in {', '.join(map(str, paths))}")
    return summary


# --- Streams -----------------------------------------------------------------------------------------

@dataclass
class StreamSettings:
    """How a stream is run. Bad values raise ValueError naming the setting."""

    display: bool = True         # show a window (q, Esc or its close button stops)
    output: str = None           # the annotated video's path
    max_frames: int = None       # stop after this many classified frames
    every: int = 1               # classify every Nth frame; the others are skipped without decoding
    half_life: float = HALF_LIFE  # seconds of stream time each face's probabilities are smoothed over; 0: off
    bars: bool = True            # each face's probabilities as bars beside it
    reconnect: float = RECONNECT_S  # seconds a live network stream that stops is opened again for
    selfie: bool = False         # mirror every frame first, as video calls show you to yourself
    progress: bool = True        # a video file's progress bar on stderr

    def __post_init__(self):
        if self.every < 1:
            raise ValueError(f"every must be 1 or more (1 classifies every frame), not {self.every}")
        if self.half_life is not None and self.half_life < 0:
            raise ValueError(f"half-life must be 0 or more seconds, not {self.half_life:g}")
        if self.reconnect < 0:
            raise ValueError(f"reconnect must be 0 or more seconds, not {self.reconnect:g}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max-frames must be 1 or more, not {self.max_frames}")


@dataclass
class StreamSummary:
    frames: int            # frames classified
    faces: int             # faces seen in them, all told
    seconds: float         # wall-clock time of the run
    source: object         # the Source: its kind, name, dropped frames, reconnects, why_stopped()
    source_ended: bool     # it ended by itself (not max_frames, not the user)

    @property
    def fps(self):
        return self.frames / self.seconds if self.seconds else 0.0


class FrameRate:
    """Frames per second over a sliding window of recent frames, for the on-screen counter."""

    def __init__(self, window=FRAME_RATE_WINDOW):
        self.times, self.window = [], window

    def tick(self):
        self.times = (self.times + [time.perf_counter()])[-self.window:]
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


class ClassifiedFrames:
    """The classified frames of a camera, a network stream or a video file (open_source's `address`),
    as (index, seconds, frame, faces), one at a time: index is the frame's number in the source,
    seconds its time in the stream. Faces are tracked from frame to frame (ids) and their
    probabilities smoothed over stream time. Opening it opens the source (a clear error if it gives no
    frame); the source is released when the iteration ends, however it ends. `ended` tells whether
    the source ended by itself; nothing is kept from one frame to the next but the tracker's state.
    """

    def __init__(self, recognizer, address, settings):
        self.settings, self.ended = settings, False
        self.source = open_source(address, reconnect_s=settings.reconnect)
        ok, self._first = self.source.read()
        if not ok:
            self.source.release()
            raise self.source.no_frames_error()
        self.clock = StreamClock(self.source, self.source.live, settings.every)
        self.stream = recognizer.stream(half_life=settings.half_life)

    def expected(self):
        """How many frames will be classified, for a progress bar; None for a live source."""
        every, limit = self.settings.every, self.settings.max_frames
        total = None if self.source.live else (int(self.source.get(cv2.CAP_PROP_FRAME_COUNT)) + every - 1) // every
        return min(total, limit) if total and limit else (total or limit)

    def __iter__(self):
        settings, source = self.settings, self.source
        frame, index, frames = self._first, 0, 0
        try:
            while settings.max_frames is None or frames < settings.max_frames:
                if settings.selfie:
                    frame = cv2.flip(frame, 1)
                seconds = self.clock.time(index)
                frames += 1
                yield index, seconds, frame, self.stream.detect(frame, seconds)
                ok = True
                for _ in range(settings.every - 1):  # frames not classified are not even decoded
                    ok = source.grab()
                    index += 1
                    if not ok:
                        break
                if ok:
                    ok, frame = source.read()  # False at the end of a file or when a camera stops
                    index += 1
                if not ok:
                    self.ended = True
                    return
        finally:
            source.release()


def run_stream(recognizer, address, settings=None, listeners=()):
    """Recognize emotions in the frames of a camera, a network stream or a video file until it ends,
    max_frames, or the user stops the window; returns a StreamSummary.

    Each classified frame's faces go to every listener's add(index, seconds, faces) (JsonLines, a
    reports.ReportWriter); at the end each is closed with close(finished), finished False where an
    error or Ctrl-C cut the run short. The source and the output video are always released, so a
    stream that stops mid-run still leaves a finished, playable file.
    """
    from tqdm import tqdm

    settings = settings or StreamSettings()
    if settings.output:
        check_writable(settings.output)
    frames_of = ClassifiedFrames(recognizer, address, settings)
    source, clock = frames_of.source, frames_of.clock
    video_out = OutputVideo(settings.output, clock.fps / settings.every, follows_clock=source.live) \
        if settings.output else None
    # A video file gets a progress bar on stderr; a camera or a live stream has no end to show.
    progress = tqdm(total=frames_of.expected(), unit="frame", disable=source.live or not settings.progress,
                    file=sys.stderr, leave=False)
    rate, overlay = FrameRate(), Overlay(settings.bars)
    window = Window() if settings.display else None
    frames = faces_seen = 0
    finished = False
    started = time.perf_counter()
    try:
        for index, seconds, frame, faces in frames_of:
            for listener in listeners:
                listener.add(index, seconds, faces)
            frames += 1
            faces_seen += len(faces)
            progress.update(1)
            fps = rate.tick()
            if video_out or window:
                overlay.draw(frame, faces, fps=fps if window else None)
            if video_out:
                video_out.write(frame, seconds)
            if window and (window.show(frame, clock.wait_ms(seconds))
                           or (source.live and window.wait_for(source, frame))):
                break
        finished = True
    finally:
        progress.close()
        source.release()  # at once, also when the window stopped the run
        if video_out:
            video_out.release()
        if window:
            window.close()
        for listener in listeners:
            listener.close(finished)
    return StreamSummary(frames=frames, faces=faces_seen, seconds=time.perf_counter() - started, source=source,
                         source_ended=frames_of.ended)


def faces_over_time(recognizer, address, settings=None):
    """Every face of every classified frame of a video, camera or stream, as Face objects with their
    `frame` and `time` set: EmotionRecognizer.analyze()."""
    settings = settings or StreamSettings(display=False)
    for index, seconds, _, faces in ClassifiedFrames(recognizer, address, settings):
        for face in faces:
            face.frame, face.time = index, seconds
            yield face
