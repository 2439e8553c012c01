"""What the package imports is declared: every third-party import in scoretutor/ names a distribution of
pyproject's dependencies or optional extras, and the conda environment installs every extra."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# import name -> distribution name, where they differ
DISTRIBUTION = {"PIL": "pillow", "yaml": "pyyaml", "jupyter_core": "jupyter-core", "IPython": "ipython"}
# imported by the notebooks' own machinery: ipython comes with ipykernel (dev and lecture extras)
PROVIDED_BY = {"ipython": "ipykernel"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> dict[str, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"dependencies": project["dependencies"], **project["optional-dependencies"]}
    return {group: {_normal(re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0]) for spec in specs}
            for group, specs in groups.items()}


def _imports() -> dict[str, set[str]]:
    """Top-level module names imported anywhere in scoretutor/ -> the files importing them."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "scoretutor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared():
    declared = set().union(*_declared().values())
    missing = {}
    for module, files in _imports().items():
        if module in sys.stdlib_module_names or module in ("scoretutor", "__future__"):
            continue
        dist = _normal(DISTRIBUTION.get(module, module))
        if dist not in declared and PROVIDED_BY.get(dist) not in declared:
            missing[module] = sorted(files)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_the_lecture_tools_declare_what_they_import():
    lecture = _declared()["lecture"]
    for module in ("nbformat", "nbclient", "nbconvert", "jinja2", "jupyter_core"):
        assert module in _imports(), f"{module} is no longer imported: update the lecture extra"
        assert _normal(DISTRIBUTION.get(module, module)) in lecture
    assert "ipykernel" in lecture  # export starts a python3 kernel


def test_the_conda_environment_installs_every_extra_the_tests_need():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    (line,) = [p for p in pip if p.startswith("-e .")]
    extras = set(re.search(r"\[(.*)\]", line).group(1).split(","))
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    default = set(re.search(r"EXTRAS=\$\{EXTRAS:-([\w,]+)\}", setup).group(1).split(","))
    assert extras == default == {"dev", "browser", "explore", "lecture"}
