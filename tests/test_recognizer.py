"""The Python API: EmotionRecognizer.detect and .classify, with the shipped model."""

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT_FACE

from emotion_recognition.geometry import iou
from emotion_recognition import CLASS_NAMES, EmotionRecognizer


@pytest.fixture(scope="module")
def recognizer(shipped_model):
    return EmotionRecognizer(model_path=shipped_model)


def test_astronaut_photo_gives_exactly_one_smiling_face(recognizer, astronaut_png):
    faces = recognizer.detect(cv2.imread(str(astronaut_png)))
    assert len(faces) == 1
    face = faces[0]
    assert iou(face.box, ASTRONAUT_FACE) > 0.5, face.box
    assert face.emotion == "happy" and face["emotion"] == face.emotion  # she smiles (README's example)
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
    from emotion_recognition.litert_files import MAX_DEVIATION
    from emotion_recognition.model import load_model

    # By default the model's own answer (up to its LiteRT form's int8 weights); mirror=True averages it
    # with its answer for the mirror image.
    model = load_model(recognizer.model_path)
    as_is = model.predict(faces[..., None].astype("float32"), verbose=0)
    mirrored = model.predict(faces[:, :, ::-1, None].astype("float32"), verbose=0)
    assert np.allclose(flat, as_is, atol=MAX_DEVIATION)
    both_views = EmotionRecognizer(recognizer.model_path, mirror=True).classify(faces)
    assert np.allclose(both_views, (as_is + mirrored) / 2, atol=MAX_DEVIATION)
    assert not np.allclose(as_is, mirrored, atol=1e-2)  # random faces: the mirror image changes the answer
    assert recognizer.classify(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)


@pytest.mark.parametrize("shape", [(48, 48), (2, 64, 64), (2, 48, 48, 3)])
def test_classify_rejects_wrong_shapes(recognizer, shape):
    with pytest.raises(ValueError, match="48"):
        recognizer.classify(np.zeros(shape, np.uint8))


def test_classify_refuses_faces_that_are_not_raw_pixels(recognizer):
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48)).astype(np.float32)
    assert recognizer.classify(faces).shape == (3, 7)  # floats on the 0-255 scale are fine
    with pytest.raises(ValueError, match="normalised"):
        recognizer.classify(faces / 255.0)
    with pytest.raises(ValueError, match="0-255"):
        recognizer.classify(faces - 128.0)  # centred, as some pipelines do
    with pytest.raises(ValueError, match="0-255"):
        recognizer.classify(faces * 4.0)


def test_training_and_recognition_prepare_a_face_identically(tmp_path, recognizer):
    """The same face, as a file that training reads and as a box in a frame the recognizer sees."""
    from emotion_recognition.data import read_face
    from emotion_recognition.preprocessing import faces_pixels, to_gray

    rng = np.random.default_rng(3)
    face = cv2.GaussianBlur(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8), (5, 5), 0)
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), face)
    frame = np.full((300, 400, 3), 90, np.uint8)
    frame[100:196, 150:246] = face
    from_file = read_face(path)
    from_frame = faces_pixels(to_gray(frame), [(150, 100, 96, 96)])[0]
    assert from_file.shape == (48, 48) and from_file.dtype == np.uint8
    assert np.array_equal(from_file, from_frame)
    # ... and what the recognizer classifies for that box is exactly that input.
    seen = []
    original = recognizer.classifier
    recognizer.classifier = lambda faces: seen.append(faces) or original(faces)
    try:
        recognizer._find_faces = lambda gray: (np.array([(150, 100, 96, 96)]), np.zeros(1))
        recognizer.detect(frame)
    finally:
        recognizer.classifier = original
        del recognizer._find_faces
    assert np.array_equal(seen[0][0, :, :, 0], from_file.astype(np.float32))


# Enough calls for eight threads to overlap many times (benchmarks/speed.py runs 200 each).
CALLS_PER_THREAD = 50


def test_one_recognizer_shared_by_eight_threads_gives_the_single_threaded_answers(recognizer, astronaut_png):
    from concurrent.futures import ThreadPoolExecutor

    x, y, w, h = ASTRONAUT_FACE
    head = cv2.imread(str(astronaut_png))[max(y - 60, 0):y + h + 60, max(x - 60, 0):x + w + 60]
    head = cv2.resize(head, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)  # small: many calls stay quick
    photo = np.hstack([head, head[:, ::-1], head])  # three faces: OpenCV finds them in varying order
    faces = np.random.default_rng(1).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    expected_faces, expected_probabilities = recognizer.detect(photo), recognizer.classify(faces)
    assert len(expected_faces) == 3
    assert [face.box[0] for face in expected_faces] == sorted(face.box[0] for face in expected_faces)

    def worker(_):
        mismatches = 0
        for _ in range(CALLS_PER_THREAD):
            mismatches += recognizer.detect(photo) != expected_faces
            mismatches += not np.array_equal(recognizer.classify(faces), expected_probabilities)
        return mismatches

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(worker, range(8))) == [0] * 8  # and no exception in any thread


def test_recognition_with_the_shipped_model_never_imports_tensorflow(shipped_model, astronaut_png):
    import subprocess
    import sys

    from conftest import ROOT

    script = ("import runpy, sys; sys.argv = ['recognition.py', '--image', sys.argv[1], '--json', '--no-display']; "
              "runpy.run_path('recognition.py', run_name='__main__'); "
              "print('imported:', sorted(m for m in ('tensorflow', 'keras') if m in sys.modules), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", script, str(astronaut_png)], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '"emotion": "happy"' in result.stdout
    assert "imported: []" in result.stderr


def test_a_keras_file_without_litert_is_converted_checked_and_cached(tmp_path, monkeypatch):
    from emotion_recognition.litert_files import MAX_DEVIATION, cached_path, file_sha256
    from emotion_recognition.model import build_model, save_model_atomic

    monkeypatch.setenv("EMOTION_RECOGNITION_CACHE", str(tmp_path / "cache"))
    keras_model = build_model(base_width=4)
    path = tmp_path / "tiny.keras"
    save_model_atomic(keras_model, path)
    recognizer = EmotionRecognizer(path, mirror=False)
    assert recognizer.classifier.name == "litert"
    assert cached_path(path, file_sha256(path)).is_file()
    faces = np.random.default_rng(2).integers(0, 256, (4, 48, 48, 1)).astype("float32")
    assert np.allclose(recognizer.classify(faces), keras_model.predict(faces, verbose=0), atol=MAX_DEVIATION)


def test_litert_weights_are_int8_unless_asked_for_float32():
    from emotion_recognition.classifier import LiteRTClassifier
    from emotion_recognition.litert_files import convert_to_litert
    from emotion_recognition.model import build_model

    keras_model = build_model(base_width=4)
    int8, float32 = convert_to_litert(keras_model), convert_to_litert(keras_model, quantize=False)
    assert len(int8) < len(float32) / 2  # most of the file is weights: a byte each instead of four
    faces = np.random.default_rng(4).integers(0, 256, (4, 48, 48, 1)).astype("float32")
    expected = keras_model.predict(faces, verbose=0)
    assert np.allclose(LiteRTClassifier(float32)(faces), expected, atol=1e-5)


def test_a_litert_file_recorded_for_another_keras_file_is_never_used(tmp_path, monkeypatch, shipped_model):
    import json
    import shutil

    from emotion_recognition.litert_files import MAX_DEVIATION, beside_paths
    from emotion_recognition.model import build_model, save_model_atomic

    monkeypatch.setenv("EMOTION_RECOGNITION_CACHE", str(tmp_path / "cache"))
    keras_model = build_model(base_width=4)
    path = tmp_path / "emotion_detection.keras"
    save_model_atomic(keras_model, path)
    # Beside it, the shipped model's LiteRT file and record: they name another .keras file's hash.
    stale_tflite, stale_record = beside_paths(path)
    shipped_tflite, shipped_record = beside_paths(shipped_model)
    shutil.copy(shipped_tflite, stale_tflite)
    shutil.copy(shipped_record, stale_record)
    assert json.loads(stale_record.read_text())["keras_sha256"] != __import__("hashlib").sha256(path.read_bytes()).hexdigest()

    faces = np.random.default_rng(3).integers(0, 256, (4, 48, 48, 1)).astype("float32")
    probabilities = EmotionRecognizer(path, mirror=False).classify(faces)
    assert np.allclose(probabilities, keras_model.predict(faces, verbose=0), atol=MAX_DEVIATION)


def test_the_shipped_litert_file_matches_the_shipped_model(shipped_model):
    from emotion_recognition.litert_files import beside_paths, file_sha256

    import json

    tflite, record = beside_paths(shipped_model)
    assert tflite.is_file(), "emotion_detection.tflite must ship beside emotion_detection.keras"
    assert json.loads(record.read_text())["keras_sha256"] == file_sha256(shipped_model)


@pytest.mark.parametrize("angle", [30, -30])
def test_a_turned_face_is_found_read_upright_and_reported_with_its_angle(recognizer, astronaut_png, angle):
    photo = cv2.imread(str(astronaut_png))
    turned = cv2.warpAffine(photo, cv2.getRotationMatrix2D((256, 256), angle, 1.0), (512, 512),
                            borderMode=cv2.BORDER_REPLICATE)
    (face,) = recognizer.detect(turned)
    assert face.angle == angle and face.emotion == "happy" and face.confidence > 0.8, face
    # The face's centre, turned back, is the upright photo's face centre.
    x, y, w, h = face.box
    back = cv2.invertAffineTransform(cv2.getRotationMatrix2D((256, 256), angle, 1.0)) @ (x + w / 2, y + h / 2, 1)
    ax, ay, aw, ah = ASTRONAUT_FACE
    assert abs(back[0] - (ax + aw / 2)) < 15 and abs(back[1] - (ay + ah / 2)) < 15, back
    # Upright faces only: the turned face is not found.
    from emotion_recognition import EmotionRecognizer

    assert EmotionRecognizer(turned=False).detect(turned) == [] and recognizer.detect(photo)[0].angle == 0


def test_a_turned_face_is_cut_out_upright():
    from emotion_recognition.preprocessing import face_pixels

    rng = np.random.default_rng(5)
    face = cv2.GaussianBlur(rng.integers(0, 256, (120, 120), dtype=np.uint8), (0, 0), 4)
    frame = np.full((400, 400), 90, np.uint8)
    frame[140:260, 140:260] = face
    turned = cv2.warpAffine(frame, cv2.getRotationMatrix2D((200, 200), 25, 1.0), (400, 400), borderValue=90)
    upright = face_pixels(frame, (140, 140, 120, 120)).astype(float)
    assert np.abs(face_pixels(turned, (140, 140, 120, 120), 25) - upright).mean() < 4  # turned back: the same
    assert np.abs(face_pixels(turned, (140, 140, 120, 120)) - upright).mean() > 10      # not turned back: not


def test_a_changed_region_is_searched_up_to_the_first_angle_that_finds_a_face(astronaut_png):
    from emotion_recognition.faces import FaceDetector

    detector = FaceDetector()
    searched = []
    search = detector._detect_in
    detector._detect_in = lambda gray, region, angle=0.0, **settings: searched.append(angle) or search(
        gray, region, angle=angle, **settings)
    gray = cv2.cvtColor(cv2.imread(str(astronaut_png)), cv2.COLOR_BGR2GRAY)
    whole = (0, 0, gray.shape[1], gray.shape[0])
    assert list(detector.detect_in_all(gray, whole)[1]) == [0.0] and searched == [0.0]
    searched.clear()
    turned = cv2.warpAffine(gray, cv2.getRotationMatrix2D((256, 256), 30, 1.0), (512, 512),
                            borderMode=cv2.BORDER_REPLICATE)
    assert list(detector.detect_in_all(turned, whole)[1]) == [30.0] and searched == [0.0, 30.0]
