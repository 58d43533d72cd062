"""The streaming path against the in-memory path, and the in-memory path against an older checkout.

1. Streaming vs in memory, on the same data: the MNIST sample's 8,000 training digits saved as a
   ``.npy`` file (uint8, 1x28x28), the ``keras-dense`` preset, ``--epochs`` epochs, trained with
   ``in_memory="always"`` (one tensor, batched by index) and ``in_memory="never"`` (read with
   ``os.pread`` per batch through a DataLoader; with ``--workers`` also in worker processes).
   Throughput is training examples per second of ``fit_seconds``; the two alternate within each
   repeat, every run in a fresh process.
2. With ``--before SRC`` (the ``src`` folder of another checkout, e.g. ``git archive COMMIT src | tar
   -x -C /tmp/before``): the README's main job (``hourglass.train("vae")`` on digits) and the
   ``keras-dense`` preset on the MNIST sample, timed by ``fit_seconds`` with that code and with this
   checkout's, alternating.

Prints markdown tables of medians and writes ``benchmarks/results/streaming.json``.

    python benchmarks/streaming.py --data-dir ../shared/data/mnist10k --repeats 5 --before /tmp/before/src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

JOB = """
import json, sys, hourglass
job, arg, opts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if job == "main":
    run = hourglass.train("vae", "digits", progress=False, figures=False, **opts)
elif job == "keras-dense":
    run = hourglass.train("ae", "mnist", data_dir=arg, preset="keras-dense", progress=False, figures=False, **opts)
else:
    run = hourglass.train("ae", arg, preset="keras-dense", progress=False, figures=False, **opts)
print(json.dumps({"fit_seconds": run.metrics["fit_seconds"], "n_train": run.info["data"]["n_train"],
                  "epochs": run.metrics["epochs"]}))
"""


def run_job(src: Path, job: str, arg: str, opts: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", JOB, job, arg, json.dumps(opts)], capture_output=True, text=True,
                         env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{job} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="folder of the MNIST sample (IDX files)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers of the third streamed variant")
    ap.add_argument("--before", help="src folder of the code to compare the in-memory path with")
    args = ap.parse_args()
    sys.path.insert(0, str(SRC))
    import numpy as np

    import hourglass

    results: dict = {"repeats": args.repeats, "epochs": args.epochs, "threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        b = hourglass.load_data("mnist", args.data_dir)
        path = Path(tmp) / "mnist-train.npy"
        np.save(path, b.x_train)
        variants = {"in memory": {"in_memory": "always"}, "streamed": {"in_memory": "never"},
                    f"streamed, {args.workers} workers": {"in_memory": "never", "workers": args.workers}}
        times: dict[str, list[float]] = {k: [] for k in variants}
        n_train = 0
        for r in range(args.repeats):
            for name, opts in variants.items():
                out = run_job(SRC, "file", str(path), {"epochs": args.epochs, "threads": args.threads, **opts})
                times[name].append(out["fit_seconds"])
                n_train = out["n_train"]
            print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
        base = statistics.median(times["in memory"])
        print(f"\n{n_train} training examples x {args.epochs} epochs, keras-dense, threads={args.threads}\n")
        print("| path | median fit s | examples / s | throughput vs in memory |\n|---|---:|---:|---:|")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"| {name} | {med:.2f} | {n_train * args.epochs / med:,.0f} | {base / med:.2f} |")
        results["streaming"] = {k: {"fit_seconds": v, "median": statistics.median(v)} for k, v in times.items()}

    if args.before:
        jobs = {"main": ("main", "", {}), "keras-dense": ("keras-dense", args.data_dir, {"epochs": 10})}
        before_after: dict[str, dict[str, list[float]]] = {j: {"before": [], "after": []} for j in jobs}
        for r in range(args.repeats):
            for job, (kind, arg, opts) in jobs.items():
                for side, src in (("before", Path(args.before)), ("after", SRC)):
                    before_after[job][side].append(run_job(src, kind, arg, {"threads": args.threads, **opts})
                                                   ["fit_seconds"])
            print(f"repeat {r + 1}: " + ", ".join(f"{j} {s} {v[s][-1]:.2f} s" for j, v in before_after.items()
                                                  for s in v), flush=True)
        print("\n| job | before: median fit s | after: median fit s | after / before |\n|---|---:|---:|---:|")
        for job, v in before_after.items():
            mb, ma = statistics.median(v["before"]), statistics.median(v["after"])
            print(f"| {job} | {mb:.2f} | {ma:.2f} | {ma / mb:.3f} |")
        results["before_after"] = before_after
    out = HERE / "results" / "streaming.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
