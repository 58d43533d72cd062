#!/usr/bin/env python
"""Keras vs hourglass, side by side: the classic Keras autoencoder examples against hourglass' presets.

Each pair trains on the same data (MNIST from IDX files, scaled to [0, 1] by /255), for the same
number of epochs, with the same batch size and the same torch thread count, in the same process:

  keras-dense  the "Building Autoencoders in Keras" dense autoencoder, 784-32-784, batch 256
               vs hourglass.train("ae", preset="keras-dense")
  keras-conv   the same blog's convolutional autoencoder (4x4x8 code), batch 128
               vs hourglass.train("ae", preset="keras-conv")
  vae-mnist    an MLP VAE 784-512-(16)-512-784 written the way the Keras VAE example is
               (keras.Model subclass, custom train_step), batch 100
               vs hourglass.train("vae", preset="vae-mnist")

Test loss: the mean per-value binary cross-entropy for the two plain autoencoders (what Keras'
``model.evaluate`` returns; hourglass' ``recon_bce``), the negative ELBO in nats per example for the
VAE (one posterior sample per example for both). Fit time: the ``fit`` call only (no compile, no data
loading, no evaluation) for Keras, measured with ``time.perf_counter``; the trainer's ``fit_seconds``
for hourglass. The blog examples pass ``validation_data=(x_test, x_test)``, so Keras' ``fit`` also
evaluates the test set after every epoch; that time is measured with a callback and reported, and the
speed-up compares Keras' fit time *without* those validation passes to hourglass' (which runs no
validation with ``val_fraction=0``). ``--no-keras-validation`` drops validation_data altogether.

Usage (from the repository root, venv active):

    python benchmarks/keras_vs_hourglass.py                       # all three, 10 epochs
    python benchmarks/keras_vs_hourglass.py --epochs 1 --models keras-dense --threads 2
    python benchmarks/keras_vs_hourglass.py --repeats 3                           # median of 3 fit times

Results go to ``--out`` (default ``benchmarks/results/``, git-ignored) as ``keras_vs_hourglass.json``
and ``keras_vs_hourglass.md``.

Keras 3 runs on its torch backend (``KERAS_BACKEND=torch`` is set below, before keras is imported).
Versions used when this script was written, installed with a plain ``pip install keras`` into a venv
holding torch 2.13.0+cpu and numpy 2.4.6; pip left torch untouched (keras 3 does not depend on torch):
    keras 3.15.1, absl-py 2.5.1, h5py 3.16.0, ml-dtypes 0.6.0, namex 0.1.0, optree 0.20.0,
    rich 15.0.0 (+ markdown-it-py 4.3.0, mdurl 0.1.2)
Install with ``pip install 'hourglass-ae[keras]'``.
"""

from __future__ import annotations

import os

_PREVIOUS_KERAS_BACKEND = os.environ.get("KERAS_BACKEND")
os.environ["KERAS_BACKEND"] = "torch"  # must precede any `import keras`

import argparse  # noqa: E402
import datetime as _dt  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "mnist10k"
DEFAULT_OUT = REPO / "benchmarks" / "results"
KERAS_INSTALL_HINT = "pip install 'hourglass-ae[keras]'"


@dataclass(frozen=True)
class Spec:
    """One benchmark pair: the Keras reference and the hourglass preset it is compared with."""

    name: str
    hourglass_model: str
    batch_size: int
    loss_name: str  # what "test loss" means for this pair
    hourglass_metric: str  # key in run.metrics["test"]


SPECS: dict[str, Spec] = {
    s.name: s
    for s in (
        Spec("keras-dense", "ae", 256, "test BCE (mean per value)", "recon_bce"),
        Spec("keras-conv", "ae", 128, "test BCE (mean per value)", "recon_bce"),
        Spec("vae-mnist", "vae", 100, "test -ELBO (nats / example)", "neg_elbo"),
    )
}


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
@dataclass
class Mnist:
    x_train: np.ndarray  # uint8 (N, 28, 28)
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: Path) -> np.ndarray:
    """A tiny IDX reader (gzipped or not): magic 0x0000TTNN, NN big-endian uint32 sizes, then data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(dims))
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=4 + 4 * ndim)
    return arr.reshape(dims).astype(dtype.newbyteorder("="), copy=True)


def _idx_path(data_dir: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(f"no {stem}[.gz] in {data_dir}")


def read_mnist_idx(data_dir: Path) -> Mnist:
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        parts[f"x_{split}"] = read_idx(_idx_path(data_dir, f"{prefix}-images-idx3-ubyte"))
        parts[f"y_{split}"] = read_idx(_idx_path(data_dir, f"{prefix}-labels-idx1-ubyte"))
    return Mnist(**parts, source=f"IDX files in {data_dir} (local reader)")


def load_mnist(data_dir: Path) -> Mnist:
    """MNIST through ``hourglass.data.load_data`` when that exists (what hourglass.train reads), else
    through the local IDX reader. Both paths give uint8 images of shape (N, 28, 28)."""
    try:
        from hourglass.data import load_data  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - the module is being written; any import failure means "not yet"
        print(f"[data] hourglass.data.load_data not available ({type(exc).__name__}: {exc}); "
              f"reading the IDX files with the local reader")
        return read_mnist_idx(data_dir)
    try:
        b = load_data("mnist", data_dir=str(data_dir))
    except Exception as exc:  # noqa: BLE001
        print(f"[data] hourglass.data.load_data('mnist') failed ({type(exc).__name__}: {exc}); "
              f"reading the IDX files with the local reader")
        return read_mnist_idx(data_dir)

    def img(x):
        x = np.asarray(x)
        return x.reshape(len(x), 28, 28)

    data = Mnist(img(b.x_train), np.asarray(b.y_train), img(b.x_test), np.asarray(b.y_test),
                 source=f"hourglass.data.load_data('mnist', data_dir={str(data_dir)!r})")
    # Cross-check against the raw files: "same data" is the point of this benchmark.
    try:
        raw = read_mnist_idx(data_dir)
        same = all(np.array_equal(getattr(raw, k), getattr(data, k))
                   for k in ("x_train", "y_train", "x_test", "y_test"))
        if not same:
            print("[data] WARNING: hourglass.data.load_data differs from the raw IDX files; "
                  "using hourglass' arrays for both frameworks")
    except Exception:  # noqa: BLE001 - the loader may read other layouts than the raw IDX files
        pass
    return data


# ---------------------------------------------------------------------------------------------
# Keras side
# ---------------------------------------------------------------------------------------------
def import_keras():
    """keras (torch backend) or None with a clear message."""
    try:
        import keras  # noqa: F401
    except ImportError as exc:
        print(f"[keras] Keras 3 is not installed ({exc}).\n"
              f"[keras] Install it with:  {KERAS_INSTALL_HINT}\n"
              f"[keras] Running the hourglass side only.")
        return None
    if keras.backend.backend() != "torch":
        print(f"[keras] Keras is on the {keras.backend.backend()!r} backend, not torch; "
              f"skipping the Keras side (this benchmark compares on torch).")
        return None
    if not str(keras.__version__).startswith("3"):
        print(f"[keras] Keras {keras.__version__} found; this benchmark needs Keras 3 ({KERAS_INSTALL_HINT}).")
        return None
    if _PREVIOUS_KERAS_BACKEND not in (None, "torch"):
        print(f"[keras] note: KERAS_BACKEND={_PREVIOUS_KERAS_BACKEND!r} was overridden with 'torch'")
    return keras


def _fit_timer(keras):
    class FitTimer(keras.callbacks.Callback):
        """Per-epoch wall time and the time spent in the per-epoch validation passes inside fit()."""

        def __init__(self):
            super().__init__()
            self.val_seconds = 0.0
            self.epoch_seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t_epoch = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_seconds.append(time.perf_counter() - self._t_epoch)

        def on_test_begin(self, logs=None):
            self._t_val = time.perf_counter()

        def on_test_end(self, logs=None):
            self.val_seconds += time.perf_counter() - self._t_val

    return FitTimer()


def keras_dense(keras, x_train, x_test, epochs, validation):
    """The blog's simplest autoencoder, as published (functional API, Keras defaults throughout)."""
    from keras import layers

    encoding_dim = 32
    input_img = keras.Input(shape=(784,))
    encoded = layers.Dense(encoding_dim, activation="relu")(input_img)
    decoded = layers.Dense(784, activation="sigmoid")(encoded)
    autoencoder = keras.Model(input_img, decoded)
    autoencoder.compile(optimizer="adam", loss="binary_crossentropy")

    x_train = x_train.reshape(len(x_train), 784)
    x_test = x_test.reshape(len(x_test), 784)
    return _keras_fit_eval(keras, autoencoder, x_train, x_test, epochs, 256, validation)


def keras_conv(keras, x_train, x_test, epochs, validation, batch_size=128):
    """The blog's convolutional autoencoder, as published: (28,28,1) -> (4,4,8) code -> (28,28,1)
    (the blog trains it with batch 128)."""
    from keras import layers

    input_img = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(16, (3, 3), activation="relu", padding="same")(input_img)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2D(8, (3, 3), activation="relu", padding="same")(x)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2D(8, (3, 3), activation="relu", padding="same")(x)
    encoded = layers.MaxPooling2D((2, 2), padding="same")(x)  # (4, 4, 8)

    x = layers.Conv2D(8, (3, 3), activation="relu", padding="same")(encoded)
    x = layers.UpSampling2D((2, 2))(x)
    x = layers.Conv2D(8, (3, 3), activation="relu", padding="same")(x)
    x = layers.UpSampling2D((2, 2))(x)
    x = layers.Conv2D(16, (3, 3), activation="relu")(x)  # valid padding: 16 -> 14
    x = layers.UpSampling2D((2, 2))(x)
    decoded = layers.Conv2D(1, (3, 3), activation="sigmoid", padding="same")(x)

    autoencoder = keras.Model(input_img, decoded)
    autoencoder.compile(optimizer="adam", loss="binary_crossentropy")

    x_train = x_train.reshape(len(x_train), 28, 28, 1)  # channels_last, Keras' default
    x_test = x_test.reshape(len(x_test), 28, 28, 1)
    return _keras_fit_eval(keras, autoencoder, x_train, x_test, epochs, batch_size, validation)


def _keras_fit_eval(keras, model, x_train, x_test, epochs, batch_size, validation):
    timer = _fit_timer(keras)
    t0, c0 = time.perf_counter(), time.process_time()
    hist = model.fit(
        x_train, x_train,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        validation_data=(x_test, x_test) if validation else None,
        callbacks=[timer],
        verbose=0,
    )
    fit_seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    test_loss = float(model.evaluate(x_test, x_test, batch_size=batch_size, verbose=0))
    return _fit_result(model, hist, timer, fit_seconds, cpu_seconds, batch_size, test_loss=test_loss)


def _fit_result(model, hist, timer, fit_seconds, cpu_seconds, batch_size, **test) -> dict[str, Any]:
    """What every Keras fit reports: the test numbers, the timings (wall-clock, and the CPU seconds of
    the process, all its threads), the size and the history."""
    return {
        **test,
        "fit_seconds": fit_seconds,
        "fit_cpu_seconds": cpu_seconds,
        "val_seconds": timer.val_seconds,
        "train_seconds": fit_seconds - timer.val_seconds,
        "epoch_seconds": timer.epoch_seconds,
        "batch_size": batch_size,
        "params": int(model.count_params()),
        "history": {k: [float(v) for v in vals] for k, vals in hist.history.items()},
    }


def build_keras_vae(keras, original_dim=784, intermediate_dim=512, latent_dim=16, seed=1337):
    """An MLP VAE in the style of the Keras VAE example (Sampling layer, keras.Model subclass with a
    custom train_step). The loss maths uses keras.ops / keras.random only; the gradient step is the
    torch-backend one from the Keras guide "Customizing what happens in fit() with PyTorch" (Keras 3
    has no backend-neutral gradient API: TF uses GradientTape, JAX a stateless train_step)."""
    from keras import layers, ops

    class Sampling(layers.Layer):
        """z = mu + sigma * eps, eps ~ N(0, I)."""

        def __init__(self, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, inputs):
            z_mean, z_log_var = inputs
            epsilon = keras.random.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
            return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    encoder_inputs = keras.Input(shape=(original_dim,))
    h = layers.Dense(intermediate_dim, activation="relu")(encoder_inputs)
    z_mean = layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)
    z = Sampling(seed=seed)([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")

    latent_inputs = keras.Input(shape=(latent_dim,))
    h = layers.Dense(intermediate_dim, activation="relu")(latent_inputs)
    decoder_outputs = layers.Dense(original_dim, activation="sigmoid")(h)
    decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")

    class VAE(keras.Model):
        def __init__(self, encoder, decoder, **kwargs):
            super().__init__(**kwargs)
            self.encoder = encoder
            self.decoder = decoder
            self.total_loss_tracker = keras.metrics.Mean(name="loss")
            self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
            self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

        @property
        def metrics(self):
            return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

        def call(self, x):
            z_mean, _, _ = self.encoder(x)
            return self.decoder(z_mean)

        def per_example_losses(self, x):
            z_mean, z_log_var, z = self.encoder(x)
            reconstruction = self.decoder(z)
            # Bernoulli likelihood: BCE summed over the 784 pixels (Keras clips p to [1e-7, 1 - 1e-7]).
            reconstruction_loss = ops.sum(ops.binary_crossentropy(x, reconstruction), axis=1)
            kl_loss = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1)
            return reconstruction_loss + kl_loss, reconstruction_loss, kl_loss

        def _track(self, total, rec, kl):
            # Mean over the per-example vectors: batches are weighted by their size.
            self.total_loss_tracker.update_state(total)
            self.reconstruction_loss_tracker.update_state(rec)
            self.kl_loss_tracker.update_state(kl)
            return {m.name: m.result() for m in self.metrics}

        def train_step(self, data):
            x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
            self.zero_grad()  # torch backend: clear the previous step's gradients
            total, rec, kl = self.per_example_losses(x)
            loss = ops.mean(total)
            loss.backward()
            trainable_weights = self.trainable_weights[:]
            gradients = [v.value.grad for v in trainable_weights]
            with torch.no_grad():
                self.optimizer.apply(gradients, trainable_weights)
            return self._track(total, rec, kl)

        def test_step(self, data):
            x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
            total, rec, kl = self.per_example_losses(x)
            return self._track(total, rec, kl)

    vae = VAE(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3))
    return vae


def keras_vae(keras, x_train, x_test, epochs, validation, seed):
    vae = build_keras_vae(keras, seed=seed)
    x_train = x_train.reshape(len(x_train), 784)
    x_test = x_test.reshape(len(x_test), 784)
    batch_size = 100
    timer = _fit_timer(keras)
    t0, c0 = time.perf_counter(), time.process_time()
    # The Keras VAE example fits without validation data; so does this one (``validation`` unused).
    hist = vae.fit(x_train, epochs=epochs, batch_size=batch_size, shuffle=True, callbacks=[timer], verbose=0)
    fit_seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    ev = vae.evaluate(x_test, batch_size=batch_size, verbose=0, return_dict=True)
    return _fit_result(vae, hist, timer, fit_seconds, cpu_seconds, batch_size, test_loss=float(ev["loss"]),
                       test_reconstruction=float(ev["reconstruction_loss"]), test_kl=float(ev["kl_loss"]))


def run_keras(keras, name, data: Mnist, epochs, seed, validation):
    keras.utils.set_random_seed(seed)  # python, numpy and torch RNGs
    x_train = (data.x_train.astype(np.float32) / 255.0)
    x_test = (data.x_test.astype(np.float32) / 255.0)
    if name == "keras-dense":
        return keras_dense(keras, x_train, x_test, epochs, validation)
    if name == "keras-conv":
        return keras_conv(keras, x_train, x_test, epochs, validation)
    if name == "vae-mnist":
        return keras_vae(keras, x_train, x_test, epochs, validation, seed)
    raise ValueError(name)


# ---------------------------------------------------------------------------------------------
# hourglass side
# ---------------------------------------------------------------------------------------------
def import_hourglass_train():
    try:
        import hourglass
    except Exception as exc:  # noqa: BLE001
        print(f"[hourglass] cannot import hourglass ({type(exc).__name__}: {exc}); skipping the hourglass side")
        return None
    train = getattr(hourglass, "train", None)
    if train is None:
        print("[hourglass] hourglass.train is not available in this checkout yet; skipping the hourglass side")
    return train


def run_hourglass(train, spec: Spec, data_dir: Path, epochs, seed, data: Mnist):
    t0 = time.perf_counter()
    run = train(spec.hourglass_model, preset=spec.name, data="mnist", data_dir=str(data_dir),
                epochs=epochs, seed=seed, val_fraction=0.0, progress=False)
    wall = time.perf_counter() - t0
    m = run.metrics
    out: dict[str, Any] = {
        "test_loss": float(m["test"][spec.hourglass_metric]),
        "fit_seconds": float(m["fit_seconds"]),
        "train_call_seconds": wall,
        "test_metrics": {k: v for k, v in m["test"].items() if isinstance(v, (int, float))},
    }
    info = getattr(run, "info", {}) or {}
    tr, d = info.get("train", {}), info.get("data", {})
    out["batch_size"] = tr.get("batch_size")
    out["epochs"] = tr.get("epochs")
    out["n_train"], out["n_test"] = d.get("n_train"), d.get("n_test")
    out["scaling"] = d.get("scaling")
    try:
        out["params"] = int(sum(p.numel() for p in run.model.parameters()))
    except Exception:  # noqa: BLE001
        pass
    out["history"] = getattr(run, "history", None)
    # Like-for-like checks: same batch size, epochs, split sizes and scaling as the Keras side.
    problems = []
    if out["batch_size"] not in (None, spec.batch_size):
        problems.append(f"batch size {out['batch_size']} != Keras' {spec.batch_size}")
    if out["epochs"] not in (None, epochs):
        problems.append(f"epochs {out['epochs']} != {epochs}")
    if out["n_train"] not in (None, len(data.x_train)) or out["n_test"] not in (None, len(data.x_test)):
        problems.append(f"split {out['n_train']}/{out['n_test']} != {len(data.x_train)}/{len(data.x_test)}")
    try:
        probe = data.x_test[:256].reshape(-1, 1, 28, 28)
        scaled = np.asarray(run.scaler.transform(probe), dtype=np.float64).reshape(len(probe), -1)
        err = float(np.abs(scaled - probe.reshape(len(probe), -1) / 255.0).max())
        out["scaling_max_abs_diff_vs_div255"] = err
        if err > 1e-6:
            problems.append(f"hourglass scales the data differently from /255 (max abs diff {err:.3g})")
    except Exception:  # noqa: BLE001 - the check is best effort
        pass
    out["like_for_like_problems"] = problems
    for p in problems:
        print(f"[hourglass] WARNING {spec.name}: {p}")
    return out


def repeated(n: int, fn) -> dict[str, Any]:
    """Run ``fn`` n times (same seed: same losses, so only the clock differs) and report the median
    of each timing; the individual timings are kept under ``*_all``. Shared machines are noisy."""
    runs = [fn() for _ in range(n)]
    out = dict(runs[0])
    out["repeats"] = n
    for key in ("fit_seconds", "val_seconds", "train_seconds"):
        if all(key in r for r in runs):
            vals = [float(r[key]) for r in runs]
            out[f"{key}_all"] = vals
            out[f"{key}_min"] = min(vals)
            out[key] = float(np.median(vals))
    losses = [r["test_loss"] for r in runs]
    if max(losses) - min(losses) > 1e-6 * max(1.0, abs(losses[0])):
        out["test_loss_all"] = losses  # not bit-reproducible: keep every value, report the first
    return out


def over_seeds(seeds: list[int], fn) -> dict[str, Any]:
    """Run ``fn(seed)`` for every seed. A 10-epoch test loss moves by a few percent with the seed (the
    initial weights), so one seed cannot rank two frameworks: the result holds the mean test loss, the
    per-seed losses, and the median of the per-seed fit times."""
    runs = [fn(seed) for seed in seeds]
    out = dict(runs[0])
    out["seeds"] = list(seeds)
    out["per_seed"] = runs
    losses = [float(r["test_loss"]) for r in runs]
    out["test_loss_seeds"] = losses
    out["test_loss"] = float(np.mean(losses))
    out["test_loss_spread"] = float(max(losses) - min(losses))
    for key in ("fit_seconds", "val_seconds", "train_seconds"):
        if all(key in r for r in runs):
            out[key] = float(np.median([float(r[key]) for r in runs]))
    return out


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------
def _seed_losses(side: dict[str, Any]) -> str:
    return ", ".join(f"{v:.4f}" for v in side.get("test_loss_seeds", [side["test_loss"]]))


def _fmt(v, spec="{:.4f}"):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return spec.format(v)


def table_rows(results):
    rows = []
    for name, r in results.items():
        k, h = r.get("keras") or {}, r.get("hourglass") or {}
        kl, hl = k.get("test_loss"), h.get("test_loss")
        kfit, kval, ktrain = k.get("fit_seconds"), k.get("val_seconds"), k.get("train_seconds")
        hfit = h.get("fit_seconds")
        speed = ktrain / hfit if (ktrain and hfit) else None
        loss_ratio = hl / kl if (kl and hl is not None) else None
        loss_fmt = "{:.2f}" if name == "vae-mnist" else "{:.4f}"
        rows.append([
            name,
            SPECS[name].loss_name,
            _fmt(kl, loss_fmt),
            _fmt(hl, loss_fmt),
            _fmt(loss_ratio, "{:.3f}"),
            _fmt(kfit, "{:.2f}"),
            _fmt(kval, "{:.2f}"),
            _fmt(hfit, "{:.2f}"),
            _fmt(speed, "{:.2f}x"),
        ])
    return rows


HEADER = ["model", "test loss", "keras test loss", "hourglass test loss", "loss ratio (hg/keras)",
          "keras fit s", "of which keras val s", "hourglass fit s", "speed-up"]

FOOTNOTE = (
    "speed-up = (keras fit s - keras val s) / hourglass fit s: Keras' fit time without the per-epoch "
    "validation passes the blog examples ask for, over hourglass' fit time (which runs no validation). "
    "Both frameworks: same data, epochs, batch size, torch threads, one process."
)


def print_table(rows):
    widths = [max(len(str(x)) for x in col) for col in zip(HEADER, *rows)]
    line = " | ".join(h.ljust(w) for h, w in zip(HEADER, widths))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(str(x).ljust(w) for x, w in zip(r, widths)))
    print(FOOTNOTE)


def markdown(meta, rows, results):
    lines = [
        "# Keras vs hourglass",
        "",
        f"- date: {meta['created']}",
        f"- data: {meta['data']['source']} ({meta['data']['n_train']} train / {meta['data']['n_test']} test)",
        f"- epochs: {meta['epochs']}, seeds: {meta['seeds']} (test loss: mean over seeds), "
        f"fit times: median of {meta['repeats']} run(s) per seed over all seeds, "
        f"torch threads: {meta['torch_threads']}, "
        f"Keras validation_data: {meta['keras_validation']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v),
        f"- machine: {meta['machine']}",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" for _ in HEADER) + "|",
    ]
    lines += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    lines += ["", FOOTNOTE, ""]
    for name, r in results.items():
        for side in ("keras", "hourglass"):
            if r.get(side):
                lines.append(f"- {name} / {side}: test loss per seed {_seed_losses(r[side])}")
            err = r.get(f"{side}_error")
            if err:
                lines.append(f"- {name} / {side}: failed: `{err}`")
            for p in (r.get(side) or {}).get("like_for_like_problems", []) or []:
                lines.append(f"- {name} / {side}: WARNING {p}")
    return "\n".join(lines) + "\n"


def versions(keras):
    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    out["keras"] = getattr(keras, "__version__", None) if keras else None
    try:
        import hourglass

        out["hourglass"] = getattr(hourglass, "__version__", None)
    except Exception:  # noqa: BLE001
        out["hourglass"] = None
    return out


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        return obj.item()
    return str(obj)


def _load_note(when: str) -> float | None:
    """The 1-minute load average; a warning when other work competes for the CPUs (timings suffer)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    cpus = os.cpu_count() or 1
    if when == "before" and load > 0.5 * cpus:
        print(f"[timing] WARNING: load average {load:.2f} on {cpus} CPUs before the benchmark: other "
              f"processes are busy and the fit times will be noisy")
    return round(load, 2)


def warm_up_torch():
    """A few tiny forward/backward passes so neither side pays torch's first-call costs alone."""
    g = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(784, 32)
    conv = torch.nn.Conv2d(1, 8, 3, padding=1)
    for _ in range(3):
        x = torch.rand(64, 784, generator=g)
        (lin(x).relu().sum() + conv(x.view(64, 1, 28, 28)).relu().sum()).backward()


# ---------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                   help=f"folder with the MNIST IDX files (default {DEFAULT_DATA_DIR})")
    p.add_argument("--epochs", type=int, default=10, help="training epochs for every model (default 10)")
    p.add_argument("--models", default=",".join(SPECS),
                   help=f"comma-separated subset of {','.join(SPECS)} (default all)")
    p.add_argument("--seeds", default="0",
                   help="comma-separated seeds, each run by both frameworks; the table shows the mean test "
                        "loss over seeds and the median fit time (default 0)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads for both frameworks (default: torch's default)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results folder (default {DEFAULT_OUT})")
    p.add_argument("--repeats", type=int, default=1,
                   help="fit each model this many times and report the median fit time (default 1)")
    p.add_argument("--no-keras-validation", dest="keras_validation", action="store_false",
                   help="drop the blog examples' validation_data=(x_test, x_test) from Keras' fit")
    p.add_argument("--skip-keras", action="store_true", help="run the hourglass side only")
    p.add_argument("--skip-hourglass", action="store_true", help="run the Keras side only")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        args.seeds = [int(v) for v in args.seeds.split(",") if v.strip()]
    except ValueError:
        p.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    if not args.seeds:
        p.error("--seeds: give at least one seed")
    unknown = [m for m in args.models if m not in SPECS]
    if unknown or not args.models:
        p.error(f"--models: unknown {unknown}; choose from {','.join(SPECS)}")
    if args.epochs < 1:
        p.error("--epochs must be >= 1")
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    data = load_mnist(args.data_dir)
    print(f"[data] {data.source}: {len(data.x_train)} train / {len(data.x_test)} test, "
          f"images {data.x_train.shape[1:]} {data.x_train.dtype}")

    keras = None if args.skip_keras else import_keras()
    hg_train = None if args.skip_hourglass else import_hourglass_train()
    if keras is None and hg_train is None:
        print("nothing to run: neither Keras nor hourglass.train is available")
        return 1

    load_before = _load_note("before")
    warm_up_torch()
    results: dict[str, dict[str, Any]] = {}
    for name in args.models:
        spec = SPECS[name]
        r: dict[str, Any] = {"batch_size": spec.batch_size, "loss_name": spec.loss_name}
        print(f"\n== {name}: {args.epochs} epochs, batch {spec.batch_size}, {threads} torch threads ==")
        if keras is not None:
            try:
                r["keras"] = over_seeds(args.seeds, lambda seed: repeated(
                    args.repeats, lambda: run_keras(keras, name, data, args.epochs, seed, args.keras_validation)))
                k = r["keras"]
                print(f"[keras]     {spec.loss_name} = {k['test_loss']:.4f} (seeds: {_seed_losses(k)}); "
                      f"fit {k['fit_seconds']:.2f} s (of which validation {k['val_seconds']:.2f} s)")
            except Exception as exc:  # noqa: BLE001 - report and go on with the other side / models
                traceback.print_exc()
                r["keras_error"] = f"{type(exc).__name__}: {exc}"
        if hg_train is not None:
            try:
                r["hourglass"] = over_seeds(args.seeds, lambda seed: repeated(
                    args.repeats, lambda: run_hourglass(hg_train, spec, args.data_dir, args.epochs, seed, data)))
                h = r["hourglass"]
                print(f"[hourglass] {spec.loss_name} = {h['test_loss']:.4f} (seeds: {_seed_losses(h)}); "
                      f"fit {h['fit_seconds']:.2f} s")
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc()
                r["hourglass_error"] = f"{type(exc).__name__}: {exc}"
        results[name] = r

    load_after = _load_note("after")
    rows = table_rows(results)
    print()
    print_table(rows)

    meta = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "epochs": args.epochs,
        "seeds": args.seeds,
        "repeats": args.repeats,
        "torch_threads": threads,
        "keras_validation": bool(args.keras_validation),
        "data": {"dir": str(args.data_dir), "source": data.source,
                 "n_train": len(data.x_train), "n_test": len(data.x_test), "scaling": "x / 255, float32"},
        "versions": versions(keras),
        "load_average_1min": {"before": load_before, "after": load_after},
        "machine": f"{platform.platform()}, {platform.processor() or platform.machine()}, "
                   f"{os.cpu_count()} logical CPUs",
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "keras_vs_hourglass.json").write_text(
        json.dumps(_jsonable({"meta": meta, "table": {"header": HEADER, "rows": rows}, "results": results}),
                   indent=2) + "\n")
    (args.out / "keras_vs_hourglass.md").write_text(markdown(meta, rows, results))
    print(f"\nwrote {args.out / 'keras_vs_hourglass.json'} and {args.out / 'keras_vs_hourglass.md'}")
    failed = any("keras_error" in r or "hourglass_error" in r for r in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
