"""How hourglass' CPU thread policies hold up on a machine that is busy with something else.

Two jobs, each timed by its training's ``fit_seconds`` in a fresh process:

* ``main``: the README's main job, ``hourglass.train("vae")`` on the embedded digits (30 epochs);
* ``keras-dense``: the ``keras-dense`` preset on the MNIST sample (``--data-dir``), ``--epochs`` epochs.

Policies (``threads=`` / ``--threads``):

* ``2 (all cores)``: a fixed thread per core, which is what torch does by itself (hourglass before
  ``threads`` existed);
* ``1``: one thread;
* ``2 + OMP passive``: a thread per core with ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep at barriers
  instead of spinning);
* ``auto``: the default, ``threads=None`` (``hourglass.threads.ThreadGovernor``).

Scenarios: ``alone``, and ``beside a training``: another hourglass training process (the same job, the
same policy, in a loop) runs for the whole measurement. Policies alternate within each repeat, so a
slow spell of the shared machine hits them all. Prints a markdown table of medians and writes
``benchmarks/results/threads.json``.

    python benchmarks/threads.py --data-dir ../shared/data/mnist10k --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
POLICIES = {
    "2 (all cores)": ({"threads": 2}, {}),
    "1": ({"threads": 1}, {}),
    "2 + OMP passive": ({"threads": 2}, {"OMP_WAIT_POLICY": "PASSIVE"}),
    "auto": ({}, {}),
}

JOB = """
import json, sys, hourglass
job, opts, data_dir = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
epochs, loop = int(sys.argv[4]), sys.argv[5] == "1"
while True:
    if job == "main":
        run = hourglass.train("vae", "digits", progress=False, figures=False, **opts)
    else:
        run = hourglass.train("ae", "mnist", data_dir=data_dir, preset="keras-dense", epochs=epochs, progress=False,
                              figures=False, **opts)
    print(json.dumps({"fit_seconds": run.metrics["fit_seconds"]}), flush=True)
    if not loop:
        break
"""


def job_command(job: str, opts: dict, data_dir: str, epochs: int, loop: bool) -> list[str]:
    return [sys.executable, "-c", JOB, job, json.dumps(opts), data_dir, str(epochs), "1" if loop else "0"]


def measure(job: str, policy: str, data_dir: str, epochs: int, busy: bool) -> float:
    opts, env_extra = POLICIES[policy]
    env = {**os.environ, **env_extra}
    background = None
    if busy:
        background = subprocess.Popen(job_command(job, opts, data_dir, epochs, loop=True), env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(4.0)  # let it import torch and start training
    try:
        out = subprocess.run(job_command(job, opts, data_dir, epochs, loop=False), env=env, capture_output=True,
                             text=True, check=True).stdout
    finally:
        if background is not None:
            background.kill()
            background.wait()
    return json.loads(out.strip().splitlines()[-1])["fit_seconds"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data" / "mnist10k"))
    p.add_argument("--epochs", type=int, default=10, help="keras-dense epochs (default 10)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--jobs", default="main,keras-dense")
    p.add_argument("--policies", default=",".join(POLICIES))
    args = p.parse_args(argv)
    jobs = args.jobs.split(",")
    policies = args.policies.split(",")
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    for job in jobs:
        for scenario in ("alone", "beside a training"):
            for r in range(args.repeats):
                for policy in policies:
                    secs = measure(job, policy, args.data_dir, args.epochs, busy=scenario != "alone")
                    results.setdefault(job, {}).setdefault(scenario, {}).setdefault(policy, []).append(secs)
                    print(f"{job:12s} {scenario:18s} {policy:15s} repeat {r + 1}: fit {secs:.2f} s", flush=True)
    lines = ["| job | scenario | " + " | ".join(f"threads {p}" for p in policies) + " |",
             "|---|---|" + "---:|" * len(policies)]
    for job in jobs:
        for scenario in ("alone", "beside a training"):
            cells = [f"{statistics.median(results[job][scenario][p]):.2f}" for p in policies]
            lines.append(f"| {job} | {scenario} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print("\nmedian fit seconds\n" + table)
    out = HERE / "results" / "threads.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "fit_seconds": results, "table": table}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
