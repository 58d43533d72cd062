"""The README's commands run as written: every `hourglass ...` line of its bash blocks, in order,
and its Python example."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np

from hourglass.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def hourglass_lines() -> list[str]:
    """The ``hourglass ...`` and ``python -c ...`` lines of the bash blocks, in order."""
    lines = []
    for block in blocks("bash"):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(("hourglass ", "python -c ")):
                lines.append(line)
    return lines


def test_readme_has_the_main_job_and_test_command():
    text = README.read_text()
    assert "hourglass train vae --out runs/digits-vae" in text
    assert "python -m pytest" in text
    assert "pip install torch==2.13.0" in text


def test_readme_commands_run_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    lines = hourglass_lines()
    assert len(lines) >= 8
    for line in lines:
        if line.startswith("python -c "):
            exec(shlex.split(line)[2], {})  # noqa: S102 - our own README
            continue
        args = shlex.split(line)[1:]
        if "--no-progress" not in args and args[0] == "train":
            args.append("--no-progress")
        assert main(args) == 0, f"README command failed: {line}\n{capsys.readouterr().err}"


def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code in blocks("python"):  # in order, in one namespace, as a reader runs them
        exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["codes"].shape == (359, 2)
    assert (tmp_path / "runs" / "api-vae" / "model.safetensors").is_file()
    assert namespace["same"].model_name == "vae"
    assert namespace["own"].info["data"]["n_train"] == 360  # 400 training rows, 10% held out
    assert namespace["search"].best_params_["autoencodertransformer__latent_dim"] in (2, 4)
    assert set(namespace["flags"]) == {-1, 1}
    # the exported encoder, run by onnxruntime alone, gives the detector's codes
    assert namespace["z"].shape == (569, 4)
    np.testing.assert_allclose(namespace["z"], namespace["detector"].run_.encode(namespace["X"]), rtol=1e-5, atol=1e-5)
