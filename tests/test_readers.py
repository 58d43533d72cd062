"""Readers bound their allocations before allocating, and every damaged file is a HourglassError.

The property tests feed random bytes (and random bytes after a valid header) to the IDX and .npy
readers: the result is an array or a HourglassError, never another exception, and the memory the
read allocates (tracemalloc, which numpy reports its buffers to) stays under a stated cap.
"""

from __future__ import annotations

import gzip
import io
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hourglass.data import DataError, read_idx, read_table, write_idx
from hourglass.data.formats.idx import read_image_label_pair
from hourglass.data.formats.npy import read_npy
from hourglass.errors import HourglassError

CAP = 8 << 20  # bytes a read of a small file may allocate, whatever its header claims


def _peak(fn, *args):
    tracemalloc.start()
    try:
        try:
            fn(*args)
        except HourglassError:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _npy_bytes(shape_text: str, descr: str = "<f8") -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}".encode("latin1")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def test_npy_header_claiming_7_tib_is_refused_before_allocating(tmp_path):
    p = tmp_path / "huge.npy"
    p.write_bytes(_npy_bytes("(1099511627776, 7)") + bytes(900))  # 2^40 x 7 float64 = 56 TiB claimed... in 1 KB
    with pytest.raises(DataError, match=r"huge.npy: the header declares shape \(1099511627776, 7\) of float64 "
                                        r"\(56.0 TiB\) but the file holds"):
        read_table(p)
    assert _peak(read_npy, p) < CAP


def test_npy_larger_than_memory_names_the_memory_it_needs(tmp_path, monkeypatch):
    p = tmp_path / "big.npy"
    np.save(p, np.zeros((1000, 100), np.float32))
    monkeypatch.setenv("HOURGLASS_MAX_READ_BYTES", str(100_000))
    with pytest.raises(DataError, match=r"big.npy: reading it needs 781.2 KiB of memory, more than the 97.7 KiB "
                                        "available"):
        read_table(p)


def test_npz_reads_only_the_members_it_uses(tmp_path):
    p = tmp_path / "mixed.npz"
    np.savez(p, x=np.ones((10, 3), np.float32), y=np.arange(10), unused=np.zeros(64 << 20, np.uint8))
    tracemalloc.start()
    try:
        x, y, _ = read_table(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert x.shape == (10, 3) and y.tolist() == list(range(10))
    assert peak < CAP  # the 64 MiB member is never read


def test_npz_member_whose_header_lies_is_refused(tmp_path):
    p = tmp_path / "lie.npz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("x.npy", _npy_bytes("(1000000000, 1000)", "<f4") + bytes(64))
    with pytest.raises(DataError, match=r"lie.npz\[x\]: the header declares shape \(1000000000, 1000\)"):
        read_table(p)


def test_gzip_idx_claiming_1e12_bytes_is_refused_from_a_stream(tmp_path):
    p = tmp_path / "bomb-idx.gz"
    header = struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">3I", 1_000_000, 1000, 1000)  # 10^12 bytes
    p.write_bytes(gzip.compress(header + bytes(1 << 20)))  # 1 MiB of zeros after it
    with pytest.raises(DataError, match=r"bomb-idx.gz: .*needs 931.3 GiB of memory|too large to be real"):
        read_idx(p)
    assert _peak(read_idx, p) < CAP  # not decompressed first


def test_gzip_idx_payload_longer_than_declared(tmp_path):
    p = tmp_path / "long-idx.gz"
    p.write_bytes(gzip.compress(struct.pack(">HBB", 0, 0x08, 1) + struct.pack(">I", 4) + bytes(10)))
    with pytest.raises(DataError, match="payload has 10 bytes but dimensions .4,. of uint8 need 4"):
        read_idx(p)


def test_mnist_format_files_with_float_pixels_and_a_nan(tmp_path):
    x = np.zeros((3, 4, 4), np.float32)
    x[1, 2, 3] = np.nan
    write_idx(tmp_path / "img", x)
    write_idx(tmp_path / "lab", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match=r"img: row 1 has a non-finite value \(nan\) in position \(2, 3\)"):
        read_image_label_pair(tmp_path / "img", tmp_path / "lab")
    big = np.zeros((2, 3), np.float64)
    big[1, 2] = 1e308  # finite in float64, infinite in float32
    write_idx(tmp_path / "f64", big)
    with pytest.raises(DataError, match=r"f64: row 1, column 2: 1e\+308 overflows float32"):
        read_idx(tmp_path / "f64")


def test_npy_value_overflowing_float32_names_row_and_column(tmp_path):
    a = np.ones((4, 3))
    a[2, 1] = -1e300
    np.save(tmp_path / "o.npy", a)
    with pytest.raises(DataError, match=r"o.npy: row 2, column 1: -1e\+300 overflows float32"):
        read_table(tmp_path / "o.npy")


def test_csv_with_a_byte_order_mark_keeps_its_first_row_and_column(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes("\ufeffa,b,c\n1,2,5\n3,4,6\n".encode())
    x, y, names = read_table(p, label_column="a")
    assert names is None and y.tolist() == [1, 3] and x.tolist() == [[2, 5], [4, 6]]  # found by its name
    p.write_bytes("\ufeff1,2\n3,4\n".encode())  # no header: the first row is data
    x, _, _ = read_table(p)
    assert x.tolist() == [[1, 2], [3, 4]]


# -- properties over random bytes ------------------------------------------------------------------
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _idx_prefix(draw_code, dims):
    return struct.pack(">HBB", 0, draw_code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)


def test_an_empty_idx_array_with_absurd_dimensions_is_a_data_error(tmp_path):
    p = tmp_path / "empty-absurd-idx"  # found by the property below: numpy cannot shape it
    p.write_bytes(_idx_prefix(8, [0, 26131, 18784059, 18790756]))
    with pytest.raises(DataError, match="too large to be real"):
        read_idx(p)


@FUZZ
@given(data=st.binary(max_size=600),
       prefix=st.one_of(st.just(b""), st.builds(_idx_prefix, st.sampled_from([8, 9, 11, 12, 13, 14]),
                                                st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4))),
       compress=st.booleans())
def test_idx_reader_on_random_bytes(tmp_path, data, prefix, compress):
    raw = prefix + data
    p = tmp_path / "fuzz-idx"
    p.write_bytes(gzip.compress(raw) if compress else raw)
    tracemalloc.start()
    try:
        try:
            a = read_idx(p)
            assert isinstance(a, np.ndarray)
        except HourglassError:
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < CAP


@FUZZ
@given(data=st.binary(max_size=600),
       header=st.one_of(st.just(b""), st.builds(_npy_bytes, st.sampled_from(
           ["(3, 2)", "(0, 4)", "(5,)", "(2**40, 2)", "(4294967296, 4294967296)", "(-1, 2)", "'x'", "(1.5, 2)",
            "(3, 2, 1, 1)"]), st.sampled_from(["<f8", "<f4", "|u1", ">i2", "|O", "<c8", "[('a', '<f4')]", "zz"]))))
def test_npy_reader_on_random_bytes(tmp_path, data, header):
    p = tmp_path / "fuzz.npy"
    p.write_bytes(header + data)
    tracemalloc.start()
    try:
        try:
            x, _, _ = read_npy(p)
            assert isinstance(x, np.ndarray)
        except HourglassError:
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < CAP


def test_npy_reader_reads_what_numpy_writes(tmp_path):
    for a in (np.arange(12, dtype=np.uint8).reshape(3, 4), np.ones((2, 3), ">f8"), np.asfortranarray(np.eye(3))):
        buf = io.BytesIO()
        np.save(buf, a)
        (tmp_path / "a.npy").write_bytes(buf.getvalue())
        x, _, _ = read_npy(tmp_path / "a.npy")
        assert np.array_equal(x, a)
