-- Named queries of the SQLite store. Each starts at a `-- name: <name>` line and holds
-- exactly one statement; parameters are always bound (`:name`), never formatted in.

-- name: configure
-- A script (run with executescript): the connection settings, before anything else.
PRAGMA journal_mode = WAL;
PRAGMA busy_timeout = 5000;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = ON;

-- name: begin_write
BEGIN IMMEDIATE

-- name: commit
COMMIT

-- name: rollback
ROLLBACK

-- name: savepoint
SAVEPOINT unit

-- name: rollback_to_savepoint
ROLLBACK TO unit

-- name: release_savepoint
RELEASE unit

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at REAL NOT NULL
)

-- name: applied_migrations
SELECT version FROM schema_migrations ORDER BY version

-- name: record_migration
INSERT INTO schema_migrations (version, name, applied_at) VALUES (:version, :name, :applied_at)

-- name: latest_workflow
SELECT * FROM workflows WHERE name = :name ORDER BY version DESC LIMIT 1

-- name: get_workflow_version
SELECT * FROM workflows WHERE name = :name AND version = :version

-- name: insert_workflow
INSERT INTO workflows (name, version, digest, document, created_at)
VALUES (:name, :version, :digest, :document, :created_at)

-- name: list_workflows
SELECT w.* FROM workflows AS w
JOIN (SELECT name, max(version) AS version FROM workflows GROUP BY name) AS latest
  ON latest.name = w.name AND latest.version = w.version
ORDER BY w.name

-- name: get_run
SELECT * FROM runs WHERE id = :id

-- name: get_run_by_idempotency_key
SELECT * FROM runs WHERE idempotency_key = :idempotency_key

-- name: insert_run
INSERT INTO runs (
    id, workflow, workflow_version, status, inputs, idempotency_key,
    created_at, started_at, finished_at, cancel_requested, error
) VALUES (
    :id, :workflow, :workflow_version, :status, :inputs, :idempotency_key,
    :created_at, :started_at, :finished_at, :cancel_requested, :error
)

-- name: upsert_run
INSERT INTO runs (
    id, workflow, workflow_version, status, inputs, idempotency_key,
    created_at, started_at, finished_at, cancel_requested, error
) VALUES (
    :id, :workflow, :workflow_version, :status, :inputs, :idempotency_key,
    :created_at, :started_at, :finished_at, :cancel_requested, :error
)
ON CONFLICT (id) DO UPDATE SET
    workflow = excluded.workflow,
    workflow_version = excluded.workflow_version,
    status = excluded.status,
    inputs = excluded.inputs,
    idempotency_key = excluded.idempotency_key,
    created_at = excluded.created_at,
    started_at = excluded.started_at,
    finished_at = excluded.finished_at,
    cancel_requested = excluded.cancel_requested,
    error = excluded.error

-- name: request_cancel
UPDATE runs SET cancel_requested = 1
WHERE id = :id AND status IN ('pending', 'running')

-- name: list_runs
-- The list_runs queries page newest first from a cursor that is always bound (+infinity for
-- the first page), so that it is an index range: `:before_at IS NULL OR ...` would scan from
-- the newest run down to the page. A list of statuses is one query per status, each reading
-- at most a page off its index, merged by the caller: filtering the newest-first scan by
-- status would read every run when few have the status (the active ones, typically).
SELECT * FROM runs
WHERE (created_at, id) < (:before_at, :before_id)
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- name: list_runs_in_status
SELECT * FROM runs
WHERE status = :status AND (created_at, id) < (:before_at, :before_id)
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- name: list_runs_of_workflow
SELECT * FROM runs
WHERE workflow = :workflow AND (created_at, id) < (:before_at, :before_id)
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- name: list_runs_of_workflow_in_status
SELECT * FROM runs
WHERE workflow = :workflow AND status = :status AND (created_at, id) < (:before_at, :before_id)
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- name: count_runs
SELECT status, count(*) AS runs FROM runs GROUP BY status

-- name: count_runs_of_workflow
SELECT status, count(*) AS runs FROM runs WHERE workflow = :workflow GROUP BY status

-- name: task_throughput
-- Finished task runs in [since, until), counted per bucket of `bucket_seconds` from `since`.
-- CAST truncates like Python's int(): both stores put a time in the same bucket.
SELECT CAST((finished_at - :since) / :bucket_seconds AS INTEGER) AS bucket, count(*) AS tasks
FROM task_runs
WHERE finished_at >= :since AND finished_at < :until
GROUP BY bucket

-- name: active_runs
SELECT runs.*,
       run_leases.owner_id AS lease_owner_id,
       run_leases.owner_host AS lease_owner_host,
       run_leases.owner_pid AS lease_owner_pid,
       run_leases.lease_until AS lease_until
FROM runs LEFT JOIN run_leases ON run_leases.run_id = runs.id
WHERE runs.status IN ('pending', 'running')
ORDER BY runs.created_at, runs.id

-- name: get_task_runs
SELECT * FROM task_runs WHERE run_id = :run_id ORDER BY seq

-- name: get_task_run
SELECT * FROM task_runs WHERE run_id = :run_id AND task_id = :task_id

-- name: upsert_task_run
INSERT INTO task_runs (
    run_id, task_id, seq, status, priority, attempts, failures, interruptions, ready_at,
    next_attempt_at, started_at, finished_at, output, error, skip_reason, recovered_by, cached
) VALUES (
    :run_id, :task_id,
    -- max() must stand alone for SQLite to read it off the index end (O(log n)).
    coalesce((SELECT max(seq) FROM task_runs WHERE run_id = :run_id), 0) + 1,
    :status, :priority, :attempts, :failures, :interruptions, :ready_at,
    :next_attempt_at, :started_at, :finished_at, :output, :error, :skip_reason, :recovered_by,
    :cached
)
ON CONFLICT (run_id, task_id) DO UPDATE SET
    status = excluded.status,
    priority = excluded.priority,
    attempts = excluded.attempts,
    failures = excluded.failures,
    interruptions = excluded.interruptions,
    ready_at = excluded.ready_at,
    next_attempt_at = excluded.next_attempt_at,
    started_at = excluded.started_at,
    finished_at = excluded.finished_at,
    output = excluded.output,
    error = excluded.error,
    skip_reason = excluded.skip_reason,
    recovered_by = excluded.recovered_by,
    cached = excluded.cached

-- name: get_attempts
SELECT * FROM attempts WHERE run_id = :run_id AND task_id = :task_id ORDER BY number

-- name: upsert_attempt
INSERT INTO attempts (
    run_id, task_id, number, status, worker, started_at, lease_until, finished_at, output, error,
    agent
) VALUES (
    :run_id, :task_id, :number, :status, :worker, :started_at, :lease_until, :finished_at,
    :output, :error, :agent
)
ON CONFLICT (run_id, task_id, number) DO UPDATE SET
    status = excluded.status,
    worker = excluded.worker,
    started_at = excluded.started_at,
    lease_until = excluded.lease_until,
    finished_at = excluded.finished_at,
    output = excluded.output,
    error = excluded.error,
    agent = excluded.agent

-- name: get_run_attempts
SELECT attempts.* FROM attempts
JOIN task_runs USING (run_id, task_id)
WHERE attempts.run_id = :run_id
ORDER BY attempts.started_at, task_runs.seq, attempts.number

-- name: list_agent_attempts
SELECT * FROM attempts
WHERE agent = :agent
ORDER BY started_at DESC, run_id DESC, task_id DESC, number DESC
LIMIT :limit

-- name: insert_event
INSERT INTO events (run_id, task_id, type, at, data) VALUES (:run_id, :task_id, :type, :at, :data)

-- name: last_insert_seq
SELECT last_insert_rowid()

-- name: list_events
SELECT * FROM events WHERE seq > :after ORDER BY seq LIMIT :limit

-- name: list_events_of_run
SELECT * FROM events WHERE run_id = :run_id AND seq > :after ORDER BY seq LIMIT :limit

-- name: upsert_dead_letter
INSERT INTO dead_letters (id, run_id, task_id, attempts, error, created_at, replayed_at)
VALUES (:id, :run_id, :task_id, :attempts, :error, :created_at, :replayed_at)
ON CONFLICT (id) DO UPDATE SET
    run_id = excluded.run_id,
    task_id = excluded.task_id,
    attempts = excluded.attempts,
    error = excluded.error,
    created_at = excluded.created_at,
    replayed_at = excluded.replayed_at

-- name: list_dead_letters
-- The cursors are always bound (open ends are +/-infinity): a row-value comparison that is
-- always there is an index range, while `:before_id IS NULL OR ...` would scan.
SELECT * FROM dead_letters
WHERE (:run_id IS NULL OR run_id = :run_id)
  AND (:include_replayed OR replayed_at IS NULL)
  AND (created_at, id) < (:before_at, :before_id)
  AND (created_at, id) > (:after_at, :after_id)
ORDER BY created_at, id
LIMIT :limit

-- name: list_dead_letters_newest_first
SELECT * FROM dead_letters
WHERE (:run_id IS NULL OR run_id = :run_id)
  AND (:include_replayed OR replayed_at IS NULL)
  AND (created_at, id) < (:before_at, :before_id)
  AND (created_at, id) > (:after_at, :after_id)
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- name: count_dead_letters
SELECT count(*) FROM dead_letters

-- name: count_waiting_dead_letters
SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL

-- name: get_dead_letter
SELECT * FROM dead_letters WHERE id = :id

-- name: upsert_cache
INSERT INTO task_cache (key, output, created_at) VALUES (:key, :output, :created_at)
ON CONFLICT (key) DO UPDATE SET output = excluded.output, created_at = excluded.created_at

-- name: get_cache
SELECT output FROM task_cache
WHERE key = :key AND (:not_before IS NULL OR created_at >= :not_before)

-- name: clear_cache
DELETE FROM task_cache

-- name: get_lease
SELECT * FROM run_leases WHERE run_id = :run_id

-- name: insert_lease
INSERT INTO run_leases (run_id, owner_id, owner_host, owner_pid, lease_until)
VALUES (:run_id, :owner_id, :owner_host, :owner_pid, :lease_until)
ON CONFLICT (run_id) DO NOTHING

-- name: replace_lease
UPDATE run_leases
SET owner_id = :owner_id, owner_host = :owner_host, owner_pid = :owner_pid,
    lease_until = :lease_until
WHERE run_id = :run_id
  AND owner_id = :expected_id AND owner_host = :expected_host AND owner_pid = :expected_pid
  AND lease_until = :expected_until

-- name: renew_run_leases
UPDATE run_leases SET lease_until = :lease_until WHERE owner_id = :owner_id

-- name: renew_attempt_leases
UPDATE attempts SET lease_until = :lease_until WHERE worker = :owner_id AND status = 'running'

-- name: release_lease
DELETE FROM run_leases WHERE run_id = :run_id

-- name: insert_token
INSERT INTO tokens (id, name, role, hash, created_at, last_used_at, revoked_at)
VALUES (:id, :name, :role, :hash, :created_at, :last_used_at, :revoked_at)

-- name: get_token
SELECT * FROM tokens WHERE id = :id

-- name: find_token
SELECT * FROM tokens WHERE hash = :hash

-- name: list_tokens
SELECT * FROM tokens ORDER BY created_at, id

-- name: revoke_token
UPDATE tokens SET revoked_at = coalesce(revoked_at, :now) WHERE id = :id

-- name: touch_token
UPDATE tokens SET last_used_at = :now WHERE id = :id

-- name: count_tokens
SELECT count(*) FROM tokens WHERE revoked_at IS NULL

-- name: upsert_agent
INSERT INTO agents (
    name, kind, capabilities, max_concurrency, weight, config, version, created_at,
    updated_at, health, health_reason, health_changed_at, last_heartbeat_at, deregistered_at
) VALUES (
    :name, :kind, :capabilities, :max_concurrency, :weight, :config, :version, :created_at,
    :updated_at, :health, :health_reason, :health_changed_at, :last_heartbeat_at,
    :deregistered_at
)
ON CONFLICT (name) DO UPDATE SET
    kind = excluded.kind,
    capabilities = excluded.capabilities,
    max_concurrency = excluded.max_concurrency,
    weight = excluded.weight,
    config = excluded.config,
    version = excluded.version,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at,
    health = excluded.health,
    health_reason = excluded.health_reason,
    health_changed_at = excluded.health_changed_at,
    last_heartbeat_at = excluded.last_heartbeat_at,
    deregistered_at = excluded.deregistered_at

-- name: insert_agent_version
INSERT INTO agent_versions (
    name, version, kind, capabilities, max_concurrency, weight, config, created_at
) VALUES (
    :name, :version, :kind, :capabilities, :max_concurrency, :weight, :config, :created_at
)

-- name: get_agent
SELECT * FROM agents WHERE name = :name

-- name: list_agents
SELECT * FROM agents
WHERE :include_deregistered OR deregistered_at IS NULL
ORDER BY name

-- name: agent_versions
SELECT * FROM agent_versions WHERE name = :name ORDER BY version

-- name: upsert_secret
INSERT INTO secrets (name, version, ciphertext, created_at, updated_at)
VALUES (:name, :version, :ciphertext, :created_at, :updated_at)
ON CONFLICT (name) DO UPDATE SET
    version = secrets.version + 1,
    ciphertext = excluded.ciphertext,
    updated_at = excluded.updated_at

-- name: get_secret
SELECT * FROM secrets WHERE name = :name

-- name: list_secrets
SELECT * FROM secrets ORDER BY name

-- name: delete_secret
DELETE FROM secrets WHERE name = :name
