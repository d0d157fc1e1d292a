"""Handler of `GET /openapi.json`: the document built once from the route table."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from aop_mcp.api.operations import Call


async def openapi_document(call: Call) -> Response:
    """`GET /openapi.json`: the OpenAPI 3.1 document of this API (no token needed)."""
    return JSONResponse(call.request.app.state.openapi)
