"""Export a run's encoder and decoder to ONNX or TorchScript, to run them without hourglass.

``export_run(run, out_dir, format="onnx")`` (``hourglass export RUN --format onnx``) writes

* ``encoder.onnx``: x ``(N, *input_shape)`` float32 in the data's **original units** [+ y ``(N,)``
  int64 class indices, conditional models] -> z ``(N, latent_dim)``, the code (the posterior mean for
  VAE-type models);
* ``decoder.onnx``: z [+ y] -> x ``(N, *input_shape)`` float32, in the original units;
* ``export.json``: what the files take and give (names, shapes, dtypes), the opset and the scaling.

The run's scaling is **folded into the graphs**: the encoder computes (x - offset) / scale (clipped to
[0, 1] for min-max scaling, as the run does) before the network, and the decoder x * scale + offset
after it, with the run's own offset and scale as constants. So the exported files take and give data
exactly as ``run.encode`` and ``run.decode`` do, and nothing else needs to travel with them.
The batch size N is dynamic; the example shape is fixed. ``export.json`` records the scaling too.

ONNX: opset ``ONNX_OPSET`` (17), written by PyTorch's TorchScript-based exporter
(``torch.onnx.export(..., dynamo=False)``). The newer exporter (``dynamo=True``) needs the onnxscript
package and could not export the conditional VAE, whose label check reads tensor values
(data-dependent control flow); the TorchScript-based one handles every model of the family and wrote
each graph here in well under a tenth of a second, where the dynamo exporter took seconds.
``format="torchscript"`` writes ``encoder.pt`` and ``decoder.pt`` (``torch.jit.trace``), loadable with
``torch.jit.load`` by anyone with PyTorch.

What the graphs leave out: they are traced, so checks that read tensor values (labels in range, NaN)
are not part of them, and labels must be known class indices 0..K-1 (a semi-supervised cvae's
classifier is not exported). The GAN has no encoder: only its generator is exported, as
``decoder.onnx``: z -> data, where z is the noise (``latent_dim`` values ~ N(0, I)) followed by
InfoGAN's one-hot code when ``categories`` > 0, or z [+ y] -> data for a conditional GAN, whose class
comes as labels y like the CVAE's; ``export.json``'s note says which (``describe_code``).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import ConfigError, path_access
from .models.base import Autoencoder

ONNX_OPSET = 17
FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
EXPORT_FILE = "export.json"

__all__ = ["EXPORT_FILE", "FORMATS", "ONNX_OPSET", "export_run"]


class _Scaling(nn.Module):
    """The run's scaling as constants: ``(x - offset) / scale`` [clipped] and its inverse."""

    def __init__(self, scaler, shape: tuple[int, ...]):
        super().__init__()
        d = scaler.to_dict()

        def const(values) -> torch.Tensor:  # one value for all (range, none), or one per value of an example
            a = np.asarray(values, dtype=np.float32)
            return torch.from_numpy(a.reshape(()) if a.size == 1 else a.reshape(shape))

        self.register_buffer("offset", const(d["offset"]))
        self.register_buffer("scale", const(d["scale"]))
        self.clip = bool(d["clip"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.offset) / self.scale
        return x.clamp(0.0, 1.0) if self.clip else x

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset


class EncoderGraph(nn.Module):
    """Original units -> codes: the run's scaling, then ``model.encode``."""

    def __init__(self, model: Autoencoder, scaling: _Scaling):
        super().__init__()
        self.model, self.scaling = model, scaling

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.encode(self.scaling(x), y)


class DecoderGraph(nn.Module):
    """Codes -> original units: ``model.decode``, then the run's scaling undone."""

    def __init__(self, model, scaling: _Scaling):
        super().__init__()
        self.model, self.scaling = model, scaling

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.scaling.inverse(self.model.decode(z, y))


def export_run(run, out_dir: str | Path | None = None, format: str = "onnx", *,
               opset: int = ONNX_OPSET) -> dict[str, Any]:
    """Write the encoder and decoder of ``run`` (a :class:`~hourglass.run.Run` or its directory) to
    ``out_dir`` (default: ``RUN_DIR/FORMAT``) in ``format`` ("onnx" or "torchscript"). Returns the
    record also written to ``export.json``: ``files`` (what was written), ``graphs`` (inputs and outputs
    of each), and a ``note`` when the model has no encoder."""
    from .run import Run

    if format not in FORMATS:
        raise ConfigError(f"export format {format!r}: choose {' or '.join(FORMATS)}")
    if format == "onnx" and not 7 <= opset <= 20:
        raise ConfigError(f"opset {opset}: PyTorch's TorchScript-based ONNX exporter writes opsets 7 to 20")
    if format == "onnx":
        try:
            import onnx  # noqa: F401 - torch.onnx.export writes the file through it
        except ImportError as e:
            raise ConfigError(f"ONNX export needs the onnx package ({e}); install it with "
                              "pip install 'hourglass-ae[export]' (onnx, and onnxruntime to run the files)") from e
    if not isinstance(run, Run):
        run = Run.load(run)
    if out_dir is None:
        if run.path is None:
            raise ConfigError("the run has no directory: pass out_dir")
        out_dir = run.path / format
    out = Path(out_dir)
    with path_access(out, "create the folder"):
        out.mkdir(parents=True, exist_ok=True)

    model = copy.deepcopy(run.model).to("cpu").eval()  # the run's own model stays where it is
    shape, k = run.input_shape, model.latent_dim
    scaling = _Scaling(run.scaler, shape)
    labels = model.conditional
    n = 2  # traced with two examples; the batch axis stays dynamic
    y = torch.zeros(n, dtype=torch.long) if labels else None
    graphs: dict[str, tuple[nn.Module, tuple, list[str], str, list]] = {}
    if isinstance(model, Autoencoder):
        graphs["encoder"] = (EncoderGraph(model, scaling).eval(), _args(torch.zeros(n, *shape), y),
                             ["x", "y"], "z", ["N", k])
    graphs["decoder"] = (DecoderGraph(model, scaling).eval(), _args(torch.zeros(n, k), y), ["z", "y"], "x",
                         ["N", *shape])
    record: dict[str, Any] = {
        "format": format, "model": run.model_name, "files": [], "graphs": {},
        "opset": opset if format == "onnx" else None,
        "scaling": {"folded": True, **run.scaler.to_dict()},
        "labels": {"classes": model.num_classes, "names": run.label_names} if labels else None,
    }
    if "encoder" not in graphs:
        record["note"] = (f"model {run.model_name!r} has no encoder: only its generator is exported, as "
                          f"decoder{FORMATS[format]} ({model.describe_code()} -> data)")
    for name, (module, args, in_names, out_name, out_shape) in graphs.items():
        path = out / f"{name}{FORMATS[format]}"
        in_names = in_names[: len(args)]
        with path_access(path, "write"), _quiet_tracing():
            if format == "onnx":
                dynamic = {key: {0: "N"} for key in [*in_names, out_name]}
                torch.onnx.export(module, args, str(path), dynamo=False, opset_version=opset,
                                  input_names=in_names, output_names=[out_name], dynamic_axes=dynamic)
            else:
                torch.jit.trace(module, args).save(str(path))
        record["files"].append(path.name)
        record["graphs"][name] = {
            "file": path.name,
            "inputs": {key: {"shape": ["N", *a.shape[1:]], "dtype": str(a.dtype).removeprefix("torch.")}
                       for key, a in zip(in_names, args)},
            "outputs": {out_name: {"shape": out_shape, "dtype": "float32"}},
        }
    from .training.checkpoint import write_json

    write_json(out / EXPORT_FILE, record)
    record["files"].append(EXPORT_FILE)
    record["out_dir"] = str(out)
    return record


def _args(first: torch.Tensor, y: torch.Tensor | None) -> tuple:
    return (first,) if y is None else (first, y)


class _quiet_tracing(warnings.catch_warnings):
    """Tracing warns about every Python-level read of a tensor (the label checks, which the module
    docstring lists as left out of the graphs) and that the TorchScript-based exporter is the older of
    PyTorch's two: both are known here and say nothing to the user."""

    def __enter__(self):
        out = super().__enter__()
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*torch.jit.*is deprecated.*")
        warnings.filterwarnings("ignore", message="The feature will be removed.*")
        return out
