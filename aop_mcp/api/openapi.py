"""The OpenAPI 3.1 document, built from the route table so it cannot drift from the routes.

Component schemas are generated from the pydantic request and response models; every error
response is the problem+json schema; every route but this document's needs a bearer token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from pydantic import BaseModel

from aop_mcp.api.operations import Body, Operation, Reply
from aop_mcp.api.problems import PROBLEM_JSON
from aop_mcp.api.requests import TEXT_TYPES
from aop_mcp.api.schemas import ProblemView

PREFIX = "/api/v1"
REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{(\w+)}")

Mode = Literal["validation", "serialization"]


class _Schemas:
    """The component schemas, collected as operations refer to models."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: Mode) -> dict[str, str]:
        """A `$ref` to the model's schema, added to the components with its nested models."""
        name = model.__name__
        if name not in self.schemas:
            self.schemas[name] = self._hoist(model.model_json_schema(ref_template=REF, mode=mode))
        return {"$ref": REF.format(model=name)}

    def properties(self, model: type[BaseModel]) -> tuple[dict[str, Any], set[str]]:
        """The property schemas of a (query) model, and which are required."""
        schema = self._hoist(model.model_json_schema(ref_template=REF, mode="validation"))
        return schema.get("properties", {}), set(schema.get("required", []))

    def _hoist(self, schema: dict[str, Any]) -> dict[str, Any]:
        for name, nested in schema.pop("$defs", {}).items():
            self.schemas.setdefault(name, nested)
        return schema


def _package_version() -> str:
    try:
        return version("aop-mcp")
    except PackageNotFoundError:
        return "0.0.0"


def build_document(operations: Iterable[Operation]) -> dict[str, Any]:
    """The OpenAPI document of `operations`, served under PREFIX."""
    schemas = _Schemas()
    problem = schemas.ref(ProblemView, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schemas, problem)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "aop-mcp REST API",
            "version": _package_version(),
            "description": "Define and run workflows, watch runs and their events, retry "
            "and replay failed tasks. Errors are RFC 9457 problem+json.",
        },
        "servers": [{"url": PREFIX}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas.schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an aop token"}
            },
        },
    }


def _operation(op: Operation, schemas: _Schemas, problem: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": _parameters(op, schemas),
        "responses": _responses(op, schemas, problem),
    }
    if op.handler.__doc__:
        doc["description"] = op.handler.__doc__.strip()
    if op.body is not None:
        doc["requestBody"] = _request_body(op.body, schemas)
    if op.public:
        doc["security"] = []
    return doc


def _parameters(op: Operation, schemas: _Schemas) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(op.path)
    ]
    if op.query is not None:
        properties, required = schemas.properties(op.query)
        for name, schema in properties.items():
            param = {"name": name, "in": "query", "required": name in required, "schema": schema}
            if "description" in schema:
                param["description"] = schema["description"]
            params.append(param)
    for name, description in op.headers.items():
        params.append(
            {"name": name, "in": "header", "description": description, "schema": {"type": "string"}}
        )
    return params


def _request_body(body: Body, schemas: _Schemas) -> dict[str, Any]:
    content: dict[str, Any] = {
        "application/json": {"schema": schemas.ref(body.model, "validation")}
    }
    if body.kind == "document":
        text = {"schema": {"type": "string", "description": "the document as YAML or JSON"}}
        content |= {kind: text for kind in sorted(TEXT_TYPES)}
    return {"required": body.required, "content": content}


def _responses(op: Operation, schemas: _Schemas, problem: dict[str, str]) -> dict[str, Any]:
    responses = {str(r.status): _reply(r, schemas) for r in op.replies}
    for status in _error_statuses(op):
        responses[str(status)] = _problem(status, problem)
    responses["default"] = _problem(500, problem) | {"description": "an unexpected error"}
    return responses


def _reply(reply: Reply, schemas: _Schemas) -> dict[str, Any]:
    doc: dict[str, Any] = {"description": reply.description}
    if reply.model is None:
        doc["content"] = {reply.media_type: {"schema": {"type": "object"}}}
    elif reply.media_type == "application/json":
        doc["content"] = {reply.media_type: {"schema": schemas.ref(reply.model, "serialization")}}
    else:
        # A stream is text; `x-message-data` names the schema of each message's data.
        data = schemas.ref(reply.model, "serialization")
        doc["content"] = {reply.media_type: {"schema": {"type": "string"}, "x-message-data": data}}
    return doc


def _error_statuses(op: Operation) -> list[int]:
    statuses = {*op.errors, 400}  # 400: an unknown or malformed query parameter
    if not op.public:
        statuses |= {401, 503}
        if op.writes:
            statuses.add(403)
    return sorted(statuses)


def _problem(status: int, problem: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "description": HTTPStatus(status).phrase,
        "content": {PROBLEM_JSON: {"schema": problem}},
    }
    if status == 401:
        doc["headers"] = {
            "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}
        }
    return doc
