#!/usr/bin/env python
"""Does every example do what it is for? The README's examples and the presets, judged from outside.

Each example is trained as the README runs it (``hourglass.train`` with the same options as the
command), timed, and judged by an independent classifier (``evaluate.reference``: a small CNN trained here on
the real training digits, never on a model's output):

  main            ``hourglass train vae`` on the embedded digits: share of test reconstructions the judge
                  recognises as their own digit (target >= 90%)
  beta-vae        the README's beta = 4 example on digits: does the code stay in use (active units, KL)?
  cvae            ``hourglass train cvae --epochs 10`` on digits: class-conditional samples recognised as
                  the asked class, and their within-class spread (``samples.within_class_spread``)
  semi            the README's semi-supervised CVAE with 100 labels on digits: test accuracy of q(y|x)
  cvae-mnist      preset ``cvae-mnist`` on the MNIST sample: samples recognised as the asked class
                  (target >= 95%) with a within-class spread at least 0.8 times that of the model's
                  reconstructions of real digits (the variety its decoder can draw; real digits: 1.0)
  gan-mnist       preset ``gan-mnist``, the class-conditional GAN (AC-GAN, trained on the labels): of 1,000
                  samples asked for every class in turn (100 each), the share the judge recognises with
                  confidence >= 0.9 (target >= 80%), the share of each class among them (target: each
                  5-15%), and the share recognised as the class asked for
  gan-mnist-unconditional   preset ``gan-mnist-unconditional`` (InfoGAN, no labels): the same on 1,000
                  samples, same targets
  m2-mnist        preset ``m2-mnist`` with 100 labels: test accuracy of q(y|x) (target >= 88%)
  vae-mnist, keras-dense, keras-conv   the presets on the MNIST sample: reconstructions recognised

The targets are the ones the project set itself for the default examples: each model within 5
minutes of 2 CPU cores on the MNIST sample, i.e. at most 600 CPU seconds (``cpu_seconds``: the
process time of the whole ``hourglass.train`` call, which a busy machine does not inflate as it does
wall time). Results go to ``--out`` (default ``benchmarks/results/examples``): one JSON file per
example (so examples can be rerun one at a time) and ``examples.md``, the README's table, assembled
from every JSON file present; ``--readme`` writes those rows into README.md's table (between its
``examples:begin`` / ``examples:end`` markers), keeping the README's rows of the examples that have
no JSON file there, and ``--figures`` (default ``docs/figures``) receives the figures the README
shows (give another folder for trial runs).

    python benchmarks/examples.py                       # everything (about 25 minutes on 2 free cores)
    python benchmarks/examples.py --only main,cvae      # some of it
    python benchmarks/examples.py --table-only --readme # rebuild the table from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

import hourglass
from hourglass.data import load_data
from hourglass.evaluate.reference import train_judge
from hourglass.evaluate.samples import judge_samples, mean_pairwise_distance, within_class_spread
from hourglass.report import figures

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist10k"
BEGIN, END = "<!-- examples:begin -->", "<!-- examples:end -->"


class Judges:
    """One judge per data set, trained once per output folder (cached there)."""

    def __init__(self, out: Path, data_dir: str):
        self.out, self.data_dir, self.cache = out, data_dir, {}

    def get(self, name: str):
        if name not in self.cache:
            b = load_data(name, self.data_dir if name == "mnist" else None)
            scale = 16.0 if name == "digits" else 255.0
            shape = (1, 8, 8) if name == "digits" else (1, 28, 28)
            f = lambda x: (np.asarray(x, dtype=np.float32).reshape(len(x), *shape) / scale)  # noqa: E731
            xtr, xte = f(b.x_train), f(b.x_test)
            judge, acc = train_judge(xtr, b.y_train.astype(int), xte, b.y_test.astype(int),
                                     epochs=40 if name == "digits" else 10, cache=self.out / f"judge-{name}")
            self.cache[name] = dict(judge=judge, acc=acc, bundle=b, x_test=xte, y_test=b.y_test.astype(int),
                                    scale=scale, shape=shape)
        return self.cache[name]


def recognised_reconstructions(run, j) -> dict:
    rec = run.reconstruct(j["bundle"].x_test) / j["scale"]
    pred = j["judge"].probs(rec.reshape(len(rec), *j["shape"])).argmax(1)
    return {"reconstructions_recognised": float((pred == j["y_test"]).mean()), "judge_test_accuracy": j["acc"]}


def conditional_samples(run, j, per_class: int = 100) -> dict:
    """Samples of each class recognised as that class, and their within-class spread; beside it the
    same spread of the model's reconstructions of real test digits, the variety its decoder renders
    (a Bernoulli decoder draws the mean image, smoother than a real digit)."""
    asked = np.repeat(np.arange(10), per_class)
    s = run.sample(len(asked), asked, seed=1) / j["scale"]
    s = s.reshape(len(s), *j["shape"])
    probs = j["judge"].probs(s)
    b = j["bundle"]
    rec = run.reconstruct(b.x_test, b.y_test.astype(int)) / j["scale"]
    rec = rec.reshape(len(rec), *j["shape"])
    return {"samples_recognised_as_asked": float((probs.argmax(1) == asked).mean()),
            "within_class_spread": within_class_spread(s, asked, j["x_test"], j["y_test"]),
            "reconstruction_spread": within_class_spread(rec, j["y_test"], j["x_test"], j["y_test"]),
            "judge_test_accuracy": j["acc"]}


def unconditional_samples(run, j, n: int = 1000, asked: np.ndarray | None = None) -> dict:
    """n samples judged: the share recognised with confidence >= 0.9, the class shares among them, the
    spread; with labels ``asked`` (conditional models) also the share recognised as the class asked for."""
    s = run.sample(n, asked, seed=1) / j["scale"]
    s = s.reshape(len(s), *j["shape"])
    judged = judge_samples(j["judge"], s)
    out = {"confident_samples": judged["confident"], "class_share_min": judged["class_share_min"],
           "class_share_max": judged["class_share_max"],
           "sample_spread": mean_pairwise_distance(s[:500]) / mean_pairwise_distance(j["x_test"][:500]),
           "judge_test_accuracy": j["acc"]}
    if asked is not None:
        out["samples_as_asked"] = float((judged["predicted"] == asked).mean())
    return out


def gan_samples(run, j, n: int = 1000) -> dict:
    """The GAN's measure: 1,000 samples judged (``unconditional_samples``), for a conditional GAN asked for
    every class in turn."""
    conditional = bool(run.model.conditional)
    asked = np.arange(n) % run.model.num_classes if conditional else None
    return {"conditional": conditional, **unconditional_samples(run, j, n, asked)}


# name -> (README command, model, data, options, what it is for, measure)
EXAMPLES = {
    "main": ("hourglass train vae --out runs/digits-vae", "vae", "digits", {}, "reconstruct and generate digits",
             "recon"),
    "beta-vae": ("hourglass train vae --set beta=4 --set hidden=128,64 --epochs 20 --out runs/beta-vae", "vae",
                 "digits", {"beta": 4.0, "hidden": (128, 64), "epochs": 20}, "a compressed code that stays in use",
                 "recon"),
    "cvae": ("hourglass train cvae --epochs 10 --out runs/cvae", "cvae", "digits", {"epochs": 10},
             "samples of the class asked for", "conditional"),
    "semi": ("hourglass train cvae --set semi_supervised=true --keep-labels 100 --epochs 15 --out runs/semi",
             "cvae", "digits", {"semi_supervised": True, "keep_labels": 100, "epochs": 15},
             "classify from 100 labels", "semi"),
    "cvae-mnist": ("hourglass train cvae --preset cvae-mnist --data mnist --data-dir DIR", "cvae", "mnist",
                   {"preset": "cvae-mnist"}, "samples of the class asked for", "conditional"),
    "gan-mnist": ("hourglass train gan --preset gan-mnist --data mnist --data-dir DIR", "gan", "mnist",
                  {"preset": "gan-mnist"}, "digits of the class asked for (conditional: trained on the labels)",
                  "gan"),
    "gan-mnist-unconditional": ("hourglass train gan --preset gan-mnist-unconditional --data mnist --data-dir DIR",
                                "gan", "mnist", {"preset": "gan-mnist-unconditional"},
                                "readable digits of every class (unconditional: no labels)", "gan"),
    "m2-mnist": ("hourglass train cvae --preset m2-mnist --keep-labels 100 --data mnist --data-dir DIR", "cvae",
                 "mnist", {"preset": "m2-mnist", "keep_labels": 100}, "classify from 100 labels", "semi"),
    "vae-mnist": ("hourglass train vae --preset vae-mnist --data mnist --data-dir DIR", "vae", "mnist",
                  {"preset": "vae-mnist"}, "reconstruct and generate digits", "recon"),
    "keras-dense": ("hourglass train ae --preset keras-dense --data mnist --data-dir DIR", "ae", "mnist",
                    {"preset": "keras-dense"}, "reconstruct digits", "recon"),
    "keras-conv": ("hourglass train ae --preset keras-conv --data mnist --data-dir DIR", "ae", "mnist",
                   {"preset": "keras-conv"}, "reconstruct digits", "recon"),
}
TARGETS = {  # example -> (metric, test, text)
    "main": ("reconstructions_recognised", lambda v: v >= 0.90, ">= 90%"),
    "cvae-mnist": ("samples_recognised_as_asked", lambda v: v >= 0.95,
                   ">= 95%, spread >= 0.8 x that of reconstructions"),
    "gan-mnist": ("confident_samples", lambda v: v >= 0.80, ">= 80%, each class 5-15%"),
    "gan-mnist-unconditional": ("confident_samples", lambda v: v >= 0.80, ">= 80%, each class 5-15%"),
    "m2-mnist": ("classifier_accuracy", lambda v: v >= 0.88, ">= 88%"),
}
FIGURES = {  # example -> [(run figure, README figure)]
    "main": [("reconstructions.png", "main-reconstructions.png"), ("samples.png", "main-samples.png")],
    "cvae-mnist": [("samples.png", "cvae-mnist-samples.png")],
    "gan-mnist": [("samples.png", "gan-mnist-samples.png")],
    "m2-mnist": [("samples.png", "m2-mnist-samples.png")],
}


def run_example(name: str, judges: Judges, args) -> dict:
    command, model, data, options, purpose, measure = EXAMPLES[name]
    opts = dict(options)
    preset = opts.pop("preset", None)
    if data == "mnist":
        opts["data_dir"] = args.data_dir
    run_dir = Path(args.out) / "runs" / name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    t0, c0 = time.perf_counter(), time.process_time()
    run = hourglass.train(model, data, preset=preset, out=run_dir, progress=False, threads=args.threads or None,
                          seed=args.seed, **opts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    test = run.metrics["test"]
    j = judges.get(data)
    result = {"example": name, "command": command, "purpose": purpose, "fit_seconds": run.metrics["fit_seconds"],
              "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "threads": args.threads or "auto",
              "epochs": run.metrics["epochs"],
              "warnings": [w["code"] for w in run.metrics.get("warnings", [])]}
    for key in ("kl", "nll", "active_units", "sample_spread", "sample_spread_within_class", "fd_classifier",
                "fd_classifier_real", "sample_class_balance", "classifier_accuracy", "recon_bce", "knn_acc"):
        if key in test:
            result[key] = test[key]
    if measure == "recon":
        result.update(recognised_reconstructions(run, j))
        if run.model.generative:
            result.update({f"samples_{k}": v for k, v in unconditional_samples(run, j).items()
                           if k in ("confident_samples", "sample_spread")})
    elif measure == "conditional":
        result.update(conditional_samples(run, j))
    elif measure == "gan":
        result.update(gan_samples(run, j))
    elif measure == "semi":
        result.update(conditional_samples(run, j))
    for src, dst in FIGURES.get(name, []):
        if (run_dir / src).is_file() and args.figures:
            Path(args.figures).mkdir(parents=True, exist_ok=True)
            shutil.copy(run_dir / src, Path(args.figures) / dst)
    if name == "main" and args.figures:
        draw_main_samples(run, Path(args.figures) / "main-reconstructions.png")
    return result


def draw_main_samples(run, path: Path) -> None:
    """The README's main-job figure: 16 test digits over their reconstructions, labelled."""
    b = run.bundle()
    x = b.x_test[:16]
    rec = run.reconstruct(x)
    figures.save_rows(path, [run.prepare(x).numpy(), run.prepare(rec).numpy()], ["test digit", "reconstruction"],
                      [str(int(v)) for v in b.y_test[:16]], "the main job: test digits and their reconstructions")


def pct(v) -> str:
    return f"{100 * v:.1f}%" if isinstance(v, (int, float)) else "-"


def num(v, digits: int = 3) -> str:
    return f"{v:.{digits}g}" if isinstance(v, (int, float)) else "-"


def what_measured(r: dict) -> str:
    name = r["example"]
    if "classifier_accuracy" in r and r.get("example") in ("semi", "m2-mnist"):
        return (f"q(y\\|x) test accuracy **{pct(r['classifier_accuracy'])}**; samples recognised as the asked class "
                f"{pct(r.get('samples_recognised_as_asked'))}")
    if "samples_recognised_as_asked" in r:
        return (f"samples recognised as the asked class **{pct(r['samples_recognised_as_asked'])}**, "
                f"within-class spread {num(r['within_class_spread'], 2)} (real digits 1, the model's "
                f"reconstructions of real digits {num(r['reconstruction_spread'], 2)})")
    if "confident_samples" in r:
        text = (f"samples recognised with confidence >= 0.9: **{pct(r['confident_samples'])}**; classes among them "
                f"{pct(r['class_share_min'])} to {pct(r['class_share_max'])}; spread {num(r['sample_spread'], 2)}")
        if "samples_as_asked" in r:
            text += f"; recognised as the class asked for {pct(r['samples_as_asked'])}"
        return text
    text = f"test reconstructions recognised as their digit **{pct(r['reconstructions_recognised'])}**"
    if "active_units" in r:
        text += f"; {r['active_units']} active code units, KL {num(r['kl'])} nats, NLL {num(r['nll'], 4)}"
    if name == "beta-vae" and "samples_sample_spread" in r:
        text += f"; sample spread {num(r['samples_sample_spread'], 2)}"
    return text


def verdict(r: dict) -> str:
    t = TARGETS.get(r["example"])
    if t is None:
        return "-"
    key, ok, text = t
    v = r.get(key)
    met = v is not None and ok(v)
    if "class_share_min" in r and met:
        met = r["class_share_min"] >= 0.05 and r["class_share_max"] <= 0.15
    if r["example"] == "cvae-mnist" and met:  # as varied as the decoder can draw real digits, within 20%
        met = r["within_class_spread"] >= 0.8 * r["reconstruction_spread"]
    return f"{text}: {'met' if met else 'not met'}"


def table(results: list[dict]) -> str:
    rows = ["| example | for | judged by the independent CNN | target | fit s | CPU s | warnings |",
            "|---|---|---|---|---:|---:|---|"]
    for r in results:
        rows.append(f"| `{r['command'].replace('hourglass train ', '')}` | {r['purpose']} | {what_measured(r)} | "
                    f"{verdict(r)} | {r['fit_seconds']:.1f} | {r['cpu_seconds']:.0f} | "
                    f"{', '.join(r['warnings']) or 'none'} |")
    return "\n".join(rows) + "\n"


def write_readme(readme: Path, results: list[dict]) -> None:
    """The table into README.md: the rows of ``results``, and for the examples without a result in
    ``--out`` the rows the README already has (so rerunning one example changes its row alone)."""
    page = readme.read_text()
    if BEGIN not in page or END not in page:
        raise SystemExit(f"{readme} has no {BEGIN} ... {END} markers")
    head, rest = page.split(BEGIN, 1)
    old, tail = rest.split(END, 1)
    old_rows = {line.split(" | ")[0]: line for line in old.strip().splitlines()[2:]}
    new_rows = dict(zip((r["example"] for r in results), table(results).splitlines()[2:]))
    rows = []
    for name, (command, *_) in EXAMPLES.items():
        key = f"| `{command.replace('hourglass train ', '')}`"
        row = new_rows.get(name) or old_rows.get(key)
        if row:
            rows.append(row)
    text = "\n".join(table([]).splitlines() + rows) + "\n"
    readme.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(EXAMPLES), help="comma-separated examples (default: all)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads for training (0: hourglass' automatic count, which follows the free cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "examples"))
    ap.add_argument("--figures", default=str(ROOT / "docs" / "figures"), help="where the README's figures go")
    ap.add_argument("--readme", action="store_true",
                    help="write the rows measured into README.md's table (the other rows stay as they are)")
    ap.add_argument("--table-only", action="store_true", help="train nothing: rebuild the table from the JSON")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.table_only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(EXAMPLES))
        if unknown:
            raise SystemExit(f"unknown example(s) {unknown}; choose from {', '.join(EXAMPLES)}")
        judges = Judges(out, args.data_dir)
        for name in wanted:
            if EXAMPLES[name][2] == "mnist" and not (Path(args.data_dir) / "train-images-idx3-ubyte.gz").is_file():
                print(f"{name}: skipped, no MNIST IDX files in {args.data_dir}", file=sys.stderr)
                continue
            load = os.getloadavg()[0]
            result = run_example(name, judges, args)
            result.update(load_before=round(load, 2), load_after=round(os.getloadavg()[0], 2),
                          cpus=os.cpu_count(), torch=torch.__version__, python=platform.python_version())
            (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
            print(f"{name}: {what_measured(result)}; {verdict(result)}; fit {result['fit_seconds']:.1f} s, "
                  f"wall {result['wall_seconds']:.1f} s, CPU {result['cpu_seconds']:.0f} s "
                  f"(load {result['load_before']} -> {result['load_after']})",
                  flush=True)
    results = [json.loads((out / f"{n}.json").read_text()) for n in EXAMPLES if (out / f"{n}.json").is_file()]
    text = table(results)
    (out / "examples.md").write_text(text)
    print(text)
    if args.readme:
        write_readme(ROOT / "README.md", results)
        print("wrote the table into README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
