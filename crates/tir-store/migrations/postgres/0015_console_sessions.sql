-- The console's sessions (tir_store::sessions), in the store so that every
-- server sharing the database knows them. Hashes only: of the session id in
-- the cookie and of the party's token.
CREATE TABLE console_sessions (
    id_hash TEXT COLLATE "C" PRIMARY KEY,
    token_hash TEXT NOT NULL,
    csrf TEXT NOT NULL,
    opened_ms BIGINT NOT NULL,
    seen_ms BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_seen ON console_sessions (seen_ms);
