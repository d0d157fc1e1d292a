"""Ports: the small Protocols every adapter implements."""
