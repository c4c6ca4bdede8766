-- Rule profiles of the risk engine (issue 12), one row per version: an edit
-- adds the next version and never changes an older one. A profile belongs to
-- one administration (the country of the customs that wrote it), which alone
-- reads it; `doc` is the version as tir_risk::rules::Profile serializes it.
CREATE TABLE risk_profiles (
    administration TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (administration, id, version)
);
