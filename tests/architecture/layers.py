"""The import contract of the project's layers (docs/architecture.md, "Layers"), read from the
source with :mod:`ast`: no import of the project, so it runs before anything is configured.

A module's layer follows from its name and the app it is in, not from a list of apps, so that a
new app is covered the day it is added:

====  =========  ==============================================================================
rank  layer      modules
====  =========  ==============================================================================
4     edge       any module named or inside ``views*``, ``urls*``, ``admin``, ``forms``, ``tasks``,
                 ``management``, ``templatetags``, ``middleware``, ``context_processors``,
                 ``console``, ``apps`` (the app's wiring); every module of the edge apps (``web``,
                 ``api``, ``console``, ``jobs``) but their services, selectors, models, errors and
                 queries; the project's ``urls``, ``cli``, ``wsgi``, ``settings``
3     service    ``services``, ``selectors`` and every other module of an app (permissions,
                 receipts, outbox, demo data…)
2     model      ``models``, ``errors``, ``queries`` (an app's hand-written SQL), ``access``,
                 ``snapshot(s)`` and ``values`` (typed values that models store)
1     common     ``prorata.common`` (the project's own machinery)
0     core       ``prorata_core`` (pure; its own test checks it imports nothing of Django)
====  =========  ==============================================================================

Rules: a module imports nothing of a higher rank; ``common`` imports no app at all (not even an
app's models); a selector (read) never imports a services module (write). Imports under
``if TYPE_CHECKING:`` are left out: they name a type for the checker and load nothing.
Imports inside functions count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

EDGE, SERVICE, MODEL, COMMON, CORE = 4, 3, 2, 1, 0
LAYER_NAMES = {EDGE: "edge", SERVICE: "service", MODEL: "model", COMMON: "common", CORE: "core"}

EDGE_APPS = frozenset({"web", "api", "console", "jobs"})
EDGE_PARTS = frozenset({"views", "urls", "admin", "forms", "tasks", "management", "templatetags",
                        "middleware", "context_processors", "console", "apps"})
PROJECT_EDGES = frozenset({"urls", "cli", "wsgi", "settings"})
SERVICE_NAMES = frozenset({"services", "selectors"})
MODEL_NAMES = frozenset({"models", "errors", "queries", "access", "snapshot", "snapshots",
                         "values"})


def layer(module: str) -> int:
    """The rank of ``module`` (a dotted name under ``prorata`` or ``prorata_core``)."""
    parts = module.split(".")
    if parts[0] == "prorata_core":
        return CORE
    if len(parts) == 1:
        return EDGE  # the project package itself
    app, inner = parts[1], parts[2:]
    if app in PROJECT_EDGES:
        return EDGE
    if app == "common":
        return COMMON
    if any(part in EDGE_PARTS or part.startswith(("views_", "urls_")) for part in inner):
        return EDGE
    if any(part in MODEL_NAMES for part in inner):
        return MODEL
    if any(part in SERVICE_NAMES for part in inner):
        return SERVICE
    return EDGE if app in EDGE_APPS else SERVICE


def is_selector(module: str) -> bool:
    return "selectors" in module.split(".")[2:]


def is_services(module: str) -> bool:
    return "services" in module.split(".")[2:]


def app_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "prorata" and len(parts) > 1 else None


@dataclass(frozen=True, slots=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (``from a import b`` names ``a.b`` when b is a module)
    line: int


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(child) for statement in node.body for child in ast.walk(statement))
    return inside


def imports_of(root: Path, path: Path, known: set[str]) -> Iterator[Import]:
    """The project imports of the file ``path`` (under ``root``); ``known`` is every module name
    of the tree, to tell ``from package import submodule`` from ``from module import name``."""
    module = module_name(root, path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[:len(package) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield Import(module, candidate if candidate in known else base, node.lineno)


def project_files(root: Path) -> list[Path]:
    return sorted(
        path for package in ("prorata", "prorata_core") for path in (root / package).rglob("*.py")
        if "migrations" not in path.parts
    )


def violations(root: Path) -> list[str]:
    """Every import under ``root`` (a ``src`` folder) that breaks a rule, as readable lines."""
    files = project_files(root)
    known = {module_name(root, path) for path in files}
    found: list[str] = []
    for path in files:
        for item in dict.fromkeys(imports_of(root, path, known)):
            target = item.target
            if not (target == "prorata" or target.startswith(("prorata.", "prorata_core"))):
                continue
            source_rank, target_rank = layer(item.module), layer(target)
            where = f"{item.module}:{item.line} imports {target}"
            if source_rank == COMMON and target_rank != COMMON and target_rank != CORE:
                found.append(f"{where}: common imports no app")
            elif target_rank > source_rank:
                found.append(f"{where}: upward, from the {LAYER_NAMES[source_rank]} layer to "
                             f"the {LAYER_NAMES[target_rank]} layer")
            elif is_selector(item.module) and is_services(target):
                found.append(f"{where}: a selector (read) imports a services module (write)")
    return found
