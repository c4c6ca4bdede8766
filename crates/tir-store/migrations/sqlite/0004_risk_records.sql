-- The risk engine's records (issue 12). Each keeps its document as
-- tir_risk::records serializes it; the columns beside it are the ones queried.
--
-- Assessments, in the order stored (`id`); one per operation assessed, by the
-- administration whose customs the feed item reached.
CREATE TABLE risk_assessments (
    id INTEGER PRIMARY KEY,
    administration TEXT NOT NULL,
    guarantee TEXT NOT NULL,
    operation INTEGER NOT NULL,
    office TEXT NOT NULL,
    source_cursor INTEGER NOT NULL,
    assessed_at_ms INTEGER NOT NULL,
    holder TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX risk_assessments_by_guarantee ON risk_assessments (administration, guarantee, assessed_at_ms);
CREATE INDEX risk_assessments_by_time ON risk_assessments (administration, assessed_at_ms, source_cursor);
CREATE INDEX risk_assessments_by_office ON risk_assessments (administration, office, assessed_at_ms, source_cursor);
CREATE INDEX risk_assessments_by_holder ON risk_assessments (administration, holder, guarantee);
-- The last feed cursor assessed: one row, moved only from the value a batch expected.
CREATE TABLE risk_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), cursor INTEGER NOT NULL);
INSERT INTO risk_cursor (id, cursor) VALUES (1, 0);
-- Inspection results: one per (administration, guarantee, office), a later one replaces it.
CREATE TABLE risk_results (
    administration TEXT NOT NULL,
    guarantee TEXT NOT NULL,
    office TEXT NOT NULL,
    outcome TEXT NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (administration, guarantee, office)
);
CREATE INDEX risk_results_by_time ON risk_results (administration, recorded_at_ms);
-- Trained models, newest = highest id. `doc` is the metadata (model_json left
-- empty) so listing them never reads the models themselves.
CREATE TABLE risk_models (
    id INTEGER PRIMARY KEY,
    administration TEXT NOT NULL,
    version TEXT NOT NULL,
    doc TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    model_json TEXT NOT NULL,
    UNIQUE (administration, version)
);
CREATE INDEX risk_models_by_age ON risk_models (administration, id);
-- Selection policies: per office, `*` for the administration's default.
CREATE TABLE risk_policies (
    administration TEXT NOT NULL,
    office TEXT NOT NULL,
    doc TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (administration, office)
);
