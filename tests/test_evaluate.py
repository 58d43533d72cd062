"""Code metrics, sample metrics, anomaly detection and `hourglass compare`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from helpers import run_cli
from hourglass.evaluate.codes import cluster_accuracy, code_metrics, continuity, neighbourhood_scores

pytestmark = pytest.mark.usefixtures("one_thread")


def clusters(n=600, k=5, dim=8, spread=20.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)) * spread
    y = rng.integers(0, k, n)
    return centres[y] + rng.normal(size=(n, dim)), y


# -- code metrics ---------------------------------------------------------------------------------
def test_separated_clusters_score_near_one_and_random_codes_near_chance():
    z, y = clusters()
    good = code_metrics(z[:400], y[:400], z[400:], y[400:], x_test=z[400:])
    for key in ("knn_acc", "probe_acc", "kmeans_nmi", "kmeans_acc", "trustworthiness", "continuity"):
        assert good[key] > 0.98, (key, good[key])
    rng = np.random.default_rng(1)
    bad = code_metrics(rng.normal(size=(400, 2)), y[:400], rng.normal(size=(200, 2)), y[400:])
    assert bad["knn_acc"] < 0.35 and bad["probe_acc"] < 0.35  # chance is 0.2
    assert bad["kmeans_nmi"] < 0.1
    assert "trustworthiness" not in bad  # no inputs given


def test_isometric_embedding_has_trustworthiness_and_continuity_one():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    iso = neighbourhood_scores(x, 3.0 * x @ q + 7.0)  # rotation, scaling and shift keep every neighbourhood
    assert iso["trustworthiness"] == pytest.approx(1.0) and iso["continuity"] == pytest.approx(1.0)
    scrambled = neighbourhood_scores(x, x[rng.permutation(300)])
    assert scrambled["trustworthiness"] < 0.7 and scrambled["continuity"] < 0.7


def test_continuity_is_trustworthiness_mirrored_and_capped_subset_is_used():
    from sklearn.manifold import trustworthiness

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    z = x[:, :2]  # a projection: trustworthy-ish, but it tears input neighbourhoods apart
    assert continuity(x, z) == pytest.approx(trustworthiness(z, x, n_neighbors=5))
    assert continuity(x, z) != pytest.approx(trustworthiness(x, z, n_neighbors=5))
    capped = neighbourhood_scores(np.tile(x, (8, 1)) + 1e-3 * rng.normal(size=(1600, 6)),
                                  np.tile(z, (8, 1)), max_points=100)
    assert 0 < capped["trustworthiness"] <= 1


def test_cluster_accuracy_is_permutation_invariant_and_hungarian():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    perm = np.array([2, 0, 3, 1])
    assert cluster_accuracy(y, perm[y]) == 1.0
    assert cluster_accuracy(y, perm[y] + 10) == 1.0  # cluster ids need not be class ids
    # Two clusters that both best match class 0: one-to-one matching must not reuse it.
    y_true = np.array([0, 0, 0, 0, 1, 1])
    y_pred = np.array([0, 0, 1, 1, 1, 1])
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="length"):
        cluster_accuracy(y_true, y_pred[:3])


def test_code_metrics_rejects_bad_input():
    z, y = clusters(n=50)
    with pytest.raises(ValueError, match="length"):
        code_metrics(z, y[:-1], z, y)
    with pytest.raises(ValueError, match="NaN"):
        code_metrics(np.full_like(z, np.nan), y, z, y)


# -- sample metrics ---------------------------------------------------------------------------------
def test_frechet_distance_zero_for_same_features_and_mean_shift_squared():
    from hourglass.evaluate.samples import frechet_distance

    rng = np.random.default_rng(0)
    f = rng.normal(size=(2000, 4))
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-4)
    shift = np.array([1.0, 2.0, 0.0, 0.0])
    assert frechet_distance(f, f + shift) == pytest.approx(5.0, rel=1e-3)
    assert frechet_distance(f, 3 * f) > 3.0  # covariance differences count too


# -- anomaly detection and metrics in runs -------------------------------------------------------------
@pytest.fixture(scope="module")
def anomaly_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "ae-no0"
    with pytest.MonkeyPatch.context() as mp:  # a private classifier cache, restored afterwards
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        assert run_cli("train", "ae", "--anomaly-class", 0, "--epochs", 8, "--set", "hidden=64",
                       "--out", out, "--no-progress") == 0
    return out


def test_run_without_class_reports_anomaly_auc_and_code_metrics(anomaly_run):
    metrics = json.loads((anomaly_run / "metrics.json").read_text())
    info = json.loads((anomaly_run / "config.json").read_text())
    assert info["data"]["exclude_class"] == 0
    assert metrics["anomaly"]["class"] == 0 and metrics["anomaly"]["score"] == "recon_bce"
    assert metrics["test"]["anomaly_auc"] > 0.7  # class 0 was never seen: it reconstructs worse
    for key in ("knn_acc", "probe_acc", "kmeans_nmi", "kmeans_acc", "trustworthiness", "continuity"):
        assert 0 <= metrics["test"][key] <= 1, key
    assert metrics["test"]["knn_acc"] > 0.5  # 16-D codes of digits are far above chance (0.1)
    assert "fd_classifier" not in metrics["test"]  # not generative


def test_evaluate_reports_code_metrics_and_anomaly_auc(anomaly_run, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert run_cli("evaluate", anomaly_run, "--output", out) == 0
    m = json.loads(out.read_text())
    stored = json.loads((anomaly_run / "metrics.json").read_text())
    assert m["anomaly"]["auc"] == pytest.approx(stored["anomaly"]["auc"])
    assert m["test"]["knn_acc"] > 0.5
    # another class, which the run did see: allowed, with a note that it says little
    assert run_cli("evaluate", anomaly_run, "--anomaly-class", 3, "--output", out) == 0
    assert "not trained without class 3" in capsys.readouterr().err
    assert json.loads(out.read_text())["anomaly"]["class"] == 3
    assert run_cli("evaluate", anomaly_run, "--anomaly-class", 42) == 2
    assert "does not occur" in capsys.readouterr().err
    assert run_cli("evaluate", anomaly_run, "--iwae-samples", 5) == 2
    assert "iwae_samples: model 'ae' has no such setting" in capsys.readouterr().err


def test_anomaly_auc_prefers_the_negative_elbo_for_vaes():
    from hourglass import create
    from hourglass.evaluate.anomaly import anomaly_auc, anomaly_scores

    torch.manual_seed(0)
    model = create("vae", input_shape=(6,), latent_dim=2, hidden=(8,))
    x = torch.rand(40, 6)
    x[:10] = 1.0  # a very different "class"
    y = torch.tensor([1] * 10 + [0] * 30)
    scores, key = anomaly_scores(model, x)
    assert key == "neg_elbo" and scores.shape == (40,)
    auc = anomaly_auc(model, x, y, 1)
    assert 0.0 <= auc <= 1.0
    with pytest.raises(ValueError, match="does not occur"):
        anomaly_auc(model, x, y, 5)


@pytest.mark.parametrize("name", ["ae", "dae", "sparse", "contractive", "stacked", "vae", "cvae", "aae"])
def test_anomaly_scores_are_the_models_own_and_do_not_depend_on_the_batch(name):
    from helpers import fixed_batch, small_model
    from hourglass.evaluate.anomaly import anomaly_scores

    torch.manual_seed(0)
    model = small_model(name).eval()
    x, y = fixed_batch(n=40)
    scores, key = anomaly_scores(model, x, y)
    again, _ = anomaly_scores(model, x.flip(0), y.flip(0), batch_size=7)  # other order, other batches
    np.testing.assert_allclose(again[::-1], scores, rtol=1e-5)
    with torch.no_grad():
        alone = [model.anomaly_score(x[i : i + 1], y[i : i + 1] if model.conditional else None) for i in range(3)]
    np.testing.assert_allclose(torch.cat(alone).numpy(), scores[:3], rtol=1e-5)
    assert key == ("neg_elbo" if name in ("vae", "cvae") else "recon_bce")
    if key == "recon_bce":  # the metric of the same name, per example
        with torch.no_grad():
            np.testing.assert_allclose(model.metrics_batch(x, y)["recon_bce"].numpy(), scores, rtol=1e-5)


def test_train_anomaly_class_errors(tmp_path, capsys):
    assert run_cli("train", "ae", "--anomaly-class", 99, "--epochs", 1, "--out", tmp_path / "r",
                   "--no-progress") == 2
    assert "no examples of it" in capsys.readouterr().err


# -- compare -------------------------------------------------------------------------------------------------
def test_compare_writes_csv_markdown_and_png_with_one_row_per_method(tmp_path):
    from hourglass.compare import compare

    methods = ["pca", "isomap", "tsne", "umap", "ae"]
    res = compare("digits", latent_dim=2, methods=methods, out=tmp_path, epochs=3, max_train=300)
    with open(tmp_path / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    try:
        import umap  # noqa: F401

        expected = methods
    except ImportError:
        expected = [m for m in methods if m != "umap"]
        assert any("umap skipped" in n for n in res.notes)
    assert [r["method"] for r in rows] == expected
    by = {r["method"]: r for r in rows}
    assert by["tsne"]["evaluated_on"].startswith("train") and by["pca"]["evaluated_on"] == "test"
    assert by["pca"]["recon_mse"] and by["ae"]["recon_mse"] and not by["isomap"]["recon_mse"]
    assert float(by["tsne"]["knn_acc"]) > 0.8  # t-SNE separates digits even on 300 points
    for r in rows:
        assert 0 <= float(r["trustworthiness"]) <= 1 and float(r["fit_seconds"]) >= 0
    md = (tmp_path / "comparison.md").read_text()
    assert sum(line.startswith(f"| {m} |") for m in expected for line in md.splitlines()) == len(expected)
    assert "t-SNE cannot embed new points" in md
    png = (tmp_path / "comparison.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_lda_is_supervised_has_no_inverse_and_takes_arrays(tmp_path):
    """LDA is fitted with the labels and says so (column, note, CSV); on well separated classes given as
    arrays its 2-D projection keeps them apart, while PCA (which ignores the labels) mixes them."""
    from hourglass.compare import compare

    # 4 classes one-hot in 3 columns (variance 3/16 each after min-max scaling) beside 20 columns of coin
    # flips (variance 1/4 each): the directions of most variance (PCA's) carry no class information,
    # Fisher's criterion finds the ones that do.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 800)
    x = np.concatenate([np.eye(4)[y][:, :3], rng.integers(0, 2, (800, 20))], axis=1)
    x = (x + rng.normal(0, 0.05, x.shape)).astype(np.float32)
    res = compare(((x[:600], y[:600]), (x[600:], y[600:])), latent_dim=2, methods=["pca", "lda"], out=tmp_path,
                  threads=1)
    by = {r["method"]: r for r in res.rows}
    assert by["lda"]["uses_labels"] is True and by["pca"]["uses_labels"] is False
    assert by["lda"]["recon_mse"] is None and by["pca"]["recon_mse"] is not None
    assert by["lda"]["knn_acc"] > 0.9 > 0.5 > by["pca"]["knn_acc"]
    assert res.embeddings["lda"][0].shape == (200, 2)
    with open(tmp_path / "comparison.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert rows["lda"]["uses_labels"] == "yes" and rows["pca"]["uses_labels"] == "no" and rows["lda"]["recon_mse"] == ""
    md = (tmp_path / "comparison.md").read_text()
    assert "| uses labels |" in md and "LDA is supervised" in md


def test_compare_lda_refuses_more_dimensions_than_classes_minus_one_and_unlabelled_data(tmp_path, capsys):
    from hourglass import ConfigError
    from hourglass.compare import compare

    assert run_cli("compare", "--methods", "pca,lda", "--latent-dim", 10, "--out", tmp_path) == 2
    err = capsys.readouterr().err
    assert "latent_dim 10 is more than classes - 1 = 9 (10 classes" in err and err.count("\n") == 1
    assert not (tmp_path / "comparison.csv").exists()  # refused before anything was fitted
    x = np.random.default_rng(0).random((100, 5)).astype(np.float32)
    with pytest.raises(ConfigError, match="'lda' is supervised"):
        compare(x, methods=["lda"])
    assert compare(x, methods=["pca"], latent_dim=2).rows[0]["uses_labels"] is False


def test_compare_figure_marks_supervised_methods_and_keeps_far_outliers_from_squashing_a_panel():
    from hourglass.compare import Comparison, embeddings_figure
    from hourglass.report.figures import new_figure

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    bulk = rng.normal(size=(300, 2)) + y[:, None]
    far = bulk.copy()
    far[0] = (-500.0, 200.0)  # one test point LDA throws far away
    rows = [{"method": "pca", "uses_labels": False, "knn_acc": 0.5, "evaluated_on": "test"},
            {"method": "lda", "uses_labels": True, "knn_acc": 0.9, "evaluated_on": "test"}]
    fig = new_figure((1, 1))
    embeddings_figure(fig, Comparison(rows=rows, embeddings={"pca": (bulk, y), "lda": (far, y)}))
    pca_ax, lda_ax = fig.axes[:2]
    assert "(uses labels)" in lda_ax.get_title() and "1 point off the axes" in lda_ax.get_title()
    assert "uses labels" not in pca_ax.get_title() and "off the axes" not in pca_ax.get_title()
    assert lda_ax.get_xlim()[0] > -50  # the panel shows the bulk, not the outlier's range
    assert fig.legends or any(ax.get_legend() for ax in fig.axes)


def test_compare_cli_errors_are_one_line(tmp_path, capsys):
    assert run_cli("compare", "--methods", "pca,nope", "--out", tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("hourglass: error: unknown method 'nope'") and err.count("\n") == 1
    assert run_cli("compare", "--methods", "gan", "--out", tmp_path) == 2
    assert "no encoder" in capsys.readouterr().err
    assert run_cli("compare", "--methods", "cvae", "--out", tmp_path) == 2
    assert "conditional" in capsys.readouterr().err
