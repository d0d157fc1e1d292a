"""The REST door: `/api/v1`, JSON in and out, problem+json errors, an OpenAPI document."""

from aop_mcp.api.app import close_event_streams, create_api

__all__ = ["close_event_streams", "create_api"]
