-- 0002: bearer tokens. Only the hex SHA-256 of a token's secret is stored (`hash`), so a
-- copy of the database does not give access. `role` is an aop_mcp.security.principal.Role.

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created_at   REAL NOT NULL,
    last_used_at REAL,
    revoked_at   REAL
);

CREATE INDEX tokens_by_created ON tokens (created_at, id);
