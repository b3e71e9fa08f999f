"""The suite's ``pytest11`` entry point.

pytest loads entry points in every session on a machine where the suite is installed, so this
module does nothing unless the session runs the conformance checks: a path inside
``conformance/checks`` (``pytest /path/to/conformance/checks``, what ``conformance run``
passes), or ``--pyargs conformance.checks...``. Then it loads :mod:`conformance.plugin` under
that module's name before pytest parses the command line, so the suite's options exist; the
checks' ``conftest.py`` then finds the plugin loaded and does not register it a second time.
Unrelated pytest projects on the same machine get no option, fixture or hook of the suite.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

PLUGIN_MODULE = "conformance.plugin"
CHECKS_PACKAGE = "conformance.checks"
CHECKS_DIR = Path(__file__).resolve().parent / "checks"


def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    if runs_the_checks(early_config):
        early_config.pluginmanager.import_plugin(PLUGIN_MODULE)


def runs_the_checks(early_config: pytest.Config) -> bool:
    """Whether what this session collects includes the conformance checks."""
    namespace = early_config.known_args_namespace
    pyargs = bool(getattr(namespace, "pyargs", False))
    return any(_within_checks(where) for where in _collected_paths(early_config, pyargs))


def _collected_paths(early_config: pytest.Config, pyargs: bool) -> Iterable[Path]:
    invocation_dir = early_config.invocation_params.dir
    for arg in _arguments(early_config):
        name = str(arg).split("::", 1)[0]
        if pyargs and _names_checks_module(name):
            module = _module_path(name)
            if module is not None:
                yield module
        yield invocation_dir / name


def _arguments(early_config: pytest.Config) -> Sequence[str]:
    """The positional arguments, or what pytest collects without any: ``testpaths`` when run
    from the root folder, else the folder it runs in."""
    given = list(getattr(early_config.known_args_namespace, "file_or_dir", None) or [])
    if given:
        return given
    invocation_dir = early_config.invocation_params.dir
    if invocation_dir == early_config.rootpath:
        testpaths = [str(early_config.rootpath / path) for path in early_config.getini("testpaths")]
        if testpaths:
            return testpaths
    return [str(invocation_dir)]


def _names_checks_module(name: str) -> bool:
    return name == CHECKS_PACKAGE or name.startswith(CHECKS_PACKAGE + ".")


def _module_path(name: str) -> Path | None:
    """Where the module ``name`` lives, without importing more than its parent packages."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin)


def _within_checks(path: Path) -> bool:
    try:
        resolved = path.resolve()
    except OSError:
        return False
    return resolved == CHECKS_DIR or CHECKS_DIR in resolved.parents
