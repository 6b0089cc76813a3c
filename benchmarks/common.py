"""What the benchmarks share: the clips they run on, matching what a pipeline found to the faces drawn
there, timing and memory. (The CPU a figure was measured on: emotion_recognition.runtime.cpu_description.)"""

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from emotion_recognition.config import CLASS_NAMES
from emotion_recognition.errors import UserError
from emotion_recognition.geometry import centre_inside

FRAME_SIZE = (640, 480)
VIDEO_FPS = 30
# Where the astronaut's face is in skimage.data.astronaut(), with some margin: x, y, w, h.
ASTRONAUT_HEAD = (140, 25, 170, 180)
# Four faces per frame: (left, top, height in pixels, mirrored?) on a 640x480 frame.
FACE_SLOTS = ((40, 20, 190, False), (360, 30, 170, True), (60, 250, 160, True), (380, 260, 200, False))


def make_video(path, frames):
    """A 640x480 MP4 with four copies (sizes, mirror images) of a real face, drifting a little."""
    from skimage import data

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    x, y, w, h = ASTRONAUT_HEAD
    head = photo[y:y + h, x:x + w]
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(60, 200, (FRAME_SIZE[1], FRAME_SIZE[0], 3), dtype=np.uint8), (0, 0), 25)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, FRAME_SIZE)
    truth = []
    for index in range(frames):
        frame = background.copy()
        boxes = []
        for slot, (left, top, height, mirrored) in enumerate(FACE_SLOTS):
            width = round(height * w / h)
            drift = round(8 * np.sin(index / 6 + slot))
            face = cv2.resize(head[:, ::-1] if mirrored else head, (width, height), interpolation=cv2.INTER_AREA)
            frame[top + drift:top + drift + height, left:left + width] = face
            boxes.append((left, top + drift, width, height))
        writer.write(frame)
        truth.append(boxes)
    writer.release()
    return truth



# --- A clip of held-out faces ------------------------------------------------------------------------

CLIP_FPS = 25
CLIP_SLOTS = ((20, 15), (340, 15), (20, 255), (340, 255))  # top-left corners of four 300x225 places
CLIP_FACE_SIZES = (150, 200)   # each face's side in pixels, drawn from this range
CLIP_HOLD_FRAMES = (5, 20)     # frames a face stays before another takes its place
CLIP_JITTER = 15               # pixels a face may sit off its place's corner
CLIP_BACKGROUND = 128


def make_fer_clip(test_dir, path, frames, seed=0, turn=0.0):
    """A 640x480 MP4 of PublicTest faces; returns per frame a list of (x, y, w, h, label, face number,
    angle).

    turn: each face is turned in the picture by this many degrees, alternately one way and the other
    (face after face), about its square's centre; the square stays the face's truth."""
    from emotion_recognition import data

    images, labels, _ = data.load_split(test_dir, verbose=False)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), CLIP_FPS, FRAME_SIZE)
    truth, slots, next_face = [], [None] * len(CLIP_SLOTS), 0
    for index in range(frames):
        frame = np.full((FRAME_SIZE[1], FRAME_SIZE[0], 3), CLIP_BACKGROUND, np.uint8)
        boxes = []
        for slot, (left, top) in enumerate(CLIP_SLOTS):
            if slots[slot] is None or index >= slots[slot]["until"]:
                face_number = int(order[next_face % len(order)])
                next_face += 1
                size = int(rng.integers(CLIP_FACE_SIZES[0], CLIP_FACE_SIZES[1] + 1))
                slots[slot] = {"face": face_number, "size": size, "turn": turn if next_face % 2 else -turn,
                               "x": left + int(rng.integers(0, CLIP_JITTER + 1)),
                               "y": top + int(rng.integers(0, CLIP_JITTER + 1)),
                               "until": index + int(rng.integers(CLIP_HOLD_FRAMES[0], CLIP_HOLD_FRAMES[1] + 1))}
            placed = slots[slot]
            size, x, y = placed["size"], placed["x"], placed["y"]
            face = cv2.resize(images[placed["face"]], (size, size), interpolation=cv2.INTER_CUBIC)
            if placed["turn"]:
                turning = cv2.getRotationMatrix2D((size / 2, size / 2), placed["turn"], 1.0)
                face = cv2.warpAffine(face, turning, (size, size), flags=cv2.INTER_LINEAR,
                                      borderValue=CLIP_BACKGROUND)
            frame[y:y + size, x:x + size] = face[..., None]
            boxes.append((x, y, size, size, int(labels[placed["face"]]), placed["face"] * 1000 + slot, placed["turn"]))
        writer.write(frame)
        truth.append(boxes)
    writer.release()
    return truth


def score_live(truth, detections):
    """Faces found, correct labels among them, and id changes of a face while it stayed in place.

    detections: per frame a list of (box, emotion, id or None). A detection finds a face when its
    centre lies inside the face's square (one detection per face)."""
    found = correct = id_changes = 0
    last_id = {}
    for true_faces, frame_detections in zip(truth, detections):
        free = list(true_faces)
        for (x, y, w, h), emotion, face_id in frame_detections:
            for face in free:
                fx, fy, size, _, label, key, _ = face
                if centre_inside((x, y, w, h), (fx, fy, size, size)):
                    free.remove(face)
                    found += 1
                    correct += emotion == CLASS_NAMES[label]
                    if face_id is not None:
                        id_changes += key in last_id and last_id[key] != face_id
                        last_id[key] = face_id
                    break
    return {"found": found, "present": sum(len(t) for t in truth), "correct": correct, "id_changes": id_changes}



# --- Reading, timing, memory --------------------------------------------------------------------------

def read_frames(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def count_found(truth, detected):
    """Faces matched one-to-one: a detection counts if its centre lies inside a true head region."""
    found = 0
    for true_boxes, boxes in zip(truth, detected):
        free = list(true_boxes)
        for box in boxes:
            for true_box in free:
                if centre_inside(box, true_box):
                    free.remove(true_box)
                    found += 1
                    break
    return found


def median_seconds(function, repeats, warmup=5):
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def resident_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


RECOGNITION_SCRIPT = Path(__file__).resolve().parent.parent / "recognition.py"
# recognition.py in a fresh Python that reports its own peak memory as it ends, however it ends (VmHWM
# counts only what the process used; wait4's figure would include the parent's, forked into it).
PEAK_WRAPPER = ("import runpy, sys\nscript, *args = sys.argv[1:]\nsys.argv = [script, *args]\ntry:\n"
                "    runpy.run_path(script, run_name='__main__')\nfinally:\n"
                "    print('peak_kb', [line.split()[1] for line in open('/proc/self/status') "
                "if line.startswith('VmHWM')][0], file=sys.stderr)")


def recognition_with_peak(*args):
    """Run `recognition.py ARGS` as a user would; returns (wall seconds, peak memory in MB, the
    CompletedProcess)."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, str(RECOGNITION_SCRIPT), *map(str, args)],
                            capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peaks = [line.split()[1] for line in result.stderr.splitlines() if line.startswith("peak_kb")]
    return seconds, int(peaks[0]) / 1024 if peaks else float("nan"), result


# --- Live recognition, this project's and fer's ---------------------------------------------------------

def live_project(clip, model_path, *options):
    """recognition.py on the clip as a user runs it; its JSON lines, frames/s from its own summary."""
    result = subprocess.run([sys.executable, str(RECOGNITION_SCRIPT), "--source", str(clip), "--no-display", "--json",
                             "--model", str(model_path), *options], capture_output=True, text=True)
    if result.returncode:
        raise UserError(f"recognition.py failed on the clip: {result.stderr.strip().splitlines()[-1:]}")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    summary = [line for line in result.stderr.splitlines() if "frames/s" in line][-1]
    fps = float(summary.split(" frames/s")[0].split()[-1])
    missing_time = sum("time" not in r or "frame" not in r for r in records)
    missing_id = sum("id" not in face for r in records for face in r["faces"])
    detections = [[(face["box"], face["emotion"], face["id"]) for face in r["faces"]] for r in records]
    return fps, detections, {"lines_without_frame_or_time": missing_time, "faces_without_id": missing_id}


def live_fer(clip):
    """fer's own pipeline over the same file, decoding included, as its README's video loop does."""
    from fer.fer import FER

    peer, capture, detections = FER(), cv2.VideoCapture(str(clip)), []
    started = time.perf_counter()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        detections.append([(tuple(f["box"]), max(f["emotions"], key=f["emotions"].get), None)
                           for f in peer.detect_emotions(frame)])
    capture.release()
    return len(detections) / (time.perf_counter() - started), detections
