//! Customs acting on the risk engine's assessments in `tirhub simulate`: where
//! the truck is seen (the office that starts or terminates an operation), its
//! customs read their administration's assessment and, on a red or yellow
//! lane, inspect and record the true outcome (`POST /v1/risk/results`). The
//! pure parts are here; the HTTP calls are in `simulate`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::model::rng::{Rng, mix};
use crate::model::traffic::{Play, Transport};
use crate::model::truth::RiskTruth;

/// Chance that an inspection finds smuggling that is there.
pub const FIND_RED: f64 = 0.95;
pub const FIND_YELLOW: f64 = 0.6;

const SALT: u64 = 0x494E_5350; // "INSP"

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    Green,
    Yellow,
    Red,
}

impl Lane {
    pub fn parse(raw: &str) -> Option<Lane> {
        match raw {
            "green" => Some(Lane::Green),
            "yellow" => Some(Lane::Yellow),
            "red" => Some(Lane::Red),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Green => "green",
            Lane::Yellow => "yellow",
            Lane::Red => "red",
        }
    }
}

/// One item of `GET /v1/risk/assessments/{guarantee_reference}`, the fields the simulator uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub operation: u16,
    pub office: String,
    pub lane: Lane,
    pub score: Option<f64>,
    /// `rule:<id>@<v>`, `model@<v>`, `random` or `none`.
    pub selected_by: String,
    pub declaration_version: i64,
    pub assessed_at: String,
}

impl Assessment {
    pub fn from_json(item: &Value) -> Result<Assessment, String> {
        let text = |field: &str| -> Result<String, String> {
            item[field].as_str().map(str::to_owned).ok_or_else(|| format!("assessment without a text {field}: {item}"))
        };
        let operation = item["operation"]
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| format!("assessment without an integer operation: {item}"))?;
        let lane = text("lane")?;
        Ok(Assessment {
            operation,
            office: text("office")?,
            lane: Lane::parse(&lane).ok_or_else(|| format!("assessment with an unknown lane {lane:?}"))?,
            score: item["score"].as_f64(),
            selected_by: text("selected_by")?,
            declaration_version: item["declaration_version"].as_i64().unwrap_or(0),
            assessed_at: item["assessed_at"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// The items of an assessments answer (`{"items": [...]}`).
pub fn parse_assessments(body: &str) -> Result<Vec<Assessment>, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("assessments: not JSON: {e}"))?;
    let items = value["items"].as_array().ok_or("assessments: no items array")?;
    items.iter().map(Assessment::from_json).collect()
}

/// The assessment customs at `office` act on for `operation`: the latest
/// (declaration version, then time) made for that office, else for another
/// office of the same administration.
pub fn pick<'a>(items: &'a [Assessment], operation: u16, office: &str) -> Option<&'a Assessment> {
    let latest = |own: bool| {
        items
            .iter()
            .filter(|a| a.operation == operation && (!own || a.office == office))
            .max_by(|a, b| (a.declaration_version, &a.assessed_at).cmp(&(b.declaration_version, &b.assessed_at)))
    };
    latest(true).or_else(|| latest(false))
}

/// Where customs see the truck: before script message `message` (an I9 or
/// I11), customs of `office`'s country, with `token`, act on `operation`.
/// Each country acts once per operation, at the first of its offices met.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub message: usize,
    pub operation: u16,
    pub office: String,
    pub token: String,
}

/// Countries the declaration in `script` names an office of: as on the server
/// (`tir_risk::due`), only they assess, so only their customs inspect.
fn declared_countries(script: &[(String, Value)]) -> Vec<String> {
    script
        .iter()
        .filter_map(|(_, m)| m["declaration"]["offices"].as_array())
        .flatten()
        .filter_map(|o| o["code"].as_str().and_then(|c| c.get(..2)).map(str::to_owned))
        .collect()
}

/// The checkpoints of `transport`'s `script` (from `script::messages`), in script order.
pub fn checkpoints(transport: &Transport, script: &[(String, Value)]) -> Vec<Checkpoint> {
    let declared = declared_countries(script);
    // (I9 office, I11 office, sequence) of each run operation, in order.
    let runs: Vec<(&str, &str, u16)> = transport
        .operations
        .iter()
        .filter_map(|op| match &op.play {
            Play::Run(run) => Some((run.start.as_str(), run.end.as_str(), op.sequence)),
            _ => None,
        })
        .collect();
    let (mut starts, mut ends) = (0, 0);
    let mut seen: Vec<(u16, String)> = Vec::new();
    let mut out = Vec::new();
    for (i, (token, message)) in script.iter().enumerate() {
        let office = message["office"].as_str().unwrap_or_default();
        let operation = match message["type"].as_str() {
            Some("I9") if runs.get(starts).is_some_and(|r| r.0 == office) => {
                starts += 1;
                runs[starts - 1].2
            }
            Some("I11") if runs.get(ends).is_some_and(|r| r.1 == office) => {
                ends += 1;
                runs[ends - 1].2
            }
            _ => continue,
        };
        let country = office.get(..2).unwrap_or_default().to_owned();
        // An exit the declaration does not name: the truck leaves, nothing was assessed there.
        if seen.contains(&(operation, country.clone())) || !declared.contains(&country) {
            continue;
        }
        seen.push((operation, country));
        out.push(Checkpoint { message: i, operation, office: office.to_owned(), token: token.clone() });
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Compliant,
    Irregularity { revenue: f64 },
}

/// What an inspection in `lane` finds; `None` on green (no inspection).
pub fn inspect(lane: Lane, truth: &RiskTruth, rng: &mut Rng) -> Option<Outcome> {
    let find = match lane {
        Lane::Green => return None,
        Lane::Yellow => FIND_YELLOW,
        Lane::Red => FIND_RED,
    };
    // Always drawn, so the stream does not depend on the truth.
    let found = rng.chance(find);
    Some(if truth.smuggling && found {
        Outcome::Irregularity { revenue: truth.revenue_at_stake }
    } else {
        Outcome::Compliant
    })
}

/// The inspection stream of checkpoint `k` of transport `index`: one seed replays every finding.
pub fn inspection_rng(seed: u64, index: u64, k: usize) -> Rng {
    Rng::keyed(mix(mix(seed, SALT), index), k as u64)
}

/// The body of `POST /v1/risk/results`.
pub fn result_body(reference: &str, office: &str, lane: Lane, outcome: Outcome) -> Value {
    let (outcome, revenue, findings) = match outcome {
        Outcome::Compliant => ("compliant", 0.0, Vec::new()),
        Outcome::Irregularity { revenue } => ("irregularity", revenue, vec!["goods not as declared".to_owned()]),
    };
    json!({
        "guarantee_reference": reference,
        "office": office,
        "outcome": outcome,
        "revenue": revenue,
        "findings": findings,
        "notes": format!("simulated {} lane inspection", lane.as_str()),
    })
}

/// Inspections against the truth, per selector: inspected, smuggling among
/// them, and smuggling found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hits {
    pub inspected: u64,
    pub smuggling: u64,
    pub found: u64,
}

impl Hits {
    /// Smuggling found per inspection.
    pub fn hit_rate(&self) -> f64 {
        if self.inspected == 0 { 0.0 } else { self.found as f64 / self.inspected as f64 }
    }
}

/// What customs did with the assessments over a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RiskReport {
    /// `false` when switched off (`--no-inspections`).
    pub enabled: bool,
    /// Checkpoints where an assessment for the operation was read.
    pub assessments_read: u64,
    /// Checkpoints where none came after the polls.
    pub assessments_missing: u64,
    /// Lanes of the assessments read.
    pub lanes: BTreeMap<&'static str, u64>,
    /// Inspections (results recorded) by lane: `red`, `yellow`.
    pub inspections: BTreeMap<&'static str, u64>,
    /// Results recorded with outcome `irregularity`.
    pub irregularities_found: u64,
    /// Revenue at stake of the smuggling transports found, each counted once, EUR.
    pub revenue_recovered: f64,
    /// By `selected_by` of the assessment acted on.
    pub by_selector: BTreeMap<String, Hits>,
    /// Completed transports that smuggle, and of those, never inspected.
    pub smuggling_transports: u64,
    pub smuggling_uninspected: u64,
    /// Completed smuggling transports found by at least one inspection.
    pub smuggling_found: u64,
    /// Checkpoints passed without reading, the server having answered 404 on the risk routes.
    pub skipped_no_risk_routes: u64,
    /// That first 404 answer.
    pub risk_routes_missing: Option<String>,
    /// Risk requests that failed otherwise (no answer, an unexpected status or body).
    pub errors: u64,
}

impl RiskReport {
    pub fn to_json(&self) -> Value {
        let selectors: serde_json::Map<String, Value> = self
            .by_selector
            .iter()
            .map(|(s, h)| {
                let value = json!({"inspected": h.inspected, "smuggling": h.smuggling, "found": h.found,
                                   "hit_rate": h.hit_rate()});
                (s.clone(), value)
            })
            .collect();
        json!({
            "enabled": self.enabled,
            "assessments_read": self.assessments_read,
            "assessments_missing": self.assessments_missing,
            "lanes": self.lanes,
            "inspections": self.inspections,
            "irregularities_found": self.irregularities_found,
            "revenue_recovered": self.revenue_recovered,
            "by_selector": selectors,
            "smuggling_transports": self.smuggling_transports,
            "smuggling_found": self.smuggling_found,
            "smuggling_uninspected": self.smuggling_uninspected,
            "skipped_no_risk_routes": self.skipped_no_risk_routes,
            "risk_routes_missing": self.risk_routes_missing,
            "errors": self.errors,
        })
    }

    /// Adds one transport's tally; `completed` counts its truth.
    pub fn add(&mut self, transport: &TransportRisk, truth: &RiskTruth, completed: bool) {
        self.assessments_read += transport.read;
        self.assessments_missing += transport.missing;
        self.skipped_no_risk_routes += transport.skipped;
        self.errors += transport.errors;
        for (lane, inspected) in &transport.acted {
            *self.lanes.entry(lane.as_str()).or_default() += 1;
            if let Some((selector, outcome)) = inspected {
                *self.inspections.entry(lane.as_str()).or_default() += 1;
                let hits = self.by_selector.entry(selector.clone()).or_default();
                hits.inspected += 1;
                hits.smuggling += u64::from(truth.smuggling);
                if let Outcome::Irregularity { .. } = outcome {
                    hits.found += 1;
                    self.irregularities_found += 1;
                }
            }
        }
        let inspected = transport.acted.iter().any(|(_, i)| i.is_some());
        let found = transport.acted.iter().any(|(_, i)| matches!(i, Some((_, Outcome::Irregularity { .. }))));
        if found {
            self.revenue_recovered += truth.revenue_at_stake;
        }
        if completed && truth.smuggling {
            self.smuggling_transports += 1;
            self.smuggling_found += u64::from(found);
            self.smuggling_uninspected += u64::from(!inspected);
        }
    }
}

/// One transport's checkpoints as played.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransportRisk {
    pub read: u64,
    pub missing: u64,
    pub skipped: u64,
    pub errors: u64,
    /// Per assessment read: its lane and, when inspected and recorded, the selector and outcome.
    pub acted: Vec<(Lane, Option<(String, Outcome)>)>,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::script::{Parties, messages};
    use crate::model::traffic::Traffic;
    use crate::model::world::World;

    fn assessment(operation: u16, office: &str, version: i64, at: &str, lane: Lane) -> Assessment {
        Assessment {
            operation,
            office: office.into(),
            lane,
            score: None,
            selected_by: "none".into(),
            declaration_version: version,
            assessed_at: at.into(),
        }
    }

    fn smuggling(revenue: f64) -> RiskTruth {
        RiskTruth { smuggling: true, revenue_at_stake: revenue, patterns: Vec::new(), period: 0 }
    }

    #[test]
    fn assessments_parse_from_the_documented_shape() {
        let body = r#"{"items": [
            {"guarantee_reference": "XH123000001", "operation": 2, "office": "LTMDK001", "trigger": "I15",
             "declaration_version": 1, "lane": "red", "score": 0.93, "reasons": ["score 0.93 > 0.9"],
             "selected_by": "model@gbm-3b1d5b666a00", "model_version": "gbm-3b1d5b666a00",
             "assessed_at": "2026-11-30T10:00:00Z"},
            {"guarantee_reference": "XH123000001", "operation": 1, "office": "BYSIM001", "trigger": "E9",
             "declaration_version": 0, "lane": "green", "score": null, "reasons": [], "selected_by": "none",
             "model_version": null, "assessed_at": "2026-11-30T09:59:59Z"}]}"#;
        let items = parse_assessments(body).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0],
            Assessment {
                operation: 2,
                office: "LTMDK001".into(),
                lane: Lane::Red,
                score: Some(0.93),
                selected_by: "model@gbm-3b1d5b666a00".into(),
                declaration_version: 1,
                assessed_at: "2026-11-30T10:00:00Z".into(),
            }
        );
        assert_eq!((items[1].lane, items[1].score), (Lane::Green, None));
        assert_eq!(parse_assessments(r#"{"items": []}"#).unwrap(), []);
        assert!(
            parse_assessments(r#"{"items": [{"operation": 1, "office": "X", "lane": "blue", "selected_by": "none"}]}"#)
                .unwrap_err()
                .contains("blue")
        );
        assert!(parse_assessments("[]").is_err());
    }

    #[test]
    fn customs_act_on_the_latest_assessment_of_their_office_else_of_their_administration() {
        let items = [
            assessment(1, "LT000001", 0, "2026-11-30T10:00:00Z", Lane::Green),
            assessment(1, "LT000001", 1, "2026-11-30T10:00:05Z", Lane::Red),
            assessment(1, "LT000002", 2, "2026-11-30T10:00:09Z", Lane::Yellow),
            assessment(2, "LT000003", 1, "2026-11-30T10:00:01Z", Lane::Yellow),
        ];
        assert_eq!(pick(&items, 1, "LT000001").map(|a| a.lane), Some(Lane::Red));
        assert_eq!(pick(&items, 2, "LT000001").map(|a| a.lane), Some(Lane::Yellow));
        assert_eq!(pick(&items, 3, "LT000001"), None);
        assert_eq!(pick(&[], 1, "LT000001"), None);
    }

    #[test]
    fn checkpoints_are_the_starts_and_ends_once_per_country_and_operation() {
        let traffic = Traffic::new(Arc::new(World::standard()), 3, 0.2);
        let parties = Parties::symbolic(traffic.world());
        let mut refused = 0;
        for t in traffic.iter().take(1500) {
            let script = messages(&t, &parties);
            let points = checkpoints(&t, &script);
            let declared = declared_countries(&script);
            let mut expected = 0;
            for op in &t.operations {
                match &op.play {
                    Play::Run(run) => {
                        let (start, end) = (run.start.country(), run.end.country());
                        expected += usize::from(declared.iter().any(|c| c == start.as_str()))
                            + usize::from(start != end && declared.iter().any(|c| c == end.as_str()));
                    }
                    Play::Refused { .. } => refused += 1,
                    Play::NotStarted => {}
                }
            }
            assert_eq!(points.len(), expected, "{}", t.reference);
            for p in &points {
                let (token, message) = &script[p.message];
                assert!(["I9", "I11"].contains(&message["type"].as_str().unwrap()), "{message}");
                assert_eq!(message["office"], p.office.as_str());
                assert_eq!(token, &p.token);
                let op = t.operations.iter().find(|o| o.sequence == p.operation).unwrap();
                let run = op.run().unwrap();
                assert!(run.start.as_str() == p.office || run.end.as_str() == p.office);
            }
            // In script order, so the worker meets them in turn.
            assert!(points.windows(2).all(|w| w[0].message < w[1].message));
        }
        assert!(refused > 0, "no refused operation to leave out");
    }

    #[test]
    fn red_finds_smuggling_more_often_than_yellow_and_never_finds_it_where_there_is_none() {
        let clean = RiskTruth::clean(0);
        let truth = smuggling(1234.5);
        let mut found = BTreeMap::new();
        for k in 0..10_000 {
            for lane in [Lane::Red, Lane::Yellow] {
                let outcome = inspect(lane, &truth, &mut inspection_rng(9, k, 0)).unwrap();
                if let Outcome::Irregularity { revenue } = outcome {
                    assert_eq!(revenue, 1234.5);
                    *found.entry(lane).or_insert(0) += 1;
                }
                assert_eq!(inspect(lane, &clean, &mut inspection_rng(9, k, 0)), Some(Outcome::Compliant));
            }
            assert_eq!(inspect(Lane::Green, &truth, &mut inspection_rng(9, k, 0)), None);
        }
        let share = |lane| f64::from(found[&lane]) / 10_000.0;
        assert!((share(Lane::Red) - FIND_RED).abs() < 0.015, "{}", share(Lane::Red));
        assert!((share(Lane::Yellow) - FIND_YELLOW).abs() < 0.02, "{}", share(Lane::Yellow));
    }

    #[test]
    fn results_carry_the_outcome_and_the_revenue() {
        let found = result_body("XH123000001", "LTMDK001", Lane::Red, Outcome::Irregularity { revenue: 812.25 });
        assert_eq!(found["guarantee_reference"], "XH123000001");
        assert_eq!(found["office"], "LTMDK001");
        assert_eq!(found["outcome"], "irregularity");
        assert_eq!(found["revenue"], 812.25);
        assert_eq!(found["findings"].as_array().unwrap().len(), 1);
        let compliant = result_body("XH123000001", "LTMDK001", Lane::Yellow, Outcome::Compliant);
        assert_eq!((compliant["outcome"].as_str(), compliant["revenue"].as_f64()), (Some("compliant"), Some(0.0)));
        assert_eq!(compliant["findings"], serde_json::json!([]));
        assert!(compliant["notes"].as_str().unwrap().contains("yellow"));
    }

    #[test]
    fn the_report_counts_revenue_once_per_transport_and_smuggling_left_uninspected() {
        let mut report = RiskReport { enabled: true, ..RiskReport::default() };
        let twice = TransportRisk {
            read: 2,
            acted: vec![
                (Lane::Red, Some(("rule:tobacco@2".into(), Outcome::Irregularity { revenue: 500.0 }))),
                (Lane::Yellow, Some(("model@gbm-1".into(), Outcome::Irregularity { revenue: 500.0 }))),
            ],
            ..TransportRisk::default()
        };
        report.add(&twice, &smuggling(500.0), true);
        let missed = TransportRisk {
            read: 1,
            acted: vec![(Lane::Yellow, Some(("model@gbm-1".into(), Outcome::Compliant)))],
            ..TransportRisk::default()
        };
        report.add(&missed, &smuggling(90.0), true);
        let green = TransportRisk { read: 1, missing: 1, acted: vec![(Lane::Green, None)], ..TransportRisk::default() };
        report.add(&green, &smuggling(70.0), true);
        report.add(&green, &RiskTruth::clean(0), true);
        assert_eq!(report.assessments_read, 5);
        assert_eq!(report.assessments_missing, 2);
        assert_eq!(report.lanes, BTreeMap::from([("green", 2), ("red", 1), ("yellow", 2)]));
        assert_eq!(report.inspections, BTreeMap::from([("red", 1), ("yellow", 2)]));
        assert_eq!(report.irregularities_found, 2);
        assert_eq!(report.revenue_recovered, 500.0);
        assert_eq!(report.by_selector["model@gbm-1"], Hits { inspected: 2, smuggling: 2, found: 1 });
        assert_eq!(report.by_selector["rule:tobacco@2"].hit_rate(), 1.0);
        assert_eq!((report.smuggling_transports, report.smuggling_found, report.smuggling_uninspected), (3, 1, 1));
        let json = report.to_json();
        assert_eq!(json["by_selector"]["model@gbm-1"]["hit_rate"], 0.5);
        assert_eq!(json["smuggling_uninspected"], 1);
    }
}
