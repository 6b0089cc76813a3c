"""recognition.py and evaluate.py as a user runs them, including every bad input."""

import json
import os

import cv2
import pytest

from conftest import ASTRONAUT_FACE, assert_clean_error, run_script
from emotion_recognition.config import CLASS_NAMES
from test_recognizer import overlap

FACE_KEYS = {"box", "emotion", "confidence", "probabilities"}


def check_face_schema(face):
    assert set(face) == FACE_KEYS
    assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
    assert face["emotion"] in CLASS_NAMES
    assert list(face["probabilities"]) == list(CLASS_NAMES)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert face["confidence"] == pytest.approx(face["probabilities"][face["emotion"]])


def test_image_json(astronaut_png, tmp_path):
    annotated = tmp_path / "annotated.png"
    result = run_script("recognition.py", "--image", astronaut_png, "--json", "--no-display", "--output", annotated)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["image"] == str(astronaut_png) and len(record["faces"]) == 1
    check_face_schema(record["faces"][0])
    assert overlap(record["faces"][0]["box"], ASTRONAUT_FACE) > 0.5
    assert cv2.imread(str(annotated)).shape == (512, 512, 3)


def test_several_images_write_into_an_output_folder(astronaut_png, tmp_path):
    second = tmp_path / "copy.jpg"
    cv2.imwrite(str(second), cv2.imread(str(astronaut_png)))
    result = run_script("recognition.py", "--image", astronaut_png, second, "--json", "--no-display",
                        "--output", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["image"] for line in result.stdout.splitlines()] == [str(astronaut_png), str(second)]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["astronaut.png", "copy.jpg"]


def test_video_frame_by_frame(face_video, tmp_path):
    output = tmp_path / "annotated.mp4"
    result = run_script("recognition.py", "--source", face_video, "--no-display", "--json", "--output", output)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [r["frame"] for r in records] == list(range(12))
    found = [r for r in records if len(r["faces"]) == 1]
    assert len(found) >= 10, records
    for record in found:
        check_face_schema(record["faces"][0])
    assert "12 frames" in result.stderr and "frames/s" in result.stderr
    written = cv2.VideoCapture(str(output))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    assert (int(written.get(cv2.CAP_PROP_FRAME_WIDTH)), int(written.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (640, 480)
    written.release()


def test_max_frames_stops_early_and_still_finalises_the_video(face_video, tmp_path):
    output = tmp_path / "short.mp4"
    result = run_script("recognition.py", "--source", face_video, "--no-display", "--max-frames", "5", "--output", output)
    assert result.returncode == 0, result.stderr
    capture = cv2.VideoCapture(str(output))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    ok, _ = capture.read()
    assert ok


@pytest.mark.parametrize("script", ["recognition.py", "train.py", "evaluate.py"])
def test_help_explains_itself(script):
    result = run_script(script, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and "--debug" in result.stdout and "default" in result.stdout


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not an image")
    return path


def test_bad_inputs_give_one_clear_line(tmp_path, astronaut_png, text_file):
    cases = [
        (["--image", tmp_path / "missing.png"], ["missing.png", "not found"]),
        (["--image", text_file], ["notes.jpg", "not an image"]),
        (["--image", astronaut_png, "--model", tmp_path / "none.keras"], ["none.keras", "python train.py"]),
        (["--source", tmp_path / "missing.mp4"], ["missing.mp4", "not found"]),
        (["--source", text_file], ["notes.jpg", "cannot read video"]),
        (["--source", "97"], ["cannot open camera 97"]),
        (["--image", astronaut_png, "--output", tmp_path / "no" / "such" / "dir.png"], ["does not exist"]),
    ]
    for args, words in cases:
        result = run_script("recognition.py", *args, "--no-display")
        assert_clean_error(result, *words)


def test_corrupt_model_file(tmp_path, astronaut_png):
    model = tmp_path / "corrupt.keras"
    model.write_bytes(os.urandom(2048))
    result = run_script("recognition.py", "--image", astronaut_png, "--no-display", "--model", model)
    assert_clean_error(result, "corrupt.keras", "cannot load model file")


def test_window_without_a_display_explains_no_display(astronaut_png):
    env = {"DISPLAY": "", "WAYLAND_DISPLAY": ""}
    result = run_script("recognition.py", "--image", astronaut_png, env=env)
    assert_clean_error(result, "--no-display")


def test_debug_shows_the_traceback(tmp_path):
    result = run_script("recognition.py", "--image", tmp_path / "missing.png", "--no-display", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_evaluate_json_on_a_class_folder(fer_folder, tmp_path, shipped_model):
    png = tmp_path / "confusion.png"
    result = run_script("evaluate.py", "--data", fer_folder / "test", "--json", "--confusion-png", png)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 28 and 0 <= report["accuracy"] <= 1 and 0 <= report["accuracy_tta"] <= 1
    assert set(report["per_class"]) == set(CLASS_NAMES)
    assert {"precision", "recall", "f1", "support"} <= set(report["per_class"]["disgust"])
    assert 0 <= report["macro_f1"] <= 1
    assert png.stat().st_size > 1000


def test_evaluate_and_train_name_dataset_problems(fer_folder, tmp_path):
    (fer_folder / "test" / "contempt").mkdir()
    assert_clean_error(run_script("evaluate.py", "--data", fer_folder / "test"), "contempt")
    assert_clean_error(run_script("train.py", "--data", fer_folder, "--output", tmp_path / "m.keras"), "contempt")
    assert_clean_error(run_script("train.py", "--data", tmp_path / "nowhere"), "nowhere", "dataset/README.md")
    assert_clean_error(run_script("evaluate.py", "--model", tmp_path / "x.keras"), "x.keras", "python train.py")


def test_default_model_is_found_from_any_working_directory(astronaut_png, tmp_path):
    import subprocess
    import sys

    from conftest import ROOT
    result = subprocess.run([sys.executable, str(ROOT / "recognition.py"), "--image", str(astronaut_png), "--json",
                             "--no-display"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["faces"]) == 1


def test_model_breaking_the_contract_is_named(tmp_path, astronaut_png):
    import keras
    inputs = keras.Input((64, 64, 3))
    path = tmp_path / "rgb.keras"
    keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs))).save(path)
    assert_clean_error(run_script("recognition.py", "--image", astronaut_png, "--no-display", "--model", path),
                       "rgb.keras", "takes input")
    assert_clean_error(run_script("evaluate.py", "--model", path), "rgb.keras", "takes input")


def test_unwritable_outputs_are_caught_before_any_work(fer_folder, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_clean_error(run_script("train.py", "--data", fer_folder, "--output", blocker / "m.keras"),
                       "a-file", "--output")
    assert_clean_error(run_script("evaluate.py", "--data", fer_folder / "test", "--confusion-png",
                                  tmp_path / "none" / "c.png"), "does not exist", "--confusion-png")
