#!/usr/bin/env python
"""hourglass on one GPU: epoch time and share of the card's peak, per preset, precision and compile.

Run it whenever a GPU is at hand; it needs none to be written or smoke-tested (``--device cpu``):

    python benchmarks/gpu.py                                   # cuda, 20 epochs per case
    python benchmarks/gpu.py --device cpu --epochs 2 --cases vae-mnist --out /tmp/gpu-smoke

Writes ``results_gpu.md`` and ``results_gpu.json`` in ``--out`` (``benchmarks/``):

1. **Peaks.** GFLOP/s of an 8192 x 8192 matrix product on the device in float32 (TF32 off, PyTorch's
   default for matrix products), TF32, bfloat16 and float16; on a CPU, as ``run_all.py`` measures it.
2. **Cases.** The peer comparisons' networks at their batch sizes (``keras-dense`` and ``keras-conv``
   at 256, ``vae-mnist`` at 100) and the VAE at batch 1,000, each trained by ``hourglass.train`` on
   the MNIST sample (the whole set on the device) in fp32 and bf16 (where the device runs it), with
   and without ``compile``. Per fit: the first epoch (compilation included), the median of the
   others, peak memory, the training FLOPs per epoch counted from the layer shapes (as in
   ``run_all.py``), the GFLOP/s they give and their share of the peak of the precision the fit ran
   in (fp32 against the fp32 peak: convolutions may use TF32, which cuDNN allows by default), and
   the test loss beside it, so that a faster setting is never a worse model unnoticed.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from run_all import DEFAULT_DATA, matmul_gflops, model_flops  # noqa: E402
from run_all import peaks as cpu_peaks  # noqa: E402

import hourglass  # noqa: E402
from hourglass.evaluate.metrics import evaluate  # noqa: E402

CASES = {  # name: (model, preset, batch, the loss evaluation reports)
    "keras-dense": ("ae", "keras-dense", 256, "recon_bce"),
    "keras-conv": ("ae", "keras-conv", 256, "recon_bce"),
    "vae-mnist": ("vae", "vae-mnist", 100, "neg_elbo"),
    "vae-mnist-1000": ("vae", "vae-mnist", 1000, "neg_elbo"),
}


def bf16_runs_on(device: str) -> bool:
    if device == "cpu":
        from hourglass.training.precision import cpu_has_native_bf16

        return cpu_has_native_bf16()
    return torch.cuda.is_bf16_supported()


def peaks(device: str) -> dict[str, dict[str, Any]]:
    if device == "cpu":
        return cpu_peaks()
    out = {"fp32": matmul_gflops(torch.float32, 8192, device=device)}
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        out["tf32"] = matmul_gflops(torch.float32, 8192, device=device)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False
    for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        out[name] = matmul_gflops(dtype, 8192, device=device)
    return out


def fit(case: str, precision: str, compiled: bool, args) -> dict[str, Any]:
    model, preset, batch, loss_key = CASES[case]
    if args.device != "cpu":
        torch.cuda.reset_peak_memory_stats(args.device)
    run = hourglass.train(model, "mnist", preset=preset, data_dir=str(args.data_dir), epochs=args.epochs, seed=0,
                          batch_size=batch, val_fraction=0.0, device=args.device, precision=precision,
                          compile=compiled, progress=False, figures=False, evaluate=False,
                          **({"iwae_samples": 1} if model == "vae" else {}))
    seconds = [h["seconds"] for h in run.history]
    test = evaluate(run.model, run.splits().x_test, batch_size=1000, seed=0)
    n_train = len(run.splits().x_train)
    epoch_flops = model_flops(model, preset) * n_train
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    return {"case": case, "model": model, "preset": preset, "batch": batch, "precision": precision,
            "compile": compiled, "n_train": n_train, "epochs": len(seconds), "first_epoch_s": seconds[0],
            "epoch_s": steady,
            "fit_seconds": float(run.metrics["fit_seconds"]), "epoch_tflop": epoch_flops / 1e12,
            "gflops": epoch_flops / steady / 1e9, "loss": loss_key, "value": float(test[loss_key]),
            "peak_memory_mb": (torch.cuda.max_memory_allocated(args.device) / 2**20 if args.device != "cpu"
                               else None)}


def markdown(meta: dict[str, Any], pk: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    lines = ["# hourglass on one device: results", "",
             f"Written by `python benchmarks/gpu.py {meta['argv']}` on {meta['when']}.", "",
             f"- device: {meta['device_name']}; torch {meta['torch']}, hourglass {meta['hourglass']}",
             f"- data: the MNIST sample ({meta['n_train']} training digits), {meta['epochs']} epochs per fit, seed 0",
             "- matrix-product peaks (GFLOP/s): " + ", ".join(f"{k} {v['gflops']:.0f} (n = {v['n']})"
                                                            for k, v in pk.items()), "",
             "| case | batch | precision | compile | first epoch s | epoch s (median of the rest) | GFLOP/s | "
             "share of peak | peak memory MB | test loss |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        share = r["gflops"] / pk[r["precision"]]["gflops"] if r["precision"] in pk else float("nan")
        mem = f"{r['peak_memory_mb']:.0f}" if r["peak_memory_mb"] is not None else "-"
        lines.append(f"| {r['case']} | {r['batch']} | {r['precision']} | {'on' if r['compile'] else 'off'} | "
                     f"{r['first_epoch_s']:.3f} | {r['epoch_s']:.4f} | {r['gflops']:.1f} | {share:.1%} | {mem} | "
                     f"{r['loss']} {r['value']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (the default), cuda:N, or cpu for a smoke run")
    ap.add_argument("--epochs", type=int, default=20, help="epochs per fit (the first includes compilation)")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--precisions", default="fp32,bf16", help="fp32 and/or bf16 (bf16 where the device runs it)")
    ap.add_argument("--compile", default="off,on", help="off and/or on")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("no CUDA device here; pass --device cpu for a smoke run")
    if args.epochs < 1:
        ap.error("--epochs must be >= 1")
    precisions = [p for p in args.precisions.split(",") if p]
    if "bf16" in precisions and not bf16_runs_on(args.device):
        print(f"bf16 skipped: {args.device} does not run it natively", flush=True)
        precisions.remove("bf16")
    compiles = {"off": False, "on": True}
    modes = [compiles[c] for c in args.compile.split(",") if c]

    pk = peaks(args.device)
    print("peaks:", {k: round(v["gflops"]) for k, v in pk.items()}, flush=True)
    rows = []
    for case in cases:
        for precision in precisions:
            for compiled in modes:
                t = time.perf_counter()
                r = fit(case, precision, compiled, args)
                rows.append(r)
                print(f"[{case}] {precision} compile={'on' if compiled else 'off'}: epoch {r['epoch_s']:.4f} s "
                      f"(first {r['first_epoch_s']:.2f} s), {r['gflops']:.1f} GFLOP/s, {r['loss']} {r['value']:.4f} "
                      f"({time.perf_counter() - t:.0f} s)", flush=True)
    meta = {"argv": " ".join(sys.argv[1:] if argv is None else argv),
            "when": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "device_name": torch.cuda.get_device_name(args.device) if args.device != "cpu" else "CPU",
            "torch": torch.__version__, "hourglass": hourglass.__version__, "epochs": args.epochs,
            "n_train": rows[0]["n_train"] if rows else None}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results_gpu.md").write_text(markdown(meta, pk, rows))
    (args.out / "results_gpu.json").write_text(json.dumps({"meta": meta, "peaks": pk, "rows": rows}, indent=1))
    print(f"wrote {args.out / 'results_gpu.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
