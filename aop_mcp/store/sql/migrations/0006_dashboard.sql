-- 0006: what the dashboard asks, answered from indexes so that it stays fast with 10,000
-- runs and more: counts per status, task throughput, an agent's attempts.

-- The agent that served an attempt: a copy of its output's `agent`, written with the
-- attempt by the same upsert. A plain column rather than a generated one: an index on
-- json_extract(output, ...) would parse every output (up to the output cap) on each write.
-- Nothing to backfill: outputs stored before this migration never name an agent.
ALTER TABLE attempts ADD COLUMN agent TEXT;

-- Partial: only agent attempts are indexed, so other executors' writes do not pay for it.
-- The primary key columns order ties of started_at without a sort.
CREATE INDEX attempts_by_agent ON attempts (agent, started_at, run_id, task_id, number)
WHERE agent IS NOT NULL;

-- Throughput: finished task runs by when they finished. Partial: unfinished task runs (the
-- ones the engine rewrites most) never touch it.
CREATE INDEX task_runs_by_finished ON task_runs (finished_at) WHERE finished_at IS NOT NULL;

-- One workflow's runs in one status, newest first (list_runs), and its counts per status
-- (count_runs), from the index alone.
CREATE INDEX runs_by_workflow_status ON runs (workflow, status, created_at, id);
