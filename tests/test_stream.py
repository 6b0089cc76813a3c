"""Live recognition: face ids that stay, smoothing over stream time, --every, JSON time, folders,
windows, output videos, network streams."""

import json
import queue
import threading
import time

import cv2
import numpy as np
import pytest

from emotion_recognition.config import CLASS_NAMES
from emotion_recognition.recognizer import CLASSIFY_INTERVAL, TIME_TOLERANCE
from emotion_recognition.tracking import FaceTracker, smooth, Track

from conftest import assert_clean_error


def json_lines(result):
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def video_frames(path):
    """Every frame of a video file, decoded."""
    capture, frames = cv2.VideoCapture(str(path)), []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    capture.release()
    return frames


# --- Ids ---------------------------------------------------------------------------------------------

def test_a_face_moving_across_the_video_keeps_one_id(cli, face_video):
    records = json_lines(cli("recognize", "--source", face_video, "--no-display", "--json"))
    ids = [face["id"] for record in records for face in record["faces"]]
    assert len(ids) >= 10 and set(ids) == {ids[0]}, ids


class FixedDetector:
    """Finds a face at the given boxes in every search, whatever the frame shows."""

    min_face = 50
    turns = ()

    def __init__(self, boxes):
        self.boxes = np.array(boxes, dtype=np.int32).reshape(-1, 4)

    def detect_all(self, gray, turns=None):
        return self.boxes, np.zeros(len(self.boxes))

    def detect_near_all(self, gray, box, angle=0.0):
        return self.boxes, np.zeros(len(self.boxes))

    def detect_in(self, gray, region, **_):
        return self.boxes

    def detect_in_all(self, gray, region):
        return self.boxes, np.zeros(len(self.boxes))


def textured_frame(seed, box=(100, 80, 120, 120)):
    """A plain frame with a random blurred texture (a stand-in face) in `box`."""
    frame = np.full((480, 640), 128, np.uint8)
    x, y, w, h = box
    texture = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    frame[y:y + h, x:x + w] = cv2.GaussianBlur(texture, (9, 9), 0)
    return frame


def test_another_face_in_the_same_place_gets_a_new_id_and_the_same_face_keeps_its_own():
    box = (100, 80, 120, 120)
    tracker = FaceTracker(FixedDetector([box]))
    first = [tracker.update(textured_frame(seed=1))[0].id for _ in range(5)]
    second = [tracker.update(textured_frame(seed=2))[0].id for _ in range(5)]
    assert len(set(first)) == 1 and len(set(second)) == 1 and first[0] != second[0]


def test_a_face_the_detector_misses_for_a_moment_is_kept_while_its_box_still_shows_it():
    box = (100, 80, 120, 120)
    detector = FixedDetector([box])
    tracker = FaceTracker(detector, full_search_every=1000)
    frame = textured_frame(seed=1)
    face_id = tracker.update(frame)[0].id
    detector.boxes = np.zeros((0, 4), np.int32)  # the detector flickers
    assert [t.id for t in tracker.update(frame)] == [face_id]
    # ... but a box that no longer shows the face is not reported.
    assert tracker.update(np.full((480, 640), 128, np.uint8)) == []


class CountingDetector(FixedDetector):
    """A FixedDetector that counts its searches near known faces and notes the turns of each whole-frame search."""

    turns = (30.0, -30.0)

    def __init__(self, boxes):
        super().__init__(boxes)
        self.near_searches, self.full_turns = 0, []

    def detect_all(self, gray, turns=None):
        self.full_turns.append(self.turns if turns is None else tuple(turns))
        return super().detect_all(gray)

    def detect_near_all(self, gray, box, angle=0.0):
        self.near_searches += 1
        return super().detect_near_all(gray, box, angle)


def test_a_still_face_is_kept_without_a_search_until_it_moves():
    box = (100, 80, 120, 120)
    detector = CountingDetector([box])
    tracker = FaceTracker(detector, full_search_every=1000)
    frame = textured_frame(seed=1)
    face_id = tracker.update(frame)[0].id             # found by the whole-frame search
    tracker.update(frame)                             # found again at the same box: settled
    searched = detector.near_searches
    assert searched == 1
    for _ in range(5):
        assert [t.id for t in tracker.update(frame)] == [face_id]
    assert detector.near_searches == searched         # still: no search
    changed = frame.copy()  # a strip of the face changes (a smile), as in the thumbnail's lower part
    changed[180:200, 100:220] = textured_frame(seed=2)[180:200, 100:220]
    assert [t.id for t in tracker.update(changed)] == [face_id]
    assert detector.near_searches == searched + 1     # no longer as it was: searched again, the same face


def test_whole_frame_searches_take_the_turned_copies_in_turn():
    detector = CountingDetector([(100, 80, 120, 120)])
    tracker = FaceTracker(detector, full_search_every=2)
    for _ in range(8):
        tracker.update(textured_frame(seed=1))
    assert detector.full_turns == [(30.0,), (-30.0,), (30.0,), (-30.0,)]


# --- Smoothing ---------------------------------------------------------------------------------------

def test_smoothing_halves_the_distance_in_one_half_life_at_any_frame_rate():
    old, new = np.eye(7)[0], np.eye(7)[3]
    one_step = Track(id=1, box=(0, 0, 1, 1), thumbnail=None)
    smooth(one_step, old, time=0.0, half_life=0.5)
    assert np.allclose(smooth(one_step, new, time=0.5, half_life=0.5), (old + new) / 2)
    five_steps = Track(id=1, box=(0, 0, 1, 1), thumbnail=None)
    smooth(five_steps, old, time=0.0, half_life=0.5)
    for step in range(1, 6):
        result = smooth(five_steps, new, time=0.1 * step, half_life=0.5)
    assert np.allclose(result, one_step.probabilities)
    no_smoothing = Track(id=1, box=(0, 0, 1, 1), thumbnail=None)
    smooth(no_smoothing, old, time=0.0, half_life=None)
    assert np.allclose(smooth(no_smoothing, new, time=0.1, half_life=None), new)


def test_video_probabilities_are_the_raw_ones_smoothed_over_stream_time(cli, face_video):
    # A smoothed video classifies both views of a face, as --mirror makes the raw run do in every frame.
    raw = json_lines(cli("recognize", "--source", face_video, "--no-display", "--json", "--no-smoothing", "--mirror"))
    half_life = 0.2  # seconds; by chance equal to CLASSIFY_INTERVAL, which the loop below uses as well
    smoothed = json_lines(cli("recognize", "--source", face_video, "--no-display", "--json", "--half-life", str(half_life)))
    assert [r["faces"] and r["faces"][0]["box"] for r in raw] == [r["faces"] and r["faces"][0]["box"] for r in smoothed]
    # A face is classified once per CLASSIFY_INTERVAL of stream time: then it shows its average moved toward
    # this frame's raw answer by stream time, in the frames between its last average.
    average, last_time, differs, classified = None, None, False, 0
    for raw_record, smoothed_record in zip(raw, smoothed):
        if not raw_record["faces"]:
            continue
        p = np.array([raw_record["faces"][0]["probabilities"][c] for c in CLASS_NAMES])
        shown = np.array([smoothed_record["faces"][0]["probabilities"][c] for c in CLASS_NAMES])
        if last_time is None or raw_record["time"] - last_time >= CLASSIFY_INTERVAL - TIME_TOLERANCE:
            keep = 0.0 if average is None else 0.5 ** ((raw_record["time"] - last_time) / half_life)
            average = p if average is None else keep * average + (1 - keep) * p
            last_time, classified = raw_record["time"], classified + 1
        assert np.allclose(shown, average, atol=1e-6)
        differs |= not np.allclose(shown, p, atol=1e-3)
    assert classified > 1
    assert differs  # the face moves, its raw probabilities change, and the smoothing shows


def test_a_smoothed_video_classifies_each_face_with_its_mirror_image_once_per_interval(astronaut_png, shipped_model):
    from emotion_recognition import EmotionRecognizer
    from emotion_recognition.preprocessing import faces_pixels, to_gray

    frame = cv2.imread(str(astronaut_png))
    recognizer = EmotionRecognizer(shipped_model)
    face = recognizer.detect(frame)[0]
    crop = faces_pixels(to_gray(frame), [face.box], [face.angle])
    as_is, both = recognizer.classify(crop)[0], recognizer.classify(crop, mirror=True)[0]
    assert not np.allclose(as_is, both, atol=1e-3)
    calls = []
    classifier = recognizer.classifier
    recognizer.classifier = lambda faces: calls.append(len(faces)) or classifier(faces)

    def shown(stream, times):
        faces = [stream.detect(frame, t)[0] for t in times]
        return [np.array([face.probabilities[c] for c in CLASS_NAMES]) for face in faces]

    # A half-life far shorter than a frame: each frame shows the last classification. Frames come twice
    # per CLASSIFY_INTERVAL, so the face is classified in every other frame, each time with both views.
    assert all(np.allclose(p, both, atol=1e-5)
               for p in shown(recognizer.stream(half_life=1e-6), np.arange(9) * CLASSIFY_INTERVAL / 2))
    assert calls == [2] * 5  # frames 0, 2, 4, 6 and 8: the face and its mirror image in one call
    # Without smoothing every frame is classified as the recognizer says: as it is by default,
    calls.clear()
    assert all(np.allclose(p, as_is, atol=1e-5) for p in shown(recognizer.stream(half_life=None), (0.0, 0.05)))
    assert calls == [1, 1]
    # and with both views averaged with --mirror.
    recognizer.mirror = True
    assert all(np.allclose(p, both, atol=1e-5) for p in shown(recognizer.stream(half_life=None), (0.0, 0.05)))


def test_images_are_never_smoothed(cli, astronaut_png):
    first = json_lines(cli("recognize", "--image", astronaut_png, astronaut_png, "--json", "--no-display"))
    assert first[0]["faces"][0]["probabilities"] == first[1]["faces"][0]["probabilities"]
    assert "id" not in first[0]["faces"][0]


# --- Time and --every --------------------------------------------------------------------------------

def test_json_lines_carry_frame_and_time_from_the_stream(cli, face_video):
    records = json_lines(cli("recognize", "--source", face_video, "--no-display", "--json"))
    assert [r["frame"] for r in records] == list(range(12))
    assert [r["time"] for r in records] == pytest.approx([i / 10 for i in range(12)])  # a 10 frames/s file


def test_every_nth_frame_keeps_the_source_frame_numbers_and_times(cli, face_video, tmp_path):
    output = tmp_path / "every3.mp4"
    records = json_lines(cli("recognize", "--source", face_video, "--no-display", "--json", "--every", "3",
                             "--output", output))
    assert [r["frame"] for r in records] == [0, 3, 6, 9]
    assert [r["time"] for r in records] == pytest.approx([0.0, 0.3, 0.6, 0.9])
    written = cv2.VideoCapture(str(output))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    written.release()


def test_selfie_shows_the_video_mirrored_with_its_boxes(cli, face_video, tmp_path):
    plain = json_lines(cli("recognize", "--source", face_video, "--no-display", "--json"))
    output = tmp_path / "selfie.mp4"
    selfie = json_lines(cli("recognize", "--source", face_video, "--no-display", "--json", "--selfie",
                            "--output", output))
    width = video_frames(face_video)[0].shape[1]
    for before, after in zip(plain, selfie):
        (x, y, w, h), = [face["box"] for face in before["faces"]]
        (mirrored_x, mirrored_y, mirrored_w, _), = [face["box"] for face in after["faces"]]
        # The face drifts right in the video, so left in the selfie view; the same box, mirrored.
        assert abs(mirrored_x - (width - x - w)) <= 0.1 * w and abs(mirrored_y - y) <= 0.1 * h
    # The written picture is the mirrored one: inside the face's box (less its outline) it is the source
    # frame mirrored, up to the codec's loss.
    (x, y, w, h), = [face["box"] for face in selfie[0]["faces"]]
    inside = np.s_[y + 5:y + h - 5, x + 5:x + w - 5]
    written, mirrored = video_frames(output)[0][inside], cv2.flip(video_frames(face_video)[0], 1)[inside]
    assert np.abs(written.astype(int) - mirrored).mean() < 10


# --- Folders -----------------------------------------------------------------------------------------

@pytest.fixture
def photo_folder(tmp_path, astronaut_png):
    """A folder tree: 6 photos in three levels, a text file, and a truncated (corrupt) JPEG."""
    root = tmp_path / "photos"
    photo = cv2.resize(cv2.imread(str(astronaut_png)), (256, 256))
    for i, sub in enumerate(["", "", "a", "a", "a/b", "a/b"]):
        (root / sub).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / sub / f"photo{i}.jpg"), photo if i % 2 else cv2.flip(photo, 1))
    (root / "notes.txt").write_text("not an image")
    jpeg = (root / "photo0.jpg").read_bytes()
    (root / "a" / "broken.jpg").write_bytes(jpeg[:300])
    return root


def test_a_folder_is_read_recursively_skipping_bad_files_and_mirrored_into_output(cli, photo_folder, tmp_path):
    output = tmp_path / "annotated"
    result = cli("recognize", "--image", photo_folder, "--json", "--no-display", "--output", output)
    records = json_lines(result)
    assert len(records) == 6 and all(len(r["faces"]) == 1 for r in records)
    assert [r["image"] for r in records] == sorted(r["image"] for r in records)  # a stable order
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    assert len(warnings) == 2 and any("broken.jpg" in w for w in warnings) and any("notes.txt" in w for w in warnings)
    assert "6 images, 6 faces; skipped 2 file(s)" in result.stderr
    written = sorted(str(p.relative_to(output)) for p in output.rglob("*.jpg"))
    assert written == ["a/b/photo4.jpg", "a/b/photo5.jpg", "a/photo2.jpg", "a/photo3.jpg", "photo0.jpg", "photo1.jpg"]


def test_faces_of_a_folder_are_classified_as_they_are_one_by_one(photo_folder, shipped_model):
    from emotion_recognition import EmotionRecognizer

    recognizer = EmotionRecognizer(shipped_model)
    images = [cv2.imread(str(p)) for p in sorted(photo_folder.rglob("photo*.jpg"))]
    together = recognizer.detect_many(images)
    for image, faces in zip(images, together):
        alone = recognizer.detect(image)
        assert [f.box for f in faces] == [f.box for f in alone]
        assert np.allclose([list(f.probabilities.values()) for f in faces],
                           [list(f.probabilities.values()) for f in alone], atol=1e-6)


def test_a_folder_without_readable_images_is_an_error(cli, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("text")
    result = cli("recognize", "--image", folder, "--json", "--no-display")
    assert result.returncode != 0 and "no readable images" in result.stderr


# --- Detection settings ------------------------------------------------------------------------------

def test_min_face_larger_than_the_face_finds_nothing(cli, astronaut_png):
    assert len(json_lines(cli("recognize", "--image", astronaut_png, "--json", "--no-display"))[0]["faces"]) == 1
    assert json_lines(cli("recognize", "--image", astronaut_png, "--json", "--no-display",
                          "--min-face", "300"))[0]["faces"] == []
    result = cli("recognize", "--image", astronaut_png, "--no-display", "--min-face", "0")
    assert result.returncode == 2 and "--min-face" in result.stderr


def test_a_file_in_a_window_plays_at_its_own_frame_rate():
    from emotion_recognition.sources import StreamClock

    class TenFramesPerSecond:
        def get(self, prop):
            return 10.0 if prop == cv2.CAP_PROP_FPS else 0.0

    clock = StreamClock(TenFramesPerSecond(), live=False)
    clock.started -= 0.25           # a quarter of a second after the first frame showed
    assert 340 <= clock.wait_ms(0.5) <= 350   # the frame after the one at 0.5 s is due at 0.6 s
    assert clock.wait_ms(0.0) == 1            # late frames show at once
    assert StreamClock(TenFramesPerSecond(), live=True).wait_ms(5.0) == 1  # a camera never waits


# --- The window --------------------------------------------------------------------------------------

class FakeGui:
    """cv2's window functions as one GUI backend answers them. `closes`: how it tells a window the
    user has closed ("zero": visibility 0, as Win32; "error": an exception, as Qt; "never": -1 always,
    as GTK, which cannot tell)."""

    def __init__(self, closes, keys=()):
        self.closes, self.keys, self.open = closes, list(keys), False
        self.user_closes = False  # during the next wait, the user clicks the close button

    def imshow(self, title, image):
        self.open = True  # as OpenCV: showing an image opens the window again

    def waitKey(self, ms):
        if self.user_closes:
            self.open = self.user_closes = False
        return self.keys.pop(0) if self.keys else -1

    def getWindowProperty(self, title, prop):
        if self.closes == "never":
            return -1.0
        if not self.open and self.closes == "error":
            raise cv2.error("NULL guiReceiver (please create a window)")
        return 1.0 if self.open else 0.0


@pytest.mark.parametrize("closes", ["zero", "error", "never"])
def test_the_window_stops_on_its_close_button_where_the_backend_tells(monkeypatch, closes):
    from emotion_recognition.window import Window

    gui = FakeGui(closes)
    for name in ("imshow", "waitKey", "getWindowProperty"):
        monkeypatch.setattr(cv2, name, getattr(gui, name))
    window, frame = Window(), np.zeros((4, 4, 3), np.uint8)
    assert not window.show(frame, 1) and not window.show(frame, 1)  # open: go on
    gui.user_closes = True
    assert window.show(frame, 1) == (closes != "never")


def test_the_window_stops_on_q_or_esc_whatever_the_backend(monkeypatch):
    from emotion_recognition.window import Window

    for key in (ord("q"), 27):
        gui = FakeGui("never", keys=[-1, key])
        for name in ("imshow", "waitKey", "getWindowProperty"):
            monkeypatch.setattr(cv2, name, getattr(gui, name))
        window, frame = Window(), np.zeros((4, 4, 3), np.uint8)
        assert not window.show(frame, 1) and window.show(frame, 1)


def test_a_large_photo_is_shown_whole_and_its_labels_stay_readable(monkeypatch):
    from emotion_recognition.recognizer import Face
    from emotion_recognition.overlay import annotate
    from emotion_recognition.window import MAX_WINDOW_SIZE, Window

    shown = []
    monkeypatch.setattr(cv2, "imshow", lambda title, image: shown.append(image.shape[:2]))
    monkeypatch.setattr(cv2, "waitKey", lambda ms: -1)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda title, prop: 1.0)
    window = Window()
    for height, width in ((3000, 4000), (480, 640)):
        window.show(np.zeros((height, width, 3), np.uint8), 1)
    (big_h, big_w), small = shown
    assert big_w <= MAX_WINDOW_SIZE[0] and big_h <= MAX_WINDOW_SIZE[1] and abs(big_w / big_h - 4 / 3) < 0.01
    assert small == (480, 640)  # a webcam frame is shown as it is

    def box_line_width(size):
        face = Face.from_probabilities((size // 4,) * 2 + (size // 2,) * 2, np.eye(7)[3])
        frame = annotate(np.zeros((size, size, 3), np.uint8), [face], bars=False)
        return int((frame[size // 2, :, 1] > 0).sum()) // 2  # the box's left and right edges, on a middle row

    # OpenCV draws a line of width w as w + 1 pixels: 2 up to 800 px across, then in proportion.
    assert box_line_width(400) == box_line_width(800) == 3 and box_line_width(4000) == 11


def test_bars_beside_a_face_show_each_probability_in_proportion():
    from emotion_recognition.recognizer import Face
    from emotion_recognition.overlay import BAR_COLOR, BARS_GAP, BARS_NAME_WIDTH, BARS_WIDTH, BOX_COLOR, annotate

    probabilities = [0.05, 0.0, 0.1, 0.6, 0.25, 0.0, 0.0]  # angry ... surprise

    def bars(box, columns):
        """The bars drawn in `columns` (a slice clear of the box), top to bottom: (colour, left, length)."""
        frame = annotate(np.zeros((480, 640, 3), np.uint8), [Face.from_probabilities(box, probabilities)])
        found = []
        for row in frame[:, columns]:
            for color in (BOX_COLOR, BAR_COLOR):
                xs = np.nonzero((row == color).all(axis=1))[0]
                if len(xs) and (not found or found[-1][0] != color or found[-1][2] != len(xs)):
                    found.append((color, xs.min() + columns.start, len(xs)))
        return found

    beside = bars((100, 100, 120, 120), slice(224, 640))  # the box's right edge ends at 221
    assert [color for color, _, _ in beside] == [BAR_COLOR, BAR_COLOR, BOX_COLOR, BAR_COLOR]  # the face's emotion
    longest = BARS_WIDTH - BARS_NAME_WIDTH - BARS_GAP  # a bar for probability 1, on a webcam-sized frame
    for (_, _, length), probability in zip(beside, (0.05, 0.1, 0.6, 0.25)):  # no bar for probability 0
        assert abs(length - probability * longest) <= 1, (length, probability)
    # A face at the frame's right edge has its bars on its left; one as wide as the frame, below it.
    assert len(bars((500, 100, 120, 120), slice(0, 497))) == 4
    frame = annotate(np.zeros((480, 640, 3), np.uint8), [Face.from_probabilities((60, 20, 520, 200), probabilities)])
    assert (frame[223:] == BOX_COLOR).all(axis=2).any() and (frame[223:] == BAR_COLOR).all(axis=2).any()


def test_bars_keep_clear_of_other_faces_and_their_bars_where_the_frame_has_room():
    from emotion_recognition.geometry import overlap_area
    from emotion_recognition.overlay import BARS_GAP, Overlay
    from emotion_recognition.recognizer import Face

    def panels_for(boxes):
        overlay = Overlay()
        overlay.draw(np.zeros((480, 640, 3), np.uint8), [Face.from_probabilities(box, np.eye(7)[3]) for box in boxes])
        panels = [rectangle for _, rectangle in overlay.panels]
        assert not any(overlap_area(panel, other) for panel in panels for other in panels + boxes if other is not panel)
        return overlay.panels

    boxes = [(60, 100, 150, 150), (470, 100, 150, 150)]  # the second has no room on its right
    (side, (left_x, _, _, _)), (second_side, (x, y, _, _)) = panels_for(boxes)
    assert side == "right" and left_x == 60 + 150 + BARS_GAP  # the first face's bars on its right, as ever
    # Left of the second face they would cover the first face's bars: they go below it instead.
    assert second_side == "below" and (x, y) == (470, 100 + 150 + BARS_GAP)
    # With no room below either (the faces low in the frame), above the face's label.
    _, (side, (x, y, _, height)) = panels_for([(60, 300, 150, 150), (470, 300, 150, 150)])
    assert side == "above" and x == 470 and y + height < 300 - 15  # clear of the label, about 20 px tall


def test_a_panel_with_no_clear_place_shrinks_into_its_box_and_never_covers_another():
    from emotion_recognition.geometry import overlap_area
    from emotion_recognition.overlay import BAR_COLOR, BOX_COLOR, Overlay
    from emotion_recognition.recognizer import Face

    # Four faces crowding a 640x480 frame, as in the speed benchmark's clip, and the frame-rate counter.
    boxes = [(20, 30, 190, 190), (340, 30, 190, 190), (20, 265, 190, 190), (340, 265, 190, 190)]
    faces = [Face.from_probabilities(box, np.eye(7)[3], id=n) for n, box in enumerate(boxes)]
    overlay = Overlay()
    frame = overlay.draw(np.zeros((480, 640, 3), np.uint8), faces, fps=25.0)
    drawn = [panel for panel in overlay.panels if panel]
    assert len(drawn) == 4 and any(side == "compact" for side, _ in drawn)
    rectangles = [rectangle for _, rectangle in drawn]
    for (side, rectangle), box in zip(overlay.panels, boxes):
        assert not any(overlap_area(rectangle, other) for other in rectangles if other is not rectangle)
        if side == "compact":  # inside its own box, clear of every other face
            x, y, w, h = box
            assert x < rectangle[0] and rectangle[0] + rectangle[2] < x + w and y + h / 2 < rectangle[1] < y + h
            region = frame[rectangle[1]:rectangle[1] + rectangle[3], rectangle[0]:rectangle[0] + rectangle[2]]
            assert (region == BOX_COLOR).all(axis=2).any() and not (region == BAR_COLOR).all(axis=2).any()
        else:
            assert not any(overlap_area(rectangle, other) for other in boxes)


def test_a_turned_face_s_box_is_drawn_turned_with_it():
    from emotion_recognition.overlay import BOX_COLOR, annotate
    from emotion_recognition.recognizer import Face

    def box_pixels(angle):
        face = Face.from_probabilities((200, 150, 120, 120), np.eye(7)[3], angle=angle)
        return (annotate(np.zeros((480, 640, 3), np.uint8), [face], bars=False) == BOX_COLOR).all(axis=2)

    upright, turned = box_pixels(0), box_pixels(30)
    assert upright[210, 200] and not turned[210, 200]  # the upright box's left edge ...
    # ... turned counter-clockwise about the centre (260, 210): its top left corner moves down and left.
    corner = np.array([[np.cos(np.radians(30)), np.sin(np.radians(30))], [-np.sin(np.radians(30)), np.cos(np.radians(30))]])
    x, y = corner @ np.array([-60, -60]) + (260, 210)
    assert turned[round(y) - 3:round(y) + 4, round(x) - 3:round(x) + 4].any(), (x, y)


def test_the_frame_rate_keeps_clear_of_labels():
    from emotion_recognition.overlay import OUTLINE_COLOR, Overlay
    from emotion_recognition.recognizer import Face

    def outline_after(overlay, faces):
        frame = overlay.draw(np.full((480, 640, 3), 90, np.uint8), faces, fps=30.0)
        return (frame == OUTLINE_COLOR).all(axis=2)

    overlay = Overlay(bars=False)
    assert outline_after(overlay, [])[:60, :160].any()  # the top left corner, where nothing else is
    face = Face.from_probabilities((5, 30, 150, 150), np.eye(7)[3])  # its label in the top left corner
    outline = outline_after(overlay, [face])
    assert not outline[:190, :160].any()  # not over the face or its label
    assert outline[:60, 400:].any()  # but in the top right corner
    assert outline_after(overlay, [])[:60, 400:].any()  # and there it stays while it is clear


def test_bars_stay_on_their_side_from_frame_to_frame_while_it_is_clear():
    from emotion_recognition.overlay import Overlay
    from emotion_recognition.recognizer import Face

    overlay = Overlay()

    def frame_with(*boxes_and_ids):
        faces = [Face.from_probabilities(box, np.eye(7)[3], id=face_id) for box, face_id in boxes_and_ids]
        overlay.draw(np.zeros((480, 640, 3), np.uint8), faces)

    frame_with(((250, 100, 120, 120), 1))
    assert overlay.sides == {1: "right"}  # the first choice, with room
    overlay.sides[1] = "left"  # as if drawn there before, when something stood on its right
    frame_with(((252, 101, 120, 120), 1))
    assert overlay.sides == {1: "left"}  # stays, though the right is free again
    frame_with(((252, 101, 120, 120), 1), ((60, 100, 100, 100), 2))
    assert overlay.sides == {1: "right", 2: "below"}  # a face came where its bars were: they move
    frame_with(((60, 100, 100, 100), 2))
    assert set(overlay.sides) == {2}  # a face gone is forgotten


def test_a_cameras_output_video_plays_in_real_time_and_a_files_keeps_its_frames(tmp_path):
    from emotion_recognition.media import OutputVideo

    frame = np.zeros((48, 64, 3), np.uint8)
    for follows_clock, expected in ((True, 6), (False, 3)):
        path = tmp_path / f"out-{follows_clock}.mp4"
        video = OutputVideo(path, fps=10, follows_clock=follows_clock)
        # Frames classified at 0, 0.35 and 0.5 s: slower than 10 frames/s.
        for seconds in (0.0, 0.35, 0.5):
            video.write(frame, seconds)
        video.release()
        capture = cv2.VideoCapture(str(path))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == expected  # a camera's: 0.6 s of video at 10/s
        capture.release()
    # Until a camera's next frame comes (a slow step, a stream reconnecting), the one before it shows.
    video = OutputVideo(tmp_path / "gap.mp4", fps=10, follows_clock=True)
    video.write(np.full((48, 64, 3), 30, np.uint8), 0.0)
    video.write(np.full((48, 64, 3), 220, np.uint8), 0.5)
    video.release()
    brightness = [round(frame.mean()) for frame in video_frames(tmp_path / "gap.mp4")]
    assert len(brightness) == 6 and max(brightness[:5]) < 60 and brightness[5] > 190, brightness
    # Faster than the rate, a camera's frames are left out rather than slow the video down.
    video = OutputVideo(tmp_path / "fast.mp4", fps=10, follows_clock=True)
    for seconds in (0.0, 0.02, 0.04, 0.11):
        video.write(frame, seconds)
    video.release()
    assert video.written == 2


def test_frames_of_another_size_are_fitted_into_the_output_video_not_lost(tmp_path):
    from emotion_recognition.media import OutputVideo

    path = tmp_path / "turned.mp4"
    video = OutputVideo(path, fps=10, follows_clock=False)
    for frame in [np.full((48, 64, 3), 200, np.uint8)] * 3 + [np.full((64, 48, 3), 200, np.uint8)] * 3:
        video.write(frame, 0.0)  # the stream came back turned: portrait frames after landscape ones
    video.release()
    frames = video_frames(path)
    assert len(frames) == 6 and all(frame.shape == (48, 64, 3) for frame in frames)
    # A portrait frame fitted into 48 rows is 36 columns wide, centred at columns 14 to 49, black beside.
    turned = frames[-1].mean(axis=(0, 2))
    assert turned[:6].max() < 20 and turned[-6:].max() < 20 and turned[28:36].min() > 180


# --- Network streams --------------------------------------------------------------------------------

def serve_mjpeg(frames, interval, connections=None):
    """A server on this computer that sends `frames` (JPEG bytes) `interval` seconds apart as one MJPEG
    stream, the form IP cameras and phones' webcam apps use; to the first `connections` requests
    (None: all), and "503 unavailable" after them, as a camera that has gone away."""
    import http.server
    import socketserver

    served = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            served.append(self.path)
            if connections is not None and len(served) > connections:
                self.send_error(503)
                return
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            for jpeg in frames:
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                 % len(jpeg) + jpeg + b"\r\n")
                time.sleep(interval)

        def log_message(self, *args):  # keep the test output clean
            pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def mjpeg_stream(face_video):
    """The address of a live MJPEG stream of the face video's 12 frames, 10 per second, on this computer,
    sent to the first two connections: a stream that breaks off once and then for good."""
    frames = [cv2.imencode(".jpg", frame)[1].tobytes() for frame in video_frames(face_video)]
    server = serve_mjpeg(frames, interval=0.1, connections=2)
    yield f"http://127.0.0.1:{server.server_address[1]}/video"
    server.shutdown()
    server.server_close()


def test_a_live_network_stream_is_recognized_like_a_camera(cli, mjpeg_stream):
    result = cli("recognize", "--source", mjpeg_stream, "--no-display", "--json", "--reconnect", "0")
    records = json_lines(result)
    assert f"stream {mjpeg_stream} stopped sending frames" in result.stderr  # the run says why it stopped
    assert "reconnect" not in result.stderr and "come back" not in result.stderr
    ids = [face["id"] for record in records for face in record["faces"]]
    assert len(ids) >= 10 and set(ids) == {ids[0]}, ids  # the moving face, one id throughout
    times = [record["time"] for record in records]
    # A live stream's time is the clock's: 12 frames sent 0.1 s apart span about 1.1 s.
    assert times == sorted(times) and 0.7 < times[-1] < 3.0, times


def test_a_stream_that_breaks_off_is_opened_again_until_it_stays_away(cli, mjpeg_stream):
    started = time.monotonic()
    result = cli("recognize", "--source", mjpeg_stream, "--no-display", "--json", "--reconnect", "2")
    elapsed = time.monotonic() - started
    records = json_lines(result)
    assert f"stream {mjpeg_stream} stopped sending frames; trying to reconnect for up to 2 s" in result.stderr
    assert f"stream {mjpeg_stream} reconnected after" in result.stderr
    assert f"stream {mjpeg_stream} stopped sending frames (it ended, or sent none for 10 s) and did not come back " \
           "within 2 s" in result.stderr
    assert len(records) > 12, len(records)  # frames of both connections: more than one sends
    times = [record["time"] for record in records]
    assert times == sorted(times) and times[-1] > 1.8, times  # two 1.1-s sends, one after the other
    assert elapsed < 60, elapsed  # it gave up about 2 s after the second send, not at 30


def test_a_stream_that_cannot_be_opened_is_a_clear_error_without_its_password(cli):
    import socket

    from emotion_recognition.sources import redact

    with socket.socket() as probe:  # a port that nothing listens on: the connection is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cli("recognize", "--source", f"rtsp://admin:hunter2@127.0.0.1:{port}/live", "--no-display")
    assert_clean_error(result, "cannot open stream", f"rtsp://***@127.0.0.1:{port}/live")
    assert "hunter2" not in result.stderr
    assert redact("rtsp://admin:p@ss@10.0.0.5/live?user=a@b") == "rtsp://***@10.0.0.5/live?user=a@b"
    assert redact("http://10.0.0.5:8080/video") == "http://10.0.0.5:8080/video"


class ScriptedCapture:
    """A capture whose read() hands over what the test puts in its queue, as a stream would; None ends it."""

    def __init__(self):
        self.queue, self.released = queue.Queue(), False

    def read(self):
        frame = self.queue.get()
        return (False, None) if frame is None else (True, frame)

    def get(self, prop):
        return 0.0

    def release(self):
        self.released = True


def test_a_live_stream_hands_over_its_newest_frame_and_drops_those_that_came_while_busy():
    from emotion_recognition.sources import LatestFrame

    capture = ScriptedCapture()
    latest = LatestFrame(capture)
    for frame in range(5):  # five frames arrive while the recognizer is busy
        capture.queue.put(frame)
    deadline = time.monotonic() + 10
    while latest.dropped < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert latest.read() == (True, 4) and latest.dropped == 4  # the newest; the four before it were dropped
    capture.queue.put(5)
    assert latest.read() == (True, 5)  # waits for a frame newer than the last one taken
    capture.queue.put(6)
    capture.queue.put(None)  # the stream ends just after its last frame
    assert latest.read() == (True, 6)
    assert latest.read() == (False, None) and not latest.grab()
    latest.release()
    assert capture.released


def test_a_live_stream_that_stops_is_opened_again_and_read_on(monkeypatch):
    from emotion_recognition import sources

    monkeypatch.setattr(sources, "RECONNECT_PAUSE_S", 0.01)
    first, second = ScriptedCapture(), ScriptedCapture()
    answers = [None, None, second]  # the stream is away for two tries, then back
    latest = sources.LatestFrame(first, reopen=lambda: answers.pop(0), reconnect_s=10)
    first.queue.put(1)
    assert latest.read() == (True, 1)
    first.queue.put(None)  # it stops
    second.queue.put(2)
    assert latest.read() == (True, 2)  # read on from the stream opened again
    assert latest.reconnects == 1 and first.released and not answers
    second.queue.put(None)
    latest.reconnect_s = 0  # now it stops for good
    assert latest.read() == (False, None)
    latest.release()


def test_a_source_that_opens_again_but_gives_nothing_is_still_away(monkeypatch, capfd):
    from emotion_recognition import sources

    monkeypatch.setattr(sources, "RECONNECT_PAUSE_S", 0.01)
    first, reopened = ScriptedCapture(), []

    def reopen():  # it answers every time, and gives no frame
        capture = ScriptedCapture()
        capture.queue.put(None)
        reopened.append(capture)
        return capture

    latest = sources.LatestFrame(first, reopen=reopen, reconnect_s=0.5, name="camera 0")
    first.queue.put(1)
    assert latest.read() == (True, 1)
    first.queue.put(None)
    started = time.monotonic()
    assert latest.read() == (False, None)  # the reconnection's 0.5 s counts from when it stopped
    assert time.monotonic() - started < 5 and len(reopened) > 2 and latest.reconnects == 0
    err = capfd.readouterr().err
    assert err.count("camera 0 stopped sending frames; trying to reconnect") == 1 and "reconnected" not in err
    latest.release()


def test_a_stream_that_never_sent_a_frame_is_not_opened_again():
    from emotion_recognition import sources

    capture, opened = ScriptedCapture(), []
    capture.queue.put(None)
    latest = sources.LatestFrame(capture, reopen=lambda: opened.append(1), reconnect_s=10)
    assert latest.read() == (False, None) and not opened  # not working: said at once, not after 10 s
    latest.release()


class FakeCamera:
    """A camera at 50 frames/s whose reads hand over `script` in order: a frame, or None for a read
    that gives none. Once the script is used up it gives none for ever, as an unplugged camera does."""

    def __init__(self, script):
        self.script, self.opened = list(script), True

    def isOpened(self):
        return self.opened

    def read(self):
        time.sleep(0.02)
        frame = self.script.pop(0) if self.script else None
        return (False, None) if frame is None else (True, frame.copy())

    def get(self, prop):
        return 0.0

    def release(self):
        self.opened = False


def test_a_camera_is_waited_for_while_it_warms_up_or_misses_a_frame(cli, face_video, monkeypatch):
    from emotion_recognition import sources

    monkeypatch.setattr(sources, "CAMERA_PATIENCE_S", 0.5)
    frames = video_frames(face_video)
    # Four reads without a frame at first and two in the middle, then none for good (unplugged).
    camera = FakeCamera([None] * 4 + frames[:6] + [None] * 2 + frames[6:])
    monkeypatch.setattr(sources, "_capture", lambda *source: camera)
    result = cli("recognize", "--source", "0", "--no-display", "--json")
    records = json_lines(result)
    assert len(records) == len(frames) and all(len(record["faces"]) == 1 for record in records)
    assert "camera 0 stopped sending frames (none for 0.5 s)" in result.stderr and not camera.opened


def test_a_camera_that_never_gives_a_frame_is_a_clear_error_soon(cli, monkeypatch):
    from emotion_recognition import sources

    monkeypatch.setattr(sources, "CAMERA_PATIENCE_S", 0.3)
    monkeypatch.setattr(sources, "_capture", lambda *source: FakeCamera([]))
    started = time.monotonic()
    result = cli("recognize", "--source", "0", "--no-display")
    assert_clean_error(result, "camera 0 gave no frames within 0.3 s", "no other program is using it")
    assert "reconnect" not in result.stderr and time.monotonic() - started < 10  # not the 30 s of --reconnect


def test_the_window_answers_while_a_live_stream_is_late_and_says_it_reconnects(monkeypatch):
    from emotion_recognition.sources import LatestFrame
    from emotion_recognition.window import Window

    shown = []
    gui = FakeGui("never", keys=[-1, -1, ord("q")])
    monkeypatch.setattr(cv2, "imshow", lambda title, image: shown.append(image.copy()))
    for name in ("waitKey", "getWindowProperty"):
        monkeypatch.setattr(cv2, name, getattr(gui, name))
    capture = ScriptedCapture()
    latest, frame = LatestFrame(capture), np.zeros((120, 160, 3), np.uint8)
    assert Window().wait_for(latest, frame)  # no frame comes; q still stops the run
    assert len(shown) == 3 and not shown[0].any()  # the last frame, as it was
    latest.reconnecting, latest.lost_at = True, time.monotonic()
    gui.keys = [ord("q")]
    assert Window().wait_for(latest, frame)
    assert shown[-1].any() and not frame.any()  # the notice, on a copy
    capture.queue.put(7)
    assert not Window().wait_for(latest, frame)  # a frame came: read it
    capture.queue.put(None)
    latest.release()
