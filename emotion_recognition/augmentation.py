"""Training-time augmentation: Keras' ImageDataGenerator decides each face's change, OpenCV draws it.

ImageDataGenerator samples every random transform (rotation, zoom, shifts, flip) exactly as its
documentation describes. Its own SciPy warp is slow for training on a CPU (docs/design.md, "Numbers
behind the defaults"); `warp_like_image_data_generator` draws the very same affine transform with
OpenCV (tests/test_augmentation.py checks the two agree).
Random crops happen inside the model (model.FaceCrop), so the data here stays 48x48 raw pixels.
"""

import math

import cv2
import keras
import numpy as np

from .config import INPUT_SHAPE


def image_data_generator(rotation=10.0, zoom=0.1, shift=0.0):
    """The project's ImageDataGenerator: small turns and zooms, mirror images, shifts if asked.

    With random crops in the model, shifts are already there; `shift` stays for crop-free recipes.
    """
    # Keras 3 keeps ImageDataGenerator (deprecated) only in the API it builds for tf.keras, which is
    # Keras' own module keras._tf_keras: importable without TensorFlow, so Keras on JAX trains alike.
    from keras._tf_keras.keras.preprocessing.image import ImageDataGenerator

    return ImageDataGenerator(
        rotation_range=rotation,
        zoom_range=zoom,
        width_shift_range=shift,
        height_shift_range=shift,
        horizontal_flip=True,
        fill_mode="nearest",
    )


def transform_matrix(params, height, width):
    """The 2x3 inverse map (output pixel -> input pixel, x then y) of ImageDataGenerator's transform.

    The same product of rotation, shift, shear and zoom about the image centre as Keras'
    apply_affine_transform, before it swaps the axes for SciPy; multiplied out by hand, because five
    3x3 NumPy products cost more than the warp itself on a 48x48 face.
    """
    theta = math.radians(params.get("theta", 0.0))
    shear = math.radians(params.get("shear", 0.0))
    cos, sin = math.cos(theta), math.sin(theta)
    zoom_x, zoom_y = params.get("zx", 1.0), params.get("zy", 1.0)
    shift_x, shift_y = params.get("tx", 0.0), params.get("ty", 0.0)
    # rotation @ shift @ shear @ zoom, as 2x2 linear part (a b; c d) and offset (e, f)
    a, c = cos * zoom_x, sin * zoom_x
    b = -(cos * math.sin(shear) + sin * math.cos(shear)) * zoom_y
    d = (cos * math.cos(shear) - sin * math.sin(shear)) * zoom_y
    e, f = cos * shift_x - sin * shift_y, sin * shift_x + cos * shift_y
    # Keras centres the transform with the row count first; the faces here are square either way.
    centre_x, centre_y = height / 2 - 0.5, width / 2 - 0.5
    return np.array([[a, b, e + centre_x - a * centre_x - b * centre_y],
                     [c, d, f + centre_y - c * centre_x - d * centre_y]])


def warp_like_image_data_generator(face, params):
    """Apply one ImageDataGenerator transform (a get_random_transform() dict) to a 2-D uint8 face."""
    height, width = face.shape
    out = cv2.warpAffine(face, transform_matrix(params, height, width), (width, height),
                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    if params.get("flip_horizontal"):
        out = out[:, ::-1]
    return out


def random_erase(face, draws):
    """Blank a random patch (an eighth to a third of each side) of a 2-D face, in place, with one
    random grey. draws: five uniform numbers in [0, 1) that size and place the patch and pick its grey.

    Hiding a part of the face forces the model to read all of it, not one cue.
    """
    height, width = face.shape
    patch_h = height // 8 + int(draws[0] * (height // 3 - height // 8 + 1))
    patch_w = width // 8 + int(draws[1] * (width // 3 - width // 8 + 1))
    top, left = int(draws[2] * (height - patch_h + 1)), int(draws[3] * (width - patch_w + 1))
    face[top:top + patch_h, left:left + patch_w] = int(draws[4] * 256)
    return face


# What camera_change draws from: a factor, a shift and a gamma for the grey levels; then a share of faces
# blurred, another noisy, each within its range; and a share JPEG-compressed at a quality within its range.
CONTRAST_RANGE = (0.6, 1.4)
BRIGHTNESS_RANGE = (-40, 40)
GAMMA_RANGE = (0.67, 1.5)
BLUR_SHARE, BLUR_SIGMA_RANGE = 1 / 3, (0.3, 0.8)
NOISE_SHARE, NOISE_STD_RANGE = 1 / 3, (2.0, 10.0)
JPEG_SHARE, JPEG_QUALITY_RANGE = 0.5, (40, 90)


def _within(draw, bounds):
    return bounds[0] + draw * (bounds[1] - bounds[0])


def camera_change(face, draws, rng):
    """A 2-D uint8 face as another camera might have taken it: contrast, brightness and gamma changed,
    then either blurred or noisy (or neither), then maybe JPEG-compressed. draws: six uniform numbers
    in [0, 1) that pick the contrast, the brightness, the gamma, blur or noise, its strength, and the JPEG
    quality (or none); rng draws the noise. Returns a new uint8 face.

    FER2013's faces are web photos; a webcam's or a studio's differ in light and sharpness.
    """
    gamma = _within(draws[2], GAMMA_RANGE)
    levels = 255.0 * (np.arange(256) / 255.0) ** gamma
    mean = levels[face].mean()
    levels = (levels - mean) * _within(draws[0], CONTRAST_RANGE) + mean + _within(draws[1], BRIGHTNESS_RANGE)
    out = np.clip(levels, 0, 255).astype(np.uint8)[face]
    if draws[3] < BLUR_SHARE:
        out = cv2.GaussianBlur(out, (0, 0), _within(draws[4], BLUR_SIGMA_RANGE))
    elif draws[3] < BLUR_SHARE + NOISE_SHARE:
        noise = rng.normal(0.0, _within(draws[4], NOISE_STD_RANGE), out.shape)
        out = np.clip(out + noise, 0, 255).astype(np.uint8)
    if draws[5] < JPEG_SHARE:
        quality = int(_within(draws[5] / JPEG_SHARE, JPEG_QUALITY_RANGE))
        out = cv2.imdecode(cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_GRAYSCALE)
    return out


class AugmentedFaces(keras.utils.PyDataset):
    """Shuffled, augmented batches (faces float32 (n, 48, 48, 1), one-hot labels, sample weights).

    A Keras PyDataset, so `model.fit` reads it directly. Every epoch reshuffles; the seed and the
    epoch number fix the order and the augmentations, so a resumed run continues the same stream.
    Every batch holds a multiple of `batch_multiple` faces (the number of devices: Keras cannot split
    a batch unevenly between them), so each epoch leaves out fewer than that many, a different few
    each time.
    """

    def __init__(self, faces, labels_one_hot, sample_weights, batch_size, generator, erase_probability,
                 seed, first_epoch=0, batch_multiple=1, camera_probability=0.0):
        super().__init__()
        self.used = len(faces) - len(faces) % batch_multiple
        self.faces = faces.reshape(len(faces), *INPUT_SHAPE[:2])  # uint8 (n, 48, 48)
        self.labels, self.weights = labels_one_hot, sample_weights
        self.batch_size, self.generator = batch_size, generator
        self.erase_probability, self.seed = erase_probability, seed
        self.camera_probability = camera_probability
        self.epoch = first_epoch
        self._shuffle()

    def _shuffle(self):
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.faces))[:self.used]

    def __len__(self):
        return math.ceil(self.used / self.batch_size)

    def __getitem__(self, index):
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        # ImageDataGenerator samples from NumPy's global generator; seeding it once per batch (not
        # per face, which costs more than the warp) keeps every batch reproducible.
        np.random.seed(int(rng.integers(2 ** 31)))
        batch = np.empty((len(chosen), *INPUT_SHAPE), dtype=np.float32)
        # The erasing is drawn for the whole batch at once: a generator call per face cost more than
        # the blanking itself, and the input, not the model, sets the pace on a GPU.
        erased = rng.random(len(chosen)) < self.erase_probability
        patch_draws = rng.random((len(chosen), 5)).tolist()
        # Drawn after the erasing, and only when asked for, so that runs without them repeat earlier runs.
        changed = (rng.random(len(chosen)) < self.camera_probability if self.camera_probability
                   else np.zeros(len(chosen), dtype=bool))
        camera_draws = rng.random((len(chosen), 6)) if changed.any() else None
        for row, face_index in enumerate(chosen):
            params = self.generator.get_random_transform(INPUT_SHAPE)
            face = self.faces[face_index]
            if changed[row]:
                face = camera_change(face, camera_draws[row], rng)
            batch[row, :, :, 0] = warp_like_image_data_generator(face, params)
        for row in np.flatnonzero(erased):
            random_erase(batch[row, :, :, 0], patch_draws[row])
        return batch, self.labels[chosen], self.weights[chosen]

    def on_epoch_end(self):
        self.epoch += 1
        self._shuffle()
