//! Rows kept for the console's pages at scale (docs/console.md, "At scale"):
//! the arrivals of each country (a row per country and guarantee announced to
//! its customs, with the number of operations still ahead of the country's
//! open one) and the border crossings (a row per crossing, when an operation
//! starts after the previous one terminated). The writer keeps both in the
//! transaction of the message that changes them, so the arrivals page and the
//! dashboard read a few indexed rows instead of whole feeds and timelines.

use tir_model::guarantee::{Event, Guarantee, GuaranteeState, OperationState};
use tir_model::party::Recipient;
use tir_model::{Country, Timestamp};
use tir_risk::rules::Lane;

use crate::{AssessmentRecord, Result};

/// A transport announced to a country's customs with an operation there still
/// to start or end: what the arrivals page shows of it, read from the
/// documents' fields by the database (never the whole guarantee or assessment).
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    pub reference: String,
    /// The current declaration's itinerary (the advance data's before recording).
    pub itinerary: Vec<Country>,
    pub stage: Stage,
    /// When the country's feed got its first item about the guarantee.
    pub announced_ms: i64,
    /// Operations still to run before the country's open one (0: it is next or under way).
    pub ahead: u32,
    /// The administration's latest assessment of the guarantee.
    pub assessment: Option<Verdict>,
}

/// Where a transport stands for one country.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// No operation yet (advance data at departure): the guarantee's state.
    Departure(GuaranteeState),
    /// The country's open operation: its sequence, started or not.
    Operation { sequence: u16, started: bool },
    /// Nothing open for the country.
    Done,
}

/// What an assessment decided: its lane, score and reasons.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Verdict {
    pub lane: Lane,
    pub score: Option<f64>,
    pub reasons: Vec<String>,
}

impl Verdict {
    pub fn of(record: &AssessmentRecord) -> Verdict {
        let a = &record.assessment;
        Verdict { lane: a.lane, score: a.score, reasons: a.reasons.clone() }
    }
}

/// The fields of an operation the stage needs.
#[derive(serde::Deserialize)]
pub(crate) struct OperationFields {
    sequence: u16,
    countries: Vec<Country>,
    state: OperationState,
}

/// The stage from the guarantee's state and operations.
fn stage_of(state: GuaranteeState, operations: &[(u16, &[Country], OperationState)], country: Country) -> Stage {
    if operations.is_empty() {
        return Stage::Departure(state);
    }
    let open = |s: OperationState| matches!(s, OperationState::Pending | OperationState::Started);
    match operations.iter().find(|(_, countries, s)| countries.contains(&country) && open(*s)) {
        Some((sequence, _, s)) => Stage::Operation { sequence: *sequence, started: *s == OperationState::Started },
        None => Stage::Done,
    }
}

impl Arrival {
    /// The arrival as the page shows it, from the whole guarantee and assessment (what the
    /// databases' `sql::ARRIVALS` reads field by field; the memory store uses this).
    pub fn of(
        guarantee: &Guarantee,
        country: Country,
        announced_ms: i64,
        ahead: u32,
        assessment: Option<&AssessmentRecord>,
    ) -> Arrival {
        let operations: Vec<(u16, &[Country], OperationState)> =
            guarantee.operations.iter().map(|op| (op.sequence, op.countries.as_slice(), op.state)).collect();
        Arrival {
            reference: guarantee.reference.as_str().to_owned(),
            itinerary: guarantee.itinerary().to_vec(),
            stage: stage_of(guarantee.state, &operations, country),
            announced_ms,
            ahead,
            assessment: assessment.map(Verdict::of),
        }
    }

    /// From the JSON texts `sql::ARRIVALS` selects: the guarantee's state, itinerary and
    /// operations, and the latest assessment's lane, score and reasons (lane `None`: not assessed).
    pub(crate) fn from_fields(
        country: Country,
        reference: String,
        announced_ms: i64,
        ahead: u32,
        fields: [Option<&str>; 6],
    ) -> Result<Arrival> {
        fn field<T: serde::de::DeserializeOwned>(reference: &str, what: &str, raw: Option<&str>) -> Result<T> {
            serde_json::from_str(raw.unwrap_or("null"))
                .map_err(|e| crate::corrupt(format!("arrival {reference}: {what}: {e}")))
        }
        let [state, itinerary, operations, lane, score, reasons] = fields;
        let r = reference.as_str();
        let state: GuaranteeState = field(r, "state", state)?;
        let itinerary: Option<Vec<Country>> = field(r, "itinerary", itinerary)?;
        let operations: Option<Vec<OperationFields>> = field(r, "operations", operations)?;
        let assessment = match lane {
            None => None,
            Some(_) => Some(Verdict {
                lane: field(r, "lane", lane)?,
                score: field(r, "score", score)?,
                reasons: field(r, "reasons", reasons)?,
            }),
        };
        let ops: Vec<(u16, &[Country], OperationState)> =
            operations.iter().flatten().map(|op| (op.sequence, op.countries.as_slice(), op.state)).collect();
        let stage = stage_of(state, &ops, country);
        Ok(Arrival { reference, itinerary: itinerary.unwrap_or_default(), stage, announced_ms, ahead, assessment })
    }
}

/// One border crossing: the termination of an operation at the exit, then the start of the next at the entry.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossingRow {
    pub reference: String,
    /// The sequence of the operation started at the entry.
    pub operation: u16,
    pub exit: Country,
    pub entry: Country,
    pub exit_office: Option<String>,
    pub entry_office: Option<String>,
    pub terminated_at_ms: i64,
    pub started_at_ms: i64,
}

impl CrossingRow {
    /// The crossing point: the office of entry, else of exit, else the border.
    pub fn point(&self) -> String {
        match (&self.entry_office, &self.exit_office) {
            (Some(entry), _) => entry.clone(),
            (None, Some(exit)) => format!("{exit} (exit)"),
            (None, None) => format!("{} → {}", self.exit.as_str(), self.entry.as_str()),
        }
    }
}

/// One border's crossings in the window: how many, and the waits (seconds) of the latest ones.
#[derive(Debug, Clone, PartialEq)]
pub struct PairSample {
    pub exit: Country,
    pub entry: Country,
    pub count: u64,
    /// At most the sample size asked for, the most recent crossings' (started at the entry).
    pub seconds: Vec<f64>,
}

/// What the dashboard shows of the crossings started since a time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CrossingFigures {
    /// By exit, then entry.
    pub pairs: Vec<PairSample>,
    /// (crossing point, day `YYYY-MM-DD` UTC of the start at the entry, crossings), by point then day.
    pub daily: Vec<(String, String, u64)>,
    /// The latest crossings of the window (at most `RECENT_CROSSINGS`), newest first: what the
    /// map places offices and draws corridors from.
    pub recent: Vec<CrossingRow>,
}

/// How many of the latest crossings `CrossingFigures::recent` holds: the map's sample.
pub const RECENT_CROSSINGS: usize = 2_000;

/// A change of a row of the arrivals, as the writer makes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalWrite {
    pub country: Country,
    pub reference: String,
    /// `None`: nothing left for the country (the row stays, out of the arrivals).
    pub ahead: Option<u32>,
    /// The country's feed got an item about the guarantee: the row is made (at `at_ms`) if missing.
    pub announce: bool,
    pub at_ms: i64,
}

/// How many operations are still to run before `country`'s open one; `None`
/// when nothing is left for the country (or the guarantee is over). Before
/// recording, the advance data is for the customs of departure.
pub fn operations_ahead(guarantee: &Guarantee, country: Country) -> Option<u32> {
    if matches!(guarantee.state, GuaranteeState::Cancelled | GuaranteeState::Released) {
        return None;
    }
    if guarantee.operations.is_empty() {
        return guarantee.itinerary().first().is_some_and(|c| *c == country).then_some(0);
    }
    let open = |state: OperationState| matches!(state, OperationState::Pending | OperationState::Started);
    let here = guarantee.operations.iter().position(|op| op.includes(country) && open(op.state))?;
    Some(guarantee.operations[..here].iter().filter(|op| open(op.state)).count() as u32)
}

/// The crossings `guarantee` has made: each pair of consecutive operations
/// whose first was terminated and whose second was started. The office of
/// entry is that of the I9 among `events` at the start's time (the time it
/// happened, for one recorded in fallback).
pub fn crossings(guarantee: &Guarantee, events: &[Event]) -> Vec<CrossingRow> {
    guarantee
        .operations
        .windows(2)
        .filter_map(|pair| {
            let (out, into) = (&pair[0], &pair[1]);
            let (terminated_at, started_at) = (out.terminated_at?, into.started_at?);
            let entry_office = events
                .iter()
                // A start recorded late (fallback) has the time it happened, not of receipt.
                .find(|e| e.message_type == "I9" && e.occurred_at.unwrap_or(e.at) == started_at)
                .and_then(|e| e.office.clone())
                .filter(|o| o.country() == into.countries[0]);
            Some(CrossingRow {
                reference: guarantee.reference.as_str().to_owned(),
                operation: into.sequence,
                exit: *out.countries.last()?,
                entry: *into.countries.first()?,
                exit_office: out.terminated_by.as_ref().map(|o| o.as_str().to_owned()),
                entry_office: entry_office.map(|o| o.as_str().to_owned()),
                terminated_at_ms: terminated_at.unix_ms(),
                started_at_ms: started_at.unix_ms(),
            })
        })
        .collect()
}

/// The countries whose arrivals a guarantee may be in: its itinerary and its operations'.
fn countries_of(guarantee: &Guarantee) -> Vec<Country> {
    let mut countries: Vec<Country> = guarantee.itinerary().to_vec();
    countries.extend(guarantee.operations.iter().flat_map(|op| op.countries.iter().copied()));
    countries
}

/// What an accepted message changes in the arrivals and crossings: `before`
/// and `after` are the guarantee around it, `recipients` the feeds it reached
/// and `events` the timeline entries it added.
pub(crate) fn changes<'a>(
    before: Option<&Guarantee>,
    after: &Guarantee,
    recipients: impl Iterator<Item = &'a Recipient>,
    events: &[Event],
    at_ms: i64,
) -> (Vec<ArrivalWrite>, Vec<CrossingRow>) {
    let announced: Vec<Country> = recipients
        .filter_map(|r| match r {
            Recipient::Customs(c) => Some(*c),
            _ => None,
        })
        .collect();
    let mut countries = countries_of(after);
    countries.extend(before.map(countries_of).unwrap_or_default());
    countries.extend(announced.iter().copied());
    let mut seen = Vec::with_capacity(countries.len());
    let mut arrivals = Vec::new();
    for country in countries {
        if seen.contains(&country) {
            continue;
        }
        seen.push(country);
        let ahead = operations_ahead(after, country);
        let announce = announced.contains(&country);
        if announce || before.and_then(|b| operations_ahead(b, country)) != ahead {
            arrivals.push(ArrivalWrite {
                country,
                reference: after.reference.as_str().to_owned(),
                ahead,
                announce,
                at_ms,
            });
        }
    }
    let made_before = before.map(|b| crossings(b, &[])).unwrap_or_default();
    let crossed = crossings(after, events)
        .into_iter()
        .filter(|c| !made_before.iter().any(|m| m.operation == c.operation))
        .collect();
    (arrivals, crossed)
}

/// Day `YYYY-MM-DD` (UTC) of a time in ms.
pub fn day_of(ms: i64) -> String {
    Timestamp::from_unix_ms(ms).to_rfc3339().get(..10).unwrap_or_default().to_owned()
}

/// SQL both databases run as it is (`$n` placeholders).
pub(crate) mod sql {
    /// `$1` country, `$2` reference, `$3` announced_ms, `$4` ahead: makes the row, or sets its ahead.
    pub(crate) const ARRIVAL_ANNOUNCE: &str = "INSERT INTO arrivals (country, reference, announced_ms, ahead) \
        VALUES ($1, $2, $3, $4) ON CONFLICT (country, reference) DO UPDATE SET ahead = excluded.ahead";
    /// `$1` ahead, `$2` country, `$3` reference: only a row the country's feed made. (SQLite numbers
    /// `$n` by first use, so they are used in order.)
    pub(crate) const ARRIVAL_UPDATE: &str = "UPDATE arrivals SET ahead = $1 WHERE country = $2 AND reference = $3";
    pub(crate) const CROSSING_INSERT: &str = "INSERT INTO crossings \
        (reference, operation, exit_country, entry_country, exit_office, entry_office, crossing_point, terminated_at_ms, started_at_ms) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (reference, operation) DO NOTHING";
    /// `$1` country, `$2` limit: the most recently announced, each with JSON fields of its guarantee
    /// (state, itinerary, operations) and of the administration's latest assessment (lane, score,
    /// reasons; the order `Store::assessments` reads, last), as JSON texts (`Arrival::from_fields`).
    /// SQLite's `->` gives a field's JSON text without parsing the rest into values. `INDEXED BY`:
    /// without statistics SQLite took `risk_assessments_by_time` for the order, walking every
    /// assessment of the administration per row (2.8 s for 135 rows at 20,000 transports).
    pub(crate) const ARRIVALS_SQLITE: &str = "SELECT a.announced_ms, a.ahead, a.reference, \
        g.doc -> '$.state', coalesce(g.doc -> '$.declaration.itinerary', g.doc -> '$.advance.itinerary'), \
        g.doc -> '$.operations', r.record -> '$.lane', r.record -> '$.score', r.record -> '$.reasons' \
        FROM (SELECT x.reference, x.announced_ms, x.ahead, \
                (SELECT r.id FROM risk_assessments r INDEXED BY risk_assessments_by_guarantee \
                 WHERE r.administration = x.country AND r.guarantee = x.reference \
                 ORDER BY r.assessed_at_ms DESC, r.source_cursor DESC, r.operation DESC, r.id DESC LIMIT 1) AS latest \
              FROM arrivals x WHERE x.country = $1 AND x.ahead IS NOT NULL \
              ORDER BY x.announced_ms DESC, x.reference DESC LIMIT $2) a \
        JOIN guarantees g ON g.reference = a.reference LEFT JOIN risk_assessments r ON r.id = a.latest \
        ORDER BY a.announced_ms DESC, a.reference DESC";
    /// `ARRIVALS_SQLITE` on PostgreSQL: each document parsed once (`jsonb`), its fields as text.
    pub(crate) const ARRIVALS_POSTGRES: &str = "SELECT a.announced_ms, a.ahead, a.reference, \
        (g.d -> 'state')::text, coalesce(g.d -> 'declaration' -> 'itinerary', g.d -> 'advance' -> 'itinerary')::text, \
        (g.d -> 'operations')::text, (r.d -> 'lane')::text, (r.d -> 'score')::text, (r.d -> 'reasons')::text \
        FROM (SELECT country, reference, announced_ms, ahead FROM arrivals \
              WHERE country = $1 AND ahead IS NOT NULL ORDER BY announced_ms DESC, reference DESC LIMIT $2) a \
        CROSS JOIN LATERAL (SELECT doc::jsonb AS d FROM guarantees WHERE reference = a.reference) g \
        LEFT JOIN LATERAL (SELECT record::jsonb AS d FROM risk_assessments \
                WHERE administration = a.country AND guarantee = a.reference \
                ORDER BY assessed_at_ms DESC, source_cursor DESC, operation DESC, id DESC LIMIT 1) r ON true \
        ORDER BY a.announced_ms DESC, a.reference DESC";
    /// Crossings from day `$1` (days since the epoch, UTC) on, per border: every crossing, or (`$2`)
    /// those into or out of a country. From the day counts the trigger of `crossing_days` keeps.
    pub(crate) fn pairs(of_country: bool) -> String {
        format!(
            "SELECT exit_country, entry_country, CAST(sum(crossings) AS BIGINT) FROM crossing_days WHERE day >= $1 {} \
             GROUP BY exit_country, entry_country",
            of(of_country)
        )
    }
    /// `$1` exit, `$2` entry, `$3` since, `$4` limit: the latest waits in ms.
    pub(crate) const SAMPLE: &str = "SELECT started_at_ms - terminated_at_ms FROM crossings \
        WHERE exit_country = $1 AND entry_country = $2 AND started_at_ms >= $3 ORDER BY started_at_ms DESC LIMIT $4";
    /// As `pairs`, per crossing point and day (days since the epoch).
    pub(crate) fn daily(of_country: bool) -> String {
        format!(
            "SELECT crossing_point, day, CAST(sum(crossings) AS BIGINT) FROM crossing_days WHERE day >= $1 {} \
             GROUP BY crossing_point, day",
            of(of_country)
        )
    }
    /// As `pairs` but from `$1` in ms (the window's first moment), the rows of the latest crossings
    /// (`RECENT_CROSSINGS`). A country's are the latest out of it and the latest into it (from
    /// another), each read in order from its index, merged: with `OR` SQLite fetched every crossing
    /// of the window through both indexes and sorted them (LT at 1,000,000 transports: 0.10 s in
    /// the `sqlite3` shell, against 0.02 s for the two reads and the merge).
    pub(crate) fn recent(of_country: bool) -> String {
        const COLUMNS: &str = "reference, operation, exit_country, entry_country, exit_office, entry_office, terminated_at_ms, started_at_ms";
        const ORDER: &str = "ORDER BY started_at_ms DESC, reference DESC, operation DESC";
        let limit = super::RECENT_CROSSINGS;
        if of_country {
            format!(
                "SELECT * FROM (SELECT {COLUMNS} FROM crossings WHERE started_at_ms >= $1 AND exit_country = $2 \
                 {ORDER} LIMIT {limit}) AS exits \
                 UNION ALL SELECT * FROM (SELECT {COLUMNS} FROM crossings \
                 WHERE started_at_ms >= $1 AND entry_country = $2 AND exit_country <> $2 {ORDER} LIMIT {limit}) AS entries \
                 {ORDER} LIMIT {limit}"
            )
        } else {
            format!("SELECT {COLUMNS} FROM crossings WHERE started_at_ms >= $1 {ORDER} LIMIT {limit}")
        }
    }
    fn of(of_country: bool) -> &'static str {
        if of_country { "AND (exit_country = $2 OR entry_country = $2)" } else { "" }
    }
}

/// A day in ms.
pub const DAY_MS: i64 = 86_400_000;

/// The window of `Store::crossing_figures` from `since_ms`: whole days (UTC), from the start of
/// the day of `since_ms`, as (day since the epoch, its first ms). Whole days let the day counts
/// (`crossing_days`) give the window's totals.
pub fn window(since_ms: i64) -> (i64, i64) {
    let day = since_ms.div_euclid(DAY_MS);
    (day, day * DAY_MS)
}

/// Seconds from ms, waits of a clock that put the start first counted as none.
pub(crate) fn wait_seconds(ms: i64) -> f64 {
    ms.max(0) as f64 / 1000.0
}

/// The figures of crossing rows in memory, as the SQL of `sql` computes them.
pub(crate) fn figures_of<'a>(
    rows: impl Iterator<Item = &'a CrossingRow>,
    country: Option<Country>,
    since_ms: i64,
    sample: usize,
) -> CrossingFigures {
    use std::collections::BTreeMap;
    let mut pairs: BTreeMap<(Country, Country), Vec<(i64, i64)>> = BTreeMap::new();
    let mut daily: BTreeMap<(String, i64), u64> = BTreeMap::new();
    let mut recent: Vec<CrossingRow> = Vec::new();
    let since_ms = window(since_ms).1;
    for c in rows {
        if c.started_at_ms < since_ms || country.is_some_and(|here| c.exit != here && c.entry != here) {
            continue;
        }
        recent.push(c.clone());
        pairs.entry((c.exit, c.entry)).or_default().push((c.started_at_ms, c.started_at_ms - c.terminated_at_ms));
        *daily.entry((c.point(), c.started_at_ms.div_euclid(DAY_MS))).or_default() += 1;
    }
    CrossingFigures {
        pairs: pairs
            .into_iter()
            .map(|((exit, entry), mut waits)| {
                waits.sort_by_key(|w| std::cmp::Reverse(w.0));
                let count = waits.len() as u64;
                let seconds = waits.iter().take(sample).map(|(_, ms)| wait_seconds(*ms)).collect();
                PairSample { exit, entry, count, seconds }
            })
            .collect(),
        daily: daily.into_iter().map(|((point, day), n)| (point, day_of(day * DAY_MS), n)).collect(),
        recent: newest_first(recent),
    }
}

/// The order `sql::RECENT` reads, cut at `RECENT_CROSSINGS`.
fn newest_first(mut recent: Vec<CrossingRow>) -> Vec<CrossingRow> {
    recent.sort_by(|a, b| {
        (b.started_at_ms, &b.reference, b.operation).cmp(&(a.started_at_ms, &a.reference, a.operation))
    });
    recent.truncate(RECENT_CROSSINGS);
    recent
}

/// Parses a country column.
pub(crate) fn country(raw: &str) -> Result<Country> {
    Country::parse(raw).map_err(|_| crate::corrupt(format!("country {raw:?}")))
}

/// The figures from the rows the SQL of `sql` answers: pairs by exit then
/// entry, days (since the epoch) by point then day.
pub(crate) fn assemble(
    mut pairs: Vec<PairSample>,
    mut daily: Vec<(String, i64, i64)>,
    recent: Vec<CrossingRow>,
) -> CrossingFigures {
    pairs.sort_by_key(|p| (p.exit, p.entry));
    daily.sort();
    let daily = daily.into_iter().map(|(point, day, n)| (point, day_of(day * DAY_MS), n.max(0) as u64)).collect();
    CrossingFigures { pairs, daily, recent: newest_first(recent) }
}
