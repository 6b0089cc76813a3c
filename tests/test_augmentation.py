"""Training-time augmentation and the model's crop: the same changes Keras would make, reproducibly."""

import numpy as np
import pytest

from emotion_recognition.augmentation import (AugmentedFaces, camera_change, image_data_generator,
                                              warp_like_image_data_generator)
from emotion_recognition.model import FaceCrop, build_model, crop_size_of, save_model_atomic


def smooth_face(seed=0):
    import cv2

    noise = np.random.default_rng(seed).integers(0, 256, (48, 48)).astype(np.uint8)
    return cv2.GaussianBlur(noise, (7, 7), 2)


@pytest.mark.parametrize("seed", range(4))
def test_opencv_warp_draws_what_image_data_generator_draws(seed):
    # Shifts are on here so that every part of the transform (turn, zoom, shift, mirror) is compared.
    generator = image_data_generator(rotation=10, zoom=0.1, shift=0.1)
    face = smooth_face(seed)
    params = generator.get_random_transform((48, 48, 1), seed=seed)
    keras_result = generator.apply_transform(face[..., None].astype("float32"), params)[..., 0]
    ours = warp_like_image_data_generator(face, params).astype("float32")
    # Same geometry: within one grey level (OpenCV rounds to uint8), far below what a wrong axis,
    # sign or centre would give.
    assert np.abs(keras_result - ours).max() <= 1.0
    wrong_way = warp_like_image_data_generator(face, {**params, "theta": -params["theta"],
                                                      "flip_horizontal": not params["flip_horizontal"]})
    assert np.abs(keras_result - wrong_way).mean() > 5


def test_augmented_batches_are_reproducible_per_epoch_and_differ_between_epochs():
    faces = np.stack([smooth_face(i) for i in range(10)])
    one_hot = np.eye(7, dtype="float32")[np.arange(10) % 7]
    weights = np.arange(10, dtype="float32")

    def batches(first_epoch):
        return AugmentedFaces(faces, one_hot, weights, batch_size=4, generator=image_data_generator(),
                              erase_probability=0.5, seed=3, first_epoch=first_epoch)

    stream = batches(0)
    assert len(stream) == 3
    x, y, w = stream[0]
    assert x.shape == (4, 48, 48, 1) and x.dtype == np.float32 and y.shape == (4, 7)
    # Labels and weights travel with their faces through the shuffle.
    assert np.array_equal(y, one_hot[w.astype(int)])
    assert np.array_equal(stream[1][0], batches(0)[1][0])
    stream.on_epoch_end()
    assert np.array_equal(stream[1][0], batches(1)[1][0])  # a resumed run continues the same stream
    assert not np.array_equal(stream[1][0], batches(0)[1][0])


def test_random_erasing_blanks_one_patch_of_an_eighth_to_a_third_of_each_side():
    black = np.zeros((64, 48, 48), dtype=np.uint8)  # stays black under any turn, zoom or mirror
    one_hot = np.eye(7, dtype="float32")[np.arange(64) % 7]

    def first_batch(erase_probability):
        return AugmentedFaces(black, one_hot, np.ones(64, "float32"), batch_size=64, generator=image_data_generator(),
                              erase_probability=erase_probability, seed=5)[0][0][..., 0]

    assert not first_batch(0.0).any()
    sides, greys = [], set()
    for face in first_batch(1.0):
        rows, cols = np.flatnonzero(face.any(axis=1)), np.flatnonzero(face.any(axis=0))
        if not len(rows):
            continue  # the patch drew grey 0 (1 in 256)
        patch = face[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        assert (patch == patch[0, 0]).all() and face.sum() == patch.sum()  # one solid rectangle
        sides += [len(rows), len(cols)]
        greys.add(float(patch[0, 0]))
    assert len(sides) >= 2 * 60 and min(sides) >= 48 // 8 and max(sides) <= 48 // 3
    assert len(set(sides)) > 5 and len(greys) > 30  # sizes and greys vary from face to face


def test_face_crop_is_random_in_training_and_central_otherwise():
    faces = np.arange(3 * 48 * 48, dtype="float32").reshape(3, 48, 48, 1)
    crop = FaceCrop(40, seed=1)
    assert np.array_equal(np.asarray(crop(faces)), faces[:, 4:44, 4:44])  # no `training`: inference
    seen = set()
    for _ in range(5):
        cropped = np.asarray(crop(faces, training=True))
        for face, window in zip(faces, cropped):
            top, left = divmod(int(window[0, 0, 0] - face[0, 0, 0]), 48)
            assert 0 <= top <= 8 and 0 <= left <= 8
            assert np.array_equal(window, face[top:top + 40, left:left + 40])  # an exact window
            seen.add((top, left))
    assert len(seen) > 3


@pytest.mark.slow
def test_a_cropping_model_saves_and_loads_with_its_crop(tmp_path):
    model = build_model(base_width=4, crop_size=40)
    path = tmp_path / "crop.keras"
    save_model_atomic(model, path)
    import keras

    loaded = keras.models.load_model(path, safe_mode=True)  # FaceCrop is registered by importing the package
    assert crop_size_of(loaded) == 40 and crop_size_of(build_model(base_width=4, crop_size=48)) == 48
    faces = np.random.default_rng(0).integers(0, 256, (2, 48, 48, 1)).astype("float32")
    assert np.allclose(model.predict(faces, verbose=0), loaded.predict(faces, verbose=0), atol=1e-6)

    # The published form swaps FaceCrop for Keras' CenterCrop and answers exactly the same.
    from emotion_recognition.model import copy_weights

    published = copy_weights(model, build_model(base_width=4, crop_size=40, random_crops=False))
    assert "FaceCrop" not in {type(layer).__name__ for layer in published.layers}
    assert np.allclose(published.predict(faces, verbose=0), model.predict(faces, verbose=0), atol=1e-6)


# camera_change's six draws in order; 0.5 is the middle of each range, and 0.99 for "blur_or_noise" and
# "jpeg" means neither blur nor noise nor JPEG.
CAMERA_DRAWS = ("contrast", "brightness", "gamma", "blur_or_noise", "strength", "jpeg")
PLAIN = {"contrast": 0.5, "brightness": 0.5, "gamma": 0.5, "blur_or_noise": 0.99, "strength": 0.5, "jpeg": 0.99}


def test_camera_change_moves_brightness_and_contrast_and_blurs_or_adds_noise():
    face = np.random.default_rng(1).integers(80, 176, (48, 48)).astype(np.uint8)  # sharp, nothing clipped
    rng = np.random.default_rng(0)

    def changed(of=face, **draws):
        values = {**PLAIN, **draws}
        out = camera_change(of, [values[name] for name in CAMERA_DRAWS], rng)
        assert out.shape == face.shape and out.dtype == np.uint8
        return out.astype(float)

    middle = changed()
    assert changed(brightness=0.99).mean() > middle.mean() + 20 > changed(brightness=0.0).mean() + 40  # brightness +-40
    assert changed(contrast=0.99).std() > 1.2 * middle.std() > 1.4 * changed(contrast=0.0).std()  # contrast x0.6..1.4

    def roughness(image):
        return np.abs(np.diff(image, axis=1)).mean()

    blurred, noisy = changed(blur_or_noise=0.1, strength=0.99), changed(blur_or_noise=0.5, strength=0.99)
    assert roughness(blurred) < 0.8 * roughness(middle) < 0.8 * roughness(noisy)
    smooth = smooth_face(1)
    assert 0 < np.abs(changed(smooth, jpeg=0.0) - changed(smooth)).mean() < 3  # JPEG at quality 40


def test_camera_change_in_batches_is_reproducible_and_off_by_default():
    faces = np.stack([smooth_face(i) for i in range(8)])
    one_hot = np.eye(7, dtype="float32")[np.arange(8) % 7]

    def first_batch(**camera):
        return AugmentedFaces(faces, one_hot, np.ones(8, "float32"), batch_size=8, generator=image_data_generator(),
                              erase_probability=0.5, seed=2, **camera)[0][0]

    plain, changed = first_batch(), first_batch(camera_probability=1.0)
    assert np.array_equal(first_batch(camera_probability=0.0), plain)
    assert np.array_equal(first_batch(camera_probability=1.0), changed)
    assert all(not np.array_equal(a, b) for a, b in zip(plain, changed))
