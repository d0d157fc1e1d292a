"""Agents: the Agent Manager service (registry, health, selection, breakers) and the adapters.

Import from the modules (`aop_mcp.agents.manager`, `aop_mcp.agents.spec`, ...): this package
imports nothing itself, so loading one adapter never pulls in the others or the engine.
"""
