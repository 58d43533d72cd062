"""report.html: written by every run, rebuilt by `hourglass report`, rendered in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import run_cli

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-D VAE (every figure, manifold included) and a GAN (no encoder: samples only)."""
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:  # a private classifier cache, restored afterwards
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        assert run_cli("train", "vae", "--latent-dim", 2, "--epochs", 3, "--set", "hidden=64",
                       "--set", "iwae_samples=5", "--out", root / "vae", "--no-progress") == 0
        assert run_cli("train", "gan", "--epochs", 1, "--set", "hidden=32", "--out", root / "gan", "--no-progress") == 0
    return root


def images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


def test_every_run_writes_a_self_contained_report(runs):
    page = (runs / "vae" / "report.html").read_text()
    assert 'id="metrics"' in page and "knn_acc" in page and "fd_classifier" in page
    srcs = images(page)
    assert len(srcs) == 6  # losses, reconstructions, samples, latent, interpolation, manifold
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    # nothing is fetched from anywhere: no http(s) URL, no linked stylesheet or script
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page) and "<script" not in page
    for name in ("manifold.png", "interpolation.png", "latent.png", "reconstructions.png"):
        assert (runs / "vae" / name).is_file(), name


def test_gan_report_has_samples_but_no_reconstructions(runs):
    d = runs / "gan"
    assert (d / "samples.png").is_file() and (d / "report.html").is_file()
    for name in ("reconstructions.png", "latent.png", "interpolation.png"):
        assert not (d / name).exists(), name
    page = (d / "report.html").read_text()
    assert 'alt="samples"' in page and 'alt="reconstructions"' not in page


def test_report_command_rebuilds_one_and_compares_several(runs, tmp_path, capsys):
    single = tmp_path / "one.html"
    assert run_cli("report", runs / "vae", "--output", single) == 0
    assert len(images(single.read_text())) == 6
    both = tmp_path / "both.html"
    assert run_cli("report", runs / "vae", runs / "gan", "--output", both) == 0
    page = both.read_text()
    assert page.count('id="metrics"') == 1 and "vae (vae)" in page and "gan (gan)" in page
    header = re.search(r'<table id="metrics"><thead><tr>(.*?)</tr>', page).group(1)
    # metric, one column per run, which way is better, what the metric measures
    assert header == ('<th>metric</th><th>vae (vae)</th><th>gan (gan)</th><th>better</th>'
                      '<th class="what">what it measures</th>')
    assert len(images(page)) == 1 + 6 + 2  # both runs' losses on one set of axes; the GAN: losses and samples
    assert run_cli("report", runs / "vae", runs / "gan") == 2
    assert "give --output" in capsys.readouterr().err
    assert run_cli("report", tmp_path / "missing") == 2


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


PROBE = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var el = document.createElement("pre");
  el.id = "probe";
  el.textContent = "PROBE " + JSON.stringify({loaded: ok, total: imgs.length,
    metrics: !!document.querySelector("table#metrics"),
    rows: document.querySelectorAll("table#metrics tbody tr").length});
  document.body.appendChild(el);
});
</script>"""


def test_report_renders_in_headless_chromium_with_every_image_loaded(runs, tmp_path):
    exe = chromium()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    page = (runs / "vae" / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([exe, *flags, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    m = re.search(r"PROBE (\{.*?\})", dom.stdout)
    assert m, f"no probe result in the DOM (rc {dom.returncode}): {dom.stderr[-2000:]}"
    result = json.loads(m.group(1))
    assert result["metrics"] and result["rows"] > 10
    assert result["total"] == 6 and result["loaded"] == result["total"], result
    shot = tmp_path / "report.png"
    subprocess.run([exe, *flags, f"--screenshot={shot}", "--window-size=1200,2000",
                    (runs / "vae" / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
    keep = os.environ.get("HOURGLASS_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
