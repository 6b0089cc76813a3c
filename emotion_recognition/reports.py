"""A video's report, written while it runs (a ReportWriter listens to pipeline.run_stream):
- faces.csv: a row per face per classified frame (frame, time, id, box, emotion, confidence and the
  seven probabilities), flushed with every frame, so a crash or Ctrl-C keeps every row before it;
- summary.json: per face id and for the whole video, seconds in view, first and last time, the share
  of its time in each emotion and its mean probabilities; written last, so a report is complete
  exactly when its summary.json says so;
- timeline.png: each face's probabilities over time, one panel per face.
Memory stays flat however long the video: per face id a few numbers, and the timeline is drawn from
faces.csv read back in one pass.
"""

import csv
import json
import math
from pathlib import Path

import numpy as np

from .config import CLASS_NAMES, NUM_CLASSES
from .errors import UserError, ensure_folder
from .files import save_figure, write_json_atomic

FACES_CSV, SUMMARY_JSON, TIMELINE_PNG = "faces.csv", "summary.json", "timeline.png"
COLUMNS = ("frame", "time", "id", "x", "y", "w", "h", "emotion", "confidence", *CLASS_NAMES)
PROBABILITY_DECIMALS = 6
TIME_DECIMALS = 3  # milliseconds, as --json gives them
TIMELINE_POINTS = 600   # per face's curves at most: a 30-minute video in 3-second steps
FRAMES_PER_POINT = 2    # at least, so that a face in consecutive frames draws one unbroken band
TIMELINE_FACES = 8      # panels at most: the faces longest in view
TIMELINE_PANEL_HEIGHT = 1.5  # inches
# One colour per emotion, the same in every panel (matplotlib's tab10, in CLASS_NAMES order).
EMOTION_COLOURS = ("tab:red", "tab:olive", "tab:purple", "tab:green", "tab:gray", "tab:blue", "tab:orange")


def face_row(face, frame, seconds):
    """A face as a faces.csv row, in COLUMNS order."""
    x, y, w, h = face.box
    return [frame, round(seconds, TIME_DECIMALS), face.id, x, y, w, h, face.emotion,
            round(face.confidence, PROBABILITY_DECIMALS),
            *(round(face.probabilities[name], PROBABILITY_DECIMALS) for name in CLASS_NAMES)]


def to_dataframe(faces):
    """EmotionRecognizer.analyze()'s faces as a pandas DataFrame with faces.csv's columns (pandas is an
    optional dependency: `pip install pandas`)."""
    try:
        import pandas
    except ImportError as error:
        raise UserError("to_dataframe needs pandas, which is not installed; run: pip install pandas") from error
    return pandas.DataFrame([face_row(face, face.frame, face.time) for face in faces], columns=COLUMNS)


class TimeInView:
    """Seconds in view, first and last time, and time spent in each emotion, of one face or of all."""

    def __init__(self):
        self.seconds, self.frames, self.first, self.last = 0.0, 0, None, None
        self.emotion_seconds = np.zeros(NUM_CLASSES)
        self.probability_seconds = np.zeros(NUM_CLASSES)

    def add(self, face, seconds, duration):
        """`face`, seen at `seconds`, in view for `duration` seconds (until the next classified frame)."""
        self.frames += 1
        self.first = seconds if self.first is None else self.first
        self.last = seconds
        self.seconds += duration
        self.emotion_seconds[CLASS_NAMES.index(face.emotion)] += duration
        self.probability_seconds += duration * np.array([face.probabilities[name] for name in CLASS_NAMES])

    def to_dict(self):
        share = self.emotion_seconds / self.seconds if self.seconds else self.emotion_seconds
        mean = self.probability_seconds / self.seconds if self.seconds else self.probability_seconds
        return {"seconds_in_view": round(self.seconds, TIME_DECIMALS), "frames": self.frames,
                "first_time": self.first, "last_time": self.last,
                "emotion_share": dict(zip(CLASS_NAMES, (round(float(v), 4) for v in share))),
                "mean_probabilities": dict(zip(CLASS_NAMES, (round(float(v), 4) for v in mean)))}


class ReportWriter:
    """A run_stream listener that writes a video's report into `folder` (see the module's docstring).
    A report left by an earlier, unfinished run of the same video is replaced."""

    def __init__(self, folder, source_name):
        self.folder, self.source_name = Path(folder), source_name
        self._file = self._csv = None  # opened at the first frame: a video that cannot be read leaves nothing
        self.by_id, self.overall = {}, TimeInView()
        self.frames, self.rows, self.first_time, self.last_time, self.previous = 0, 0, None, 0.0, None

    def _open(self):
        ensure_folder(self.folder, "report folder")
        summary = self.folder / SUMMARY_JSON
        if summary.exists():
            summary.unlink()  # the new faces.csv will not match it; until the run ends there is none
        self._file = open(self.folder / FACES_CSV, "w", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(COLUMNS)

    def add(self, index, seconds, faces):
        if self._file is None:
            self._open()
        self._csv.writerows(face_row(face, index, seconds) for face in faces)
        self._file.flush()
        if self.previous is not None:  # the faces of the frame before were in view until this one
            self._count(*self.previous, duration=seconds - self.previous[0])
        self.previous = (seconds, faces)
        self.first_time = seconds if self.first_time is None else self.first_time
        self.last_time = seconds
        self.frames += 1
        self.rows += len(faces)

    def _count(self, seconds, faces, duration):
        for face in faces:
            self.by_id.setdefault(face.id, TimeInView()).add(face, seconds, duration)
            self.overall.add(face, seconds, duration)

    def close(self, finished=True):
        """Finish faces.csv; if the run finished (not interrupted), write summary.json and timeline.png."""
        if self._file is None:
            if not finished:
                return
            self._open()
        self._file.close()
        if not finished:
            return
        if self.previous is not None:  # the last frame: as long as a frame lasted on average
            seconds = self.previous[0]
            interval = (seconds - self.first_time) / (self.frames - 1) if self.frames > 1 else 0.0
            self._count(*self.previous, duration=interval)
            self.previous = None
        ids = sorted(self.by_id, key=lambda face_id: -self.by_id[face_id].seconds)
        points = max(1, min(TIMELINE_POINTS, self.frames // FRAMES_PER_POINT))
        save_figure(timeline_figure(self.folder / FACES_CSV, ids[:TIMELINE_FACES], len(ids), self.last_time, points),
                    self.folder / TIMELINE_PNG)
        write_json_atomic(self.folder / SUMMARY_JSON, {
            "source": self.source_name, "complete": True, "frames": self.frames, "faces": self.rows,
            "duration": round(self.last_time, TIME_DECIMALS),  # the time of the last classified frame
            "overall": self.overall.to_dict(),
            "faces_by_id": {str(face_id): self.by_id[face_id].to_dict() for face_id in sorted(self.by_id)}})


def complete_summary(folder):
    """The summary.json of a finished report in `folder` (one that says it is complete), else None."""
    try:
        summary = json.loads((Path(folder) / SUMMARY_JSON).read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and summary.get("complete") is True else None


def is_complete(folder):
    """Whether `folder` holds a finished report (its summary.json says so)."""
    return complete_summary(folder) is not None


def timeline_figure(faces_csv, ids, all_ids, last_time, points=TIMELINE_POINTS):
    """Each face's probabilities over time as stacked areas (gaps where it was out of view), one panel
    per id of `ids`, averaged over `points` spans of the video's first `last_time` seconds, read from
    faces.csv in one pass."""
    from matplotlib.figure import Figure

    rows = {face_id: index for index, face_id in enumerate(ids)}
    sums, counts = np.zeros((len(ids), points, NUM_CLASSES)), np.zeros((len(ids), points))
    with open(faces_csv, newline="") as file:
        for row in csv.DictReader(file):
            panel = rows.get(int(row["id"]) if row["id"] else None)
            if panel is None:
                continue
            point = min(points - 1, int(float(row["time"]) / last_time * points)) if last_time else 0
            sums[panel, point] += [float(row[name]) for name in CLASS_NAMES]
            counts[panel, point] += 1
    times = (np.arange(points) + 0.5) * (last_time / points if last_time else 1.0)
    figure = Figure(figsize=(11, 1.2 + TIMELINE_PANEL_HEIGHT * max(1, len(ids))))
    axes_list = figure.subplots(max(1, len(ids)), 1, sharex=True, squeeze=False)[:, 0]
    for panel, (axes, face_id) in enumerate(zip(axes_list, ids)):
        present = counts[panel] > 0
        means = sums[panel] / np.maximum(counts[panel], 1)[:, None]
        lower = np.zeros(points)
        for name, colour, column in zip(CLASS_NAMES, EMOTION_COLOURS, means.T):
            axes.fill_between(times, lower, lower + column, where=present, color=colour, linewidth=0, label=name,
                              step="mid")
            lower = lower + column
        axes.set_ylim(0, 1)
        axes.set_ylabel(f"face {face_id}")
        axes.set_yticks([0, 0.5, 1])
    if not ids:
        axes_list[0].text(0.5, 0.5, "no faces found", ha="center", va="center", transform=axes_list[0].transAxes)
    axes_list[-1].set_xlabel("time (seconds)")
    axes_list[-1].set_xlim(0, max(last_time, math.ulp(1.0)))
    shown = f"the {len(ids)} faces longest in view, of {all_ids}" if all_ids > len(ids) else "each face"
    figure.suptitle(f"Emotion probabilities over time: {shown}", y=0.995)
    if ids:
        figure.legend(*axes_list[0].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.975),
                      ncol=NUM_CLASSES, fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 0.94))
    return figure
