"""The devices a training run uses, through TensorFlow's own distribution engine (tf.distribute).

One device: TensorFlow's default strategy, as on any laptop. Several: `MirroredStrategy`, which keeps
a copy of the model on each device, splits every batch between them and adds up the gradients; a
single process drives them all, so exactly one process writes checkpoints and reports. On a machine
without GPUs, asking for several devices splits the CPU into logical devices: no faster, but the
same code path as several GPUs, which is how the tests exercise it.

Several machines (MultiWorkerMirroredStrategy, configured through TF_CONFIG) do not work with Keras 3's
model.fit today (MULTI_WORKER_ISSUE): training stops with a clear message rather than fail midway.

Keras on JAX (KERAS_BACKEND=jax) trains on one device, its first GPU or else the CPU, without
TensorFlow: that is how a GPU machine with JAX but no TensorFlow trains the same recipe.
"""

import contextlib
import json
import os
from dataclasses import dataclass

import keras

from .errors import UserError
from .recipe import MIXED_PRECISION_CHOICES

MULTI_WORKER_ISSUE = "https://github.com/keras-team/keras/issues/20585"
MIXED_POLICY = "mixed_float16"  # float16 arithmetic, float32 weights: a GPU speed-up, a CPU slow-down


@dataclass(frozen=True)
class Devices:
    strategy: object  # a tf.distribute.Strategy, or OneDevice on other backends: what has a .scope()
    names: tuple   # e.g. ("/gpu:0", "/gpu:1") or ("/cpu:0",)
    kind: str      # "GPU" or "CPU"

    @property
    def count(self):
        return len(self.names)

    def describe(self):
        logical = " logical" if self.kind == "CPU" and self.count > 1 else ""
        engine = "MirroredStrategy" if self.count > 1 else "one device"
        backend = "" if keras.backend.backend() == "tensorflow" else f", Keras on {keras.backend.backend()}"
        return f"{self.count}{logical} {self.kind} device(s) ({', '.join(self.names)}; {engine}{backend})"


class OneDevice:
    """The strategy of a backend without tf.distribute: its default device, nothing to set up."""

    def scope(self):
        return contextlib.nullcontext()


def refuse_multi_worker():
    """Stop, with the reason, when TF_CONFIG asks for a cluster of several machines."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (ValueError, AttributeError) as error:
        raise UserError(f"TF_CONFIG is not valid JSON ({error}); unset it to train on this machine") from None
    workers = sum(len(cluster.get(role, [])) for role in ("chief", "worker"))
    if workers > 1:
        raise UserError(
            f"TF_CONFIG describes {workers} workers, but multi-machine training (MultiWorkerMirroredStrategy) "
            f"does not work with Keras 3's model.fit ({MULTI_WORKER_ISSUE}); unset TF_CONFIG and train on one "
            "machine, with all of its GPUs")


def choose_devices(count=None):
    """The devices to train on: `count` of them, or every GPU (else the CPU) when count is None.

    Must run before TensorFlow has run anything, since splitting the CPU cannot be undone.
    """
    refuse_multi_worker()
    if keras.backend.backend() != "tensorflow":
        return _one_device_without_tensorflow(count)
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    available = len(gpus)
    if count is None:
        count = max(available, 1)
    if count < 1:
        raise UserError(f"the number of devices must be at least 1, not {count}")
    if gpus:
        if count > available:
            raise UserError(f"{count} devices asked for, but TensorFlow sees {available} GPU(s)")
        names, kind = tuple(f"/gpu:{i}" for i in range(count)), "GPU"
    else:
        names, kind = tuple(f"/cpu:{i}" for i in range(count)), "CPU"
        if count > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            try:
                tf.config.set_logical_device_configuration(
                    cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
            except RuntimeError:
                if len(tf.config.list_logical_devices("CPU")) < count:
                    raise UserError(f"cannot split the CPU into {count} devices after TensorFlow has "
                                    "started; choose the devices before anything else") from None
    if count == 1:
        strategy = tf.distribute.get_strategy()  # the default: no replication, no overhead
    else:
        # NCCL, MirroredStrategy's default for adding up gradients, exists only for GPUs.
        reduce = None if kind == "GPU" else tf.distribute.ReductionToOneDevice()
        strategy = tf.distribute.MirroredStrategy(list(names), cross_device_ops=reduce)
    return Devices(strategy, names, kind)


def _one_device_without_tensorflow(count):
    if count not in (None, 1):
        raise UserError(f"{count} devices asked for, but Keras on {keras.backend.backend()} trains on one here; "
                        "several devices need the TensorFlow backend (KERAS_BACKEND=tensorflow)")
    if keras.backend.backend() == "jax":
        import jax

        kind = "GPU" if any(device.platform == "gpu" for device in jax.devices()) else "CPU"
    else:
        kind = "CPU"
    return Devices(OneDevice(), (f"/{kind.lower()}:0",), kind)


def uses_mixed_precision(setting, devices):
    """Resolve --mixed-precision: auto means on exactly when training on GPUs."""
    if setting not in MIXED_PRECISION_CHOICES:
        raise UserError(f"mixed precision must be one of {', '.join(MIXED_PRECISION_CHOICES)}, not {setting!r}")
    return setting == "on" or (setting == "auto" and devices.kind == "GPU")


def set_precision(mixed):
    keras.config.set_dtype_policy(MIXED_POLICY if mixed else "float32")
