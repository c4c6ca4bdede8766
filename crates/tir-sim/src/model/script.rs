//! The script of one transport: its messages in order (E1, E9, I1, I7, then
//! for each TIR operation I9, perhaps X1, and I11, or I17 for a refused one,
//! then I13 for each terminated operation), each with the bearer token of the
//! party that sends it.

use std::collections::HashMap;

use serde_json::{Value, json};
use tir_model::party::Party;
use tir_model::{Country, OfficeCode, TirId};

use super::traffic::{Control, Play, Transport};
use super::world::World;

/// Bearer tokens of the parties a world needs.
#[derive(Debug, Clone, Default)]
pub struct Parties {
    pub customs: HashMap<Country, String>,
    /// Parallel to `World::chains`.
    pub chains: Vec<String>,
    pub holders: HashMap<TirId, String>,
}

impl Parties {
    /// Tokens that name their party (`customs:LT`, `chain:0`,
    /// `holder:LTU/012/345`), for driving the pure state machine.
    pub fn symbolic(world: &World) -> Parties {
        Parties {
            customs: world.countries().into_iter().map(|c| (c, format!("customs:{c}"))).collect(),
            chains: (0..world.chains.len()).map(|i| format!("chain:{i}")).collect(),
            holders: world
                .holders
                .iter()
                .map(|h| (h.record.tir_id.clone(), format!("holder:{}", h.record.tir_id)))
                .collect(),
        }
    }

    /// The party a symbolic token names (the inverse of `symbolic`), so the
    /// model's messages can drive the state machine or the store's engine
    /// without authentication; `None` for any other token.
    pub fn symbolic_party(token: &str) -> Option<Party> {
        let (kind, rest) = token.split_once(':')?;
        let id = token.to_owned();
        match kind {
            "customs" => Some(Party::Customs { id, country: Country::parse(rest).ok()? }),
            "chain" => rest.parse::<usize>().ok().map(|_| Party::GuaranteeChain { id }),
            "holder" => Some(Party::Holder { id, tir_id: TirId::parse(rest).ok()? }),
            _ => None,
        }
    }
}

/// Who sends a message and through which office.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    pub token: String,
    pub office: String,
}

/// One TIR operation of a scripted transport.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptOperation {
    /// I9 by `start` with `start_fields`, X1 by `incident`, I11 by `end` with
    /// `end_fields`, then I13 by `end`'s customs. Fields are merged into the
    /// message (`seals`, `operation_id`, `controls`, `reservations`...).
    Run { start: Side, start_fields: Value, incident: Option<(Side, Value)>, end: Side, end_fields: Value },
    /// I17 by `side` with `fields` (`reason`, `controls`).
    Refused { side: Side, fields: Value },
    /// After a refusal: no message.
    NotStarted,
}

impl ScriptOperation {
    /// Started at `start` and terminated at `end` with `seals` at both, no more.
    pub fn plain(start: Side, end: Side, seals: &[String]) -> ScriptOperation {
        ScriptOperation::Run {
            start,
            start_fields: json!({"seals": seals}),
            incident: None,
            end,
            end_fields: json!({"seals": seals, "reservations": []}),
        }
    }
}

/// The senders, offices and declaration of one full transport.
pub struct Script<'a> {
    pub reference: &'a str,
    pub chain_token: &'a str,
    pub holder_tir_id: &'a str,
    pub holder_token: &'a str,
    pub declaration: &'a Value,
    /// Customs of departure: I1 and I7 at this office.
    pub departure: Side,
    /// In sequence order, one per TIR operation.
    pub operations: Vec<ScriptOperation>,
}

impl Script<'_> {
    /// E1, E9, I1, I7, then I9 (X1) I11 or I17 for each operation, then I13
    /// for each terminated one, each with its sender's token. Message ids are
    /// `{reference}-{n:02}`.
    pub fn messages(&self) -> Vec<(String, Value)> {
        let mut n = 0;
        let reference = self.reference;
        let mut message = |kind: &str, office: Option<&str>, extra: &Value| {
            n += 1;
            let mut body =
                json!({"message_id": format!("{reference}-{n:02}"), "type": kind, "guarantee_reference": reference});
            if let Some(body) = body.as_object_mut() {
                if let Some(office) = office {
                    body.insert("office".to_owned(), json!(office));
                }
                if let Value::Object(extra) = extra {
                    body.extend(extra.clone());
                }
            }
            body
        };
        let departure = Some(self.departure.office.as_str());
        let mut out = vec![
            (self.chain_token.to_owned(), message("E1", None, &json!({"holder": self.holder_tir_id}))),
            (self.holder_token.to_owned(), message("E9", None, &json!({"declaration": self.declaration}))),
            (self.departure.token.clone(), message("I1", departure, &json!({}))),
            (self.departure.token.clone(), message("I7", departure, &json!({}))),
        ];
        let mut discharges = Vec::new();
        for op in &self.operations {
            match op {
                ScriptOperation::Run { start, start_fields, incident, end, end_fields } => {
                    out.push((start.token.clone(), message("I9", Some(&start.office), start_fields)));
                    if let Some((side, fields)) = incident {
                        out.push((side.token.clone(), message("X1", Some(&side.office), fields)));
                    }
                    out.push((end.token.clone(), message("I11", Some(&end.office), end_fields)));
                    discharges.push(end);
                }
                ScriptOperation::Refused { side, fields } => {
                    out.push((side.token.clone(), message("I17", Some(&side.office), fields)));
                }
                ScriptOperation::NotStarted => {}
            }
        }
        for end in discharges {
            out.push((end.token.clone(), message("I13", Some(&end.office), &json!({}))));
        }
        out
    }
}

/// The full life cycle of `transport`, each message with its sender's token.
///
/// # Panics
/// When `parties` lacks a token the transport needs: parties must be
/// bootstrapped from the same world as the traffic.
pub fn messages(transport: &Transport, parties: &Parties) -> Vec<(String, Value)> {
    let token = |found: Option<&String>, what: &dyn std::fmt::Display| -> String {
        found.unwrap_or_else(|| panic!("no token for {what}: bootstrap the parties of this world first")).clone()
    };
    let chain = token(parties.chains.get(transport.chain), &format!("guarantee chain {}", transport.chain));
    let holder = token(parties.holders.get(&transport.holder), &transport.holder);
    let side = |office: &OfficeCode| Side {
        token: token(parties.customs.get(&office.country()), &format!("customs of {}", office.country())),
        office: office.as_str().to_owned(),
    };
    let controls = |controls: &[Control]| -> Value { controls.iter().map(Control::to_json).collect() };
    let operations = transport
        .operations
        .iter()
        .map(|op| match &op.play {
            Play::Run(run) => {
                let mut start_fields = json!({"seals": run.start_seals, "operation_id": run.operation_id});
                if !run.start_controls.is_empty() {
                    start_fields["controls"] = controls(&run.start_controls);
                }
                let mut end_fields = json!({"seals": run.end_seals, "reservations": run.reservations});
                if !run.end_controls.is_empty() {
                    end_fields["controls"] = controls(&run.end_controls);
                }
                let incident = run.incident.as_ref().map(|i| {
                    let mut fields = json!({"kind": i.kind, "description": i.description});
                    if let Some(seals) = &i.new_seals {
                        fields["new_seals"] = json!(seals);
                    }
                    (side(&i.office), fields)
                });
                ScriptOperation::Run {
                    start: side(&run.start),
                    start_fields,
                    incident,
                    end: side(&run.end),
                    end_fields,
                }
            }
            Play::Refused { office, reason, controls: c } => ScriptOperation::Refused {
                side: side(office),
                fields: json!({"reason": reason, "controls": controls(c)}),
            },
            Play::NotStarted => ScriptOperation::NotStarted,
        })
        .collect();
    Script {
        reference: &transport.reference,
        chain_token: &chain,
        holder_tir_id: transport.holder.as_str(),
        holder_token: &holder,
        declaration: &transport.declaration,
        departure: side(transport.departure()),
        operations,
    }
    .messages()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tir_model::Timestamp;
    use tir_model::exchange::apply;
    use tir_model::guarantee::{GuaranteeState, OperationState};
    use tir_model::message::Request;

    use super::*;
    use crate::model::traffic::Traffic;

    fn traffic(seed: u64, share: f64) -> Traffic {
        Traffic::new(Arc::new(World::standard()), seed, share)
    }

    #[test]
    fn every_symbolic_token_names_its_party_and_no_other_token_does() {
        let world = World::standard();
        let parties = Parties::symbolic(&world);
        for (country, token) in &parties.customs {
            let party = Parties::symbolic_party(token);
            assert_eq!(party, Some(Party::Customs { id: token.clone(), country: *country }));
        }
        for token in &parties.chains {
            assert_eq!(Parties::symbolic_party(token), Some(Party::GuaranteeChain { id: token.clone() }));
        }
        for (tir_id, token) in &parties.holders {
            let party = Parties::symbolic_party(token);
            assert_eq!(party, Some(Party::Holder { id: token.clone(), tir_id: tir_id.clone() }));
        }
        for other in ["tirhub_0123abcd", "customs:XX", "chain:first", "holder:LTU", "admin:0", ""] {
            assert_eq!(Parties::symbolic_party(other), None, "{other}");
        }
    }

    #[test]
    fn full_life_cycles_run_through_the_state_machine_and_release_the_guarantees() {
        let traffic = traffic(3, 0.2);
        let world = traffic.world();
        let parties = Parties::symbolic(world);
        let mut now = 1_780_000_000_000;
        let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
        for t in traffic.iter().take(1500) {
            let mut guarantee = None;
            for (token, message) in messages(&t, &parties) {
                let request = Request::parse(&message).unwrap_or_else(|e| panic!("{e:?}: {message}"));
                now += 1000;
                let sender = Parties::symbolic_party(&token).unwrap();
                let outcome = apply(world, &sender, &request, guarantee.as_ref(), Timestamp::from_unix_ms(now))
                    .unwrap_or_else(|e| {
                        panic!("{} {}: {e:?}\n{message}\n{:#}", t.reference, message["type"], t.declaration)
                    });
                guarantee = Some(outcome.guarantee);
            }
            let g = guarantee.unwrap();
            assert_eq!(g.state, GuaranteeState::Released, "{}", t.reference);
            let planned = tir_model::operation::plan(&t.itinerary()).unwrap();
            assert_eq!(g.operations.len(), planned.len());
            assert_eq!(t.operations.len(), planned.len());
            for ((op, played), plan) in g.operations.iter().zip(&t.operations).zip(&planned) {
                assert_eq!(op.countries, plan.countries());
                assert_eq!(played.countries, plan.countries());
                match &played.play {
                    Play::Run(run) => {
                        *seen.entry("run").or_default() += 1;
                        assert_eq!(op.state, OperationState::Discharged);
                        assert_eq!(op.reservations, run.reservations);
                        assert_eq!(op.operation_id.as_ref().map(|id| id.as_str()), Some(run.operation_id.as_str()));
                        assert_eq!(op.controls.len(), run.start_controls.len() + run.end_controls.len());
                        assert_eq!(op.findings.len(), usize::from(run.seal_finding), "{}", t.reference);
                        assert_eq!(op.incidents.len(), usize::from(run.incident.is_some()));
                        // The start at the operation's first country, the end at its last.
                        assert_eq!(run.start.country(), plan.countries()[0]);
                        assert_eq!(run.end.country(), *plan.countries().last().unwrap());
                        *seen.entry("finding").or_default() += usize::from(run.seal_finding);
                        *seen.entry("incident").or_default() += usize::from(run.incident.is_some());
                        *seen.entry("controls").or_default() += usize::from(!run.start_controls.is_empty());
                        *seen.entry("physical irregularity").or_default() += run
                            .start_controls
                            .iter()
                            .filter(|c| c.kind == "physical" && c.result == "irregularity")
                            .count();
                    }
                    Play::Refused { .. } => {
                        *seen.entry("refused").or_default() += 1;
                        assert_ne!(op.sequence, 1);
                        assert_eq!(op.state, OperationState::Refused);
                    }
                    Play::NotStarted => assert_eq!(op.state, OperationState::Pending),
                }
            }
            // Exit of one operation and entry of the next: two sides of one crossing.
            for pair in t.operations.windows(2) {
                if let (Some(a), Some(b)) = (pair[0].run(), pair[1].run()) {
                    assert_ne!(a.end.country(), b.start.country());
                }
            }
        }
        for what in ["run", "refused", "finding", "incident", "controls", "physical irregularity"] {
            assert!(seen.get(what).is_some_and(|n| *n > 0), "no {what} in 1500 transports: {seen:?}");
        }
    }
}
