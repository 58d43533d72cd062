"""Export to ONNX and TorchScript: for every registered model, the exported graphs reproduce the run's
own encoder and decoder on its test data (original units, scaling folded in), at any batch size."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from sklearn.datasets import load_digits

import hourglass
from helpers import run_cli
from hourglass.export import ONNX_OPSET, export_run
from hourglass.models.base import Autoencoder

pytestmark = pytest.mark.usefixtures("one_thread")

TOL = dict(rtol=1e-5, atol=1e-5)
MODELS = hourglass.list_models()
SMALL = dict(epochs=3, latent_dim=3, hidden=(16,), conv_channels=(4, 8), progress=False, threads=1, figures=False,
             evaluate=False)
EXTRA = {"stacked": {"pretrain_epochs": 1, "finetune_epochs": 0}, "sparse": {"sparsity": "ksparse", "k": 2},
         "aae": {"disc_hidden": (8,)}}


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    x, y = d.images.astype(np.float32)[:, None], d.target  # (N, 1, 8, 8), values 0..16
    return (x[:400], y[:400]), (x[400:500], y[400:500])


@pytest.fixture(scope="module")
def runs(digits):
    cache = {}

    def get(name: str, architecture: str):
        if (name, architecture) not in cache:
            cache[name, architecture] = hourglass.train(name, digits, architecture=architecture, **SMALL,
                                                        **EXTRA.get(name, {}))
        return cache[name, architecture]

    return get


def onnx_model(path):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda *inputs: session.run(None, dict(zip([i.name for i in session.get_inputs()], inputs)))[0]


def torchscript_model(path):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*deprecated", category=DeprecationWarning)
        module = torch.jit.load(str(path))
    return lambda *inputs: module(*(torch.from_numpy(np.asarray(a)) for a in inputs)).detach().numpy()


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("architecture", ["mlp", "conv"])
@pytest.mark.parametrize("name", [m for m in MODELS if issubclass(hourglass.models.get_model_class(m), Autoencoder)])
def test_exported_graphs_reproduce_the_run(name, architecture, fmt, runs, digits, tmp_path):
    run = runs(name, architecture)
    (_, _), (x, y) = digits
    record = export_run(run, tmp_path, fmt)
    load, suffix = (onnx_model, ".onnx") if fmt == "onnx" else (torchscript_model, ".pt")
    encoder, decoder = load(tmp_path / f"encoder{suffix}"), load(tmp_path / f"decoder{suffix}")
    labels = (y.astype(np.int64),) if run.model.conditional else ()
    z = run.encode(x, y if labels else None)
    np.testing.assert_allclose(encoder(x, *labels), z, **TOL)
    np.testing.assert_allclose(decoder(z, *labels), run.decode(z, y if labels else None), **TOL)
    # the batch size is free: one example, as the file was traced with two
    np.testing.assert_allclose(encoder(x[:1], *(a[:1] for a in labels)), z[:1], **TOL)
    assert record["files"] == [f"encoder{suffix}", f"decoder{suffix}", "export.json"]
    described = json.loads((tmp_path / "export.json").read_text())
    assert described["graphs"]["encoder"]["inputs"]["x"]["shape"] == ["N", 1, 8, 8]
    assert described["scaling"]["folded"] and described["scaling"]["kind"] == "range"
    assert described["opset"] == (ONNX_OPSET if fmt == "onnx" else None)


def test_onnx_files_state_their_opset_and_dynamic_batch(runs, tmp_path):
    onnx = pytest.importorskip("onnx")
    export_run(runs("vae", "mlp"), tmp_path)
    graph = onnx.load(str(tmp_path / "encoder.onnx"))
    assert [o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")] == [ONNX_OPSET]
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"


def test_a_model_without_encoder_exports_its_generator_only(digits, tmp_path, capsys):
    run = hourglass.train("gan", digits, **{**SMALL, "epochs": 1})
    run.save(tmp_path / "gan")
    assert run_cli("export", tmp_path / "gan") == 0
    out = capsys.readouterr()
    assert "has no encoder: only its generator is exported" in out.err
    assert sorted(p.name for p in (tmp_path / "gan" / "onnx").iterdir()) == ["decoder.onnx", "export.json"]
    z = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(onnx_model(tmp_path / "gan" / "onnx" / "decoder.onnx")(z), run.decode(z), **TOL)


def test_export_command(runs, tmp_path, capsys):
    runs("ae", "mlp").save(tmp_path / "ae")
    assert run_cli("export", tmp_path / "ae", "--format", "torchscript") == 0
    assert "wrote encoder.pt, decoder.pt, export.json" in capsys.readouterr().out
    assert (tmp_path / "ae" / "torchscript" / "encoder.pt").is_file()
    assert run_cli("export", tmp_path / "ae", "--out", tmp_path / "elsewhere", "--opset", 13) == 0
    assert json.loads((tmp_path / "elsewhere" / "export.json").read_text())["opset"] == 13
    for args, message in [(("--opset", 5), "opset 5"), (("--format", "torchscript", "--opset", 17), "--opset is for"),
                          ((), "not found")]:
        where = tmp_path / ("ae" if args else "missing")
        assert run_cli("export", where, *args) == 2
        assert message in capsys.readouterr().err


def test_onnx_export_without_the_onnx_package_names_the_extra(runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed
    with pytest.raises(hourglass.ConfigError, match=r"hourglass-ae\[export\]"):
        export_run(runs("ae", "mlp"), tmp_path)
