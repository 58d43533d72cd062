"""The GAN's own machinery: the DCGAN pair, the moving-average generator (``ema_decay``), the
``after_step`` hook that feeds it, InfoGAN's code, the class-conditional AC-GAN (``conditional``),
and the checks on its options."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import hourglass
from helpers import small_model
from hourglass.errors import ConfigError, DataError
from hourglass.models.base import Generator
from hourglass.training.trainer import TrainConfig, Trainer

IMAGE = (1, 12, 10)
SMALL = {"epochs": 2, "batch_size": 16, "progress": False, "figures": False, "threads": 1,
         "latent_dim": 3, "hidden": (16,), "checkpoint_interval": 0}


def images(n: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *IMAGE), dtype=np.float32)


def test_the_generator_base_hook_is_a_no_op_and_the_trainer_calls_it_once_per_optimizer_step():
    assert Generator.after_step(small_model("ae"), "model") is None  # the default does nothing
    gan = small_model("gan")
    calls: list[str] = []
    original = gan.after_step
    gan.after_step = lambda phase: (calls.append(phase), original(phase))[1]
    x = torch.rand(40, 12)
    Trainer(gan, TrainConfig(epochs=2, batch_size=16, val_fraction=0.0, progress=False)).fit(x)
    steps = 2 * 3  # 40 examples in batches of 16: 3 batches per epoch
    assert calls == ["disc", "gen"] * steps


def test_the_moving_average_follows_the_generator_steps_with_warm_up():
    gan = small_model("gan", ema_decay=0.9)
    ema = gan.generator_ema.module
    for p, q in zip(gan.generator.parameters(), ema.parameters()):
        assert torch.equal(p, q)  # it starts as the generator
    opt = gan.configure_optimizers()
    x = torch.rand(16, 12)
    previous = [q.detach().clone() for q in ema.parameters()]
    for t in range(3):
        for phase in ("disc", "gen"):
            opt[phase].zero_grad()
            gan.training_step((x, None), phase)["loss"].backward()
            opt[phase].step()
            gan.after_step(phase)
        # update t (0-based) copies on the first, then mixes with b_t = min(b, (1 + t') / (10 + t'))
        b = 0.0 if t == 0 else min(0.9, (1 + t) / (10 + t))
        for p, q, q0 in zip(gan.generator.parameters(), ema.parameters(), previous):
            torch.testing.assert_close(q, b * q0 + (1 - b) * p)
        previous = [q.detach().clone() for q in ema.parameters()]
    assert int(gan.generator_ema.n_averaged) == 3
    gan.after_step("disc")  # the discriminator's steps leave it alone
    assert int(gan.generator_ema.n_averaged) == 3


def test_samples_come_from_the_moving_average_not_the_live_generator():
    torch.manual_seed(0)
    gan = small_model("gan", ema_decay=0.99)
    with torch.no_grad():
        for p in gan.generator.parameters():
            p.add_(torch.randn_like(p))  # the live generator moves away; the average has not been updated
    gan.eval()
    z = gan.noise(8)
    expected = gan.output(gan.generator_ema.module(z))
    torch.testing.assert_close(gan.decode(z), expected)
    assert not torch.allclose(gan.decode(z), gan.output(gan.generator(z)))
    torch.manual_seed(1)
    s = gan.sample(8)
    torch.manual_seed(1)
    torch.testing.assert_close(s, gan.output(gan.generator_ema.module(gan.noise(8))))
    gan.train()
    gan.sample(2)
    assert gan.generator_ema.module.training  # sample() puts back the mode it found


def test_sample_temperature_narrows_the_noise_of_samples_only():
    gan = small_model("gan", sample_temperature=0.5, categories=2)
    gan.eval()
    torch.manual_seed(4)
    s = gan.sample(6)
    torch.manual_seed(4)
    z = gan.noise(6)
    z[:, :3] *= 0.5  # the noise, not the one-hot code
    torch.testing.assert_close(s, gan.decode(z))
    torch.manual_seed(4)
    torch.testing.assert_close(gan.noise(6), torch.cat([z[:, :3] / 0.5, z[:, 3:]], 1))  # training: N(0, I)


def test_without_ema_samples_come_from_the_generator():
    gan = small_model("gan")
    assert gan.generator_ema is None and gan.sampler is gan.generator
    assert not any(k.startswith("generator_ema") for k in gan.state_dict())


def test_a_saved_run_restores_the_moving_average_exactly(tmp_path):
    run = hourglass.train("gan", images(), out=tmp_path / "run", architecture="conv", conv_channels=(4, 8),
                          ema_decay=0.9, **SMALL)
    ema = {k: v for k, v in run.model.state_dict().items() if k.startswith("generator_ema")}
    assert "generator_ema.n_averaged" in ema and int(ema["generator_ema.n_averaged"]) == run.metrics["epochs"] * 3
    live = {k.removeprefix("generator."): v for k, v in run.model.state_dict().items() if k.startswith("generator.")}
    assert any(not torch.equal(v, live[k.removeprefix("generator_ema.module.")]) for k, v in ema.items()
               if k.startswith("generator_ema.module.") and v.is_floating_point())  # it is an average
    loaded = hourglass.load(tmp_path / "run")
    for k, v in ema.items():
        assert torch.equal(loaded.model.state_dict()[k], v), k
    np.testing.assert_array_equal(loaded.sample(20, seed=3), run.sample(20, seed=3))


def test_resumed_training_equals_uninterrupted_training_with_the_moving_average(tmp_path):
    data = tmp_path / "x.npy"  # resume reads the data again from where the run says they came from
    np.save(data, images())
    opts = dict(SMALL, architecture="conv", conv_channels=(4, 8), ema_decay=0.9, categories=3)
    whole = hourglass.train("gan", str(data), out=tmp_path / "whole", **{**opts, "epochs": 3})
    hourglass.train("gan", str(data), out=tmp_path / "part", **{**opts, "epochs": 1})
    resumed = hourglass.resume(tmp_path / "part", epochs=3, progress=False, figures=False, threads=1)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and any(k.startswith("generator_ema") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    np.testing.assert_array_equal(whole.sample(10, seed=0), resumed.sample(10, seed=0))


def test_conv_gan_makes_images_of_the_data_shape_at_odd_and_tiny_sizes():
    for shape in [(1, 28, 28), (1, 8, 8), (3, 13, 9)]:
        gan = small_model("gan", shape, init="dcgan", disc_batch_norm=True)
        assert gan.sample(3).shape == (3, *shape)
        assert gan.critic(torch.rand(3, *shape)).shape == (3,)


def test_dcgan_init_draws_weights_from_n0_002():
    torch.manual_seed(0)
    gan = small_model("gan", IMAGE, conv_channels=(32, 64), init="dcgan")
    convs = [m for m in gan.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    w = torch.cat([m.weight.detach().flatten() for m in convs])
    assert abs(float(w.std()) - 0.02) < 0.002 and abs(float(w.mean())) < 0.002


def test_infogan_code_is_one_hot_and_read_back_by_the_discriminator():
    gan = small_model("gan", categories=4)
    assert gan.latent_dim == 3 + 4
    z = gan.noise(50)
    code = z[:, 3:]
    assert torch.equal(code.sum(1), torch.ones(50)) and set(code.unique().tolist()) == {0.0, 1.0}
    out = gan.training_step((torch.rand(8, 12), None), "disc")
    assert 0 < float(out["code_ce"]) < 2 * float(np.log(4))  # cross-entropy of a 4-way guess, near log 4


@pytest.mark.parametrize("key, value, message", [
    ("ema_decay", 1.0, "'ema_decay': must be in \\[0, 1\\)"),
    ("ema_decay", -0.1, "'ema_decay': must be in \\[0, 1\\)"),
    ("categories", 1, "'categories': 0 \\(off\\) or at least 2"),
    ("categories", -2, "'categories': 0 \\(off\\) or at least 2"),
    ("info_weight", -1.0, "'info_weight': must be >= 0"),
    ("sample_temperature", 0.0, "'sample_temperature': must be in \\(0, 10\\]"),
    ("label_smoothing", 1.0, "'label_smoothing'"),
    ("disc_lr", 0.0, "'disc_lr': must be > 0"),
    ("adam_beta1", 1.0, "'adam_beta1'"),
    ("conv_code", "map", "'conv_code': a GAN needs conv_code='dense'"),
])
def test_bad_gan_options_are_refused_with_the_key_named(key, value, message):
    with pytest.raises(ConfigError, match=message):
        small_model("gan", **{key: value})


def test_conv_gan_refuses_what_it_would_ignore_or_cannot_build():
    with pytest.raises(ConfigError, match="'conv_downsample'"):
        small_model("gan", IMAGE, conv_downsample="maxpool")
    with pytest.raises(ConfigError, match="'conv_channels'.*fewer levels"):
        small_model("gan", (1, 4, 4), conv_channels=(4, 8, 16))


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_writes_the_moving_average_generator_with_its_code_input(fmt, tmp_path):
    from hourglass.export import export_run

    run = hourglass.train("gan", images(), architecture="conv", conv_channels=(4, 8), ema_decay=0.9, categories=3,
                          **{**SMALL, "epochs": 1})
    record = export_run(run, tmp_path, fmt)
    assert record["graphs"]["decoder"]["inputs"]["z"]["shape"] == ["N", 3 + 3] and "encoder" not in record["graphs"]
    z = np.c_[np.random.default_rng(0).standard_normal((5, 3)), np.eye(3)[[0, 1, 2, 0, 1]]].astype(np.float32)
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(tmp_path / "decoder.onnx"), providers=["CPUExecutionProvider"])
        got = session.run(None, {"z": z})[0]
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*deprecated", category=DeprecationWarning)
            got = torch.jit.load(str(tmp_path / "decoder.pt"))(torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(got, run.decode(z), rtol=1e-5, atol=1e-5)
    live = run.model.output(run.model.generator.eval()(torch.from_numpy(z))).detach().numpy()
    assert not np.allclose(got, live.reshape(got.shape))  # the average, not the live generator


# -- the class-conditional GAN (AC-GAN) ---------------------------------------------------------------------
K = 3


def labelled(n: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return images(n, seed), np.arange(n) % K


def test_conditional_gan_takes_the_class_and_its_discriminator_classifies():
    gan = small_model("gan", IMAGE, conditional=True, num_classes=K)
    assert gan.conditional and not type(gan).conditional  # conditional as configured, not every GAN
    assert gan.num_classes == K and gan.latent_dim == 3 and gan.accepts_unknown_labels
    assert small_model("gan", categories=K).num_classes is None  # InfoGAN's code is no label
    assert gan.generator.net[0].in_features == 3 + K  # z, then the one-hot class
    assert gan.discriminator(torch.rand(5, *IMAGE)).shape == (5, 1 + K)  # real/fake and K class logits
    gan.eval()
    z, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    torch.testing.assert_close(gan.decode(z, y), gan.output(gan.generator(torch.cat([z, torch.eye(K)[y]], 1))))
    assert gan.decode(z, y).shape == (4, *IMAGE)
    with pytest.raises(DataError, match="conditional=true needs labels"):
        gan.decode(z)
    with pytest.raises(DataError, match=r"labels must be in \[0, 3\)"):
        gan.decode(z, torch.tensor([0, 1, 2, 3]))


def test_conditional_sample_draws_the_class_asked_for_and_uniform_classes_without_one():
    gan = small_model("gan", IMAGE, conditional=True, num_classes=K)
    gan.eval()
    y = torch.tensor([2, 0, 1, 2, 2])
    torch.manual_seed(3)
    s = gan.sample(5, y)
    torch.manual_seed(3)
    torch.testing.assert_close(s, gan.decode(torch.randn(5, 3), y))
    torch.manual_seed(3)
    assert not torch.allclose(gan.sample(5, torch.zeros(5, dtype=torch.long)), s)  # the class changes the image
    torch.manual_seed(3)
    one_for_all = gan.sample(5, 2)
    torch.manual_seed(3)
    torch.testing.assert_close(one_for_all, gan.decode(torch.randn(5, 3), torch.full((5,), 2)))
    torch.manual_seed(3)
    drawn = gan.sample(600)  # y=None: z, then classes uniform over the K
    torch.manual_seed(3)
    z = torch.randn(600, 3)
    classes = torch.randint(0, K, (600,))
    torch.testing.assert_close(drawn, gan.decode(z, classes))
    assert set(classes.tolist()) == {0, 1, 2}
    with pytest.raises(DataError, match="expected 5 labels"):
        gan.sample(5, torch.zeros(4, dtype=torch.long))


def test_conditional_losses_add_the_class_terms_and_skip_unknown_real_labels():
    torch.manual_seed(0)
    gan = small_model("gan", conditional=True, num_classes=K, info_weight=0.5)
    x = torch.rand(8, 12)
    y = torch.tensor([0, 1, 2, -1, -1, 1, 0, -1])
    torch.manual_seed(1)
    out = gan.training_step((x, y), "disc")
    torch.manual_seed(1)
    with torch.no_grad():
        z = gan.noise(8)  # the fakes' classes are drawn uniformly, not taken from the batch
        fake_out = gan.discriminator(gan.output(gan.generator(z)))
    real_out = gan.discriminator(x)
    known = y >= 0
    real_ce = torch.nn.functional.cross_entropy(real_out[known, 1:], y[known])  # labelled rows only
    fake_ce = torch.nn.functional.cross_entropy(fake_out[:, 1:], z[:, 3:].argmax(1))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = (bce(real_out[:, 0], torch.ones(8)) + bce(fake_out[:, 0], torch.zeros(8))
                + 0.5 * fake_ce + 0.5 * real_ce)
    torch.testing.assert_close(out["real_class_ce"], real_ce)
    torch.testing.assert_close(out["class_ce"], fake_ce)
    torch.testing.assert_close(out["loss"], expected)
    unknown = gan.training_step((x, torch.full((8,), -1)), "disc")
    assert float(unknown["real_class_ce"]) == 0.0 and torch.isfinite(unknown["loss"])  # no label, no term
    gen = gan.training_step((x, y), "gen")
    assert "class_ce" in gen and "real_class_ce" not in gen
    with pytest.raises(DataError, match="conditional=true needs labels"):
        gan.training_step((x, None), "disc")


@pytest.mark.parametrize("options, error, message", [
    ({"conditional": True, "num_classes": 3, "categories": 3}, ConfigError,
     "config keys 'conditional' and 'categories'"),
    ({"conditional": True, "num_classes": 0}, ConfigError, "'conditional': a conditional GAN needs labelled data"),
    ({"num_classes": -1}, ConfigError, "'num_classes': must be >= 0"),
])
def test_conditional_options_that_cannot_work_together_are_refused(options, error, message):
    with pytest.raises(error, match=message):
        small_model("gan", **options)


def test_training_a_conditional_gan_on_unlabelled_data_names_the_option():
    x = images()
    with pytest.raises(ConfigError, match="'conditional'"):
        hourglass.train("gan", x, conditional=True, **SMALL)
    with pytest.raises(DataError, match="with conditional=true needs labels; the data .* have none"):
        hourglass.train("gan", x, conditional=True, num_classes=3, **SMALL)  # as the preset sets it
    with pytest.raises(ConfigError, match="cannot learn from partial labels"):
        hourglass.train("gan", labelled(), keep_labels=6, **SMALL)  # unconditional: the labels are unused


def test_conditional_gan_trains_on_its_labels_with_some_hidden_and_draws_class_rows(tmp_path):
    run = hourglass.train("gan", labelled(), out=tmp_path / "run", architecture="conv", conv_channels=(4, 8),
                          conditional=True, keep_labels=12, **{**SMALL, "figures": True})
    assert run.model.config.num_classes == K  # from the data's labels
    assert run.model.num_classes == K and run.info["data"]["keep_labels"] == 12
    assert "disc_class_accuracy" in run.metrics["test"] and "sample_spread_within_class" in run.metrics["test"]
    assert run.sample(6, [0, 1, 2, 0, 1, 2], seed=0).shape == (6, *IMAGE)
    loaded = hourglass.load(tmp_path / "run")
    assert loaded.model.conditional and loaded.model.num_classes == K
    np.testing.assert_array_equal(loaded.sample(6, 2, seed=1), run.sample(6, 2, seed=1))
    assert (tmp_path / "run" / "samples.png").is_file()  # a row per class


def test_resumed_conditional_training_equals_uninterrupted_training(tmp_path):
    data = tmp_path / "xy.npz"
    x, y = labelled()
    np.savez(data, x=x, y=y)
    opts = dict(SMALL, architecture="conv", conv_channels=(4, 8), ema_decay=0.9, conditional=True)
    whole = hourglass.train("gan", str(data), out=tmp_path / "whole", **{**opts, "epochs": 3})
    hourglass.train("gan", str(data), out=tmp_path / "part", **{**opts, "epochs": 1})
    resumed = hourglass.resume(tmp_path / "part", epochs=3, progress=False, figures=False, threads=1)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    asked = np.arange(9) % K
    np.testing.assert_array_equal(whole.sample(9, asked, seed=0), resumed.sample(9, asked, seed=0))


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_of_a_conditional_gan_takes_noise_and_class(fmt, tmp_path):
    from hourglass.export import export_run

    run = hourglass.train("gan", labelled(), architecture="conv", conv_channels=(4, 8), conditional=True,
                          **{**SMALL, "epochs": 1})
    record = export_run(run, tmp_path, fmt)
    inputs = record["graphs"]["decoder"]["inputs"]
    assert inputs["z"]["shape"] == ["N", 3] and inputs["y"]["dtype"] == "int64"
    assert record["labels"]["classes"] == K and "class indices y in 0..2" in record["note"]
    z = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 2, 1])
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(tmp_path / "decoder.onnx"), providers=["CPUExecutionProvider"])
        got = session.run(None, {"z": z, "y": y})[0]
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*deprecated", category=DeprecationWarning)
            decoder = torch.jit.load(str(tmp_path / "decoder.pt"))
            got = decoder(torch.from_numpy(z), torch.from_numpy(y)).detach().numpy()
    np.testing.assert_allclose(got, run.decode(z, y), rtol=1e-5, atol=1e-5)
