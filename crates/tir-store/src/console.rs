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

use crate::{AssessmentRecord, Result};

/// A transport announced to a country's customs with an operation there still to start or end.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    pub guarantee: Guarantee,
    /// When the country's feed got its first item about the guarantee.
    pub announced_ms: i64,
    /// Operations still to run before the country's open one (0: it is next or under way).
    pub ahead: u32,
    /// The administration's latest assessment of the guarantee.
    pub assessment: Option<AssessmentRecord>,
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
    /// `$1` country, `$2` limit: the most recently announced, each with its guarantee's document and
    /// the administration's latest assessment (the order `Store::assessments` reads, last).
    pub(crate) const ARRIVALS: &str = "SELECT a.announced_ms, a.ahead, g.doc, \
        (SELECT r.record FROM risk_assessments r WHERE r.administration = a.country AND r.guarantee = a.reference \
         ORDER BY r.assessed_at_ms DESC, r.source_cursor DESC, r.operation DESC, r.id DESC LIMIT 1) \
        FROM arrivals a JOIN guarantees g ON g.reference = a.reference \
        WHERE a.country = $1 AND a.ahead IS NOT NULL ORDER BY a.announced_ms DESC, a.reference DESC LIMIT $2";
    /// Crossings since `$1` (ms), per border: every crossing, or (`$2`) those into or out of a country.
    pub(crate) fn pairs(of_country: bool) -> String {
        format!(
            "SELECT exit_country, entry_country, count(*) FROM crossings WHERE started_at_ms >= $1 {} GROUP BY exit_country, entry_country",
            of(of_country)
        )
    }
    /// `$1` exit, `$2` entry, `$3` since, `$4` limit: the latest waits in ms.
    pub(crate) const SAMPLE: &str = "SELECT started_at_ms - terminated_at_ms FROM crossings \
        WHERE exit_country = $1 AND entry_country = $2 AND started_at_ms >= $3 ORDER BY started_at_ms DESC LIMIT $4";
    /// As `pairs`, per crossing point and day (days since the epoch).
    pub(crate) fn daily(of_country: bool) -> String {
        format!(
            "SELECT crossing_point, started_at_ms / 86400000 AS day, count(*) FROM crossings WHERE started_at_ms >= $1 {} \
             GROUP BY crossing_point, day",
            of(of_country)
        )
    }
    /// As `pairs`, the rows of the latest crossings (`RECENT_CROSSINGS`, the limit last).
    pub(crate) fn recent(of_country: bool) -> String {
        format!(
            "SELECT reference, operation, exit_country, entry_country, exit_office, entry_office, terminated_at_ms, started_at_ms \
             FROM crossings WHERE started_at_ms >= $1 {} ORDER BY started_at_ms DESC, reference DESC, operation DESC LIMIT {}",
            of(of_country),
            super::RECENT_CROSSINGS
        )
    }
    fn of(of_country: bool) -> &'static str {
        if of_country { "AND (exit_country = $2 OR entry_country = $2)" } else { "" }
    }
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
    for c in rows {
        if c.started_at_ms < since_ms || country.is_some_and(|here| c.exit != here && c.entry != here) {
            continue;
        }
        recent.push(c.clone());
        pairs.entry((c.exit, c.entry)).or_default().push((c.started_at_ms, c.started_at_ms - c.terminated_at_ms));
        *daily.entry((c.point(), c.started_at_ms.div_euclid(86_400_000))).or_default() += 1;
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
        daily: daily.into_iter().map(|((point, day), n)| (point, day_of(day * 86_400_000), n)).collect(),
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
    let daily = daily.into_iter().map(|(point, day, n)| (point, day_of(day * 86_400_000), n.max(0) as u64)).collect();
    CrossingFigures { pairs, daily, recent: newest_first(recent) }
}
