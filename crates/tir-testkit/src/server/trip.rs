//! The parties of the TR → GE → AZ corridor (and of the further countries of
//! `MORE_CUSTOMS`), seeded through a `TestApp`'s admin routes, and a `Trip`
//! driving one guarantee along a route, one TIR operation at a time.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Reply, TestApp};
use crate::fixtures::{
    HOLDER, MORE_CUSTOMS, OFFICE_WITHOUT_CUSTOMS, OTHER_HOLDER, ROUTE, WITHDRAWN_HOLDER, declaration,
    declaration_along, message, operations_of, reference,
};

/// Tokens of the seeded parties.
pub struct Corridor {
    pub tr: String,
    pub ge: String,
    pub az: String,
    /// Customs of a country off the itinerary.
    pub am: String,
    pub chain_a: String,
    pub chain_b: String,
    pub holder: String,
    pub other_holder: String,
    pub withdrawn_holder: String,
    /// Customs of the countries of `MORE_CUSTOMS`, by country.
    pub more: BTreeMap<&'static str, String>,
}

/// Offices the corridor registers: `ROUTE`'s and Armenia's with their own
/// roles, then `MORE_CUSTOMS`' and `OFFICE_WITHOUT_CUSTOMS` in every role.
pub const SEEDED_OFFICES: usize = 4 + MORE_CUSTOMS.len() + 1;
/// Parties the corridor registers: customs of TR, GE, AZ, AM and of
/// `MORE_CUSTOMS`, two chains and three holders.
pub const SEEDED_PARTIES: usize = 4 + MORE_CUSTOMS.len() + 2 + 3;
/// Holder records the corridor puts in the ITDB.
pub const SEEDED_HOLDERS: usize = 3;

impl Corridor {
    pub async fn seed(app: &TestApp) -> Corridor {
        const EVERY_ROLE: [&str; 4] = ["departure", "destination", "entry", "exit"];
        app.office("TR000100", &["departure", "exit"]).await;
        app.office("GE000100", &["entry", "exit"]).await;
        app.office("AZ000200", &["entry", "destination"]).await;
        app.office("AM000100", &EVERY_ROLE).await;
        for (_, office) in MORE_CUSTOMS {
            app.office(office, &EVERY_ROLE).await;
        }
        app.office(OFFICE_WITHOUT_CUSTOMS, &EVERY_ROLE).await;
        app.put_holder(HOLDER, "authorized").await;
        app.put_holder(OTHER_HOLDER, "authorized").await;
        app.put_holder(WITHDRAWN_HOLDER, "withdrawn").await;
        let mut more = BTreeMap::new();
        for (country, _) in MORE_CUSTOMS {
            more.insert(country, app.customs(country).await);
        }
        Corridor {
            tr: app.customs("TR").await,
            ge: app.customs("GE").await,
            az: app.customs("AZ").await,
            am: app.customs("AM").await,
            chain_a: app.chain("Chain A").await,
            chain_b: app.chain("Chain B").await,
            holder: app.holder_party(HOLDER).await,
            other_holder: app.holder_party(OTHER_HOLDER).await,
            withdrawn_holder: app.holder_party(WITHDRAWN_HOLDER).await,
            more,
        }
    }

    pub fn customs(&self, country: &str) -> &str {
        match country {
            "TR" => &self.tr,
            "GE" => &self.ge,
            "AZ" => &self.az,
            "AM" => &self.am,
            other => self.more.get(other).unwrap_or_else(|| panic!("no customs party for {other}")),
        }
    }
}

/// One accepted message: who sent what, and the answer.
#[derive(Debug, Clone)]
pub struct Sent {
    pub token: String,
    pub body: Value,
    pub reply: Reply,
}

/// Drives one guarantee through the transport, asserting every step succeeds.
pub struct Trip<'a> {
    pub app: &'a TestApp,
    pub c: &'a Corridor,
    pub reference: String,
    pub sent: Vec<Sent>,
    /// The itinerary, each country with the office its customs act through.
    pub stops: Vec<(&'static str, &'static str)>,
    /// The advance data E9 sends.
    pub declaration: Value,
}

impl<'a> Trip<'a> {
    /// A trip along `ROUTE` (TR → GE → AZ) with `fixtures::declaration`.
    pub fn new(app: &'a TestApp, c: &'a Corridor) -> Trip<'a> {
        Trip { app, c, reference: reference(), sent: Vec::new(), stops: ROUTE.to_vec(), declaration: declaration() }
    }

    /// A trip through `countries`, each acting through its office of
    /// `fixtures::office_of`, with `fixtures::declaration_along` them.
    pub fn through(app: &'a TestApp, c: &'a Corridor, countries: &[&'static str]) -> Trip<'a> {
        let stops: Vec<(&'static str, &'static str)> =
            countries.iter().map(|c| (*c, crate::fixtures::office_of(c))).collect();
        let declaration = declaration_along(&stops);
        Trip { app, c, reference: reference(), sent: Vec::new(), stops, declaration }
    }

    /// The office `country`'s customs act through on this trip.
    pub fn office(&self, country: &str) -> &'static str {
        self.stops
            .iter()
            .find(|(c, _)| *c == country)
            .map(|(_, o)| *o)
            .unwrap_or_else(|| panic!("{country} is off the trip"))
    }

    /// The TIR operations of the itinerary, each as its countries.
    pub fn operations(&self) -> Vec<Vec<&'static str>> {
        let itinerary: Vec<&str> = self.stops.iter().map(|(c, _)| *c).collect();
        operations_of(&itinerary)
    }

    fn first(&self) -> &'static str {
        self.stops[0].0
    }

    pub fn path(&self) -> String {
        format!("/v1/guarantees/{}", self.reference)
    }

    async fn ok(&mut self, token: &str, body: Value, response_type: &str) -> Value {
        let reply = self.app.post(token, &body).await;
        assert_eq!(reply.status, 200, "{body}: {}", reply.text);
        assert!(reply.content_type.starts_with("application/json"), "{:?}", reply.content_type);
        let json = reply.json();
        assert_eq!(json["type"], response_type, "{}", reply.text);
        assert_eq!(json["message_id"], body["message_id"]);
        assert_eq!(json["guarantee"]["reference"], self.reference.as_str());
        self.sent.push(Sent { token: token.to_owned(), body, reply });
        json
    }

    pub async fn register(&mut self) -> Value {
        let body = message("E1", &self.reference, json!({"holder": HOLDER, "valid_until": "2099-12-31"}));
        let c = self.c;
        self.ok(&c.chain_a, body, "E2").await
    }

    pub async fn advance(&mut self) -> Value {
        let body = message("E9", &self.reference, json!({"declaration": self.declaration}));
        let c = self.c;
        self.ok(&c.holder, body, "E10").await
    }

    /// I1 by the customs of departure, at the first office.
    pub async fn accept(&mut self) -> Value {
        let (country, office) = self.stops[0];
        let body = message("I1", &self.reference, json!({"office": office}));
        let c = self.c;
        self.ok(c.customs(country), body, "I2").await
    }

    /// I7 by the customs of departure: the advance data recorded (version 1).
    pub async fn record(&mut self) -> Value {
        let (country, office) = self.stops[0];
        let body = message("I7", &self.reference, json!({"office": office}));
        let c = self.c;
        self.ok(c.customs(country), body, "I8").await
    }

    /// Any accepted message, with `response_type` its answer's type.
    pub async fn send_ok(&mut self, token: &str, body: Value, response_type: &str) -> Value {
        self.ok(token, body, response_type).await
    }

    /// I9 in `country`: the first operation reports the declared seals.
    pub async fn start(&mut self, country: &str) -> Value {
        let mut fields = json!({"office": self.office(country)});
        if country == self.first() {
            fields["seals"] = self.declaration["seals"].clone();
        }
        let body = message("I9", &self.reference, fields);
        let c = self.c;
        self.ok(c.customs(country), body, "I10").await
    }

    /// I11 in `country`, without reservations.
    pub async fn terminate(&mut self, country: &str) -> Value {
        let body = message("I11", &self.reference, json!({"office": self.office(country), "reservations": []}));
        let c = self.c;
        self.ok(c.customs(country), body, "I12").await
    }

    /// I13 by the customs of `country`, where an operation terminated.
    pub async fn discharge(&mut self, country: &str) -> Value {
        let body = message("I13", &self.reference, json!({"office": self.office(country)}));
        let c = self.c;
        self.ok(c.customs(country), body, "I14").await
    }

    /// Starts the operation at `index` in its first country and terminates it in its last.
    pub async fn pass(&mut self, index: usize) {
        let op = self.operations()[index].clone();
        self.start(op[0]).await;
        self.terminate(op[op.len() - 1]).await;
    }

    /// E1, E9, I1: the guarantee is accepted, the declaration not yet recorded.
    pub async fn up_to_accepted(&mut self) {
        self.register().await;
        self.advance().await;
        self.accept().await;
    }

    /// E1, E9, I1, I7: the guarantee is accepted and the declaration recorded.
    pub async fn up_to_recorded(&mut self) {
        self.up_to_accepted().await;
        self.record().await;
    }

    /// The whole transport, one TIR operation at a time: each started in its
    /// first country and terminated in its last, then each discharged by the
    /// customs where it terminated.
    pub async fn full(&mut self) {
        self.up_to_recorded().await;
        let operations = self.operations();
        for index in 0..operations.len() {
            self.pass(index).await;
        }
        for op in &operations {
            self.discharge(op[op.len() - 1]).await;
        }
    }
}
