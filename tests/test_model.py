"""The model contract, safe loading and atomic saving."""

import json
import os
import zipfile

import keras
import numpy as np
import pytest
from keras import layers

from conftest import weight_groups
from emotion_recognition.config import CLASS_NAMES
from emotion_recognition.errors import UserError
from emotion_recognition.model import (_version_tuple, average_models, build_model, check_contract, crop_size_of,
                                       load_model, save_model_atomic)


@pytest.fixture(scope="module")
def model():
    return build_model()


def test_contract_shapes_and_probabilities(model):
    assert model.input_shape == (None, 48, 48, 1)
    assert model.output_shape == (None, len(CLASS_NAMES))
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48, 1)).astype("float32")
    probabilities = np.asarray(model(faces, training=False))
    assert probabilities.shape == (5, 7)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities >= 0).all()


def test_architecture_has_batchnorm_dropout_and_inner_rescaling(model):
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"Conv2D", "BatchNormalization", "Dropout", "Rescaling"} <= kinds
    # Rescaling sits right after the input: raw 0-255 pixels go in, nothing is scaled outside.
    assert type(model.layers[1]).__name__ == "Rescaling"


def test_shipped_model_honours_the_contract(shipped_model):
    shipped = keras.models.load_model(shipped_model, compile=False, safe_mode=True)
    check_contract(shipped)
    probabilities = np.asarray(shipped(np.full((2, 48, 48, 1), 128, "float32")))
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_atomic_save_and_load_roundtrip(model, tmp_path):
    path = tmp_path / "m.keras"
    save_model_atomic(model, path, include_optimizer=False)
    loaded = load_model(path)
    faces = np.full((1, 48, 48, 1), 100, "float32")
    assert np.allclose(loaded(faces), model(faces, training=False), atol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]  # no temporary files left behind


@pytest.mark.slow
def test_published_model_carries_no_optimizer_state(tmp_path):
    compiled = build_model()
    compiled.compile(optimizer="adamw", loss="categorical_crossentropy")
    compiled.fit(np.zeros((4, 48, 48, 1)), np.eye(7)[:4], verbose=0)  # creates the optimizer's slots
    save_model_atomic(compiled, tmp_path / "with.keras")
    save_model_atomic(compiled, tmp_path / "without.keras", include_optimizer=False)
    assert "optimizer" in weight_groups(tmp_path / "with.keras")
    assert "optimizer" not in weight_groups(tmp_path / "without.keras")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "without.keras").stat().st_mode & 0o777 == 0o666 & ~mask


def test_failed_save_keeps_the_previous_file(model, tmp_path, monkeypatch):
    path = tmp_path / "m.keras"
    save_model_atomic(model, path, include_optimizer=False)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(keras.saving, "save_model", crash)
    with pytest.raises(OSError):
        save_model_atomic(model, path, include_optimizer=False)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


def test_missing_model_says_how_to_get_one(tmp_path):
    with pytest.raises(UserError, match="not found; train one, or use the shipped"):
        load_model(tmp_path / "nope.keras")


def test_corrupt_model_is_reported(tmp_path):
    path = tmp_path / "corrupt.keras"
    path.write_bytes(b"PK\x03\x04 this is not a model")
    with pytest.raises(UserError, match="cannot load model file"):
        load_model(path)


def test_model_from_a_newer_keras_says_to_upgrade(model, tmp_path):
    # Newer Keras versions add settings to layer configs that older ones reject (Keras 3.15's
    # initializers have `input_axes`, unknown to 3.12): such a file must say which Keras wrote it.
    saved = tmp_path / "saved.keras"
    save_model_atomic(model, saved, include_optimizer=False)
    newer = tmp_path / "newer.keras"
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(newer, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "metadata.json":
                content = json.dumps({**json.loads(content), "keras_version": "99.0.0"})
            elif item.filename == "config.json":
                config = json.loads(content)
                conv = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Conv2D")
                conv["config"]["kernel_initializer"]["config"]["a_setting_from_the_future"] = None
                content = json.dumps(config)
            target.writestr(item, content)
    with pytest.raises(UserError, match=r"saved by Keras 99\.0\.0, and this is Keras .*upgrade it"):
        load_model(newer)
    assert _version_tuple("3.15.1") == (3, 15, 1) and _version_tuple("3.16.0.dev2026") == (3, 16, 0)
    assert _version_tuple("3.13.0rc1") == (3, 13, 0) < _version_tuple("3.15.1")


def test_model_breaking_the_contract_is_refused(tmp_path):
    inputs = keras.Input((64, 64, 3))
    outputs = layers.Dense(5, activation="softmax")(layers.Flatten()(inputs))
    path = tmp_path / "other.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(UserError, match="takes input"):
        load_model(path)


def test_models_with_code_are_not_deserialised(tmp_path):
    # A Lambda layer stores Python bytecode; safe mode must refuse to run it.
    inputs = keras.Input((48, 48, 1))
    x = layers.Lambda(lambda t: t * 2.0)(inputs)
    outputs = layers.Dense(7, activation="softmax")(layers.Flatten()(x))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(UserError, match="cannot load model file"):
        load_model(path)


def test_test_time_augmentation_views():
    from emotion_recognition.evaluation import TTA_MODES, TTA_VIEW_COUNT, VIEW_COUNTS, augmented_views, predict_probabilities

    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    views = list(augmented_views(faces, "full"))
    assert len(views) == TTA_VIEW_COUNT and all(v.shape == faces.shape and v.dtype == np.uint8 for v in views)
    assert np.array_equal(views[0], faces) and np.array_equal(views[TTA_VIEW_COUNT // 2], faces[:, :, ::-1])
    assert [len(list(augmented_views(faces, mode))) for mode in ("none", "mirror")] == [1, 2]
    # The progress bar of evaluate() counts on these numbers.
    assert {mode: len(list(augmented_views(faces, mode))) for mode in TTA_MODES} == VIEW_COUNTS
    # A shifted view moves the picture: column 10 lands on column 12 for a 2-pixel shift right.
    assert np.array_equal(views[1][:, :, 12], faces[:, :, 10])

    probabilities = predict_probabilities(build_model(), faces, tta="full")
    assert probabilities.shape == (3, 7) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_ten_crop_views_are_the_corner_and_centre_crops_a_cropping_model_sees():
    from emotion_recognition.evaluation import augmented_views

    faces = np.random.default_rng(0).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    views = list(augmented_views(faces, "ten-crop", crop_size=40))
    assert len(views) == 10
    seen = {tuple(v[..., None].astype("float32")[:, 4:44, 4:44].ravel()[:50]) for v in views[:5]}
    corners = {tuple(faces[..., None].astype("float32")[:, top:top + 40, left:left + 40].ravel()[:50])
               for top in (0, 4, 8) for left in (0, 4, 8) if (top == left == 4) or (top != 4 and left != 4)}
    assert seen == corners  # the centre and the four corner crops, exactly


def test_saved_models_record_their_labels_and_older_models_still_load(model, tmp_path):
    import zipfile

    from emotion_recognition.config import MODEL_RECORD_NAME
    from emotion_recognition.files import read_model_record

    path = tmp_path / "m.keras"
    save_model_atomic(model, path)
    record = read_model_record(path)
    assert record["class_names"] == list(CLASS_NAMES) and record["input_shape"] == [48, 48, 1]
    # A model saved before records existed (Keras' own save) loads as before.
    plain = tmp_path / "plain.keras"
    model.save(plain)
    with zipfile.ZipFile(plain) as archive:
        assert MODEL_RECORD_NAME not in archive.namelist()
    assert read_model_record(plain) is None and load_model(plain).output_shape == (None, 7)


def test_shipped_model_records_the_project_labels(shipped_model):
    from emotion_recognition.files import read_model_record

    assert read_model_record(shipped_model)["class_names"] == list(CLASS_NAMES)


def test_averaged_models_answer_with_the_mean_of_their_probabilities(tmp_path):
    rng = np.random.default_rng(3)
    members = []
    for _ in range(2):
        member = build_model(base_width=4, dense_units=8, random_crops=False)
        # Trained-looking weights: BatchNorm statistics away from 0 and 1, so that every weight matters.
        member.set_weights([rng.normal(1.0 if "variance" in w.path else 0.0, 0.2, w.shape).astype("float32")
                            for w in member.weights])
        members.append(member)
    averaged = average_models(members)
    check_contract(averaged)
    assert average_models(members[:1]) is members[0]
    assert averaged.count_params() == 2 * members[0].count_params() and crop_size_of(averaged) == 40

    save_model_atomic(averaged, tmp_path / "pair.keras", include_optimizer=False)
    loaded = load_model(tmp_path / "pair.keras")
    faces = rng.integers(0, 256, (6, 48, 48, 1)).astype("float32")
    separate = [np.asarray(member(faces, training=False)) for member in members]
    assert not np.allclose(separate[0], separate[1], atol=1e-3)
    assert np.allclose(np.asarray(loaded(faces, training=False)), (separate[0] + separate[1]) / 2, atol=1e-5)
