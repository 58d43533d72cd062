"""Hostile and faulty inputs from files and flags: each is one line (exit status 2) naming the file, key or
value, nothing is allocated before its size is checked, and nothing silently wrong comes out.

The property tests (Hypothesis) write random bytes, random JSON and mutations of a real ``config.json``
(and of a real trainer state) and check that loading either gives a valid run or raises a
``HourglassError``, never anything else, with the process' peak memory (``VmHWM``, reset before each
example) growing by less than ``PEAK_LIMIT``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

import hourglass
from helpers import copied, one_line_error, run_cli
from hourglass import memory
from hourglass.errors import HourglassError
from hourglass.run import Run
from hourglass.training import checkpoint as ckpt

pytestmark = pytest.mark.usefixtures("one_thread")
PEAK_LIMIT = 200 << 20  # bytes the peak resident memory may grow by while one hostile file is loaded
EXAMPLES = int(os.environ.get("HOURGLASS_PROPERTY_EXAMPLES", "120"))


@pytest.fixture(scope="module")
def vae_run(small_run) -> Path:
    return small_run("vae", 1)


@pytest.fixture
def run_copy(vae_run, tmp_path) -> Path:
    return copied(vae_run, tmp_path)


def edit_config(run: Path, change) -> None:
    info = json.loads((run / "config.json").read_text())
    info = change(info) or info
    (run / "config.json").write_text(json.dumps(info))


# -- peak memory --------------------------------------------------------------------------------------
def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


class PeakMemory:
    """How far the resident memory's high-water mark rose during the block (Linux: VmHWM, reset through
    /proc/self/clear_refs)."""

    available = os.path.exists("/proc/self/clear_refs") and os.access("/proc/self/clear_refs", os.W_OK)

    def __enter__(self) -> "PeakMemory":
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident size
        self.base = _status("VmRSS")
        return self

    def __exit__(self, *exc) -> None:
        self.grew = _status("VmHWM") - self.base


needs_peak = pytest.mark.skipif(not PeakMemory.available, reason="needs /proc/self/clear_refs (Linux)")


def load_or_error(path: Path) -> Run | HourglassError:
    """``Run.load``: a Run or a HourglassError; anything else (or a memory peak) fails the test."""
    with PeakMemory() as peak:
        try:
            result: Run | HourglassError = Run.load(path)
        except HourglassError as e:
            result = e
    assert peak.grew < PEAK_LIMIT, f"loading grew the peak memory by {peak.grew / 2**20:.0f} MiB"
    event(f"outcome: {type(result).__name__}")
    if isinstance(result, HourglassError):
        assert str(result) and "\n" not in str(result).strip()
    return result


# -- config.json: the cases named in the reports --------------------------------------------------------
def _drop(key):
    return lambda c: c.pop(key) and None


@pytest.mark.parametrize("change, message", [
    (lambda c: [c], "config.json: expected a JSON object, found list"),
    (_drop("config"), "config.json: key 'config' is missing or not a dict"),
    (lambda c: c["config"].update(latent_dim="two"), "config key 'latent_dim': 'two' is not a valid int"),
    (lambda c: c["config"].update(hidden="wide"), "config key 'hidden': 'wide' is not a valid"),
    (lambda c: c["train"].pop("seed") and None, "key 'train.seed' is missing"),
    (lambda c: c["train"].update(batch_size=0), "training option 'batch_size': invalid value 0"),
    (lambda c: c["data"].pop("kind") and None, "key 'data.kind' is missing"),
    (lambda c: c["data"].update(label_names=7), "key 'data.label_names': 7 is not a list"),
    (lambda c: c["data"]["scaling"].update(scale=[0.0]), "key 'data.scaling.scale': holds a zero"),
    (lambda c: c["data"]["scaling"].update(offset=[[1], [1, 2]]), "key 'data.scaling': setting an array element"),
    (lambda c: c.update(model="nope"), "unknown model 'nope'"),
    (lambda c: c.update(format=99), "unsupported format 99"),
    (lambda c: c["config"].update(hidden=[32]), "tensor 'encoder.head.0.weight' has shape (16, 64), the model's "
                                                "config needs (32, 64)"),
    (lambda c: c["config"].update(latent_dim=10 ** 9),
     "model 'vae' with latent_dim=1000000000 would need about 201.2 GiB of memory (186.3 GiB of parameters; for one "
     "example)"),
    (lambda c: c["config"].update(hidden=[10 ** 9]), "with hidden=[1000000000] would need about"),
    (lambda c: c["config"].update(input_shape=[1, 10 ** 5, 10 ** 5]) or c["data"]["scaling"].update(shape=None),
     "with input_shape=[1, 100000, 100000] would need about"),
    (lambda c: c["config"].update(input_shape=[1, 10 ** 5, 10 ** 5], architecture="conv")
     or c["data"]["scaling"].update(shape=None), "with input_shape=[1, 100000, 100000] would need about"),
    (lambda c: c["config"].update(hidden=[16] * 5000), "config key 'hidden': 5,000 entries"),
    (lambda c: c["config"].update(hidden=[10 ** 400]), "cannot be built with hidden=[about 10^400]"),
])
@needs_peak
def test_a_bad_config_json_is_one_line_naming_the_key(run_copy, capsys, monkeypatch, change, message):
    monkeypatch.setenv("HOURGLASS_MEMORY_LIMIT", "64G")  # the same verdicts on any machine
    edit_config(run_copy, change)
    with PeakMemory() as peak:
        err = one_line_error(capsys, "encode", run_copy, "--output", run_copy.parent / "z.npy")
    assert message in err and ("config.json" in err or "model.safetensors" in err), err
    assert peak.grew < PEAK_LIMIT
    assert not (run_copy.parent / "z.npy").exists()


def test_config_json_with_nan_or_a_huge_file_is_refused(run_copy, capsys):
    text, n = re.subn(r'"lr": [0-9.e-]+', '"lr": NaN', (run_copy / "config.json").read_text(), count=1)
    assert n == 1
    (run_copy / "config.json").write_text(text)
    assert "NaN is not a number JSON allows here" in one_line_error(capsys, "evaluate", run_copy)
    (run_copy / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    assert "nested too deeply" in one_line_error(capsys, "evaluate", run_copy)
    with open(run_copy / "config.json", "wb") as f:
        f.truncate(17 << 20)  # a sparse 17 MiB file: refused by its size, not read
    assert "bytes; a file of this kind is at most" in one_line_error(capsys, "evaluate", run_copy)


# -- weights and outputs -----------------------------------------------------------------------------------
def test_nan_weights_are_refused_naming_the_tensor(run_copy, capsys):
    tensors = load_file(str(run_copy / "model.safetensors"))
    name = sorted(k for k in tensors if k.endswith("weight"))[0]
    tensors[name][0, 0] = float("nan")
    save_file(tensors, str(run_copy / "model.safetensors"))
    err = one_line_error(capsys, "encode", run_copy, "--output", run_copy / "z.npy")
    assert f"tensor {name!r} holds NaN or Inf values" in err
    assert not (run_copy / "z.npy").exists()


def test_outputs_that_overflow_are_an_error_not_nan_codes(run_copy, capsys):
    tensors = load_file(str(run_copy / "model.safetensors"))
    for k in tensors:
        if k.startswith("encoder") and k.endswith("weight"):
            tensors[k] = tensors[k] * 1e30  # finite, but the codes overflow to Inf
    save_file(tensors, str(run_copy / "model.safetensors"))
    err = one_line_error(capsys, "encode", run_copy, "--output", run_copy / "z.npy")
    assert "model 'vae' produced NaN or Inf for example" in err
    assert not (run_copy / "z.npy").exists()


# -- sizes from flags --------------------------------------------------------------------------------------
@needs_peak
@pytest.mark.parametrize("args, message", [
    (["sample", "{run}", "-n", 10 ** 9, "--output", "{tmp}/s.npy"], "n=1,000,000,000 would need about"),
    (["sample", "{run}", "-n", 0, "--output", "{tmp}/s.npy"], "n must be at least 1, got 0"),
    (["interpolate", "{run}", "--steps", 10 ** 9, "--output", "{tmp}/s.npy"], "steps=1,000,000,000 would need about"),
    (["interpolate", "{run}", "--steps", 1, "--output", "{tmp}/s.npy"], "steps must be at least 2, got 1"),
    (["encode", "{run}", "--limit", 0, "--output", "{tmp}/z.npy"], "--limit must be >= 1, got 0"),
    (["evaluate", "{run}", "--iwae-samples", 10 ** 12], "--iwae-samples=1,000,000,000,000 would need about"),
    (["train", "ae", "--latent-dim", 10 ** 9, "--out", "{tmp}/big", "--no-progress"],
     "model 'ae' with latent_dim=1000000000 would need about"),
    (["train", "ae", "--set", "hidden=100000,100000", "--out", "{tmp}/big", "--no-progress"],
     "model 'ae' with hidden=[100000, 100000] would need about 298.6 GiB of memory"),
    (["encode", "{run}", "--output", "{tmp}/folder.npy"], "folder.npy: is a directory; give a file name"),
])
def test_sizes_from_flags_are_checked_before_anything_is_allocated(vae_run, tmp_path, capsys, monkeypatch, args,
                                                                  message):
    monkeypatch.setenv("HOURGLASS_MEMORY_LIMIT", "64G")  # the same verdicts on any machine
    (tmp_path / "folder.npy").mkdir()
    args = [str(a).format(run=vae_run, tmp=tmp_path) for a in args]
    with PeakMemory() as peak:
        err = one_line_error(capsys, *args)
    assert message in err, err
    assert "more than the limit set by HOURGLASS_MEMORY_LIMIT (64.0 GiB)" in err or "would need" not in err
    assert peak.grew < PEAK_LIMIT
    assert not (tmp_path / "big").exists()  # a refused training leaves no folder behind


def test_a_limit_beyond_the_data_takes_what_there_is(vae_run, tmp_path):
    assert run_cli("encode", vae_run, "--limit", 10 ** 18, "--output", tmp_path / "z.npy") == 0
    assert np.load(tmp_path / "z.npy").shape == (359, 3)


def test_a_tensor_file_larger_than_memory_is_not_read(vae_run, monkeypatch):
    monkeypatch.setenv("HOURGLASS_MEMORY_LIMIT", "1K")
    with pytest.raises(hourglass.CheckpointError, match=r"trainer_state.safetensors holds .* of tensors, more than "
                                                        r"the limit set by HOURGLASS_MEMORY_LIMIT \(1.0 KiB\)"):
        ckpt.load_state(ckpt.latest_checkpoint(vae_run))


def test_the_memory_limit_comes_from_the_machine_or_the_environment(monkeypatch):
    monkeypatch.delenv("HOURGLASS_MEMORY_LIMIT", raising=False)
    limit, source = memory.memory_limit()
    assert limit > 1 << 28 and source == "this machine's memory"
    monkeypatch.setenv("HOURGLASS_MEMORY_LIMIT", "1.5G")
    assert memory.memory_limit()[0] == int(1.5 * 2 ** 30)
    monkeypatch.setenv("HOURGLASS_MEMORY_LIMIT", "lots")
    with pytest.raises(hourglass.ConfigError, match="HOURGLASS_MEMORY_LIMIT='lots'"):
        memory.memory_limit()


def test_every_registered_model_can_be_measured_without_memory():
    """The estimate builds each model on the meta device: every registered model must allow it, and
    its parameter count is exact."""
    import dataclasses

    from hourglass.models import get_model_class, make_config

    for name in hourglass.list_models():
        cls = get_model_class(name)
        fields = {f.name for f in dataclasses.fields(cls.config_cls)}
        for shape in [(12,), (1, 8, 8)]:
            kw = {"input_shape": shape, **({"num_classes": 3} if "num_classes" in fields else {})}
            if len(shape) == 3:
                kw["architecture"] = "conv"
            cfg = make_config(name, None, **kw)
            size = memory.model_size(cls, cfg)
            real = cls(cfg).state_dict()
            assert size.parameter_bytes == sum(t.numel() * t.element_size() for t in real.values()), name
            assert size.state_shapes == {k: tuple(v.shape) for k, v in real.items()}, name
            assert size.activation_bytes >= 4 * 2 * math.prod(shape)


# -- property tests ----------------------------------------------------------------------------------------
HOSTILE_NUMBERS = st.sampled_from([0, -1, 1, 2, 3, 2 ** 31, 10 ** 9, 10 ** 12, 10 ** 18, 10 ** 400, 0.5, -0.0,
                                   1e308, -1e308, 1e-320])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | HOSTILE_NUMBERS,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=10), inner, max_size=6),
    max_leaves=25)


def _paths(obj, prefix=()):
    """Every path (tuple of keys and indexes) inside a JSON value."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _mutate(obj, path, action, value):
    obj = copy.deepcopy(obj)
    if not path:
        return value
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return obj


@pytest.fixture(scope="module")
def fuzz_dir(vae_run, tmp_path_factory) -> tuple[Path, dict]:
    """A copy of a real run whose config.json each example overwrites, and the original config."""
    out = tmp_path_factory.mktemp("fuzz") / "run"
    shutil.copytree(vae_run, out)
    return out, json.loads((vae_run / "config.json").read_text())


PROPERTY = settings(max_examples=EXAMPLES, deadline=None,
                    derandomize="HOURGLASS_PROPERTY_EXAMPLES" not in os.environ,  # CI: the same examples each run
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


@needs_peak
@PROPERTY
@given(data=st.binary(max_size=4096))
def test_random_bytes_as_config_json_load_or_fail_cleanly(fuzz_dir, data):
    run, _ = fuzz_dir
    (run / "config.json").write_bytes(data)
    assert isinstance(load_or_error(run), HourglassError)


@needs_peak
@PROPERTY
@given(value=JSON_VALUES)
def test_random_json_as_config_json_loads_or_fails_cleanly(fuzz_dir, value):
    run, _ = fuzz_dir
    (run / "config.json").write_text(json.dumps(value))
    assert isinstance(load_or_error(run), HourglassError)


@needs_peak
@PROPERTY
@given(data=st.data())
def test_mutated_config_json_loads_or_fails_cleanly(fuzz_dir, data):
    """One key of a real config.json deleted or replaced (by any JSON, or a hostile size)."""
    run, original = fuzz_dir
    paths = sorted(_paths(original), key=lambda p: [str(k) for k in p])
    path = data.draw(st.sampled_from(paths))
    action = data.draw(st.sampled_from(["delete", "replace"])) if path else "replace"
    value = data.draw(JSON_VALUES | st.lists(HOSTILE_NUMBERS, min_size=1, max_size=4))
    (run / "config.json").write_text(json.dumps(_mutate(original, path, action, value)))
    result = load_or_error(run)
    if isinstance(result, Run):  # a valid run: it must work, and give finite codes
        x = np.random.default_rng(0).uniform(0, 16, size=(3, 64))
        try:
            assert np.isfinite(result.encode(x)).all()
        except HourglassError:
            pass


@needs_peak
@PROPERTY
@given(data=st.data())
def test_mutated_size_fields_load_or_fail_cleanly(fuzz_dir, data):
    """The fields that size the network, set to anything from 0 to 10^12 (and lists of such)."""
    run, original = fuzz_dir
    sizes = st.integers(min_value=-2, max_value=10 ** 12)
    mutated = copy.deepcopy(original)
    cfg = mutated["config"]
    for key in data.draw(st.lists(st.sampled_from(["latent_dim", "hidden", "input_shape", "conv_channels",
                                                   "iwae_samples"]), min_size=1, max_size=3, unique=True)):
        cfg[key] = data.draw(sizes) if key in ("latent_dim", "iwae_samples") else data.draw(
            st.lists(sizes, min_size=0, max_size=4))
    if data.draw(st.booleans()):
        cfg["architecture"] = "conv"
    (run / "config.json").write_text(json.dumps(mutated))
    load_or_error(run)


@pytest.fixture(scope="module")
def state_dir(vae_run, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("state")
    folder = ckpt.latest_checkpoint(vae_run)
    shutil.copy(folder / "trainer_state.safetensors", out)
    return out, json.loads((folder / "trainer_state.json").read_text())


@needs_peak
@PROPERTY
@given(data=st.data())
def test_mutated_trainer_state_loads_or_fails_cleanly(state_dir, vae_run, data):
    """The trainer state's JSON with one entry deleted or replaced: read and loaded into a trainer, it
    either works or is a CheckpointError (the manifest's checksums would refuse it first; this is what
    stands behind them)."""
    from hourglass.training.trainer import Trainer

    folder, original = state_dir
    paths = sorted(_paths(original), key=lambda p: [str(k) for k in p])
    path = data.draw(st.sampled_from(paths))
    action = data.draw(st.sampled_from(["delete", "replace"])) if path else "replace"
    mutated = _mutate(original, path, action, data.draw(JSON_VALUES))
    (folder / "trainer_state.json").write_text(json.dumps(mutated))
    run = Run.load(vae_run)
    with PeakMemory() as peak:
        try:
            state = ckpt.load_state(folder)
            Trainer(run.model, hourglass.TrainConfig(progress=False, threads=1)).load_state_dict(state)
        except HourglassError:
            pass
    assert peak.grew < PEAK_LIMIT


@pytest.mark.slow
def test_the_property_tests_hold_for_many_more_random_examples():
    """The five property tests above, 1,000 fresh random examples each (not the fixed CI examples)."""
    import subprocess
    import sys

    from helpers import subprocess_env

    env = {**subprocess_env(), "HOURGLASS_PROPERTY_EXAMPLES": "1000"}
    proc = subprocess.run([sys.executable, "-m", "pytest", __file__, "-k", "cleanly", "-q", "-o", "addopts=",
                           "-p", "no:cacheprovider"],
                          capture_output=True, text=True, env=env, cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "5 passed" in proc.stdout
