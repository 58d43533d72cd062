"""The package's layers, read from its own source on any clone: arrows point one way, top to bottom.

The checker below parses every module of ``src/hourglass`` (``ast``, nothing is imported), resolves
relative imports, counts imports inside functions and ``importlib.import_module("literal")`` calls, and
reports an import of a layer above, an undeclared import sideways within a layer, a cycle between
top-level parts, a cycle between modules, a top-level part that no layer declares, and an import of a
re-exported name through the package face. A self-test runs it on small synthetic packages so that each
rule is seen to fire.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

import hourglass
from hourglass.models import get_model_class, list_models
from hourglass.models.base import Autoencoder, Generator

SRC = Path(hourglass.__file__).resolve().parent

# The layers of hourglass, top to bottom: a part may import the parts of any layer below its own, never
# one above. The bottom layer of the design is ordered within itself as the code is (errors is the floor,
# config sits on it, the rest on both), which keeps a cycle between them from ever starting.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__main__",),  # python -m hourglass: the command line and nothing else
    ("cli",),
    ("sklearn", "export", "compare", "claims"),
    ("run",),
    ("evaluate", "report", "training"),
    ("models", "data"),
    ("registry", "plugins", "memory", "seeding", "threads", "priors", "io", "options"),
    ("config",),
    ("errors",),
)
# Imports between two parts of one layer, each allowed one way only. report draws the arrays it is given:
# it imports neither run (a layer above), nor training or evaluate (no pair here lets it).
SIDEWAYS: frozenset[tuple[str, str]] = frozenset({
    ("claims", "compare"),  # a claim's evidence includes comparisons against PCA/t-SNE
    ("evaluate", "training"),  # the reference classifier is trained by the Trainer
    ("training", "report"),  # the TensorBoard logger draws image grids
})


# -- the checker -------------------------------------------------------------------------------------------
def _modules(root: Path) -> dict[str, Path]:
    top = root.name
    return {".".join((top, *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__"): p
            for p in sorted(root.rglob("*.py"))}


def _imports(name: str, path: Path, mods: dict[str, Path]) -> list[tuple[str, int, str]]:
    """``(module imported, line, imported name or "")`` for every import of a module of the package in
    ``path``, wherever it stands (a function body, ``if TYPE_CHECKING``, a try block)."""
    top = name.split(".")[0]
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def resolve(target: str, line: int, what: str = "") -> None:
        while target and target not in mods:  # `import hourglass.models.base.X`: the longest module prefix
            target = target.rpartition(".")[0]
        if target and target != name:
            found.append((target, line, what))

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base != top and not base.startswith(top + "."):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in mods:
                    resolve(sub, node.lineno)
                else:
                    resolve(base, node.lineno, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == top or alias.name.startswith(top + "."):
                    resolve(alias.name, node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and node.args[0].value.startswith(top + ".")):
            resolve(node.args[0].value, node.lineno)
    return found


def _face_own_names(face: Path) -> set[str]:
    """Names the package's ``__init__`` defines itself (``__version__``), not ones it re-exports."""
    own = set()
    for node in ast.parse(face.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                own.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    return own


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []

    def visit(u: str) -> None:
        index[u] = low[u] = len(index)
        stack.append(u)
        on.add(u)
        for v in sorted(edges.get(u, ())):
            if v not in index:
                visit(v)
                low[u] = min(low[u], low[v])
            elif v in on:
                low[u] = min(low[u], index[v])
        if low[u] == index[u]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == u:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for u in sorted(edges):
        if u not in index:
            visit(u)
    return sorted(comps)


def layering_problems(root: Path, layers=LAYERS, sideways=SIDEWAYS) -> list[str]:
    """Every breach of the declared layering in the package at ``root``, one sentence each (none: [])."""
    mods = _modules(root)
    top = root.name
    face_own = _face_own_names(root / "__init__.py")
    level = {part: i for i, parts in enumerate(layers) for part in parts}
    problems = []

    def part(module: str) -> str | None:
        return module.split(".")[1] if "." in module else None  # None: the package face

    present = {part(m) for m in mods} - {None}
    problems += [f"top-level part {p!r} is in no layer: declare it in LAYERS" for p in sorted(present - set(level))]
    problems += [f"LAYERS declares {p!r}, which the package does not have" for p in sorted(set(level) - present)]

    module_edges: dict[str, set[str]] = {m: set() for m in mods}
    part_edges: dict[str, set[str]] = {}
    for m, path in mods.items():
        where = f"{path.relative_to(root.parent)}"
        for target, line, what in _imports(m, path, mods):
            a, b = part(m), part(target)
            if a is not None and b is None:  # an inner module importing the package face
                if what not in face_own:
                    problems.append(f"{where}:{line} imports {what or top!r} through the package face "
                                    f"(which re-exports every layer): import it from its module")
                continue
            if not (path.name == "__init__.py" and target.startswith(m + ".")):  # a package's own children
                module_edges[m].add(target)
            if a is None or a == b or a not in level or b not in level:
                continue
            part_edges.setdefault(a, set()).add(b)
            if level[b] < level[a]:
                problems.append(f"{where}:{line} imports {target} from above: {b!r} is a layer above {a!r}")
            elif level[b] == level[a] and (a, b) not in sideways:
                problems.append(f"{where}:{line} imports {target} sideways, {a!r} -> {b!r}, which SIDEWAYS "
                                f"does not declare")
    problems += [f"cycle of top-level parts: {' <-> '.join(c)}" for c in _cycles(part_edges)]
    problems += [f"import cycle between modules: {' <-> '.join(c)}" for c in _cycles(module_edges)]
    return problems


# -- hourglass itself --------------------------------------------------------------------------------------
def test_the_layers_of_hourglass_point_one_way():
    assert layering_problems(SRC) == []


def test_the_layers_are_declared_once_each():
    parts = [p for layer in LAYERS for p in layer]
    assert len(parts) == len(set(parts))
    level = {p: i for i, layer in enumerate(LAYERS) for p in layer}
    assert all(level[a] == level[b] for a, b in SIDEWAYS) and not any((b, a) in SIDEWAYS for a, b in SIDEWAYS)


# -- the checker finds what it is meant to find --------------------------------------------------------------
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    for folder in {p.parent for p in root.rglob("*.py")}:
        (folder / "__init__.py").touch()
    return root


TOY_LAYERS = (("app",), ("left", "right"), ("base",))


def test_the_checker_passes_a_package_that_keeps_its_layers(tmp_path):
    root = _package(tmp_path, {
        "app.py": "from .left import core\nimport pkg.base\n",
        "left/core.py": "from ..right.util import f\nfrom . import helper\n",
        "left/helper.py": "from pkg.base import x\n",
        "right/util.py": "def f():\n    from ..base import x\n",
        "base.py": "x = 1\n",
    })
    assert layering_problems(root, TOY_LAYERS, {("left", "right")}) == []


def test_the_checker_reports_an_upward_import_inside_a_function(tmp_path):
    root = _package(tmp_path, {
        "app.py": "",
        "left/__init__.py": "",
        "right/__init__.py": "",
        "base.py": "def late():\n    from .left import thing\n    return thing\n",
    })
    assert layering_problems(root, TOY_LAYERS, set()) == [
        "pkg/base.py:2 imports pkg.left from above: 'left' is a layer above 'base'"]


def test_the_checker_reports_undeclared_sideways_imports_and_cycles_of_parts(tmp_path):
    root = _package(tmp_path, {
        "app.py": "",
        "left/a.py": "import pkg.right.b\n",
        "right/b.py": "def f():\n    import importlib\n    return importlib.import_module('pkg.left.c')\n",
        "left/c.py": "",
        "base.py": "",
    })
    # both directions declared: only the cycle between the two parts is wrong
    assert layering_problems(root, TOY_LAYERS, {("left", "right"), ("right", "left")}) == [
        "cycle of top-level parts: left <-> right"]
    # one declared: the other direction is an undeclared import sideways, and the cycle remains
    assert layering_problems(root, TOY_LAYERS, {("left", "right")}) == [
        "pkg/right/b.py:3 imports pkg.left.c sideways, 'right' -> 'left', which SIDEWAYS does not declare",
        "cycle of top-level parts: left <-> right"]


def test_the_checker_reports_a_cycle_between_modules_of_one_part(tmp_path):
    root = _package(tmp_path, {
        "app.py": "", "left/__init__.py": "", "right/__init__.py": "",
        "base/__init__.py": "from . import one\n",  # a package importing its child is not a cycle
        "base/one.py": "from .two import g\n",
        "base/two.py": "def g():\n    from .one import f\n",
    })
    assert layering_problems(root, TOY_LAYERS, set()) == [
        "import cycle between modules: pkg.base.one <-> pkg.base.two"]


def test_the_checker_reports_undeclared_parts_and_imports_through_the_face(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "__version__ = '1'\nfrom .left import thing\n",
        "app.py": "from . import __version__\n",  # the face's own name: allowed
        "left/__init__.py": "thing = 1\n",
        "base.py": "from . import thing\n",  # re-exported by the face, defined in left (above)
        "extra.py": "",
    })
    assert layering_problems(root, TOY_LAYERS, set()) == [
        "top-level part 'extra' is in no layer: declare it in LAYERS",
        "LAYERS declares 'right', which the package does not have",
        "pkg/base.py:1 imports 'thing' through the package face (which re-exports every layer): import it "
        "from its module"]


# -- a capability is asked of the type --------------------------------------------------------------------
@pytest.mark.parametrize("name", list_models())
def test_a_model_encodes_exactly_when_it_is_an_autoencoder(name):
    """Code that needs ``encode`` asks ``isinstance(model, Autoencoder)`` (the base classes declare the
    surface), so a model class must not grow an ``encode`` outside that type, nor lose it inside."""
    cls = get_model_class(name)
    assert issubclass(cls, Generator)
    assert callable(getattr(cls, "encode", None)) == issubclass(cls, Autoencoder)
    assert callable(getattr(cls, "reconstruct", None)) == issubclass(cls, Autoencoder)


DUCK_TYPED = {"encode", "reconstruct", "has_encoder"}


def duck_typed_questions(root: Path) -> list[str]:
    """``hasattr(x, "encode")``, ``getattr(x, "reconstruct", ...)`` and any ``.has_encoder`` in the source:
    asking an object whether it encodes, where the type says it."""
    hits = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            asked = None
            if isinstance(node, ast.Attribute) and node.attr == "has_encoder":
                asked = node.attr
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("hasattr", "getattr") and len(node.args) >= 2
                  and isinstance(node.args[1], ast.Constant) and node.args[1].value in DUCK_TYPED):
                asked = node.args[1].value
            if asked:
                hits.append(f"{path.relative_to(root.parent)}:{node.lineno} asks for {asked!r}")
    return hits


def test_no_code_asks_a_model_whether_it_encodes():
    assert duck_typed_questions(SRC) == []


def test_the_duck_typing_check_finds_the_questions(tmp_path):
    root = _package(tmp_path, {"m.py": "def f(model):\n    if hasattr(model, 'encode'):\n        pass\n"
                                       "    return getattr(model, 'has_encoder', True) or model.has_encoder\n"})
    assert duck_typed_questions(root) == ["pkg/m.py:2 asks for 'encode'", "pkg/m.py:4 asks for 'has_encoder'",
                                          "pkg/m.py:4 asks for 'has_encoder'"]
