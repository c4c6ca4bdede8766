-- The crossings per day (docs/console.md, "At scale"): per day of the start
-- at the entry (days since 1970-01-01, UTC), border and crossing point, how
-- many. A trigger adds each crossing row as it is inserted, in the writer's
-- transaction (an insert skipped as a duplicate fires nothing), so the
-- dashboard's counts read a few hundred rows, never the window's crossings.
CREATE TABLE crossing_days (
    day INTEGER NOT NULL,
    exit_country TEXT NOT NULL,
    entry_country TEXT NOT NULL,
    crossing_point TEXT NOT NULL,
    crossings INTEGER NOT NULL,
    PRIMARY KEY (day, exit_country, entry_country, crossing_point)
) WITHOUT ROWID;
-- Existing databases: the crossings already stored.
INSERT INTO crossing_days (day, exit_country, entry_country, crossing_point, crossings)
    SELECT started_at_ms / 86400000, exit_country, entry_country, crossing_point, count(*)
    FROM crossings GROUP BY 1, 2, 3, 4;
CREATE TRIGGER crossings_counted AFTER INSERT ON crossings BEGIN
    INSERT INTO crossing_days (day, exit_country, entry_country, crossing_point, crossings)
        VALUES (new.started_at_ms / 86400000, new.exit_country, new.entry_country, new.crossing_point, 1)
        ON CONFLICT (day, exit_country, entry_country, crossing_point) DO UPDATE SET crossings = crossings + 1;
END;
