"""The reference classifiers: trained by the one trainer, cached once as safetensors + JSON, atomically;
reused, retrained when stale, warned about when damaged."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from hourglass import io
from hourglass.errors import HourglassWarning
from hourglass.evaluate import reference, samples
from hourglass.training import trainer as trainer_module

pytestmark = pytest.mark.usefixtures("one_thread")


def blobs(n=300, k=3, shape=(1, 4, 4), seed=0):
    """k well separated classes of images in [0, 1]."""
    rng = np.random.default_rng(seed)
    d = int(np.prod(shape))
    centres = rng.uniform(0.1, 0.9, size=(k, d))
    y = rng.integers(0, k, n)
    x = np.clip(centres[y] + 0.05 * rng.normal(size=(n, d)), 0, 1).astype(np.float32)
    return x.reshape(n, *shape), y


def test_the_classifier_is_trained_by_the_trainer(monkeypatch):
    fitted = []
    real_fit = trainer_module.Trainer.fit

    def fit(self, *a, **k):
        fitted.append(type(self.model).__name__)
        return real_fit(self, *a, **k)

    monkeypatch.setattr(trainer_module.Trainer, "fit", fit)
    x, y = blobs()
    clf = reference.train(x, y, kind="mlp", epochs=3)
    assert fitted == ["_Fitting"]
    assert reference.accuracy(clf, x, y) > 0.9


def test_training_leaves_the_callers_random_state_alone():
    x, y = blobs()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    reference.train(x, y, kind="cnn", epochs=1, seed=5)
    assert torch.equal(torch.get_rng_state(), before)


def test_the_mlp_cache_round_trips_atomically_without_retraining(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    steps = []
    monkeypatch.setattr(io, "FAULT_HOOK", steps.append)
    x, y = blobs()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    clf = reference.get_classifier("toy", xt, yt, epochs=30)
    stem = tmp_path / "hourglass" / "classifiers" / "toy-1x4x4"
    # both files through atomic_write, the weights before the JSON that names their hash
    assert steps == ["wrote toy-1x4x4.safetensors", "wrote toy-1x4x4.json"]
    assert not list(stem.parent.glob(f"{io.TMP_PREFIX}*"))
    meta = json.loads(stem.with_name("toy-1x4x4.json").read_text())
    assert meta["version"] == reference.VERSION and meta["kind"] == "mlp" and meta["dataset"] == "toy"
    assert meta["shape"] == "1x4x4" and meta["num_classes"] == 3 and meta["epochs"] == 30
    assert meta["train_accuracy"] > 0.9

    monkeypatch.setattr(reference, "train", lambda *a, **k: pytest.fail("the cache should have been reused"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = reference.get_classifier("toy", xt, yt, epochs=30)
    np.testing.assert_array_equal(again.probs(x), clf.probs(x))
    s = samples.classifier_scores(again, xt[:150], xt[150:], xt[:150])
    assert s["sample_confidence"] > 0.8 and s["sample_class_balance"] > 0.9


def test_the_judge_cache_round_trips_with_its_test_accuracy(tmp_path, monkeypatch):
    x, y = blobs(shape=(1, 8, 8))
    stem = tmp_path / "judge-toy"
    judge, acc = reference.train_judge(x[:200], y[:200], x[200:], y[200:], epochs=2, cache=stem)
    assert (tmp_path / "judge-toy.safetensors").is_file() and acc > 0.9
    monkeypatch.setattr(reference, "train", lambda *a, **k: pytest.fail("the cache should have been reused"))
    again, acc_again = reference.train_judge(x[:200], y[:200], x[200:], y[200:], epochs=2, cache=stem)
    assert acc_again == acc and again.kind == "cnn"
    np.testing.assert_array_equal(again.probs(x), judge.probs(x))


def _count_training(monkeypatch) -> list[str]:
    calls = []
    real = reference.train

    def counted(*a, **k):
        calls.append(k["kind"])
        return real(*a, **k)

    monkeypatch.setattr(reference, "train", counted)
    return calls


def test_a_stale_or_foreign_cache_is_retrained_silently(tmp_path, monkeypatch):
    calls = _count_training(monkeypatch)
    x, y = blobs()
    stem = tmp_path / "c"
    reference.reference_classifier(x, y, kind="mlp", epochs=2, cache=stem)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reference.reference_classifier(x, y, kind="mlp", epochs=3, cache=stem)  # other settings
        reference.reference_classifier(x[:-1], y[:-1], kind="mlp", epochs=3, cache=stem)  # other data
        reference.reference_classifier(x, y, kind="cnn", epochs=3, cache=stem)  # another kind
        # what hourglass 0.x wrote (version 1, no weights hash) is another classifier's record
        (tmp_path / "c.json").write_text(json.dumps({"version": 1, "fingerprint": reference.fingerprint(x, y),
                                                     "num_classes": 3}))
        reference.reference_classifier(x, y, kind="cnn", epochs=3, cache=stem)
    assert calls == ["mlp", "mlp", "mlp", "cnn", "cnn"]
    reference.reference_classifier(x, y, kind="cnn", epochs=3, cache=stem)
    assert len(calls) == 5  # the last one written is reused


@pytest.mark.parametrize("damage", ["json", "weights", "missing", "torn"])
def test_a_damaged_cache_is_retrained_with_a_warning_naming_the_file(tmp_path, monkeypatch, damage):
    x, y = blobs()
    stem = tmp_path / "c"
    first, _ = reference.reference_classifier(x, y, kind="mlp", epochs=2, cache=stem)
    weights, record = tmp_path / "c.safetensors", tmp_path / "c.json"
    if damage == "json":
        record.write_text('{"version": 2, "kind"')
    elif damage == "weights":
        weights.write_bytes(b"\x00" * 64)
    elif damage == "missing":
        weights.unlink()
    else:  # a valid weights file, but not the one the JSON hashed (a write cut between the two files)
        other, _ = reference.reference_classifier(x, y, kind="mlp", epochs=2, seed=1, cache=tmp_path / "d")
        weights.write_bytes((tmp_path / "d.safetensors").read_bytes())
    calls = _count_training(monkeypatch)
    with pytest.warns(HourglassWarning, match=r"c\.(json|safetensors).*training it again"):
        clf, _ = reference.reference_classifier(x, y, kind="mlp", epochs=2, cache=stem)
    assert calls == ["mlp"]
    np.testing.assert_array_equal(clf.probs(x), first.probs(x))  # the same seed trains the same classifier
    reference.reference_classifier(x, y, kind="mlp", epochs=2, cache=stem)
    assert calls == ["mlp"]  # and the rewritten cache is whole again


def test_a_cache_that_cannot_be_written_warns_and_still_answers(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    x, y = blobs()
    with pytest.warns(HourglassWarning, match="not written"):
        clf, meta = reference.reference_classifier(x, y, kind="mlp", epochs=2, cache=tmp_path / "file" / "c")
    assert meta["train_accuracy"] > 0.9 and clf.probs(x).shape == (len(x), 3)


def test_one_rank_of_a_distributed_run_trains_it_alone(monkeypatch):
    """Only rank 0 evaluates a torchrun run: its classifier must not wait for the other ranks."""
    from hourglass.training import distributed

    group = distributed.Context(rank=0, world_size=2, backend="gloo")
    monkeypatch.setattr(distributed, "_context", group)
    seen = []
    real_wrap = distributed.wrap

    def wrap(*a, **k):  # the trainer asks here whether to wrap the model for DDP
        seen.append(distributed.current())
        return real_wrap(*a, **k)

    monkeypatch.setattr(distributed, "wrap", wrap)
    x, y = blobs()
    clf = reference.train(x, y, kind="mlp", epochs=3)
    assert seen == [distributed.Context()]  # one process: no DDP, no shard, no collective
    assert reference.accuracy(clf, x, y) > 0.9
    assert distributed.current() is group  # the run's own context again afterwards
