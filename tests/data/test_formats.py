"""The reader registry: every file reaches hourglass through one registered format, found in one place."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import subprocess_env
from hourglass import memory
from hourglass.data import DataError, as_bundle, formats, read_table
from hourglass.data.formats import Format, format_for, register_format
from hourglass.data.sources import open_input, read_examples
from hourglass.errors import ConfigError

README = Path(__file__).resolve().parents[2] / "README.md"


def _format_section() -> str:
    text = README.read_text()
    start = text.index("### A new file format")
    return text[start:text.index("\n## ", start)]


def test_every_suffix_and_folder_has_exactly_one_format(tmp_path):
    expected = {".npy": "npy", ".npz": "npz", ".csv": "table", ".TSV": "table", ".parquet": "table", ".pq": "table"}
    for suffix, name in expected.items():
        assert format_for(tmp_path / f"x{suffix}").name == name
    assert format_for(tmp_path).name == "images"
    assert format_for(tmp_path / "t10k-images-idx3-ubyte.gz") is None  # not a data set to train on ...
    assert format_for(tmp_path / "t10k-images-idx3-ubyte.gz", new_examples=True).name == "idx"  # ... but input
    every = [s for f in formats.registered_formats().values() for s in f.suffixes]
    assert len(every) == len(set(every))


def test_a_second_format_for_a_suffix_or_name_is_refused():
    with pytest.raises(ValueError, match=r"'\.csv' is already read by format 'table'"):
        register_format("csv-again", (".csv",))(type("CsvAgain", (Format,), {}))
    with pytest.raises(ValueError, match="'npy' is already registered"):
        register_format("npy", (".npy2",))(type("Npy2", (Format,), {}))
    with pytest.raises(TypeError, match="subclass"):
        register_format("not-a-format", (".nf",))(type("NotAFormat", (), {}))


def test_unsupported_files_name_every_registered_suffix(tmp_path):
    p = tmp_path / "data.xyz"
    p.write_text("1 2 3\n")
    with pytest.raises(DataError, match=r"data\.xyz: unsupported file type '\.xyz' \(use a folder of images, .*\.npy"):
        as_bundle(p)
    with pytest.raises(DataError, match="unsupported file type '.xyz'"):
        read_table(p)


def test_a_format_registered_in_process_serves_training_inputs_and_reads(tmp_path):
    @register_format("test-lines", (".lines",))
    class Lines(Format):
        def read(self, path, label_column=None):
            return np.loadtxt(path, ndmin=2), None, None

    p = tmp_path / "a.lines"
    np.savetxt(p, np.arange(40.0).reshape(20, 2))
    bundle = as_bundle(p, test_fraction=0.25)
    assert (len(bundle.x_train), len(bundle.x_test)) == (15, 5)
    assert bundle.files["files"][0]["path"] == str(p.resolve())  # the run records the file it read
    assert sorted(np.concatenate([bundle.x_train, bundle.x_test])[:, 0].tolist()) == list(np.arange(0.0, 40, 2))
    rows, y, values, index = open_input(p, {})
    assert rows.take(np.arange(3)).tolist() == [[0, 1], [2, 3], [4, 5]] and y is None and len(index) == 20
    x, _ = read_examples(p)
    assert x.dtype == np.float32 and x.shape == (20, 2)
    p.write_text("1 2\nnan 3\n")  # the registry's checks apply to every format
    with pytest.raises(DataError, match="row 1 has a non-finite value"):
        as_bundle(p, test_fraction=0.5)


def test_memory_limits_have_one_error_type(monkeypatch):
    monkeypatch.setenv("HOURGLASS_MAX_READ_BYTES", "1000")
    want = "f.bin: reading it needs 2.0 KiB of memory, more than the 1000 B"
    with pytest.raises(memory.MemoryLimitError, match=want) as e:
        memory.ensure_fits(2000, "f.bin")
    assert isinstance(e.value, DataError) and isinstance(e.value, ConfigError)
    monkeypatch.setenv("HOURGLASS_MEMORY_LIMIT", "1K")
    with pytest.raises(DataError, match="more than the limit set by HOURGLASS_MEMORY_LIMIT"):
        memory.check_fits(5000, "x")


def test_readme_format_example_trains_through_the_cli(tmp_path):
    """The README's toy format, as written: a module outside the package, found by HOURGLASS_PLUGINS,
    trains, evaluates and encodes through the CLI in a child process."""
    section = _format_section()
    (code,) = re.findall(r"```py\n(.*?)```", section, flags=re.S)
    (commands,) = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    (tmp_path / "toyformat.py").write_text(code)
    env = subprocess_env()
    for line in commands.strip().splitlines():
        words = shlex.split(line)
        if words[0] == "export":
            for word in words[1:]:
                key, value = word.split("=", 1)
                env[key] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]]) if key == "PYTHONPATH" else value
            continue
        argv = [sys.executable, *words[1:]] if words[0] == "python" else [sys.executable, "-m", "hourglass",
                                                                             *words[1:]]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
    assert env["HOURGLASS_PLUGINS"] == "toyformat"
    info = json.loads((tmp_path / "runs/ssv/config.json").read_text())
    assert info["data"]["source"] == str((tmp_path / "points.ssv").resolve())
    assert info["data"]["label_column"] == "last" and (tmp_path / "runs/ssv/metrics.json").is_file()
    with open(tmp_path / "ssv-codes.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["row", "label", "z0", "z1"] and len(rows) == 1 + 300  # every row, labels beside
    assert {r[1] for r in rows[1:]} <= {"0", "1"}
    # the plugin is needed: without it the file is refused, naming the suffix (one line, exit status 2)
    env.pop("HOURGLASS_PLUGINS")
    done = subprocess.run([sys.executable, "-m", "hourglass", "train", "ae", "--data", "points.ssv", "--out", "r2"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "unsupported file type '.ssv'" in done.stderr, done.stderr
