"""Autoencoders against the classical embeddings, on the same data, scored the same way.

``compare()`` (``hourglass compare``) fits every method on the same scaled, flattened training data
(images to [0, 1] by their known range, tables min-max scaled; an optional seeded subset of
``max_train`` examples) and embeds the test data in ``latent_dim`` dimensions. The data are a data
set's name or file, or anything :func:`hourglass.data.sources.as_bundle` takes (arrays, ``(x, y)``,
``((x_train, y_train), (x_test, y_test))``, a DataBundle). The methods:

* ``pca`` (inverse: ``inverse_transform``), ``kernel-pca`` (RBF kernel, with a learned pre-image map,
  ``fit_inverse_transform=True``), ``isomap`` and ``lle`` (10 neighbours) from scikit-learn;
* ``lda``: linear discriminant analysis (Fisher 1936; scikit-learn's ``LinearDiscriminantAnalysis``),
  the only *supervised* method here: it is fitted with the training labels and projects onto the
  directions that maximise between-class over within-class scatter, ``max_W tr((W'S_w W)^-1 W'S_b W)``.
  ``S_b`` has rank at most ``classes - 1``, so LDA gives at most ``classes - 1`` dimensions (a larger
  ``latent_dim`` is a ConfigError). It has no inverse map, and none is made up for it: the best
  linear map back from any ``d`` linear features is at best PCA's reconstruction (PCA's inverse is the
  least-squares optimum of rank ``d``), so a least-squares decoder fitted to LDA's codes would only
  measure how far LDA's directions are from PCA's, not LDA. Its recon MSE is ``-``. Because it sees
  the labels, its kNN, probe and cluster scores are an upper reference for a linear map, not a fair
  rival of the unsupervised methods (column ``uses_labels``). It is not in the default list: it needs
  labels and ``latent_dim < classes``, which a comparison of unlabelled data or of wider codes lacks;
* ``tsne``: t-SNE learns positions for the training points only and cannot embed new ones, so its
  scores are computed on its training embedding (an 80/20 split of it plays train/test for the kNN
  and the probe; column ``evaluated_on``);
* ``umap`` (umap-learn, optional: skipped with a note when it is not installed);
* any registered model with an encoder (``ae``, ``vae``, ``dae``, ...), trained by the generic trainer
  on exactly these examples; codes from ``encode`` (the posterior mean for VAEs), reconstructions
  from the decoder. Conditional models are refused: their codes are computed with the label.

Each row: whether the method uses the labels, fit seconds, reconstruction MSE on the test data
(scaled units) where the method can map codes back to data, and ``code_metrics`` (kNN and probe
accuracy, trustworthiness, continuity, k-means NMI and cluster accuracy). Results go to
``comparison.csv``, ``comparison.md`` and ``comparison.png``.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .errors import ConfigError
from .evaluate.codes import code_metrics

CLASSICAL = ("pca", "kernel-pca", "lda", "isomap", "lle", "tsne", "umap")
SUPERVISED = ("lda",)  # fitted with the training labels
DEFAULT_METHODS = ("pca", "kernel-pca", "isomap", "lle", "tsne", "umap", "ae", "vae")
COLUMNS = ["method", "uses_labels", "fit_seconds", "recon_mse", "knn_acc", "probe_acc", "trustworthiness",
           "continuity", "kmeans_nmi", "kmeans_acc", "evaluated_on"]
HEADERS = {"method": "method", "uses_labels": "uses labels", "fit_seconds": "fit s", "recon_mse": "recon MSE",
           "knn_acc": "kNN acc", "probe_acc": "probe acc", "trustworthiness": "trustworthiness",
           "continuity": "continuity", "kmeans_nmi": "NMI", "kmeans_acc": "cluster acc", "evaluated_on": "evaluated on"}
NEIGHBOURS = 10  # Isomap / LLE graph


@dataclass
class Comparison:
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    embeddings: dict[str, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict)
    label_names: list[str] | None = None  # class names, for the figure's legend
    markdown: str = ""
    files: list[Path] = field(default_factory=list)


def check_methods(methods) -> list[str]:
    from .models import get_model_class, list_models
    from .models.base import Autoencoder

    methods = list(methods)
    if not methods:
        raise ConfigError("no methods given")
    if len(set(methods)) != len(methods):
        raise ConfigError(f"method listed twice in {','.join(methods)}")
    for m in methods:
        if m in CLASSICAL:
            continue
        if m not in list_models():
            raise ConfigError(f"unknown method {m!r}: choose from {', '.join(CLASSICAL)} or a model with an encoder "
                             f"({', '.join(list_models())})")
        cls = get_model_class(m)
        if not issubclass(cls, Autoencoder):
            raise ConfigError(f"method {m!r}: the model has no encoder, so it gives no embedding")
        if cls.conditional:
            raise ConfigError(f"method {m!r}: a conditional model encodes with the label; its codes are not comparable")
    return methods


def compare(data: Any = "digits", *, data_dir: str | None = None, latent_dim: int = 2, methods=DEFAULT_METHODS,
            out: str | Path | None = None, epochs: int = 30, max_train: int | None = None, seed: int = 0,
            test_fraction: float = 0.2, threads: int | None = None,
            log: Callable[[str], None] | None = None) -> Comparison:
    """Fit ``methods`` on ``data`` and score their ``latent_dim``-D embeddings (see module doc).

    ``threads``: torch threads for the autoencoders and the BLAS/OpenMP threads of scikit-learn's
    methods (None: automatic)."""
    from .data.scaling import default_scaling
    from .data.sources import as_bundle

    methods = check_methods(methods)
    if latent_dim < 1:
        raise ConfigError(f"latent_dim must be >= 1, got {latent_dim}")
    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    bundle = as_bundle(data, data_dir=data_dir, test_fraction=test_fraction, seed=seed)
    x_tr, y_tr = bundle.x_train, bundle.y_train
    if max_train is not None:
        if max_train < 20:
            raise ConfigError(f"max_train must be >= 20, got {max_train}")
        if max_train < len(x_tr):
            idx = np.sort(np.random.default_rng(seed).choice(len(x_tr), max_train, replace=False))
            x_tr, y_tr = x_tr[idx], (y_tr[idx] if y_tr is not None else None)
    check_supervised(methods, y_tr, latent_dim)
    scaler = default_scaling(bundle, "bce").fit(x_tr)
    xs_tr = np.asarray(scaler.transform(x_tr), dtype=np.float32)
    xs_te = np.asarray(scaler.transform(bundle.x_test), dtype=np.float32)
    f_tr, f_te = xs_tr.reshape(len(xs_tr), -1), xs_te.reshape(len(xs_te), -1)
    y_te = bundle.y_test
    log = log or (lambda s: None)
    result = Comparison(rows=[], label_names=bundle.label_names)
    # the fits and the scores (k-means, kNN, trustworthiness) alike: OpenMP threads that spin-wait on a
    # busy machine cost more CPU time than the work itself
    with _thread_limit(threads):
        for m in methods:
            log(f"{m}: fitting on {len(f_tr)} examples of {f_tr.shape[1]} values ...")
            try:
                fitted = _fit_method(m, f_tr, xs_tr, y_tr, f_te, xs_te, latent_dim, epochs, seed, threads)
            except ImportError as e:
                result.notes.append(f"{m} skipped: {e}")
                log(f"{m}: skipped ({e})")
                continue
            row = _scored(m, fitted, f_tr, y_tr, f_te, y_te, seed)
            result.embeddings[m] = row.pop("embedding")
            result.rows.append(row)
            log(f"{m}: {row['fit_seconds']} s, kNN acc {row.get('knn_acc', float('nan')):.3f}")
    if "tsne" in methods:
        result.notes.append("t-SNE cannot embed new points: it is fitted on the training data and its scores "
                            "are computed on that embedding (kNN and probe: an 80/20 split of it).")
    if any(m in SUPERVISED for m in methods):
        result.notes.append("LDA is supervised: it is fitted with the training labels (column 'uses labels'), "
                            "so its kNN, probe and cluster scores are a reference for a linear map that knows "
                            "the classes, not a rival of the unsupervised methods; it has no inverse map.")
    result.notes.append(f"data {bundle.name}: {len(f_tr)} training, {len(f_te)} test examples, "
                        f"{f_tr.shape[1]} values each, scaled ({scaler.kind}); latent dim {latent_dim}; "
                        f"autoencoders trained {epochs} epochs; recon MSE in scaled units on the test data; "
                        "'-': the method has no inverse map.")
    result.markdown = to_markdown(result.rows, result.notes)
    if out is not None:
        result.files = write_comparison(result, Path(out))
    return result


def _scored(m: str, fitted: dict[str, Any], f_tr, y_tr, f_te, y_te, seed: int) -> dict[str, Any]:
    """Method ``m``'s row (with its plotted ``embedding``: codes and labels) from what it fitted."""
    row: dict[str, Any] = {"method": m, "uses_labels": m in SUPERVISED, "fit_seconds": round(fitted["seconds"], 2),
                           "recon_mse": fitted.get("recon_mse")}
    if fitted["z_test"] is None:  # t-SNE: metrics on its own training embedding
        z = fitted["z_train"]
        perm = np.random.default_rng(seed).permutation(len(z))
        cut = int(round(0.8 * len(z)))
        a, b = perm[:cut], perm[cut:]
        row["evaluated_on"] = "train (80/20 split)"
        if y_tr is not None:
            row.update(code_metrics(z[a], y_tr[a], z[b], y_tr[b], f_tr[b], seed=seed))
        row["embedding"] = (z, y_tr)
    else:
        row["evaluated_on"] = "test"
        if y_tr is not None and y_te is not None:
            row.update(code_metrics(fitted["z_train"], y_tr, fitted["z_test"], y_te, f_te, seed=seed))
        row["embedding"] = (fitted["z_test"], y_te)
    return row


def check_supervised(methods, y_train, latent_dim: int) -> None:
    """LDA needs labels and gives at most ``classes - 1`` dimensions: say so before anything is fitted."""
    for m in methods:
        if m not in SUPERVISED:
            continue
        if y_train is None:
            raise ConfigError(f"method {m!r} is supervised: it needs the training labels, and these data have none")
        k = len(np.unique(np.asarray(y_train)))
        if latent_dim > k - 1:
            raise ConfigError(f"method {m!r}: latent_dim {latent_dim} is more than classes - 1 = {k - 1} "
                              f"({k} classes in the training data); LDA gives at most classes - 1 dimensions")


def _thread_limit(threads: int | None):
    """BLAS and OpenMP threads of scikit-learn's fits (t-SNE's gradient, the eigensolvers) at ``threads``."""
    import contextlib

    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def _fit_method(m, f_tr, xs_tr, y_tr, f_te, xs_te, d, epochs, seed, threads=None) -> dict[str, Any]:
    t0 = time.perf_counter()
    res: dict[str, Any] = {}
    if m == "pca":
        from sklearn.decomposition import PCA

        est = PCA(n_components=d, random_state=seed).fit(f_tr)
        res["seconds"] = time.perf_counter() - t0
        res["z_train"], res["z_test"] = est.transform(f_tr), est.transform(f_te)
        res["recon_mse"] = float(((est.inverse_transform(res["z_test"]) - f_te) ** 2).mean())
    elif m == "kernel-pca":
        from sklearn.decomposition import KernelPCA

        est = KernelPCA(n_components=d, kernel="rbf", fit_inverse_transform=True, random_state=seed).fit(f_tr)
        res["seconds"] = time.perf_counter() - t0
        res["z_train"], res["z_test"] = est.transform(f_tr), est.transform(f_te)
        res["recon_mse"] = float(((est.inverse_transform(res["z_test"]) - f_te) ** 2).mean())
    elif m == "lda":
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        est = LinearDiscriminantAnalysis(n_components=d).fit(f_tr, y_tr)
        res["seconds"] = time.perf_counter() - t0
        res["z_train"], res["z_test"] = est.transform(f_tr), est.transform(f_te)
    elif m in ("isomap", "lle"):
        from sklearn.manifold import Isomap, LocallyLinearEmbedding

        if m == "isomap":
            est = Isomap(n_neighbors=NEIGHBOURS, n_components=d)
        else:
            est = LocallyLinearEmbedding(n_neighbors=NEIGHBOURS, n_components=d, random_state=seed,
                                         eigen_solver="dense" if len(f_tr) <= 3000 else "auto")
        z_train = est.fit_transform(f_tr)
        res["seconds"] = time.perf_counter() - t0
        res["z_train"], res["z_test"] = z_train, est.transform(f_te)
    elif m == "tsne":
        from sklearn.manifold import TSNE

        est = TSNE(n_components=d, init="pca", random_state=seed, perplexity=min(30.0, (len(f_tr) - 1) / 3),
                   method="barnes_hut" if d < 4 else "exact")
        res["z_train"] = est.fit_transform(f_tr)
        res["seconds"] = time.perf_counter() - t0
        res["z_test"] = None
    elif m == "umap":
        try:
            import umap  # noqa: F401
        except ImportError:
            raise ImportError("umap-learn is not installed (pip install 'hourglass-ae[umap]')") from None
        est = umap.UMAP(n_components=d, random_state=seed).fit(f_tr)
        res["seconds"] = time.perf_counter() - t0
        res["z_train"], res["z_test"] = est.embedding_, est.transform(f_te)
        if hasattr(est, "inverse_transform") and d == 2:
            try:
                res["recon_mse"] = float(((est.inverse_transform(res["z_test"]) - f_te) ** 2).mean())
            except Exception:  # noqa: BLE001 - UMAP's inverse map is optional and fragile
                pass
    else:
        res.update(_fit_autoencoder(m, xs_tr, y_tr, xs_te, d, epochs, seed, threads))
        res["seconds"] = time.perf_counter() - t0 - res.pop("eval_seconds")
    return res


def _fit_autoencoder(name, xs_tr, y_tr, xs_te, d, epochs, seed, threads=None) -> dict[str, Any]:
    from .config import build_config
    from .evaluate.codes import encode_all
    from .models import create
    from .training.trainer import TrainConfig, Trainer

    torch.manual_seed(seed)
    model = create(name, input_shape=tuple(xs_tr.shape[1:]), latent_dim=d)
    tcfg = build_config(TrainConfig, {"epochs": epochs, "seed": seed, "progress": False, "val_fraction": 0.0,
                                      "threads": threads})
    x_tr = torch.from_numpy(xs_tr)
    x_te = torch.from_numpy(xs_te)
    yt = torch.from_numpy(np.asarray(y_tr, dtype=np.int64)) if y_tr is not None else None
    Trainer(model, tcfg).fit(x_tr, yt)
    t0 = time.perf_counter()
    model.eval()
    with torch.no_grad():
        z_tr = encode_all(model, x_tr)
        z_te = encode_all(model, x_te)
        dev = model.device
        recon = torch.cat([model.reconstruct(x_te[s : s + 1024].to(dev)).cpu() for s in range(0, len(x_te), 1024)])
    mse = float(((recon - x_te) ** 2).mean())
    return {"z_train": z_tr, "z_test": z_te, "recon_mse": mse, "eval_seconds": time.perf_counter() - t0}


def _cell(v: Any, col: str = "") -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if col == "fit_seconds" and isinstance(v, (int, float)):
        return f"{v:.2f}"
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def to_markdown(rows: list[dict[str, Any]], notes: list[str]) -> str:
    lines = ["| " + " | ".join(HEADERS[c] for c in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(c), c) for c in COLUMNS) + " |")
    if notes:
        lines.append("")
        lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_comparison(result: Comparison, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path, png_path = out / "comparison.csv", out / "comparison.md", out / "comparison.png"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in result.rows:
            w.writerow({c: ("" if r.get(c) is None else _cell(r[c]) if isinstance(r[c], bool) else r[c])
                        for c in COLUMNS})
    md_path.write_text("# Embeddings compared\n\n" + result.markdown)
    plot_embeddings(png_path, result)
    return [csv_path, md_path, png_path]


def plot_embeddings(path: Path, result: Comparison) -> Path:
    """One scatter panel per method (top-2 PCs of wider embeddings), coloured by label; a supervised
    method's title says it uses the labels."""
    from .report.figures import new_figure, save_figure

    fig = new_figure((1, 1))
    embeddings_figure(fig, result)
    return save_figure(fig, path, tight=False)


def embeddings_figure(fig, result: Comparison) -> None:
    """Draw the panels of :func:`plot_embeddings` on ``fig``: each method's 2-D embedding (top-2 PCs of
    wider ones) in code units, one colour per class, and one legend naming the classes for all panels."""
    from .report.figures import class_scatter, top2

    names = [r["method"] for r in result.rows]
    n = max(1, len(names))
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig.set_size_inches(4 * cols + 1.4, 4 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    knn = {r["method"]: r.get("knn_acc") for r in result.rows}
    where = {r["method"]: r.get("evaluated_on") for r in result.rows}
    supervised = {r["method"] for r in result.rows if r.get("uses_labels")}
    for ax, name in zip(axes.flat, names):
        z, y = result.embeddings[name]
        z, xlabel, ylabel = top2(z)
        class_scatter(ax, z, y, result.label_names, legend=False)
        title = name + (" (training embedding)" if where[name] != "test" else "")
        title += " (uses labels)" if name in supervised else ""
        title += f"\nkNN acc {knn[name]:.3f}" if knn.get(name) is not None else ""
        outside = _zoom(ax, z)
        title += f", {outside} point{'s' if outside > 1 else ''} off the axes" if outside else ""
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel.replace(" of the codes", ""), fontsize=8)
        ax.set_ylabel(ylabel.replace(" of the codes", ""), fontsize=8)
        ax.tick_params(labelsize=7)
    spare = list(axes.flat)[n:]
    for ax in spare:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles and spare:  # the legend in an empty panel: it survives a later fig.tight_layout()
        spare[0].legend(handles, labels, title="class", loc="center", markerscale=3, fontsize=10, frameon=False,
                        ncol=2 if len(handles) > 6 else 1)
        fig.tight_layout()
    elif handles:
        fig.legend(handles, labels, title="class", loc="center right", markerscale=3, fontsize=9, frameon=False)
        fig.tight_layout(rect=(0, 0, 1 - 1.3 / (4 * cols + 1.4), 1))
    else:
        fig.tight_layout()


def _zoom(ax, z: np.ndarray, fences: float = 5.0) -> int:
    """Limit the axes to where the points are when a few far outliers (e.g. an LDA projection of a test
    image lit where every training image is dark) would squash the rest into a corner: each axis to
    ``[Q1 - 5 IQR, Q3 + 5 IQR]``, wider than Tukey's far fences (3 IQR: a Gaussian reaches past 5 IQR
    with probability about 1e-13, and the long arms of an LLE embedding, under 3 IQR, stay in),
    padded by 5%. Returns how many points that leaves off the axes (the panel's title says so)."""
    q1, q3 = np.percentile(z, [25, 75], axis=0)
    iqr = np.maximum(q3 - q1, 1e-12)
    lo, hi = np.maximum(z.min(0), q1 - fences * iqr), np.minimum(z.max(0), q3 + fences * iqr)
    off = ((z < lo) | (z > hi)).any(axis=1)
    if not off.any():
        return 0
    pad = 0.05 * (hi - lo)
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    return int(off.sum())
