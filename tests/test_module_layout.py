"""The library's layout stays honest: no import circle inside `mamba_edu`, and no module grows past
~400 lines while holding more than one concept (DESIGN.md: one module per concept).

Edges are read from the source (every `import mamba_edu.x`, `from mamba_edu.x import`, `from . import x`,
`from .x import`, `from .. import x`, at module level or inside a function: a lazy import is still a
dependency), so the test needs nothing imported and catches a circle before Python would.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"mamba_edu": ROOT / "mamba_edu", "mamba_edu.kernels": ROOT / "kernels"}


def _modules() -> dict[str, Path]:
    """Every module of the package: dotted name → file (kernels/ is installed as mamba_edu.kernels)."""
    mods = {}
    for pkg, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if pkg == "mamba_edu" and parts[:1] == ["kernels"]:
                continue
            mods[".".join([pkg, *parts])] = path
    return mods


def _resolve(name: str, mods: dict) -> str | None:
    """The longest prefix of `name` that is one of our modules (`a.b.func` → `a.b`)."""
    while name:
        if name in mods:
            return name
        name = name.rpartition(".")[0]
    return None


def import_edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module → the package modules it imports (absolute and relative forms, anywhere in the file)."""
    edges = {}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        here = mod.split(".") if is_pkg else mod.split(".")[:-1]  # the package a relative import starts from
        out = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here[: len(here) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # `from pkg import x` names the submodule pkg.x where there is one, else an attribute of pkg
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                r = _resolve(t, mods)
                if r and r != mod:
                    out.add(r)
        edges[mod] = out
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path [a, b, …, a], or None (depth-first search with three colours).
    """
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(edges, WHITE)
    stack: list[str] = []

    def visit(m):
        colour[m] = GREY
        stack.append(m)
        for n in sorted(edges[m]):
            if colour[n] == GREY:
                return stack[stack.index(n):] + [n]
            if colour[n] == WHITE and (c := visit(n)):
                return c
        stack.pop()
        colour[m] = BLACK
        return None

    for m in sorted(edges):
        if colour[m] == WHITE and (c := visit(m)):
            return c
    return None


def test_find_cycle_finds_a_planted_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_import_edges_reads_relative_and_lazy_imports(tmp_path):
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n")
    (pkg / "b.py").write_text("from . import a\nimport p.c\n")
    (pkg / "c.py").write_text("x = 1\n")
    mods = {"p": pkg / "__init__.py", "p.a": pkg / "a.py", "p.b": pkg / "b.py", "p.c": pkg / "c.py"}
    edges = import_edges(mods)
    assert edges["p.a"] == {"p.b"} and edges["p.b"] == {"p.a", "p.c"}
    assert find_cycle(edges) == ["p.a", "p.b", "p.a"]


def test_no_import_circle_in_mamba_edu():
    edges = import_edges(_modules())
    assert "mamba_edu.registry" in edges and "mamba_edu.kernels.fused_op" in edges  # the walk sees the package
    cycle = find_cycle(edges)
    assert cycle is None, "import circle: " + " → ".join(cycle)


# Modules above ~400 lines, each holding one concept (checked by reading them; a new entry needs a reason).
ONE_CONCEPT_BUT_LONG = {
    "mamba_edu.bench": "the benchmark and its result files",
    "mamba_edu.selective": "S6 and its selective scans",
    "mamba_edu.models": "the layers and models built from the scans",
    "mamba_edu.train": "training and evaluating the task models",
    "mamba_edu.ssd": "Mamba-2's state space duality",
    "mamba_edu.mamba3": "Mamba-3: its recurrence in three forms (step, chunked, complex) and its layer",
    "mamba_edu.cli": "the mamba-edu command: one parser and one handler per subcommand",
    "mamba_edu.scan": "the parallel scans",
    "mamba_edu.kernels.selective_scan_fused": "the fused kernel's Triton code",
}


@pytest.mark.parametrize("mod", sorted(_modules()))
def test_long_modules_are_known_single_concepts(mod):
    lines = len(_modules()[mod].read_text().splitlines())
    if lines > 420:
        assert mod in ONE_CONCEPT_BUT_LONG, f"{mod} has {lines} lines: split it by concept or record why it is one"
