"""FER2013 folders: checking their layout, reading the images, splitting off validation data, and
making the folders from FER2013's original CSV.

The layout is `<data>/{train,test}/<emotion>/<image>`, as this project documents FER2013 and as
Kaggle ships it. Nothing here depends on how many images there are.
"""

import csv
import shutil
import sys
from pathlib import Path

import numpy as np

from .config import CLASS_NAMES, IMAGE_SIZE
from .errors import UserError
from .preprocessing import decode_image, face_pixels, to_gray

# The validation slice of train/ belongs to the data, not to a run: every run, whatever its --seed,
# picks its best epoch on the same faces, so recipes can be compared on them.
VALIDATION_SEED = 1337
# FER2013's CSV (fer2013.csv, or Kaggle's icml_face_data.csv) numbers each face's emotion in this
# order, which is not CLASS_NAMES' order.
CSV_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# Its Usage column, and the folder each kind of row goes to (rows of a CSV without one: train/).
CSV_SPLITS = {"Training": "train", "PublicTest": "test", "PrivateTest": "private_test"}


def check_class_folders(split_dir, all_classes=True):
    """Check that `split_dir` holds one non-empty folder per emotion; return their paths, in the
    order of CLASS_NAMES.

    The label of each folder comes from CLASS_NAMES, never from the order of a directory listing.
    Names are matched whatever their case (`Angry/`, as some copies of FER2013 spell them, is
    angry). all_classes=False (scoring a model) accepts any of the seven folders, at least one; a
    missing one is None in the list. Training needs all seven.
    """
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise UserError(
            f"dataset folder {split_dir} not found; it must hold one folder per emotion "
            f"({', '.join(CLASS_NAMES)}). See dataset/README.md for how to get FER2013")
    present = {}  # emotion name -> the folders spelling it
    for folder in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        present.setdefault(folder.name.lower(), []).append(folder)
    extra = sorted(folder.name for name, folders in present.items() if name not in CLASS_NAMES for folder in folders)
    if extra:
        raise UserError(
            f"{split_dir} has folder(s) {', '.join(extra)} that are not emotions this project knows; "
            f"remove or rename them (expected {', '.join(CLASS_NAMES)})")
    twice = [" and ".join(folder.name for folder in folders) for folders in present.values() if len(folders) > 1]
    if twice:
        raise UserError(f"{split_dir} has one emotion in two folders ({'; '.join(twice)}); merge them into one")
    missing = [name for name in CLASS_NAMES if name not in present]
    if missing and (all_classes or len(missing) == len(CLASS_NAMES)):
        needed = "exactly" if all_classes else "one or more of"
        raise UserError(
            f"{split_dir} lacks the class folder(s) {', '.join(missing)}; it must hold {needed} "
            f"{', '.join(CLASS_NAMES)} (see dataset/README.md)")
    folders = [present[name][0] if name in present else None for name in CLASS_NAMES]
    if all_classes:
        for folder in folders:
            if not any(_image_candidates(folder)):
                raise UserError(f"class folder {folder} is empty; every emotion needs at least one image")
    return folders


def check_dataset(data_dir, splits=("train", "test")):
    """Check the top-level dataset folder and each split inside it."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(
            f"dataset folder {data_dir} not found; unpack FER2013 there so that it holds train/ and "
            "test/, or make them from fer2013.csv with emotion-from-csv (see dataset/README.md)", reason="no-dataset")
    for split in splits:
        if not (data_dir / split).is_dir():
            raise UserError(
                f"{data_dir} has no {split}/ folder; FER2013 must be laid out as "
                f"{data_dir}/{{train,test}}/<emotion>/*.jpg (see dataset/README.md)")
        check_class_folders(data_dir / split)


def _image_candidates(folder):
    # Hidden files (.DS_Store and friends) are never images; everything else is tried.
    return (p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith("."))


def read_face(path):
    """Read one image file as a 48x48 uint8 grayscale face (the whole image is the face), or None if
    it is not a readable image. The recognizer prepares the faces it finds the same way."""
    try:
        image = decode_image(Path(path).read_bytes())
    except OSError:
        return None
    return None if image is None else face_pixels(to_gray(image))


def load_split(split_dir, verbose=True, all_classes=True):
    """Read every image of one split.

    Returns (images uint8 (n, 48, 48), labels int (n,), skipped paths). Files that cannot be
    decoded as images are skipped, not fatal: one stray file should not cost a training run.
    all_classes: as check_class_folders'.
    """
    import keras  # only for its progress bar; keeps this module importable without a model

    folders = check_class_folders(split_dir, all_classes)
    files = [(path, label) for label, folder in enumerate(folders) if folder is not None
             for path in _image_candidates(folder)]
    images = np.empty((len(files), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    labels = np.empty(len(files), dtype=np.int64)
    skipped = []
    progress = keras.utils.Progbar(len(files), unit_name="image") if verbose else None
    count = 0
    for index, (path, label) in enumerate(files):
        image = read_face(path)
        if image is None:
            skipped.append(path)
        else:
            images[count], labels[count] = image, label
            count += 1
        if progress is not None and ((index + 1) % 500 == 0 or index + 1 == len(files)):
            progress.update(index + 1)
    if count == 0:
        raise UserError(f"no readable images in {split_dir}; check that it holds FER2013 image files")
    return images[:count], labels[:count], skipped


def stratified_split(labels, fraction, seed):
    """Split indices into (train, validation) so every class keeps its share in both parts."""
    if not 0.0 < fraction < 1.0:
        raise UserError(f"the validation share must be between 0 and 1 (exclusive), not {fraction}")
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_val = int(round(len(idx) * fraction))
        # Keep at least one example on each side when the class allows it.
        n_val = min(max(n_val, 1), len(idx) - 1) if len(idx) > 1 else 0
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def class_counts(labels):
    return np.bincount(labels, minlength=len(CLASS_NAMES))


def report_skipped(skipped):
    """One warning line on stderr naming (the first few of) the files load_split skipped."""
    if skipped:
        shown = ", ".join(str(p) for p in skipped[:3]) + (" ..." if len(skipped) > 3 else "")
        print(f"warning: skipped {len(skipped)} file(s) that are not readable images: {shown}", file=sys.stderr)


def convert_fer_csv(csv_path, out_dir):
    """Write the faces of FER2013's CSV (columns emotion, pixels: 48x48 grey levels as text, and
    Usage) as PNG files in this project's layout: Training rows in out_dir/train/<emotion>/,
    PublicTest rows in test/, PrivateTest rows in private_test/. A file is named after its row.

    Each split appears whole or not at all: it is written in a hidden folder beside it and renamed
    at the end, and a bad row stops the conversion with nothing left behind. A split folder that
    already exists is never written into. Returns {split folder: faces written}.
    """
    import cv2
    from tqdm import tqdm

    csv_path, out_dir = Path(csv_path), Path(out_dir)
    if not csv_path.is_file():
        raise UserError(f"CSV file {csv_path} not found; FER2013's is fer2013.csv (or icml_face_data.csv on Kaggle)")
    with open(csv_path, newline="") as rows_file:
        total_rows = sum(1 for _ in rows_file) - 1
    with open(csv_path, newline="") as rows_file:
        reader = csv.reader(rows_file)
        columns = [name.strip().lower() for name in next(reader, [])]  # Kaggle's copy has " pixels", " Usage"
        if not {"emotion", "pixels"} <= set(columns):
            raise UserError(f"{csv_path} has no emotion and pixels columns (it has: {', '.join(columns) or 'none'}); "
                            "the challenge's test.csv has no labels and cannot be used")
        emotion_at, pixels_at = columns.index("emotion"), columns.index("pixels")
        usage_at = columns.index("usage") if "usage" in columns else None
        partial, counts = {}, {}
        try:
            for line, row in enumerate(tqdm(reader, total=total_rows, unit="face", file=sys.stderr, leave=False), 2):
                if not row:  # a blank line
                    continue
                if len(row) < len(columns):
                    raise UserError(f"{csv_path}, line {line}: {len(row)} fields where the header names {len(columns)}")
                usage = row[usage_at].strip() if usage_at is not None else "Training"
                split = CSV_SPLITS.get(usage)
                if split is None:
                    raise UserError(f"{csv_path}, line {line}: Usage {usage!r} is none of {', '.join(CSV_SPLITS)}")
                if split not in partial:
                    partial[split] = _partial_folder(out_dir, split)
                face = _csv_face(row[pixels_at], f"{csv_path}, line {line}")
                emotion = _csv_emotion(row[emotion_at], f"{csv_path}, line {line}")
                target = partial[split] / emotion / f"{line - 1:05d}.png"
                if not cv2.imwrite(str(target), face):
                    raise UserError(f"cannot write {target}; check the free space and permissions of {out_dir}")
                counts[split] = counts.get(split, 0) + 1
        except BaseException:
            for folder in partial.values():
                shutil.rmtree(folder, ignore_errors=True)
            raise
    if not counts:
        raise UserError(f"{csv_path} has no faces")
    for split, folder in partial.items():
        folder.rename(out_dir / split)
    return counts


def _partial_folder(out_dir, split):
    """A hidden folder beside out_dir/split, with one folder per emotion, to write the split into."""
    if (out_dir / split).exists():
        raise UserError(f"{out_dir / split} already exists; remove it, or convert into another folder")
    folder = out_dir / f".{split}.partial"
    shutil.rmtree(folder, ignore_errors=True)  # left by a conversion that was killed
    for emotion in CLASS_NAMES:
        (folder / emotion).mkdir(parents=True)
    return folder


def _csv_face(pixels, where):
    try:
        values = np.array(pixels.split(), dtype=np.int64)
    except ValueError:
        raise UserError(f"{where}: the pixels are not all whole numbers") from None
    brightest = np.iinfo(np.uint8).max
    if values.size != IMAGE_SIZE * IMAGE_SIZE:
        raise UserError(f"{where}: {values.size} grey levels where a face has {IMAGE_SIZE * IMAGE_SIZE} "
                        f"({IMAGE_SIZE}x{IMAGE_SIZE})")
    if values.min() < 0 or values.max() > brightest:
        raise UserError(f"{where}: grey levels from {values.min()} to {values.max()}, outside 0 to {brightest}")
    return values.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)


def _csv_emotion(code, where):
    if not code.strip().isdigit() or int(code) >= len(CSV_EMOTIONS):
        raise UserError(f"{where}: emotion {code!r} is not a number from 0 to {len(CSV_EMOTIONS) - 1}")
    return CSV_EMOTIONS[int(code)]
