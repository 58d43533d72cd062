"""The ``hourglass`` command line: a thin adapter. Each command parses, calls the library, prints.

Training and data options are generated from their dataclasses (``TrainConfig``, ``DataOptions`` and
the common model fields ``latent_dim`` and ``lr``), so the flags, their help, their defaults and their
validation are the library's own. Start-up imports nothing heavy: ``hourglass --help``, ``--version``
and ``list`` answer without loading torch.

Every error a user or a file can cause is a ``HourglassError``, printed as one line
(``hourglass: error: ...``) with exit status 2; ``--debug`` adds its traceback. Any other exception is
a bug in hourglass: its traceback is shown with a line saying so, and the exit status is 1. Training
stopped by SIGTERM or Ctrl-C (after its current step, with a checkpoint) prints one line saying how to
continue and exits with 128 + the signal's number (143, 130), as a shell expects.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import traceback
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from .config import ConfigError, describe_type, field_types, parse_set_options
from .errors import HourglassError, PathError, TrainingInterrupted, path_access
from .options import DataOptions, TrainConfig

EXAMPLES = """\
examples:
  hourglass train vae --out runs/vae                 # VAE on the embedded digits, ~15 s on 2 CPU cores
  hourglass train ae --preset keras-dense --data mnist --data-dir DIR --out runs/dense
  hourglass train vae --set beta=4 --set hidden=512,256 --latent-dim 2 --out runs/vae2d
  hourglass train vae --help                         # also lists the vae's config fields
  hourglass train --resume runs/vae --epochs 40      # continue a run to 40 epochs
  hourglass evaluate runs/vae
  hourglass encode runs/vae --input data.npy --output codes.npy
  hourglass train ae --data images/ --image-size 32 --out runs/img   # a folder with a sub-folder per class
  hourglass train vae --data wine.csv --label-column kind --out runs/wine
  hourglass encode runs/wine --input wine.csv --output codes.csv   # row, label, z0, z1, ...
  hourglass sample runs/vae -n 64 --output samples.png
  hourglass denoise runs/dae --noise gaussian:0.5 --output denoised.png
  hourglass interpolate runs/vae --from 0 --to 7 --steps 10 --output strip.png
  hourglass export runs/vae --format onnx             # encoder.onnx, decoder.onnx in runs/vae/onnx
  hourglass train vae --anomaly-class 0 --out runs/vae-no0  # anomaly AUC of the unseen class 0
  hourglass train cvae --set semi_supervised=true --keep-labels 100 --out runs/semi  # 100 labels
  hourglass compare --data digits --latent-dim 2 --methods pca,tsne,ae,vae --out cmp
  hourglass report runs/vae runs/ae2d --output both.html
  hourglass claims --data-dir DIR --out claims      # the lecture notes' claims checked: claims.html
  torchrun --standalone --nproc-per-node 4 -m hourglass train vae --out runs/vae4   # 4 GPUs (README)
"""
MODEL_FLAGS = ("latent_dim", "lr")  # model config fields common to every model, given their own flags
RESUME_KEEPS = ("epochs", "progress", "threads", "checkpoint_interval")  # what --resume may change
OUTPUT_SUFFIXES = (".npy", ".csv", ".parquet")  # codes and reconstructions (row number and label beside them)


class UsageError(ConfigError):
    """A command-line usage error found after parsing (one line, exit 2)."""


# -- options generated from the dataclasses -------------------------------------------------------
def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_dataclass_options(parser, cls: type, title: str, only: tuple[str, ...] | None = None) -> list[str]:
    """One flag per field of dataclass ``cls`` (``--field-name``), typed, with the field's help and
    default; values stay text and are converted and validated by the library. Returns the field names."""
    group = parser.add_argument_group(title)
    types_ = field_types(cls)
    names = []
    for f in dataclasses.fields(cls):
        if only is not None and f.name not in only:
            continue
        tp = types_[f.name]
        help_ = f"{f.metadata.get('help', '')} (default: {f.default})".replace("%", "%%")
        if tp is bool:
            group.add_argument(_flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                               help=help_)
        else:
            choices = get_args(tp) if get_origin(tp) is Literal else None
            group.add_argument(_flag(f.name), dest=f.name, default=None, choices=choices,
                               metavar=None if choices else describe_type(tp).upper().replace(" ", "_"),
                               help=help_)
        names.append(f.name)
    return names


def _parser(model_help: str | None = None) -> argparse.ArgumentParser:
    from . import __version__
    from .models.common import BaseConfig

    p = argparse.ArgumentParser(
        prog="hourglass",
        description="Train, evaluate and use autoencoders (AE, VAE and the rest of the family).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"hourglass {__version__}")
    p.add_argument("--debug", action="store_true", help="show the traceback of errors, not just their message")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    ls = sub.add_parser("list", help="models, presets and data sets, one line each")
    ls.add_argument("--fields", metavar="MODEL", help="also list MODEL's config fields (for --set)")

    t = sub.add_parser("train", help="train a model and write a run directory",
                       description="Train MODEL on a data set; writes model.safetensors, config.json, history.csv, "
                                   "metrics.json, figures, report.html and checkpoints/ (what --resume continues "
                                   "from) into --out. SIGTERM or Ctrl-C stop after the current step with a "
                                   "checkpoint.",
                       epilog=model_help, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("model", nargs="?", help="model name (see `hourglass list`); omit with --resume")
    t.add_argument("--data", default="digits",
                   help="data set name (digits, mnist, fashion-mnist, kmnist, plane3d), a folder of images, or a "
                        ".csv/.tsv/.parquet/.npy/.npz file (default: digits, embedded)")
    t.add_argument("--preset", help="named preset for the model (see `hourglass list`)")
    t.add_argument("--out", help="run directory to write: a new or empty folder (default: runs/MODEL-DATA)")
    t.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted or finished run (it may change "
                        f"{', '.join(_flag(k) for k in RESUME_KEEPS)})")
    t.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="any model config field or training option, e.g. --set beta=4 --set hidden=256,64")
    t.add_argument("--tensorboard", action="store_true",
                   help="log losses and image grids to RUN_DIR/tensorboard each epoch (needs the tensorboard extra)")
    t.set_defaults(option_names=[
        *add_dataclass_options(t, TrainConfig, "training options"),
        *add_dataclass_options(t, DataOptions, "data options"),
        *add_dataclass_options(t, BaseConfig, "model options (every model; others with --set KEY=VALUE)",
                               only=MODEL_FLAGS),
    ])

    e = sub.add_parser("evaluate", help="metrics of a run (the numbers metrics.json holds), or on other data")
    e.add_argument("run_dir")
    e.add_argument("--data", help="evaluate on this data set or file instead, split as the run's own data")
    e.add_argument("--output", help="also write the metrics to this JSON file")
    e.add_argument("--anomaly-class", type=int, metavar="C",
                   help="ROC-AUC of the anomaly score for class C vs the rest (meaningful for a run trained "
                        "without C; default: the class the run left out, if any)")
    e.add_argument("--iwae-samples", type=int, metavar="K", help="importance samples for the NLL (VAE-type models)")

    cm = sub.add_parser("compare", help="PCA, kernel PCA, LDA, Isomap, LLE, t-SNE, UMAP and autoencoders side by side",
                        description="Fit every method on the same scaled, flattened training data; write "
                                    "comparison.csv, comparison.md and comparison.png into --out. Every method "
                                    "is unsupervised except lda, which is fitted with the training labels "
                                    "(column 'uses labels').")
    cm.add_argument("--data", default="digits", help="data set name or file (default: digits)")
    cm.add_argument("--data-dir")
    cm.add_argument("--latent-dim", type=int, default=2, help="embedding size (default 2)")
    cm.add_argument("--methods", default="pca,kernel-pca,isomap,lle,tsne,umap,ae,vae",
                    help="comma-separated: pca, kernel-pca, lda, isomap, lle, tsne, umap, or any model with an "
                         "encoder (default: %(default)s). lda is supervised (it uses the training labels), "
                         "gives at most classes - 1 dimensions and has no inverse map, so it is not in the "
                         "default list")
    cm.add_argument("--out", required=True, help="output directory")
    cm.add_argument("--epochs", type=int, default=30, help="training epochs of the autoencoders (default 30)")
    cm.add_argument("--max-train", type=int, help="use a random subset of this many training examples")
    cm.add_argument("--seed", type=int, default=0)
    cm.add_argument("--threads", type=int, metavar="N",
                    help="torch threads of the autoencoders and BLAS/OpenMP threads of the others (default: automatic)")

    cl = sub.add_parser("claims", help="check the lecture notes' claims about autoencoders: one page, a verdict each",
                        description="Run the experiment behind each claim (a control beside it, seeds, an "
                                    "independent judge) and write claims.html, claims.md, claims.json and "
                                    "figures/ into --out. The full run trains on MNIST (--data-dir with its IDX "
                                    "files, else downloaded), three seeds where an effect is small; --quick is a "
                                    "few minutes on the embedded digits, with indicative verdicts.")
    cl.add_argument("--out", required=True, help="output directory (the page is written again on every run)")
    cl.add_argument("--quick", action="store_true", help="small budgets and one seed, on digits unless --data says")
    cl.add_argument("--data", help="labelled image data set: mnist (default), fashion-mnist, kmnist or digits")
    cl.add_argument("--data-dir", help="folder with the data set's IDX files (default: download them)")
    cl.add_argument("--only", metavar="N[,N-M]", help="check only these claims, e.g. 1,7-9 (default: all)")
    cl.add_argument("--seeds", metavar="S,S,...", help="seeds for effects that need a spread (default 0,1,2; quick: 0)")
    cl.add_argument("--threads", type=int, help="torch threads (default: automatic, following the free cores)")

    rp = sub.add_parser("report", help="(re)build report.html of a run, or one page comparing several runs")
    rp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    rp.add_argument("--output", help="HTML file (default: RUN_DIR/report.html for one run; required for several)")

    for name, helptext in (("encode", "codes of examples, as .npy, .csv or .parquet"),
                           ("reconstruct", "reconstructions of examples")):
        c = sub.add_parser(name, help=helptext)
        c.add_argument("run_dir")
        c.add_argument("--input", help="examples: an image folder, a .csv/.tsv/.parquet table (the run's columns), "
                                       ".npy, .npz or IDX file (default: the run's test data)")
        c.add_argument("--output", required=True,
                       help="output file: .npy (values only), .csv or .parquet (row number, label, values)"
                       + ("; or .png (originals over reconstructions)" if name == "reconstruct" else ""))
        c.add_argument("--limit", type=int, help="only the first N examples")

    d = sub.add_parser("denoise", help="corrupt examples, reconstruct them: noisy / denoised / clean rows")
    d.add_argument("run_dir")
    d.add_argument("--input", help="clean examples: .npy, .npz, .csv or IDX file (default: the run's test data)")
    d.add_argument("--noise", default="gaussian:0.5",
                   help="KIND:LEVEL with KIND gaussian (std), masking or salt_pepper (fraction); default gaussian:0.5")
    d.add_argument("--limit", type=int, default=16, help="how many examples (default 16)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--output", required=True, help="output file: .png (three rows) or .npy (the denoised examples)")

    it = sub.add_parser("interpolate", help="decode the straight line between the codes of two examples")
    it.add_argument("run_dir")
    it.add_argument("--input", help="examples: .npy, .npz, .csv or IDX file (default: the run's test data)")
    it.add_argument("--from", dest="i", type=int, default=0, help="index of the first example (default 0)")
    it.add_argument("--to", dest="j", type=int, default=1, help="index of the second example (default 1)")
    it.add_argument("--steps", type=int, default=10, help="images in the strip, end points included (default 10)")
    it.add_argument("--output", required=True, help="output file: .png (a strip) or .npy")

    ex = sub.add_parser("export", help="write the encoder and decoder as ONNX or TorchScript files",
                        description="Write encoder and decoder graphs that take and give data in the run's original "
                                    "units (its scaling is folded in), with a dynamic batch size, and export.json "
                                    "describing them. ONNX: opset 17 unless --opset; TorchScript: torch.jit.trace. "
                                    "A model without an encoder (gan) exports its generator as the decoder only.")
    ex.add_argument("run_dir")
    ex.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="default: onnx")
    ex.add_argument("--out", help="output folder (default: RUN_DIR/onnx or RUN_DIR/torchscript)")
    ex.add_argument("--opset", type=int, help="ONNX opset, 7 to 20 (default 17)")

    s = sub.add_parser("sample", help="draw new examples from a generative model")
    s.add_argument("run_dir")
    s.add_argument("-n", type=int, default=64, help="how many (default 64)")
    s.add_argument("--class", dest="klass", help="class to draw (conditional models): index or name")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--output", required=True, help="output file: .png (a grid) or .npy")
    return p


def _model_help(argv: list[str]) -> str | None:
    """For ``hourglass train MODEL --help``: MODEL's config fields and defaults, as the help's epilog."""
    if len(argv) < 2 or argv[0] != "train" or not {"-h", "--help"} & set(argv) or argv[1].startswith("-"):
        return None
    from .registry import catalog

    if argv[1] not in catalog()[0]:
        return None
    from .config import config_help
    from .models import get_model_class

    cls = get_model_class(argv[1])
    lines = [f"config fields of {argv[1]} (set any with --set KEY=VALUE):"]
    lines += [f"  {name:<18} {helptext} [{tdesc}; default {default!r}]"
              for name, tdesc, default, helptext in config_help(cls.config_cls) if name != "input_shape"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(_model_help(argv))
    args = parser.parse_args(argv)
    args.argv = argv
    if args.command is None:
        parser.print_help()
        return 2
    import warnings

    from .errors import HourglassWarning

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, HourglassWarning):
            print(f"hourglass: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        return COMMANDS[args.command](args)
    except TrainingInterrupted as e:
        dist = sys.modules.get("hourglass.training.distributed")
        if dist is None or dist.current().is_main:  # one line from a torchrun job: rank 0's
            print(f"hourglass: {e}", file=sys.stderr)
        return 128 + e.signum if e.signum else 2
    except HourglassError as e:
        if args.debug:
            traceback.print_exc()
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"hourglass: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hourglass: interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - anything else is a bug: show it, say so
        traceback.print_exc()
        print("hourglass: internal error: the traceback above is a bug in hourglass, not in your input; "
              "please report it", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = shown
        dist = sys.modules.get("hourglass.training.distributed")  # loaded only when training ran
        if dist is not None:
            dist.teardown()


# -- commands -------------------------------------------------------------------------------------
def cmd_list(args) -> int:
    from .data import list_datasets
    from .registry import catalog

    models, presets = catalog()
    print("models:")
    for name, summary in models.items():
        print(f"  {name:<14} {summary}")
    print("presets (--preset):")
    for name, (model, description) in presets.items():
        print(f"  {name:<14} [{model}] {description}")
    print("data sets (--data):")
    for name, desc in list_datasets().items():
        print(f"  {name:<14} {desc}")
    if args.fields:
        from .config import config_help
        from .models import get_model_class

        cls = get_model_class(args.fields)
        print(f"config fields of {args.fields} (--set KEY=VALUE):")
        for fname, tdesc, default, helptext in config_help(cls.config_cls):
            print(f"  {fname:<18} {helptext} [{tdesc}; default {default!r}]")
        print("training options (--set KEY=VALUE, or --KEY VALUE):")
        for fname, tdesc, default, helptext in config_help(TrainConfig):
            print(f"  {fname:<18} {helptext} [{tdesc}; default {default!r}]")
    return 0


def _given_options(args) -> dict[str, Any]:
    """The generated options the user gave (None: not given; the library fills in the defaults)."""
    return {k: getattr(args, k) for k in args.option_names if getattr(args, k) is not None}


def cmd_train(args) -> int:
    given = _given_options(args)
    if args.resume:
        from .run.fit import resume

        fixed = sorted(set(given) - set(RESUME_KEEPS)) + [k for k in ("preset", "out") if getattr(args, k)]
        if args.sets:
            fixed.append("set")
        if args.model or fixed:
            what = f"MODEL ({args.model})" if args.model else ", ".join(_flag(k) for k in fixed)
            raise UsageError(f"--resume continues the run as it was configured; {what} cannot change "
                             f"(it may change {', '.join(_flag(k) for k in RESUME_KEEPS)})")
        run = resume(args.resume, epochs=_number(given.get("epochs"), "epochs", int),
                     progress=given.get("progress", True), threads=_number(given.get("threads"), "threads", int),
                     checkpoint_interval=_number(given.get("checkpoint_interval"), "checkpoint_interval", float),
                     tensorboard=args.tensorboard)
    else:
        from .run.fit import train

        if not args.model:
            raise UsageError("train needs a MODEL (see `hourglass list`), or --resume RUN_DIR")
        options: dict[str, Any] = parse_set_options(args.sets)
        for k, v in given.items():
            if k in options:
                raise UsageError(f"{k} given twice: as {_flag(k)} and in --set")
            options[k] = v
        out = args.out or str(Path("runs") / f"{args.model}-{Path(args.data).stem}")
        run = train(args.model, args.data, preset=args.preset, out=out, config_from_strings=True,
                    tensorboard=args.tensorboard, **options)
    if run.path is None:  # a rank other than 0 of a torchrun job: rank 0 reports and writes
        return 0
    print(f"{run.model_name}: {run.summary()}")
    for w in run.metrics.get("warnings") or []:  # collapse found by the diagnostics, with the usual cures
        print(f"hourglass: warning: {w['message']}", file=sys.stderr)
    print(f"run written to {run.path}" + (" (report.html: the warnings in a box at the top)"
                                          if run.metrics.get("warnings") else ""))
    return 0


def _number(value: str | None, key: str, kind: type) -> Any:
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise UsageError(f"{_flag(key)}: {value!r} is not a {'whole ' if kind is int else ''}number") from None


def cmd_evaluate(args) -> int:
    import json

    from .run import load

    run = load(args.run_dir)
    if args.iwae_samples is not None:
        from .memory import check_count

        # the importance weights of one evaluation batch: K per example, float64 at most
        check_count("--iwae-samples", args.iwae_samples, 8 * run.record.train.eval_batch_size)
    splits = run.splits(args.data) if args.data else None
    left_out = run.record.data.exclude_class
    if args.anomaly_class is not None and args.anomaly_class != left_out:
        print(f"hourglass: note: the run was not trained without class {args.anomaly_class}: its anomaly AUC "
              "says little", file=sys.stderr)
    metrics = {"data": args.data or run.record.data.name,
               **run.evaluate(splits, anomaly_class=args.anomaly_class, iwae_samples=args.iwae_samples)}
    print(json.dumps(metrics, indent=2))
    if args.output:
        from .training.checkpoint import write_json

        write_json(args.output, metrics)
    return 0


def _check_output(path: str, allowed: tuple[str, ...]) -> Path:
    p = Path(path)
    if p.suffix.lower() not in allowed:
        raise UsageError(f"--output {path!r}: use a file ending in {' or '.join(allowed)}")
    if p.is_dir():
        raise PathError(f"--output {path}: is a directory; give a file name")
    with path_access(p.parent, "create the folder"):
        p.parent.mkdir(parents=True, exist_ok=True)
    return p


def _save_npy(path: Path, array) -> None:
    import numpy as np

    with path_access(path, "write"):
        np.save(path, array)


def _inputs(args, limit: int | None):
    """The run in ``args.run_dir`` and the raw examples to feed it: ``--input``, or its test data."""
    from .run import load

    run = load(args.run_dir)
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be >= 1, got {limit}")
    x, y = run.examples(args.input, limit=limit)
    return run, x, y


def _stream_out(args, what: str, out: Path) -> int:
    """Write codes or reconstructions chunk by chunk (one chunk in memory, whatever the input's size)."""
    from .data.writers import ChunkWriter
    from .run import load

    run = load(args.run_dir)
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be >= 1, got {args.limit}")
    n, labelled, chunks = run.stream(what, args.input, limit=args.limit)
    if n == 0:
        raise UsageError("no examples to process")
    shape = (run.model.latent_dim,) if what == "encode" else run.input_shape
    writer = ChunkWriter(out, n, run.output_names(what), labelled, shape)
    try:
        for rows, labels, values in chunks:
            writer.write(rows, labels, values)
    except BaseException:
        writer.close(complete=False)
        raise
    writer.close()
    return n


def cmd_encode(args) -> int:
    out = _check_output(args.output, OUTPUT_SUFFIXES)
    n = _stream_out(args, "encode", out)
    print(f"wrote {n} codes to {out}")
    return 0


def cmd_reconstruct(args) -> int:
    out = _check_output(args.output, (*OUTPUT_SUFFIXES, ".png"))
    if out.suffix.lower() != ".png":
        n = _stream_out(args, "reconstruct", out)
        print(f"wrote {n} reconstructions to {out}")
        return 0
    run, x, y = _inputs(args, args.limit)
    x, y = x[:16], (y[:16] if y is not None else None)
    recon = run.reconstruct(x, y)
    from .report.figures import save_rows, save_table_rows

    scaled = [run.prepare(x).numpy(), run.scaler.transform(recon)]
    if run.record.data.kind == "image":
        save_rows(out, scaled)
    else:
        save_table_rows(out, scaled, ["input (scaled)", "reconstruction"])
    print(f"wrote {len(recon)} reconstructions to {out}")
    return 0


def cmd_sample(args) -> int:
    out = _check_output(args.output, (".npy", ".png"))
    from .run import load

    run = load(args.run_dir)
    n = run.check_sample_count(args.n)
    y = None
    if args.klass is not None:
        if run.model.num_classes is None:
            raise UsageError(f"--class needs a model that takes labels; {run.model_name!r} does not")
        y = run.class_index(args.klass)
    elif run.model.conditional:
        import numpy as np

        y = np.arange(n) % run.model.num_classes  # every class in turn
    samples = run.sample(n, y, seed=args.seed)
    if out.suffix.lower() == ".npy":
        _save_npy(out, samples)
    else:
        from .report.figures import save_grid

        if run.record.data.kind != "image":
            raise UsageError("this run's data are not images: write samples to a .npy file")
        save_grid(out, run.scaler.transform(samples))
    print(f"wrote {args.n} samples to {out}")
    return 0


def cmd_denoise(args) -> int:
    out = _check_output(args.output, (".npy", ".png"))
    run, x, y = _inputs(args, args.limit)
    noisy, denoised, clean = run.denoise(x, y, args.noise, seed=args.seed)
    if out.suffix.lower() == ".npy":
        _save_npy(out, run.scaler.inverse_transform(denoised))
    else:
        from .report.figures import save_rows

        if run.record.data.kind != "image":
            raise UsageError("this run's data are not images: write the denoised examples to a .npy file")
        save_rows(out, [noisy, denoised, clean])
    mse = float(((denoised - clean) ** 2).mean())
    print(f"denoised {len(clean)} examples corrupted with {args.noise}: MSE to the clean data {mse:.4g}; wrote {out}")
    return 0


def cmd_interpolate(args) -> int:
    out = _check_output(args.output, (".npy", ".png"))
    run, x, y = _inputs(args, None)
    strip = run.interpolate(x, args.i, args.j, args.steps, y)
    if out.suffix.lower() == ".npy":
        _save_npy(out, run.scaler.inverse_transform(strip))
    else:
        from .report.figures import save_rows

        if run.record.data.kind != "image":
            raise UsageError("this run's data are not images: write the interpolation to a .npy file")
        save_rows(out, [strip])
    print(f"wrote {args.steps} images from example {args.i} to example {args.j} to {out}")
    return 0


def cmd_export(args) -> int:
    from .export import export_run

    options = {}
    if args.opset is not None:
        if args.format != "onnx":
            raise UsageError("--opset is for --format onnx")
        options["opset"] = args.opset
    record = export_run(args.run_dir, args.out, args.format, **options)
    if "note" in record:
        print(f"hourglass: note: {record['note']}", file=sys.stderr)
    print(f"wrote {', '.join(record['files'])} to {record['out_dir']}")
    return 0


def cmd_compare(args) -> int:
    from .compare import compare

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    result = compare(args.data, data_dir=args.data_dir, latent_dim=args.latent_dim, methods=methods, out=args.out,
                     epochs=args.epochs, max_train=args.max_train, seed=args.seed, threads=args.threads, log=print)
    print(result.markdown)
    print(f"wrote comparison.csv, comparison.md and comparison.png to {args.out}")
    return 0


def cmd_claims(args) -> int:
    from .claims import run_claims

    seeds = None
    if args.seeds is not None:
        try:
            seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
        except ValueError:
            raise UsageError(f"--seeds {args.seeds!r}: comma-separated whole numbers, e.g. 0,1,2") from None
        if not seeds:
            raise UsageError(f"--seeds {args.seeds!r}: name at least one seed")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads {args.threads}: at least 1")
    record = run_claims(args.out, quick=args.quick, data=args.data, data_dir=args.data_dir, only=args.only,
                        seeds=seeds, threads=args.threads, command=shlex.join(["hourglass", *args.argv]),
                        log=lambda m: print(m, file=sys.stderr))
    out = Path(args.out)
    for e in record["claims"]:
        print(f"{e['number']:>2}. {e['title']}: {e['verdict']}")
    print(f"wrote {out / 'claims.html'}, {out / 'claims.md'} and {out / 'claims.json'}")
    if record["meta"]["failed"]:
        print(f"hourglass: claims {', '.join(map(str, record['meta']['failed']))}: the experiment failed (see above "
              "and the page); this is a bug in hourglass", file=sys.stderr)
        return 1
    return 0


def cmd_report(args) -> int:
    from .run import load, write_comparison_report

    runs = [load(p) for p in args.run_dirs]
    if len(runs) == 1:
        out = runs[0].write_report(output=args.output)
    else:
        if not args.output:
            raise UsageError("several runs make one comparison page: give --output FILE.html")
        out = write_comparison_report(runs, args.output)
    print(f"wrote {out}")
    return 0


COMMANDS = {
    "denoise": cmd_denoise,
    "interpolate": cmd_interpolate,
    "list": cmd_list,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "encode": cmd_encode,
    "reconstruct": cmd_reconstruct,
    "sample": cmd_sample,
    "compare": cmd_compare,
    "claims": cmd_claims,
    "export": cmd_export,
    "report": cmd_report,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
