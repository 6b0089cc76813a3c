"""The CNN, and the only way the project loads or saves one.

The model contract: input (None, 48, 48, 1) raw grayscale pixels 0-255, output (None, 7) softmax
probabilities in CLASS_NAMES order. Rescaling happens inside the model, so training and inference
cannot disagree about preprocessing.
"""

import itertools
import re
from pathlib import Path

import keras
import numpy as np
from keras import layers

from .config import CLASS_NAMES, INPUT_SHAPE, NUM_CLASSES
from .errors import UserError
from .files import add_model_record, check_model_file, replace_atomic, saved_keras_version
from .recipe import BASE_WIDTH, CROP_SIZE, DENSE_DROPOUT, DENSE_UNITS, STAGE_DROPOUT


@keras.saving.register_keras_serializable(package="emotion_recognition")
class FaceCrop(layers.Layer):
    """A random `size` x `size` crop of each face while training, the centre crop otherwise.

    Keras' RandomCrop resizes the whole face at inference instead of cropping it, so the model would
    see another scale than it trained on; Keras' random layers also crop when called without
    `training`. This layer crops at random only when told it is training.
    """

    def __init__(self, size, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.size, self.seed = size, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        margin = images.shape[1] - self.size
        if not training or margin <= 0:
            start = max(margin // 2, 0)
            return images[:, start:start + self.size, start:start + self.size, :]
        ops = keras.ops
        height, width = images.shape[1], images.shape[2]
        offsets = keras.random.randint((ops.shape(images)[0], 2), 0, margin + 1, seed=self.seed_generator)
        steps = ops.arange(self.size, dtype=offsets.dtype)
        # One-hot rows and columns select each face's window by two small matrix products: exact, and
        # unlike a gather it needs no int64 indices, which oneDNN handles only on AVX-512 CPUs.
        rows = ops.one_hot(offsets[:, :1] + steps, height, dtype=images.dtype)  # (batch, size, height)
        cols = ops.one_hot(offsets[:, 1:] + steps, width, dtype=images.dtype)   # (batch, size, width)
        return ops.einsum("bih,bhwc,bjw->bijc", rows, images, cols)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "size": self.size, "seed": self.seed}


def build_model(base_width=BASE_WIDTH, crop_size=CROP_SIZE, stage_dropout=STAGE_DROPOUT,
                dense_units=DENSE_UNITS, dense_dropout=DENSE_DROPOUT, random_crops=True, name="emotion_cnn"):
    """A VGG-style CNN: per stage two 3x3 conv + BatchNorm + ReLU, max-pool, dropout.

    crop_size equal to the face size (48) turns the crop off. random_crops=False builds the
    published form: Keras' own CenterCrop in place of FaceCrop, so the file loads in any Keras
    without this package, and computes exactly what FaceCrop computes at inference.
    """
    inputs = keras.Input(shape=INPUT_SHAPE, name="face")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    if crop_size < INPUT_SHAPE[0]:
        crop = FaceCrop(crop_size, name="crop") if random_crops else layers.CenterCrop(crop_size, crop_size, name="crop")
        x = crop(x)
    for stage, drop in enumerate(stage_dropout, start=1):
        width = base_width * 2 ** (stage - 1)
        for conv in (1, 2):
            # No conv bias: BatchNorm's beta does that job.
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"s{stage}_conv{conv}")(x)
            x = layers.BatchNormalization(name=f"s{stage}_bn{conv}")(x)
            x = layers.ReLU(name=f"s{stage}_relu{conv}")(x)
        x = layers.MaxPooling2D(name=f"s{stage}_pool")(x)
        x = layers.Dropout(drop, name=f"s{stage}_drop")(x)
    # Flatten rather than global pooling: where a feature sits (mouth vs. brows) carries the emotion.
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, use_bias=False, name="dense")(x)
    x = layers.BatchNormalization(name="dense_bn")(x)
    x = layers.ReLU(name="dense_relu")(x)
    x = layers.Dropout(dense_dropout, name="dense_drop")(x)
    x = layers.Dense(NUM_CLASSES, name="logits")(x)
    # Softmax in float32 even under mixed precision, so probabilities sum to 1 exactly enough.
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def average_models(models, name="emotion_ensemble"):
    """One model that averages the probabilities of several chains of layers (as build_model makes):
    an ensemble, with the same contract.

    Models trained alike from different seeds make different mistakes, so their average is right more
    often than either (docs/model-card.md). Each member's layers are copied in, renamed member_1_...,
    member_2_..., into one flat graph: Keras 3.15 computed the first of two models nested in one
    graph wrongly (off by 0.016 in probability), so the result is checked against the members.
    """
    if len(models) == 1:
        return models[0]
    faces = keras.Input(shape=INPUT_SHAPE, name="face")
    outputs = [_copied(faces, model.layers[1:], rename=lambda name, number=number: f"member_{number}_{name}")
               for number, model in enumerate(models, start=1)]  # each chain after its input
    ensemble = keras.Model(faces, layers.Average(name="probabilities")(outputs), name=name)
    probe = np.random.default_rng(0).integers(0, 256, (4, *INPUT_SHAPE)).astype("float32")
    expected = np.mean([np.asarray(model(probe, training=False)) for model in models], axis=0)
    if not np.allclose(np.asarray(ensemble(probe, training=False)), expected, atol=1e-4):
        raise ValueError("the averaged model disagrees with its members; only chains of layers can be averaged")
    return ensemble


def members_of(model):
    """The models an averaged file holds, each as build_model's published form makes it (the inverse of
    average_models), or [model] for a single one."""
    numbers = sorted({int(match.group(1)) for layer in model.layers if (match := re.match(r"member_(\d+)_", layer.name))})
    if not numbers:
        return [model]
    return [_rebuilt([layer for layer in model.layers if layer.name.startswith(f"member_{number}_")],
                     rename=lambda name, number=number: name[len(f"member_{number}_"):]) for number in numbers]


def training_form(model, seed=None):
    """A published (single) model made trainable as build_model's training form: random crops instead
    of the centre one, the same weights."""
    def crop(layer):
        return FaceCrop(layer.height, seed=seed, name=layer.name) if isinstance(layer, layers.CenterCrop) else None
    return _rebuilt(model.layers[1:], replace=crop)


def _rebuilt(chain, rename=lambda name: name, replace=lambda layer: None):
    """A new model of copies of a chain of layers (after its input), with their weights."""
    faces = keras.Input(shape=INPUT_SHAPE, name="face")
    return keras.Model(faces, _copied(faces, chain, rename, replace), name="emotion_cnn")


def _copied(x, chain, rename=lambda name: name, replace=lambda layer: None):
    """Copies of a chain of layers, renamed by `rename` and with their weights, applied to x; `replace` may
    give a layer to use instead of a copy. Returns the last one's output."""
    for layer in chain:
        copy = replace(layer) or layer.__class__.from_config({**layer.get_config(), "name": rename(layer.name)})
        x = copy(x)
        if layer.weights:
            copy.set_weights(layer.get_weights())
    return x


def crop_size_of(model):
    """The size of the centre crop a model looks at, or of the whole face if it has none."""
    for layer in model.layers:
        if isinstance(layer, FaceCrop):
            return layer.size
        if isinstance(layer, layers.CenterCrop):
            return layer.height
    return INPUT_SHAPE[0]


def copy_weights(source, target):
    """Copy weights layer by layer, by name: between the training and the published form of a model
    (whose crop layers differ) and between precisions (float16 arithmetic keeps float32 weights)."""
    for layer in target.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())
    return target


def check_contract(model, source="model"):
    """Raise UserError unless the model takes (None, 48, 48, 1) and returns (None, 7)."""
    input_shape = tuple(model.input_shape) if not isinstance(model.input_shape, list) else None
    output_shape = tuple(model.output_shape) if not isinstance(model.output_shape, list) else None
    if input_shape is None or input_shape[1:] != INPUT_SHAPE:
        raise UserError(
            f"{source} takes input {model.input_shape}, but this project needs (None, *{INPUT_SHAPE}) "
            "grayscale faces; train a compatible model")
    if output_shape is None or output_shape[1:] != (NUM_CLASSES,):
        raise UserError(
            f"{source} returns {model.output_shape}, but this project needs {NUM_CLASSES} "
            f"probabilities ({', '.join(CLASS_NAMES)}); train a compatible model")


def load_model(path, compile=False):
    """Load a .keras model safely (no arbitrary code) and check it honours the contract.

    A model that records other class names, or another order, is refused before Keras reads it.
    """
    path = Path(path)
    check_model_file(path)
    try:
        model = keras.models.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # Keras raises many types for bad files; all mean "cannot read it".
        saved_by = saved_keras_version(path)
        if saved_by and _version_tuple(saved_by) > _version_tuple(keras.__version__):
            # Newer Keras versions write settings that older ones do not know (not the other way round).
            raise UserError(
                f"cannot load model file {path}: it was saved by Keras {saved_by}, and this is Keras "
                f"{keras.__version__}, which cannot read files of newer versions; upgrade it (pip install "
                f"--upgrade keras; Keras 3.13 and later need Python 3.11 or later)") from error
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(
            f"cannot load model file {path}: it is corrupt, not a Keras .keras file, or made by an "
            f"incompatible Keras version ({detail[:200]})") from error
    check_contract(model, source=f"model file {path}")
    return model


def _version_tuple(version):
    """"3.15.1" -> (3, 15, 1); a suffix such as ".dev0" or "rc1" ends the numbers."""
    numbers = []
    for part in version.split("."):
        digits = "".join(itertools.takewhile(str.isdigit, part))
        if not digits:
            break
        numbers.append(int(digits))
    return tuple(numbers)


def save_model_atomic(model, path, include_optimizer=True):
    """Write a .keras file, with the project's record of labels and input inside (files.model_record),
    so that a crash midway never leaves a truncated file at `path`."""
    # Without optimizer state: a third of the size, and all that inference needs.
    to_save = model if include_optimizer else _without_optimizer(model)

    def write(name):
        keras.saving.save_model(to_save, name)
        add_model_record(name)

    # Keras insists on the .keras suffix, so the temporary file keeps it.
    replace_atomic(path, write, suffix=".tmp.keras")


def _without_optimizer(model):
    # Rebuilt from its config: keras.models.clone_model would carry the compiled optimizer along.
    bare = keras.Model.from_config(model.get_config())
    bare.set_weights(model.get_weights())
    return bare
