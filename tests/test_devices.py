"""train.py on several devices: the CPU split into two logical devices takes MirroredStrategy's path."""

import json
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import ROOT, assert_clean_error, interrupt_after_first_epoch


def train_command(fer_folder, tmp_path, *extra):
    return [sys.executable, str(ROOT / "train.py"), "--data", str(fer_folder), "--output", str(tmp_path / "m.keras"),
            "--run-dir", str(tmp_path / "run"), "--quiet", "--batch-size", "8", "--members", "1", *map(str, extra)]


@pytest.mark.slow
def test_two_devices_interrupted_by_sigterm_resume_and_finish_a_model_that_honours_the_contract(fer_folder, tmp_path):
    command = train_command(fer_folder, tmp_path, "--epochs", "3", "--devices", "2")
    state_file = tmp_path / "run" / "state.json"
    process, stderr = interrupt_after_first_epoch(command, state_file, sig=signal.SIGTERM)
    assert process.returncode == 130 and "Traceback" not in stderr and "--resume" in stderr, stderr
    done = json.loads(state_file.read_text())["epochs_done"]
    assert 1 <= done < 3
    from emotion_recognition.model import load_model
    load_model(tmp_path / "run" / "last.keras")  # the checkpoint written before the signal is whole

    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"after epoch {done} of 3" in resumed.stdout
    assert "Training on 2 logical CPU device(s)" in resumed.stdout and "MirroredStrategy" in resumed.stdout
    assert "8 faces per device, 16 per step" in resumed.stdout
    state = json.loads(state_file.read_text())
    assert state["epochs_done"] == 3 and len(state["history"]) == 3 and state["global_batch"] == 16
    assert state["devices"] == ["/cpu:0", "/cpu:1"]
    model = keras.models.load_model(tmp_path / "m.keras", compile=False, safe_mode=True)
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    probabilities = np.asarray(model(np.full((2, 48, 48, 1), 128, "float32")))
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


@pytest.mark.slow
def test_a_multi_machine_tf_config_is_refused_with_the_reason(cli, fer_folder, tmp_path, monkeypatch):
    cluster = {"cluster": {"worker": ["localhost:12345", "localhost:12346"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    result = cli("train", "--data", fer_folder, "--epochs", "1", "--output", tmp_path / "m.keras")
    assert_clean_error(result, "TF_CONFIG", "2 workers", "keras-team/keras/issues/20585")
    assert not (tmp_path / "m.keras").exists()


@pytest.mark.slow
def test_zero_devices_is_a_clear_error(cli, fer_folder, tmp_path):
    result = cli("train", "--data", fer_folder, "--epochs", "1", "--output", tmp_path / "m.keras", "--devices", "0")
    assert_clean_error(result, "at least 1")


def test_a_backend_without_tf_distribute_trains_on_one_device_and_refuses_several(monkeypatch):
    # Keras on JAX (how a GPU machine without TensorFlow trains) has no tf.distribute: one device, no strategy.
    from emotion_recognition import devices
    from emotion_recognition.errors import UserError

    monkeypatch.setattr(devices.keras.backend, "backend", lambda: "numpy")
    chosen = devices.choose_devices()
    assert chosen.names == ("/cpu:0",) and chosen.kind == "CPU" and chosen.count == 1
    with chosen.strategy.scope():
        pass
    assert "Keras on numpy" in chosen.describe()
    with pytest.raises(UserError, match="TensorFlow backend"):
        devices.choose_devices(2)
