"""Class order and dataset checks."""

import shutil

import numpy as np
import pytest

from emotion_recognition import data
from emotion_recognition.config import CLASS_NAMES
from emotion_recognition.errors import UserError


def test_class_order_is_fixed():
    assert CLASS_NAMES == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def test_labels_follow_class_names_not_listing_order(fer_folder):
    folders = data.check_class_folders(fer_folder / "train")
    assert [f.name for f in folders] == list(CLASS_NAMES)
    images, labels, skipped = data.load_split(fer_folder / "train", verbose=False)
    assert images.shape == (12 * 7, 48, 48) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [12] * 7
    assert skipped == []
    # The synthetic faces carry their label as a bright bar at row 4 + 6 * label.
    for image, label in zip(images[::12], labels[::12]):
        assert image[4 + 6 * label + 1, 20] > 200


def test_emotion_folders_are_matched_whatever_their_case(fer_folder):
    split = fer_folder / "train"
    for name in CLASS_NAMES:  # as some copies of FER2013 spell them
        (split / name).rename(split / name.capitalize())
    folders = data.check_class_folders(split)
    assert [f.name for f in folders] == [name.capitalize() for name in CLASS_NAMES]
    images, labels, _ = data.load_split(split, verbose=False)
    assert np.bincount(labels).tolist() == [12] * 7
    for image, label in zip(images[::12], labels[::12]):  # each face's label bar (conftest) where its label says
        assert image[4 + 6 * label + 1, 20] > 200
    (split / "happy").mkdir()
    with pytest.raises(UserError, match="one emotion in two folders .Happy and happy."):
        data.check_class_folders(split)


@pytest.mark.parametrize("problem,expected", [
    ("no_dataset", "not found"),
    ("no_test", "has no test/"),
    ("missing_class", "lacks the class folder(s) disgust"),
    ("extra_class", "contempt"),
    ("empty_class", "is empty"),
])
def test_dataset_problems_are_named(fer_folder, problem, expected):
    if problem == "no_dataset":
        shutil.rmtree(fer_folder)
    elif problem == "no_test":
        shutil.rmtree(fer_folder / "test")
    elif problem == "missing_class":
        shutil.rmtree(fer_folder / "train" / "disgust")
    elif problem == "extra_class":
        (fer_folder / "train" / "contempt").mkdir()
    elif problem == "empty_class":
        for image in (fer_folder / "train" / "fear").iterdir():
            image.unlink()
    with pytest.raises(UserError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        data.check_dataset(fer_folder)


def test_corrupt_and_non_image_files_are_skipped_and_reported(fer_folder):
    (fer_folder / "train" / "happy" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (fer_folder / "train" / "sad" / "notes.txt").write_text("not an image")
    (fer_folder / "train" / "sad" / ".DS_Store").write_bytes(b"\0\0")
    images, labels, skipped = data.load_split(fer_folder / "train", verbose=False)
    assert len(images) == 12 * 7
    assert sorted(p.name for p in skipped) == ["broken.jpg", "notes.txt"]


def test_odd_sized_and_colour_images_become_48x48_gray(tmp_path, fer_folder):
    import cv2
    cv2.imwrite(str(fer_folder / "test" / "happy" / "big.png"), np.zeros((100, 80, 3), np.uint8))
    images, _, _ = data.load_split(fer_folder / "test", verbose=False)
    assert images.shape[1:] == (48, 48)


def test_stratified_split_keeps_class_shares_and_is_seeded():
    labels = np.repeat(np.arange(7), [400, 40, 410, 720, 500, 480, 320])
    train_a, val_a = data.stratified_split(labels, 0.1, seed=3)
    train_b, val_b = data.stratified_split(labels, 0.1, seed=3)
    assert np.array_equal(val_a, val_b) and np.array_equal(train_a, train_b)
    assert len(np.intersect1d(train_a, val_a)) == 0 and len(train_a) + len(val_a) == len(labels)
    assert np.bincount(labels[val_a]).tolist() == [40, 4, 41, 72, 50, 48, 32]
    _, val_c = data.stratified_split(labels, 0.1, seed=4)
    assert not np.array_equal(val_a, val_c)


def test_bad_validation_share_is_refused():
    with pytest.raises(UserError, match="validation share must be between 0 and 1"):
        data.stratified_split(np.zeros(10, int), 1.5, seed=0)


# --- FER2013's original CSV -------------------------------------------------------------------------

def write_fer_csv(path, rows, header=("emotion", " pixels", " Usage")):
    """A CSV in FER2013's form (Kaggle's copy has the spaces in its header); rows: (code, face, usage)."""
    lines = [",".join(header)] + [f'{code},"{" ".join(map(str, face.flatten()))}",{usage}' for code, face, usage in rows]
    path.write_text("\n".join(lines) + "\n")


def csv_face(seed):
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


def test_fer_csv_becomes_the_project_folders_with_the_challenge_emotion_codes(tmp_path):
    import cv2

    rows = [(code, csv_face(code), "Training") for code in range(7)]
    rows += [(code, csv_face(10 + code), "PublicTest") for code in range(7)] + [(4, csv_face(99), "PrivateTest")]
    write_fer_csv(tmp_path / "fer2013.csv", rows)
    counts = data.convert_fer_csv(tmp_path / "fer2013.csv", tmp_path / "FER2013")
    assert counts == {"train": 7, "test": 7, "private_test": 1}
    data.check_dataset(tmp_path / "FER2013")  # what train.py checks
    # The challenge's codes: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral.
    sad = cv2.imread(str(tmp_path / "FER2013" / "train" / "sad" / "00005.png"), cv2.IMREAD_GRAYSCALE)
    neutral = cv2.imread(str(tmp_path / "FER2013" / "train" / "neutral" / "00007.png"), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(sad, csv_face(4)) and np.array_equal(neutral, csv_face(6))  # lossless, named by row
    images, labels, _ = data.load_split(tmp_path / "FER2013" / "private_test", verbose=False, all_classes=False)
    assert labels.tolist() == [CLASS_NAMES.index("sad")] and np.array_equal(images[0], csv_face(99))
    assert sorted(p.name for p in (tmp_path / "FER2013").iterdir()) == ["private_test", "test", "train"]


@pytest.mark.parametrize("bad_row, expected", [
    ((3, np.zeros(47 * 48, np.uint8), "Training"), "line 4: 2256 grey levels where a face has 2304"),
    ((9, csv_face(0), "Training"), "line 4: emotion '9' is not a number from 0 to 6"),
    ((3, csv_face(0), "Validation"), "line 4: Usage 'Validation' is none of Training, PublicTest, PrivateTest"),
])
def test_a_bad_csv_row_is_named_and_leaves_nothing_behind(tmp_path, bad_row, expected):
    rows = [(0, csv_face(0), "Training"), (1, csv_face(1), "PublicTest"), bad_row, (2, csv_face(2), "Training")]
    write_fer_csv(tmp_path / "fer2013.csv", rows)
    with pytest.raises(UserError, match=expected):
        data.convert_fer_csv(tmp_path / "fer2013.csv", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # no split, no half-written one


def test_a_csv_never_writes_into_an_existing_split(tmp_path, fer_folder):
    write_fer_csv(tmp_path / "fer2013.csv", [(0, csv_face(0), "PublicTest")])
    before = sorted((fer_folder / "test").rglob("*"))
    with pytest.raises(UserError, match="test already exists"):
        data.convert_fer_csv(tmp_path / "fer2013.csv", fer_folder)
    assert sorted((fer_folder / "test").rglob("*")) == before
    write_fer_csv(tmp_path / "unlabelled.csv", [], header=("id", "pixels"))  # the challenge's test.csv
    with pytest.raises(UserError, match="no emotion and pixels columns"):
        data.convert_fer_csv(tmp_path / "unlabelled.csv", tmp_path / "out")

