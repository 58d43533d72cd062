"""Checkpoint files: safetensors + JSON only, atomic writes, clear errors on damaged files."""

import json

import pytest
import torch

from hourglass.training import checkpoint as ckpt


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "model.safetensors"
    ckpt.save_tensors(target, {"w": torch.ones(3)})
    before = target.read_bytes()

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_tensors(target, {"w": torch.zeros(3)})
    assert target.read_bytes() == before  # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file left


def test_damaged_files_raise_checkpoint_errors(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ckpt.CheckpointError, match="model.safetensors"):
        ckpt.load_tensors(tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(ckpt.CheckpointError, match="config.json is not valid JSON"):
        ckpt.read_json(tmp_path / "config.json")
    with pytest.raises(ckpt.CheckpointError, match="not found"):
        ckpt.read_json(tmp_path / "missing.json")


def test_nested_state_round_trip_with_tensors_and_infinities(tmp_path):
    state = {"a": {"b": [torch.arange(3), 2.5, None, "x"], 3: torch.tensor(1.0)}, "best": float("inf")}
    ckpt.save_state(tmp_path, state)
    back = ckpt.load_state(tmp_path)
    assert torch.equal(back["a"]["b"][0], torch.arange(3)) and back["a"]["b"][1:] == [2.5, None, "x"]
    assert back["a"][3].item() == 1.0 and back["best"] == float("inf")
    # the JSON side holds no tensor data: it names the safetensors entries
    meta = json.loads((tmp_path / "trainer_state.json").read_text())
    assert "__tensor__" in json.dumps(meta)
