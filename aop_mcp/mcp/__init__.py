"""The MCP door: tools, resources and a prompt over the hub's services.

Kept free of imports on purpose: `aop stdio` imports only what it serves, and the SDK
(`mcp`) is imported by the modules that need it, never by this package's `__init__`.
"""
