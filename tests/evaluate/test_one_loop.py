"""One training loop: no backward pass outside hourglass/training/, and nothing unpickled anywhere.

Read from the package's own source (ast), so it runs on every clone: a second loop, or a
``torch.load`` / ``pickle.load`` on a load path, fails here with the file and line."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "hourglass"
UNPICKLING = {("torch", "load"), ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"),
              ("_pickle", "load"), ("_pickle", "loads"), ("dill", "load"), ("dill", "loads")}


def _files() -> list[Path]:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50, f"the package's source was not found under {SRC}"
    return files


def _backward_calls(tree: ast.AST) -> list[int]:
    return [n.lineno for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "backward"]


def _unpickling(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and (n.value.id, n.attr) in UNPICKLING:
            found.append((n.lineno, f"{n.value.id}.{n.attr}"))
        elif isinstance(n, ast.ImportFrom) and n.module in {m for m, _ in UNPICKLING}:
            found += [(n.lineno, f"from {n.module} import {a.name}") for a in n.names
                      if (n.module, a.name) in UNPICKLING]
    return found


def test_no_backward_pass_outside_the_trainer():
    offenders = []
    for p in _files():
        rel = p.relative_to(SRC).as_posix()
        if rel.startswith("training/"):
            continue
        offenders += [f"{rel}:{line}" for line in _backward_calls(ast.parse(p.read_text(encoding="utf-8")))]
    assert not offenders, f".backward( outside hourglass/training/ (train through the Trainer): {offenders}"


def test_nothing_is_unpickled():
    offenders = []
    for p in _files():
        offenders += [f"{p.relative_to(SRC).as_posix()}:{line} {what}"
                      for line, what in _unpickling(ast.parse(p.read_text(encoding="utf-8")))]
    assert not offenders, f"unpickling in the package (read safetensors and JSON instead): {offenders}"


def test_the_scan_sees_what_it_looks_for():
    tree = ast.parse("import torch, pickle\nfrom pickle import loads\nloss.backward()\nsd = torch.load(p)\n"
                     "pickle.load(f)\ndef backward(ctx, g):\n    return g\n")
    assert _backward_calls(tree) == [3]  # a call, not the autograd Function's method definition
    assert sorted(_unpickling(tree)) == [(2, "from pickle import loads"), (4, "torch.load"), (5, "pickle.load")]
