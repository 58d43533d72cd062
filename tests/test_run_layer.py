"""The layer above the models: one owner of a run, one split, one metric pipeline, data in every form,
one error hierarchy, no global state changed by importing hourglass."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import hourglass
from helpers import NUM_CLASSES, fixed_batch, run_cli, small_model
from hourglass.errors import ConfigError, DataError, HourglassError
from hourglass.models.base import Autoencoder
from hourglass.training.callbacks import Callback
from hourglass.training.trainer import TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_thread")
MODELS = hourglass.list_models()
# Model options that keep a run on the embedded digits quick (and a stacked schedule within its epochs).
QUICK = {"hidden": (32,), "latent_dim": 4}
QUICK_MODEL = {"stacked": {"pretrain_epochs": 1, "finetune_epochs": 1}, "cvae": {}, "gan": {}}


# -- every model, through the trainer -------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(12,), (1, 12, 10)], ids=["table", "image"])
@pytest.mark.parametrize("name", MODELS)
def test_every_model_takes_a_trainer_step_on_table_and_image_data(name, shape):
    torch.manual_seed(0)
    model = small_model(name, shape)
    trainer = Trainer(model, TrainConfig(batch_size=8, progress=False))
    x, y = fixed_batch(shape, n=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    for phase in trainer.optimizers:
        out = trainer._step(phase, (x, y))
        assert torch.isfinite(out["loss"]), (name, phase)
    changed = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert changed, f"{name}: no weight moved in one step of every phase"


@pytest.mark.parametrize("preset", sorted(hourglass.list_presets()))
def test_every_preset_builds(preset):
    p = hourglass.list_presets()[preset]
    model = hourglass.create(p.model, preset=preset, input_shape=(1, 28, 28))
    assert model.name == p.model
    for key, value in p.config.items():
        assert getattr(model.config, key) == value, (preset, key)
    TrainConfig(**p.train).validate()


# -- evaluate reproduces metrics.json, for every model --------------------------------------------------
@pytest.fixture(scope="module")
def private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:  # the sample-metric classifiers of these runs stay private
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.mark.parametrize("name", MODELS)
def test_evaluate_reproduces_metrics_json_exactly(name, tmp_path, private_cache):
    out = tmp_path / name
    options = {**QUICK, **QUICK_MODEL.get(name, {})}
    epochs = 3 if name == "stacked" else 2
    hourglass.train(name, "digits", out=out, epochs=epochs, progress=False, figures=False, **options)
    stored = json.loads((out / "metrics.json").read_text())
    assert run_cli("evaluate", out, "--output", tmp_path / "again.json") == 0
    again = json.loads((tmp_path / "again.json").read_text())
    for split in ("train", "test"):
        assert again[split] == stored[split], (name, split)
    assert again.get("anomaly") == stored.get("anomaly")


def test_evaluate_on_a_run_without_a_class_reproduces_the_anomaly_numbers(tmp_path, private_cache):
    out = tmp_path / "ae-no3"
    hourglass.train("ae", "digits", out=out, epochs=2, progress=False, figures=False, anomaly_class=3, **QUICK)
    run = hourglass.load(out)
    assert all(3 not in s for s in (run.splits().y_train.tolist(),))  # the split leaves the class out again
    stored = json.loads((out / "metrics.json").read_text())
    again = run.evaluate()
    assert again["anomaly"] == stored["anomaly"] and again["test"] == stored["test"]


def test_semi_supervised_splits_hide_the_same_labels_after_reload(tmp_path, private_cache):
    out = tmp_path / "semi"
    run = hourglass.train("cvae", "digits", out=out, epochs=1, progress=False, figures=False, semi_supervised=True,
                          keep_labels=30, **QUICK)
    again = hourglass.load(out).splits()
    assert int((again.y_train_seen >= 0).sum()) == 30
    assert torch.equal(again.y_train_seen, run.splits().y_train_seen)
    assert bool((again.y_val_seen == -1).all()) and bool((again.y_train >= 0).all())  # true labels kept


# -- early stopping -----------------------------------------------------------------------------------
def test_early_stopping_restores_the_weights_of_the_best_epoch():
    torch.manual_seed(0)
    model = small_model("ae")
    x, _ = fixed_batch(n=32)
    seen: list[dict] = []

    class Snapshot(Callback):
        def on_epoch_end(self, trainer, record):
            seen.append({k: v.clone() for k, v in trainer.model.state_dict().items()})

    # min_delta larger than any improvement: epoch 1 stays the best, training stops after epoch 3.
    trainer = Trainer(model, TrainConfig(epochs=20, batch_size=8, patience=2, min_delta=1e6, progress=False),
                      callbacks=[Snapshot()])
    hist = trainer.fit(x, None, x[:8], None)
    assert len(hist) == 3 and trainer.state.stopped_early
    final = model.state_dict()
    assert all(torch.equal(final[k], seen[0][k]) for k in final)  # the best (first) epoch's weights
    assert any(not torch.equal(seen[-1][k], seen[0][k]) for k in final)  # which training had moved on from


# -- the Python API takes data in every form ------------------------------------------------------------
def _table(n=60, d=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d)).astype(np.float32), rng.integers(0, 3, n)


FAST = dict(epochs=1, progress=False, figures=False, latent_dim=2, hidden=(8,))


def test_train_takes_an_array():
    x, _ = _table()
    run = hourglass.train("ae", x, **FAST)
    assert run.info["data"]["name"] == "in-memory" and run.info["data"]["kind"] == "tabular"
    assert run.info["data"]["n_test"] == 12 and run.encode(x[:4]).shape == (4, 2)


def test_train_takes_a_tensor_and_x_y_pair():
    x, y = _table()
    run = hourglass.train("cvae", (torch.from_numpy(x), y), **FAST)
    assert run.model.num_classes == 3 and run.splits().y_test is not None


def test_train_takes_a_train_test_split_and_keras_style_pairs():
    x, y = _table(80)
    run = hourglass.train("ae", (x[:60], x[60:]), **FAST)
    assert run.info["data"]["n_test"] == 20
    run = hourglass.train("ae", ((x[:60], y[:60]), (x[60:], y[60:])), **FAST)
    assert run.info["data"]["n_test"] == 20 and torch.equal(run.splits().y_test, torch.from_numpy(y[60:]))


def test_train_takes_images_without_channel_axis_or_channels_last():
    rng = np.random.default_rng(0)
    gray = (rng.random((40, 10, 12)) * 255).astype(np.uint8)
    run = hourglass.train("ae", gray, **FAST)
    assert run.input_shape == (1, 10, 12) and run.scaler.kind == "range" and run.scaler.hi == 255
    rgb_last = rng.random((40, 10, 12, 3)).astype(np.float32)
    run = hourglass.train("ae", rgb_last, **FAST)
    assert run.input_shape == (3, 10, 12) and run.info["data"]["kind"] == "image"
    assert run.encode(rgb_last[:2]).shape == (2, 2)  # channels-last input is accepted again at encode time


def test_train_takes_a_dataframe_with_a_label_column_by_name():
    pd = pytest.importorskip("pandas")
    x, y = _table()
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    df["kind"] = np.array(["a", "b", "c"])[y]
    run = hourglass.train("ae", df, label_column="kind", **FAST)
    assert run.input_shape == (5,) and run.label_names == ["a", "b", "c"]
    with pytest.raises(DataError, match="no label column 'nope'; columns: f0, f1"):
        hourglass.train("ae", df, label_column="nope", **FAST)
    unlabelled = hourglass.train("ae", df, **FAST)  # the text column is one-hot encoded: 5 + 3 features
    assert unlabelled.input_shape == (8,)
    with pytest.raises(DataError, match="column 'kind' holds text"):
        hourglass.train("ae", df, categorical="error", **FAST)
    df.loc[3, "f2"] = np.nan
    with pytest.raises(DataError, match="column 'f2' has missing values in 1 "):
        hourglass.train("ae", df, label_column="kind", **FAST)


@pytest.mark.parametrize("data, message", [
    (np.zeros(10), r"shape \(10,\)"),
    (np.zeros((4, 2, 3, 4, 5)), r"shape \(4, 2, 3, 4, 5\)"),
    (np.array([["a", "b"], ["c", "d"]]), "expected numbers, found dtype <U1"),
    ((np.zeros((10, 3)), np.zeros(9)), r"shapes \(10, 3\) and \(9,\)"),
    ((np.zeros((10, 3)), np.zeros((5, 4))), r"shapes \(10, 3\) and \(5, 4\)"),
    ((np.zeros((10, 3)), np.zeros(10), np.zeros(10)), "sequence of 3 items"),
    (np.full((10, 3), np.nan), "row 0 has a non-finite value"),
    ("no-such-data-set", "unknown data set 'no-such-data-set'"),
])
def test_bad_data_is_refused_naming_the_shape_dtype_or_value(data, message):
    with pytest.raises(DataError, match=message):
        hourglass.train("ae", data, **FAST)


def test_options_are_sorted_and_unknown_ones_refused():
    x, _ = _table()
    with pytest.raises(ConfigError, match="unknown option 'epoch'.*training options:.*epochs.*data options:"):
        hourglass.train("ae", x, epoch=3)
    with pytest.raises(ConfigError, match="config key 'epochs'"):
        hourglass.train("ae", x, epochs="three")
    names = [{f.name for f in dataclasses.fields(c)} for c in (hourglass.TrainConfig, hourglass.DataOptions)]
    assert not names[0] & names[1]  # a key means one thing


# -- errors ---------------------------------------------------------------------------------------------
def test_every_error_kind_is_a_hourglass_error():
    for kind in (hourglass.ConfigError, hourglass.DataError, hourglass.CheckpointError, hourglass.TrainingError,
                 hourglass.PathError):
        assert issubclass(kind, HourglassError)


def test_os_failures_are_path_errors_naming_the_path(tmp_path, capsys):
    x, _ = _table()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(hourglass.PathError, match=f"cannot use {blocker}/run as a run directory: Not a directory"):
        hourglass.train("ae", x, out=blocker / "run", **FAST)
    assert run_cli("train", "ae", "--epochs", 1, "--out", blocker / "run", "--no-progress") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Not a directory" in err


def test_a_bug_shows_its_traceback_and_says_so(monkeypatch, capsys):
    import hourglass.cli as cli

    def broken(args):
        raise ZeroDivisionError("oops")

    monkeypatch.setitem(cli.COMMANDS, "list", broken)
    assert cli.main(["list"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError: oops" in err and "a bug in hourglass" in err


def test_debug_shows_the_traceback_of_user_errors(capsys):
    assert run_cli("--debug", "train", "nope") == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().endswith("hourglass: error: unknown model 'nope'; available: "
                                                       + ", ".join(MODELS))


# -- the generator surface ---------------------------------------------------------------------------------
def test_only_autoencoders_encode_and_runs_say_so():
    gan = small_model("gan")
    assert not isinstance(gan, Autoencoder) and gan.generative and gan.num_classes is None
    assert small_model("cvae").num_classes == NUM_CLASSES
    x, _ = _table(60, 12)
    run = hourglass.train("gan", x, **{**FAST, "hidden": (8,)})
    with pytest.raises(ConfigError, match="model 'gan' has no encoder"):
        run.encode(x)
    assert run.sample(3, seed=1).shape == (3, 12)
    assert np.array_equal(run.sample(3, seed=1), run.sample(3, seed=1))


# -- structure and global state ------------------------------------------------------------------------------
def _fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_importing_hourglass_and_its_cli_loads_no_torch_and_sets_no_backend():
    out = _fresh("import sys, hourglass, hourglass.cli, hourglass.options\n"
                 "heavy = ('torch', 'sklearn', 'matplotlib', 'matplotlib.pyplot')\n"
                 "print(sorted(m for m in heavy if m in sys.modules))")
    assert out == "[]"


def test_drawing_figures_does_not_select_a_backend_or_touch_pyplot():
    out = _fresh("import sys, numpy as np\nfrom hourglass.report import figures\n"
                 "import tempfile, os\nd = tempfile.mkdtemp()\n"
                 "figures.save_grid(os.path.join(d, 'g.png'), np.zeros((4, 1, 8, 8)))\n"
                 "figures.save_loss_curves(os.path.join(d, 'l.png'), [{'epoch': 1, 'train_loss': 1.0}])\n"
                 "print('matplotlib.pyplot' in sys.modules)")
    assert out == "False"


def test_training_leaves_the_callers_random_stream_alone():
    x, _ = _table()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    hourglass.train("vae", x, **FAST)
    assert torch.equal(torch.rand(3), expected)


def test_list_comes_from_the_model_files_and_matches_the_registry():
    from hourglass.models import get_model_class
    from hourglass.registry import catalog

    models, presets = catalog()
    assert models == {n: get_model_class(n).summary for n in MODELS}
    assert presets == {n: (p.model, p.description) for n, p in hourglass.list_presets().items()}


def test_train_help_lists_the_models_config_fields(capsys):
    with pytest.raises(SystemExit):
        run_cli("train", "vae", "--help")
    out = capsys.readouterr().out
    assert "config fields of vae" in out and "kl_warmup_epochs" in out and "--threads" in out
    assert "--keep-labels" in out and "--anomaly-class" in out  # data options, generated


def test_every_public_name_resolves():
    for name in hourglass.__all__:
        assert getattr(hourglass, name) is not None, name
    assert callable(hourglass.train) and hourglass.train.__module__ == "hourglass.run.fit"


def test_train_arrays_holds_out_validation_only_and_evaluates_nothing():
    from hourglass.run.fit import train_arrays

    x, y = _table(50, 4)
    opts = {k: v for k, v in FAST.items() if k != "figures"}
    run = train_arrays("cvae", x, y, val_fraction=0.2, **opts)
    s = run.splits()
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (40, 10, 0)
    assert set(run.metrics) == {"fit_seconds", "epochs", "stopped_early", "device"}
    assert run.model.num_classes == 3 and "val_loss" in run.history[0]
    with pytest.raises(DataError, match="in-memory data"):  # as any run of in-memory data
        run.bundle()
    images = train_arrays("ae", np.random.default_rng(0).random((20, 1, 6, 6)), **opts)
    assert images.info["data"]["kind"] == "image" and images.input_shape == (1, 6, 6)
    with pytest.raises(DataError, match=r"shape \(N, D\) or \(N, C, H, W\)"):
        train_arrays("ae", x[:, :, None], **opts)
