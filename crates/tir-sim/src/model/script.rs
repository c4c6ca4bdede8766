//! The script of one transport: its messages in order (E1, E9, I1, I7, then
//! I9 and I11 in each country, then I13 in each), each with the bearer token
//! of the party that sends it.

use std::collections::HashMap;

use serde_json::{Value, json};
use tir_model::party::Party;
use tir_model::{Country, TirId};

use super::traffic::Transport;
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

/// One country of a scripted transport.
pub struct ScriptLeg<'a> {
    pub token: &'a str,
    pub office: &'a str,
    pub reservations: &'a [String],
}

/// The senders, offices and declaration of one full transport.
pub struct Script<'a> {
    pub reference: &'a str,
    pub chain_token: &'a str,
    pub holder_tir_id: &'a str,
    pub holder_token: &'a str,
    pub declaration: &'a Value,
    /// Seals presented at every start (I9).
    pub seals: &'a [String],
    /// In itinerary order; the first leg's office is the departure office.
    pub legs: Vec<ScriptLeg<'a>>,
}

impl Script<'_> {
    /// E1, E9, I1, I7, then I9 and I11 in each country, then I13 in each,
    /// each with its sender's token. Message ids are `{reference}-{n:02}`.
    pub fn messages(&self) -> Vec<(String, Value)> {
        let mut n = 0;
        let reference = self.reference;
        let mut message = |kind: &str, extra: Value| {
            n += 1;
            let mut body =
                json!({"message_id": format!("{reference}-{n:02}"), "type": kind, "guarantee_reference": reference});
            if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
                body.extend(extra);
            }
            body
        };
        let departure = &self.legs[0];
        let mut out = vec![
            (self.chain_token.to_owned(), message("E1", json!({"holder": self.holder_tir_id}))),
            (self.holder_token.to_owned(), message("E9", json!({"declaration": self.declaration}))),
            (departure.token.to_owned(), message("I1", json!({"office": departure.office}))),
            (departure.token.to_owned(), message("I7", json!({"office": departure.office}))),
        ];
        for leg in &self.legs {
            out.push((leg.token.to_owned(), message("I9", json!({"office": leg.office, "seals": self.seals}))));
            out.push((
                leg.token.to_owned(),
                message("I11", json!({"office": leg.office, "reservations": leg.reservations})),
            ));
        }
        for leg in &self.legs {
            out.push((leg.token.to_owned(), message("I13", json!({"office": leg.office}))));
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
    let customs: Vec<String> = transport
        .legs
        .iter()
        .map(|l| token(parties.customs.get(&l.country), &format!("customs of {}", l.country)))
        .collect();
    let offices: Vec<&str> = transport.legs.iter().map(|l| l.office.as_str()).collect();
    // Seals are compared as a set: present them in another order than declared.
    let seals: Vec<String> = transport.seals.iter().rev().cloned().collect();
    Script {
        reference: &transport.reference,
        chain_token: &chain,
        holder_tir_id: transport.holder.as_str(),
        holder_token: &holder,
        declaration: &transport.declaration,
        seals: &seals,
        legs: transport
            .legs
            .iter()
            .enumerate()
            .map(|(i, leg)| ScriptLeg { token: &customs[i], office: offices[i], reservations: &leg.reservations })
            .collect(),
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
        for t in traffic.iter().take(300) {
            let mut guarantee = None;
            for (token, message) in messages(&t, &parties) {
                let request = Request::parse(&message).unwrap_or_else(|e| panic!("{e:?}: {message}"));
                now += 1000;
                let sender = Parties::symbolic_party(&token).unwrap();
                let outcome = apply(world, &sender, &request, guarantee.as_ref(), Timestamp::from_unix_ms(now))
                    .unwrap_or_else(|e| panic!("{} {}: {e:?}", t.reference, message["type"]));
                guarantee = Some(outcome.guarantee);
            }
            let g = guarantee.unwrap();
            assert_eq!(g.state, GuaranteeState::Released, "{}", t.reference);
            assert_eq!(g.operations.len(), t.legs.len());
            for (op, leg) in g.operations.iter().zip(&t.legs) {
                assert_eq!(op.state, OperationState::Discharged);
                assert_eq!(op.reservations, leg.reservations);
            }
        }
    }
}
