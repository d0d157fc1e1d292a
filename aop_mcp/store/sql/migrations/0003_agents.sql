-- 0003: the Agent Manager's registry. `agents` holds each agent's current record (one row
-- per name, deregistered ones kept); `agent_versions` keeps every configuration it had.
-- capabilities and config are compact JSON; kind and health are aop_mcp.models enum values.

CREATE TABLE agents (
    name               TEXT    PRIMARY KEY,
    kind               TEXT    NOT NULL,
    capabilities       TEXT    NOT NULL,
    max_concurrency    INTEGER NOT NULL,
    weight             INTEGER NOT NULL,
    config             TEXT    NOT NULL,
    version            INTEGER NOT NULL,
    created_at         REAL    NOT NULL,
    updated_at         REAL    NOT NULL,
    health             TEXT    NOT NULL,
    health_reason      TEXT    NOT NULL,
    health_changed_at  REAL    NOT NULL,
    last_heartbeat_at  REAL,
    deregistered_at    REAL
);

CREATE TABLE agent_versions (
    name             TEXT    NOT NULL REFERENCES agents (name),
    version          INTEGER NOT NULL,
    kind             TEXT    NOT NULL,
    capabilities     TEXT    NOT NULL,
    max_concurrency  INTEGER NOT NULL,
    weight           INTEGER NOT NULL,
    config           TEXT    NOT NULL,
    created_at       REAL    NOT NULL,
    PRIMARY KEY (name, version)
);
