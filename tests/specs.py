"""Validate JSON bodies against the vendors' own API specs (../shared/specs).

Supports OpenAPI 3.0 (Marquez), OpenAPI 3.1 (Cognite) and Swagger 2.0 (Code Stream).
Tests that use this take the ``specs_dir`` fixture, which skips with a reason when
the specs are not beside the repository.

    spec = load_spec(specs_dir / "marquez" / "openapi.yml")
    spec.validate_response("GET", "/jobs/runs/{id}", 200, body)
    spec.validate_request("POST", "/namespaces/{namespace}/jobs/{job}/runs", body)
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator, OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012


class Spec:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.swagger2 = str(document.get("swagger", "")).startswith("2")
        self.oas31 = str(document.get("openapi", "")).startswith("3.1")
        specification = DRAFT202012 if self.oas31 else DRAFT4
        self.uri = "urn:spec"
        resource = Resource.from_contents(document, default_specification=specification)
        self.registry: Registry = Registry().with_resource(self.uri, resource)
        self.validator_cls = OAS31Validator if self.oas31 else OAS30Validator

    def operation(self, method: str, path: str) -> dict[str, Any]:
        paths = self.document["paths"]
        if path not in paths:
            raise KeyError(f"spec has no path {path!r}")
        item = paths[path]
        op = item.get(method.lower())
        if op is None:
            raise KeyError(f"spec has no {method} {path}")
        return dict(op)

    def _schema_of(self, holder: dict[str, Any]) -> dict[str, Any] | None:
        if self.swagger2:
            return holder.get("schema")
        content = holder.get("content") or {}
        for media in ("application/json", "*/*"):
            if media in content:
                schema = content[media].get("schema")
                return dict(schema) if schema is not None else None
        if content:
            schema = next(iter(content.values())).get("schema")
            return dict(schema) if schema is not None else None
        return None

    def response_schema(self, method: str, path: str, status: int) -> dict[str, Any] | None:
        responses = self.operation(method, path)["responses"]
        response = responses.get(str(status)) or responses.get(status) or responses.get("default")
        if response is None:
            raise KeyError(
                f"spec documents no {status} for {method} {path}; it has {sorted(map(str, responses))}"
            )
        if "$ref" in response:
            response = self._resolve(response["$ref"])
        return self._schema_of(response)

    def request_schema(self, method: str, path: str) -> dict[str, Any] | None:
        op = self.operation(method, path)
        if self.swagger2:
            for param in op.get("parameters", []):
                if param.get("in") == "body":
                    return dict(param["schema"])
            return None
        body = op.get("requestBody")
        if body is None:
            return None
        if "$ref" in body:
            body = self._resolve(body["$ref"])
        return self._schema_of(body)

    def _resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.document
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        return dict(node)

    def validate(self, instance: Any, schema: dict[str, Any]) -> None:
        validator = self.validator_cls(self._rooted(schema), registry=self.registry)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            location = "/".join(str(p) for p in first.absolute_path) or "(root)"
            raise ValidationError(f"{location}: {first.message}")

    def _rooted(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The schema with local refs rewritten to point into the registered spec document."""

        def rewrite(node: Any) -> Any:
            if isinstance(node, dict):
                out = {}
                for k, v in node.items():
                    if k == "$ref" and isinstance(v, str) and v.startswith("#"):
                        out[k] = self.uri + v
                    else:
                        out[k] = rewrite(v)
                return out
            if isinstance(node, list):
                return [rewrite(v) for v in node]
            return node

        return rewrite(schema)  # type: ignore[no-any-return]

    def validate_response(self, method: str, path: str, status: int, body: Any) -> None:
        schema = self.response_schema(method, path, status)
        if schema is None:
            raise KeyError(f"spec has no body schema for {status} of {method} {path}")
        self.validate(body, schema)

    def validate_request(self, method: str, path: str, body: Any) -> None:
        schema = self.request_schema(method, path)
        if schema is None:
            raise KeyError(f"spec has no request body schema for {method} {path}")
        self.validate(body, schema)


@cache
def load_spec(path: Path) -> Spec:
    text = path.read_text(encoding="utf-8")
    document = yaml.safe_load(text) if path.suffix in (".yml", ".yaml") else json.loads(text)
    return Spec(document)
