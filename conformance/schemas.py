"""The JSON Schemas in ``schemas/``: the one source of truth for body shapes and statuses.

In a checkout they are the top-level ``schemas/`` folder; the build maps that folder onto
``conformance/_schemas`` in the wheel.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMA_FILES = ("job.schema.json", "page.schema.json", "error.schema.json", "results.schema.json")
_CHECKOUT_DIR = Path(__file__).resolve().parent.parent / "schemas"


def schema_dir() -> Path:
    """Folder holding the schema documents (checkout first, then the installed package)."""
    if (_CHECKOUT_DIR / "job.schema.json").is_file():
        return _CHECKOUT_DIR
    return Path(str(resources.files("conformance") / "_schemas"))


@cache
def load(name: str) -> dict[str, Any]:
    """One schema document by file name, e.g. ``"job.schema.json"``."""
    return json.loads((schema_dir() / name).read_text(encoding="utf-8"))


@cache
def _registry() -> Registry:
    resources_by_uri = []
    for name in SCHEMA_FILES:
        document = load(name)
        resource = Resource.from_contents(document)
        resources_by_uri += [(document["$id"], resource), (name, resource)]
    return Registry().with_resources(resources_by_uri)


@cache
def validator(name: str) -> Draft202012Validator:
    """A validator for one document, resolving ``$ref`` between the documents."""
    return Draft202012Validator(load(name), registry=_registry())


def statuses() -> tuple[str, ...]:
    """The six job statuses, as the job schema enumerates them."""
    return tuple(load("job.schema.json")["properties"]["status"]["enum"])


def modes() -> tuple[str, ...]:
    return tuple(load("job.schema.json")["properties"]["mode"]["enum"])
