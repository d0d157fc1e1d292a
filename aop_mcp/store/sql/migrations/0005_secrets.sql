-- 0005: the secret store. Values are Fernet-encrypted by aop_mcp.security.secrets before
-- they reach the store: `ciphertext` is all a copy of the database holds. `version` counts
-- the sets of a name.

CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    ciphertext TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
