"""aop-mcp: an AI orchestration platform built as an MCP server."""
