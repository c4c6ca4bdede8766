//! The parties of the TR → GE → AZ corridor, seeded through a `TestApp`'s
//! admin routes, and a `Trip` driving one guarantee along it.

use serde_json::{Value, json};

use super::{Reply, TestApp};
use crate::fixtures::{
    HOLDER, OTHER_HOLDER, ROUTE, SEAL, WITHDRAWN_HOLDER, declaration, message, office_of, reference,
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
}

impl Corridor {
    pub async fn seed(app: &TestApp) -> Corridor {
        app.office("TR000100", &["departure", "exit"]).await;
        app.office("GE000100", &["entry", "exit"]).await;
        app.office("AZ000200", &["entry", "destination"]).await;
        app.office("AM000100", &["departure", "destination", "entry", "exit"]).await;
        app.put_holder(HOLDER, "authorized").await;
        app.put_holder(OTHER_HOLDER, "authorized").await;
        app.put_holder(WITHDRAWN_HOLDER, "withdrawn").await;
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
        }
    }

    pub fn customs(&self, country: &str) -> &str {
        match country {
            "TR" => &self.tr,
            "GE" => &self.ge,
            "AZ" => &self.az,
            "AM" => &self.am,
            other => panic!("no customs party for {other}"),
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
}

impl<'a> Trip<'a> {
    pub fn new(app: &'a TestApp, c: &'a Corridor) -> Trip<'a> {
        Trip { app, c, reference: reference(), sent: Vec::new() }
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
        let body = message("E9", &self.reference, json!({"declaration": declaration()}));
        let c = self.c;
        self.ok(&c.holder, body, "E10").await
    }

    pub async fn accept(&mut self) -> Value {
        let body = message("I1", &self.reference, json!({"office": "TR000100"}));
        let c = self.c;
        self.ok(&c.tr, body, "I2").await
    }

    pub async fn record(&mut self) -> Value {
        let body = message("I7", &self.reference, json!({"office": "TR000100"}));
        let c = self.c;
        self.ok(&c.tr, body, "I8").await
    }

    pub async fn start(&mut self, country: &str) -> Value {
        let mut fields = json!({"office": office_of(country)});
        if country == "TR" {
            fields["seals"] = json!([SEAL]);
        }
        let body = message("I9", &self.reference, fields);
        let c = self.c;
        self.ok(c.customs(country), body, "I10").await
    }

    pub async fn terminate(&mut self, country: &str) -> Value {
        let body = message("I11", &self.reference, json!({"office": office_of(country), "reservations": []}));
        let c = self.c;
        self.ok(c.customs(country), body, "I12").await
    }

    pub async fn discharge(&mut self, country: &str) -> Value {
        let body = message("I13", &self.reference, json!({"office": office_of(country)}));
        let c = self.c;
        self.ok(c.customs(country), body, "I14").await
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

    /// The whole transport: start and terminate in each country, then discharge each.
    pub async fn full(&mut self) {
        self.up_to_recorded().await;
        for (country, _) in ROUTE {
            self.start(country).await;
            self.terminate(country).await;
        }
        for (country, _) in ROUTE {
            self.discharge(country).await;
        }
    }
}
