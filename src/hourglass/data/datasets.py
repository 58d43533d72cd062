"""Named data sets, and ``load_data`` for names and files alike.

A data set is one function registered with ``@register_dataset(name, description)`` that returns a
:class:`DataBundle` of raw (unscaled) arrays with a train/test split.

MNIST-format sets look for their four IDX files (``train-images-idx3-ubyte[.gz]``,
``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``)
in this order: ``data_dir`` if given (and nowhere else), else ``$HOURGLASS_DATA/<name>/``, then
``$HOURGLASS_DATA/``, then the cache ``~/.cache/hourglass/<name>/``. Files still missing are
downloaded into the cache with their MD5 checksums verified, unless ``download=False`` or the
environment sets ``HOURGLASS_NO_DOWNLOAD=1``; offline, the error says which files to put where.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from .bundle import DataBundle, file_record, split_arrays
from .formats import Request, format_for, load_path
from .formats.idx import read_image_label_pair

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# name -> (mirror URL, {file: md5 of the .gz}, class names)
IDX_SOURCES: dict[str, tuple[str, dict[str, str], list[str] | None]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        None,
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    ),
    "kmnist": (
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        {
            "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
            "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
            "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
            "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
        },
        ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
    ),
}


Loader = Callable[..., DataBundle]
_DATASETS: dict[str, tuple[Loader, str]] = {}


def register_dataset(name: str, description: str):
    def deco(fn: Loader) -> Loader:
        if name in _DATASETS:
            raise ValueError(f"a data set named {name!r} is already registered")
        _DATASETS[name] = (fn, description)
        return fn

    return deco


def list_datasets() -> dict[str, str]:
    return {name: desc for name, (_, desc) in _DATASETS.items()}


def load_data(
    name: str,
    data_dir: str | Path | None = None,
    *,
    test_fraction: float = 0.2,
    label_column: str | int | None = None,
    seed: int = 0,
    download: bool = True,
    options=None,
    lazy: bool = False,
    stored: dict | None = None,
) -> DataBundle:
    """A registered data set by name, or a file or image folder read by its format
    (:func:`hourglass.data.formats.load_path`), split into train/test. ``options`` (a
    :class:`~hourglass.options.DataOptions`) carries the table and image settings; ``lazy`` and ``stored``:
    see :class:`hourglass.data.formats.Request`."""
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    if name in _DATASETS:
        return _DATASETS[name][0](data_dir=data_dir, test_fraction=test_fraction, seed=seed, download=download)
    path = Path(name)
    if path.exists() or format_for(path) is not None:
        return load_path(path, Request(options, label_column, test_fraction, seed, lazy, stored))
    raise DataError(f"unknown data set {name!r}: not one of {', '.join(_DATASETS)}, and no such file or folder "
                    "exists")


@register_dataset("digits", "scikit-learn's 1,797 handwritten digits, 8x8, values 0..16 (embedded, offline)")
def _digits(data_dir=None, test_fraction=0.2, seed=0, download=True) -> DataBundle:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32)[:, None]  # (N, 1, 8, 8)
    return split_arrays("digits", x, d.target.astype(np.int64), None, test_fraction, seed,
                        source="scikit-learn load_digits", kind="image", value_range=(0.0, 16.0))


@register_dataset("plane3d", "2,000 synthetic 3-D points near a 2-D plane (stds 3, 1 | 0.1): linear AE = PCA")
def _plane3d(data_dir=None, test_fraction=0.2, seed=0, download=True) -> DataBundle:
    rng = np.random.default_rng(1234)  # the data set itself is fixed; `seed` only moves the split
    latent = rng.normal(size=(2000, 3)) * np.array([3.0, 1.0, 0.1])
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    x = (latent @ rotation.T + np.array([1.0, -2.0, 0.5])).astype(np.float32)
    return split_arrays("plane3d", x, None, None, test_fraction, seed, source="synthetic (hourglass)")


# Mean and standard deviation of the pixel values (scaled to [0, 1]) of each set's 60,000 training
# images: the normalisation constants published with the sets and used throughout the literature.
PIXEL_STATS = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530), "kmnist": (0.1918, 0.3483)}
STATS_TOLERANCE = 0.03  # the sets differ by >= 0.06 in mean; 100 images vary by ~0.005 (measured on MNIST)
MIN_CHECKED = 100  # fewer images than this say too little to tell the sets apart


def verify_idx_set(name: str, folder: Path, x_train: np.ndarray, x_test: np.ndarray) -> str:
    """Check that the IDX files in ``folder`` hold the set ``name`` says; returns how they were checked.

    1. A training-image archive whose MD5 is the official one of ``name`` is accepted at once; one whose
       MD5 is the official archive of *another* set is an error naming that set.
    2. Any other file (a subset such as the 10,000-digit MNIST sample, a re-compressed copy) is checked
       by its content: the mean and standard deviation of the pixel values of the training and test
       images must each be within ``STATS_TOLERANCE`` of the set's published values, and closer to them
       than to those of any other MNIST-format set. A random subset keeps the statistics of its set
       (on the MNIST sample: mean 0.1311, std 0.3087 for the published 0.1307, 0.3081; 100 random
       images vary by about 0.005), while the sets differ by 0.06 or more in mean (digits on black,
       clothing, cursive characters), so the check accepts any subset of the right set of at least
       ``MIN_CHECKED`` images and refuses the others. Smaller files are not checked (the returned note
       says so)."""
    gz = _file(folder, "train_images")
    if gz.name.endswith(".gz"):
        digest = hashlib.md5(gz.read_bytes()).hexdigest()
        for other, (_, md5s, _) in IDX_SOURCES.items():
            if md5s.get(gz.name) == digest:
                if other != name:
                    raise DataError(f"{name}: {gz} is the official {other} archive, not {name}'s")
                return "official archive (MD5)"
    notes = []
    for split, x in (("train", x_train), ("test", x_test)):
        if len(x) < MIN_CHECKED:
            notes.append(f"{split}: {len(x)} images, too few to check")
            continue
        v = np.asarray(x, dtype=np.float64) / 255.0
        mean, std = float(v.mean()), float(v.std())
        nearest = min(PIXEL_STATS, key=lambda k: (PIXEL_STATS[k][0] - mean) ** 2 + (PIXEL_STATS[k][1] - std) ** 2)
        ref = PIXEL_STATS[name]

        def close(k: str, mean=mean, std=std) -> bool:
            return abs(mean - PIXEL_STATS[k][0]) <= STATS_TOLERANCE and abs(std - PIXEL_STATS[k][1]) <= STATS_TOLERANCE

        if nearest != name or not close(name):
            like = (f"as {nearest}'s ({PIXEL_STATS[nearest][0]}, {PIXEL_STATS[nearest][1]}) do"
                    if close(nearest) else "unlike any MNIST-format set")
            raise DataError(f"{name}: the {split} images in {folder} are not {name}: their pixels have mean "
                            f"{mean:.3f} and std {std:.3f}, {like}, not {name}'s ({ref[0]}, {ref[1]})")
        notes.append(f"{split}: pixel mean {mean:.4f}, std {std:.4f} (published {ref[0]}, {ref[1]})")
    return "content statistics: " + "; ".join(notes)


def _idx_loader(name: str) -> Loader:
    def load(data_dir=None, test_fraction=0.2, seed=0, download=True) -> DataBundle:
        folder = find_idx_files(name, data_dir, download)
        x_tr, y_tr = read_image_label_pair(_file(folder, "train_images"), _file(folder, "train_labels"))
        x_te, y_te = read_image_label_pair(_file(folder, "test_images"), _file(folder, "test_labels"))
        if x_tr.shape[1:] != x_te.shape[1:]:
            raise DataError(f"{folder}: train images are {x_tr.shape[1:]} but test images are {x_te.shape[1:]}")
        verified = verify_idx_set(name, folder, x_tr, x_te)
        files = {"files": [file_record(_file(folder, k)) for k in IDX_FILES]}
        return DataBundle(name, x_tr, y_tr, x_te, y_te, "image", (0.0, 255.0), str(folder), IDX_SOURCES[name][2],
                          files=files, verified=verified)

    return load


for _name, _desc in (
    ("mnist", "MNIST handwritten digits, 28x28 (IDX files from --data-dir, or downloaded)"),
    ("fashion-mnist", "Fashion-MNIST clothing images, 28x28 (IDX files from --data-dir, or downloaded)"),
    ("kmnist", "Kuzushiji-MNIST cursive Japanese characters, 28x28 (IDX files from --data-dir, or downloaded)"),
):
    register_dataset(_name, _desc)(_idx_loader(_name))


def _file(folder: Path, key: str) -> Path:
    base = folder / IDX_FILES[key]
    gz = base.with_name(base.name + ".gz")
    return gz if gz.is_file() else base


def _has_all(folder: Path) -> bool:
    return all(_file(folder, k).is_file() for k in IDX_FILES)


def cache_dir(name: str) -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hourglass" / name


def find_idx_files(name: str, data_dir: str | Path | None, download: bool = True) -> Path:
    """The folder holding ``name``'s four IDX files, downloading them into the cache if allowed."""
    wanted = ", ".join(f"{f}[.gz]" for f in IDX_FILES.values())
    if data_dir is not None:
        folder = Path(data_dir)
        if _has_all(folder):
            return folder
        raise DataError(f"{name}: {folder} does not hold the IDX files {wanted}")
    candidates = []
    env = os.environ.get("HOURGLASS_DATA")
    if env:
        candidates += [Path(env) / name, Path(env)]
    candidates.append(cache_dir(name))
    for folder in candidates:
        if _has_all(folder):
            return folder
    if not download or os.environ.get("HOURGLASS_NO_DOWNLOAD") == "1":
        raise DataError(
            f"{name}: the IDX files are missing; put {wanted} into {cache_dir(name)} "
            "or a folder given with --data-dir or $HOURGLASS_DATA"
        )
    return download_idx(name)


def _fetch(url: str, dest: str) -> None:
    with urllib.request.urlopen(url, timeout=30) as r, open(dest, "wb") as f:
        while chunk := r.read(1 << 20):
            f.write(chunk)


def download_idx(name: str) -> Path:
    """Download ``name``'s IDX files into the cache, verifying each file's MD5 before keeping it."""
    base_url, files, _ = IDX_SOURCES[name]
    folder = cache_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    for fname, md5 in files.items():
        target = folder / fname
        if target.is_file():
            continue
        fd, tmp = tempfile.mkstemp(prefix=f".{fname}.", dir=folder)
        os.close(fd)
        try:
            try:
                _fetch(base_url + fname, tmp)
            except (urllib.error.URLError, TimeoutError, OSError) as e:
                raise DataError(
                    f"{name}: cannot download {fname} ({getattr(e, 'reason', e)}); offline, put "
                    f"{', '.join(files)} into {folder} or a folder given with --data-dir or $HOURGLASS_DATA"
                ) from None
            digest = hashlib.md5(Path(tmp).read_bytes()).hexdigest()
            if digest != md5:
                raise DataError(f"{name}: {fname} failed its checksum (md5 {digest}, expected {md5}); not kept")
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return folder
