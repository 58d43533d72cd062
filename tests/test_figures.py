"""Figures a person can read: class names in legends, labelled image grids big enough to see, units on
axes; the report explains its metrics and shows the config as a table."""

from __future__ import annotations

import re

import numpy as np
import pytest

import hourglass
from hourglass.report import figures
from hourglass.report.html import RunFacts, RunPage, comparison_html, metric_help, run_report_html

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = ["cat", "dog", "owl"]


def png_size(path) -> tuple[int, int]:
    head = open(path, "rb").read(24)
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def legend_texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_latent_map_names_string_classes_in_a_legend_not_a_colour_bar():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(90, 5))
    labels = np.repeat([0, 1, 2], 30)
    fig = figures.latent_map_figure(codes, labels, "codes", NAMES)
    assert legend_texts(fig) == NAMES
    assert len(fig.axes) == 1  # no colour-bar axes
    ax = fig.axes[0]
    assert "code units" in ax.get_xlabel() and "code units" in ax.get_ylabel()


def test_a_run_on_string_classes_draws_their_names(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.random((150, 6)).astype(np.float32)
    y = np.array(NAMES * 50)
    run = hourglass.train("ae", (x, y), epochs=1, latent_dim=2, hidden=(8,), progress=False, threads=1)
    assert run.label_names == sorted(NAMES)
    seen = {}

    def spy(codes, labels, title="", label_names=None):
        fig = original(codes, labels, title, label_names)
        seen["legend"] = legend_texts(fig)
        return fig

    original = figures.latent_map_figure
    monkeypatch.setattr(figures, "latent_map_figure", spy)
    run.write_figures(tmp_path)
    assert seen["legend"] == sorted(NAMES)


def test_image_grids_are_large_and_labelled(tmp_path):
    digits = np.random.default_rng(0).random((32, 1, 8, 8))
    plain = figures.save_rows(tmp_path / "plain.png", [digits[:16], digits[16:]])
    labelled = figures.save_rows(tmp_path / "labelled.png", [digits[:16], digits[16:]],
                                 ["test data", "reconstruction"], [str(i % 10) for i in range(16)], "title")
    w, h = png_size(plain)
    assert w >= 16 * 8 * 6 and h >= 2 * 8 * 6  # each 8x8 digit at least 6x larger (was 290 x 38 in all)
    lw, lh = png_size(labelled)
    assert lw > w and lh > h  # room for the row names, the column labels and the title


def test_loss_curves_label_their_axes_with_units(tmp_path):
    run = hourglass.train("vae", "digits", epochs=1, latent_dim=2, hidden=(16,), progress=False, threads=1,
                          iwae_samples=2)
    from hourglass.run.figures import loss_ylabels

    labels = loss_ylabels(run.model)
    assert labels["loss"] == "loss (nats per example)" and labels["kl"] == "KL (nats per example)"
    ae = hourglass.create("ae", input_shape=(6,), reduction="mean")
    assert loss_ylabels(ae)["loss"] == "loss (BCE per value (nats))"


def page(metrics, info=None, history=None, label="run") -> RunPage:
    info = info or {"model": "vae", "config": {"latent_dim": 2, "hidden": [16, 8], "beta": 1.0},
                    "train": {"epochs": 3}, "data": {"name": "digits"}}
    facts = RunFacts(model=info["model"], data_name=info["data"]["name"], latent_dim=info["config"]["latent_dim"])
    return RunPage(label, facts, info, metrics, fig_dir=__import__("pathlib").Path("/nonexistent"),
                   history=history or [])


def test_report_explains_each_metric_with_its_direction_and_shows_the_config_as_a_table():
    metrics = {"fit_seconds": 1.0, "test": {"neg_elbo": 25.0, "knn_acc": 0.9, "active_units": 2, "made_up": 1.0},
               "warnings": []}
    html = run_report_html(page(metrics))
    row = re.search(r"<tr><td>test.neg_elbo</td>(.*?)</tr>", html).group(1)
    assert ">lower<" in row and "evidence lower bound" in row
    row = re.search(r"<tr><td>test.knn_acc</td>(.*?)</tr>", html).group(1)
    assert ">higher<" in row
    assert metric_help("test.made_up") == ("", "")
    config = re.search(r'<table id="config">(.*?)</table>', html, flags=re.S).group(1)
    assert "<tr><td>latent_dim</td><td>2</td></tr>" in config
    assert "<tr><td>hidden</td><td>16, 8</td></tr>" in config
    assert "<pre>" not in html  # no raw JSON
    assert 'class="warnings"' not in html


def test_report_highlights_warnings_and_comparison_overlays_losses():
    warned = {"test": {"kl": 0.01}, "warnings": [{"code": "posterior_collapse", "message": "posterior collapse: x"}]}
    html = run_report_html(page(warned))
    assert '<div class="warnings">' in html and "posterior collapse: x" in html
    hist = [{"epoch": 1, "train_loss": 3.0, "val_loss": 3.5}, {"epoch": 2, "train_loss": 2.0, "val_loss": 2.5}]
    both = comparison_html([page(warned, history=hist, label="a"), page({"test": {}}, history=hist, label="b")])
    assert both.count('alt="losses compared"') == 1
    assert "<b>a</b>: posterior collapse" in both


def test_grids_side_by_side_keep_every_image_and_title_each_block():
    a = np.zeros((6, 1, 8, 8))  # black images
    b = np.ones((4, 1, 8, 8))  # white images, fewer rows
    fig = figures.new_figure((6, 3))
    ax = fig.add_subplot(1, 1, 1)
    figures.show_grids(ax, [a, b], ["black", "white"], nrow=(3, 2), gap=5)
    shown = ax.images[0].get_array()
    assert shown.shape == (2 * 9 + 1, 3 * 9 + 1 + 5 + 2 * 9 + 1, 3)  # two rows of 3, gap, two rows of 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["black", "white"]
    assert (shown[1:9, 1:9] == 0).all() and (shown[1:9, 3 * 9 + 1 + 5 + 1:][:8, :8] == 1).all()
    with pytest.raises(ValueError, match="2 blocks, 1 titles"):
        figures.show_grids(ax, [a, b], ["one"], nrow=3)
