"""Folders of images (PNG, JPEG, BMP, GIF, TIFF, WebP) read with Pillow.

Layouts (``--data path/to/folder``):

* ``folder/*.png``: images without labels;
* ``folder/CLASS/*.png``: one sub-folder per class; the folder names are the class names (kept in
  the run, shown in figures and metrics), in sorted order;
* ``folder/train/...`` and ``folder/test/...`` (each either layout): the split; otherwise the images
  are split by ``test_fraction``, stratified by class, seeded.

Files that are not images by their suffix (a README, ``.DS_Store``) and hidden files are ignored;
images directly in a folder that also has class sub-folders are an error (which class would they
be?), and so is a class folder without images. Every image is checked when the folder is listed
(its header is read, which costs no decoding): an unreadable or empty file is an error naming it,
or, with ``skip_bad_files``, left out and counted in a warning; with ``skip_bad_files`` each image
is also decoded once then, so that a truncated file is found before training.

Pixels: ``channels=1`` makes every image grayscale, ``3`` RGB; by default 1 when all images are
grayscale and 3 otherwise. Transparent images are composited on white; 16-bit grayscale is scaled
to 0..255; of an animated GIF the first frame is used. Images keep their size when they all share
one; otherwise ``image_size`` (``H`` or ``HxW``) resizes them (bilinear, antialiased) and without it
the error lists the sizes found. The run's notes (``config.json``) say what was converted. Examples
are uint8 ``(N, C, H, W)``, scaled to [0, 1] by the known range 0..255.

In memory, every image is decoded once; streamed, :class:`ImageRows` decodes the images of each
batch when it is read (in DataLoader workers with ``--workers N``).
"""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError, HourglassWarning
from ...memory import ensure_fits
from ...options import parse_image_size
from ..bundle import DataBundle, split_indices
from ..rows import Rows
from . import Examples, Format, Request, register_format

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


def _pil():
    from PIL import Image

    return Image


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_images(folder: Path) -> tuple[list[Path], list[str] | None]:
    """(image files, class name of each or None) of one folder (flat, or one sub-folder per class)."""
    classes = _visible_dirs(folder)
    loose = sorted(p for p in folder.iterdir() if _is_image(p))
    if classes and loose:
        raise DataError(f"{folder}: holds both images ({loose[0].name}, ...) and class folders "
                        f"({classes[0].name}, ...); put every image in a class folder, or remove the folders")
    if not classes:
        if not loose:
            raise DataError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return loose, None
    files, labels = [], []
    for c in classes:
        found = sorted(p for p in c.rglob("*") if _is_image(p))
        if not found:
            raise DataError(f"{c}: the class folder {c.name!r} holds no images")
        files += found
        labels += [c.name] * len(found)
    return files, labels


class Header:
    """What Pillow reports of an image without decoding it."""

    def __init__(self, path: Path, size: tuple[int, int], mode: str, gray: bool, frames: int):
        self.path, self.size, self.mode, self.gray, self.frames = path, size, mode, gray, frames


def read_header(path: Path, verify: bool = False) -> Header:
    """Size (H, W), mode and grayness of an image; ``verify`` decodes it too (finds truncated files)."""
    Image = _pil()
    from PIL import UnidentifiedImageError

    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file (0 bytes)")
        with Image.open(path) as im:
            mode, (w, h) = im.mode, im.size
            gray = mode in GRAY_MODES or (mode == "P" and _gray_palette(im))
            frames = getattr(im, "n_frames", 1)
            if verify:
                im.load()
    except DataError:
        raise
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: cannot read the image ({e})") from None
    return Header(path, (h, w), mode, gray, frames)


def _gray_palette(im) -> bool:
    pal = im.getpalette() or []
    rgb = np.asarray(pal[: len(pal) // 3 * 3]).reshape(-1, 3)
    return bool(len(rgb)) and bool((rgb == rgb[:, :1]).all())


def decode(path: Path, channels: int, size: tuple[int, int]) -> np.ndarray:
    """One image as uint8 ``(channels, H, W)`` at ``size`` (see the module docstring for conversions)."""
    Image = _pil()
    try:
        with Image.open(path) as im:
            im.load()
            im = _convert(im, channels)
            if (im.height, im.width) != tuple(size):
                im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: cannot decode the image ({e})") from None
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def _convert(im, channels: int):
    Image = _pil()
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float64)
        scale = 257.0 if (im.mode.startswith("I;16") or a.max() > 255) else 1.0  # 16-bit -> 8-bit
        im = Image.fromarray(np.clip(a / scale, 0, 255).astype(np.uint8), "L")
    if im.mode in ALPHA_MODES or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return im.convert("L" if channels == 1 else "RGB")


class ImageRows(Rows):
    """Image files decoded on demand, as float32 ``(N, C, H, W)`` in 0..255."""

    def __init__(self, files: list[Path], channels: int, size: tuple[int, int], source: str):
        self.files, self.channels, self.size = list(files), channels, tuple(size)
        self.shape = (len(self.files), channels, *self.size)
        self.source = source
        self.raw_dtype = np.dtype(np.uint8)

    def _take_sorted(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), *self.example_shape), dtype=np.float32)
        for i, k in enumerate(idx):
            out[i] = decode(self.files[int(k)], self.channels, self.size)
        return out


def folder_record(folder: Path, files: list[Path]) -> dict[str, Any]:
    """What a run records of an image folder: the count, total size and a digest of the listing
    (relative path, size and modification time of every file), to tell later whether it changed."""
    h = hashlib.sha256()
    total = 0
    for p in files:
        st = p.stat()
        total += st.st_size
        h.update(f"{p.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return {"path": str(folder.resolve()), "kind": "image folder", "files": len(files), "bytes": total,
            "listing_sha256": h.hexdigest()}


def load_image_folder(folder: str | Path, *, channels: int | None = None, image_size=None,
                      skip_bad_files: bool = False, test_fraction: float = 0.2, seed: int = 0,
                      lazy: bool = False, label_names: list[str] | None = None) -> DataBundle:
    """A :class:`DataBundle` of the images in ``folder`` (layouts and conversions: module docstring).
    ``label_names`` (a run's classes) fixes the class order when a run reads new images."""
    folder = Path(folder)
    parts = {}
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        for split in ("train", "test"):
            parts[split] = list_images(folder / split)
    else:
        parts["all"] = list_images(folder)
    labelled = {k: v[1] is not None for k, v in parts.items()}
    if len(set(labelled.values())) > 1:
        raise DataError(f"{folder}: train/ has {'class folders' if labelled['train'] else 'no class folders'} "
                        f"but test/ {'has' if labelled['test'] else 'has none'}")
    notes: list[str] = []
    headers: dict[str, list[Header]] = {}
    skipped: list[str] = []
    for split, (files, labels) in parts.items():
        keep_h, keep_l = [], []
        for i, f in enumerate(files):
            try:
                keep_h.append(read_header(f, verify=skip_bad_files))
                keep_l.append(labels[i] if labels is not None else None)
            except DataError as e:
                if not skip_bad_files:
                    raise DataError(f"{e} (--skip-bad-files leaves such files out)") from None
                skipped.append(f"{f}: {str(e).split(': ', 1)[-1]}")
        if not keep_h:
            raise DataError(f"{folder}: no readable images" + (f" in {split}/" if split != "all" else ""))
        headers[split] = keep_h
        parts[split] = ([h.path for h in keep_h], keep_l if labels is not None else None)
    if skipped:
        msg = f"{folder}: skipped {len(skipped)} bad file(s), e.g. {skipped[0]}"
        notes.append(msg)
        warnings.warn(msg, HourglassWarning, stacklevel=2)
    every = [h for hs in headers.values() for h in hs]
    if channels is None:
        channels = 1 if all(h.gray for h in every) else 3
    modes = Counter(h.mode for h in every)
    target_mode = "L" if channels == 1 else "RGB"
    converted = {m: k for m, k in modes.items() if m != target_mode}
    if converted:
        notes.append(f"converted to {'grayscale' if channels == 1 else 'RGB'}: "
                     + ", ".join(f"{k} {m}" for m, k in sorted(converted.items()))
                     + (" (transparency composited on white)" if set(converted) & (ALPHA_MODES | {"P"}) else ""))
    if any(h.frames > 1 for h in every):
        notes.append("animated images: the first frame of each is used")
    sizes = Counter(h.size for h in every)
    if image_size is not None:
        size = parse_image_size(str(image_size))
        if set(sizes) != {size}:
            notes.append(f"resized to {size[0]}x{size[1]} from " + ", ".join(
                f"{h}x{w} ({k})" for (h, w), k in sorted(sizes.items(), key=lambda kv: -kv[1])[:5]))
    elif len(sizes) == 1:
        size = next(iter(sizes))
    else:
        found = ", ".join(f"{h}x{w} ({k} files)" for (h, w), k in sorted(sizes.items(), key=lambda kv: -kv[1])[:6])
        raise DataError(f"{folder}: the images have different sizes ({found}); choose one with --image-size HxW "
                        "(height x width), e.g. --image-size 32")

    # labels: class names sorted (or a run's own), indices into them
    names = None
    if labelled[next(iter(parts))]:
        train_labels = parts["train" if "train" in parts else "all"][1]
        names = list(label_names) if label_names else sorted(set(train_labels))
        for split, (_, labels) in parts.items():
            unknown = sorted(set(labels) - set(names))
            if unknown:
                raise DataError(f"{folder}: class {unknown[0]!r} of {split}/ has no training images"
                                if label_names is None else f"{folder}: class {unknown[0]!r} is not one of the "
                                f"run's classes ({', '.join(names)})")

    def ints(labels):
        return None if labels is None else np.asarray([names.index(v) for v in labels], dtype=np.int64)

    image = {"channels": channels, "size": list(size)}
    all_files = [f for files, _ in parts.values() for f in files]
    common = dict(kind="image", value_range=(0.0, 255.0), source=str(folder.resolve()), label_names=names,
                  image=image, files=folder_record(folder, all_files), notes=notes)

    def rows(files):
        return ImageRows(files, channels, size, str(folder))

    if "all" in parts:
        files, labels = parts["all"]
        y = ints(labels)
        tr, te = split_indices(str(folder), len(files), y, test_fraction, seed)
        x_all = rows(files)
        if not lazy:
            x_all = _decode_all(x_all)
        pick = (lambda i: x_all.subset(i)) if lazy else (lambda i: x_all[i])
        return DataBundle(str(folder), pick(tr), y[tr] if y is not None else None, pick(te),
                          y[te] if y is not None else None, index_test=te, **common)
    (f_tr, l_tr), (f_te, l_te) = parts["train"], parts["test"]
    x_tr, x_te = rows(f_tr), rows(f_te)
    if not lazy:
        x_tr, x_te = _decode_all(x_tr), _decode_all(x_te)
    return DataBundle(str(folder), x_tr, ints(l_tr), x_te, ints(l_te), **common)


def _decode_all(rows: ImageRows) -> np.ndarray:
    """Every image of ``rows`` as one uint8 array, its size checked against the memory first."""
    ensure_fits(len(rows) * int(np.prod(rows.example_shape)), rows.source, "decoding every image")
    out = np.empty(rows.shape, dtype=np.uint8)
    for i, f in enumerate(rows.files):
        out[i] = decode(f, rows.channels, rows.size)
    return out


@register_format("images", folder=True)
class ImageFolder(Format):
    """A folder of images (layouts and conversions: the module docstring)."""

    def bundle(self, path: Path, request: Request) -> DataBundle:
        image = request.record.get("image") or {}
        size = image.get("size")
        return load_image_folder(path, channels=image.get("channels", request.option("channels")),
                                 image_size="x".join(map(str, size)) if size else request.option("image_size"),
                                 skip_bad_files=request.option("skip_bad_files", False),
                                 test_fraction=request.test_fraction, seed=request.seed, lazy=request.lazy,
                                 label_names=request.record.get("label_names"))

    def examples(self, path, stored):
        """Every image of the folder (``train/`` then ``test/`` when split), decoded on demand with the
        run's channels and size; class folders the run does not know are an error naming them."""
        image = stored.get("image") or {}
        if not image:
            raise DataError(f"{path}: a folder of images, but the run was not trained on images from a folder")
        parts = [path / "train", path / "test"] if (path / "train").is_dir() and (path / "test").is_dir() else [path]
        files, labels = [], []
        for part in parts:
            f, lab = list_images(part)
            files += f
            labels += lab if lab is not None else [None] * len(f)
        rows = ImageRows(files, image["channels"], tuple(image["size"]), str(path))
        names = stored.get("label_names")
        values = np.asarray(labels, dtype=object) if any(v is not None for v in labels) else None
        y = None
        if values is not None and names:
            unknown = sorted({str(v) for v in values} - set(names))
            if unknown:
                raise DataError(f"{path}: class {unknown[0]!r} is not one of the run's classes ({', '.join(names)})")
            y = np.asarray([names.index(str(v)) for v in values], dtype=np.int64)
        return Examples(rows, y, values, np.arange(len(rows)))
