"""The three commands as a user runs them, including every bad input.

Most tests call a command's main(argv) in this process (the `cli` fixture), which is what its console
script does; a few start real processes, for what only a process shows."""

import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import pytest

from conftest import ASTRONAUT_FACE, ROOT, assert_clean_error, run_script

from emotion_recognition.geometry import iou
from emotion_recognition.config import CLASS_NAMES, MODEL_RECORD_NAME
from emotion_recognition.errors import UserError

FACE_KEYS = {"box", "angle", "emotion", "confidence", "probabilities"}


def check_face_schema(face, video=False):
    assert set(face) == FACE_KEYS | ({"id"} if video else set())
    assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
    assert face["emotion"] in CLASS_NAMES
    assert list(face["probabilities"]) == list(CLASS_NAMES)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert face["confidence"] == pytest.approx(face["probabilities"][face["emotion"]])


def test_recognition_script_prints_clean_json_for_a_photo(astronaut_png, tmp_path):
    """A real process from another folder: stdout holds exactly one JSON line, the astronaut smiles."""
    annotated = tmp_path / "annotated.png"
    result = run_script("recognition.py", "--image", astronaut_png, "--json", "--no-display", "--output", annotated,
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["image"] == str(astronaut_png) and len(record["faces"]) == 1
    check_face_schema(record["faces"][0])
    assert record["faces"][0]["emotion"] == "happy"
    assert iou(record["faces"][0]["box"], ASTRONAUT_FACE) > 0.5
    assert cv2.imread(str(annotated)).shape == (512, 512, 3)


def test_installed_console_script_finds_the_shipped_model_from_any_folder(astronaut_png, tmp_path):
    # pip install -r requirements.txt installs the package (editable) with its console scripts.
    command = Path(sys.executable).parent / "emotion-recognition"
    result = subprocess.run([str(command), "--image", str(astronaut_png), "--json", "--no-display"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    faces = json.loads(result.stdout)["faces"]
    assert [face["emotion"] for face in faces] == ["happy"]


def test_several_images_write_into_an_output_folder(cli, astronaut_png, tmp_path):
    second = tmp_path / "copy.jpg"
    cv2.imwrite(str(second), cv2.imread(str(astronaut_png)))
    result = cli("recognize", "--image", astronaut_png, second, "--json", "--no-display", "--output", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["image"] for line in result.stdout.splitlines()] == [str(astronaut_png), str(second)]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["astronaut.png", "copy.jpg"]


def test_mirror_averages_the_face_with_its_mirror_image(cli, astronaut_png):
    def probabilities(*options):
        result = cli("recognize", "--image", astronaut_png, "--json", "--no-display", *options)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["faces"][0]["probabilities"]

    averaged, as_is = probabilities("--mirror"), probabilities()  # the default classifies the face as it is
    assert averaged != as_is and max(averaged, key=averaged.get) == "happy"


def test_video_frame_by_frame(cli, face_video, tmp_path):
    output = tmp_path / "annotated.mp4"
    result = cli("recognize", "--source", face_video, "--no-display", "--json", "--output", output)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [r["frame"] for r in records] == list(range(12))
    found = [r for r in records if len(r["faces"]) == 1]
    assert len(found) >= 10, records
    for record in found:
        check_face_schema(record["faces"][0], video=True)
    assert "12 frames" in result.stderr and "frames/s" in result.stderr
    written = cv2.VideoCapture(str(output))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    assert (int(written.get(cv2.CAP_PROP_FRAME_WIDTH)), int(written.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (640, 480)
    written.release()


def test_max_frames_stops_early_and_still_finalises_the_video(cli, face_video, tmp_path):
    output = tmp_path / "short.mp4"
    result = cli("recognize", "--source", face_video, "--no-display", "--max-frames", "5", "--output", output)
    assert result.returncode == 0, result.stderr
    capture = cv2.VideoCapture(str(output))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    ok, _ = capture.read()
    assert ok


def assert_help_explains_itself(result):
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and "default" in result.stdout
    # Every option says what it does; defaults show only where they say something.
    chunks = re.split(r"\n(?=  -)|\n\n", result.stdout.split("options:", 1)[1])
    for entry in (chunk for chunk in chunks if chunk.startswith("  -")):
        first_line, *more_lines = entry.splitlines()
        assert re.search(r"\S {2,}\S", first_line) or more_lines, f"no help: {entry}"
        text = " ".join(entry.split())
        assert "(default: None)" not in text, text
        if text.split()[0] in ("--debug", "--json", "--resume", "--quiet"):
            assert "(default:" not in text, text


@pytest.mark.parametrize("command", ["recognize", "train", "evaluate", "from_csv"])
def test_help_explains_itself(cli, command):
    result = cli(command, "--help")
    assert "--debug" in result.stdout and "--version" in result.stdout
    assert_help_explains_itself(result)


@pytest.mark.parametrize("command", ["recognize", "train", "evaluate", "from_csv"])
def test_version_is_the_package_version(cli, command):
    from emotion_recognition import __version__

    result = cli(command, "--version")
    assert result.returncode == 0 and result.stdout.split()[-1] == __version__


@pytest.mark.parametrize("script", sorted(path.name for path in (ROOT / "benchmarks").glob("*.py")
                                           if path.name != "common.py"))  # common.py is their shared code
def test_benchmark_help_explains_itself(script):
    assert_help_explains_itself(run_script(Path("benchmarks") / script, "--help"))


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not an image")
    return path


def test_bad_inputs_give_one_clear_line(cli, tmp_path, astronaut_png, text_file):
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(os.urandom(2048))
    cases = [
        (["--image", tmp_path / "missing.png"], ["missing.png", "not found"]),
        (["--image", text_file], ["notes.jpg", "not an image"]),
        (["--image", astronaut_png, "--model", tmp_path / "none.keras"], ["none.keras", "not found"]),
        (["--image", astronaut_png, "--model", corrupt], ["corrupt.keras", "not a Keras .keras file"]),
        (["--source", tmp_path / "missing.mp4"], ["missing.mp4", "not found"]),
        (["--source", text_file], ["notes.jpg", "cannot read video"]),
        (["--source", "97"], ["cannot open camera 97", "--source 1"]),
        (["--image", astronaut_png, "--output", tmp_path / "no" / "such" / "dir.png"], ["does not exist", "--output"]),
        (["--every", "0"], ["--every must be 1 or more", "not 0"]),
        (["--half-life", "-1"], ["--half-life must be 0 or more", "not -1"]),
        (["--min-face", "0"], ["--min-face must be at least 1", "not 0"]),
        (["--max-frames", "0"], ["--max-frames must be 1 or more", "not 0"]),
        (["--reconnect", "-2"], ["--reconnect must be 0 or more seconds", "not -2"]),
        (["--image", astronaut_png, "--selfie"], ["--selfie mirrors a camera or a video"]),
    ]
    for args, words in cases:
        assert_clean_error(cli("recognize", *args, "--no-display"), *words)


def test_from_csv_writes_the_splits_and_says_how_to_score_the_held_out_one(cli, tmp_path):
    from test_data import csv_face, write_fer_csv

    write_fer_csv(tmp_path / "fer2013.csv", [(3, csv_face(0), "Training"), (3, csv_face(1), "PrivateTest")])
    result = cli("from_csv", tmp_path / "fer2013.csv", "--output", tmp_path / "FER2013")
    assert result.returncode == 0, result.stderr
    assert f"1 faces in {tmp_path / 'FER2013'}/private_test" in result.stderr
    assert f"python evaluate.py --data {tmp_path / 'FER2013'}/private_test" in result.stderr
    assert (tmp_path / "FER2013" / "private_test" / "happy" / "00002.png").is_file()
    assert_clean_error(cli("from_csv", tmp_path / "missing.csv"), "missing.csv not found", "fer2013.csv")


def test_a_model_with_another_class_order_is_refused_in_one_line(cli, tmp_path, astronaut_png, shipped_model):
    relabelled = tmp_path / "relabelled.keras"
    with zipfile.ZipFile(shipped_model) as source, zipfile.ZipFile(relabelled, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == MODEL_RECORD_NAME:
                record = json.loads(content)
                record["class_names"] = sorted(record["class_names"], reverse=True)
                content = json.dumps(record)
            target.writestr(item, content)
    for command, args in (("recognize", ["--image", astronaut_png, "--no-display"]), ("evaluate", [])):
        assert_clean_error(cli(command, *args, "--model", relabelled), "relabelled.keras", "surprise", "mislabelled")


def test_window_without_a_display_explains_no_display(cli, astronaut_png, monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("the DISPLAY check is Linux's")
    monkeypatch.setenv("DISPLAY", "")
    monkeypatch.setenv("WAYLAND_DISPLAY", "")
    assert_clean_error(cli("recognize", "--image", astronaut_png), "--no-display")


def test_debug_shows_the_traceback(cli, tmp_path):
    with pytest.raises(UserError, match="missing.png"):
        cli("recognize", "--image", tmp_path / "missing.png", "--no-display", "--debug")


@pytest.mark.slow
def test_export_writes_the_litert_model_the_recognizer_uses(cli, tmp_path, shipped_model):
    exported = tmp_path / "model.tflite"
    result = cli("recognize", "--export", exported)
    assert result.returncode == 0, result.stderr
    assert "deviation" in result.stderr
    assert exported.read_bytes() == shipped_model.with_suffix(".tflite").read_bytes()


@pytest.mark.slow
def test_evaluate_json_on_a_class_folder(cli, fer_folder, tmp_path, shipped_model):
    png = tmp_path / "confusion.png"
    result = cli("evaluate", "--data", fer_folder / "test", "--json", "--confusion-png", png)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 28 and set(report["per_class"]) == set(CLASS_NAMES)
    # The accuracies are those of the confusion matrix the report carries, and every class has 4 faces.
    matrix = report["confusion_matrix"]
    assert [sum(row) for row in matrix] == [4] * 7
    assert report["accuracy"] == pytest.approx(sum(matrix[i][i] for i in range(7)) / 28)
    assert report["per_class"]["disgust"]["recall"] == pytest.approx(matrix[1][1] / 4)
    assert png.stat().st_size > 1000

    # Without --json: the report as a table, after a progress bar over the views (31 passes in all).
    table = cli("evaluate", "--data", fer_folder / "test", "--confusion-png", png)
    assert table.returncode == 0, table.stderr
    assert "31/31" in table.stdout and "disgust" in table.stdout
    assert f"{report['accuracy']:.2%}" in table.stdout

    # A dataset folder (train/ and test/, as train.py takes) is scored on its test/ split, and says so.
    whole = cli("evaluate", "--data", fer_folder, "--json", "--confusion-png", png)
    assert whole.returncode == 0, whole.stderr
    assert json.loads(whole.stdout)["n"] == 28 and "scoring its test/ split" in whole.stderr
    assert "private_test" not in whole.stderr
    (fer_folder / "private_test").mkdir()  # as emotion-from-csv writes it: the note points there too
    whole = cli("evaluate", "--data", fer_folder, "--json", "--confusion-png", png)
    assert f"--data {fer_folder / 'private_test'} scores the held-back PrivateTest faces" in whole.stderr


def test_a_reader_that_stops_early_ends_the_output_quietly(astronaut_png, tmp_path):
    import shutil

    for number in range(80):
        shutil.copy(astronaut_png, tmp_path / f"{number:02d}.png")
    process = subprocess.Popen([sys.executable, str(ROOT / "recognition.py"), "--image", tmp_path, "--json",
                                "--no-display"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = process.stdout.readline()  # as `| head -1` does: one line, then the pipe closes
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 141, stderr  # the exit status of a program a closed pipe ended
    assert json.loads(first)["faces"][0]["emotion"] == "happy"
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


@pytest.mark.slow
def test_evaluating_the_shipped_model_leaves_its_shipped_figure_alone(cli, fer_folder, tmp_path, monkeypatch,
                                                                    shipped_model):
    shipped_figure = shipped_model.with_suffix(".confusion.png")
    before = shipped_figure.read_bytes()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "temporary"))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    (tmp_path / "temporary").mkdir()
    result = cli("evaluate", "--data", fer_folder / "test", "--json")
    assert result.returncode == 0, result.stderr
    assert shipped_figure.read_bytes() == before  # still the PublicTest figure the README shows
    assert (tmp_path / "temporary" / "emotion_detection.confusion.png").stat().st_size > 0
    assert not list(tmp_path.glob("*.png"))  # nothing left in the folder the user stands in


@pytest.mark.slow
def test_evaluate_scores_the_emotions_a_folder_has(cli, fer_folder, tmp_path):
    import shutil

    test = fer_folder / "test"
    for name in ("disgust", "fear"):
        shutil.rmtree(test / name)
    for path in (test / "surprise").iterdir():  # an empty folder counts as absent
        path.unlink()
    result = cli("evaluate", "--data", test, "--json", "--confusion-png", tmp_path / "c.png")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 16
    assert [report["per_class"][name]["support"] for name in CLASS_NAMES] == [4, 0, 0, 4, 4, 4, 0]
    assert report["per_class"]["fear"]["recall"] is None and report["per_class"]["sad"]["recall"] is not None
    assert "disgust, fear, surprise" in result.stderr and "not measured" in result.stderr
    table = cli("evaluate", "--data", test, "--confusion-png", tmp_path / "c.png")
    assert re.search(r"disgust\s+\d\.\d{3}\s+-\s+-\s+0\n", table.stdout), table.stdout

    for name in ("angry", "happy", "neutral", "sad", "surprise"):
        shutil.rmtree(test / name)
    assert_clean_error(cli("evaluate", "--data", test), "lacks", "one or more of")
    # Training still needs all seven.
    assert_clean_error(cli("train", "--data", fer_folder, "--output", tmp_path / "m.keras"), "lacks", "exactly")


def test_evaluate_and_train_name_dataset_problems(cli, fer_folder, tmp_path):
    (fer_folder / "test" / "contempt").mkdir()
    assert_clean_error(cli("evaluate", "--data", fer_folder / "test"), "contempt")
    assert_clean_error(cli("train", "--data", fer_folder, "--output", tmp_path / "m.keras"), "contempt")
    assert_clean_error(cli("train", "--data", tmp_path / "nowhere"), "nowhere", "dataset/README.md", "--data")
    assert_clean_error(cli("evaluate", "--model", tmp_path / "x.keras"), "x.keras", "not found")


def test_default_model_is_found_from_any_working_directory(cli, astronaut_png, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("recognize", "--image", astronaut_png, "--json", "--no-display")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["faces"]) == 1


def test_model_breaking_the_contract_is_named(cli, tmp_path, astronaut_png):
    import keras
    inputs = keras.Input((64, 64, 3))
    path = tmp_path / "rgb.keras"
    keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs))).save(path)
    assert_clean_error(cli("recognize", "--image", astronaut_png, "--no-display", "--model", path),
                       "rgb.keras", "takes input")
    assert_clean_error(cli("evaluate", "--model", path), "rgb.keras", "takes input")


def test_unwritable_outputs_are_caught_before_any_work(cli, fer_folder, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_clean_error(cli("train", "--data", fer_folder, "--output", blocker / "m.keras"), "a-file")
    assert_clean_error(cli("evaluate", "--data", fer_folder / "test", "--confusion-png", tmp_path / "none" / "c.png"),
                       "does not exist", "--confusion-png")
