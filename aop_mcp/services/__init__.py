"""Services: the operations every door (MCP, REST, CLI, dashboard) calls."""
