"""Import arrows point one way: a module that another builds on never imports it back,
not even inside a function (a hidden circle is still a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# (lower, upper): `upper` builds on `lower`, so `lower` must not import `upper`.
LAYERS = [("bot/services/groups.py", "bot.services.memberships")]


def imported_modules(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def test_lower_layers_do_not_import_upper_ones() -> None:
    for lower, upper in LAYERS:
        assert upper not in imported_modules(ROOT / lower), f"{lower} imports {upper}"
