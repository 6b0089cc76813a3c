"""Where a stream's frames come from (Source: a camera, a network stream or a video file, which says
what it is and why it ended), and the clock that gives each frame its time."""

import os
import re
import sys
import threading
import time
from pathlib import Path

import cv2

from .errors import UserError

FALLBACK_FPS = 30.0  # cameras often report 0 frames/s; output videos still need a rate
# A network stream that does not answer within this many seconds is reported, not waited for
# (FFmpeg's own default is 30 s, long enough to look like a hang).
STREAM_TIMEOUT_S = 10
# A live network stream that stops is opened again for up to this many seconds before the run ends:
# Wi-Fi cameras drop out for moments, and a phone's webcam app stops while the phone locks its screen.
RECONNECT_S = 30
RECONNECT_PAUSE_S = 1.0  # between tries, so that a refused address is not asked hundreds of times a second
# A camera may give no frame for a moment: many send their first a second or more after they open,
# and some miss one now and then, which OpenCV reports like a camera that has gone. Only one that
# gives nothing for this long has stopped.
CAMERA_PATIENCE_S = 5.0
RETRY_PAUSE_S = 0.02  # between reads of a camera that gave no frame


def is_stream_url(source):
    """True for a network stream's address (rtsp://..., http://...), which OpenCV's FFmpeg opens."""
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", str(source)) is not None


def redact(source):
    """The source as it may be printed: a stream address's user name and password left out."""
    return re.sub(r"://[^/]*@", "://***@", str(source))  # up to the authority's last @: passwords may hold one


def describe(source):
    """How messages name a source: "camera 0", "stream rtsp://***@host/path", "video clip.mp4"."""
    if str(source).isdigit():
        return f"camera {source}"
    return f"stream {redact(source)}" if is_stream_url(source) else f"video {source}"


CAMERA, STREAM, VIDEO = "camera", "stream", "video"  # the kinds of source


class Source:
    """An opened camera, live network stream or video file: its frames (read, grab, get, release, as
    OpenCV's captures), what it is, what it dropped, and why it ended.

    kind: CAMERA, STREAM (a live network stream) or VIDEO (a file, or the address of a recording).
    live: whether its frames come in real time (a camera or a live stream). name: how messages name it,
    with a stream's password left out. A camera is read through PatientCamera, which waits out a
    moment without frames; a live stream through LatestFrame, which keeps only the newest frame and
    reconnects for up to reconnect_s seconds."""

    def __init__(self, address, kind, capture, reconnect_s=RECONNECT_S):
        self.address, self.kind, self.capture, self.reconnect_s = str(address), kind, capture, reconnect_s
        self.name = describe(address)
        self.live = kind != VIDEO
        self.released = False

    def read(self):
        return self.capture.read()

    def grab(self):
        return self.capture.grab()

    def get(self, prop):
        return self.capture.get(prop)

    def release(self):
        """Stop reading (once; later calls do nothing)."""
        if not self.released:
            self.released = True
            self.capture.release()

    def wait(self, seconds):
        """Wait up to `seconds` for the next frame of a live stream; True once read() would answer at
        once (for a camera or a file, always)."""
        return self.capture.wait(seconds) if self.kind == STREAM else True

    @property
    def reconnecting(self):
        return self.kind == STREAM and self.capture.reconnecting

    @property
    def dropped(self):
        """Frames of a live stream that arrived while others were being classified, and were left out."""
        return self.capture.dropped if self.kind == STREAM else 0

    @property
    def reconnects(self):
        return self.capture.reconnects if self.kind == STREAM else 0

    def no_frames_error(self):
        """The error for a source that opened but gave no frame at all."""
        if self.kind == CAMERA:
            return UserError(f"{self.name} gave no frames within {CAMERA_PATIENCE_S:g} s; check that no other "
                             "program is using it (and on macOS, that the terminal may use the camera)",
                             reason="no-frames")
        if self.kind == STREAM:
            return UserError(f"{self.name} gave no frames; check that it is a working video stream", reason="no-frames")
        return UserError(f"cannot read video {self.address}: no frame decodes; check the file", reason="no-frames")

    def why_stopped(self):
        """Why a live source's frames stopped, for the line said when a run ends by itself (a window
        that closes by itself is a mystery otherwise)."""
        if self.kind == CAMERA:
            return f"{self.name} stopped sending frames (none for {CAMERA_PATIENCE_S:g} s)"
        why = f"{self.name} stopped sending frames (it ended, or sent none for {STREAM_TIMEOUT_S} s)"
        return why + (f" and did not come back within {self.reconnect_s:g} s" if self.reconnect_s > 0 else "")


def open_source(source, reconnect_s=RECONNECT_S):
    """Open a camera index ('0'), a network stream's address or a video file as a Source, or raise a
    clear error. A URL of a recorded video (one with a frame count) is read like a file."""
    is_camera, is_url = str(source).isdigit(), is_stream_url(source)
    if not (is_camera or is_url) and not Path(source).is_file():
        raise UserError(f"video file {source} not found; pass a camera index such as 0, a stream's address "
                        "(rtsp://..., http://...), or a video file")
    capture = _capture(source, is_camera, is_url)
    if not capture.isOpened():
        capture.release()
        if is_camera:
            raise UserError(f"cannot open camera {source}; check that it is connected and not used by another "
                            "program", reason="no-camera")
        if is_url:
            raise UserError(f"cannot open stream {redact(source)}: refused, no answer within {STREAM_TIMEOUT_S} s, "
                            "or no video there; check the address, and that the camera is on and reachable from "
                            "this computer", reason="no-stream")
        raise UserError(f"cannot read video {source}: OpenCV cannot decode it; check the file or convert it to MP4")
    if is_camera:
        return Source(source, CAMERA, PatientCamera(capture), reconnect_s)
    if is_url and not capture.get(cv2.CAP_PROP_FRAME_COUNT) > 0:  # a live stream has no frame count
        latest = LatestFrame(capture, reopen=lambda: _reopen(source), reconnect_s=reconnect_s, name=describe(source))
        return Source(source, STREAM, latest, reconnect_s)
    return Source(source, VIDEO, capture, reconnect_s)


def _capture(source, is_camera, is_url):
    """An OpenCV capture of the source, opened or not."""
    # OpenCV logs every backend it tries; open_source's one line says what matters.
    previous_level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        if is_camera:
            # On Windows, OpenCV's Media Foundation backend can take from seconds to minutes to open a
            # webcam while it tries hardware colour conversions for every mode (opencv/opencv#17687);
            # without them it opens at once. Elsewhere the setting is unused; a user's own value wins.
            os.environ.setdefault("OPENCV_VIDEOIO_MSMF_ENABLE_HW_TRANSFORMS", "0")
            return cv2.VideoCapture(int(source))
        if is_url:
            timeout_ms = 1000 * STREAM_TIMEOUT_S
            return cv2.VideoCapture(str(source), cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms,
                                                                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
        return cv2.VideoCapture(str(source))
    finally:
        cv2.utils.logging.setLogLevel(previous_level)


def _reopen(address):
    """The live stream at `address` opened again, or None where it does not answer (yet)."""
    capture = _capture(address, is_camera=False, is_url=True)
    if capture.isOpened():
        return capture
    capture.release()
    return None


class PatientCamera:
    """A camera whose read() and grab() wait out a moment without frames, up to CAMERA_PATIENCE_S,
    before they report that it has stopped.

    It is read where it was opened, on the main thread: on macOS, OpenCV's cameras have given no
    frames when read from another thread (opencv/opencv#4473), and opening one again after it
    stopped has crashed there (opencv/opencv#8091), so an unplugged camera is not reopened."""

    def __init__(self, capture):
        self.capture = capture

    def _patiently(self, attempt):
        silent_since = time.monotonic()
        while True:
            ok, frame = attempt()
            if ok or time.monotonic() - silent_since >= CAMERA_PATIENCE_S:
                return ok, frame
            time.sleep(RETRY_PAUSE_S)

    def read(self):
        return self._patiently(self.capture.read)

    def grab(self):
        return self._patiently(lambda: (self.capture.grab(), None))[0]

    def get(self, prop):
        return self.capture.get(prop)

    def release(self):
        self.capture.release()


class LatestFrame:
    """A live stream, read on a thread of its own that keeps only the newest frame.

    FFmpeg hands over a network stream's frames in order, however late they are taken: were
    classifying slower than the stream, the picture would fall further and further behind it. Here
    the frames that arrive while one is being classified are dropped instead (counted in `dropped`),
    as a camera's driver drops them. read() and grab() wait for a frame newer than the last one
    taken, and answer False once the stream has ended.

    A stream that stops (it ended, or sent nothing for STREAM_TIMEOUT_S) is opened again with
    `reopen()` (a new capture, or None) every RECONNECT_PAUSE_S for up to `reconnect_s` seconds from
    the moment it stopped, until a frame comes again (a stream that opens but sends nothing is still
    away), and only once it has sent a frame (one that never did is not working). `reconnecting`
    tells while it is away, `reconnects` counts the times it came back. What happens is said on
    stderr, naming the stream as `name`.
    """

    STALLED_S = 1.0  # a read that takes longer than this (any live stream's frame interval) has stalled

    def __init__(self, capture, reopen=None, reconnect_s=0, name="stream"):
        self.capture, self.reopen, self.reconnect_s, self.name = capture, reopen, reconnect_s, name
        # Read before the thread starts: a capture is not to be asked anything while it reads.
        self.fps = capture.get(cv2.CAP_PROP_FPS)
        self.changed = threading.Condition()
        self.frame, self.fresh, self.ended, self.dropped = None, False, False, 0
        self.reconnecting, self.reconnects, self.lost_at = False, 0, None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._read_until_end, daemon=True)
        self.thread.start()

    def _read_until_end(self):
        try:
            while not self.stopping.is_set():
                ok, frame = self.capture.read()
                if not ok:
                    if self._reconnect():
                        continue
                    break
                with self.changed:
                    if self.reconnecting:
                        print(f"{self.name} reconnected after {time.monotonic() - self.lost_at:.1f} s",
                              file=sys.stderr, flush=True)
                        self.reconnecting, self.reconnects = False, self.reconnects + 1
                    self.dropped += self.fresh  # the previous frame was never taken
                    self.frame, self.fresh = frame, True
                    self.changed.notify_all()
        finally:  # whatever happens here, the reader of frames must not wait for ever
            with self.changed:
                self.ended = True
                self.changed.notify_all()

    def _reconnect(self):
        """Open the stream again, within reconnect_s seconds of when it stopped; True once it is open
        (it is back when a frame comes)."""
        if self.reopen is None or self.reconnect_s <= 0 or self.frame is None or self.stopping.is_set():
            return False
        if not self.reconnecting:
            print(f"{self.name} stopped sending frames; trying to reconnect for up to {self.reconnect_s:g} s",
                  file=sys.stderr, flush=True)
            self.reconnecting, self.lost_at = True, time.monotonic()
        else:  # opened again, but it gave nothing: pause as between any two tries
            self.stopping.wait(RECONNECT_PAUSE_S)
        while time.monotonic() - self.lost_at < self.reconnect_s and not self.stopping.is_set():
            capture = self.reopen()
            if capture is not None:
                self.capture.release()
                self.capture = capture
                return True
            self.stopping.wait(RECONNECT_PAUSE_S)
        self.reconnecting = False
        return False

    def wait(self, seconds):
        """Wait up to `seconds` for what read() would answer at once (a new frame, or the end); True if it came."""
        with self.changed:
            return self.changed.wait_for(lambda: self.fresh or self.ended, timeout=seconds)

    def read(self):
        with self.changed:
            self.changed.wait_for(lambda: self.fresh or self.ended)
            if not self.fresh:
                return False, None
            self.fresh = False
            return True, self.frame

    def grab(self):
        return self.read()[0]

    def get(self, prop):
        """The stream's frame rate, as its capture reported it; 0 for anything else (no frame count)."""
        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        """Stop reading. The read under way finishes first; one stuck in a stalled stream is left to
        end with the process (releasing the capture under it could crash), so that quitting is quick."""
        self.stopping.set()
        self.thread.join(timeout=self.STALLED_S)
        if not self.thread.is_alive():
            self.capture.release()


class StreamClock:
    """A frame's time in seconds: a file's own timestamps (its frame rate where it has none), a
    camera's or live stream's wall-clock time since the first frame. Also how long a window waits
    to play a file at its own speed. `capture`: a Source, or anything with get()."""

    def __init__(self, capture, live, every=1):
        self.capture, self.live, self.every = capture, live, every
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else FALLBACK_FPS
        self.started = time.perf_counter()
        self.last = -1.0

    def time(self, index):
        if self.live:
            return time.perf_counter() - self.started
        stamp = self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        # Some containers report no timestamps (0 throughout); frame number / rate stands in.
        seconds = stamp if stamp > self.last or index == 0 else index / self.fps
        self.last = seconds
        return seconds

    def wait_ms(self, seconds):
        """Milliseconds to wait before the next frame shows: a file's frames are due at their own times."""
        if self.live:
            return 1
        due = seconds + self.every / self.fps - (time.perf_counter() - self.started)
        return max(1, round(1000 * due))
