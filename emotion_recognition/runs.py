"""The files of one training run, and how they survive interruption.

A run folder holds `last.keras` (the last finished epoch, with optimizer state, for resuming),
`best.keras` (the best epoch so far by validation accuracy, in its published form), `state.json`
(the recipe, the history, the devices) and `history.png` (the curves so far, to look at while a run
goes on), and once the final epochs on all of train/ are done, `final.keras` (published form). Every
file is written atomically after each epoch, and Ctrl-C or SIGTERM wait until all of them are written.
"""

import contextlib
import json
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras

from .errors import UserError
from .files import save_figure, write_json_atomic
from .model import copy_weights, save_model_atomic


@dataclass
class RunState:
    """What state.json records: the recipe the run was started with and how far it got."""

    config: dict                   # TrainConfig fields, as the run was started
    epochs_done: int = 0
    history: list = field(default_factory=list)  # one dict of Keras logs (+ "seconds") per epoch
    train_seconds: float = 0.0
    best_epoch: int = None
    best_val_accuracy: float = None
    global_batch: int = None       # faces per step over all devices; the schedule counts these steps
    devices: list = field(default_factory=list)
    backend: str = None            # Keras' backend: "tensorflow", or "jax" on a GPU machine without TensorFlow
    mixed_precision: bool = None
    train_images: int = 0
    # Epochs done when each session began: [0] for a run trained in one go, [0, 34, 71] for one resumed twice.
    session_starts: list = field(default_factory=list)
    started_from: str = None       # the model file whose weights a --from-model run began with
    final_epochs_done: int = 0     # epochs on all of train/ after the best epoch (final.keras)
    final_seconds: float = 0.0
    final_history: list = field(default_factory=list)

    @classmethod
    def from_dict(cls, values):
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        return cls(**known)

    def to_dict(self):
        return asdict(self)

    @property
    def images_per_second(self):
        return self.epochs_done * self.train_images / self.train_seconds if self.train_seconds else 0.0

    @property
    def resumed_after(self):
        """The epochs after which the run was interrupted and resumed."""
        return self.session_starts[1:]


class RunFiles:
    """Where one run's files live, and reading and writing its state."""

    def __init__(self, run_dir):
        self.dir = Path(run_dir)
        self.last = self.dir / "last.keras"
        self.best = self.dir / "best.keras"
        self.final = self.dir / "final.keras"  # the best epoch after the final epochs on all of train/
        self.state_file = self.dir / "state.json"
        self.curves = self.dir / "history.png"

    def exists(self):
        return self.state_file.is_file() and (self.last.is_file() or self.final.is_file())

    def read(self):
        try:
            return RunState.from_dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError) as error:
            raise UserError(f"cannot read the run log {self.state_file} ({error})", reason="bad-run") from error

    def write(self, state):
        write_json_atomic(self.state_file, state.to_dict())

    def discard(self):
        for stale in (self.last, self.best, self.final, self.state_file, self.curves):
            stale.unlink(missing_ok=True)


class DeferredInterrupts:
    """Ctrl-C and SIGTERM stop training at the next safe point: the end of a batch, or once an epoch's
    files are all written. Never midway through writing them, and never from inside TensorFlow's own
    bookkeeping (an exception raised there by a signal handler surfaced as "Improper nesting of
    variable_scope" instead of the interruption). A second signal before a safe point stops at once."""

    def __init__(self):
        self.saving = False
        self.pending = False

    def handle(self, signum, frame):
        if self.pending and not self.saving:
            raise KeyboardInterrupt  # asked twice: the user will not wait for the batch to end
        self.pending = True

    def check(self):
        """Raise KeyboardInterrupt if a signal came; call where stopping is safe."""
        if self.pending and not self.saving:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def shielded(self):
        self.saving = True
        try:
            yield
        finally:
            self.saving = False
        self.check()

    @contextlib.contextmanager
    def installed(self):
        previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class StopWhenInterrupted(keras.callbacks.Callback):
    """Where Keras hands control back between batches, act on a pending Ctrl-C or SIGTERM."""

    def __init__(self, interrupts):
        super().__init__()
        self.interrupts = interrupts

    def on_train_batch_end(self, batch, logs=None):
        self.interrupts.check()

    def on_test_batch_end(self, batch, logs=None):
        self.interrupts.check()

    def on_epoch_begin(self, epoch, logs=None):
        self.interrupts.check()


class RunProgress(keras.callbacks.Callback):
    """One line per finished epoch for a long run: the best epoch so far and about how long is left.

    Printed when the next epoch begins (and when training ends), so that it follows Keras' own line
    for the epoch instead of cutting into its progress bar. epochs_after: the epochs of the models
    still to train after this one, which the time left includes."""

    # The median of the last few epochs: steady, yet it follows a machine that got busier or freer.
    RECENT_EPOCHS = 10

    def __init__(self, state, label="", epochs_after=0):
        super().__init__()
        self.state, self.label, self.epochs_after = state, label, epochs_after
        self.reported = state.epochs_done

    def on_epoch_begin(self, epoch, logs=None):
        self.report()

    def on_train_end(self, logs=None):
        self.report()

    def report(self):
        state = self.state
        if state.epochs_done == self.reported or not state.history:
            return
        self.reported = state.epochs_done
        epochs = self.params["epochs"]
        seconds = sorted(entry["seconds"] for entry in state.history[-self.RECENT_EPOCHS:])
        left = seconds[len(seconds) // 2] * (epochs - state.epochs_done + self.epochs_after)
        best = (f"best validation accuracy {state.best_val_accuracy:.2%} at epoch {state.best_epoch}"
                if state.best_epoch else "no validation accuracy yet")
        print(f"epoch {state.epochs_done}/{epochs}{self.label}: {best}; {time_left(left)}", flush=True)


def time_left(seconds):
    """'done', 'under a minute to go', 'about 12 min to go', 'about 3 h 05 min to go': as precise as
    an estimate deserves."""
    if not seconds:
        return "done"
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute to go"
    return f"about {minutes} min to go" if minutes < 60 else f"about {minutes // 60} h {minutes % 60:02d} min to go"


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: the last checkpoint, the best model by validation accuracy, the log, and
    the curves so far drawn by plot (training.plot_history's signature: it returns a Matplotlib Figure)."""

    def __init__(self, files, state, interrupts, published_form, plot):
        super().__init__()
        self.files, self.state, self.interrupts, self.plot = files, state, interrupts, plot
        # The best model is saved in its published form (float32, Keras' own crop layer).
        self.published_form = published_form
        self.epoch_started = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = {key: float(value) for key, value in (logs or {}).items()}
        logs["seconds"] = time.time() - self.epoch_started
        state = self.state
        state.history.append(logs)
        state.epochs_done = epoch + 1
        state.train_seconds += logs["seconds"]
        with self.interrupts.shielded():
            save_model_atomic(self.model, self.files.last)
            if logs.get("val_accuracy", -1) > (state.best_val_accuracy if state.best_val_accuracy is not None else -1):
                state.best_val_accuracy = logs["val_accuracy"]
                state.best_epoch = epoch + 1
                save_model_atomic(copy_weights(self.model, self.published_form), self.files.best,
                                  include_optimizer=False)
            self.files.write(state)
            save_figure(self.plot(state.history, resumed_after=state.resumed_after), self.files.curves)
