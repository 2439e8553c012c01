"""The README a newcomer reads: short, current, and every relative link in it and in docs/ resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_relative_link_resolves(doc):
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)  # code blocks hold commands, not links
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links or doc.name != "README.md"
    for link in links:
        if re.match(r"[a-z]+:", link) or link.startswith("#"):
            continue
        target = (doc.parent / link.split("#")[0]).resolve()
        assert target.exists(), f"{doc.name} links to {link}, which does not exist"


def test_the_readme_is_short_and_points_into_docs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "docs/mnist-model.md" in readme and "docs/lecture.md" in readme
    assert "bash scripts/lab.sh" in readme and "bash scripts/test.sh" in readme


def test_the_package_table_names_every_module():
    """Each top-level module has its own `scoretutor.X` cell; each module or data folder of a subpackage is
    named (`name` or `name/`) in its subpackage's row. A new module without a README entry fails here."""
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `scoretutor")]
    package = ROOT / "scoretutor"
    entries = [p for p in package.rglob("*.py") if p.stem not in ("__init__", "__main__")]
    entries += [d for d in package.glob("*/*") if d.is_dir() and d.name != "__pycache__"]
    assert len(entries) > 20
    for path in sorted(entries):
        parts = path.relative_to(package).with_suffix("").parts
        if len(parts) == 1:
            assert any(f"`scoretutor.{parts[0]}`" in row for row in rows), \
                f"README's package table misses scoretutor.{parts[0]}"
            continue
        row = next((row for row in rows if row.startswith(f"| `scoretutor.{parts[0]}`")), "")
        assert row, f"README's package table has no row for scoretutor.{parts[0]}"
        name = "scoretutor." + ".".join(parts)
        assert f"`{parts[1]}`" in row or f"`{parts[1]}/`" in row, f"README's package table misses {name}"
