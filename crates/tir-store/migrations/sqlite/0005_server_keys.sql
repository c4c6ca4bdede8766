-- The server's signing keys (Ed25519) and the journal heads signed with them
-- (docs/architecture.md, "Signed journal head"). Every key ever used stays,
-- so that old signatures still verify; the current one is the one not
-- retired, and the partial unique index allows only one such key.
-- private_key is the key's 32-byte seed in hex: it is read by the writer,
-- which signs, and shown nowhere.
CREATE TABLE server_keys (
    key_id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    retired_at_ms INTEGER
);
CREATE UNIQUE INDEX server_keys_one_current ON server_keys ((retired_at_ms IS NULL)) WHERE retired_at_ms IS NULL;

-- One signed head per journal length: entries = the last seq, head = its hash.
CREATE TABLE journal_heads (
    entries INTEGER PRIMARY KEY,
    head TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    signed_at_ms INTEGER NOT NULL,
    key_id TEXT NOT NULL REFERENCES server_keys (key_id),
    signature TEXT NOT NULL
);
