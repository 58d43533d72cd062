"""The scikit-learn estimators: scikit-learn's own estimator checks over the family, pipelines and grid
search, thresholds, labels, pickling and the safe save format."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import hourglass
from hourglass.sklearn import AutoencoderOutlierDetector, AutoencoderTransformer

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = dict(latent_dim=2, hidden=(8,), epochs=2, batch_size=32, threads=1, device="cpu")
# One model of each family with an encoder, at settings that train in a blink. The cvae is the
# semi-supervised one: scikit-learn passes no labels to transform, and its classifier supplies them.
FAMILY = {
    "ae": None,
    "vae": None,
    "dae": {"noise": "masking"},
    "sparse": {"sparsity": "l1"},
    "contractive": None,
    "stacked": {"pretrain_epochs": 1, "finetune_epochs": 0},
    "cvae": {"semi_supervised": True, "classifier_hidden": (8,)},
    "aae": {"disc_hidden": (8,)},
}
FLOAT32 = ("the network computes in float32: BLAS sums a row in another order when it is alone or elsewhere in "
           "the batch, so outputs agree to float32's last bit (~1e-7 relative), not to the 1e-9 asked here")
NO_LABELS = "a conditional model needs class labels y in fit; this check fits the detector without them"


def expected_failed_checks(estimator) -> dict[str, str]:
    failing = {"check_methods_subset_invariance": FLOAT32, "check_methods_sample_order_invariance": FLOAT32}
    if estimator.model == "cvae" and isinstance(estimator, AutoencoderOutlierDetector):
        failing.update(check_outliers_fit_predict=NO_LABELS, check_outliers_train=NO_LABELS)
    return failing


def estimators(names) -> list:
    return [cls(name, model_params=FAMILY[name], **FAST) for name in names
            for cls in (AutoencoderTransformer, AutoencoderOutlierDetector)]


@parametrize_with_checks(estimators(["ae", "vae"]), expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.slow  # ~600 more checks, ~40 s of CPU
@parametrize_with_checks(estimators([n for n in FAMILY if n not in ("ae", "vae")]),
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks_whole_family(estimator, check):
    check(estimator)


def test_the_family_covers_every_model_with_an_encoder():
    from hourglass.models.base import Autoencoder

    get = hourglass.models.get_model_class
    with_encoder = [m for m in hourglass.list_models() if issubclass(get(m), Autoencoder)]
    assert sorted(FAMILY) == with_encoder  # a new model joins the estimator checks


@pytest.fixture(scope="module")
def cancer():
    x, y = load_breast_cancer(return_X_y=True)
    return x, y


# -- the transformer ----------------------------------------------------------------------------------
def test_transformer_in_a_grid_searched_pipeline(cancer):
    x, y = cancer
    pipe = make_pipeline(StandardScaler(), AutoencoderTransformer(hidden=(16,), epochs=3, threads=1, random_state=0),
                         LogisticRegression(max_iter=500))
    search = GridSearchCV(pipe, {"autoencodertransformer__latent_dim": np.array([2, 4])}, cv=2)  # NumPy ints too
    search.fit(x, y)
    assert search.best_params_["autoencodertransformer__latent_dim"] in (2, 4)
    assert search.best_estimator_.named_steps["autoencodertransformer"].transform(x[:5]).shape[1] == \
        search.best_params_["autoencodertransformer__latent_dim"]
    assert search.score(x, y) > 0.8  # codes of a 3-epoch autoencoder still separate the two classes


def test_transformer_surface(cancer):
    x, _ = cancer
    t = AutoencoderTransformer("vae", latent_dim=3, hidden=(16,), epochs=3, threads=1, random_state=0).fit(x)
    z = t.transform(x)
    assert z.shape == (len(x), 3) and z.dtype == np.float32
    assert np.allclose(z, t.fit_transform(x), atol=1e-6)  # same seed, same model
    assert list(t.get_feature_names_out()) == ["vae0", "vae1", "vae2"]
    back = t.inverse_transform(z)
    assert back.shape == x.shape
    # decode(encode(x)) in the original units: closer to x than the feature means are
    assert np.abs(back - x).mean() < np.abs(x - x.mean(0)).mean()
    samples = t.sample(7, random_state=0)
    assert samples.shape == (7, x.shape[1])
    assert np.array_equal(samples, t.sample(7, random_state=0))
    assert len(t.history_) == 3 and "val_loss" in t.history_[0]
    assert t.scaler_.kind == "standard" and t.model_.latent_dim == 3
    # the ELBO: a VAE scores the training data higher than the same rows shuffled column by column
    shuffled = np.random.default_rng(0).permuted(x, axis=0)
    assert t.score_samples(x).mean() > t.score_samples(shuffled).mean()
    with pytest.raises(ValueError, match="expecting codes of 3 features"):
        t.inverse_transform(z[:, :2])
    ae = AutoencoderTransformer(**FAST).fit(x)
    with pytest.raises(hourglass.ConfigError, match="not generative"):
        ae.sample(3)


def test_transformer_pandas_output(cancer):
    pd = pytest.importorskip("pandas")
    x, _ = cancer
    df = pd.DataFrame(x[:, :5], columns=[f"f{i}" for i in range(5)])
    t = AutoencoderTransformer(**FAST, random_state=0).set_output(transform="pandas").fit(df)
    out = t.transform(df)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["ae0", "ae1"]
    assert list(t.feature_names_in_) == list(df.columns)
    with pytest.raises(ValueError, match="feature names"):
        t.transform(df.rename(columns={"f0": "other"}))


def test_scikit_learn_errors_for_bad_input(cancer):
    x, _ = cancer
    t = AutoencoderTransformer(**FAST).fit(x)
    bad = x[:5].copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        t.transform(bad)
    with pytest.raises(ValueError, match="has 29 features, but AutoencoderTransformer is expecting 30"):
        t.transform(x[:, :29])
    with pytest.raises(ValueError, match="Expected 2D array"):
        t.transform(x[0])
    with pytest.raises(ValueError, match="NaN"):
        AutoencoderTransformer(**FAST).fit(bad)


def test_bad_parameters_are_config_errors(cancer):
    x, _ = cancer
    for params, match in [({"model": "gan"}, "has no encoder"), ({"model": "nope"}, "unknown model 'nope'"),
                          ({"epochs": -1}, "'epochs': invalid value -1"), ({"verbose": None}, "verbose"),
                          ({"model_params": {"latent_dim": 3}}, "latent_dim"),
                          ({"model_params": {"betta": 2.0}}, "unknown option 'betta'"),
                          ({"input_shape": (2, 3, 3)}, "holds 18 values")]:
        with pytest.raises(hourglass.ConfigError, match=match):
            AutoencoderTransformer(**{**FAST, **params}).fit(x)
    with pytest.raises(hourglass.ConfigError, match="contamination"):
        AutoencoderOutlierDetector(**FAST, contamination=0.7).fit(x)
    with pytest.raises(hourglass.ConfigError, match="val_fraction > 0"):
        AutoencoderOutlierDetector(**FAST, calibration="validation", val_fraction=0.0).fit(x)


def test_conditional_model_uses_labels_of_any_kind():
    x, y = load_wine(return_X_y=True)
    names = np.array(["barolo", "grignolino", "barbera"])[y]
    t = AutoencoderTransformer("cvae", **FAST, random_state=0).fit(x, names)
    assert list(t.classes_) == ["barbera", "barolo", "grignolino"]
    z = t.transform(x, names)
    assert z.shape == (len(x), 2)
    # the label is an input: the same wine encoded under another label gets another code
    assert not np.allclose(z, t.transform(x, np.roll(names, 1)))
    assert t.inverse_transform(z, names).shape == x.shape
    assert t.sample(4, y="barolo", random_state=0).shape == (4, x.shape[1])
    with pytest.raises(hourglass.DataError, match="conditional: pass labels"):
        t.transform(x)
    with pytest.raises(ValueError, match="not seen in fit"):
        t.transform(x[:2], ["barolo", "nebbiolo"])
    with pytest.raises(ValueError, match="requires y"):
        AutoencoderTransformer("cvae", **FAST).fit(x)
    # a semi-supervised cvae labels new data with its own classifier q(y|x)
    semi = AutoencoderTransformer("cvae", **FAST, model_params={"semi_supervised": True}).fit(x, names)
    assert semi.transform(x).shape == (len(x), 2)
    # the detector scores each wine as one of its class, its threshold set on held-out labelled wines
    d = AutoencoderOutlierDetector("cvae", **FAST, calibration="validation", contamination=0.1).fit(x, names)
    assert set(d.fit_predict(x, names)) <= {-1, 1} and d.predict(x, names).shape == (len(x),)
    with pytest.raises(ValueError, match="conditional: pass the labels y"):
        d.score_samples(x)


# -- the detector ------------------------------------------------------------------------------------------
def test_detector_thresholds(cancer):
    x, y = cancer
    benign = x[y == 1]
    d = AutoencoderOutlierDetector(hidden=(16,), epochs=5, threads=1, random_state=0, contamination=0.1).fit(benign)
    scores = d.score_samples(benign)
    assert np.array_equal(d.decision_function(benign), scores - d.offset_)
    assert (d.predict(benign) == -1).mean() == pytest.approx(0.1, abs=0.01)  # contamination on the fit data
    assert np.array_equal(d.fit_predict(benign), d.predict(benign))
    # calibrated on the held-out validation split instead: the threshold moves
    v = clone(d).set_params(calibration="validation", val_fraction=0.2).fit(benign)
    assert v.offset_ != d.offset_
    # auto: Tukey's lower fence of the calibration scores
    a = clone(d).set_params(contamination="auto").fit(benign)
    q1, q3 = np.percentile(a.score_samples(benign), [25, 75])
    assert a.offset_ == pytest.approx(q1 - 1.5 * (q3 - q1))
    # malignant tumours, never seen in fit, look less typical than benign ones
    assert d.score_samples(x[y == 0]).mean() < scores.mean()


def test_vae_scores_do_not_depend_on_the_batch(cancer):
    x, _ = cancer
    d = AutoencoderOutlierDetector("vae", **FAST, random_state=0).fit(x)
    full = d.score_samples(x)
    assert np.allclose(d.score_samples(x[::-1])[::-1], full, rtol=1e-5)
    assert np.allclose([d.score_samples(x[i : i + 1])[0] for i in range(5)], full[:5], rtol=1e-5)


# -- persistence ------------------------------------------------------------------------------------------
def test_pickle_holds_safetensors_bytes_not_a_torch_module(cancer):
    x, _ = cancer
    d = AutoencoderOutlierDetector("vae", **FAST, random_state=0).fit(x)
    state = d.__getstate__()
    assert set(state["run_"]) == {"weights", "info", "history", "metrics"}
    assert isinstance(state["run_"]["weights"], bytes) and isinstance(state["run_"]["info"], str)
    assert not any(isinstance(v, torch.nn.Module) for v in state.values())
    blob = pickle.dumps(d)
    assert b"torch.nn" not in blob and b"hourglass.models" not in blob
    same = pickle.loads(blob)
    assert np.array_equal(same.predict(x), d.predict(x))
    assert np.array_equal(same.score_samples(x), d.score_samples(x))
    assert isinstance(d.run_, hourglass.Run)  # pickling left the original alone


def test_save_and_load_use_the_run_format(cancer, tmp_path):
    x, y = cancer
    d = AutoencoderOutlierDetector("vae", **FAST, random_state=0, contamination=0.05).fit(x)
    path = d.save(tmp_path / "det")
    assert {"model.safetensors", "config.json", "estimator.json"} <= {p.name for p in path.iterdir()}
    back = AutoencoderOutlierDetector.load(path)
    assert back.get_params() == {**d.get_params(), "hidden": [8]}  # JSON keeps tuples as lists
    assert back.offset_ == d.offset_
    assert np.array_equal(back.predict(x), d.predict(x))
    assert hourglass.load(path).model_name == "vae"  # a run directory like any other
    with pytest.raises(hourglass.CheckpointError, match="load it with that class"):
        AutoencoderTransformer.load(path)
    record = json.loads((path / "estimator.json").read_text())
    (path / "estimator.json").write_text(json.dumps({**record, "fitted": {**record["fitted"], "evil_": 1}}))
    with pytest.raises(hourglass.CheckpointError, match="unknown fitted attribute 'evil_'"):
        AutoencoderOutlierDetector.load(path)
    t = AutoencoderTransformer(**FAST).fit(x)
    assert np.array_equal(AutoencoderTransformer.load(t.save(tmp_path / "t")).transform(x), t.transform(x))


def test_joblib_round_trip(cancer, tmp_path):
    joblib = pytest.importorskip("joblib")
    x, _ = cancer
    pipe = make_pipeline(StandardScaler(), AutoencoderTransformer(**FAST, random_state=0)).fit(x)
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    assert np.array_equal(joblib.load(tmp_path / "pipe.joblib").transform(x), pipe.transform(x))
