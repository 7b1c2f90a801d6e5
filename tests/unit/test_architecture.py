"""The architecture of docs/architecture.md, kept by a test: the import graph of app/, read with `ast`.

Every import counts, at the top of a module or inside a function (a lazy import hides a circle
from Python, not from this test). Nodes are halves of packages: a package's *web* half is its
views (a `views.py` or a `views/` package), forms and CLIs; everything else is its *domain* half,
which sits in the package's layer. The blueprint packages (portal, back office, API) sit in the web
layer with the web halves; what the blueprints share (the bill-access guard, the JSON APIs' kit,
the bill page's context) sits one layer below them.

Whole packages are kept free of circles too, counting the imports a module runs when it is imported
(`test_no_circle_between_whole_packages`).
"""

from __future__ import annotations

import ast
import functools
import itertools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"

#: Layers, lowest first: a domain half may import its own layer and those below, never above.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("foundation", frozenset({"core", "money", "config", "extensions", "errors", "i18n", "models", "crypto",
                              "readpath", "ratelimit", "security", "sessions", "templating", "ops",
                              "page_cache"})),
    ("records and delivery", frozenset({"creditors", "outbox", "audit"})),
    ("bills and links", frozenset({"billing", "links"})),
    ("payments", frozenset({"payments"})),
    ("the customer's choices", frozenset({"support", "resolutions", "dunning"})),
    ("after the bill", frozenset({"debt_collection", "content", "analytics", "events", "privacy"})),
    ("shared by the blueprints", frozenset({"access", "apikit", "bill_page"})),
    ("web", frozenset({"portal", "backoffice", "api", "commands"})),
    ("composition", frozenset({"app", "cli", "demo", "model_registry"})),
)
RANK = {package: rank for rank, (_name, packages) in enumerate(LAYERS) for package in packages}
WEB = next(rank for rank, (name, _packages) in enumerate(LAYERS) if name == "web")

#: Parts of a module's name that put it in its package's web half.
WEB_PARTS = frozenset({"views", "forms", "cli"})

#: Modules that own their transactions (they commit); every other module adds and flushes.
COMMITTING = frozenset({"worker", "dispatcher"})

#: Arrows the architecture forbids outright, whatever the layers say: (importer, imported) prefixes.
FORBIDDEN: tuple[tuple[str, str, str], ...] = (
    ("app.portal", "app.backoffice", "the customer's pages and the agents' pages share modules, not each other"),
    ("app.backoffice", "app.portal", "the customer's pages and the agents' pages share modules, not each other"),
    ("app.billing", "app.payments", "payments settle bills; bills hear of payments by signals"),
    ("app.payments.gateways", "app.models", "gateway adapters are pure: no database"),
    ("app.payments.gateways", "app.extensions", "gateway adapters are pure: no database"),
    ("app.payments.gateways", "flask", "gateway adapters are pure: no Flask objects"),
    ("app.payments.gateways", "flask_babel", "gateway adapters are pure: no Flask objects"),
    ("app.payments.gateways", "sqlalchemy", "gateway adapters are pure: no database"),
)

#: Exceptions to the rules above, each with its reason. It starts, and should stay, empty.
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str  # a module of app/, or an outside package's top name
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def parsed(path: Path) -> ast.Module:
    """A module's syntax tree, parsed once for all the rules below."""
    return ast.parse(path.read_text(), str(path))


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(APP.rglob("*.py"))}


def _resolve(name: str, known: dict[str, Path]) -> str:
    """The module `name` is, or lies in (an imported function's module)."""
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports(known: dict[str, Path], walk=ast.walk) -> list[Import]:
    """Every import of every module (`walk`: which of a module's statements to look at)."""
    found = []
    for module, path in known.items():
        for node in walk(parsed(path)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from its package
                    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                names = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin
                         for alias in node.names]
            else:
                continue
            for name in names:
                if name == "app" or name.startswith("app."):
                    found.append(Import(module, _resolve(name, known), node.lineno))
                else:
                    found.append(Import(module, name, node.lineno))
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") \
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def run_on_import(tree: ast.AST) -> list[ast.stmt]:
    """The import statements a module runs when it is imported: at its top level, in its classes'
    bodies and its `if`, `try` and `with` blocks; not in a function's body (run when called) and not
    under `if TYPE_CHECKING:` (never run; its `else` is)."""
    found: list[ast.stmt] = []
    pending = list(ast.iter_child_nodes(tree))
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))
    return sorted(found, key=lambda node: node.lineno)


def package(module: str) -> str:
    parts = module.split(".")
    return "app" if len(parts) == 1 else parts[1]


def is_web(module: str) -> bool:
    return any(part in WEB_PARTS for part in module.split(".")[2:]) or module.split(".")[1:2] == ["cli"]


def is_view(module: str) -> bool:
    return "views" in module.split(".")[2:]


def half(module: str) -> tuple[str, str]:
    return package(module), "web" if is_web(module) else "domain"


def rank(module: str) -> int:
    pkg = package(module)
    return max(RANK[pkg], WEB) if is_web(module) else RANK[pkg]


def views_package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[: parts.index("views") + 1])


KNOWN = modules()
IMPORTS = imports(KNOWN)
INTERNAL = [i for i in IMPORTS if i.imported in KNOWN]
#: The imports of app/ a module runs when it is imported (see `run_on_import`).
ON_IMPORT = [i for i in imports(KNOWN, run_on_import) if i.imported in KNOWN]


def _where(i: Import) -> str:
    return f"{i.importer} (line {i.line}) imports {i.imported}"


def _allowed(i: Import) -> bool:
    return (i.importer, i.imported) in ALLOWED


def test_every_package_has_a_layer():
    """A new package must be placed in the architecture (docs/architecture.md and LAYERS above)."""
    missing = sorted({package(m) for m in KNOWN} - set(RANK))
    assert not missing, f"packages in no layer: {missing}"


def test_no_circle_between_packages():
    """Between packages' halves, no import circle, however long (Tarjan's strongly connected components)."""
    edges: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    witness: dict[tuple[tuple[str, str], tuple[str, str]], Import] = {}
    for i in INTERNAL:
        a, b = half(i.importer), half(i.imported)
        if a != b and not _allowed(i):
            edges[a].add(b)
            witness.setdefault((a, b), i)
    circles = strongly_connected(edges)
    described = []
    for circle in circles:
        path = shortest_cycle(edges, set(circle))
        arrows = [_where(witness[(a, b)]) for a, b in itertools.pairwise(path)]
        described.append(" -> ".join(f"{p}.{h}" for p, h in path) + "\n    " + "\n    ".join(arrows))
    assert not circles, "import circles (one shortest round each):\n  " + "\n  ".join(described)


def test_no_circle_between_whole_packages():
    """Between whole packages (both halves together), no circle of the imports that run when a module
    is imported. The factory (`app/__init__.py`) imports every feature and is left out as an importer."""
    edges: dict[str, set[str]] = defaultdict(set)
    arrows: dict[tuple[str, str], dict[Import, None]] = defaultdict(dict)  # ordered, each import once
    for i in ON_IMPORT:
        a, b = package(i.importer), package(i.imported)
        if a != b and i.importer != "app" and not _allowed(i):
            edges[a].add(b)
            arrows[(a, b)][i] = None
    described = []
    for circle in strongly_connected(edges):
        members = set(circle)
        lines = [f"{', '.join(sorted(members))} (one shortest round: {' -> '.join(shortest_cycle(edges, members))}),"
                 " closed by the imports between them:"]
        for a, b in sorted(arrow for arrow in arrows if set(arrow) <= members):
            lines += [f"    {a} -> {b}:"] + [f"      {_where(i)}" for i in arrows[(a, b)]]
        described.append("\n".join(lines))
    assert not described, "import circles between whole packages:\n  " + "\n  ".join(described)


def shortest_cycle(edges: dict, members: set) -> list:
    """A shortest round trip within one strongly connected component, as the list of its nodes."""
    best: list = []
    for start in sorted(members):
        queue, previous, found = [start], {}, None
        while queue and found is None:
            node = queue.pop(0)
            for nxt in sorted(edges.get(node, ())):
                if nxt not in members:
                    continue
                if nxt == start:
                    found = node
                    break
                if nxt not in previous:
                    previous[nxt] = node
                    queue.append(nxt)
        if found is None:
            continue
        path, node = [start], found
        while node != start:
            path.insert(1, node)
            node = previous[node]
        path.append(start)
        if not best or len(path) < len(best):
            best = path
    return best


def strongly_connected(edges: dict) -> list[list]:
    index: dict = {}
    low: dict = {}
    stack: list = []
    on_stack: set = set()
    found: list[list] = []
    counter = [0]

    def visit(node) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in list(edges):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_a_view_module():
    """Views are imported by the app factory (to register them) and by their own views package only."""
    wrong = [_where(i) for i in INTERNAL
             if is_view(i.imported) and i.importer != "app" and not _allowed(i)
             and not (is_view(i.importer) and views_package(i.importer) == views_package(i.imported))]
    assert not wrong, "\n".join(wrong)


def test_domain_code_imports_no_views_forms_or_clis():
    """A feature's domain code (models, services, workers...) never imports a web half's module."""
    wrong = [_where(i) for i in INTERNAL
             if not is_web(i.importer) and is_web(i.imported) and package(i.importer) != "app"
             and RANK[package(i.importer)] < RANK["app"] and not _allowed(i)]
    assert not wrong, "\n".join(wrong)


def test_imports_run_down_the_layers():
    """Down or sideways within a layer, never up."""
    wrong = [f"{_where(i)} ({LAYERS[rank(i.importer)][0]} -> {LAYERS[rank(i.imported)][0]})"
             for i in INTERNAL if rank(i.importer) < rank(i.imported) and not _allowed(i)]
    assert not wrong, "\n".join(wrong)


def test_forbidden_arrows():
    wrong = []
    for i in IMPORTS:
        for importer, imported, why in FORBIDDEN:
            if _under(i.importer, importer) and _under(i.imported, imported) and not _allowed(i):
                wrong.append(f"{_where(i)}: {why}")
    assert not wrong, "\n".join(wrong)


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _is_route_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return isinstance(target, ast.Attribute) and target.attr in {"route", "get", "post", "put", "patch", "delete"} \
        and isinstance(target.value, ast.Name) and target.value.id == "bp"


@pytest.mark.parametrize("module", sorted(KNOWN))
def test_routes_live_in_view_modules(module):
    """A module that makes a Blueprint or adds routes to one is a view module by its name, so that
    the rules above see it as one."""
    tree = parsed(KNOWN[module])
    makes_routes = any(
        (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Blueprint")
        or (isinstance(node, ast.FunctionDef) and any(_is_route_decorator(d) for d in node.decorator_list))
        for node in ast.walk(tree)
    )
    assert not makes_routes or is_view(module), f"{module} has routes: move it into a views module"


def test_only_views_clis_and_workers_commit():
    """Services add and flush; the request, the CLI command or the worker owns the transaction."""
    wrong = []
    for module, path in KNOWN.items():
        if is_web(module) or package(module) in ("app", "demo", "commands") \
                or module.rsplit(".", 1)[-1] in COMMITTING:
            continue
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit":
                wrong.append(f"{module} commits (line {node.lineno})")
    assert not wrong, "\n".join(wrong)


def test_the_rules_see_the_real_graph():
    """The graph is read right: known arrows are found (else every rule above would pass vacuously)."""
    arrows = {(i.importer, i.imported) for i in INTERNAL}
    assert ("app.portal.views.pay", "app.payments.services") in arrows
    assert ("app.support.views", "app.access.guard") in arrows
    assert ("app", "app.portal.views") in arrows
    on_import = {(i.importer, i.imported) for i in ON_IMPORT}
    assert ("app.debt_collection.views.api", "app.apikit.reading") in on_import
    assert ("app", "app.portal.views") not in on_import  # imported inside create_app
    assert is_view("app.backoffice.views.cases") and is_web("app.support.forms") and is_web("app.billing.cli")
    assert not is_web("app.access.guard") and half("app.access.guard") == ("access", "domain")
    sample = ast.parse("import a\nif TYPE_CHECKING:\n    import b\nelse:\n    import c\n"
                       "def f():\n    import d\ntry:\n    import e\nexcept ImportError:\n    import g\n"
                       "class K:\n    import h\n    def m(self):\n        import i\n")
    assert [alias.name for node in run_on_import(sample) for alias in node.names] == ["a", "c", "e", "g", "h"]
    assert strongly_connected({1: {2}, 2: {3}, 3: {1}, 4: {1}}) and not strongly_connected({1: {2}, 2: {3}})
