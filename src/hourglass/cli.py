"""The ``hourglass`` command line: parses arguments, calls the library, prints. Nothing runs at import.

Every error a user can cause (bad option, bad data, bad run directory, a diverging run) is printed
as one line, ``hourglass: error: ...``, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXAMPLES = """\
examples:
  hourglass train vae --out runs/vae                 # VAE on the embedded digits, ~10 s on 2 CPU cores
  hourglass train ae --preset keras-dense --data mnist --data-dir DIR --out runs/dense
  hourglass train vae --set beta=4 --set hidden=512,256 --latent-dim 2 --out runs/vae2d
  hourglass train --resume runs/vae --epochs 40      # continue a run to 40 epochs
  hourglass evaluate runs/vae
  hourglass encode runs/vae --input data.npy --output codes.npy
  hourglass sample runs/vae -n 64 --output samples.png
  hourglass denoise runs/dae --noise gaussian:0.5 --output denoised.png
  hourglass interpolate runs/vae --from 0 --to 7 --steps 10 --output strip.png
  hourglass train vae --anomaly-class 0 --out runs/vae-no0  # anomaly AUC of the unseen class 0
  hourglass train cvae --set semi_supervised=true --keep-labels 100 --out runs/semi  # 100 labels
  hourglass compare --data digits --latent-dim 2 --methods pca,tsne,ae,vae --out cmp
  hourglass report runs/vae runs/ae2d --output both.html
"""


class CLIError(Exception):
    """A usage error found after parsing (printed as one line, exit 2)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hourglass",
        description="Train, evaluate and use autoencoders (AE, VAE and the rest of the family).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    p.add_argument("--version", action="version", version=f"hourglass {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    ls = sub.add_parser("list", help="models, presets and data sets, one line each")
    ls.add_argument("--fields", metavar="MODEL", help="also list MODEL's config fields (for --set)")

    t = sub.add_parser("train", help="train a model and write a run directory",
                       description="Train MODEL on a data set; writes model.safetensors, config.json, history.csv, "
                                   "metrics.json and figures into --out.")
    t.add_argument("model", nargs="?", help="model name (see `hourglass list`); omit with --resume")
    t.add_argument("--preset", help="named preset for the model (see `hourglass list`)")
    t.add_argument("--data", default="digits",
                   help="data set name (digits, mnist, fashion-mnist, kmnist, plane3d) or a .npy/.npz/.csv file "
                        "(default: digits, embedded)")
    t.add_argument("--data-dir", help="directory holding the IDX files of mnist-like data sets ($HOURGLASS_DATA)")
    t.add_argument("--epochs", type=int, help="training epochs (default 30, or the preset's)")
    t.add_argument("--batch-size", type=int, help="batch size (default 64, or the preset's)")
    t.add_argument("--latent-dim", type=int, help="code size (default 16, or the preset's)")
    t.add_argument("--lr", type=float, help="learning rate (default 1e-3, or the preset's)")
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    t.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    t.add_argument("--val-fraction", type=float, help="share of training data held out for validation (default 0.1)")
    t.add_argument("--patience", type=int, help="early stopping after this many epochs without improvement")
    t.add_argument("--scaling", default="auto", choices=["auto", "range", "minmax", "standard", "none"],
                   help="how data are scaled (auto: images to [0,1]; tables minmax for bce, standard for mse)")
    t.add_argument("--test-fraction", type=float, default=0.2, help="test share for data without a split (0.2)")
    t.add_argument("--label-column", help="label column of a CSV file (name or index)")
    t.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="any model config field or training option, e.g. --set beta=4 --set hidden=256,64")
    t.add_argument("--out", help="run directory to write (default: runs/MODEL-DATA)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted or finished run")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--anomaly-class", type=int, metavar="C",
                   help="leave class C out of the training data and report its anomaly AUC in metrics.json")
    t.add_argument("--keep-labels", type=int, metavar="N",
                   help="semi-supervised: keep N training labels (balanced over classes), the rest unknown; "
                        "for cvae --set semi_supervised=true, or aae --set use_labels=true")
    t.add_argument("--tensorboard", action="store_true",
                   help="log losses and image grids to RUN_DIR/tensorboard each epoch (needs the tensorboard extra)")

    e = sub.add_parser("evaluate", help="metrics of a run on its test data (or another data set)")
    e.add_argument("run_dir")
    e.add_argument("--data", help="evaluate on this data set's test split instead")
    e.add_argument("--data-dir")
    e.add_argument("--output", help="also write the metrics to this JSON file")
    e.add_argument("--anomaly-class", type=int, metavar="C",
                   help="ROC-AUC of the anomaly score for class C vs the rest (meaningful for a run trained "
                        "without C; default: the class the run left out, if any)")
    e.add_argument("--iwae-samples", type=int, metavar="K", help="importance samples for the NLL (VAE-type models)")

    cm = sub.add_parser("compare", help="PCA, kernel PCA, Isomap, LLE, t-SNE, UMAP and autoencoders side by side",
                        description="Fit every method on the same scaled, flattened training data; write "
                                    "comparison.csv, comparison.md and comparison.png into --out.")
    cm.add_argument("--data", default="digits", help="data set name or file (default: digits)")
    cm.add_argument("--data-dir")
    cm.add_argument("--latent-dim", type=int, default=2, help="embedding size (default 2)")
    cm.add_argument("--methods", default="pca,kernel-pca,isomap,lle,tsne,umap,ae,vae",
                    help="comma-separated: pca, kernel-pca, isomap, lle, tsne, umap, or any model with an encoder")
    cm.add_argument("--out", required=True, help="output directory")
    cm.add_argument("--epochs", type=int, default=30, help="training epochs of the autoencoders (default 30)")
    cm.add_argument("--max-train", type=int, help="use a random subset of this many training examples")
    cm.add_argument("--seed", type=int, default=0)

    rp = sub.add_parser("report", help="(re)build report.html of a run, or one page comparing several runs")
    rp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    rp.add_argument("--output", help="HTML file (default: RUN_DIR/report.html for one run; required for several)")

    for name, helptext in (("encode", "codes of examples, as .npy"), ("reconstruct", "reconstructions of examples")):
        c = sub.add_parser(name, help=helptext)
        c.add_argument("run_dir")
        c.add_argument("--input", help="examples: .npy, .npz, .csv or IDX file (default: the run's test data)")
        c.add_argument("--output", required=True,
                       help="output file: .npy" + (" or .png (originals over reconstructions)" if name == "reconstruct" else ""))
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

    s = sub.add_parser("sample", help="draw new examples from a generative model")
    s.add_argument("run_dir")
    s.add_argument("-n", type=int, default=64, help="how many (default 64)")
    s.add_argument("--class", dest="klass", type=int, help="class to draw (conditional models)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--output", required=True, help="output file: .png (a grid) or .npy")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from .config import ConfigError
    from .train.trainer import TrainingError

    try:
        return COMMANDS[args.command](args)
    except (CLIError, ValueError, ConfigError, TrainingError, FileNotFoundError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"hourglass: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hourglass: interrupted", file=sys.stderr)
        return 130


def cmd_list(args) -> int:
    from .config import config_help
    from .data import list_datasets
    from .registry import get_model_class, list_models, list_presets

    print("models:")
    for name in list_models():
        print(f"  {name:<14} {get_model_class(name).summary}")
    print("presets (--preset):")
    for name, p in list_presets().items():
        print(f"  {name:<14} [{p.model}] {p.description}")
    print("data sets (--data):")
    for name, desc in list_datasets().items():
        print(f"  {name:<14} {desc}")
    if args.fields:
        cls = get_model_class(args.fields)
        print(f"config fields of {args.fields} (--set KEY=VALUE):")
        for fname, tdesc, default, helptext in config_help(cls.config_cls):
            print(f"  {fname:<18} {helptext} [{tdesc}; default {default!r}]")
        from .train.trainer import TrainConfig

        print("training options (--set KEY=VALUE):")
        for fname, tdesc, default, helptext in config_help(TrainConfig):
            print(f"  {fname:<18} {helptext} [{tdesc}; default {default!r}]")
    return 0


def cmd_train(args) -> int:
    from .config import parse_set_options
    from .run import metrics_text, resume, train

    if args.resume:
        if args.anomaly_class is not None or args.keep_labels is not None:
            raise CLIError("--anomaly-class and --keep-labels are fixed when a run starts: --resume keeps the run's own")
        if args.model:
            raise CLIError("--resume continues the run as it was configured: give no MODEL with it")
        run = resume(args.resume, epochs=args.epochs, progress=not args.no_progress, tensorboard=args.tensorboard)
    else:
        if not args.model:
            raise CLIError("train needs a MODEL (see `hourglass list`), or --resume RUN_DIR")
        options: dict = parse_set_options(args.sets)
        flags = {"epochs": args.epochs, "batch_size": args.batch_size, "latent_dim": args.latent_dim, "lr": args.lr,
                 "seed": args.seed, "device": args.device, "val_fraction": args.val_fraction,
                 "patience": args.patience}
        for k, v in flags.items():
            if v is not None:
                if k in options:
                    raise CLIError(f"{k} given twice: as --{k.replace('_', '-')} and in --set")
                options[k] = v
        options["progress"] = not args.no_progress
        label_column = args.label_column
        if label_column is not None and label_column.isdigit():
            label_column = int(label_column)
        out = args.out or str(Path("runs") / f"{args.model}-{Path(args.data).stem}")
        run = train(args.model, args.data, data_dir=args.data_dir, preset=args.preset, out=out,
                    scaling=args.scaling, test_fraction=args.test_fraction, label_column=label_column,
                    config_from_strings=True, exclude_class=args.anomaly_class, keep_labels=args.keep_labels,
                    tensorboard=args.tensorboard, **options)
    print(f"{run.model_name}: {metrics_text(run.metrics)}")
    print(f"run written to {run.path}")
    return 0


def cmd_evaluate(args) -> int:
    from .data import load_data
    from .evaluate.metrics import evaluate
    from .run import load

    run = load(args.run_dir)
    d = run.info["data"]
    name = args.data or d["name"]
    data_dir = args.data_dir if args.data else d["data_dir"]
    bundle = load_data(name, data_dir, test_fraction=d["test_fraction"], label_column=d["label_column"],
                       seed=run.info["train"]["seed"])
    x = run.prepare(bundle.x_test)
    y = bundle.y_test
    if run.model.conditional and y is None:
        raise CLIError(f"model {run.model_name!r} is conditional and data set {name!r} has no labels")
    import torch

    yt = torch.from_numpy(y.astype("int64")) if y is not None else None
    seed = run.info["train"]["seed"]
    if args.iwae_samples is not None:
        if not hasattr(run.model.config, "iwae_samples"):
            raise CLIError(f"--iwae-samples: model {run.model_name!r} has no importance-sampled NLL")
        if args.iwae_samples < 1:
            raise CLIError(f"--iwae-samples must be >= 1, got {args.iwae_samples}")
        run.model.config.iwae_samples = args.iwae_samples
    metrics = {"data": name, "test": evaluate(run.model, x, yt, seed=seed)}
    from .evaluate.codes import model_code_metrics

    if y is not None and bundle.y_train is not None:
        x_train = run.prepare(bundle.x_train)
        y_train = torch.from_numpy(bundle.y_train.astype("int64"))
        metrics["test"].update(model_code_metrics(run.model, x_train, y_train, x, yt, seed=seed))
        if name == d["name"] and run.model.generative:
            from .evaluate.samples import run_sample_metrics
            from .run import split_and_scale

            p = split_and_scale(bundle, run.scaler, run.info["train"]["val_fraction"], seed, fit=False)
            metrics["test"].update(run_sample_metrics(run, p, seed=seed))
    anomaly = args.anomaly_class if args.anomaly_class is not None else d.get("exclude_class")
    if anomaly is not None:
        from .evaluate.anomaly import anomaly_report

        _require_encoder(run)
        if d.get("exclude_class") != anomaly:
            print(f"hourglass: note: the run was not trained without class {anomaly}: its anomaly AUC says little",
                  file=sys.stderr)
        metrics["anomaly"] = anomaly_report(run.model, x, yt, anomaly, seed=seed)
        metrics["test"]["anomaly_auc"] = metrics["anomaly"]["auc"]
    text = json.dumps(metrics, indent=2)
    print(text)
    if args.output:
        from .train.checkpoint import write_json

        write_json(args.output, metrics)
    return 0


def _input_examples(run, path: str | None, limit: int | None):
    from .data import load_data, read_examples

    if path is None:
        d = run.info["data"]
        b = load_data(d["name"], d["data_dir"], test_fraction=d["test_fraction"], label_column=d["label_column"],
                      seed=run.info["train"]["seed"])
        x, y = b.x_test, b.y_test
    else:
        x, y = read_examples(path)
    if limit is not None:
        if limit < 1:
            raise CLIError(f"--limit must be >= 1, got {limit}")
        x = x[:limit]
        y = y[:limit] if y is not None else None
    if not run.model.conditional:
        y = None
    return x, y


def _check_output(path: str, allowed: tuple[str, ...]) -> Path:
    p = Path(path)
    if p.suffix.lower() not in allowed:
        raise CLIError(f"--output {path!r}: use a file ending in {' or '.join(allowed)}")
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def cmd_encode(args) -> int:
    import numpy as np

    out = _check_output(args.output, (".npy",))
    run, x, y = _encoder_inputs(args, args.limit)
    codes = run.encode(x, y)
    np.save(out, codes)
    print(f"wrote {codes.shape[0]} codes of size {codes.shape[1]} to {out}")
    return 0


def cmd_reconstruct(args) -> int:
    import numpy as np

    from .report.figures import save_rows, save_table_rows

    out = _check_output(args.output, (".npy", ".png"))
    run, x, y = _encoder_inputs(args, args.limit)
    recon = run.reconstruct(x, y)
    if out.suffix.lower() == ".npy":
        np.save(out, recon)
    else:
        scaled = [run.scaler.transform(np.asarray(x).reshape(recon.shape)[:16]), run.scaler.transform(recon[:16])]
        if run.info["data"]["kind"] == "image":
            save_rows(out, scaled)
        else:
            save_table_rows(out, scaled, ["input (scaled)", "reconstruction"])
    print(f"wrote {len(recon)} reconstructions to {out}")
    return 0


def cmd_sample(args) -> int:
    import numpy as np
    import torch

    from .report.figures import save_grid
    from .run import load

    out = _check_output(args.output, (".npy", ".png"))
    if args.n < 1:
        raise CLIError(f"-n must be >= 1, got {args.n}")
    run = load(args.run_dir)
    if not run.model.generative:
        raise CLIError(f"model {run.model_name!r} is not generative: it has no sample(); try a vae")
    y = None
    if args.klass is not None:
        if not run.model.conditional:
            raise CLIError(f"--class needs a conditional model; {run.model_name!r} is not")
        k = int(run.model.config.num_classes)
        if not 0 <= args.klass < k:
            raise CLIError(f"--class {args.klass}: classes are 0..{k - 1}")
        y = np.full(args.n, args.klass)
    elif run.model.conditional:
        y = np.arange(args.n) % int(run.model.config.num_classes)
    torch.manual_seed(args.seed)
    samples = run.sample(args.n, y)
    if out.suffix.lower() == ".npy":
        np.save(out, samples)
    else:
        if run.info["data"]["kind"] != "image":
            raise CLIError("this run's data are not images: write samples to a .npy file")
        save_grid(out, run.scaler.transform(samples))
    print(f"wrote {args.n} samples to {out}")
    return 0


def cmd_denoise(args) -> int:
    import numpy as np
    import torch

    from .models.dae import corrupt, parse_noise_spec
    from .report.figures import save_rows

    out = _check_output(args.output, (".npy", ".png"))
    kind, level = parse_noise_spec(args.noise)
    run, x, y = _encoder_inputs(args, args.limit)
    clean = run.prepare(x)
    # Corrupt in the model's (scaled) space, clipped to [0, 1] when the data live there.
    in_unit = float(clean.min()) >= 0 and float(clean.max()) <= 1
    noisy = corrupt(clean, kind, level, torch.Generator().manual_seed(args.seed), clip=(0.0, 1.0) if in_unit else None)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long) if y is not None else None
    with torch.no_grad():
        denoised = run.model.reconstruct(noisy.to(run.model.device), yt).cpu()
    if out.suffix.lower() == ".npy":
        np.save(out, run.scaler.inverse_transform(denoised.numpy()))
    else:
        if run.info["data"]["kind"] != "image":
            raise CLIError("this run's data are not images: write the denoised examples to a .npy file")
        save_rows(out, [noisy.numpy(), denoised.numpy(), clean.numpy()])
    mse = float(((denoised - clean) ** 2).mean())
    print(f"denoised {len(clean)} examples corrupted with {kind}:{level}: MSE to the clean data {mse:.4g}; wrote {out}")
    return 0


def cmd_interpolate(args) -> int:
    import numpy as np

    from .evaluate.interpolate import interpolate
    from .report.figures import save_rows

    out = _check_output(args.output, (".npy", ".png"))
    run, x, y = _encoder_inputs(args, None)
    for flag, idx in (("--from", args.i), ("--to", args.j)):
        if not 0 <= idx < len(x):
            raise CLIError(f"{flag} {idx}: the input has examples 0..{len(x) - 1}")
    if args.steps < 2:
        raise CLIError(f"--steps must be >= 2, got {args.steps}")
    xs = run.prepare(np.asarray(x)[[args.i, args.j]])
    ya = int(y[args.i]) if y is not None else None
    yb = int(y[args.j]) if y is not None else None
    strip = interpolate(run.model, xs[0], xs[1], args.steps, ya, yb).cpu().numpy()
    if out.suffix.lower() == ".npy":
        np.save(out, run.scaler.inverse_transform(strip))
    else:
        if run.info["data"]["kind"] != "image":
            raise CLIError("this run's data are not images: write the interpolation to a .npy file")
        save_rows(out, [strip])
    print(f"wrote {args.steps} images from example {args.i} to example {args.j} to {out}")
    return 0


def cmd_compare(args) -> int:
    from .evaluate.compare import compare

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    result = compare(args.data, data_dir=args.data_dir, latent_dim=args.latent_dim, methods=methods, out=args.out,
                     epochs=args.epochs, max_train=args.max_train, seed=args.seed, log=print)
    print(result.markdown)
    print(f"wrote comparison.csv, comparison.md and comparison.png to {args.out}")
    return 0


def cmd_report(args) -> int:
    from .report.html import write_comparison_report, write_report
    from .run import load

    runs = [load(p) for p in args.run_dirs]
    if len(runs) == 1:
        out = write_report(runs[0], output=args.output)
    else:
        if not args.output:
            raise CLIError("several runs make one comparison page: give --output FILE.html")
        out = write_comparison_report(runs, args.output)
    print(f"wrote {out}")
    return 0


def _encoder_inputs(args, limit: int | None):
    """The run in ``args.run_dir``, which must have an encoder, and the examples to feed it
    (``args.input``, or the run's test data), at most ``limit`` of them."""
    from .run import load

    run = load(args.run_dir)
    _require_encoder(run)
    return (run, *_input_examples(run, args.input, limit))


def _require_encoder(run) -> None:
    if not getattr(run.model, "has_encoder", True):
        raise CLIError(f"model {run.model_name!r} has no encoder: it cannot encode, reconstruct or denoise")


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
    "report": cmd_report,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
