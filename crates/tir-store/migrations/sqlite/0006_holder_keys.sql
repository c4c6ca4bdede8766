-- Holders' signing keys (docs/etir-binding.md, "Signed holder messages"):
-- every key a holder registered stays, so old signatures still verify; the
-- current one is the one not revoked, and the partial unique index allows
-- one such key per TIR id.
CREATE TABLE holder_keys (
    tir_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    registered_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER,
    PRIMARY KEY (tir_id, key_id)
);
CREATE UNIQUE INDEX holder_keys_one_current ON holder_keys (tir_id) WHERE revoked_at_ms IS NULL;

-- A signed message's signature, its key and the body bytes as sent (JSON);
-- NULL for every other entry, and for every entry written before.
ALTER TABLE journal ADD COLUMN holder_signature TEXT;
