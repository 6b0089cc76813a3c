"""Drawing the results onto a frame: each face's box and label, its seven probabilities as a panel of
bars, and the frame rate. Nothing drawn covers another face's label or panel: a panel goes where it is
clear, else it shrinks to thin bars inside its own box, else it is left out."""

import cv2
import numpy as np

from .geometry import overlap_area

BOX_COLOR = (0, 200, 0)        # BGR green
TEXT_COLOR = (255, 255, 255)
OUTLINE_COLOR = (0, 0, 0)      # around the frame rate, which may sit on any background
FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_FONT_SCALE, FPS_FONT_SCALE = 0.6, 0.7
LINE_WIDTH = 2                 # pixels, on a frame no larger than DRAWING_REFERENCE_SIZE
# The panel of bars beside a face (sizes in pixels of a webcam-sized frame): the label names only the
# likeliest emotion, the bars show what it was weighed against.
BARS_WIDTH, BARS_ROW_HEIGHT, BARS_NAME_WIDTH, BARS_GAP = 130, 14, 62, 4
BARS_FONT_SCALE = 0.4
BARS_BACKGROUND, BARS_OPACITY = 32, 0.6   # a dark grey panel that keeps the names readable on any picture
BAR_COLOR = (170, 170, 170)    # grey; the face's emotion's bar in BOX_COLOR
# Where no panel fits clear of the others: one thin bar per emotion inside the box's lower edge.
COMPACT_BAR_HEIGHT = 3
# Lines and text are sized for a frame up to this many pixels across (a webcam's); a larger image gets
# them proportionally larger, so that they stay readable when it is shrunk to fit the window.
DRAWING_REFERENCE_SIZE = 800
# The frame-rate counter's first choice is the top left corner; where a label is there, another corner.
FPS_MARGIN = 10
SIDES = ("right", "left", "below", "above")  # where a panel goes, in order of preference


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
    outlined_text(frame, text, (px(FPS_MARGIN), frame.shape[0] - px(15)), FPS_FONT_SCALE * scale, px(LINE_WIDTH))
    return frame


def outline(face):
    """The corners of a face's box as drawn: turned with the face by its angle (an int32 (4, 2) array)."""
    x, y, w, h = face.box
    if not face.angle:
        return np.array([(x, y), (x + w, y), (x + w, y + h), (x, y + h)], dtype=np.int32)
    # OpenCV's rotated rectangles turn clockwise on the screen; a face's angle counts counter-clockwise.
    return np.round(cv2.boxPoints(((x + w / 2, y + h / 2), (w, h), -face.angle))).astype(np.int32)


def covered(rectangle, taken):
    """How much of the rectangles in `taken` a rectangle covers, in square pixels."""
    return sum(overlap_area(rectangle, other) for other in taken)


class Overlay:
    """Draws faces onto the frames of one stream (or onto single images). It remembers on which side of
    each face (by id) its panel went, and keeps it there while that side is clear, so that panels do
    not jump about as other faces come and go; faces gone are forgotten."""

    def __init__(self, bars=True):
        self.bars = bars
        self.sides = {}   # face id -> the side its panel was drawn on last
        self.panels = []  # per face of the last frame: (side or "compact", its rectangle), or None
        self.counter_corner = 0  # the frame rate's corner, kept while it is clear

    def draw(self, frame, faces, fps=None):
        """Draw `faces` (each with .box, .emotion, .confidence, .probabilities, .id) and, unless None,
        the frame rate onto `frame`; returns the frame."""
        scale, px = drawing_units(frame)
        outlines = [outline(face) for face in faces]
        for corners in outlines:  # every box before any label, so that no box's line crosses another face's label
            cv2.polylines(frame, [corners], True, BOX_COLOR, px(LINE_WIDTH))
        # What each box covers upright: the box itself, or a turned box's upright bounds.
        bounds = [cv2.boundingRect(corners) if face.angle else face.box for face, corners in zip(faces, outlines)]
        labels = [self._draw_label(frame, face, box, scale, px) for face, box in zip(faces, bounds)]
        taken = list(labels)  # what must stay uncovered: the faces and their labels, then each panel drawn
        if fps is not None:
            taken.append(self._draw_frame_rate(frame, fps, taken, scale, px))
        self.panels = []
        if self.bars:
            for face, box, label in zip(faces, bounds, labels):
                panel = self._draw_panel(frame, face, box, label, taken, scale, px)
                self.panels.append(panel)
                if panel:
                    taken.append(panel[1])
        for gone in set(self.sides) - {face.id for face in faces}:
            del self.sides[gone]
        return frame

    @staticmethod
    def _draw_label(frame, face, box, scale, px):
        """"emotion confidence%" above `box` (the face's, or a turned one's upright bounds); returns the
        rectangle the box and its label take together (x, y, w, h)."""
        x, y, w, h = box
        line = px(LINE_WIDTH)
        label = f"{face.emotion} {face.confidence:.0%}"
        (text_w, text_h), baseline = cv2.getTextSize(label, FONT, LABEL_FONT_SCALE * scale, line)
        top = max(y - text_h - baseline - px(4), 0)
        cv2.rectangle(frame, (x, top), (x + text_w + px(6), top + text_h + baseline + px(4)), BOX_COLOR, cv2.FILLED)
        cv2.putText(frame, label, (x + px(3), top + text_h + px(2)), FONT, LABEL_FONT_SCALE * scale, TEXT_COLOR, line)
        return x, top, max(w, text_w + px(6)), y + h - top

    def _draw_frame_rate(self, frame, fps, taken, scale, px):
        """"12.3 fps" in the corner it had last if that is clear of `taken`, else in the first clear
        corner (top left, top right, bottom left, bottom right), else the one that covers least;
        returns its rectangle."""
        text, line, font_scale = f"{fps:.1f} fps", px(LINE_WIDTH), FPS_FONT_SCALE * scale
        (text_w, text_h), baseline = cv2.getTextSize(text, FONT, font_scale, 2 * line)
        width, height, margin = text_w + 2 * line, text_h + baseline + 2 * line, px(FPS_MARGIN)
        frame_h, frame_w = frame.shape[:2]
        corners = [(margin, margin), (frame_w - margin - width, margin),
                   (margin, frame_h - margin - height), (frame_w - margin - width, frame_h - margin - height)]
        cover = [covered((*corner, width, height), taken) for corner in corners]
        if cover[self.counter_corner]:
            self.counter_corner = min(range(len(corners)), key=cover.__getitem__)
        left, top = corners[self.counter_corner]
        outlined_text(frame, text, (left + line, top + line + text_h), font_scale, line)
        return left, top, width, height

    def _draw_panel(self, frame, face, box, label, taken, scale, px):
        """The face's probabilities as a panel of bars beside it, on the side it had last if that is
        still clear, else on the first clear side; where none is, thin bars inside the box if they
        cover nothing else; else nothing. Returns (side, the rectangle drawn on), or None."""
        gap, row = px(BARS_GAP), px(BARS_ROW_HEIGHT)
        width, height = px(BARS_WIDTH), row * len(face.probabilities) + 2 * gap
        places = self._panel_places(frame, box, label, width, height, gap)
        clear = [side for side, place in places.items() if not covered((*place, width, height), taken)]
        preferred = self.sides.get(face.id)
        side = preferred if preferred in clear else next(iter(clear), None)
        if side is None:
            return self._draw_compact(frame, face, [other for other in taken if other is not label], px)
        if face.id is not None:
            self.sides[face.id] = side
        left, top = places[side]
        panel = frame[top:top + height, left:left + width]
        panel[:] = cv2.convertScaleAbs(panel, alpha=1 - BARS_OPACITY, beta=BARS_OPACITY * BARS_BACKGROUND)
        bar_left, longest = left + px(BARS_NAME_WIDTH), width - px(BARS_NAME_WIDTH) - gap
        for index, (name, probability) in enumerate(face.probabilities.items()):
            row_top = top + gap + index * row
            cv2.putText(frame, name, (left + gap, row_top + row - px(4)), FONT, BARS_FONT_SCALE * scale, TEXT_COLOR,
                        px(1))
            self._draw_bar(frame, bar_left, row_top + px(3), probability * longest, row - 2 * px(3),
                           BOX_COLOR if name == face.emotion else BAR_COLOR)
        return side, (left, top, width, height)

    @staticmethod
    def _panel_places(frame, box, label, width, height, gap):
        """Each side's top-left corner for a panel, where the frame has room for it there."""
        x, y, w, h = box
        frame_h, frame_w = frame.shape[:2]
        beside = min(max(y, 0), frame_h - height)  # the top of a panel beside the face, inside the frame
        across = min(max(x, 0), frame_w - width)   # the left of a panel below or above the face
        corners = {"right": (x + w + gap, beside), "left": (x - gap - width, beside),
                   "below": (across, y + h + gap), "above": (across, label[1] - gap - height)}
        return {side: (left, top) for side, (left, top) in ((side, corners[side]) for side in SIDES)
                if 0 <= left <= frame_w - width and 0 <= top <= frame_h - height}

    def _draw_compact(self, frame, face, others, px):
        """One thin bar per emotion along the inside of the box's lower edge, if that covers nothing in
        `others` (what is taken besides the face's own box and label); returns ("compact", their
        rectangle), or None."""
        x, y, w, h = face.box
        inset, bar = px(LINE_WIDTH) + 1, px(COMPACT_BAR_HEIGHT)
        width, height = w - 2 * inset, bar * len(face.probabilities)
        rectangle = (x + inset, y + h - inset - height, width, height)
        if width < 1 or height > h // 2 or covered(rectangle, others):
            return None
        self.sides.pop(face.id, None)
        for index, (name, probability) in enumerate(face.probabilities.items()):
            self._draw_bar(frame, rectangle[0], rectangle[1] + index * bar, probability * width, bar,
                           BOX_COLOR if name == face.emotion else BAR_COLOR)
        return "compact", rectangle

    @staticmethod
    def _draw_bar(frame, left, top, length, thickness, color):
        if length >= 1:
            cv2.rectangle(frame, (left, top), (left + round(length) - 1, top + thickness - 1), color, cv2.FILLED)


def annotate(frame, faces, fps=None, bars=True):
    """Draw faces onto one image (no memory of earlier frames); returns the frame."""
    return Overlay(bars).draw(frame, faces, fps)
