"""Data: the IDX reader's checks, table files, named data sets, downloads and scaling."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from hourglass.data import DataError, Scaler, datasets, load_data, read_idx, read_table, write_idx
from hourglass.data.formats.idx import read_image_label_pair


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    a = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    if dtype == "uint8":
        a = np.abs(a).astype(dtype)
    p = write_idx(tmp_path / f"a{suffix}", a)
    b = read_idx(p)
    assert b.dtype == a.dtype and np.array_equal(a, b)


def test_gzip_is_detected_by_content_not_name(tmp_path):
    a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    raw = write_idx(tmp_path / "plain", a).read_bytes()
    (tmp_path / "looks-plain").write_bytes(gzip.compress(raw))
    assert np.array_equal(read_idx(tmp_path / "looks-plain"), a)


def _header(code=0x08, dims=(2, 3)):
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00", "too short"),
        (b"\x12\x34\x08\x01" + (1).to_bytes(4, "big") + b"\x00", "not an IDX file"),
        (_header(code=0x07) + bytes(6), "unknown IDX type code 0x07"),
        (bytes([0, 0, 8, 0]), "0 dimensions"),
        (bytes([0, 0, 8, 2]) + (2).to_bytes(4, "big"), "truncated header"),
        (_header() + bytes(5), "payload has 5 bytes but dimensions (2, 3) of uint8 need 6"),
        (_header() + bytes(7), "payload has 7 bytes"),
        (_header(dims=(4_000_000_000, 4_000_000_000)), "too large"),
        (b"\x1f\x8b" + b"garbage", "damaged gzip"),
    ],
)
def test_bad_idx_files_raise_clear_errors(tmp_path, content, message):
    p = tmp_path / "bad-idx"
    p.write_bytes(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        read_idx(p)
    assert str(p) in str(e.value)


def test_image_and_label_counts_must_match(tmp_path):
    write_idx(tmp_path / "img", np.zeros((5, 4, 4), np.uint8))
    write_idx(tmp_path / "lab", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="5 images but .* 4 labels"):
        read_image_label_pair(tmp_path / "img", tmp_path / "lab")
    write_idx(tmp_path / "lab", np.full(5, 12, np.uint8))
    with pytest.raises(DataError, match="labels must be 0..9"):
        read_image_label_pair(tmp_path / "img", tmp_path / "lab")


def test_csv_with_header_and_label_column(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b,kind\n1,2,cat\n3,4,dog\n5,6,cat\n")
    x, y, names = read_table(p, label_column="kind")
    assert x.shape == (3, 2) and x.dtype == np.float32
    assert names == ["cat", "dog"] and y.tolist() == [0, 1, 0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("a,b\n1,2\n3,x\n", "line 3, column 'b': 'x' is not a number"),
        ("a,b\n1,2\n3,nan\n", "column .b. has missing values in 1 "),
        ("a,b\n1,2\n3,inf\n", "line 3 \\(row 1\\), column .b.: .inf. is not a finite number"),
        ("a,b\n1,2\n3,1e308\n", "line 3 \\(row 1\\), column .b.: .1e308. overflows float32"),
        ("a,b\n1,2\n3\n", "line 3 has 1 columns, expected 2"),
        ("", "empty file"),
        ("a,b\n", "no data rows"),
    ],
)
def test_bad_csv_files(tmp_path, text, message):
    p = tmp_path / "t.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=message):
        read_table(p)


def test_npy_and_npz_checks(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros(5))
    with pytest.raises(DataError, match=r"shape \(5,\)"):
        read_table(tmp_path / "v.npy")
    bad = np.ones((4, 2))
    bad[2, 1] = np.inf
    np.save(tmp_path / "inf.npy", bad)
    with pytest.raises(DataError, match="row 2 has a non-finite value"):
        read_table(tmp_path / "inf.npy")
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    with pytest.raises(DataError, match="no data"):
        read_table(tmp_path / "empty.npy")
    np.savez(tmp_path / "two.npz", a=np.ones((3, 2)), b=np.ones((3, 2)))
    with pytest.raises(DataError, match="no features array.*found a, b"):
        read_table(tmp_path / "two.npz")
    np.savez(tmp_path / "xy.npz", x=np.ones((3, 2)), y=np.array([0, 1, 1]))
    x, y, _ = read_table(tmp_path / "xy.npz")
    assert x.shape == (3, 2) and y.tolist() == [0, 1, 1]


def test_digits_is_embedded_and_split_stratified():
    b = load_data("digits")
    assert b.kind == "image" and b.input_shape == (1, 8, 8) and b.value_range == (0.0, 16.0)
    assert len(b.x_train) + len(b.x_test) == 1797 and len(b.x_test) == 359
    assert set(np.unique(b.y_test)) == set(range(10))
    ratio = np.bincount(b.y_test) / np.bincount(b.y_train)
    assert np.allclose(ratio, 0.25, atol=0.03)  # stratified: each class keeps the 80/20 split
    again = load_data("digits")
    assert np.array_equal(b.x_test, again.x_test)  # the split is fixed by the seed


def test_plane3d_has_a_spectrum_gap():
    b = load_data("plane3d")
    s = np.linalg.svd(b.x_train - b.x_train.mean(0), compute_uv=False) / np.sqrt(len(b.x_train))
    assert s[1] / s[2] > 5


def test_mnist_sample_loads(mnist10k_dir):
    b = load_data("mnist", mnist10k_dir)
    assert b.x_train.shape == (8000, 1, 28, 28) and b.x_test.shape == (2000, 1, 28, 28)
    assert b.x_train.dtype == np.uint8 and b.value_range == (0.0, 255.0)
    assert set(np.unique(b.y_train)) == set(range(10))


def test_missing_idx_files_say_which_files_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("HOURGLASS_DATA", raising=False)
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*t10k-labels-idx1-ubyte.*cache"):
        load_data("fashion-mnist", download=False)
    with pytest.raises(DataError, match=f"{tmp_path}.*does not hold the IDX files"):
        load_data("mnist", tmp_path)


def test_download_verifies_checksums_and_keeps_nothing_bad(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("HOURGLASS_DATA", raising=False)
    monkeypatch.delenv("HOURGLASS_NO_DOWNLOAD", raising=False)

    def fake_fetch(url, dest):
        with open(dest, "wb") as f:
            f.write(b"not the real file")

    monkeypatch.setattr(datasets, "_fetch", fake_fetch)
    with pytest.raises(DataError, match="failed its checksum"):
        load_data("kmnist")
    assert list((tmp_path / "hourglass" / "kmnist").iterdir()) == []


def test_offline_download_names_the_files(tmp_path, monkeypatch):
    import urllib.error

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("HOURGLASS_DATA", raising=False)
    monkeypatch.delenv("HOURGLASS_NO_DOWNLOAD", raising=False)

    def offline(url, dest):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(datasets, "_fetch", offline)
    with pytest.raises(DataError, match="cannot download train-images-idx3-ubyte.gz .*put .*t10k-labels"):
        load_data("mnist")


def test_unknown_name_lists_known_data_sets():
    with pytest.raises(DataError, match="unknown data set 'nope'.*digits"):
        load_data("nope")


def test_scaler_fits_on_training_data_and_round_trips():
    rng = np.random.default_rng(0)
    train = rng.normal(5, 2, size=(100, 3))
    s = Scaler("standard").fit(train)
    z = s.transform(train)
    assert np.allclose(z.mean(0), 0, atol=1e-5) and np.allclose(z.std(0), 1, atol=1e-4)
    back = Scaler.from_dict(s.to_dict())
    new = rng.normal(5, 2, size=(4, 3))
    assert np.allclose(back.transform(new), s.transform(new))
    assert np.allclose(back.inverse_transform(back.transform(new)), new, atol=1e-4)
    mm = Scaler("minmax").fit(train)
    assert mm.transform(train * 10).max() == 1.0  # clipped into [0, 1] for BCE
    with pytest.raises(DataError, match=r"expected examples of shape \(3,\), found \(4,\)"):
        s.transform(np.zeros((2, 4)))
    with pytest.raises(DataError, match="unknown scaling"):
        Scaler("log")
