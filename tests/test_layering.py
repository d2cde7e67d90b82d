"""Data flows one way (shared/STYLE.md): each heavy dependency is imported only where it belongs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("core", "agent", "portals", "store", "api")
RULES = {  # module -> where it may be imported (path prefixes)
    "fixtures": (),
    "playwright": ("portals/", "agent/browser.py"),
    "sqlalchemy": ("store/",),
    "alembic": ("store/",),
    "fastapi": ("api/",),
}
# product code may load the sandbox on demand only in these CLI/demo glue spots
EXCEPTIONS = {("core/cli.py", "fixtures")}


def imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("package", PRODUCT)
def test_imports_respect_the_layers(package):
    bad = []
    for path in (REPO / package).rglob("*.py"):
        rel = path.relative_to(REPO).as_posix()
        for mod in set(imports(path)):
            allowed = RULES.get(mod)
            if allowed is None or (rel, mod) in EXCEPTIONS:
                continue
            if not any(rel.startswith(p) for p in allowed):
                bad.append(f"{rel} imports {mod}")
    assert bad == []


def test_the_sandbox_imports_no_product_code():
    """fixtures/ is the world we test in: it reads shared/data itself and imports none of our packages, so
    nothing the product believes can leak into what the portals show."""
    bad = [f"{path.relative_to(REPO).as_posix()} imports {mod}"
           for path in (REPO / "fixtures").rglob("*.py") for mod in set(imports(path)) if mod in PRODUCT]
    assert bad == []
