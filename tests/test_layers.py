"""The package's import graph follows the layer list in docs/architecture.md.

Every module of the package is in exactly one layer; a module imports (at the top or inside a
function) only modules of its own layer or below; the graph has no cycle; nothing outside ``cli``
imports ``cli``; no module is over 400 lines. Checked on the source with ``ast``.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pycemrg_scar_reconstruction as pkg

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "pycemrg_scar_reconstruction"


def layers() -> dict[str, int]:
    """Module (dotted, relative to the package) -> layer, from the ``layers`` block of the doc."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"```text\n(layer 0:.*?)```", text, re.S)
    assert block, "docs/architecture.md has no layer block"
    out: dict[str, int] = {}
    for line in block.group(1).splitlines():
        m = re.match(r"layer (\d+): (.*)", line.strip())
        if m:
            for name in m.group(2).split():
                assert name not in out, f"{name} is in two layers"
                out[name] = int(m.group(1))
    return out


def modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts == ("__init__",):
            continue  # the package face: lazy, imports nothing at the top but _version
        out[".".join(p for p in parts if p != "__init__")] = path
    return out


def imported(name: str, path: Path) -> set[str]:
    """Package modules that ``name`` imports anywhere in its source."""
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.startswith("pycemrg_scar_reconstruction"):
                target = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:  # `from . import commands` imports a module
                full = ".".join([*target, alias.name])
                found.add(full if full in modules() else ".".join(target))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("pycemrg_scar_reconstruction."):
                    found.add(alias.name.split(".", 1)[1])
    return {m for m in found if m}


def test_every_module_is_in_one_layer():
    assert set(modules()) == set(layers())


def test_no_module_imports_one_above_it():
    layer = layers()
    bad = []
    for name, path in modules().items():
        for dep in imported(name, path):
            dep_module = dep if dep in layer else dep.rsplit(".", 1)[0]
            if layer[dep_module] > layer[name]:
                bad.append(f"{name} (layer {layer[name]}) imports {dep_module} (layer {layer[dep_module]})")
    assert not bad, bad


def graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (submodule names resolved to modules)."""
    known = modules()
    out: dict[str, set[str]] = {}
    for name, path in known.items():
        out[name] = {dep if dep in known else dep.rsplit(".", 1)[0] for dep in imported(name, path)} - {name}
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_library_never_imports_the_cli():
    bad = [
        f"{name} imports {dep}"
        for name, deps in graph().items()
        if not (name == "cli" or name.startswith("cli."))
        for dep in deps
        if dep == "cli" or dep.startswith("cli.")
    ]
    assert not bad, bad


def test_no_module_over_400_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > 400}
    assert not long, long


def test_the_api_leaves_slow_imports_to_the_steps_that_use_them():
    # scipy.signal (the alignment's correlation) and scipy.optimize (the registration's search)
    # cost every command about 0.6 s at start-up when imported with the api (benchmarks/startup.py)
    code = (
        "import sys, pycemrg_scar_reconstruction.api; print(sorted({'scipy.signal', 'scipy.optimize'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_run_leaves_out_the_slow_imports_it_does_not_need(small_case, tmp_path):
    """torch's optimisers import torch._dynamo (and sympy) on first use, about 1.5 s per process
    (``optimiser.Adam`` does not); scipy.signal costs 0.4-1 s (``alignment.correlate_full`` does
    the correlation with scipy.fft), scipy.stats 0.5 s (the calibration takes the normal's cdf and
    quantile from scipy.special). A `run` of probabilities with a mask (it registers and measures
    residuals) needs none of them; ``mixture`` still imports scipy.stats (its kernel density)."""
    code = (
        "import sys\n"
        "from pycemrg_scar_reconstruction.cli import main\n"
        f"args = ['--mesh', {str(small_case['mesh'])!r}, '--image', {str(small_case['image'])!r},\n"
        f"        '--mask', {str(small_case['mask'])!r}, '--slice-thickness', '8']\n"
        f"assert main(['run', *args, '--output', {str(tmp_path / 'out.vtu')!r}, '--max-epochs', '3', '-q']) == 0\n"
        "print(sorted({'torch', 'torch._dynamo', 'sympy', 'scipy.signal', 'scipy.stats'} & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['torch']"


def test_package_face_is_lazy_and_complete():
    out = subprocess.run(
        [sys.executable, "-c", "import sys, pycemrg_scar_reconstruction as p; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"
    assert set(pkg.__all__) == {*pkg._EXPORTS, "__version__"}
    for name in pkg.__all__:
        assert getattr(pkg, name) is not None
    # no function hides a module: the modules keep their own names
    import pycemrg_scar_reconstruction.prediction as prediction

    assert callable(prediction.mc_predict) and callable(pkg.predict)
    assert (SRC / "py.typed").exists()
