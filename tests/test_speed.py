"""The speed options work and change nothing they should not: precision, compile, channels-last, the
fused optimizer, and the decoder's and encoder's cheaper but equal formulations. (How fast they are is
measured in benchmarks/run_all.py, never asserted here.)"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import hourglass
from helpers import fixed_batch, one_line_error, run_cli, small_model
from hourglass.errors import ConfigError, TrainingError
from hourglass.models.blocks import Crop, UpsampledConv2d
from hourglass.training import checkpoint as ckpt
from hourglass.training import speed
from hourglass.training.precision import Precision, autocast_for, cpu_has_native_bf16
from hourglass.training.trainer import TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def _fit(model, x, **options):
    trainer = Trainer(model, TrainConfig(epochs=options.pop("epochs", 3), batch_size=16, progress=False, seed=0,
                                         **options))
    trainer.fit(x)
    return trainer


def test_bf16_trains_to_finite_losses_close_to_fp32_and_keeps_fp32_weights():
    x, _ = fixed_batch(n=64)
    torch.manual_seed(0)
    a = small_model("ae", recon_loss="mse", reduction="mean")
    b = small_model("ae", recon_loss="mse", reduction="mean")
    b.load_state_dict(a.state_dict())
    ref = _fit(a, x).state.history
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # emulated bf16 on CPUs without AVX-512 BF16
        low = _fit(b, x, precision="bf16").state.history
    for r, q in zip(ref, low):
        assert torch.isfinite(torch.tensor(q["train_loss"]))
        assert q["train_loss"] == pytest.approx(r["train_loss"], rel=0.03)
    assert ref[-1]["train_loss"] != low[-1]["train_loss"]  # it did run in bf16
    assert all(p.dtype == torch.float32 for p in b.parameters())


def test_bf16_on_a_cpu_without_native_bf16_warns_and_evaluates_in_fp32():
    if cpu_has_native_bf16():
        pytest.skip("this CPU runs bf16 natively")
    with pytest.warns(RuntimeWarning, match="emulates"):
        Precision("bf16", torch.device("cpu"))
    with autocast_for("bf16", torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")


def test_fp16_on_cpu_is_a_config_error_naming_cuda(capsys, tmp_path):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        Trainer(small_model("ae"), TrainConfig(precision="fp16", device="cpu"))
    x, _ = fixed_batch(n=32)
    with pytest.raises(ConfigError, match="'precision'"):
        hourglass.train("ae", x.numpy(), precision="fp16", device="cpu", epochs=1, progress=False, figures=False)
    err = one_line_error(capsys, "train", "ae", "--data", "digits", "--precision", "fp16", "--device", "cpu",
                         "--epochs", "1", "--out", tmp_path / "run")
    assert "fp16 needs a CUDA device" in err
    with pytest.raises(ConfigError, match="choose fp32, bf16 or fp16"):
        Precision("fp8", torch.device("cpu"))


def test_speed_options_appear_in_train_help(capsys):
    with pytest.raises(SystemExit):
        run_cli("train", "ae", "--help")
    out = capsys.readouterr().out
    for flag in ("--precision", "--compile", "--channels-last"):
        assert flag in out, flag
    assert "fp16" in out and "bf16" in out


def test_compile_trains_or_fails_with_one_clear_error():
    x, _ = fixed_batch(n=32)
    torch.manual_seed(0)
    model = small_model("ae", recon_loss="mse", reduction="mean")
    try:
        history = _fit(model, x, epochs=1, compile=True).state.history
    except TrainingError as e:  # no working compiler here: one error that says what to do
        assert "compile=False" in str(e) and "\n" not in str(e)
    else:
        assert torch.isfinite(torch.tensor(history[-1]["train_loss"]))


def test_a_compiler_failure_is_one_training_error(monkeypatch):
    from torch._dynamo.exc import TorchDynamoException

    def broken(fn, **kwargs):
        def call(*args):
            raise TorchDynamoException("no C++ compiler\nlong traceback")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    x, _ = fixed_batch(n=32)
    with pytest.raises(TrainingError, match=r"compile=True: torch.compile could not compile AE.training_step "
                                            r"\(phase 'model'\).*train with compile=False"):
        _fit(small_model("ae"), x, epochs=1, compile=True)


def test_a_models_own_error_passes_through_compile_unchanged(monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)  # "compiled" = eager: the model's error surfaces
    model = small_model("ae")
    model.training_step = lambda batch, phase="model": {"not_loss": torch.zeros(())}
    x, _ = fixed_batch(n=32)
    with pytest.raises(ValueError, match="must return a dict with a 'loss' entry"):
        _fit(model, x, epochs=1, compile=True)


def test_conv_models_train_channels_last_and_mlps_are_left_alone():
    x = torch.rand(32, 1, 8, 8)
    conv = small_model("ae", input_shape=(1, 8, 8))
    Trainer(conv, TrainConfig(progress=False))
    def wide(model):  # the first conv weight with more than one input channel (one is both layouts)
        return next(m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m.in_channels > 1)

    w = wide(conv)
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    plain = small_model("ae", input_shape=(1, 8, 8))
    Trainer(plain, TrainConfig(progress=False, channels_last=False))
    assert wide(plain).is_contiguous()
    mlp = small_model("ae")
    assert not speed.to_channels_last(mlp)
    # the same training either way, up to the kernels' summation order
    torch.manual_seed(0)
    a, b = small_model("ae", input_shape=(1, 8, 8)), small_model("ae", input_shape=(1, 8, 8))
    b.load_state_dict(a.state_dict())
    la = _fit(a, x, epochs=2).state.history[-1]["train_loss"]
    lb = _fit(b, x, epochs=2, channels_last=False).state.history[-1]["train_loss"]
    assert la == pytest.approx(lb, rel=1e-4)


def test_a_channels_last_conv_run_resumes_bit_identical(tmp_path):
    """Adam's moments come back from a checkpoint contiguous; the fused kernel needs them in the
    weight's channels-last layout, or it updates each weight with another weight's moments."""
    x = torch.rand(48, 1, 8, 8)
    torch.manual_seed(0)
    whole, part = small_model("ae", input_shape=(1, 8, 8)), small_model("ae", input_shape=(1, 8, 8))
    part.load_state_dict(whole.state_dict())
    _fit(whole, x, epochs=3)
    first = _fit(part, x, epochs=1)
    ckpt.save_state(tmp_path, first.state_dict())
    weights = {k: v.clone() for k, v in part.state_dict().items()}
    again = small_model("ae", input_shape=(1, 8, 8))
    again.load_state_dict(weights)
    resumed = Trainer(again, TrainConfig(epochs=3, batch_size=16, progress=False, seed=0))
    resumed.load_state_dict(ckpt.load_state(tmp_path))
    resumed.fit(x)
    for k, v in whole.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


def test_fused_optimizer_on_cpu_matches_foreach():
    torch.manual_seed(0)
    model = small_model("ae")
    assert model.configure_optimizers()["model"].defaults["fused"] is True
    ref = small_model("ae")
    ref.load_state_dict(model.state_dict())
    fused = model.configure_optimizers()["model"]
    loop = torch.optim.Adam(ref.parameters(), lr=model.config.lr, foreach=True)
    x, _ = fixed_batch(n=16)
    for m, opt in ((model, fused), (ref, loop)):
        for _ in range(5):
            opt.zero_grad()
            m.training_step((x, None))["loss"].backward()
            opt.step()
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("size,low,out", [((28, 28), (14, 14), 3), ((28, 28), (14, 14), 1), ((7, 7), (4, 4), 3),
                                          ((14, 10), (7, 5), 3)])
def test_upsampled_conv_equals_upsample_crop_conv(size, low, out, channels_last):
    """Both layouts: channels-last maps take the phase-major channel order and their own interleave."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    m = UpsampledConv2d(5, out, size).double().to(memory_format=fmt)
    x = torch.randn(2, 5, *low, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
    ref = nn.functional.conv2d(Crop(*size)(nn.Upsample(scale_factor=2)(x)), m.weight, m.bias, padding=1)
    out = m(x)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(ref)
    torch.testing.assert_close(torch.autograd.grad(out, [x, m.weight, m.bias], g),
                               torch.autograd.grad(ref, [x, m.weight, m.bias], g))
    if channels_last and size == (28, 28):  # the layout the next layer expects
        assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "tanh", "gelu"])
def test_pooling_before_a_monotone_activation_computes_the_same(act):
    torch.manual_seed(0)
    model = small_model("ae", input_shape=(1, 9, 9), conv_downsample="maxpool", activation=act).double()
    feats = model.encoder.features
    names = [type(m).__name__ for m in feats[:3]]
    if act == "gelu":  # not monotone: it must come before the pooling
        assert names == ["Conv2d", "GELU", "MaxPool2d"]
        return
    assert names[:2] == ["Conv2d", "MaxPool2d"]
    h = feats[0](torch.rand(4, 1, 9, 9, dtype=torch.float64))
    torch.testing.assert_close(feats[2](feats[1](h)), feats[1](feats[2](h)))
    assert list(model.state_dict())[:2] == ["encoder.features.0.weight", "encoder.features.0.bias"]


def test_a_bf16_run_is_evaluated_in_bf16_where_the_cpu_runs_it(monkeypatch):
    """The metric pipeline's model passes run under the run's autocast (pretend this CPU has AVX-512
    BF16); the metrics stay float and finite, and differ from a float32 evaluation only a little."""
    from hourglass.training import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    x, _ = fixed_batch(n=64, input_shape=(16,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        run = hourglass.train("vae", x.numpy(), precision="bf16", epochs=2, batch_size=16, hidden=(16,), latent_dim=2,
                              iwae_samples=4, progress=False, figures=False, threads=1)
    seen = []
    original = run.model.metrics_batch
    monkeypatch.setattr(run.model, "metrics_batch",
                        lambda xb, yb=None: seen.append(torch.is_autocast_enabled("cpu")) or original(xb, yb))
    bf16 = run.evaluate()["test"]
    assert seen and all(seen)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    seen.clear()
    fp32 = run.evaluate()["test"]
    assert seen and not any(seen)
    assert all(isinstance(v, float) and v == v for v in bf16.values() if not isinstance(v, int))
    assert bf16["neg_elbo"] == pytest.approx(fp32["neg_elbo"], rel=0.02)


def test_memory_reuse_is_applied_to_in_memory_runs_only(monkeypatch):
    from hourglass.run import fit

    calls = []
    monkeypatch.setattr(fit, "keep_freed_memory", lambda: calls.append(1) or True)
    x, _ = fixed_batch(n=40)
    hourglass.train("ae", x.numpy(), epochs=1, progress=False, figures=False, evaluate=False, threads=1)
    assert calls == [1]
    hourglass.train("ae", x.numpy(), epochs=1, progress=False, figures=False, evaluate=False, threads=1,
                    reuse_memory=False)
    hourglass.train("ae", x.numpy(), epochs=1, progress=False, figures=False, evaluate=False, threads=1,
                    in_memory="never")
    assert calls == [1]
    assert speed.keep_freed_memory() in (True, False)  # the real call never raises


def test_cpu_bce_equals_pytorchs_in_value_and_both_gradients_even_at_extreme_logits():
    from hourglass.models.base import bce_per_value

    torch.manual_seed(0)
    logits = torch.cat([torch.randn(64, 50) * 8,
                        torch.tensor([[-1e4, -200.0, -90.0, -80.0, -79.0, -17.0, 0.0, 17.0, 90.0, 1e4] * 5])])
    x = torch.rand(65, 50)
    x[::3] = x[::3].round()  # binary and grey targets
    ours_l, ref_l = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ours_x, ref_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = bce_per_value(ours_l, ours_x)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(ref_l, ref_x, reduction="none")
    assert torch.isfinite(ours).all()
    # float32 rounding of the larger of the two terms, and e^-l < 4e-8 where p rounds to 1
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=5e-6)
    g = torch.rand_like(ours)
    torch.autograd.backward(ours, g)
    torch.autograd.backward(ref, g)
    torch.testing.assert_close(ours_l.grad, ref_l.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours_x.grad, ref_x.grad, rtol=1e-5, atol=1e-6)


def test_cpu_bce_widens_half_precision_logits_and_refuses_a_second_derivative():
    from hourglass.models.base import bce_per_value

    torch.manual_seed(0)
    logits, x = torch.randn(8, 5).bfloat16().requires_grad_(), torch.rand(8, 5)
    loss = bce_per_value(logits, x)
    assert loss.dtype == torch.float32
    ref = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), x, reduction="none")
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    (g,) = torch.autograd.grad(loss.sum(), logits, create_graph=True)
    assert g.dtype == torch.bfloat16
    with pytest.raises(RuntimeError):  # an error, never a silently wrong second derivative
        torch.autograd.grad(g.sum(), logits)
