"""benchmarks/cross_dataset.py: how it reads a labelled photo set, what it scores, and its errors."""

import importlib.util
import json
import shutil

import cv2
import numpy as np
import pytest

from conftest import ROOT, assert_clean_error, run_script

SCRIPT = "benchmarks/cross_dataset.py"


@pytest.fixture(scope="module")
def cross_dataset():
    spec = importlib.util.spec_from_file_location("cross_dataset", ROOT / SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def photo_set(tmp_path, astronaut_png):
    """Happiness/ (an alias) holds the smiling astronaut, sad/ a photo with no face, Contempt/ a photo to leave out."""
    root = tmp_path / "set"
    for folder in ("Happiness", "sad", "Contempt"):
        (root / folder).mkdir(parents=True)
    shutil.copy(astronaut_png, root / "Happiness" / "astronaut.png")
    cv2.imwrite(str(root / "sad" / "blank.png"), np.full((240, 320, 3), 128, np.uint8))
    shutil.copy(astronaut_png, root / "Contempt" / "astronaut.png")
    return root


@pytest.mark.parametrize("folder, expected", [("happy", "happy"), ("Angry", "angry"), ("anger", "angry"),
                                              ("Disgusted", "disgust"), ("fearful", "fear"), ("AFRAID", "fear"),
                                              ("happiness", "happy"), ("sadness", "sad"), ("surprised", "surprise"),
                                              ("contempt", None), ("other", None)])
def test_folder_names_map_onto_the_classes(cross_dataset, folder, expected):
    assert cross_dataset.class_of(folder) == expected


def test_contempt_is_left_out_with_a_note(cross_dataset, photo_set, capsys):
    photos = cross_dataset.list_photos(photo_set)
    assert sorted((path.name, label) for path, label in photos) == [("astronaut.png", 3), ("blank.png", 5)]
    assert "Contempt" in capsys.readouterr().err


def test_scores_count_a_photo_without_a_face_as_wrong(cross_dataset):
    labels = np.array([3, 3, 5, 5])
    row = cross_dataset.score(labels, np.array([3, 4, -1, 5]), seconds=1.0)
    assert row["faces"] == 3 and row["accuracy"] == 0.5 and row["macro_recall"] == 0.5
    assert row["recall"]["happy"] == 0.5 and row["recall"]["angry"] is None
    assert row["predicted"]["no face"] == 0.25 and row["predicted"]["neutral"] == 0.25
    assert sum(row["predicted"].values()) == pytest.approx(1.0)


def test_json_for_a_set(photo_set):
    result = run_script(SCRIPT, photo_set, "--skip-fer", "--json")
    assert result.returncode == 0, result.stderr
    (labelled,) = json.loads(result.stdout)["sets"]
    assert labelled["photos"] == 2 and labelled["per_class"]["happy"] == 1 and labelled["per_class"]["sad"] == 1
    (row,) = labelled["results"]
    assert row["faces"] == 1 and row["recall"]["happy"] == 1.0 and row["recall"]["sad"] == 0.0
    assert row["predicted"]["happy"] == 0.5 and row["predicted"]["no face"] == 0.5
    assert "Contempt" in result.stderr


def test_bad_folders_give_one_clear_line(tmp_path):
    assert_clean_error(run_script(SCRIPT, tmp_path / "missing", "--skip-fer"), "missing", "not a folder")
    (tmp_path / "empty" / "happy").mkdir(parents=True)
    assert_clean_error(run_script(SCRIPT, tmp_path / "empty", "--skip-fer"), "no photos", "happy")
