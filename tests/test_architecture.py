"""The package's shape, checked: one-way imports, a pure core, click only in the CLI, a light --help."""
from __future__ import annotations

import ast
import graphlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "prism_eval"
HEAVY = ("scipy", "torch", "transformers", "datasets", "vllm", "ray", "pyarrow", "lmms_eval")


def _modules(package: Path) -> dict[str, Path]:
    out = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function (both count)."""
    is_pkg = path.name == "__init__.py"
    base = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                anchor = base.split(".")[: len(base.split(".")) - node.level + 1]
                module = ".".join(anchor + ([module] if module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _graph(package: Path) -> dict[str, set[str]]:
    modules = _modules(package)

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for target in _imports(name, path):
            dep = resolve(target)
            # importing one's own ancestor package is not an edge: Python initialises it first anyway
            if dep and dep != name and not name.startswith(dep + "."):
                edges.add(dep)
        graph[name] = edges
    return graph


@pytest.mark.parametrize("package", ["prism_eval", "caprl_train"])
def test_no_import_cycles_even_through_function_level_imports(package):
    graph = _graph(ROOT / package)
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        pytest.fail(f"import cycle: {' -> '.join(err.args[1])}")


def test_the_cycle_check_can_see_a_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg import b\n")
    (pkg / "b.py").write_text("from pkg.a import f\n")
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter(_graph(pkg)).static_order())


def test_core_imports_no_model_or_data_library():
    for name, path in _modules(PACKAGE).items():
        if name.startswith("prism_eval.core"):
            heavy = {t.split(".")[0] for t in _imports(name, path)} & {"torch", "transformers", "vllm", "datasets",
                                                                        "click", "rich"}
            assert not heavy, f"{path} imports {sorted(heavy)}"


def test_click_lives_only_in_the_command_line_packages():
    for package in ("prism_eval", "caprl_train"):
        for name, path in _modules(ROOT / package).items():
            if "click" in {t.split(".")[0] for t in _imports(name, path)}:
                assert name.startswith(("prism_eval.cli", "caprl_train.cli")), f"{path} imports click"


@pytest.mark.parametrize("argv", [["--help"], ["benchmarks"], ["benchmarks", "--json"], ["run", "--help"],
                                  ["report", "--help"]])
def test_light_commands_load_no_heavy_library(argv):
    code = ("import sys, json\nfrom prism_eval.cli import main\n"
            f"try:\n    main({argv!r}, standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []


def test_no_file_points_outside_the_repository():
    texts = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *PACKAGE.rglob("*.py"),
             *(ROOT / "caprl_train").rglob("*.py"), *(p for p in (ROOT / "tests").rglob("*.py") if p != Path(__file__).resolve()),
             ROOT / "Makefile", *(ROOT / "tools").glob("*.sh")]
    for path in texts:
        text = path.read_text(encoding="utf-8")
        for needle in ("../shared", "DESIGN.md", "papers.md", "ecosystem.md", "feasibility.md"):
            assert needle not in text, f"{path} mentions {needle}"
