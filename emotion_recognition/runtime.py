"""The one place that sets up TensorFlow's environment and silences what native code prints, and
which describes the CPU that benchmarks run on.

TensorFlow reads its settings from environment variables when it is first imported, so they are
set when this package is imported (see __init__.py), before any module of it imports TensorFlow.
Values already in the environment win: `TF_ENABLE_ONEDNN_OPTS=0 python train.py` still opts out.
"""

import contextlib
import importlib
import os
import platform
import sys
import threading
import warnings
from pathlib import Path

TENSORFLOW_ENVIRONMENT = {
    # TensorFlow's C++ start-up chatter (INFO and WARNING lines) stays off the terminal.
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # TensorFlow turns its oneDNN CPU kernels on by itself only on CPUs with AVX-512; they speed up this
    # model's training on AVX2 CPUs too (docs/design.md, "Numbers behind the defaults").
    "TF_ENABLE_ONEDNN_OPTS": "1",
    # FFmpeg reports undecodable video on stderr itself; the project says it once, in its own words.
    "OPENCV_FFMPEG_LOGLEVEL": "-8",
}


def set_tensorflow_environment():
    for name, value in TENSORFLOW_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


# File descriptors belong to the whole process: two threads silencing them at once would each save
# the other's /dev/null and "restore" it for good. One thread at a time.
_NATIVE_OUTPUT_LOCK = threading.RLock()


@contextlib.contextmanager
def native_output_silenced(stdout=True, stderr=True):
    """Silence stdout and/or stderr at the file-descriptor level, where C++ code writes.

    TensorFlow's oneDNN notice ignores TF_CPP_MIN_LOG_LEVEL, and the LiteRT converter and runtime
    announce themselves there; --json output must stay clean. Python warnings are muted meanwhile.
    """
    descriptors = [fd for fd, wanted in ((1, stdout), (2, stderr)) if wanted]
    with _NATIVE_OUTPUT_LOCK:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(fd) for fd in descriptors]
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in descriptors:
                os.dup2(devnull, fd)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip(descriptors, saved):
                os.dup2(copy, fd)
            for fd in (*saved, devnull):
                os.close(fd)


def close_stdout_quietly():
    """After a reader closed stdout's pipe (`... --json | head -1`): point stdout at /dev/null, so that
    Python's own flush at exit finds nowhere to fail and prints no second traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def import_tensorflow():
    """Import Keras and its TensorFlow backend with their start-up notices hidden; returns TensorFlow,
    or None when Keras runs on another backend (KERAS_BACKEND=jax trains without TensorFlow)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with native_output_silenced(stdout=False):
        keras = importlib.import_module("keras")  # imports TensorFlow itself when that is its backend
        if keras.backend.backend() != "tensorflow":
            return None
        return importlib.import_module("tensorflow")


def cpu_description():
    """The CPU a figure was measured on, e.g. "AMD EPYC, 2 cores, AVX-512": speeds on CPUs with and
    without AVX-512 differ several-fold (docs/speed.md), so a benchmark says which it ran on."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():  # Linux; elsewhere the name alone
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    vector = "AVX-512" if "avx512f" in flags else "AVX2, no AVX-512" if "avx2" in flags else None
    return ", ".join(part for part in (name, f"{os.cpu_count()} cores", vector) if part)
