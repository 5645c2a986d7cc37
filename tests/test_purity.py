"""The pure core imports only the standard library, Babel (money only) and other pure modules."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PURE = {
    "milepost.money",
    "milepost.clock",
    "milepost.errors",
    "milepost.orders.states",
    "milepost.orders.terms",
    "milepost.orders.plan",
    "milepost.orders.lifecycle",
    "milepost.disputes.states",
    "milepost.ledger.postings",
    "milepost.cashflow.projection",
}
EXTRA_ALLOWED = {"milepost.money": {"babel"}}


def _imports(module: str) -> set[str]:
    path = SRC / (module.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: use absolute imports"
            assert node.module is not None
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", sorted(PURE))
def test_pure_module_imports_only_stdlib_and_pure_modules(module):
    allowed_third_party = EXTRA_ALLOWED.get(module, set())
    bad = []
    for name in _imports(module):
        top = name.split(".")[0]
        if name == "__future__" or top in sys.stdlib_module_names:
            continue
        if top in allowed_third_party:
            continue
        if name in PURE:
            continue
        bad.append(name)
    assert not bad, f"{module} imports {bad}: the pure core must not depend on them"


def test_the_purity_check_notices_an_impure_import():
    assert "sqlalchemy" not in sys.stdlib_module_names
    assert "milepost.db" not in PURE
