"""Reports of videos: faces.csv, summary.json and timeline.png for one video; a folder of videos side
by side, resumed, and on a Dask cluster; the same faces from the Python API."""

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, assert_clean_error

from emotion_recognition.config import CLASS_NAMES
from emotion_recognition.recognizer import Face
from emotion_recognition.reports import COLUMNS, ReportWriter, is_complete


def read_rows(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_a_video_report_has_a_row_per_face_json_reports_a_summary_per_id_and_a_timeline(cli, face_video, tmp_path):
    result = cli("recognize", "--source", face_video, "--no-display", "--json", "--report", tmp_path / "report")
    assert result.returncode == 0, result.stderr
    json_faces = [(record["frame"], face) for record in map(json.loads, result.stdout.splitlines())
                  for face in record["faces"]]
    with open(tmp_path / "report" / "faces.csv", newline="") as file:
        assert tuple(next(csv.reader(file))) == COLUMNS
    rows = read_rows(tmp_path / "report" / "faces.csv")
    assert len(rows) == len(json_faces) == 12
    for row, (frame, face) in zip(rows, json_faces):
        assert int(row["frame"]) == frame and int(row["id"]) == face["id"] and row["emotion"] == face["emotion"]
        assert [int(row[key]) for key in "xywh"] == face["box"]
        assert abs(sum(float(row[name]) for name in CLASS_NAMES) - 1) < 1e-4
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["complete"] and summary["frames"] == 12 and summary["faces"] == 12
    (face_id, face), = summary["faces_by_id"].items()
    assert face_id == str(json_faces[0][1]["id"]) and face["frames"] == 12
    assert abs(face["seconds_in_view"] - 1.2) < 1e-6  # 12 frames at 10 frames/s
    assert max(face["emotion_share"], key=face["emotion_share"].get) == "happy"
    assert abs(sum(face["mean_probabilities"].values()) - 1) < 1e-3
    assert (tmp_path / "report" / "timeline.png").stat().st_size > 10_000
    assert "report in" in result.stderr


def faces_at(box, emotion, face_id):
    return [Face.from_probabilities(box, np.eye(len(CLASS_NAMES))[CLASS_NAMES.index(emotion)], id=face_id)]


def test_time_in_view_counts_each_frame_until_the_next_and_shares_add_up(tmp_path):
    report = ReportWriter(tmp_path / "r", "made up")
    # Face 1 is happy for a second, then sad for half a second; face 2 appears once, at 1.0 s.
    report.add(0, 0.0, faces_at((10, 10, 50, 50), "happy", 1))
    report.add(5, 1.0, faces_at((10, 10, 50, 50), "sad", 1) + faces_at((100, 10, 50, 50), "fear", 2))
    report.add(7, 1.5, faces_at((10, 10, 50, 50), "sad", 1))
    report.close()
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    first, second = summary["faces_by_id"]["1"], summary["faces_by_id"]["2"]
    # The last frame lasts as long as a frame did on average: 1.5 s over two intervals, 0.75 s.
    assert first["seconds_in_view"] == 2.25 and (first["first_time"], first["last_time"]) == (0.0, 1.5)
    assert first["emotion_share"]["happy"] == pytest.approx(1 / 2.25, abs=1e-4)
    assert first["emotion_share"]["sad"] == pytest.approx(1.25 / 2.25, abs=1e-4)
    assert second["seconds_in_view"] == 0.5 and second["emotion_share"]["fear"] == 1.0
    assert summary["overall"]["seconds_in_view"] == 2.75 and summary["duration"] == 1.5


def test_an_interrupted_report_keeps_its_rows_and_is_not_complete(tmp_path):
    report = ReportWriter(tmp_path / "r", "made up")
    report.add(0, 0.0, faces_at((10, 10, 50, 50), "happy", 1))
    report.add(1, 0.1, faces_at((10, 10, 50, 50), "happy", 1))
    assert len(read_rows(tmp_path / "r" / "faces.csv")) == 2  # on disk already, before the end
    report.close(finished=False)
    assert not (tmp_path / "r" / "summary.json").exists() and not is_complete(tmp_path / "r")
    # A finished run of the same video replaces it.
    report = ReportWriter(tmp_path / "r", "made up")
    report.add(0, 0.0, [])
    report.close()
    assert is_complete(tmp_path / "r") and read_rows(tmp_path / "r" / "faces.csv") == []


@pytest.fixture
def video_folder(tmp_path, face_video):
    """Three videos, one of them not a video at all, one in a subfolder."""
    folder = tmp_path / "videos"
    (folder / "day2").mkdir(parents=True)
    shutil.copy(face_video, folder / "one.mp4")
    shutil.copy(face_video, folder / "day2" / "two.mp4")
    (folder / "broken.mp4").write_bytes(b"not a video" * 100)
    return folder


def index_of(report_root):
    return {row["file"]: row for row in read_rows(report_root / "videos.csv")}


def test_a_folder_of_videos_gets_a_report_each_and_a_second_run_redoes_nothing(video_folder, tmp_path):
    command = [sys.executable, str(ROOT / "recognition.py"), "--source", video_folder, "--report",
               tmp_path / "reports", "--workers", "2"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 1, first.stderr  # one video failed, and the exit status says so
    assert "3 videos: 2 done, 0 skipped (reported before), 1 failed" in first.stderr
    index = index_of(tmp_path / "reports")
    assert index[str(video_folder / "broken.mp4")]["status"] == "failed"
    assert "cannot read video" in index[str(video_folder / "broken.mp4")]["message"]
    for name, folder in (("one.mp4", "one"), ("day2/two.mp4", "day2/two")):
        assert index[str(video_folder / name)]["status"] == "done"
        assert index[str(video_folder / name)]["faces"] == "12"
        assert is_complete(tmp_path / "reports" / folder)
    assert not (tmp_path / "reports" / "broken").exists()
    written = (tmp_path / "reports" / "one" / "faces.csv").stat().st_mtime_ns

    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert second.returncode == 1 and "0 done, 2 skipped (reported before), 1 failed" in second.stderr
    statuses = {name: row["status"] for name, row in index_of(tmp_path / "reports").items()}
    assert sorted(statuses.values()) == ["failed", "skipped", "skipped"]
    assert (tmp_path / "reports" / "one" / "faces.csv").stat().st_mtime_ns == written  # not redone


def test_an_unfinished_report_in_a_batch_is_done_again(video_folder, tmp_path, cli):
    (video_folder / "broken.mp4").unlink()
    unfinished = tmp_path / "reports" / "one"
    unfinished.mkdir(parents=True)
    (unfinished / "faces.csv").write_text("frame,time\n0,0.0\n")  # as a run killed midway leaves it
    result = cli("recognize", "--source", video_folder, "--report", tmp_path / "reports", "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert "2 done" in result.stderr and is_complete(unfinished) and len(read_rows(unfinished / "faces.csv")) == 12


def test_batch_options_that_make_no_sense_are_refused(cli, video_folder, tmp_path, face_video):
    assert_clean_error(cli("recognize", "--source", video_folder), "several videos need --report")
    assert_clean_error(cli("recognize", "--source", video_folder, "--report", tmp_path / "r", "--json"),
                       "--json is for one video")
    assert_clean_error(cli("recognize", "--source", face_video, "--no-display", "--workers", "2"),
                       "--workers and --cluster are for several videos")
    assert_clean_error(cli("recognize", "--source", video_folder, "--report", tmp_path / "r", "--workers", "0"),
                       "--workers must be 1 or more")
    assert_clean_error(cli("recognize", "--source", tmp_path / "missing.mp4", "--no-display", "--report",
                           tmp_path / "r"), "missing.mp4 not found")


def test_a_dask_cluster_writes_the_same_reports_as_this_machine(video_folder, tmp_path, cli):
    import distributed  # the cluster extra, which the tests' requirements install
    (video_folder / "broken.mp4").unlink()
    local = cli("recognize", "--source", video_folder, "--report", tmp_path / "local", "--workers", "1")
    assert local.returncode == 0, local.stderr
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = cli("recognize", "--source", video_folder, "--report", tmp_path / "cluster", "--cluster",
                     cluster.scheduler_address)
    assert result.returncode == 0, result.stderr
    for folder in ("one", "day2/two"):
        assert ((tmp_path / "cluster" / folder / "faces.csv").read_bytes()
                == (tmp_path / "local" / folder / "faces.csv").read_bytes())
        assert is_complete(tmp_path / "cluster" / folder)


def test_an_unreachable_cluster_is_a_clear_error(cli, video_folder, tmp_path, monkeypatch):
    from emotion_recognition import batch

    monkeypatch.setattr(batch, "CLUSTER_TIMEOUT_S", 1)
    result = cli("recognize", "--source", video_folder, "--report", tmp_path / "r", "--cluster", "tcp://127.0.0.1:9")
    assert_clean_error(result, "cannot reach the Dask scheduler at tcp://127.0.0.1:9")


def test_the_api_gives_the_reports_rows_and_a_dataframe(face_video, tmp_path, cli):
    from emotion_recognition import EmotionRecognizer
    from emotion_recognition.reports import face_row, to_dataframe

    faces = list(EmotionRecognizer().analyze(face_video))
    assert len(faces) == 12 and [face.frame for face in faces] == list(range(12))
    assert faces[1].time == pytest.approx(0.1) and {face.id for face in faces} == {faces[0].id}
    cli("recognize", "--source", face_video, "--no-display", "--report", tmp_path / "r")
    rows = read_rows(tmp_path / "r" / "faces.csv")
    assert [[str(value) for value in face_row(face, face.frame, face.time)] for face in faces] == \
        [[row[column] for column in COLUMNS] for row in rows]
    frame = to_dataframe(faces)
    assert tuple(frame.columns) == COLUMNS and len(frame) == 12 and (frame["emotion"] == "happy").all()
