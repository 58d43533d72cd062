"""Training killed (``kill -9``) or stopped (SIGTERM) at exact moments, then resumed, ends bit-identical to a
run that was never interrupted: every tensor of the final weights and of the last checkpoint (optimizer
moments, RNG states, best weights) compared with ``torch.equal``, the history and the metrics exactly.

The moments: inside an epoch (before the first checkpoint, between checkpoints), right after the run
directory was claimed, between every two writes of a checkpoint (each part, the manifest, the rename,
the removal of the older one, the top-level links), and during the final save. The children are forked
from one server process (tests/kill_harness.py) that kills itself at the named point.
"""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import subprocess_env
from hourglass.training import checkpoint as ckpt

HERE = Path(__file__).resolve().parent
SMALL = {"epochs": 3, "latent_dim": 3, "batch_size": 256, "progress": False, "threads": 1, "figures": False,
         "checkpoint_interval": 0}  # a checkpoint after every epoch
MODELS = {
    "ae": {"hidden": [16]},  # one optimizer; 6 steps an epoch
    "aae": {"hidden": [16], "disc_hidden": [16]},  # three: reconstruction, discriminator, generator
    "vae": {"hidden": [16]},
    "gan": {"hidden": [16]},
}
CHECKPOINT_WRITES = [
    "checkpoint part model.safetensors", "checkpoint part trainer_state.safetensors",
    "checkpoint part trainer_state.json", "checkpoint part history.csv", "checkpoint part manifest.json",
    "checkpoint renamed", "older checkpoints removed", "installed model.safetensors", "installed history.csv",
]
FINAL_SAVE = ["wrote model.safetensors", "wrote config.json", "wrote history.csv", "wrote metrics.json"]


class Harness:
    def __init__(self, tmp: Path):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "kill_harness.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=subprocess_env())
        self.tmp = tmp
        self.ids = itertools.count()
        self.refs: dict[str, Path] = {}

    def call(self, fn: str, *args, point: str | None = None, nth: int = 1, signal: str = "KILL", **kwargs) -> dict:
        i = next(self.ids)
        req = {"id": i, "fn": fn, "args": [str(a) for a in args], "kwargs": kwargs, "point": point, "nth": nth,
               "signal": signal, "result": str(self.tmp / f"result-{i}.json")}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the kill harness died"
        return json.loads(line)

    def train(self, model: str, out: Path, **kw) -> dict:
        return self.call("train", model, "digits", out=str(out), **SMALL, **MODELS[model], **kw)

    def resume(self, out: Path, **kw) -> dict:
        return self.call("resume", str(out), progress=False, threads=1, figures=False, **kw)

    def reference(self, model: str) -> Path:
        """The run of ``model`` that nothing interrupted (made once)."""
        if model not in self.refs:
            out = self.tmp / f"reference-{model}"
            _ok(self.train(model, out))
            self.refs[model] = out
        return self.refs[model]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    h = Harness(tmp_path_factory.mktemp("kills"))
    yield h
    h.close()


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def _history(path: Path) -> list[dict]:
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def assert_same_run(a: Path, b: Path) -> int:
    """Runs ``a`` and ``b`` agree bit for bit; returns how many tensors were compared."""
    compared = 0
    ca, cb = ckpt.latest_checkpoint(a), ckpt.latest_checkpoint(b)
    assert ca is not None and cb is not None and ca.name == cb.name
    for pa, pb in ((a / "model.safetensors", b / "model.safetensors"),
                   (ca / "model.safetensors", cb / "model.safetensors"),
                   (ca / "trainer_state.safetensors", cb / "trainer_state.safetensors")):
        ta, tb = _tensors(pa), _tensors(pb)
        assert ta.keys() == tb.keys(), pb
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{pb}: tensor {k} differs"
            compared += 1
    sa, sb = (json.loads((c / "trainer_state.json").read_text())["state"] for c in (ca, cb))
    assert _trainer_part(sa) == _trainer_part(sb)
    assert _history(a / "history.csv") == _history(b / "history.csv")
    ma, mb = (json.loads((r / "metrics.json").read_text()) for r in (a, b))
    assert ma["train"] == mb["train"] and ma["test"] == mb["test"] and ma["epochs"] == mb["epochs"]
    assert not list(b.glob(".hourglass-tmp*")) and not list((b / "checkpoints").glob(".hourglass-tmp*"))
    assert not (b / "hourglass.lock").exists()
    return compared


def _trainer_part(skeleton: dict) -> list:
    """The trainer section of a saved state (epoch, step, history without timings, early stopping)."""
    for k, v in skeleton["__dict__"]:
        if k == "trainer":
            items = dict(v["__dict__"])
            items["history"] = [[kv for kv in rec["__dict__"] if kv[0] != "seconds"] for rec in items["history"]]
            return sorted(items.items(), key=lambda kv: kv[0])
    raise AssertionError("no trainer section")


def _ok(answer: dict) -> None:
    assert answer.get("exit") == 0, answer


# (model, kills): each kill is (point, nth, signal); after each, the run is resumed until it finishes.
# nth=2 of a checkpoint write is the checkpoint after epoch 2; "step" counts optimizer steps (6 an epoch
# for the ae, 18 for the aae's three phases).
CASES = [
    ("ae", [("step", 3, "KILL")]),  # inside epoch 1: no checkpoint yet, the run starts again
    ("ae", [("step", 9, "KILL")]),  # inside epoch 2
    ("ae", [("wrote config.json", 1, "KILL")]),  # right after the run directory was claimed
    *[("ae", [(p, 2, "KILL")]) for p in CHECKPOINT_WRITES],
    ("ae", [("wrote model.safetensors", 1, "KILL")]),  # training done, the final save under way
    ("ae", [("step", 8, "TERM")]),  # SIGTERM inside epoch 2: a checkpoint at step 2 of 6
    ("ae", [("step", 6, "TERM")]),  # SIGTERM at the last step of epoch 1: its own checkpoint suffices
    ("ae", [("step", 9, "KILL"), ("checkpoint renamed", 1, "KILL")]),  # killed again while resuming
    ("aae", [("step", 20, "KILL")]),
    ("aae", [("checkpoint part trainer_state.json", 2, "KILL")]),
    ("aae", [("installed model.safetensors", 2, "KILL")]),
    ("aae", [("step", 25, "TERM")]),
]
SLOW_CASES = [
    *[("aae", [(p, 2, "KILL")]) for p in CHECKPOINT_WRITES if p not in ("checkpoint part trainer_state.json",
                                                                         "installed model.safetensors")],
    *[("aae", [("step", k, "KILL")]) for k in (1, 17, 18, 19, 37, 53)],
    *[(m, [(p, 1, "KILL")]) for m in ("ae", "aae") for p in FINAL_SAVE[1:]],
    *[("gan", [(p, 2, "KILL")]) for p in ("checkpoint part model.safetensors", "checkpoint renamed")],
    ("gan", [("step", 15, "TERM")]),
    ("vae", [("step", 9, "KILL")]),
    ("vae", [("step", 10, "TERM"), ("step", 2, "TERM"), ("checkpoint part manifest.json", 1, "KILL")]),
]


def _case_id(case) -> str:
    model, kills = case
    return model + ":" + "+".join(f"{sig}@{p.replace(' ', '_')}#{n}" for p, n, sig in kills)


def run_case(harness: Harness, tmp_path: Path, model: str, kills) -> None:
    ref = harness.reference(model)
    out = tmp_path / "run"
    first = True
    for point, nth, sig in kills:
        answer = harness.train(model, out, point=point, nth=nth, signal=sig) if first else \
            harness.resume(out, point=point, nth=nth, signal=sig)
        first = False
        if sig == "KILL":
            assert answer.get("signal") == 9, answer
        else:  # SIGTERM: the step finishes, a checkpoint is written, the message says how to go on
            assert answer.get("exit") == 3, answer
            assert f"hourglass train --resume {out}" in answer["error"], answer
    _ok(harness.resume(out))
    assert assert_same_run(ref, out) > 0


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_interrupted_then_resumed_is_bit_identical(harness, tmp_path, case):
    run_case(harness, tmp_path, *case)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_CASES, ids=_case_id)
def test_interrupted_then_resumed_is_bit_identical_more_moments(harness, tmp_path, case):
    run_case(harness, tmp_path, *case)
