"""scikit-learn estimators for the autoencoder family: a transformer and an outlier detector.

* :class:`AutoencoderTransformer`: ``fit(X, y=None)``; ``transform`` = the codes (the posterior mean for
  VAE-type models); ``inverse_transform`` = decode; ``score_samples`` (higher = more typical); ``sample``
  for generative models; ``get_feature_names_out`` (``ae0, ae1, ...``, prefixed with the model's name);
  ``set_output(transform="pandas")``.
* :class:`AutoencoderOutlierDetector`: IsolationForest's conventions, ``fit``, ``score_samples``,
  ``decision_function = score_samples - offset_``, ``predict`` (+1 inlier, -1 outlier), ``fit_predict``.

Any registered model with an encoder works, by name (``hourglass list``); the GAN has none and is refused.
Both estimators train through the library itself (:func:`hourglass.run.fit.train_arrays`: the
registry builds the model, the run's :class:`~hourglass.data.Scaler` is fitted on the training part,
the generic trainer trains it) and keep the result as a :class:`~hourglass.run.Run` in ``run_``.

**The score** is the model's own anomaly score (``Autoencoder.anomaly_score``), negated so that higher
means more normal, as in scikit-learn: minus the mean per-value reconstruction error in the model's
likelihood (BCE for ``recon_loss="bce"``, squared error for ``"mse"``), or for VAE-type models the
ELBO (nats), estimated with draws shared by every example so that an example's score depends neither
on chance nor on the batch it is in.

**The threshold** ``offset_`` (``predict`` calls an example an outlier when its score is below it):

* ``contamination=c`` (a fraction in (0, 0.5]): the c-quantile of the calibration scores, so a fraction
  c of them fall below it;
* ``contamination="auto"``: Tukey's lower fence Q1 - 1.5 IQR of the calibration scores (the boxplot
  rule; no assumed outlier fraction).

The calibration scores are those of the data passed to ``fit`` (``calibration="fit"``, IsolationForest's
convention), or of the validation split ``fit`` holds out and the network never trains on
(``calibration="validation"``, ``val_fraction`` of X): a network scores the examples it was trained
on better than new ones from the same distribution, so a threshold set on them flags more new inliers
than asked; one set on held-out data does not.

**Labels.** Conditional models (``cvae``) train on class labels ``y`` (any values; ``classes_`` holds
them) and take them in every method as an optional ``y`` argument; without it, a semi-supervised one
(``model_params={"semi_supervised": True}``) labels examples with its own classifier q(y|x), and any
other raises. A pipeline passes no labels to ``transform``, and ``fit_transform(X, y)`` is
``fit(X, y).transform(X)`` as scikit-learn defines it, so that training and new data are encoded
alike: in a pipeline, use a semi-supervised cvae. Other models ignore ``y`` (the AAE with
``use_labels`` trains on it).

**Precision.** The networks compute in float32, as PyTorch models do: an example's outputs can differ in
float32's last bit (about 1e-7, relative) with the batch it is computed in, since BLAS sums a row in
another order when it is alone (a matrix-vector product) or elsewhere in a matrix.

**Persistence.** ``save(path)`` writes the run directory (``model.safetensors``, ``config.json``:
what ``hourglass load`` and ``hourglass export`` read) plus ``estimator.json`` (the parameters and the
fitted attributes); ``load(path)`` reads it back. A fitted estimator also pickles (joblib, ``clone`` of
a fitted pipeline, ``GridSearchCV`` with ``n_jobs``): its state holds the weights as safetensors bytes
and the run's record as JSON text, never a pickled torch module.
"""

from __future__ import annotations

import contextlib
import numbers
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from .errors import CheckpointError, ConfigError, HourglassError

__all__ = ["AutoencoderOutlierDetector", "AutoencoderTransformer"]

ESTIMATOR_FILE = "estimator.json"
ESTIMATOR_FORMAT = 1
SCORE_BATCH = 1024
# Options the estimators set from their own parameters: model_params may not repeat them.
OWN_OPTIONS = ("latent_dim", "hidden", "epochs", "batch_size", "lr", "recon_loss", "scaling", "val_fraction",
               "patience", "seed", "device", "threads", "progress", "input_shape")


def _model_class(name: Any) -> type:
    from .models import get_model_class
    from .models.base import Autoencoder

    if not isinstance(name, str):
        raise ConfigError(f"model must be a model name such as 'ae' or 'vae', got {name!r}")
    cls = get_model_class(name)
    if not issubclass(cls, Autoencoder):
        raise ConfigError(f"model {name!r} has no encoder: it can be neither a transformer nor a detector "
                          f"(train it with hourglass.train({name!r}, X) and draw from it with run.sample)")
    return cls


def _python(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return type(value)(_python(v) for v in value)
    return value


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's thread count set to ``threads`` for the block and restored after (None: left alone)."""
    if threads is None:
        yield
        return
    from .threads import ThreadGovernor

    governor = ThreadGovernor(threads)
    governor.start()
    try:
        yield
    finally:
        governor.stop()


class _AutoencoderEstimator(BaseEstimator):
    """What both estimators share: the parameters, training, scoring, labels and persistence."""

    def __init__(self, model="ae", latent_dim=2, *, hidden=None, epochs=30, batch_size=64, lr=1e-3,
                 recon_loss="mse", scaling="auto", val_fraction=0.1, patience=0, input_shape=None,
                 model_params=None, random_state=None, device="auto", threads=None, verbose=0):
        self.model = model
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.recon_loss = recon_loss
        self.scaling = scaling
        self.val_fraction = val_fraction
        self.patience = patience
        self.input_shape = input_shape
        self.model_params = model_params
        self.random_state = random_state
        self.device = device
        self.threads = threads
        self.verbose = verbose

    # -- scikit-learn's machinery -----------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = self._conditional()
        return tags

    def _conditional(self) -> bool:
        try:
            return bool(_model_class(self.model).conditional)
        except HourglassError:
            return False

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "run_")

    @property
    def model_(self):
        """The trained torch module (``run_.model``)."""
        return self.run_.model

    @property
    def scaler_(self):
        """The scaling fitted on the training part of X (``run_.scaler``)."""
        return self.run_.scaler

    @property
    def history_(self) -> list[dict[str, Any]]:
        """Per-epoch training (and validation) losses."""
        return self.run_.history

    # -- fit ----------------------------------------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        """The keyword arguments of ``train_arrays`` that the parameters ask for."""
        if not isinstance(self.model_params, (dict, type(None))):
            raise ConfigError(f"model_params must be a dict of option names to values, got {self.model_params!r}")
        extra = dict(self.model_params or {})
        clash = sorted(set(extra) & set(OWN_OPTIONS))
        if clash:
            raise ConfigError(f"model_params sets {clash[0]!r}, which is a parameter of the estimator itself: "
                              f"set it as {type(self).__name__}({clash[0]}=...)")
        if not isinstance(self.verbose, numbers.Integral):
            raise ConfigError(f"verbose must be a whole number, got {self.verbose!r}")
        options: dict[str, Any] = dict(
            extra, latent_dim=self.latent_dim, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            recon_loss=self.recon_loss, scaling=self.scaling, val_fraction=self.val_fraction, patience=self.patience,
            device=self.device, threads=self.threads, progress=self.verbose > 0,
            seed=check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        if self.hidden is not None:
            options["hidden"] = self.hidden
        # The library's options are typed (checked by TrainConfig and the model's config): NumPy scalars,
        # as parameter grids made with np.arange hold, become the Python numbers they stand for.
        return {k: _python(v) for k, v in options.items()}

    def _example_shape(self, n_features: int) -> tuple[int, ...]:
        if self.input_shape is None:
            return (n_features,)
        shape = tuple(self.input_shape) if isinstance(self.input_shape, (tuple, list)) else None
        if (shape is None or len(shape) not in (1, 3)
                or not all(isinstance(s, numbers.Integral) and s >= 1 for s in shape)):
            raise ConfigError(f"input_shape must be None, (D,) or (C, H, W), got {self.input_shape!r}")
        if int(np.prod(shape)) != n_features:
            raise ConfigError(f"input_shape {shape} holds {int(np.prod(shape))} values, but X has {n_features} "
                              "features")
        return shape

    def _fit(self, X, y):
        """Validate, train through the library; returns the run's splits (for calibration)."""
        from .run import Run
        from .run.fit import train_arrays

        cls = _model_class(self.model)
        # Conditional models need class labels; others that can use them (the AAE with use_labels) take
        # them when they are class labels, and ignore anything else, as every other model does.
        uses_labels = cls.conditional or ("num_classes" in cls.config_cls.__dataclass_fields__ and y is not None
                                          and type_of_target(y) in ("binary", "multiclass"))
        if uses_labels:
            X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2)
            check_classification_targets(y)
            classes, y_index = np.unique(y, return_inverse=True)
        else:
            X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
            classes, y_index = None, None
        shape = self._example_shape(X.shape[1])
        options = self._options()
        with warnings.catch_warnings():
            # torch.from_numpy warns about read-only arrays (memory maps); the data are copied when scaled.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            run = train_arrays(self.model, X.reshape(len(X), *shape), y_index, source="scikit-learn X", **options)
        splits = run.splits()
        # Keep the model, not the training data: the Run without its cached splits.
        self.run_ = Run(run.model, run.scaler, run.record, run.history, run.metrics)
        if uses_labels and run.model.num_classes is not None:
            self.classes_ = classes
        return splits

    # -- labels -------------------------------------------------------------------------------------
    def _label_index(self, y, n: int) -> np.ndarray | None:
        """``y`` as class indices (labels as in fit). For a conditional model without ``y``: -1 (unknown)
        when it can guess labels itself, else None (the run then says that labels are needed)."""
        if not hasattr(self, "classes_"):
            return None
        if y is None:
            return np.full(n, -1, dtype=np.int64) if self.run_.model.accepts_unknown_labels else None
        y = column_or_1d(y, warn=True)
        if len(y) != n:
            raise ValueError(f"y has {len(y)} labels for {n} examples")
        try:
            index = np.clip(np.searchsorted(self.classes_, y), 0, len(self.classes_) - 1)
            unseen = self.classes_[index] != y
        except TypeError:  # labels of another type than the classes (numbers for names, ...)
            unseen = np.ones(len(y), dtype=bool)
        if unseen.any():
            raise ValueError(f"y contains labels not seen in fit: {list(np.unique(y[unseen]))[:5]}; "
                             f"the classes are {list(self.classes_)}")
        return index.astype(np.int64)

    def _conditional_labels(self, y, n: int) -> np.ndarray | None:
        return self._label_index(y, n) if self.run_.model.conditional else None

    # -- scoring --------------------------------------------------------------------------------------
    def score_samples(self, X, y=None) -> np.ndarray:
        """How typical each example is, higher = more normal: minus the reconstruction error (mean per
        value, in the model's likelihood), or the ELBO for VAE-type models (see the module docstring).
        ``y``: labels, for conditional models."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self._scores(self.run_.prepare(X), self._conditional_labels(y, len(X)))

    def _scores(self, x, y_index: np.ndarray | None) -> np.ndarray:
        """Scores of scaled examples ``x`` (a tensor in the model's space)."""
        import torch

        from .evaluate.anomaly import anomaly_scores

        if self.run_.model.conditional and y_index is None:
            raise ValueError(f"model {self.model!r} is conditional: pass the labels y")
        yt = torch.as_tensor(y_index) if y_index is not None else None
        with _torch_threads(self.threads):
            scores, _ = anomaly_scores(self.run_.model, x, yt, SCORE_BATCH)
        return -scores.astype(np.float64)

    # -- persistence ----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fitted estimator to the folder ``path``: the run directory (weights as safetensors,
        ``config.json``, ``history.csv``) and ``estimator.json`` (parameters, fitted attributes)."""
        from .training.checkpoint import write_json

        check_is_fitted(self)
        path = self.run_.save(Path(path))
        params = self.get_params(deep=False)
        if not isinstance(params["random_state"], (numbers.Integral, type(None))):
            warnings.warn(f"random_state {params['random_state']!r} is not saved: the loaded estimator has "
                          "random_state=None", UserWarning, stacklevel=2)
            params["random_state"] = None
        fitted: dict[str, Any] = {"n_features_in_": int(self.n_features_in_)}
        for name in ("feature_names_in_", "classes_"):
            if hasattr(self, name):
                fitted[name] = getattr(self, name).tolist()
        fitted.update(self._fitted_extra())
        write_json(path / ESTIMATOR_FILE, {"format": ESTIMATOR_FORMAT, "estimator": type(self).__name__,
                                           "params": params, "fitted": fitted})
        return path

    def _fitted_extra(self) -> dict[str, Any]:
        return {}

    @classmethod
    def load(cls, path: str | Path):
        """A fitted estimator from a folder written by :meth:`save`."""
        from .run import Run
        from .training.checkpoint import read_json

        path = Path(path)
        record = read_json(path / ESTIMATOR_FILE)
        where = path / ESTIMATOR_FILE
        if not isinstance(record, dict) or record.get("format") != ESTIMATOR_FORMAT:
            raise CheckpointError(f"{where}: not an estimator record of format {ESTIMATOR_FORMAT}")
        if record.get("estimator") != cls.__name__:
            raise CheckpointError(f"{where} holds a {record.get('estimator')!r}; load it with that class, "
                                  f"not {cls.__name__}")
        try:
            est = cls(**record["params"])
            fitted = dict(record["fitted"])
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"{where} is damaged: {e!r}") from None
        est.run_ = Run.load(path, device=est.device)
        est.n_features_in_ = int(fitted.pop("n_features_in_"))
        unknown = sorted(set(fitted) - {"feature_names_in_", "classes_", "offset_"})
        if unknown:
            raise CheckpointError(f"{where}: unknown fitted attribute {unknown[0]!r}")
        for name, value in fitted.items():
            if name == "offset_":
                est.offset_ = float(value)
            else:
                setattr(est, name, np.asarray(value, dtype=object if name == "feature_names_in_" else None))
        return est

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: object.__getstate__ may hand out __dict__ itself
        run = state.pop("run_", None)
        if run is not None:  # no pickle of torch objects: the run's record as JSON, its weights as safetensors
            from .run import store

            state["run_"] = store.to_state(run.model, run.record, run.history, run.metrics)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        record = state.get("run_")
        if isinstance(record, dict):
            state = dict(state, run_=_run_from_record(record, state.get("device", "auto")))
        super().__setstate__(state)


def _run_from_record(record: dict[str, Any], device: str):
    """The :class:`~hourglass.run.Run` of a pickled estimator, through the one store: checked as a run
    directory's is (the record, the model's memory, the weights' names and shapes, then their values)."""
    from .run import Run, store

    return Run(*store.from_state(record, device))


class AutoencoderTransformer(TransformerMixin, _AutoencoderEstimator):
    """Any autoencoder of the family as a scikit-learn transformer: ``transform`` = its codes.

    Parameters
    ----------
    model : str, default="ae"
        A registered model with an encoder (``hourglass list``): ae, dae, sparse, contractive, stacked,
        vae, cvae, aae.
    latent_dim : int, default=2
        Size of the code: the number of output features of ``transform``.
    hidden : tuple of int or None, default=None
        MLP hidden widths, encoder order (None: the model's default, (256, 128)).
    epochs, batch_size, lr : training length, examples per step, Adam's learning rate.
    recon_loss : {"mse", "bce"}, default="mse"
        The likelihood: "mse" (Gaussian) for real-valued features, standardised by ``scaling="auto"``;
        "bce" (Bernoulli) for values in [0, 1], min-max scaled (and clipped) by ``scaling="auto"``.
    scaling : {"auto", "standard", "minmax", "none"}, default="auto"
        Scaling fitted on the training part of X and applied to every input (undone on outputs).
    val_fraction : float, default=0.1
        Fraction of X held out in ``fit`` for the validation loss (``history_``), early stopping
        (``patience`` epochs without improvement; 0: off) and the detector's ``calibration="validation"``.
    input_shape : tuple or None, default=None
        The shape the network sees each row as, e.g. (1, 8, 8) with ``model_params={"architecture":
        "conv"}`` for 8x8 images given as 64 columns (None: the row itself).
    model_params : dict or None, default=None
        Further options of ``hourglass.train`` by name: model config fields (``beta``, ``noise``,
        ``sparsity``, ``semi_supervised``, ...: ``hourglass list --fields MODEL``) or training options
        (``grad_clip``, ...).
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the initial weights and the shuffling.
    device : str, default="auto"
        "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
    threads : int or None, default=None
        torch CPU threads while fitting and predicting (None: automatic while fitting, torch's own
        setting while predicting).
    verbose : int, default=0
        > 0 shows a progress bar while fitting.

    Attributes
    ----------
    run_ : hourglass.Run
        The trained run: model, scaling, record. ``model_``, ``scaler_`` and ``history_`` are its parts.
    n_features_in_, feature_names_in_ : as in scikit-learn.
    classes_ : ndarray
        The class labels seen in fit (models that take labels only).
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # the network computes in float32
        return tags

    def fit(self, X, y=None):
        """Train the model on X (labels ``y`` for conditional models; ignored by the others)."""
        self._fit(X, y)
        return self

    def transform(self, X, y=None) -> np.ndarray:
        """The codes of X, ``(n_samples, latent_dim)`` float32 (the posterior mean for VAE-type models)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        with _torch_threads(self.threads):
            return self.run_.encode(X, self._conditional_labels(y, len(X)), batch_size=SCORE_BATCH)

    def inverse_transform(self, X, y=None) -> np.ndarray:
        """Decode codes ``X`` ``(n_samples, latent_dim)`` to data in X's original units."""
        check_is_fitted(self)
        Z = check_array(X, dtype=[np.float64, np.float32])
        if Z.shape[1] != self.run_.model.latent_dim:
            raise ValueError(f"X has {Z.shape[1]} features, but {type(self).__name__}.inverse_transform is "
                             f"expecting codes of {self.run_.model.latent_dim} features as input")
        with _torch_threads(self.threads):
            out = self.run_.decode(Z, self._conditional_labels(y, len(Z)), batch_size=SCORE_BATCH)
        return out.reshape(len(Z), -1)

    def sample(self, n_samples: int = 1, *, y=None, random_state=None) -> np.ndarray:
        """``n_samples`` new examples, ``(n_samples, n_features)`` in X's units, for generative models
        (vae, cvae, aae). ``y``: one label for all, or one per sample (models that take labels;
        default: drawn at random). ``random_state`` makes the draw repeatable."""
        check_is_fitted(self)
        seed = None if random_state is None else int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
        labels = None
        if y is not None:
            if not hasattr(self, "classes_"):
                raise ConfigError(f"model {self.model!r} takes no labels")
            many = np.ndim(y) > 0
            labels = self._label_index(np.atleast_1d(y) if many else np.full(1, y), n_samples if many else 1)
            labels = labels if many else int(labels[0])
        with _torch_threads(self.threads):
            out = self.run_.sample(n_samples, labels, seed=seed)
        return out.reshape(n_samples, -1)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the code's features: the model's name and the index, ``ae0, ae1, ...``."""
        check_is_fitted(self)
        if input_features is not None:
            input_features = np.asarray(input_features, dtype=object)
            if len(input_features) != self.n_features_in_:
                raise ValueError(f"input_features should have length equal to number of features "
                                 f"({self.n_features_in_}), got {len(input_features)}")
            if hasattr(self, "feature_names_in_") and not np.array_equal(input_features, self.feature_names_in_):
                raise ValueError("input_features is not equal to feature_names_in_")
        return np.asarray([f"{self.model}{i}" for i in range(self.run_.model.latent_dim)], dtype=object)


class AutoencoderOutlierDetector(OutlierMixin, _AutoencoderEstimator):
    """An autoencoder as an outlier (novelty) detector with IsolationForest's conventions.

    ``score_samples`` (higher = more normal), ``decision_function = score_samples - offset_`` (negative
    for outliers), ``predict`` (+1 inlier, -1 outlier). The parameters are :class:`AutoencoderTransformer`'s
    and:

    contamination : "auto" or float in (0, 0.5], default="auto"
        The expected fraction of outliers: ``offset_`` is that quantile of the calibration scores;
        "auto": Tukey's lower fence Q1 - 1.5 IQR of them.
    calibration : {"fit", "validation"}, default="fit"
        Whose scores set ``offset_``: the data passed to ``fit``, or the validation split held out of
        them (``val_fraction``), which the network never trains on.

    Attributes: those of the transformer, and ``offset_`` (the threshold on ``score_samples``).
    """

    def __init__(self, model="ae", latent_dim=2, *, contamination="auto", calibration="fit", hidden=None,
                 epochs=30, batch_size=64, lr=1e-3, recon_loss="mse", scaling="auto", val_fraction=0.1,
                 patience=0, input_shape=None, model_params=None, random_state=None, device="auto", threads=None,
                 verbose=0):
        super().__init__(model=model, latent_dim=latent_dim, hidden=hidden, epochs=epochs, batch_size=batch_size,
                         lr=lr, recon_loss=recon_loss, scaling=scaling, val_fraction=val_fraction, patience=patience,
                         input_shape=input_shape, model_params=model_params, random_state=random_state,
                         device=device, threads=threads, verbose=verbose)
        self.contamination = contamination
        self.calibration = calibration

    def fit(self, X, y=None):
        """Train on X (mostly inliers; labels ``y`` for conditional models) and set the threshold."""
        c = self.contamination
        if not (c == "auto" or (isinstance(c, numbers.Real) and not isinstance(c, bool) and 0 < c <= 0.5)):
            raise ConfigError(f"contamination must be 'auto' or a fraction in (0, 0.5], got {c!r}")
        if self.calibration not in ("fit", "validation"):
            raise ConfigError(f"calibration must be 'fit' or 'validation', got {self.calibration!r}")
        if self.calibration == "validation" and not (isinstance(self.val_fraction, numbers.Real)
                                                     and self.val_fraction > 0):
            raise ConfigError("calibration='validation' sets the threshold on the validation split: it needs "
                              f"val_fraction > 0, got {self.val_fraction!r}")
        splits = self._fit(X, y)
        if self.calibration == "validation":
            y_val = splits.y_val_seen.numpy() if (splits.y_val_seen is not None and self.run_.model.conditional) \
                else None
            scores = self._scores(splits.x_val, y_val)
        else:
            scores = self.score_samples(X, y)
        if c == "auto":
            q1, q3 = np.percentile(scores, [25, 75])
            self.offset_ = float(q1 - 1.5 * (q3 - q1))
        else:
            self.offset_ = float(np.percentile(scores, 100.0 * c))
        return self

    def _fitted_extra(self) -> dict[str, Any]:
        return {"offset_": self.offset_}

    def decision_function(self, X, y=None) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers, positive for inliers."""
        return self.score_samples(X, y) - self.offset_

    def predict(self, X, y=None) -> np.ndarray:
        """+1 for inliers, -1 for outliers."""
        decision = self.decision_function(X, y)
        labels = np.ones(decision.shape[0], dtype=int)
        labels[decision < 0] = -1
        return labels

    def fit_predict(self, X, y=None, **kwargs) -> np.ndarray:
        """``fit(X, y).predict(X, y)``: +1 for inliers, -1 for outliers of the training data."""
        return self.fit(X, y, **kwargs).predict(X, y)
