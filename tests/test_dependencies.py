"""What the package imports is declared: every third-party import in scoretutor/ names a distribution of
pyproject's dependencies or optional extras (an extra's only inside the function that needs it, so that
every module imports on the base dependencies), and the conda environment installs every extra."""

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
# distributions that come with a declared one rather than being declared themselves
PROVIDED_BY = {"ipython": "ipywidgets"}  # ipywidgets requires ipython (IPython.display in the notebooks)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> dict[str, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"dependencies": project["dependencies"], **project["optional-dependencies"]}
    return {group: {_normal(re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0]) for spec in specs}
            for group, specs in groups.items()}


def _import_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name.split(".")[0] for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module.split(".")[0]]
    return []


def _module_level(tree: ast.Module) -> list[ast.AST]:
    """The statements run on import: the module body and the if/try/with/class blocks in it, not functions."""
    found, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        found.append(node)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            todo.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))
    return found


def _imports(module_level_only: bool = False) -> dict[str, set[str]]:
    """Top-level module names imported in scoretutor/ -> the files importing them (everywhere, or only the
    imports that run when the module is imported)."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "scoretutor").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in _module_level(tree) if module_level_only else ast.walk(tree):
            for name in _import_names(node):
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def _satisfied(module: str, declared: set[str]) -> bool:
    dist = _normal(DISTRIBUTION.get(module, module))
    return dist in declared or PROVIDED_BY.get(dist) in declared


def _third_party(imports: dict[str, set[str]]) -> dict[str, set[str]]:
    return {m: f for m, f in imports.items()
            if m not in sys.stdlib_module_names and m not in ("scoretutor", "__future__")}


def test_every_third_party_import_is_declared():
    declared = set().union(*_declared().values())
    missing = {}
    for module, files in _third_party(_imports()).items():
        if not _satisfied(module, declared):
            missing[module] = sorted(files)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_importing_any_module_needs_only_the_base_dependencies():
    """An extra's package (nbclient, voila, ...) is imported inside the function that needs it, so that
    `import scoretutor.X` works on a plain `pip install scoretutor` (the notebooks need nothing more)."""
    base = _declared()["dependencies"]
    eager = {m: sorted(f) for m, f in _third_party(_imports(module_level_only=True)).items()
             if not _satisfied(m, base)}
    assert not eager, f"imported at module level but only in an extra (import it in the function): {eager}"


def test_the_checks_see_imports_inside_functions():
    lazy = _third_party(_imports())
    assert "nbclient" in lazy and "voila" in lazy  # imported in functions of the lecture tools
    assert "nbclient" not in _imports(module_level_only=True)
    assert "torch" in _imports(module_level_only=True)


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
