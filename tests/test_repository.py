"""Repository hygiene: notebook pairs in sync, outputs stripped, environment files agree."""

import re
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
IPYNBS = sorted(NOTEBOOKS.glob("*.ipynb"))
PYS = sorted(p for p in NOTEBOOKS.glob("*.py") if "format_name: percent" in p.read_text()[:2000])


def test_there_are_notebooks():
    assert IPYNBS and PYS


def test_every_notebook_has_its_pair():
    assert {p.stem for p in IPYNBS} == {p.stem for p in PYS}


# Slide types, exercise tags and hidden solutions must survive the .py round trip.
CELL_METADATA = ("slideshow", "tags", "jupyter")
CELL_METADATA_FILTER = "slideshow,tags,jupyter,-all"


def _cells(nb):
    return [(c.cell_type, c.source.strip(), {k: c.metadata[k] for k in CELL_METADATA if k in c.metadata})
            for c in nb.cells]


@pytest.mark.parametrize("py", PYS, ids=lambda p: p.name)
def test_pairing_keeps_slide_and_solution_metadata(py):
    header = jupytext.read(py).metadata["jupytext"]
    assert header.get("cell_metadata_filter") == CELL_METADATA_FILTER, py.name
    # and the filter really lets that metadata through a round trip
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "x = 1", metadata={"tags": ["solution"], "jupyter": {"source_hidden": True},
                           "slideshow": {"slide_type": "slide"}, "collapsed": True})])
    nb.metadata["jupytext"] = {"cell_metadata_filter": CELL_METADATA_FILTER}
    back = jupytext.reads(jupytext.writes(nb, fmt="py:percent"), fmt="py:percent")
    assert _cells(back) == _cells(nb) and "collapsed" not in back.cells[0].metadata


@pytest.mark.parametrize("py", PYS, ids=lambda p: p.name)
def test_pair_is_in_sync(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} missing: run jupytext --sync {py}"
    text = jupytext.read(py)
    nb = jupytext.read(ipynb)
    assert _cells(text) == _cells(nb), f"{py.name} and {ipynb.name} differ: run jupytext --sync {py}"


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.name)
def test_committed_notebooks_carry_no_outputs(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{ipynb.name} has outputs"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


def _name(req: str) -> str:
    name = re.split(r"[<>=!~\s\[]", req.strip(), maxsplit=1)[0].lower()
    return {"pytorch": "torch"}.get(name, name)


def _spec(req: str) -> str:
    return re.sub(r"\s", "", req.strip()[len(re.split(r"[<>=!~\s\[]", req.strip(), maxsplit=1)[0]):])


def test_environment_yml_names_the_runtime_dependencies_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str) and _name(d) not in {"python", "pip"}]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {_name(d): _spec(d) for d in conda} == {_name(d): _spec(d) for d in project["dependencies"]}
    assert any(line.startswith("-e .") for line in pip_section), "environment.yml must install the package"


def test_readme_quick_start_and_ci_use_the_same_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/lab.sh" in readme
    assert "bash scripts/test.sh" in ci
    for script in ["setup.sh", "test.sh", "lab.sh"]:
        assert (ROOT / "scripts" / script).exists()
    assert "torch==2.13.0" in (ROOT / "scripts" / "setup.sh").read_text()
    for link in re.findall(r"\]\(((?:notebooks|docs)/[^)]+)\)", readme):
        assert (ROOT / link).exists(), f"README links to missing {link}"
