#!/usr/bin/env python
"""Every peer comparison in one sitting, with the machine's own matmul peak as the yardstick.

Writes ``benchmarks/results.md`` and ``benchmarks/results.json`` (and ``docs/figures/scaling.png``):

1. **Peak.** The GFLOP/s of a square matrix product in float32 and bfloat16 at the benchmark's
   thread count (2048 x 2048, or the largest power of two whose product takes about a second where
   a precision runs slowly), measured at the start and at the end; the table uses the median.
2. **Peers, side by side.** For each seed, each peer's fit and hourglass' fit of the same network on
   the same data (``../shared/data/mnist10k``, 8,000 train / 2,000 test, /255), same epochs, batch
   size and torch threads, one after the other in this process:

   =============  =====================================================  ====================  =====
   pair           peer                                                   hourglass             batch
   =============  =====================================================  ====================  =====
   dense AE       Keras 3 (torch backend), the blog's 784-32-784          preset ``keras-dense``  256
   conv AE        Keras 3, the blog's conv AE (4x4x8 code)                preset ``keras-conv``   256
   VAE            Keras 3 VAE, custom ``train_step`` (784-512-16)         preset ``vae-mnist``    100
   VAE            pythae 0.1.2 ``VAE`` + ``BaseTrainer`` (784-512-16)     preset ``vae-mnist``    100
   =============  =====================================================  ====================  =====

   Fit time: the peer's ``fit``/``train()`` call (Keras without validation data) against hourglass'
   ``fit_seconds``; the ratio is peer / hourglass of the medians over seeds. The same fits are also
   timed in CPU seconds (``time.process_time`` around the peer's call and around hourglass'
   ``Trainer.fit``: the process' time on a core, all threads), which the waits other processes cause
   on a shared machine do not inflate; a second table gives those ratios. Test loss, computed by
   each library's own code: mean per-pixel BCE (AEs), negative ELBO with one posterior sample and
   the importance-weighted NLL with 100 samples (VAE), in nats; the mean over seeds. GFLOP/s =
   training FLOPs counted from the layer shapes (below) x examples x epochs / fit seconds, and its
   share of the float32 peak (everything here trains in float32; see "bf16" in the README).
3. **Training options.** hourglass alone, seed 0, ``--lever-epochs`` epochs, the ``keras-conv`` and
   ``vae-mnist`` presets with their defaults against ``channels_last=False``, ``reuse_memory=False``
   and ``compile=True`` (and ``precision="bf16"`` where the CPU runs it natively), each fit in a
   fresh process.
4. **Scaling.** The ``vae-mnist`` network trained by hourglass' trainer on 1x, 2x, 4x and 8x the data
   (1,000 to 8,000 digits) and with its hidden width and code size doubling (128/4 to 2048/64):
   the log-log slope of time against data and against counted FLOPs (1 = linear), and the figure.

FLOPs per example: a layer with M multiply-adds per example costs 2M forward, 2M for its weight
gradient and 2M for its input gradient; the first layer has no input gradient (the data need none).
An upsampled convolution is counted as the full-resolution convolution it computes.

Every fit runs in a fresh process (this script with ``--one-fit``), each library with its own
defaults: nothing one side sets up (hourglass' ``reuse_memory`` changes the process' allocator for
good; Keras' and torch's caches) carries over to the other.

A peer that is not installed is skipped with a note in the results (``pip install 'hourglass-ae[keras]'``,
``'hourglass-ae[pythae]'``), never replaced by anything. The machine may be shared: every time is a
median, the peers and hourglass alternate per seed, and the load average is recorded before and after.

    python benchmarks/run_all.py --threads 2                  # 50 epochs, seeds 0,1,2 (about 30 min)
    python benchmarks/run_all.py --epochs 1 --seeds 0 --scaling-epochs 1 --out /tmp/quick   # a smoke run
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import keras_vs_hourglass as kvh  # noqa: E402  (sets KERAS_BACKEND=torch before keras can be imported)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import hourglass  # noqa: E402
from hourglass.evaluate.metrics import evaluate  # noqa: E402
from hourglass.options import TrainConfig  # noqa: E402
from hourglass.training.speed import keep_freed_memory  # noqa: E402
from hourglass.training.trainer import Trainer  # noqa: E402

REPO = HERE.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist10k"
FIGURE = REPO / "docs" / "figures" / "scaling.png"


# -- the yardstick ------------------------------------------------------------------------------------
def matmul_gflops(dtype: torch.dtype, size: int = 2048, budget_s: float = 1.0, device: str = "cpu") -> dict[str, Any]:
    """GFLOP/s of an n x n product (median of repeats); n grows from 256 to ``size`` unless one product
    outgrows the time budget first, so that a precision the CPU only emulates is measured in seconds,
    not hours. On a GPU each product is timed to its end (the device is synchronised)."""
    def sync() -> None:
        if device != "cpu":
            torch.cuda.synchronize(device)

    def timed() -> float:
        sync()
        t = time.perf_counter()
        a @ b
        sync()
        return time.perf_counter() - t

    n = 256
    while True:
        a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
        timed()  # the first call of a shape may pick its kernel
        one = timed()
        if n >= size or one * 8 > budget_s:
            break
        n *= 2
    reps = max(3, min(50, int(budget_s / max(one, 1e-6))))
    return {"n": n, "gflops": 2 * n**3 / statistics.median(timed() for _ in range(reps)) / 1e9}


def peaks() -> dict[str, dict[str, Any]]:
    return {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}


# -- FLOPs from layer shapes ------------------------------------------------------------------------------
def training_flops(model: nn.Module, input_shape: tuple[int, ...], run: Callable[[torch.Tensor], Any]) -> int:
    """Training FLOPs per example of ``run(x)`` (one example): 6 x the multiply-adds of every Linear
    and Conv2d it calls, less 2 x those of the first (no input gradient)."""
    macs: list[int] = []

    def hook(mod, inputs, out):
        if isinstance(mod, nn.Linear):
            macs.append(mod.in_features * mod.out_features)
        else:
            k = mod.kernel_size[0] * mod.kernel_size[1]
            macs.append(out.shape[1] * out.shape[2] * out.shape[3] * mod.in_channels // mod.groups * k)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    try:
        with torch.no_grad():
            run(torch.rand(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    return 6 * sum(macs) - 2 * macs[0]


def model_flops(name: str, preset: str, **config) -> int:
    model = hourglass.create(name, preset, input_shape=(1, 28, 28), **config)
    return training_flops(model, (1, 28, 28), lambda x: model.training_step((x, None)))


# -- the two sides -------------------------------------------------------------------------------------
def hourglass_fit(model: str, preset: str, args, seed: int, batch: int, nll: bool, epochs: int | None = None,
                  **options: Any) -> dict[str, Any]:
    cpu: list[float] = []
    fit = Trainer.fit

    def cpu_timed_fit(self, *a, **k):  # the CPU seconds of the fit alone, as the peers' are measured
        c0 = time.process_time()
        try:
            return fit(self, *a, **k)
        finally:
            cpu.append(time.process_time() - c0)

    Trainer.fit = cpu_timed_fit
    try:
        run = hourglass.train(model, "mnist", preset=preset, data_dir=str(args.data_dir),
                              epochs=epochs or args.epochs, seed=seed, batch_size=batch, val_fraction=0.0,
                              threads=args.threads, progress=False, figures=False, evaluate=False, **options,
                              **({"iwae_samples": 100 if nll else 1} if model == "vae" else {}))
    finally:
        Trainer.fit = fit
    test = evaluate(run.model, run.splits().x_test, batch_size=1000, seed=seed)
    out = {"fit_seconds": float(run.metrics["fit_seconds"]), "fit_cpu_seconds": sum(cpu),
           "recon_bce": test["recon_bce"]}
    if "neg_elbo" in test:
        out.update(neg_elbo=test["neg_elbo"], nll=test["nll"] if nll else None)
    return out


def keras_fit(keras, which: str, data, args, seed: int, batch: int) -> dict[str, Any]:
    keras.utils.set_random_seed(seed)
    x_train, x_test = data.x_train.astype(np.float32) / 255.0, data.x_test.astype(np.float32) / 255.0
    if which == "dense":
        r = kvh.keras_dense(keras, x_train, x_test, args.epochs, False)
    elif which == "conv":
        r = kvh.keras_conv(keras, x_train, x_test, args.epochs, False, batch_size=batch)
    else:
        r = kvh.keras_vae(keras, x_train, x_test, args.epochs, False, seed)
    key = "neg_elbo" if which == "vae" else "recon_bce"
    return {"fit_seconds": r["fit_seconds"], "fit_cpu_seconds": r["fit_cpu_seconds"], key: r["test_loss"]}


def pythae_fit(data, args, seed: int) -> dict[str, Any]:
    import pythae_vs_hourglass as pvh

    x_train = torch.from_numpy(data.x_train.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    x_test = torch.from_numpy(data.x_test.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return pvh.run_pythae(x_train, x_test, args.epochs, seed, nll_samples=100)


PAIRS = [  # name, peer, hourglass model and preset, batch, the test numbers compared, FLOPs config
    ("dense AE", "keras", ("ae", "keras-dense"), 256, ("recon_bce",)),
    ("conv AE", "keras", ("ae", "keras-conv"), 256, ("recon_bce",)),
    ("VAE", "keras", ("vae", "vae-mnist"), 100, ("neg_elbo",)),
    ("VAE", "pythae", ("vae", "vae-mnist"), 100, ("neg_elbo", "nll")),
]


def peer_modules() -> dict[str, Any]:
    found: dict[str, Any] = {}
    try:
        import keras

        found["keras"] = keras if keras.backend.backend() == "torch" else None
        found["keras_version"] = keras.__version__
    except ImportError:
        found["keras"] = None
    try:
        import pythae  # noqa: F401
        from pythae_vs_hourglass import _version

        found["pythae"] = True
        found["pythae_version"] = _version("pythae")
    except ImportError:
        found["pythae"] = None
    return found


def run_pairs(args, data, peers) -> list[dict[str, Any]]:
    results = []
    for name, peer, (model, preset), batch, keys in PAIRS:
        row: dict[str, Any] = {"pair": name, "peer": peer, "batch": batch, "compared": list(keys),
                               "hourglass_preset": preset, "flops_per_example": model_flops(model, preset)}
        if peers.get(peer) is None:
            row["skipped"] = f"{peer} is not installed (pip install 'hourglass-ae[{peer}]'): not measured"
            print(f"[{name} / {peer}] {row['skipped']}", flush=True)
            results.append(row)
            continue
        row["peer_runs"], row["hourglass_runs"] = [], []
        for seed in (args.conv_seeds if name == "conv AE" and args.conv_seeds else args.seeds):
            common = {"seed": seed, "batch": batch, "epochs": args.epochs}
            p = fit_in_subprocess(args, {"side": peer, "which": name.split()[0].lower(), **common})
            h = fit_in_subprocess(args, {"side": "hourglass", "model": model, "preset": preset, "nll": "nll" in keys,
                                         **common})
            row["peer_runs"].append(p)
            row["hourglass_runs"].append(h)
            print(f"[{name} / {peer}] seed {seed}: peer {p['fit_seconds']:.2f} s ({p['fit_cpu_seconds']:.2f} CPU s) "
                  f"{_losses(p, keys)}; hourglass {h['fit_seconds']:.2f} s ({h['fit_cpu_seconds']:.2f} CPU s) "
                  f"{_losses(h, keys)}", flush=True)
        results.append(row)
    return results


def _losses(r: dict[str, Any], keys) -> str:
    return ", ".join(f"{k} {r[k]:.4f}" for k in keys if k in r)


def summarise(rows: list[dict[str, Any]], n_train: int, epochs: int, peak_fp32: float) -> None:
    for row in rows:
        if "skipped" in row:
            continue
        for side in ("peer", "hourglass"):
            runs = row[f"{side}_runs"]
            fit = statistics.median(r["fit_seconds"] for r in runs)
            cpu = statistics.median(r["fit_cpu_seconds"] for r in runs)
            s = {"fit_seconds": fit, "fit_seconds_all": [r["fit_seconds"] for r in runs],
                 "fit_cpu_seconds": cpu, "fit_cpu_seconds_all": [r["fit_cpu_seconds"] for r in runs]}
            for k in row["compared"]:
                s[k] = float(np.mean([r[k] for r in runs]))
            flop = row["flops_per_example"] * n_train * epochs
            s["gflops"], s["gflops_cpu"] = flop / fit / 1e9, flop / cpu / 1e9
            s["share_of_fp32_peak"], s["cpu_share_of_fp32_peak"] = s["gflops"] / peak_fp32, s["gflops_cpu"] / peak_fp32
            row.setdefault("summary", {})[side] = s
        row["speedup"] = row["summary"]["peer"]["fit_seconds"] / row["summary"]["hourglass"]["fit_seconds"]
        row["speedup_cpu"] = row["summary"]["peer"]["fit_cpu_seconds"] / row["summary"]["hourglass"]["fit_cpu_seconds"]


# -- levers -------------------------------------------------------------------------------------------
def levers(args) -> list[dict[str, Any]]:
    """hourglass' training options against its defaults, on the same seed and data: fit s and test loss.
    Each fit runs in a fresh process: ``reuse_memory`` changes the process' allocator for good, and a
    compiled step would otherwise find its kernels already built."""
    variants = [("default", {}), ("channels_last=False", {"channels_last": False}),
                ("reuse_memory=False", {"reuse_memory": False}), ("compile=True", {"compile": True})]
    from hourglass.training.precision import cpu_has_native_bf16

    if cpu_has_native_bf16():
        variants.append(("precision=bf16", {"precision": "bf16"}))
    rows = []
    for model, preset, batch in (("ae", "keras-conv", 256), ("vae", "vae-mnist", 100)):
        for label, opts in variants:
            if model == "vae" and "channels_last" in opts:
                continue  # an MLP: no layout to change
            r = fit_in_subprocess(args, dict(side="hourglass", model=model, preset=preset, seed=0, batch=batch,
                                             nll=False, epochs=args.lever_epochs, **opts))
            key = "neg_elbo" if model == "vae" else "recon_bce"
            rows.append({"preset": preset, "variant": label, "fit_seconds": r["fit_seconds"], "loss": key,
                         "value": r[key]})
            print(f"[levers] {preset} {label}: {r['fit_seconds']:.2f} s, {key} {r[key]:.4f}", flush=True)
    return rows


def one_fit(args, spec: dict[str, Any]) -> dict[str, Any]:
    """One fit of one side (``spec["side"]``: hourglass, keras or pythae), as ``--one-fit`` runs it."""
    side, seed, batch = spec.pop("side"), spec.pop("seed"), spec.pop("batch")
    args.epochs = spec.pop("epochs")
    if side == "hourglass":
        return hourglass_fit(spec.pop("model"), spec.pop("preset"), args, seed, batch, spec.pop("nll"), **spec)
    data = kvh.load_mnist(args.data_dir)
    if side == "pythae":
        return pythae_fit(data, args, seed)
    import keras

    return keras_fit(keras, spec["which"], data, args, seed, batch)


def fit_in_subprocess(args, spec: dict[str, Any]) -> dict[str, Any]:
    """:func:`one_fit` in a fresh Python process (this script with ``--one-fit``)."""
    import subprocess

    cmd = [sys.executable, str(Path(__file__).resolve()), "--one-fit", json.dumps(spec), "--threads",
           str(args.threads), "--data-dir", str(args.data_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- scaling ------------------------------------------------------------------------------------------
def scaling(args, x_train: torch.Tensor) -> dict[str, Any]:
    """Fit seconds of the vae-mnist network against data size and against width and code size."""
    def fit(n: int, hidden: int, latent: int) -> float:
        model = hourglass.create("vae", "vae-mnist", input_shape=(1, 28, 28), hidden=(hidden,), latent_dim=latent)
        cfg = TrainConfig(epochs=args.scaling_epochs, batch_size=100, seed=0, threads=args.threads, progress=False,
                          val_fraction=0.0, device="cpu")
        t = time.perf_counter()
        Trainer(model, cfg).fit(x_train[:n])
        return time.perf_counter() - t

    keep_freed_memory()  # what hourglass.train does for in-memory data (reuse_memory)
    n_all = len(x_train)
    data_points = [(n_all // 8 * k, 512, 16) for k in (1, 2, 4, 8)]
    width_points = [(n_all, 128 * 2**i, 4 * 2**i) for i in range(5)]
    points = data_points + [p for p in width_points if p not in data_points]
    times: dict[tuple, list[float]] = {p: [] for p in points}
    for _ in range(args.scaling_repeats):  # interleaved: a burst of load spreads over all points
        for p in points:
            times[p].append(fit(*p))
    out: dict[str, Any] = {"epochs": args.scaling_epochs, "repeats": args.scaling_repeats, "batch": 100}
    for key, pts in (("data", data_points), ("width", width_points)):
        rows = []
        for n, h, z in pts:
            flops = model_flops("vae", "vae-mnist", hidden=(h,), latent_dim=z) * n * args.scaling_epochs
            rows.append({"examples": n, "hidden": h, "latent": z, "seconds": statistics.median(times[(n, h, z)]),
                         "seconds_all": times[(n, h, z)], "tflop": flops / 1e12})
        x = np.log([r["examples"] if key == "data" else r["tflop"] for r in rows])
        y = np.log([r["seconds"] for r in rows])
        out[key] = {"points": rows, "slope": float(np.polyfit(x, y, 1)[0])}
        for r in rows:
            r["gflops"] = r["tflop"] * 1e3 / r["seconds"]
    return out


def scaling_figure(sc: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), layout="constrained")
    for ax, key, xlabel in zip(fig.subplots(1, 2), ("data", "width"),
                               ("training examples", "training FLOPs (TFLOP, counted from layer shapes)")):
        pts = sc[key]["points"]
        x = np.array([p["examples"] if key == "data" else p["tflop"] for p in pts], dtype=float)
        y = np.array([p["seconds"] for p in pts])
        ax.loglog(x, y, "o-", label=f"hourglass (slope {sc[key]['slope']:.2f})")
        ax.loglog(x, y[0] * x / x[0], "--", color="grey", label="proportional (slope 1)")
        if key == "width":
            for p, xi, yi in zip(pts, x, y):
                ax.annotate(f"{p['hidden']}/{p['latent']}", (xi, yi), textcoords="offset points", xytext=(4, -12),
                            fontsize=8)
        ax.set_xticks(x, [f"{v:,.0f}" if key == "data" else f"{v:.3g}" for v in x], minor=False)
        ax.set_xticks([], minor=True)
        ys = [v for v in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if y.min() / 1.5 <= v <= y.max() * 2]
        ax.set_yticks(ys, [f"{v:g}" for v in ys], minor=False)
        ax.set_yticks([], minor=True)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("fit seconds")
        ax.set_title("time against data size (512 hidden, 16 code)" if key == "data"
                     else "time against width/code size (8,000 examples)")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"vae-mnist network, {sc['epochs']} epochs, batch {sc['batch']}, median of {sc['repeats']}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


# -- report ---------------------------------------------------------------------------------------------
def markdown(meta: dict[str, Any], rows: list[dict[str, Any]], lever_rows: list[dict[str, Any]],
             sc: dict[str, Any] | None) -> str:
    pk = meta["peak"]
    lines = [
        "# hourglass against its peers: results",
        "",
        f"Written by `{meta['command']}` on {meta['created']}.",
        "",
        f"- machine: {meta['machine']}; torch threads: {meta['threads']}; load average "
        f"{meta['load_before']} before, {meta['load_after']} after (other processes share the machine: times "
        "are medians, peers and hourglass alternate per seed)",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v),
        f"- data: {meta['data']}; {meta['epochs']} epochs; seeds {meta['seeds']} (conv AE: {meta['conv_seeds']}; "
        "losses: mean over seeds; fit s: median over seeds)",
        "- every fit runs in a fresh process with its library's defaults (hourglass: `reuse_memory`, "
        "`channels_last`, fused Adam; the peers: glibc's allocator settings)",
        f"- matmul peak ({meta['threads']} threads, median of start and end): fp32 {pk['fp32']:.1f} GFLOP/s "
        f"(n = {meta['peak_n']['fp32']}), bf16 {pk['bf16']:.1f} GFLOP/s (n = {meta['peak_n']['bf16']})"
        + (" - bf16 is emulated on this CPU" if pk["bf16"] < pk["fp32"] else ""),
        "",
        "| pair | peer | batch | peer fit s | hourglass fit s | speed-up | test loss peer / hourglass "
        "| GFLOP/s peer / hourglass | hourglass share of fp32 peak |",
        "|---|---|---:|---:|---:|---:|---|---|---:|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['pair']} | {r['peer']} | {r['batch']} | - | - | - | {r['skipped']} | - | - |")
            continue
        p, h = r["summary"]["peer"], r["summary"]["hourglass"]
        loss = "; ".join(f"{_label(k)} {_num(p.get(k))} / {_num(h[k])}" for k in r["compared"])
        lines.append(f"| {r['pair']} | {r['peer']} | {r['batch']} | {p['fit_seconds']:.2f} | {h['fit_seconds']:.2f} "
                     f"| {r['speedup']:.2f}x | {loss} | {p['gflops']:.1f} / {h['gflops']:.1f} "
                     f"| {h['share_of_fp32_peak']:.0%} |")
    lines += ["", "The same fits in CPU seconds (the fit call's process, all its threads: the time it held a core, "
              "without the waits for one that other processes cause on a shared machine):", "",
              "| pair | peer | peer CPU s | hourglass CPU s | speed-up | hourglass GFLOP/s (share of fp32 peak) |",
              "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if "skipped" not in r:
            p, h = r["summary"]["peer"], r["summary"]["hourglass"]
            lines.append(f"| {r['pair']} | {r['peer']} | {p['fit_cpu_seconds']:.2f} | {h['fit_cpu_seconds']:.2f} "
                         f"| {r['speedup_cpu']:.2f}x | {h['gflops_cpu']:.1f} ({h['cpu_share_of_fp32_peak']:.0%}) |")
    lines += ["", "Per seed (fit s, CPU s, test loss):", ""]
    for r in rows:
        if "skipped" in r:
            continue
        k = r["compared"][0]
        for side in ("peer", "hourglass"):
            runs = r[f"{side}_runs"]
            lines.append(f"- {r['pair']} / {r['peer'] if side == 'peer' else 'hourglass'}: "
                         + ", ".join(f"{x['fit_seconds']:.2f} s ({x['fit_cpu_seconds']:.2f} CPU s) {_num(x[k])}"
                                     for x in runs))
    if lever_rows:
        lines += ["", f"## Training options ({meta['lever_epochs']} epochs, seed 0, hourglass alone, each fit "
                  "in a fresh process)", "",
                  "| preset | options | fit s | test loss |", "|---|---|---:|---:|"]
        lines += [f"| {r['preset']} | {r['variant']} | {r['fit_seconds']:.2f} "
                  f"| {_label(r['loss'])} {_num(r['value'])} |" for r in lever_rows]
    if sc:
        lines += ["", "## Scaling (vae-mnist network, hourglass' trainer)", "",
                  f"{sc['epochs']} epochs, batch {sc['batch']}, median of {sc['repeats']} interleaved repeats. "
                  f"Slope of log time against log data: **{sc['data']['slope']:.2f}**; against log FLOPs over the "
                  f"width sweep: **{sc['width']['slope']:.2f}** (1 = proportional). Figure: "
                  "`docs/figures/scaling.png`.", "",
                  "| examples | hidden | code | TFLOP | fit s | GFLOP/s |", "|---:|---:|---:|---:|---:|---:|"]
        for key in ("data", "width"):
            for p in sc[key]["points"]:
                lines.append(f"| {p['examples']} | {p['hidden']} | {p['latent']} | {p['tflop']:.3f} "
                             f"| {p['seconds']:.2f} | {p['gflops']:.1f} |")
    return "\n".join(lines) + "\n"


def _label(k: str) -> str:
    return {"recon_bce": "BCE", "neg_elbo": "-ELBO", "nll": "NLL"}[k]


def _num(v) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" if v < 1 else f"{v:.2f}"


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="MNIST IDX files (default %(default)s)")
    ap.add_argument("--epochs", type=int, default=50, help="epochs of every peer comparison (default 50)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for every side (default 2)")
    ap.add_argument("--scaling-epochs", type=int, default=3, help="epochs per scaling point (default 3; 0 skips)")
    ap.add_argument("--scaling-repeats", type=int, default=3, help="repeats per scaling point (default 3)")
    ap.add_argument("--conv-seeds", default="", help="seeds of the conv AE pair (default: --seeds); its Keras "
                    "side is the longest fit here")
    ap.add_argument("--lever-epochs", type=int, default=10, help="epochs of the options check (default 10; 0 skips)")
    ap.add_argument("--out", type=Path, default=HERE, help="folder for results.md/json (default benchmarks/)")
    ap.add_argument("--figure", type=Path, help=f"scaling figure (default {FIGURE.relative_to(REPO)} with the "
                    "default --out, else scaling.png in --out)")
    ap.add_argument("--one-fit", help=argparse.SUPPRESS)  # internal: one fit of one side, JSON out
    ap.add_argument("--replot", action="store_true", help="only redraw the scaling figure from results.json")
    args = ap.parse_args(argv)
    if args.figure is None:  # a smoke run with its own --out leaves the README's figure alone
        args.figure = FIGURE if args.out.resolve() == HERE else args.out / "scaling.png"
    if args.replot:
        scaling_figure(json.loads((args.out / "results.json").read_text())["scaling"], args.figure)
        return 0
    if args.one_fit:
        torch.set_num_threads(args.threads)
        kvh.warm_up_torch()
        print(json.dumps(one_fit(args, json.loads(args.one_fit))))
        return 0
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.conv_seeds = [int(s) for s in args.conv_seeds.split(",") if s.strip()]
    torch.set_num_threads(args.threads)
    load_before = _load()
    data = kvh.load_mnist(args.data_dir)
    peers = peer_modules()
    kvh.warm_up_torch()
    peak_start = peaks()
    rows = run_pairs(args, data, peers)
    lever_rows = levers(args) if args.lever_epochs > 0 else []
    sc = None
    if args.scaling_epochs > 0:
        x = torch.from_numpy(data.x_train.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
        sc = scaling(args, x)
        scaling_figure(sc, args.figure)
    peak_end = peaks()
    peak = {k: statistics.median([peak_start[k]["gflops"], peak_end[k]["gflops"]]) for k in peak_start}
    summarise(rows, len(data.x_train), args.epochs, peak["fp32"])
    meta = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/run_all.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "threads": args.threads, "epochs": args.epochs, "seeds": args.seeds,
        "conv_seeds": args.conv_seeds or args.seeds,
        "lever_epochs": args.lever_epochs,
        "data": f"{data.source}: {len(data.x_train)} train / {len(data.x_test)} test",
        "load_before": load_before, "load_after": _load(),
        "peak": peak, "peak_n": {k: v["n"] for k, v in peak_start.items()},
        "peak_runs": {"start": peak_start, "end": peak_end},
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                     "keras": peers.get("keras_version"), "pythae": peers.get("pythae_version")},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    everything = {"meta": meta, "pairs": rows, "levers": lever_rows, "scaling": sc}
    (args.out / "results.json").write_text(json.dumps(everything, indent=2, default=_json) + "\n")
    (args.out / "results.md").write_text(markdown(meta, rows, lever_rows, sc))
    print(markdown(meta, rows, lever_rows, sc))
    return 0


def _json(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return str(v)


if __name__ == "__main__":
    sys.exit(main())
