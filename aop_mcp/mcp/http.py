"""Settings of the MCP endpoint over HTTP that depend on where the server listens."""

from __future__ import annotations

from mcp.server.transport_security import TransportSecuritySettings

#: Hosts for which the SDK turns DNS-rebinding protection on by default; so do we.
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def transport_security(host: str, port: int) -> TransportSecuritySettings | None:
    """Host/Origin checks for a loopback server, for its real port (any port when 0).

    A page on another site that rebinds its name to 127.0.0.1 sends its own Host header,
    which is refused. On other interfaces (0.0.0.0, a LAN address) the names a client may
    use are not known here; bearer tokens protect those (None: the SDK checks nothing).
    """
    if host not in LOOPBACK:
        return None
    port_text = str(port) if port else "*"
    hosts = [f"127.0.0.1:{port_text}", f"localhost:{port_text}", f"[::1]:{port_text}"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{h}" for h in hosts],
    )
