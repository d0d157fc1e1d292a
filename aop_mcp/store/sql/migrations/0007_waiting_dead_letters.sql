-- 0007: the overview counts the dead letters waiting for a replay on every refresh, and dead
-- letters are never deleted: a partial index keeps that count to the waiting ones.
CREATE INDEX dead_letters_waiting ON dead_letters (id) WHERE replayed_at IS NULL;
