"""The layers of the package, read from its import statements.

models (pure msgspec + stdlib) -> validation -> io -> scan -> API -> CLI: a module imports only
from its own layer or the ones before it, and the module-level imports have no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "cellmap_schemas"

LAYERS = {
    "models": 0,
    "validation": 1,
    "io": 2,
    "scan": 3,
    "api": 4,
    "cli": 5,
}


def _layer(module: str) -> str:
    parts = module.split(".")[1:]
    head = parts[0] if parts else ""
    if head == "cli":
        return "cli"
    if head in ("asynchronous", "synchronous"):
        return "api"
    if head == "_scan":
        return "scan"
    if head == "io":
        return "io"
    if head == "validation":
        return "validation"
    return "models"


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(path: Path, *, module_level: bool) -> set[str]:
    """The package modules a file imports (TYPE_CHECKING blocks left out)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inner = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom) and (top or not module_level):
                base = child.module or ""
                if base.startswith("cellmap_schemas"):
                    found.add(base)
                    found.update(f"{base}.{a.name}" for a in child.names)
            elif isinstance(child, ast.Import) and (top or not module_level):
                found.update(a.name for a in child.names if a.name.startswith("cellmap_schemas"))
            visit(child, inner)

    visit(tree, True)
    return found


# Spec classes keep the original's I/O methods (``from_url``, ``to_zarr``, ``from_zarr``): they
# delegate to io, importing it inside the method, so the models stay importable without it.
IO_METHODS = {"cellmap_schemas.spec.zarr_v2"}


def test_every_import_goes_down_the_layers() -> None:
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        if name == "cellmap_schemas":  # the package root re-exports the API lazily
            continue
        if name in IO_METHODS:  # only function-level imports may reach io, from here
            assert not any(
                _layer(t) != "models" and _layer(t) != "validation"
                for t in _imports(path, module_level=True)
            ), name
            continue
        mine = LAYERS[_layer(name)]
        for target in _imports(path, module_level=False):
            if target in modules and LAYERS[_layer(target)] > mine:
                wrong.append(f"{name} ({_layer(name)}) imports {target} ({_layer(target)})")
    assert not wrong, "\n".join(sorted(wrong))


def test_models_import_only_msgspec_and_the_standard_library() -> None:
    allowed = {"msgspec", "numpy"}  # numpy: only inside from_array constructors, lazily
    for name, path in _modules().items():
        if _layer(name) != "models" or name == "cellmap_schemas":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = {node.module.split(".")[0]}
            else:
                continue
            third = {r for r in roots if r not in allowed and r != "cellmap_schemas"}
            third -= set(__import__("sys").stdlib_module_names)
            assert not third, f"{name} imports {third}"


def test_module_level_imports_have_no_cycle() -> None:
    modules = _modules()
    graph = {
        name: {t for t in _imports(path, module_level=True) if t in modules and t != name}
        for name, path in modules.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


# Modules still over the limit, each with the most it may grow to until it is split: none.
NOT_YET_SPLIT: dict[str, int] = {}


def test_no_module_is_over_600_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    long = {n: k for n, k in sizes.items() if k > NOT_YET_SPLIT.get(n, 600)}
    assert not long, long


def test_no_function_is_over_80_lines_besides_its_docstring() -> None:
    long = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            first = node.body[0]
            documented = isinstance(first, ast.Expr) and isinstance(
                getattr(first, "value", None), ast.Constant
            )
            start = first.end_lineno + 1 if documented and first.end_lineno else first.lineno
            if (node.end_lineno or start) - start + 1 > 80:
                long.append(f"{name}.{node.name}")
    assert not long, long


STORE_BACKENDS = ("_local", "_fsspec", "_s3")


def test_store_backends_share_the_base_and_never_import_the_dispatch() -> None:
    """``io.store.open_store`` picks a backend; a backend imports ``io._base`` (the interface and
    its helpers), never ``io.store``, at any level: no cycle, even inside a function."""
    modules = _modules()
    for backend in STORE_BACKENDS:
        name = f"cellmap_schemas.io.{backend}"
        imports = _imports(modules[name], module_level=False)
        assert "cellmap_schemas.io.store" not in imports, name
        assert "cellmap_schemas.io._base" in imports, name


def test_the_names_that_lived_in_io_store_are_the_same_objects() -> None:
    from cellmap_schemas import errors
    from cellmap_schemas.io import _base, _fsspec, store

    assert store.Store is _base.Store
    assert store.FsspecStore is _fsspec.FsspecStore
    assert store.DEFAULT_MAX_DOCUMENT_SIZE == _base.DEFAULT_MAX_DOCUMENT_SIZE
    assert store.NotFollowedError is errors.NotFollowedError
    assert issubclass(errors.NotFollowedError, errors.StoreError)
    assert issubclass(store.FsspecStore, store.Store)
