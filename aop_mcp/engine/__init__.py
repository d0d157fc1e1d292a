"""The durable workflow engine: scheduling, retries, leases and recovery."""

from aop_mcp.engine.clock import Clock, ManualClock, SystemClock
from aop_mcp.engine.engine import Engine, EngineLimits

__all__ = ["Clock", "Engine", "EngineLimits", "ManualClock", "SystemClock"]
