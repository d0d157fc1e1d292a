"""`python -m aop_mcp`: the `aop` command."""

from aop_mcp.cli import main

raise SystemExit(main())
