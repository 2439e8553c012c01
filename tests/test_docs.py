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
    readme = (ROOT / "README.md").read_text()
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `scoretutor"))
    for path in sorted((ROOT / "scoretutor").rglob("*.py")):
        parts = path.relative_to(ROOT / "scoretutor").with_suffix("").parts
        if parts[-1] in ("__init__", "__main__") or parts[0] == "cli":
            continue
        if len(parts) == 1:
            assert f"`scoretutor.{parts[0]}`" in table, f"README's package table misses scoretutor.{parts[0]}"
        else:  # a module in a subpackage: named in its folder's row
            row = next((line for line in table.splitlines() if f"`scoretutor.{parts[0]}`" in line), "")
            name = "scoretutor." + ".".join(parts)
            assert f"`{parts[1]}`" in row or f"`{parts[1]}/`" in row, f"README's package table misses {name}"
