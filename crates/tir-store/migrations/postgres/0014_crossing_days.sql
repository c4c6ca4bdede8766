-- The crossings per day (docs/console.md, "At scale"): per day of the start
-- at the entry (days since 1970-01-01, UTC), border and crossing point, how
-- many. A trigger adds each crossing row as it is inserted, in the writer's
-- transaction (a row skipped by ON CONFLICT DO NOTHING fires nothing; the
-- writers hold one advisory lock, so two never update these rows at once).
-- The dashboard's counts read a few hundred rows, never the window's crossings.
CREATE TABLE crossing_days (
    day BIGINT NOT NULL,
    exit_country TEXT COLLATE "C" NOT NULL,
    entry_country TEXT COLLATE "C" NOT NULL,
    crossing_point TEXT NOT NULL,
    crossings BIGINT NOT NULL,
    PRIMARY KEY (day, exit_country, entry_country, crossing_point)
);
-- Existing databases: the crossings already stored.
INSERT INTO crossing_days (day, exit_country, entry_country, crossing_point, crossings)
    SELECT started_at_ms / 86400000, exit_country, entry_country, crossing_point, count(*)
    FROM crossings GROUP BY 1, 2, 3, 4;
CREATE OR REPLACE FUNCTION crossings_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO crossing_days (day, exit_country, entry_country, crossing_point, crossings)
        VALUES (NEW.started_at_ms / 86400000, NEW.exit_country, NEW.entry_country, NEW.crossing_point, 1)
        ON CONFLICT (day, exit_country, entry_country, crossing_point)
        DO UPDATE SET crossings = crossing_days.crossings + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER crossings_counted AFTER INSERT ON crossings FOR EACH ROW EXECUTE FUNCTION crossings_counted();
