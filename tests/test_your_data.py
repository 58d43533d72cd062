"""Your own data: image folders, tables with headers (CSV, TSV, Parquet), streamed data, and the
run's record of them. Each loader is tested on small files the tests create, a run is trained on
each, and the same file is encoded by it again."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

import hourglass
from helpers import run_cli
from hourglass.data import DataError
from hourglass.errors import HourglassWarning

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = dict(epochs=2, batch_size=16, progress=False, threads=1, latent_dim=2, hidden=(8,))


# -- image folders -----------------------------------------------------------------------------------
def _image_folder(root, sizes=((20, 24), (30, 30)), split=True, n=6):
    """cat/ and dog/ class folders (under train/ and test/ when ``split``) of PNG and JPEG images in two
    sizes, RGB and grayscale."""
    rng = np.random.default_rng(0)
    for part, count in ((("train", n), ("test", 2)) if split else (("", n),)):
        for c, base in (("cat", 40), ("dog", 200)):
            d = root / part / c
            d.mkdir(parents=True)
            for i in range(count):
                h, w = sizes[i % len(sizes)]
                a = np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
                im = Image.fromarray(a) if i % 3 else Image.fromarray(a[..., 0])
                im.save(d / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def test_image_folder_with_classes_and_a_test_split(tmp_path):
    root = _image_folder(tmp_path / "imgs")
    with pytest.raises(DataError, match=r"different sizes \(20x24 \(8 files\), 30x30 \(8 files\)\).*--image-size"):
        hourglass.train("ae", root, **FAST)
    run = hourglass.train("ae", root, image_size="30", out=tmp_path / "run", **FAST)
    d = run.info["data"]
    assert run.input_shape == (3, 30, 30) and run.label_names == ["cat", "dog"]
    assert (d["n_train"], d["n_val"], d["n_test"]) == (11, 1, 4)  # train/ and test/ are the split
    assert any("converted to RGB" in n for n in d["notes"]) and any("resized to 30x30" in n for n in d["notes"])
    assert d["files"]["files"] == 16 and len(d["files"]["listing_sha256"]) == 64
    x = run.splits().x_test  # colour images reach the figures as (N, 3, H, W) in [0, 1]
    assert x.shape == (4, 3, 30, 30) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert run.splits().y_test.tolist() == [0, 0, 1, 1]
    assert (tmp_path / "run" / "latent.png").is_file()
    gray = hourglass.train("ae", root, image_size="12x16", channels=1, **FAST)
    assert gray.input_shape == (1, 12, 16)
    # the same folder encoded by the run, with the class of each image
    assert run_cli("encode", tmp_path / "run", "--input", root, "--output", tmp_path / "codes.csv") == 0
    lines = (tmp_path / "codes.csv").read_text().splitlines()
    assert lines[0] == "row,label,z0,z1" and len(lines) == 17 and lines[1].startswith("0,cat,")


def test_image_folder_without_labels_is_split_by_fraction(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    for i in range(10):
        Image.fromarray(np.full((9, 7), i * 20, np.uint8)).save(root / f"{i}.bmp")
    (root / "README.txt").write_text("not an image")
    run = hourglass.train("ae", root, test_fraction=0.2, **FAST)
    assert run.input_shape == (1, 9, 7) and run.label_names is None and run.info["data"]["n_test"] == 2


def test_bad_image_files_are_named_or_skipped_with_a_count(tmp_path):
    root = _image_folder(tmp_path / "imgs", sizes=((16, 16),), split=False)
    (root / "cat" / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty.png: empty file \(0 bytes\) \(--skip-bad-files"):
        hourglass.train("ae", root, **FAST)
    good = (root / "dog" / "1.png").read_bytes()
    (root / "dog" / "truncated.png").write_bytes(good[: len(good) // 2])
    with pytest.warns(HourglassWarning, match="skipped 2 bad file"):
        run = hourglass.train("ae", root, skip_bad_files=True, **FAST)
    assert run.info["data"]["n_train"] + run.info["data"]["n_val"] + run.info["data"]["n_test"] == 12
    (root / "bird").mkdir()
    with pytest.raises(DataError, match="the class folder 'bird' holds no images"):
        hourglass.train("ae", root, skip_bad_files=True, **FAST)
    assert run_cli("train", "ae", "--data", root, "--epochs", "1", "--out", tmp_path / "r") == 2


def test_transparent_and_palette_images(tmp_path):
    root = tmp_path / "modes"
    root.mkdir()
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent: composited on white
    Image.fromarray(rgba, "RGBA").save(root / "a.png")
    Image.fromarray(np.full((8, 8), 128, np.uint8)).convert("P").save(root / "b.gif")
    Image.fromarray(np.full((8, 8, 3), 10, np.uint8)).save(root / "c.webp")
    Image.fromarray(np.full((8, 8), 60000, np.uint16)).save(root / "d.tif")
    b = hourglass.as_bundle(root, test_fraction=0.25)
    x = np.concatenate([b.x_train, b.x_test])
    assert x.shape == (4, 3, 8, 8) and x.dtype == np.uint8
    assert (x == 255).all(axis=(1, 2, 3)).any()  # the transparent image is white
    assert any("transparency composited on white" in n for n in b.notes)


@pytest.mark.parametrize("shape", [(3, 30, 30), (1, 45, 60), (2, 7, 5)])
def test_conv_models_take_odd_sizes_and_channel_counts(shape):
    from helpers import small_model

    for name in ("ae", "vae"):
        m = small_model(name, input_shape=shape)
        x = torch_rand(shape)
        assert m.reconstruct(x).shape == x.shape
        assert m.training_step((x, None))["loss"].isfinite()


def torch_rand(shape):
    import torch

    return torch.rand(4, *shape, generator=torch.Generator().manual_seed(0))


# -- tables -----------------------------------------------------------------------------------------
def _frame(n=120, seed=0):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(seed)
    kind = rng.choice(["red", "white"], n)
    return pd.DataFrame({
        "alcohol": rng.normal(10, 1, n) + (kind == "red"),
        "acidity": rng.normal(3, 0.5, n),
        "region": rng.choice(["north", "south", "east"], n),
        "id": np.arange(n),
        "kind": kind,
    })


def test_csv_with_header_label_text_column_missing_values_and_bom(tmp_path):
    df = _frame()
    df.loc[[4, 9], "acidity"] = np.nan
    p = tmp_path / "wine.csv"
    df.to_csv(p, index=False, encoding="utf-8-sig")  # with a byte-order mark
    with pytest.raises(DataError, match=r"column 'acidity' has missing values in \d+ .*--impute"):
        hourglass.train("ae", p, label_column="kind", **FAST)
    with pytest.raises(DataError, match="column 'region' holds text"):
        hourglass.train("ae", p, label_column="kind", impute="mean", categorical="error", **FAST)
    run = hourglass.train("ae", p, label_column="kind", impute="median", drop_columns=("id",),
                          out=tmp_path / "run", **FAST)
    t = run.info["data"]["transform"]
    assert run.input_shape == (5,) and run.label_names == ["red", "white"]
    assert t["features"] == ["alcohol", "acidity", "region=east", "region=north", "region=south"]
    assert t["categories"]["region"] == ["east", "north", "south"] and "acidity" in t["fill"]
    assert run.info["data"]["n_train"] + run.info["data"]["n_val"] + run.info["data"]["n_test"] == 120
    # the file the run was trained on is encoded by it, labels and row numbers beside the codes
    for suffix in ("csv", "parquet", "npy"):
        assert run_cli("encode", tmp_path / "run", "--input", p, "--output", tmp_path / f"codes.{suffix}") == 0
    pd = pytest.importorskip("pandas")
    codes = pd.read_csv(tmp_path / "codes.csv")
    assert list(codes.columns) == ["row", "label", "z0", "z1"] and codes["row"].tolist() == list(range(120))
    assert codes["label"].tolist() == df["kind"].tolist()
    pq = pd.read_parquet(tmp_path / "codes.parquet")
    assert np.allclose(pq[["z0", "z1"]].to_numpy(), codes[["z0", "z1"]].to_numpy(), atol=1e-6)
    assert np.allclose(np.load(tmp_path / "codes.npy"), codes[["z0", "z1"]].to_numpy(), atol=1e-6)
    # the Python API applies the same transform to a DataFrame
    assert np.allclose(run.encode(df), codes[["z0", "z1"]].to_numpy(), atol=1e-5)
    assert run_cli("reconstruct", tmp_path / "run", "--input", p, "--output", tmp_path / "r.csv") == 0
    assert (tmp_path / "r.csv").read_text().splitlines()[0] == \
        "row,label,alcohol,acidity,region=east,region=north,region=south"


def test_unseen_categories_at_encode_time_are_zeros_and_counted(tmp_path, capsys):
    df = _frame()
    p = tmp_path / "wine.csv"
    df.to_csv(p, index=False)
    run = hourglass.train("ae", p, label_column="kind", drop_columns=("id",), out=tmp_path / "run", **FAST)
    new = df.head(5).copy()
    new.loc[[0, 3], "region"] = "west"
    new.to_csv(tmp_path / "new.csv", index=False)
    with pytest.warns(HourglassWarning, match="2 value"):
        run.encode(new)
    assert run_cli("encode", tmp_path / "run", "--input", tmp_path / "new.csv", "--output", tmp_path / "c.csv") == 0
    assert "hourglass: warning: " in capsys.readouterr().err
    new.drop(columns=["acidity"]).to_csv(tmp_path / "less.csv", index=False)
    assert run_cli("encode", tmp_path / "run", "--input", tmp_path / "less.csv", "--output", tmp_path / "d.csv") == 2
    assert "no column 'acidity', one of the run's features" in capsys.readouterr().err


def test_tsv_and_parquet_with_feature_columns(tmp_path):
    pytest.importorskip("pyarrow")
    df = _frame()
    df.to_csv(tmp_path / "wine.tsv", sep="\t", index=False)
    df.to_parquet(tmp_path / "wine.parquet", row_group_size=32)
    for name in ("wine.tsv", "wine.parquet"):
        run = hourglass.train("ae", tmp_path / name, label_column="kind", feature_columns=("alcohol", "region"),
                              out=tmp_path / name.replace(".", "-"), **FAST)
        assert run.info["data"]["transform"]["features"] == ["alcohol", "region=east", "region=north", "region=south"]
        assert run_cli("encode", tmp_path / name.replace(".", "-"), "--input", tmp_path / name, "--output",
                       tmp_path / "c.parquet") == 0
    with pytest.raises(DataError, match="no feature column 'nope'; columns: alcohol, acidity, region, id, kind"):
        hourglass.train("ae", tmp_path / "wine.parquet", feature_columns=("nope",), **FAST)


def test_float32_overflow_in_a_table_names_row_and_column(tmp_path):
    p = tmp_path / "o.csv"
    p.write_text("a,b\n1,2\n3,4\n5,1e308\n")
    with pytest.raises(DataError, match=r"line 4 \(row 2\), column 'b': '1e308' overflows float32"):
        hourglass.train("ae", p, **FAST)
    assert run_cli("train", "ae", "--data", p, "--out", tmp_path / "r") == 2


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_pyarrow(name, *a, **k):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real(name, *a, **k)

    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(DataError, match=r"t.parquet: reading Parquet needs pyarrow: pip install 'hourglass-ae\[par"):
        hourglass.train("ae", tmp_path / "t.parquet", **FAST)


# -- streaming --------------------------------------------------------------------------------------
def test_streamed_training_matches_in_memory_training(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.random((200, 1, 6, 5)) * 255).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    opts = dict(FAST, epochs=3, hidden=(16,))
    mem = hourglass.train("ae", tmp_path / "x.npy", in_memory="always", **opts)
    stream = hourglass.train("ae", tmp_path / "x.npy", in_memory="never", out=tmp_path / "s", **opts)
    assert not mem.streamed and stream.streamed
    # same permutation from the same seeded generator, same scaling: the same training, step for step
    assert [h["train_loss"] for h in stream.history] == [h["train_loss"] for h in mem.history]
    for (k, a), b in zip(mem.model.state_dict().items(), stream.model.state_dict().values()):
        assert torch_equal(a, b), k
    again = hourglass.load(tmp_path / "s")
    assert again.streamed and again.splits().streamed
    assert again.evaluate()["test"] == stream.metrics["test"]
    assert stream.metrics["subsample"]["test_examples"] == 40


def torch_equal(a, b):
    import torch

    return torch.equal(a, b)


def test_auto_streams_what_does_not_fit_the_budget_and_records_the_subsample(tmp_path):
    x = np.random.default_rng(0).random((600, 600), dtype=np.float32)  # 1.4 MiB as float32
    np.save(tmp_path / "x.npy", x)
    small = hourglass.train("ae", tmp_path / "x.npy", memory_budget=1, out=tmp_path / "r", **FAST)
    assert small.streamed and small.info["data"]["memory_budget_bytes"] == 1 << 20
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    # an eighth of the budget per evaluation split: 131072 bytes / 2400 bytes per example
    assert metrics["subsample"]["test_examples"] == 54 and metrics["test"]["n"] == 54
    roomy = hourglass.train("ae", tmp_path / "x.npy", memory_budget=64, **FAST)
    assert not roomy.streamed and "subsample" not in roomy.metrics


def test_streamed_parquet_with_workers_and_a_labelled_model(tmp_path):
    pytest.importorskip("pyarrow")
    df = _frame(200)
    df.to_parquet(tmp_path / "w.parquet", row_group_size=40)
    run = hourglass.train("cvae", tmp_path / "w.parquet", label_column="kind", drop_columns=("id",),
                          in_memory="never", workers=1, out=tmp_path / "run", **FAST)
    assert run.streamed and run.info["data"]["options"]["workers"] == 1
    assert run_cli("encode", tmp_path / "run", "--output", tmp_path / "test-codes.csv") == 0  # its test data
    lines = (tmp_path / "test-codes.csv").read_text().splitlines()
    assert len(lines) == 41 and lines[1].split(",")[1] in ("red", "white")


def test_block_stored_sources_are_shuffled_block_by_block():
    import torch

    from hourglass.data.rows import Rows
    from hourglass.data.scaling import Scaler
    from hourglass.data.streaming import StreamBatches

    class Blocked(Rows):
        shape = (100, 1)

        def _take_sorted(self, idx):
            return idx[:, None].astype(np.float32)

        def blocks(self):
            return np.arange(100) // 25

    s = StreamBatches(Blocked(), Scaler("none").fit(np.zeros((1, 1))))
    order = s.order(torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(100))
    assert (np.diff(order // 25) != 0).sum() == 3  # four blocks, each visited once
    xs = torch.cat([xb for xb, _ in s.shuffled(10, torch.Generator().manual_seed(0))]).squeeze(1)
    assert xs.tolist() == order.astype(float).tolist()


# -- what a run records --------------------------------------------------------------------------------
def test_run_records_files_sizes_and_checksums(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((50, 4)))
    run = hourglass.train("ae", tmp_path / "x.npy", out=tmp_path / "r", **FAST)
    (rec,) = run.info["data"]["files"]["files"]
    assert rec["bytes"] == (tmp_path / "x.npy").stat().st_size and len(rec["sha256"]) == 64 and rec["mtime_ns"]
    np.save(tmp_path / "x.npy", np.random.default_rng(1).random((50, 4)))
    with pytest.warns(HourglassWarning, match="its SHA-256 differs"):
        hourglass.load(tmp_path / "r").bundle()


def test_named_mnist_like_sets_check_their_files(mnist10k_dir):
    b = hourglass.load_data("mnist", mnist10k_dir)
    assert b.verified.startswith("content statistics: train: pixel mean 0.131")
    for other in ("fashion-mnist", "kmnist"):
        with pytest.raises(DataError, match=f"{other}: the train images in .* are not {other}: .* as mnist's"):
            hourglass.load_data(other, mnist10k_dir)
    assert run_cli("train", "ae", "--data", "fashion-mnist", "--data-dir", mnist10k_dir, "--out", "x") == 2


def test_a_subset_of_the_right_set_passes_and_tiny_files_are_noted(tmp_path, mnist10k_dir):
    from hourglass.data.datasets import verify_idx_set
    from hourglass.data.formats.idx import read_idx

    x = read_idx(mnist10k_dir / "train-images-idx3-ubyte.gz")
    rng = np.random.default_rng(0)
    for n in (100, 1000):
        sub = x[rng.choice(len(x), n, replace=False)]
        assert verify_idx_set("mnist", tmp_path, sub, sub).startswith("content statistics")
    inverted = 255 - x[:500]  # not digits on black: unlike every set
    with pytest.raises(DataError, match="unlike any MNIST-format set"):
        verify_idx_set("mnist", tmp_path, inverted, inverted)
    assert "too few to check" in verify_idx_set("kmnist", tmp_path, x[:10], x[:10])


def test_hourglass_warnings_are_one_line_in_the_cli(tmp_path, capsys):
    from hourglass.cli import main

    root = _image_folder(tmp_path / "imgs", sizes=((8, 8),), split=False)
    (root / "cat" / "bad.png").write_bytes(b"not a png")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["train", "ae", "--data", str(root), "--skip-bad-files", "--epochs", "1", "--no-progress",
                     "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "hourglass: warning: " in err and "skipped 1 bad file(s), e.g." in err and "bad.png" in err
