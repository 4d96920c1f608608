"""What the course is made of, read from the repository without running any of it.

Glossary
    chapter     the number NN of a notebook notebooks/NN_name.ipynb (its "stem" is NN_name)
    Exercise    one exercise of a chapter: the learner's function name, its check and the check's module,
                read from the EXERCISES list of notebooks/solutions/NN_name.py with `ast` (never imported)
    tag         a cell's metadata tag: `exercise` (the stub), `check` (its check call), `slide`, `gpu`

The solutions files are parsed, not imported: the build and the grader never need torch, and a
solutions file's imports are copied into the instructor's notebooks only where its functions use them.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository (an editable install points here)
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
RESULTS = ROOT / "results"
COURSE_DOCS = ROOT / "docs" / "course"
STEM = re.compile(r"^(\d\d)_[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class Exercise:
    """One exercise: the learner writes `name` in chapter `stem`; `module.check` grades it."""

    stem: str
    name: str
    check: str
    module: str

    @property
    def chapter(self) -> int:
        return int(self.stem[:2])


def chapters(notebooks: Path = NOTEBOOKS) -> dict[int, Path]:
    """{chapter number: notebook path} for every notebooks/NN_name.ipynb."""
    found = {}
    for path in sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        if STEM.match(path.stem):
            found[int(path.stem[:2])] = path
    return found


def chapter_of(name: str) -> int | None:
    """The chapter number a file name starts with ("02_discretization (1).ipynb" -> 2), or None."""
    m = re.match(r"^(\d\d)(?!\d)", Path(name).name)
    return int(m.group(1)) if m else None


def _solutions_tree(stem: str) -> tuple[str, ast.Module]:
    path = SOLUTIONS / f"{stem}.py"
    if not path.exists():
        raise FileNotFoundError(f"no reference solutions for {stem}: expected {path.relative_to(ROOT)}")
    src = path.read_text()
    return src, ast.parse(src, filename=str(path))


def _exercises_node(tree: ast.Module, stem: str) -> ast.List:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "EXERCISES" for t in node.targets):
            if isinstance(node.value, ast.List):
                return node.value
    raise ValueError(f"notebooks/solutions/{stem}.py has no EXERCISES = [...] list")


def exercises(stem: str) -> list[Exercise]:
    """The exercises of chapter `stem`, in the order of its solutions file's EXERCISES list."""
    _, tree = _solutions_tree(stem)
    modules = {a.asname or a.name: node.module for node in tree.body if isinstance(node, ast.ImportFrom)
               for a in node.names}
    out = []
    for item in _exercises_node(tree, stem).elts:
        if not (isinstance(item, ast.Tuple) and len(item.elts) == 3
                and all(isinstance(e, ast.Name) for e in item.elts[:2])):
            raise ValueError(f"notebooks/solutions/{stem}.py: EXERCISES entries must be (check, solution, [wrong, ...])")
        check, solution = item.elts[0].id, item.elts[1].id
        if check not in modules:
            raise ValueError(f"notebooks/solutions/{stem}.py: {check} must be imported with `from <module> import {check}`")
        out.append(Exercise(stem, solution, check, modules[check]))
    return out


def wrong_answers(stem: str) -> dict[str, list[tuple[str, str]]]:
    """{solution name: [(wrong answer's name, its docstring or ""), ...]} of chapter `stem`."""
    _, tree = _solutions_tree(stem)
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    out = {}
    for item in _exercises_node(tree, stem).elts:
        names = [e.id for e in item.elts[2].elts if isinstance(e, ast.Name)] if isinstance(item.elts[2], ast.List) else []
        out[item.elts[1].id] = [(n, (ast.get_docstring(funcs[n]) or "") if n in funcs else "") for n in names]
    return out


def _bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    return []


def _used_names(node: ast.AST) -> set[str]:
    """Names a definition reads from outside: every name it loads, less its parameters and locals."""
    loads = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    local = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        local |= {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
    return loads - local


def solution_source(stem: str, name: str, defined: set[str] = frozenset(), docstring: str | None = None) -> str:
    """The source of reference solution `name` of chapter `stem`, ready to paste into a cell.

    It starts with the imports the function needs (only those names it uses, taken from the solutions
    file), then any helper it calls that is not in `defined` (names an earlier cell already defines),
    then the function. `docstring`, when given and the solution has none, is put in as its docstring.
    """
    src, tree = _solutions_tree(stem)
    top = {}
    for node in tree.body:
        for bound in _bound_names(node):
            top[bound] = node
    if name not in top or not isinstance(top[name], ast.FunctionDef):
        raise ValueError(f"notebooks/solutions/{stem}.py defines no function {name}")
    needed, todo = [], [name]
    while todo:  # the function, then (transitively) the helpers it uses
        current = todo.pop()
        for used in sorted(_used_names(top[current]) - {current}):
            node = top.get(used)
            if node is None or used in defined or used in needed or used == name:
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                needed.append(used)
            else:
                needed.append(used)
                todo.append(used)
    imports, helpers = [], []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            keep = [a for a in node.names if (a.asname or a.name).split(".")[0] in needed]
            if keep:
                clone = ast.Import(names=keep) if isinstance(node, ast.Import) else ast.ImportFrom(
                    module=node.module, names=keep, level=node.level)
                imports.append(ast.unparse(clone))
        elif any(b in needed for b in _bound_names(node)):
            helpers.append(source_of(src, node))
    func = source_of(src, top[name])
    if docstring and ast.get_docstring(top[name]) is None:
        func = _with_docstring(func, docstring)
    parts = ["\n".join(imports)] if imports else []
    return "\n\n\n".join(parts + helpers + [func]) + "\n"


def source_of(src: str, node: ast.stmt) -> str:
    """The source of a top-level statement, decorators included (`@triton.jit` belongs to the kernel)."""
    first = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
    return "\n".join(src.splitlines()[first - 1:node.end_lineno])


def _with_docstring(func_src: str, docstring: str) -> str:
    """`func_src` (a top-level def) with `docstring` inserted as the first statement of its body."""
    node = ast.parse(func_src).body[0]
    lines = func_src.splitlines()
    first = node.body[0]
    indent = re.match(r"\s*", lines[first.lineno - 1]).group(0) or "    "
    doc = textwrap.indent('"""' + docstring.replace('"""', r'\"\"\"') + '"""', indent)
    return "\n".join(lines[:first.lineno - 1] + doc.splitlines() + lines[first.lineno - 1:])


def defined_functions(source: str) -> list[ast.FunctionDef]:
    """The top-level function definitions of a cell's source ([] if it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [n for n in tree.body if isinstance(n, ast.FunctionDef)]


def defines(source: str, name: str) -> bool:
    """Whether a cell's source defines `name` at top level (a def, an assignment or an import), read as text
    so that cells which do not parse (a learner's syntax error) are still recognised."""
    pattern = rf"^(?:async\s+def|def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*(?::[^=]*)?=(?!=)|^(?:from\s+\S+\s+)?import\s.*\b{re.escape(name)}\b"
    return re.search(pattern, source, re.M) is not None


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def strip_outputs(nb) -> None:
    """Remove every output, execution count and widget state (in place), as the notebooks are committed."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
