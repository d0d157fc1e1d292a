-- 0004: the result cache. A task run says whether its output came from the cache, and the
-- cache is read by age (ttls), so its creation time gets an index.

ALTER TABLE task_runs ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;

CREATE INDEX task_cache_by_created ON task_cache (created_at);
