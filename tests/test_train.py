"""train.py end to end on a tiny folder: the model it writes, checkpoints, interruption and resume."""

import json
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import ROOT, assert_clean_error, interrupt_after_first_epoch, weight_groups


@pytest.mark.slow
def test_train_one_epoch_writes_a_model_that_honours_the_contract(cli, fer_folder, tmp_path):
    output = tmp_path / "m.keras"
    result = cli("train", "--data", fer_folder, "--epochs", "1", "--output", output, "--members", "1")
    assert result.returncode == 0, result.stderr
    # Printing to a file (as a run in the background does), each epoch is one line, not a progress bar.
    assert re.search(r"^(\d+)/\1 - .*val_accuracy", result.stdout, re.MULTILINE), result.stdout
    assert "\x1b[" not in result.stdout and "\r" not in result.stdout
    # After Keras' line for the epoch, the run's own: the best epoch so far and the time left.
    assert re.search(r"val_accuracy.*\nepoch 1/1: best validation accuracy [\d.]+% at epoch 1; done\n",
                     result.stdout), result.stdout
    model = keras.models.load_model(output, compile=False, safe_mode=True)
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    probabilities = np.asarray(model(np.random.default_rng(1).integers(0, 256, (3, 48, 48, 1)).astype("float32")))
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # The published model carries no optimizer state; the checkpoint for --resume does.
    assert "optimizer" not in weight_groups(output)
    assert "optimizer" in weight_groups(tmp_path / "runs" / "m" / "last.keras")

    metrics = json.loads((tmp_path / "m.metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["test"]["n"] == 7 * 4
    assert set(metrics["test"]) >= {"accuracy", "accuracy_tta", "macro_f1", "per_class"}
    assert (tmp_path / "m.history.png").stat().st_size > 1000
    assert (tmp_path / "runs" / "m" / "last.keras").is_file()
    assert (tmp_path / "runs" / "m" / "history.png").stat().st_size > 1000  # redrawn after every epoch
    assert "accuracy" in result.stdout and "disgust" in result.stdout  # the per-class report

    # The run is not overwritten without asking; --restart discards it and trains afresh.
    again = cli("train", "--data", fer_folder, "--epochs", "1", "--output", output, "--quiet", "--members", "1")
    assert_clean_error(again, "already holds a run", "--resume", "--restart")
    restarted = cli("train", "--data", fer_folder, "--epochs", "1", "--output", output, "--quiet", "--restart",
                    "--members", "1")
    assert restarted.returncode == 0, restarted.stderr
    state = json.loads((tmp_path / "runs" / "m" / "state.json").read_text())
    assert state["epochs_done"] == 1 and state["session_starts"] == [0]
    assert json.loads((tmp_path / "m.metrics.json").read_text())["times_resumed"] == 0


def test_the_line_after_each_epoch_counts_the_models_still_to_train(capsys):
    from emotion_recognition.runs import RunProgress, RunState, time_left

    state = RunState(config={})
    progress = RunProgress(state, label=" of model 1/2", epochs_after=10)
    progress.set_params({"epochs": 10})
    progress.on_epoch_begin(0)  # nothing done yet: no line
    state.epochs_done, state.best_epoch, state.best_val_accuracy = 3, 2, 0.5
    state.history = [{"seconds": seconds} for seconds in (90, 60, 61, 59)]
    progress.on_epoch_begin(3)
    progress.on_epoch_begin(3)  # nothing new: no second line
    # 7 epochs of this model and 10 of the next, at the median epoch's 61 s (the slow first one aside).
    assert capsys.readouterr().out == ("epoch 3/10 of model 1/2: best validation accuracy 50.00% at epoch 2; "
                                       "about 17 min to go\n")
    assert [time_left(seconds) for seconds in (0, 20, 17 * 60, 3 * 3600 + 5 * 60)] == [
        "done", "under a minute to go", "about 17 min to go", "about 3 h 05 min to go"]


@pytest.mark.slow
def test_resume_without_a_run_is_refused(cli, fer_folder, tmp_path):
    result = cli("train", "--data", fer_folder, "--output", tmp_path / "m.keras", "--resume")
    assert_clean_error(result, "nothing to resume")
    assert_clean_error(cli("train", "--data", fer_folder, "--output", tmp_path / "m.keras", "--members", "0"),
                       "members must be 1 or more")


@pytest.mark.slow
def test_sigint_after_first_epoch_keeps_a_model_and_resume_finishes(fer_folder, tmp_path):
    output, run_dir = tmp_path / "m.keras", tmp_path / "run"
    command = [sys.executable, str(ROOT / "train.py"), "--data", str(fer_folder), "--epochs", "4",
               "--output", str(output), "--run-dir", str(run_dir), "--quiet", "--members", "1"]
    state_file = run_dir / "state.json"
    process, stderr = interrupt_after_first_epoch(command, state_file)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stderr and "interrupted after" in stderr

    done = json.loads(state_file.read_text())["epochs_done"]
    assert 1 <= done < 4
    interrupted = keras.models.load_model(run_dir / "best.keras", compile=False, safe_mode=True)
    assert interrupted.output_shape == (None, 7)
    assert not output.exists()  # an unfinished run never replaces the published model

    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resuming {run_dir} after epoch {done} of 4" in resumed.stdout
    state = json.loads(state_file.read_text())
    assert state["epochs_done"] == 4 and len(state["history"]) == 4
    # The run remembers it was resumed, and after which epoch; the published metrics say how often.
    assert state["session_starts"] == [0, done]
    assert json.loads(output.with_suffix(".metrics.json").read_text())["times_resumed"] == 1
    keras.models.load_model(output, compile=False, safe_mode=True)
    # The optimizer carried on: its step counter covers all four epochs, not just the resumed ones.
    from emotion_recognition.model import load_model  # the checkpoint trains with the project's FaceCrop
    last = load_model(run_dir / "last.keras", compile=True)
    steps_per_epoch = int(np.ceil((7 * 12 - 7 * 1) / 64))
    assert int(last.optimizer.iterations) == 4 * steps_per_epoch


@pytest.mark.slow
def test_recipe_options_shape_the_model_and_a_resumed_run_keeps_them(cli, fer_folder, tmp_path):
    output = tmp_path / "m.keras"
    first = cli("train", "--data", fer_folder, "--epochs", "1", "--output", output, "--quiet",
                       "--base-width", "8", "--random-erasing", "0", "--class-weight-power", "1",
                       "--crop-size", "44", "--optimizer", "sgd", "--dense-units", "32", "--members", "1")
    assert first.returncode == 0, first.stderr
    from emotion_recognition.model import crop_size_of, load_model
    model = load_model(output)
    assert model.get_layer("s1_conv1").filters == 8 and model.get_layer("s4_conv1").filters == 64
    assert crop_size_of(model) == 44 and model.get_layer("dense").units == 32

    # Resuming with other recipe options on the command line must not change the run's recipe.
    resumed = cli("train", "--data", fer_folder, "--epochs", "1", "--output", output, "--quiet",
                  "--resume", "--base-width", "24", "--random-erasing", "0.9")
    assert resumed.returncode == 0, resumed.stderr
    assert "ignoring base_width 24 (the run has 8), random_erasing 0.9 (the run has 0.0)" in resumed.stderr
    config = json.loads((tmp_path / "m.metrics.json").read_text())["config"]
    assert (config["base_width"], config["random_erasing"], config["class_weight_power"]) == (8, 0.0, 1.0)
    assert (config["crop_size"], config["optimizer"]) == (44, "sgd")

    # The library does the same, and leaves the caller's config as it was.
    from emotion_recognition.recipe import TrainConfig
    from emotion_recognition.training import train

    asked = TrainConfig(data=str(fer_folder), output=str(output), epochs=1, base_width=16, dense_units=64)
    metrics = train(asked, resume=True, verbose=0)  # nothing left to train: publishes and scores again
    assert (metrics["config"]["base_width"], metrics["config"]["dense_units"]) == (8, 32)
    assert (asked.base_width, asked.dense_units) == (16, 64)


@pytest.mark.slow
def test_two_members_train_one_after_another_and_the_published_model_averages_them(cli, fer_folder, tmp_path):
    output, run_dir = tmp_path / "pair.keras", tmp_path / "run"
    options = ("train", "--data", fer_folder, "--epochs", "1", "--output", output, "--run-dir", run_dir, "--quiet",
               "--base-width", "4", "--dense-units", "8", "--members", "2", "--seed", "5", "--final-epochs", "0")
    result = cli(*options)
    assert result.returncode == 0, result.stderr
    assert "Model 2 of 2 (seed 6)" in result.stdout and "Validation accuracy of the average of 2 models" in result.stdout
    from emotion_recognition.model import load_model
    members = [load_model(run_dir / f"member-{n}" / "best.keras") for n in (1, 2)]
    published = load_model(output)
    faces = np.random.default_rng(2).integers(0, 256, (4, 48, 48, 1)).astype("float32")
    separate = [np.asarray(member(faces)) for member in members]
    assert not np.allclose(separate[0], separate[1], atol=1e-3)  # different seeds, different models
    assert np.allclose(np.asarray(published(faces)), (separate[0] + separate[1]) / 2, atol=1e-5)
    metrics = json.loads(output.with_suffix(".metrics.json").read_text())
    assert [member["seed"] for member in metrics["members"]] == [5, 6]
    assert metrics["parameters"] == 2 * members[0].count_params() and 0 <= metrics["val_accuracy"] <= 1

    # A second model lost midway: resuming trains it again and leaves the first as it was.
    first_state = (run_dir / "member-1" / "state.json").read_text()
    for stale in (run_dir / "member-2").iterdir():
        stale.unlink()
    resumed = cli(*options, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (run_dir / "member-1" / "state.json").read_text() == first_state
    assert json.loads((run_dir / "member-2" / "state.json").read_text())["epochs_done"] == 1
    assert_clean_error(cli(*options), "already holds a run", "--resume", "--restart")


@pytest.mark.slow
def test_compare_recipes_never_discards_a_run_of_another_length(fer_folder, tmp_path):
    # A finished 8-epoch comparison run must survive a later call that asks for 30 epochs.
    run_dir = tmp_path / "recipes" / "crops-sgd"
    run_dir.mkdir(parents=True)
    state = {"config": {"epochs": 8}, "epochs_done": 8}
    (run_dir / "state.json").write_text(json.dumps(state))
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare_recipes.py"), "--data", fer_folder,
                             "--epochs", "30", "--runs-dir", tmp_path / "recipes", "--only", "crops-sgd"],
                            capture_output=True, text=True, timeout=120)
    assert_clean_error(result, "8 epochs, not 30", "--runs-dir")
    assert json.loads((run_dir / "state.json").read_text()) == state


@pytest.mark.slow
def test_final_epochs_train_on_all_of_train_and_from_model_gives_only_those(cli, fer_folder, tmp_path):
    from emotion_recognition.model import average_models, load_model, members_of
    output, run_dir = tmp_path / "pair.keras", tmp_path / "run"
    tiny = ("--data", fer_folder, "--quiet", "--base-width", "4", "--dense-units", "8", "--final-epochs", "1")
    result = cli("train", *tiny, "--epochs", "1", "--output", output, "--run-dir", run_dir, "--members", "2")
    assert result.returncode == 0, result.stderr
    assert "No validation accuracy" in result.stdout  # the final epoch trained on the validation slice
    faces = np.random.default_rng(3).integers(0, 256, (4, 48, 48, 1)).astype("float32")
    best = [np.asarray(load_model(run_dir / f"member-{n}" / "best.keras")(faces)) for n in (1, 2)]
    final = [np.asarray(load_model(run_dir / f"member-{n}" / "final.keras")(faces)) for n in (1, 2)]
    assert not np.allclose(best[0], final[0], atol=1e-4)  # the final epoch changed the model
    assert np.allclose(np.asarray(load_model(output)(faces)), (final[0] + final[1]) / 2, atol=1e-5)
    metrics = json.loads(output.with_suffix(".metrics.json").read_text())
    assert metrics["val_accuracy"] is None and metrics["final_epochs"] == 1
    # By default one run with light and one with full augmentation, their weights averaged.
    assert [[epoch["augmentation"] for epoch in member["final_history"]] for member in metrics["members"]] == \
        [["light", "full"]] * 2

    # An averaged file comes apart into its members, which average back to it.
    pair = load_model(output)
    members = members_of(pair)
    assert len(members) == 2
    assert np.allclose(np.asarray(average_models(members)(faces)), np.asarray(pair(faces)), atol=1e-5)

    # --from-model: each member of a finished model gets only the final epochs.
    finished, again_dir = tmp_path / "finished.keras", tmp_path / "again"
    again = cli("train", *tiny, "--from-model", output, "--output", finished, "--run-dir", again_dir)
    assert again.returncode == 0, again.stderr
    assert "Model 2 of 2" in again.stdout and "Final 1 epoch(s)" in again.stdout
    state = json.loads((again_dir / "member-2" / "state.json").read_text())
    assert state["started_from"] == str(output) and state["final_epochs_done"] == 1 and state["epochs_done"] == 0
    assert not np.allclose(np.asarray(load_model(finished)(faces)), np.asarray(pair(faces)), atol=1e-4)
    # Resuming a finished run trains nothing more and publishes the same model.
    before = (again_dir / "member-1" / "final.keras").stat().st_mtime_ns
    resumed = cli("train", *tiny, "--output", finished, "--run-dir", again_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "Final 1 epoch" not in resumed.stdout
    assert (again_dir / "member-1" / "final.keras").stat().st_mtime_ns == before

    assert_clean_error(cli("train", *tiny, "--from-model", output, "--output", output, "--run-dir", tmp_path / "x"),
                       "--from-model", "also the --output")
    assert_clean_error(cli("train", "--data", fer_folder, "--from-model", output, "--final-epochs", "0",
                           "--output", tmp_path / "y.keras"), "--final-epochs 0")
