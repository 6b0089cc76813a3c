"""The OpenCV window that frames and images are shown in."""

import os
import sys

import cv2

from .errors import UserError
from .overlay import draw_notice

WINDOW_TITLE = "Emotion recognition (q or Esc quits)"
QUIT_KEYS = (ord("q"), ord("Q"), 27)
# A larger image is shown shrunk to fit this (width, height): a phone photo would otherwise open at
# full size, far beyond the screen, with the faces out of sight.
MAX_WINDOW_SIZE = (1280, 720)
# While a live stream's next frame is late, the window is still asked this often (seconds) whether the
# user wants to stop: without it, q and the close button would do nothing until a frame came.
WINDOW_POLL_S = 0.05
RECONNECTING_NOTICE = "stream lost: reconnecting..."


def check_display():
    """Fail early, with advice, where no window can open (servers, containers, SSH sessions)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("no display to open a window on (DISPLAY is not set)", reason="no-display")


class Window:
    """show() returns True once the user asks to stop: q or Esc, or the window's close button (after
    which OpenCV would quietly open it again)."""

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

    def wait_for(self, source, frame):
        """Wait for a live source's next frame with the window still answering q, Esc and its close
        button; while the source reconnects, its last frame shows a notice. True if the user quit."""
        while not source.wait(WINDOW_POLL_S):
            shown = draw_notice(frame.copy(), RECONNECTING_NOTICE) if source.reconnecting else frame
            if self.show(shown, 1):
                return True
        return False

    def close(self):
        cv2.destroyAllWindows()
