-- Rows for the console's pages at scale (docs/console.md, "At scale"), kept
-- by the writer in the transaction of each message.
--
-- The arrivals: a row per (country, guarantee) once the country's customs
-- feed has an item about the guarantee; `ahead` is the number of operations
-- still to run before the country's open one, NULL when none is left.
CREATE TABLE arrivals (
    country TEXT COLLATE "C" NOT NULL,
    reference TEXT COLLATE "C" NOT NULL,
    announced_ms BIGINT NOT NULL,
    ahead INTEGER,
    PRIMARY KEY (country, reference)
);
CREATE INDEX arrivals_open ON arrivals (country, announced_ms, reference) WHERE ahead IS NOT NULL;
-- The border crossings: one per operation started after the previous one terminated.
CREATE TABLE crossings (
    reference TEXT COLLATE "C" NOT NULL,
    operation INTEGER NOT NULL,
    exit_country TEXT COLLATE "C" NOT NULL,
    entry_country TEXT COLLATE "C" NOT NULL,
    exit_office TEXT,
    entry_office TEXT,
    crossing_point TEXT NOT NULL,
    terminated_at_ms BIGINT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    PRIMARY KEY (reference, operation)
);
CREATE INDEX crossings_by_time ON crossings (started_at_ms, crossing_point);
CREATE INDEX crossings_by_exit ON crossings (exit_country, started_at_ms, crossing_point, entry_country);
CREATE INDEX crossings_by_entry ON crossings (entry_country, started_at_ms, crossing_point, exit_country);
CREATE INDEX crossings_by_pair ON crossings (exit_country, entry_country, started_at_ms, terminated_at_ms);
-- Existing databases: the announcements from the customs feeds here; `ahead`
-- and the crossings are computed from the guarantees by the code that applies
-- this migration, in its transaction (`console::backfill`).
INSERT INTO arrivals (country, reference, announced_ms, ahead)
    SELECT substr(recipient, 9), reference, min(created_at_ms), NULL FROM outbox
    WHERE recipient LIKE 'customs:%' GROUP BY recipient, reference;
