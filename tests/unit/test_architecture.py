"""The house rules of docs/architecture.md that a machine can check: they fail the build, not a review."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "callcenter"
SHARED = {"web", "ari", "ami", "asterisk", "db", "sounds"}  # adapters and the shared web layer, not features
LONGEST = 600


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_feature_module_but_its_http_face_and_its_plugin_imports_the_web_layer() -> None:
    offenders = []
    for path in sorted(PACKAGE.glob("*/**/*.py")):
        feature = path.relative_to(PACKAGE).parts[0]
        if feature in SHARED or path.stem.endswith("http") or path.stem == "plugin":
            continue
        if any(m == "callcenter.web" or m.startswith("callcenter.web.") for m in imported_modules(path)):
            offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []


def test_no_file_is_longer_than_600_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > LONGEST}
    assert long == {}
