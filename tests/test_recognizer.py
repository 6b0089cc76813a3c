"""The Python API: EmotionRecognizer.detect and .classify, with the shipped model."""

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE
from emotion_recognition import CLASS_NAMES, EmotionRecognizer


def overlap(box_a, box_b):
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = box_a
    bx, by, bw, bh = box_b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    return iw * ih / (aw * ah + bw * bh - iw * ih)


@pytest.fixture(scope="module")
def recognizer(shipped_model):
    return EmotionRecognizer(model_path=shipped_model)


def test_astronaut_photo_gives_exactly_one_face(recognizer, astronaut_png):
    faces = recognizer.detect(cv2.imread(str(astronaut_png)))
    assert len(faces) == 1
    face = faces[0]
    assert overlap(face.box, ASTRONAUT_FACE) > 0.5, face.box
    assert face.emotion in CLASS_NAMES and face["emotion"] == face.emotion
    assert list(face.probabilities) == list(CLASS_NAMES)
    assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert face.confidence == pytest.approx(max(face.probabilities.values()))
    assert face.probabilities[face.emotion] == face.confidence


def test_grayscale_frames_work_too(recognizer, astronaut_png):
    gray = cv2.imread(str(astronaut_png), cv2.IMREAD_GRAYSCALE)
    assert len(recognizer.detect(gray)) == 1


def test_blank_frame_has_no_faces(recognizer):
    assert recognizer.detect(np.zeros((480, 640, 3), np.uint8)) == []


def test_classify_accepts_both_shapes_and_matches_the_model(recognizer):
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    flat, channel = recognizer.classify(faces), recognizer.classify(faces[..., None])
    assert flat.shape == (5, 7)
    assert np.allclose(flat, channel)
    assert np.allclose(flat.sum(axis=1), 1.0, atol=1e-5)
    reference = recognizer.model.predict(faces[..., None].astype("float32"), verbose=0)
    assert np.allclose(flat, reference, atol=1e-4)
    assert recognizer.classify(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)


@pytest.mark.parametrize("shape", [(48, 48), (2, 64, 64), (2, 48, 48, 3)])
def test_classify_rejects_wrong_shapes(recognizer, shape):
    with pytest.raises(ValueError, match="48"):
        recognizer.classify(np.zeros(shape, np.uint8))
