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
