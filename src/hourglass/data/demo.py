"""Small example files in the formats hourglass reads, for trying it out (the README uses them).

``write_demo_files(folder)`` writes, from the embedded digits and a fixed random generator:

* ``digits-png/train/<digit>/*.png`` and ``digits-png/test/<digit>/*.png``: the 1,797 8x8 digits as
  PNG files, one folder per class, the split given by the folders;
* ``wine.csv``: 300 rows with a header: two numeric columns (some values missing), a text column
  ``region`` and a label column ``kind`` (``red`` or ``white``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import path_access


def write_demo_files(folder: str | Path = "my-data") -> dict[str, Path]:
    """Write the example files into ``folder`` (see the module docstring) and return their paths."""
    from PIL import Image

    from .datasets import load_data

    folder = Path(folder)
    images = folder / "digits-png"
    b = load_data("digits")
    with path_access(folder, "write"):
        for split, x, y in (("train", b.x_train, b.y_train), ("test", b.x_test, b.y_test)):
            for i, (img, label) in enumerate(zip(x, y)):
                d = images / split / str(label)
                d.mkdir(parents=True, exist_ok=True)
                Image.fromarray((img[0] * 255 / 16).astype(np.uint8)).save(d / f"{i}.png")
        rng = np.random.default_rng(0)
        n = 300
        kind = rng.choice(["red", "white"], n)
        alcohol = rng.normal(10, 1, n) + (kind == "red")
        acidity = rng.normal(3, 0.5, n) - 0.5 * (kind == "red")
        region = rng.choice(["north", "south", "east"], n)
        lines = ["alcohol,acidity,region,kind"]
        for i in range(n):
            a = "" if i % 37 == 5 else f"{acidity[i]:.3f}"  # a few missing values
            lines.append(f"{alcohol[i]:.3f},{a},{region[i]},{kind[i]}")
        (folder / "wine.csv").write_text("\n".join(lines) + "\n")
    return {"images": images, "table": folder / "wine.csv"}
