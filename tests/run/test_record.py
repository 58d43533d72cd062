"""The typed run record and the one store: records written before the record existed still load, a run of
another hourglass version warns, another format is refused saying what to do, and a pickled estimator's run
gets the checks a run directory's does.

The fixtures are config.json files written by hourglass 0.1.0 before run/record.py existed (``hourglass
train vae|cvae|gan --epochs 1`` on digits, and the README's wine table demo); their weights are made in the
test from a freshly built model, so the fixtures stay a few KB.
"""

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import hourglass
from hourglass.errors import CheckpointError, HourglassWarning
from hourglass.run import Run, RunRecord, store
from hourglass.training import checkpoint as ckpt

FIXTURES = Path(__file__).parent / "fixtures"
OLD = ["vae", "cvae", "gan", "wine"]


def old_run(tmp_path: Path, name: str, edit=None) -> Path:
    """A run directory holding the old ``config.json`` (edited by ``edit``) and weights that fit it."""
    info = json.loads((FIXTURES / f"config-{name}.json").read_text())
    record = RunRecord.from_dict(info, "fixture")
    parts = store.build(record, None, None, seed=0)
    out = tmp_path / name
    out.mkdir()
    ckpt.save_tensors(out / "model.safetensors", parts.model.state_dict())
    if edit is not None:
        edit(info)
    (out / "config.json").write_text(json.dumps(info))
    return out


@pytest.mark.parametrize("name", OLD)
def test_an_old_record_loads_and_writes_back_unchanged(tmp_path, name):
    old = json.loads((FIXTURES / f"config-{name}.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same version, same format: no warning
        run = hourglass.load(old_run(tmp_path, name))
    assert run.model_name == old["model"] and run.record.data.name == old["data"]["name"]
    assert run.record.train.seed == old["train"]["seed"] and run.record.config.latent_dim == old["config"]["latent_dim"]
    assert run.record.data.kind == old["data"]["kind"] and run.label_names == old["data"].get("label_names")
    np.testing.assert_array_equal(run.scaler.offset, np.asarray(old["data"]["scaling"]["offset"]))
    assert run.info == old  # the compatibility view is config.json, key for key, in its order
    run.save(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "config.json").read_text()) == old
    if name == "wine":  # the table transform travels: raw rows with text columns are encoded
        rows = np.array([[11.0, 3.0, "north"], [9.5, None, "east"]], dtype=object)
        assert run.encode(rows).shape == (2, 16)
        assert run.output_names("reconstruct") == old["data"]["transform"]["features"]


def test_the_record_is_a_view_and_unknown_keys_survive_a_save(tmp_path):
    d = old_run(tmp_path, "vae", edit=lambda c: c.update(later_key={"a": 1}) or c["data"].update(later=[2]))
    run = hourglass.load(d)
    view = run.info
    view["model"] = "gan"
    assert run.model_name == "vae" and run.info["model"] == "vae"  # changing the view changes nothing
    run.save(tmp_path / "copy")
    saved = json.loads((tmp_path / "copy" / "config.json").read_text())
    assert saved["later_key"] == {"a": 1} and saved["data"]["later"] == [2]


def test_a_run_of_another_version_loads_with_a_warning_naming_both(tmp_path):
    d = old_run(tmp_path, "vae", edit=lambda c: c["versions"].update(hourglass="0.0.7"))
    with pytest.warns(HourglassWarning) as caught:
        run = hourglass.load(d)
    text = " ".join(str(w.message) for w in caught)
    assert "0.0.7" in text and hourglass.__version__ in text and "config.json" in text
    assert run.encode(np.zeros((2, 64))).shape == (2, 16)


@pytest.mark.parametrize("fmt", [2, None])
def test_another_format_is_refused_saying_why_and_what_to_do(tmp_path, fmt):
    def edit(c):
        c["format"] = fmt
        c["versions"]["hourglass"] = "9.0.0"

    d = old_run(tmp_path, "vae", edit=edit)
    with pytest.raises(CheckpointError, match=f"unsupported format {fmt!r}") as e:
        hourglass.load(d)
    msg = str(e.value)
    if fmt is None:
        assert "no format number" in msg
    else:
        assert f"reads format {ckpt.FORMAT_VERSION}" in msg and "hourglass 9.0.0" in msg and "train it again" in msg


def test_a_pickled_run_gets_the_checks_a_run_directory_gets(tmp_path):
    run = hourglass.load(old_run(tmp_path, "vae"))
    state = store.to_state(run.model, run.record, run.history, run.metrics)
    back = Run(*store.from_state(pickle.loads(pickle.dumps(state)), "cpu"))
    x = np.random.default_rng(0).random((3, 64))
    np.testing.assert_allclose(back.encode(x), run.encode(x))
    # A damaged record: refused naming the key (the old unpickling built the model without this check).
    bad = json.loads(state["info"])
    del bad["data"]["kind"]
    with pytest.raises(CheckpointError, match="pickled estimator's run: config: key 'data.kind' is missing"):
        store.from_state(dict(state, info=json.dumps(bad)), "cpu")
    # Weights of another shape: refused from the header, naming the tensor.
    other = {k: torch.zeros(1) for k in run.model.state_dict()}
    from safetensors.torch import save as save_bytes

    with pytest.raises(CheckpointError, match="has shape"):
        store.from_state(dict(state, weights=save_bytes(other)), "cpu")


def test_the_fixtures_are_what_an_old_run_directory_holds():
    """Guard the fixtures themselves: a real record of format 1 with every section the loader reads."""
    for name in OLD:
        info = json.loads((FIXTURES / f"config-{name}.json").read_text())
        assert info["format"] == 1 and {"model", "config", "train", "data", "versions"} <= set(info)
