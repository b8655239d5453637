"""environment.yml (conda) and pyproject.toml (pip) must list the same dependencies."""

from __future__ import annotations

import re
import tomllib

import yaml
from packaging.requirements import Requirement

from esrgan_lab.settings import REPO_ROOT

# conda-forge names that differ from PyPI names
CONDA_TO_PYPI = {"pytorch": "torch"}
NOT_DEPENDENCIES = {"python", "pip"}


def _pyproject() -> dict[str, str]:
    with open(REPO_ROOT / "pyproject.toml", "rb") as fh:
        project = tomllib.load(fh)["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    out = {}
    for line in reqs:
        req = Requirement(line)
        out[req.name.lower()] = str(req.specifier)
    return out


def _environment() -> dict[str, str]:
    with open(REPO_ROOT / "environment.yml") as fh:
        env = yaml.safe_load(fh)
    out: dict[str, str] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                if line.startswith("-e"):
                    continue
                req = Requirement(line)
                out[req.name.lower()] = str(req.specifier)
            continue
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", dep)
        assert m, f"unparseable conda dependency {dep!r}"
        name, spec = m.group(1).lower(), m.group(2).replace(" ", "")
        if name in NOT_DEPENDENCIES:
            continue
        out[CONDA_TO_PYPI.get(name, name)] = spec
    return out


def test_same_packages_and_versions() -> None:
    pip, conda = _pyproject(), _environment()
    assert sorted(set(pip) - set(conda)) == [], "in pyproject.toml but not environment.yml"
    assert sorted(set(conda) - set(pip)) == [], "in environment.yml but not pyproject.toml"
    differ = {n: (pip[n], conda[n]) for n in pip if pip[n] != conda[n]}
    assert differ == {}, f"version specifiers differ (pyproject, environment): {differ}"


def test_environment_installs_the_project_itself() -> None:
    text = (REPO_ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*-\s*-e\s+\.\s*$", text, re.M)


def test_torch_is_loose_in_pyproject_and_pinned_only_in_constraints() -> None:
    assert _pyproject()["torch"] == ">=2.2"
    pins = (REPO_ROOT / "constraints.txt").read_text()
    assert re.search(r"^torch==\d", pins, re.M)
