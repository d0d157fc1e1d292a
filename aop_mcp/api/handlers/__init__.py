"""The REST handlers, one module per resource; `aop_mcp.api.routes` lists them all."""
