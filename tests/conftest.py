"""Shared fixtures. Everything is built in temporary folders: no FER2013, no camera, no display."""

import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

# LiteRT conversions made by the tests are cached in a folder of their own, never the user's home;
# the scripts the tests start inherit it.
os.environ["EMOTION_RECOGNITION_CACHE"] = tempfile.mkdtemp(prefix="emotion-recognition-test-cache-")

from emotion_recognition.config import CLASS_NAMES, DEFAULT_MODEL_PATH, IMAGE_SIZE  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Where the astronaut's face is in skimage.data.astronaut() (512x512), measured by hand.
ASTRONAUT_FACE = (170, 55, 110, 120)


def face_like_image(rng, label):
    """A 48x48 grayscale 'face': noise plus a class-specific bar, so a tiny model has something to learn."""
    image = rng.normal(128, 30, (IMAGE_SIZE, IMAGE_SIZE)).clip(0, 255).astype(np.uint8)
    row = 4 + label * 6
    image[row:row + 4, 8:40] = 255
    return image


def make_fer_folder(root, per_class=(12, 4), seed=0):
    """A FER2013-layout folder: root/{train,test}/<emotion>/*.jpg with `per_class` images each."""
    rng = np.random.default_rng(seed)
    for split, count in zip(("train", "test"), per_class):
        for label, name in enumerate(CLASS_NAMES):
            folder = Path(root) / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                cv2.imwrite(str(folder / f"{split}_{i}.jpg"), face_like_image(rng, label))
    return Path(root)


@pytest.fixture
def fer_folder(tmp_path):
    return make_fer_folder(tmp_path / "FER2013")


@pytest.fixture(scope="session")
def astronaut_png(tmp_path_factory):
    from skimage import data
    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="session")
def face_video(tmp_path_factory):
    """A 640x480, 12-frame MP4 with the astronaut's face drifting across a plain background."""
    from skimage import data
    path = tmp_path_factory.mktemp("videos") / "clip.mp4"
    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    x, y, w, h = ASTRONAUT_FACE
    face = cv2.resize(photo[y - 30:y + h + 30, x - 30:x + w + 30], (200, 220))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    for frame_index in range(12):
        frame = np.full((480, 640, 3), 90, np.uint8)
        left = 60 + frame_index * 20
        frame[120:340, left:left + 200] = face
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="session")
def shipped_model():
    assert DEFAULT_MODEL_PATH.is_file(), "the trained emotion_detection.keras must ship with the repository"
    return DEFAULT_MODEL_PATH


def weight_groups(keras_file):
    """Top-level groups with content in a .keras file's weights ('layers', 'optimizer', ...)."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(keras_file) as archive:
        weights = io.BytesIO(archive.read("model.weights.h5"))
    with h5py.File(weights, "r") as h5:
        counts = {}
        h5.visititems(lambda name, item: counts.__setitem__(name.split("/")[0], counts.get(name.split("/")[0], 0)
                                                             + (item.size if isinstance(item, h5py.Dataset) else 0)))
    return {name for name, size in counts.items() if size > 0}


def run_script(script, *args, env=None, cwd=None, timeout=300):
    """Run one of the project's scripts in a new process, as a user would; returns the CompletedProcess.

    For what only a process shows: exit codes after signals, what reaches the terminal, imports."""
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd)


@pytest.fixture
def cli(capfd):
    """Run a command's main(argv) in this process, as its console script does, and capture what it
    prints (at the file-descriptor level, where native code writes too). cli("recognize", ...),
    cli("train", ...) or cli("evaluate", ...) returns a CompletedProcess like run_script's."""
    def run(command, *args):
        main = importlib.import_module(f"emotion_recognition.cli.{command}").main
        capfd.readouterr()
        try:
            main([str(arg) for arg in args])
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess([command, *args], code, out, err)
    return run


def assert_clean_error(result, *words):
    """A non-zero exit with one clear line on stderr naming what went wrong, and no traceback."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])


def interrupt_after_first_epoch(command, state_file, sig=None, timeout=240):
    """Start train.py, send it `sig` (SIGINT) once its first epoch is saved; return (process, stderr)."""
    import json
    import signal
    import time

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if state_file.is_file() and json.loads(state_file.read_text()).get("epochs_done", 0) >= 1:
            break
        time.sleep(0.05)
    process.send_signal(sig or signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    return process, stderr
