-- The hit rates' sums (docs/console.md, "At scale"): per administration, day
-- of the assessment (days since 2000-01-01, UTC) and selector, the
-- assessments, those inspected, the irregularities found and the revenue, as
-- tir_risk::stats counts them. The writer adds to them in the transaction of
-- each batch of assessments and of each result (`tir_risk::stats::tallies`,
-- `tally_changes`), so the figures read a few rows, never every assessment.
CREATE TABLE risk_tallies (
    administration TEXT COLLATE "C" NOT NULL,
    day INTEGER NOT NULL,
    selector TEXT COLLATE "C" NOT NULL,
    volume BIGINT NOT NULL,
    inspected BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    revenue DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (administration, day, selector)
);
-- Existing databases: each assessment with the result that counts for it (of
-- its administration at its office, else the earliest recorded at another).
INSERT INTO risk_tallies (administration, day, selector, volume, inspected, hits, revenue)
    SELECT a.administration, (a.assessed_at_ms / 86400000 - 10957)::integer AS day,
        a.record::jsonb ->> 'selected_by' AS selector,
        count(*), count(r.outcome), count(*) FILTER (WHERE r.outcome = 'irregularity'),
        coalesce(sum((r.doc::jsonb ->> 'revenue')::double precision), 0)
    FROM risk_assessments a
    LEFT JOIN risk_results r ON r.administration = a.administration AND r.guarantee = a.guarantee AND r.office = coalesce(
        (SELECT x.office FROM risk_results x
            WHERE x.administration = a.administration AND x.guarantee = a.guarantee AND x.office = a.office),
        (SELECT x.office FROM risk_results x
            WHERE x.administration = a.administration AND x.guarantee = a.guarantee
            ORDER BY x.recorded_at_ms, x.office LIMIT 1))
    GROUP BY 1, 2, 3;
