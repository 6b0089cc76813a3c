"""train.py on several devices: the CPU split into two logical devices takes MirroredStrategy's path."""

import json
import subprocess
import sys

import keras
import numpy as np

from conftest import ROOT, assert_clean_error, interrupt_after_first_epoch, run_script


def train_command(fer_folder, tmp_path, *extra):
    return [sys.executable, str(ROOT / "train.py"), "--data", str(fer_folder), "--output", str(tmp_path / "m.keras"),
            "--run-dir", str(tmp_path / "run"), "--quiet", "--batch-size", "8", *map(str, extra)]


def test_two_devices_train_a_model_that_honours_the_contract(fer_folder, tmp_path):
    result = subprocess.run(train_command(fer_folder, tmp_path, "--epochs", "1", "--devices", "2"),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Training on 2 logical CPU device(s)" in result.stdout and "MirroredStrategy" in result.stdout
    assert "8 faces per device, 16 per step" in result.stdout
    model = keras.models.load_model(tmp_path / "m.keras", compile=False, safe_mode=True)
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    probabilities = np.asarray(model(np.full((2, 48, 48, 1), 128, "float32")))
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["devices"] == ["/cpu:0", "/cpu:1"] and state["global_batch"] == 16


def test_two_devices_interrupted_after_an_epoch_resume_and_finish(fer_folder, tmp_path):
    command = train_command(fer_folder, tmp_path, "--epochs", "3", "--devices", "2")
    state_file = tmp_path / "run" / "state.json"
    process, stderr = interrupt_after_first_epoch(command, state_file)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    done = json.loads(state_file.read_text())["epochs_done"]
    assert 1 <= done < 3

    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"after epoch {done} of 3" in resumed.stdout and "2 logical CPU device(s)" in resumed.stdout
    state = json.loads(state_file.read_text())
    assert state["epochs_done"] == 3 and len(state["history"]) == 3 and state["global_batch"] == 16


def test_a_multi_machine_tf_config_is_refused_with_the_reason(fer_folder, tmp_path):
    cluster = {"cluster": {"worker": ["localhost:12345", "localhost:12346"]}, "task": {"type": "worker", "index": 0}}
    result = run_script("train.py", "--data", fer_folder, "--epochs", "1", "--output", tmp_path / "m.keras",
                        env={"TF_CONFIG": json.dumps(cluster)}, timeout=120)
    assert_clean_error(result, "TF_CONFIG", "2 workers", "keras-team/keras/issues/20585")
    assert not (tmp_path / "m.keras").exists()


def test_more_devices_than_the_machine_has_gpus_is_a_clear_error_or_a_cpu_split(fer_folder, tmp_path):
    result = run_script("train.py", "--data", fer_folder, "--epochs", "1", "--output", tmp_path / "m.keras",
                        "--devices", "0")
    assert_clean_error(result, "at least 1")
