"""Many videos in one command: a report per video (reports.py) under one folder, processed side by side
by worker processes on this machine, or by the workers of a Dask cluster, with an index of them all
(videos.csv). A video whose report is complete is skipped, so running the same command again after an
interruption redoes only what was unfinished; a video that cannot be read is named in the index and
the others go on.
"""

import csv
import io
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import astuple, dataclass, fields, replace
from pathlib import Path

from .errors import UserError, ensure_folder
from .files import write_atomic

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
INDEX_CSV = "videos.csv"
DONE, SKIPPED, FAILED = "done", "skipped", "failed"
CLUSTER_TIMEOUT_S = 10  # for reaching the scheduler: an address that does not answer is reported, not waited on


@dataclass
class RecognizerOptions:
    """How each worker builds its recognizer: one runtime thread each, since the workers fill the cores."""

    model: str
    min_face: int
    mirror: bool
    turned: bool = True


@dataclass
class VideoResult:
    """One row of videos.csv."""

    file: str
    status: str = FAILED       # DONE, SKIPPED or FAILED
    duration: float = 0.0      # seconds of video classified (the last classified frame's time)
    frames: int = 0            # frames classified
    faces: int = 0             # faces.csv rows
    seconds: float = 0.0       # taken to process it
    message: str = ""          # why it failed


def list_videos(paths):
    """(video, its report folder relative to --report) for the files named and every video file in the
    folders named (searched recursively, hidden files left out), in sorted order. A folder's videos
    keep its layout; each report folder is the video's path without its suffix."""
    videos, single_folder = [], len(paths) == 1 and Path(paths[0]).is_dir()
    for path in map(Path, paths):
        if not path.is_dir():
            if not path.is_file():
                raise UserError(f"video file {path} not found; check the path")
            videos.append((path, Path(path.stem)))
            continue
        for file in sorted(path.rglob("*")):
            relative = file.relative_to(path)
            hidden = any(part.startswith(".") for part in relative.parts)
            if file.is_file() and file.suffix.lower() in VIDEO_SUFFIXES and not hidden:
                report = relative.with_suffix("")
                videos.append((file, report if single_folder else path.name / report))
    if not videos:
        raise UserError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in {', '.join(map(str, paths))}")
    return videos


_recognizers = {}  # in a worker process: one recognizer per RecognizerOptions, built at its first video


def analyze_video(video, report_dir, options, settings):
    """One video's report into `report_dir` (in whichever process runs it); returns its VideoResult."""
    from .pipeline import run_stream
    from .recognizer import EmotionRecognizer
    from .reports import ReportWriter

    started = time.perf_counter()
    result = VideoResult(file=str(video))
    try:
        key = astuple(options)
        if key not in _recognizers:
            _recognizers[key] = EmotionRecognizer(options.model, min_face=options.min_face, mirror=options.mirror,
                                                  threads=1, turned=options.turned)
        report = ReportWriter(report_dir, str(video))
        summary = run_stream(_recognizers[key], str(video), settings, [report])
        result = replace(result, status=DONE, duration=round(report.last_time, 3), frames=summary.frames,
                         faces=summary.faces)
    except UserError as error:
        result.message = str(error)
    except Exception as error:  # one video's failure, whatever it is, must not end the batch
        result.message = f"{type(error).__name__}: {error}"
    return replace(result, seconds=round(time.perf_counter() - started, 2))


def skipped_result(video, summary):
    """The VideoResult of a video whose report is complete already, from its summary.json's values."""
    return VideoResult(file=str(video), status=SKIPPED, duration=summary.get("duration", 0.0),
                       frames=summary.get("frames", 0), faces=summary.get("faces", 0))


def write_index(report_root, results):
    """videos.csv under the report folder, rewritten (atomically) after every video."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([field.name for field in fields(VideoResult)])
    writer.writerows(astuple(result) for result in results)
    write_atomic(Path(report_root) / INDEX_CSV, text.getvalue().encode())


def run_batch(paths, report_root, options, settings, workers=None, cluster=None):
    """Reports for every video in `paths` under `report_root`: on `workers` processes here (default:
    one per core), or on the Dask cluster at the address `cluster`. Returns the VideoResults, in the
    order of the videos."""
    from tqdm import tqdm

    from .reports import complete_summary

    videos = list_videos(paths)
    ensure_folder(report_root, "report folder")
    settings = replace(settings, display=False, output=None, progress=False)  # one bar: the videos
    client = connect(cluster) if cluster else None  # an address that does not answer: said before any work
    results, pending = {}, []
    for video, relative in videos:
        folder = Path(report_root) / relative
        summary = complete_summary(folder)
        if summary is not None:
            results[video] = skipped_result(video, summary)
        else:
            pending.append((video, folder))
    progress = tqdm(total=len(videos), initial=len(results), unit="video", file=sys.stderr)
    try:
        for video, result in _run_all(pending, options, settings, workers, client):
            results[video] = result = replace(result, file=str(video))  # named as the user named it
            progress.update(1)
            if result.status == FAILED:
                progress.write(f"failed: {result.file}: {result.message}", file=sys.stderr)
            write_index(report_root, [results[video] for video, _ in videos if video in results])
    finally:
        progress.close()
        if client is not None:
            client.close()
    ordered = [results[video] for video, _ in videos]
    write_index(report_root, ordered)
    return ordered


def _run_all(pending, options, settings, workers, client):
    """(video, its VideoResult) for the pending (video, report folder) pairs, as each finishes. The
    workers get absolute paths: theirs may be another working folder, or another machine."""
    pending = [(video, Path(video).resolve(), Path(folder).resolve()) for video, folder in pending]
    if client is not None:  # one Dask task per video; each worker writes its report into the shared folder
        from dask.distributed import as_completed as dask_completed

        futures = {client.submit(analyze_video, path, folder, options, settings, pure=False): video
                   for video, path, folder in pending}
        for future in dask_completed(list(futures)):
            yield futures[future], future.result()
        return
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(pending) <= 1:
        for video, path, folder in pending:
            yield video, analyze_video(path, folder, options, settings)
        return
    # A fresh interpreter per worker: forking a process whose libraries already run threads is unsafe.
    with ProcessPoolExecutor(max_workers=min(workers, len(pending)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(analyze_video, path, folder, options, settings): video
                   for video, path, folder in pending}
        for future in as_completed(futures):
            yield futures[future], future.result()


def connect(address):
    """A client of the Dask scheduler at `address`, or a clear error."""
    try:
        from dask.distributed import Client
    except ImportError as error:
        raise UserError("--cluster needs Dask, which is not installed; run: pip install '.[cluster]'") from error
    try:
        return Client(address, timeout=CLUSTER_TIMEOUT_S)
    except (OSError, TimeoutError) as error:
        raise UserError(f"cannot reach the Dask scheduler at {address} ({error}); check the address and that "
                        "`dask scheduler` runs there", reason="no-cluster") from None
