"""The layout holds: the library never reaches the application, no import cycles, small modules.

Every module of geo_monitor is read with ``ast`` (imports inside functions included), so a
lazy import cannot hide a dependency that a module-level import would show.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPLICATION = {"fastapi", "starlette", "uvicorn", "folium", "branca", "api", "maps", "cli"}
# Who may import whom (top-level packages of this repository): the flow runs one way.
ALLOWED = {"geo_monitor": {"geo_monitor"}, "maps": {"geo_monitor", "maps"},
           "api": {"geo_monitor", "maps", "api"}, "cli": {"geo_monitor", "maps", "api", "cli"}}
MAX_LINES = 450


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """Return every module ``name`` imports, absolute names, wherever the import stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


LIBRARY = _modules("geo_monitor")


@pytest.mark.parametrize("module", sorted(LIBRARY))
def test_library_never_imports_the_application(module: str) -> None:
    reached = {name.split(".")[0] for name in _imports(module, LIBRARY[module])}
    assert not reached & APPLICATION, f"{module} imports {sorted(reached & APPLICATION)}"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_down_the_flow_only(package: str) -> None:
    wrong = {}
    for module, path in _modules(package).items():
        reached = {name.split(".")[0] for name in _imports(module, path)} & set(ALLOWED)
        if reached - ALLOWED[package]:
            wrong[module] = sorted(reached - ALLOWED[package])
    assert not wrong, f"imports against the flow: {wrong}"


def test_no_import_cycle_in_the_library() -> None:
    graph = {m: {i for i in _imports(m, p) if i in LIBRARY and i != m and not LIBRARY[i].name == "__init__.py"}
             for m, p in LIBRARY.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_modules_stay_small_and_sub_packages_tell_the_flow() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines())
             for package in ("geo_monitor", "api", "maps", "cli") for p in (ROOT / package).rglob("*.py")}
    assert {k: v for k, v in sizes.items() if v > MAX_LINES} == {}
    subpackages = [p.parent.name for p in (ROOT / "geo_monitor").glob("*/__init__.py")]
    assert {"store", "analysis", "privacy", "zones"} <= set(subpackages)
    for init in (ROOT / "geo_monitor").glob("*/__init__.py"):
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} must say in a line what it holds"


ROLE_TEST = re.compile(r"\.role\s*(==|!=|in\b|not\s+in\b)|\brole\s*(==|!=)\s*[\"']")


@pytest.mark.parametrize("package", ["api", "maps"])
def test_surfaces_hold_no_role_test(package: str) -> None:
    """Surfaces ask geo_monitor.privacy.access; a role compared in api/ or maps/ is a rule in the wrong place."""
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in sorted((ROOT / package).rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1) if ROLE_TEST.search(line)]
    assert found == [], "role tests outside the access policy:\n" + "\n".join(found)
