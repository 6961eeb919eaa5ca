"""The spec format as JSON Schema (draft 2020-12), for editors and other tools."""

from __future__ import annotations

import json
from typing import Any

from archspec.spec import ModelSpec

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    """The schema of a complete spec, built-in and plugin components included."""
    schema = ModelSpec.model_json_schema()
    schema["properties"]["extends"] = {
        "type": "string",
        "description": "a base spec to merge this one onto: a relative .yaml path or a shipped spec name",
    }
    return {"$schema": SCHEMA_URI, "$id": "archspec.schema.json", "title": "archspec model spec", **schema}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"
