"""The training recipe: every setting of a run with its default and its help, written once, without
Keras, so that `train.py --help` answers at once. The defaults reproduce the shipped model;
docs/experiments.md tells how each was chosen.
"""

import dataclasses
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from .config import DEFAULT_DATA_DIR, DEFAULT_MODEL_PATH, DEFAULT_RUNS_DIR, MODELS_DIR

# The network's size. Channels of the first of four convolution stages; each later stage doubles them,
# which keeps the arithmetic per stage about equal. Wider learns more and runs slower (docs/speed.md).
BASE_WIDTH = 32
# Training sees random CROP_SIZE squares of each 48x48 face, inference the centre one, as the published
# FER2013 recipes do; the crops also cut the arithmetic by a third.
CROP_SIZE = 40
# Dropout grows with depth: early features are generic, late ones are where FER2013 overfits.
STAGE_DROPOUT = (0.05, 0.1, 0.2, 0.3)
# A wide dense head with strong dropout, as the published recipes have.
DENSE_UNITS = 1024
DENSE_DROPOUT = 0.5

OPTIMIZERS = ("sgd", "adamw")
SGD_MOMENTUM = 0.9
# Augmentation strength: ImageDataGenerator's rotation (degrees) and zoom (share). Shifts come from the
# model's random crops; a crop-free recipe (crop_size 48) gets this share of shifts instead.
ROTATION_DEGREES = 10
ZOOM_RANGE = 0.1
SHIFT_RANGE_WITHOUT_CROPS = 0.1

# The final epochs' augmentation: light (mirror images and random crops: the faces nearly as the test sees
# them), full (as before), or both, the two results' weights averaged (docs/experiments.md).
FINAL_AUGMENTATION_KINDS = {"both": ("light", "full"), "light": ("light",), "full": ("full",)}
FINAL_AUGMENTATIONS = tuple(FINAL_AUGMENTATION_KINDS)

MIXED_PRECISION_CHOICES = ("auto", "on", "off")  # float16 arithmetic: auto is on for GPUs only
RECIPE = "recipe"  # the group of settings that a resumed run takes from its own log, not the command line


def setting(default, help, group=None, **argparse):
    """A TrainConfig field: its default, its --help text, its group of options, and any further
    argparse keywords (choices=...)."""
    return field(default=default, metadata={"help": help, "group": group, "argparse": argparse})


@dataclass
class TrainConfig:
    """Everything that defines a training run. The defaults reproduce the shipped model."""

    data: str = setting(str(DEFAULT_DATA_DIR), "folder holding train/ and test/")
    output: str = setting(str(DEFAULT_MODEL_PATH), "where the trained .keras model goes")
    run_dir: str = setting("", "checkpoints and log of this run (default: runs/<output name>/ beside --output, "
                               "or the clone's runs/ for the shipped model)")
    epochs: int = setting(150, "epochs per model", RECIPE)
    batch_size: int = setting(64, "faces per device per step; several devices make the step's batch that many "
                                  "times larger", RECIPE)
    val_split: float = setting(0.1, "share of train/ held out (stratified) for choosing the best epoch; test/ "
                                    "stays unseen", RECIPE)
    seed: int = setting(1337, "draws the initial weights, the batches and their augmentation (the validation "
                              "slice is fixed)", RECIPE)
    optimizer: str = setting("adamw", "sgd is SGD with Nesterov momentum 0.9, as the published recipes", RECIPE,
                             choices=OPTIMIZERS)
    learning_rate: float = setting(2e-3, "peak learning rate, after a one-epoch warm-up (cosine schedule to 0)",
                                   RECIPE)
    weight_decay: float = setting(1e-4, "weight decay, decoupled from the gradient, for either optimizer", RECIPE)
    label_smoothing: float = setting(0.1, "share of each label spread over all classes (FER2013's labels are "
                                          "noisy)", RECIPE)
    class_weight_power: float = setting(0.5, "class weight = (largest class / class) ** power: 0 none, 1 full "
                                             "inverse frequency; 0.5 rescues disgust", RECIPE)
    base_width: int = setting(BASE_WIDTH, "channels of the first conv stage (doubled per stage); wider is slower",
                              RECIPE)
    crop_size: int = setting(CROP_SIZE, "train on random crops of this size, test on the centre one (48 = no "
                                        "crops)", RECIPE)
    dense_units: int = setting(DENSE_UNITS, "width of the dense layer before the output", RECIPE)
    dense_dropout: float = setting(DENSE_DROPOUT, "dropout rate after the dense layer", RECIPE)
    stage_dropout: float = setting(0.5, "multiplies the conv stages' dropout " + str(STAGE_DROPOUT), RECIPE)
    random_erasing: float = setting(0.5, "chance of blanking a random patch of a training face", RECIPE)
    camera_change: float = setting(0.0, "chance of changing a training face's contrast, brightness, gamma, "
                                        "sharpness, noise and JPEG quality, as another camera would", RECIPE)
    final_epochs: int = setting(2, "after its best epoch, each model trains this many more epochs on all of train/ "
                                   "(the validation slice too) at --final-learning-rate; 0: none", RECIPE)
    final_learning_rate: float = setting(1e-4, "peak learning rate of the final epochs (one epoch of warm-up, then "
                                               "cosine to 0)", RECIPE)
    final_augmentation: str = setting("both", "augmentation of the final epochs: light (mirror images and the "
                                              "random crops only), full (as the epochs before), or both: one "
                                              "run of each, their weights averaged", RECIPE,
                                      choices=FINAL_AUGMENTATIONS)
    members: int = setting(2, "models trained one after another from seeds --seed, --seed + 1, ...; the published "
                              "model averages their answers (1: a single model, in half the time)", RECIPE)

    from_model: str = setting("", "skip training from scratch: give each model of this .keras file (one that "
                                  "train.py wrote, such as the shipped one) only the final epochs")

    def resolved_run_dir(self):
        """run_dir, or runs/<output name>/ beside the output (the clone's runs/ for the shipped model)."""
        if self.run_dir:
            return Path(self.run_dir)
        output = Path(self.output)
        runs = DEFAULT_RUNS_DIR if output.parent.resolve() == MODELS_DIR else output.parent / "runs"
        return runs / output.stem


RECIPE_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.metadata["group"] == RECIPE)
# Recipe fields that runs made before the field existed did not have the default of: their value then.
EARLIER_VALUES = {"members": 1, "final_epochs": 0}


def resumed_config(config, saved):
    """The config a resumed run trains with: the caller's, with the recipe the run was started with.

    A field missing from an older run's log keeps the value that run was made with: EARLIER_VALUES',
    or else the default. Options the caller set that the run overrides are named in a warning;
    `config` is not changed.
    """
    recipe, ignored = {}, []
    for name in RECIPE_FIELDS:
        default = getattr(TrainConfig, name)
        value = type(default)(saved.get(name, EARLIER_VALUES.get(name, default)))
        asked = getattr(config, name)
        if asked != default and asked != value:
            ignored.append(f"{name} {asked} (the run has {value})")
        recipe[name] = value
    if ignored:
        print(f"warning: a resumed run keeps the recipe it started with; ignoring {', '.join(ignored)}. "
              "Restart the run, or use another run folder, to train with a new recipe", file=sys.stderr)
    return dataclasses.replace(config, **recipe)


def member_config(config, number):
    """The recipe of the number-th model of a config (from 1): the same, but with a seed of its own."""
    return dataclasses.replace(config, seed=config.seed + number - 1)


def add_config_options(parser, recipe_group):
    """An option --name-with-dashes for each TrainConfig field, with its help and default; the recipe's
    in `recipe_group`. Options not given are None, so that config_from_args keeps the defaults."""
    for setting_ in fields(TrainConfig):
        where = recipe_group if setting_.metadata["group"] == RECIPE else parser
        where.add_argument("--" + setting_.name.replace("_", "-"), type=type(setting_.default), default=None,
                           help=setting_.metadata["help"] + (f" (default: {setting_.default})"
                                                             if setting_.default != "" else ""),
                           **setting_.metadata["argparse"])


def config_from_args(args):
    """A TrainConfig from argparse results: the options given, the defaults for the rest."""
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names and v is not None})
