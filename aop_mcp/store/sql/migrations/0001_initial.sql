-- 0001: the initial schema. Times are seconds since the epoch (REAL); JSON columns hold
-- compact JSON text. Statuses are the enum values of aop_mcp.models.

CREATE TABLE workflows (
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    digest      TEXT    NOT NULL,
    document    TEXT    NOT NULL,
    created_at  REAL    NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE runs (
    id                TEXT    PRIMARY KEY,
    workflow          TEXT    NOT NULL,
    workflow_version  INTEGER NOT NULL,
    status            TEXT    NOT NULL,
    inputs            TEXT    NOT NULL,
    idempotency_key   TEXT    UNIQUE,
    created_at        REAL    NOT NULL,
    started_at        REAL,
    finished_at       REAL,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    error             TEXT
);

CREATE INDEX runs_by_created ON runs (created_at, id);
CREATE INDEX runs_by_workflow ON runs (workflow, created_at, id);
CREATE INDEX runs_by_status ON runs (status, created_at, id);

CREATE TABLE task_runs (
    run_id          TEXT    NOT NULL REFERENCES runs (id),
    task_id         TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    failures        INTEGER NOT NULL DEFAULT 0,
    interruptions   INTEGER NOT NULL DEFAULT 0,
    ready_at        REAL,
    next_attempt_at REAL,
    started_at      REAL,
    finished_at     REAL,
    output          TEXT,
    error           TEXT,
    skip_reason     TEXT,
    recovered_by    TEXT,
    PRIMARY KEY (run_id, task_id)
);

CREATE UNIQUE INDEX task_runs_by_seq ON task_runs (run_id, seq);

CREATE TABLE attempts (
    run_id      TEXT    NOT NULL,
    task_id     TEXT    NOT NULL,
    number      INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    worker      TEXT    NOT NULL,
    started_at  REAL    NOT NULL,
    lease_until REAL,
    finished_at REAL,
    output      TEXT,
    error       TEXT,
    PRIMARY KEY (run_id, task_id, number),
    FOREIGN KEY (run_id, task_id) REFERENCES task_runs (run_id, task_id)
);

CREATE INDEX attempts_running_by_worker ON attempts (worker) WHERE status = 'running';

CREATE TABLE events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  TEXT    NOT NULL REFERENCES runs (id),
    task_id TEXT,
    type    TEXT    NOT NULL,
    at      REAL    NOT NULL,
    data    TEXT    NOT NULL
);

CREATE INDEX events_by_run ON events (run_id, seq);

CREATE TABLE dead_letters (
    id          TEXT    PRIMARY KEY,
    run_id      TEXT    NOT NULL,
    task_id     TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    error       TEXT    NOT NULL,
    created_at  REAL    NOT NULL,
    replayed_at REAL,
    FOREIGN KEY (run_id, task_id) REFERENCES task_runs (run_id, task_id)
);

CREATE INDEX dead_letters_by_created ON dead_letters (created_at, id);
CREATE INDEX dead_letters_by_task ON dead_letters (run_id, task_id);

CREATE TABLE task_cache (
    key        TEXT PRIMARY KEY,
    output     TEXT NOT NULL,
    created_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
);

CREATE TABLE run_leases (
    run_id      TEXT    PRIMARY KEY REFERENCES runs (id),
    owner_id    TEXT    NOT NULL,
    owner_host  TEXT    NOT NULL,
    owner_pid   INTEGER NOT NULL,
    lease_until REAL    NOT NULL
);

CREATE INDEX run_leases_by_owner ON run_leases (owner_id);
