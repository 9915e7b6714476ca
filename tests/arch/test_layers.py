"""The layout's import rules, checked on the source (see docs/architecture.md).

Every first-level part of ``runmonitor/`` sits on one layer. A part may import parts on lower
layers only: never one above it, never a sibling on its own layer. Imports under
``if TYPE_CHECKING:`` are left out (they never run); imports inside functions count, since they
run. The same rules are in each part's ``ruff.toml`` (banned-api, TID251), so an editor flags a
back-edge as it is typed; the last test here keeps those files and this table in step.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "runmonitor"

#: Lowest first. A part imports only parts of earlier rows.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"domain"}),
    frozenset({"services", "simulator"}),
    frozenset({"storage"}),
    frozenset({"engine"}),
    frozenset({"notify"}),
    frozenset({"app"}),
    frozenset({"ui", "drills"}),
    frozenset({"cli"}),
    frozenset({"__main__"}),
)
RANK = {part: rank for rank, row in enumerate(LAYERS) for part in row}
#: Parts that import Qt (the rest must not, on any layer).
QT_PARTS = frozenset({"ui"})


def parts_on_disk() -> set[str]:
    found = set()
    for entry in PACKAGE.iterdir():
        if entry.is_dir() and (entry / "__init__.py").exists():
            found.add(entry.name)
        elif entry.suffix == ".py" and entry.name != "__init__.py":
            found.add(entry.stem)
    return found


PARTS = frozenset(parts_on_disk())


def part_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import that runs, relative ones made absolute."""

    def visit(node: ast.AST) -> Iterator[tuple[int, str]]:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            if target == "runmonitor":  # from runmonitor import services
                for alias in node.names:
                    if alias.name in PARTS:
                        yield node.lineno, f"runmonitor.{alias.name}"
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    yield from visit(tree)


def edges() -> Iterator[tuple[str, str, str]]:
    """(importing part, imported part, "file:line") for every import between two parts."""
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT)
        module = ".".join(relative.with_suffix("").parts)
        if module.endswith(".__init__"):
            module = module.removesuffix(".__init__") + ".__init__"
        source = part_of(path) if path.parent != PACKAGE or path.name != "__init__.py" else None
        if source is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, target in _imports(tree, module):
            names = target.split(".")
            if names[0] in ("PySide6", "qasync", "shiboken6"):
                yield source, "Qt", f"{relative}:{line}"
            if names[0] != "runmonitor" or len(names) < 2:
                continue
            if names[1] != source:
                yield source, names[1], f"{relative}:{line}"


def test_every_part_has_a_layer() -> None:
    on_disk = parts_on_disk()
    assert on_disk - RANK.keys() == set(), "a new first-level part needs a row in LAYERS"
    assert RANK.keys() - on_disk == set(), "LAYERS names a part that is gone"


def test_no_part_imports_one_above_it_or_a_sibling() -> None:
    wrong = [
        f"{where}: {source} (layer {RANK[source]}) imports {target} (layer {RANK[target]})"
        for source, target, where in edges()
        if target != "Qt" and RANK[target] >= RANK[source]
    ]
    assert wrong == []


def test_no_cycle_between_parts() -> None:
    graph: dict[str, set[str]] = {}
    for source, target, _ in edges():
        if target != "Qt":
            graph.setdefault(source, set()).add(target)

    def reaches(start: str, goal: str) -> bool:
        seen, stack = set(), [start]
        while stack:
            node = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    cycles = sorted({" ⇄ ".join(sorted((a, b))) for a in graph for b in graph[a] if reaches(b, a)})
    assert cycles == []


def test_only_the_window_imports_qt() -> None:
    wrong = [f"{where}: {source}" for source, target, where in edges() if target == "Qt"]
    assert [w for w in wrong if w.rsplit(": ", 1)[1] not in QT_PARTS] == []


def _banned(config: Path) -> set[str]:
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    banned = data.get("lint", {}).get("flake8-tidy-imports", {}).get("banned-api", {})
    return set(banned)


@pytest.mark.parametrize("part", sorted(p for p in RANK if p != "__main__"))
def test_ruff_bans_what_this_table_forbids(part: str) -> None:
    """Each part's ruff.toml bans every part it may not import, and Qt outside the window."""
    config = PACKAGE / part / "ruff.toml"
    forbidden = {f"runmonitor.{p}" for p in RANK if p not in (part, "__main__") and RANK[p] >= RANK[part]}
    if part not in QT_PARTS:
        forbidden |= {"PySide6", "qasync"}
    assert config.exists(), f"runmonitor/{part}/ruff.toml is missing"
    assert _banned(config) == forbidden
