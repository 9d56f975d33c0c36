"""Apps import only downward: accounts → stories → rooms → integrations, replication,
operations → api. A lower app never imports a higher one, not even inside a function; a higher
app extends a lower one through domain events and by subclassing its admin."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = [
    {"accounts"},
    {"stories"},
    {"rooms"},
    {"integrations", "replication", "operations"},
    {"api"},
]
LEVEL = {app: level for level, apps in enumerate(LAYERS) for app in apps}


def imported_apps(path: Path) -> set[tuple[int, str]]:
    """(line, app) for each import of an app anywhere in the module, nested ones included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update((node.lineno, n.split(".")[0]) for n in names if n.split(".")[0] in LEVEL)
    return found


def modules_of(app: str) -> list[Path]:
    return [
        path
        for path in sorted((ROOT / app).rglob("*.py"))
        if not {"tests", "migrations"} & set(path.relative_to(ROOT).parts)
    ]


@pytest.mark.parametrize("app", sorted(LEVEL))
def test_an_app_imports_no_app_above_it(app):
    upward = [
        f"{path.relative_to(ROOT)}:{line} imports {other}"
        for path in modules_of(app)
        for line, other in sorted(imported_apps(path))
        if LEVEL[other] > LEVEL[app]
    ]
    assert upward == []
