//! Issue 14: the authorization matrix, generated from tables. Every party
//! kind (the admin; a guarantee chain, own or foreign; a holder, own, foreign,
//! or foreign and withdrawn in the ITDB; customs of the office's country, of
//! another country on the itinerary, off the itinerary, each through its own
//! office and through another country's; revoked parties; no, an unknown or
//! two tokens) × every message type of binding v2 in a state where it is valid
//! for its sender, and every query route → the expected answer, each with the
//! binding rule it comes from.
//!
//! For each message column a transport is brought to the state where the
//! message is valid for the right sender; every other party sends it first
//! (each refusal leaves the transport as it was), then the right sender, whose
//! answer must not be a refusal. A party other than the right sender that the
//! binding also allows gets a transport of its own in the same state.
//!
//! The corridor is BY → LT → PL: two TIR territories, so two TIR operations
//! (1: BY; 2: the Union, LT and PL), which makes "another country of the same
//! operation" a row of its own. Armenia is off the itinerary.

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use tir_testkit::server::*;

on_both_stores!(authorization_matrix);

/// The itinerary: operation 1 in Belarus, operation 2 in the Union (LT, PL).
const ITINERARY: [&str; 3] = ["BY", "LT", "PL"];
/// Customs of a country off the itinerary (with an office in every role).
const OFF: &str = "AM";
/// The customs parties of the rows: the itinerary's and one off it.
const CUSTOMS: [&str; 4] = ["BY", "LT", "PL", OFF];

/// The office each customs party acts through (every role in the registry).
fn office(country: &str) -> &'static str {
    match country {
        "BY" => "BY000100",
        "LT" => "LT000100",
        "PL" => "PL000100",
        "AM" => "AM000100",
        other => panic!("no office for {other}"),
    }
}

// ---- The rules: each expectation names the binding's sentence it comes from.

const R_TOKEN: &str = "Parties and authentication: missing or unknown token (a revoked party's: 'the token stops working'), or more than one Authorization header: 401/390";
const R_KIND: &str = "Messages, column sender + Parties: a party acting outside its rights (another kind's message type; the admin sends none): 403/380";
const R_CHAIN: &str =
    "Rights: a chain acts only on the guarantees it registered; a message on another's guarantee: 422/331";
const R_HOLDER: &str =
    "Rights: a holder acts only on guarantees issued to its own tir_id; a message on another's: 422/320";
const R_OFFICE: &str = "Rights: customs of X act only through offices of country X: 403/380";
const R_ITINERARY: &str = "Rights: customs of X act only when X is in the itinerary: 403/380";
const R_E1_ANY_CHAIN: &str = "Messages, E1: a guarantee chain registers a new guarantee (no chain owns it yet)";
const R_READ_ADMIN: &str = "(binding silent on the admin's reads) the operator of the international system reads every transport (tir-model may_read)";
const R_READ_CHAIN: &str =
    "Rights: a chain reads only the guarantees it registered; a read outside its rights: 403/380";
const R_READ_HOLDER: &str =
    "Rights: a holder reads only guarantees issued to its tir_id; a read outside its rights: 403/380";
const R_READ_CUSTOMS: &str =
    "Rights: customs of X read a transport only when X is in its itinerary; a read outside its rights: 403/380";
const R_ROUTE_301: &str = "Rights: a route naming a guarantee that does not exist is 404/301 (Errors: 301 before 380)";
const R_MESSAGE_301: &str =
    "Rights: a message naming a guarantee that does not exist is 422/301; Messages: 301 answers before 380/331/320";
const R_ANYONE: &str = "Queries (I3, I19, E7/I15): any authenticated party (the feed is the caller's own)";
const R_ADMIN_ONLY: &str = "Admin routes: the admin's only; any other party acts outside its rights: 403/380";
const R_RISK_CUSTOMS: &str =
    "docs/risk.md, architecture.md: the risk routes are customs only, 403/380 for any other party";
const R_RISK_ALLOWED: &str = "docs/risk.md, architecture.md: customs of any administration, on its own records";
const R_RISK_TRANSPORT: &str =
    "risk routes naming a transport: customs whose country is on its itinerary (as they read it), else 403/380";
const R_RISK_PROFILE: &str =
    "risk profiles: another administration's profile answers exactly as none, 404/183 (architecture.md, Rule profiles)";
const R_RISK_POLICY: &str = "risk policies: an office of the caller's own administration only, else 400/180";

/// What a case must answer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// A success (2xx): the binding allows this sender here, in this state.
    Allow,
    /// This error code, with the binding's status for it.
    Code(u16),
    /// This error code with HTTP 404: the thing the route names does not exist.
    NotFound(u16),
}

/// Who the row is, as far as the rules tell parties apart.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// No token, an unknown one, two, or a revoked party's.
    Unauthenticated,
    Admin,
    Chain {
        own: bool,
    },
    Holder {
        own: bool,
    },
    Customs(&'static str),
}

#[derive(Clone)]
enum Auth {
    Nothing,
    Two(String, String),
    Token(String),
}

#[derive(Clone)]
struct Row {
    label: String,
    kind: Kind,
    auth: Auth,
}

/// The parties of the matrix, customs once each (`message_cases` has each act through every office).
fn rows(c: &Corridor, admin: &str, revoked: &[(String, String)]) -> Vec<Row> {
    let token =
        |label: &str, kind: Kind, token: &str| Row { label: label.to_owned(), kind, auth: Auth::Token(token.into()) };
    let mut rows = vec![
        Row { label: "no token".into(), kind: Kind::Unauthenticated, auth: Auth::Nothing },
        token("unknown token", Kind::Unauthenticated, "tirhub_0123456789abcdef0123456789abcdef"),
        Row {
            label: "two Authorization headers".into(),
            kind: Kind::Unauthenticated,
            auth: Auth::Two(c.chain_a.clone(), c.holder.clone()),
        },
    ];
    for (label, t) in revoked {
        rows.push(token(label, Kind::Unauthenticated, t));
    }
    rows.extend([
        token("admin", Kind::Admin, admin),
        token("own chain", Kind::Chain { own: true }, &c.chain_a),
        token("foreign chain", Kind::Chain { own: false }, &c.chain_b),
        token("own holder", Kind::Holder { own: true }, &c.holder),
        token("foreign holder", Kind::Holder { own: false }, &c.other_holder),
        token("foreign holder, withdrawn", Kind::Holder { own: false }, &c.withdrawn_holder),
    ]);
    for country in CUSTOMS {
        rows.push(token(&format!("customs {country}"), Kind::Customs(country), c.customs(country)));
    }
    rows
}

impl Row {
    async fn call(&self, app: &TestApp, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let body = body.map(|b| b.to_string().into_bytes());
        match &self.auth {
            Auth::Token(token) => app.call(method, path, Some(token), body).await,
            Auth::Nothing => app.call_with_headers(method, path, &[("content-type", "application/json")], body).await,
            Auth::Two(a, b) => {
                let (a, b) = (format!("Bearer {a}"), format!("Bearer {b}"));
                let headers = [
                    ("authorization", a.as_str()),
                    ("authorization", b.as_str()),
                    ("content-type", "application/json"),
                ];
                app.call_with_headers(method, path, &headers, body).await
            }
        }
    }
}

// ---- Message columns.

/// How far a transport along `ITINERARY` has come.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
enum State {
    /// A reference no guarantee has.
    Unregistered,
    Registered,
    /// E1, E9.
    Advance,
    /// E1, E9, I1.
    Accepted,
    /// ... I7 by BY.
    Recorded,
    /// ... I9 by BY.
    FirstStarted,
    /// ... I11 by BY at its office (exit role).
    FirstTerminated,
    /// ... I9 by LT at its office (entry role).
    SecondStarted,
    /// ... E11 by the holder in LT, waiting for LT's I7.
    AmendmentWaiting,
    /// FirstTerminated, I13 by BY, I9 by LT, I11 by PL at the destination.
    SecondTerminated,
    /// E1, then I1 by BY without advance data: a declaration lodged nationally.
    AcceptedNationally,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sender {
    Chain,
    Holder,
    /// Customs of this country through its office.
    Customs(&'static str),
}

struct Column {
    label: &'static str,
    kind: &'static str,
    sender: Sender,
    state: State,
    /// Why the right sender may send it here.
    rule: &'static str,
    /// Customs of the itinerary's other countries, each through its own
    /// office: what the binding answers and why.
    others: &'static [(&'static str, Expect, &'static str)],
}

const R_I1_LATER: &str = "I1: customs of a later operation, even with a departure office of the declaration, get 380";
const R_I7_FIRST: &str = "I7: before recording, only customs of the first operation's territory (380 otherwise)";
const R_I7_283: &str = "I7: after recording, it accepts the amendment waiting for the sender's country (none: 283)";
const R_I9_281: &str = "I9: the earliest pending operation whose countries include the office's country; operation N starts only when N-1 is terminated (281)";
const R_I9_SAME_OP: &str =
    "I9: a later operation starts at any office with the entry role; PL is a country of operation 2";
const R_STATE_211: &str =
    "Messages: no operation in the state the message needs: the state found, 211 (already terminated)";
const R_STATE_213: &str =
    "Messages: no operation in the state the message needs: the state found, 213 (not yet started)";
const R_I11_LAST: &str =
    "Operations, offices: the last operation terminates only at a declared destination office (380 otherwise)";
const R_I13_OTHER: &str = "I13: customs of another country than the terminating office's: 380";
/// Cells where the binding reads two ways: pinned to what the code answers,
/// listed at the end of the run and in the report of issue 14.
const AMBIGUOUS: &str = "AMBIGUOUS";
const AMBIGUOUS_I13_213: &str = "AMBIGUOUS: I13 '(customs of another country than the terminating office's: 380)' read literally gives 380 \
     (operation 1 terminated at BY, the sender is LT or PL); the code reads the parenthesis as about the sender's own operation \
     and names its state (Messages: 'the answer names the state found', 213 pending)";
const AMBIGUOUS_I13_212: &str = "AMBIGUOUS: I13 '(customs of another country than the terminating office's: 380)' read literally gives 380 \
     (operation 2 terminated at PL, the sender is BY); the code names the sender's own operation's state, 212 (already discharged)";
const R_I17_SAME_OP: &str =
    "I17: the earliest pending operation of the office's country; PL is a country of operation 2";
const R_X1_SAME_OP: &str = "X1: recorded on the sender country's started operation; PL is a country of operation 2";
const R_X1_213: &str = "X1: recorded on the sender country's started operation (none: 213)";

fn columns() -> Vec<Column> {
    use Expect::{Allow, Code};
    use Sender::{Chain, Customs, Holder};
    use State::*;
    vec![
        Column {
            label: "E1 register",
            kind: "E1",
            sender: Chain,
            state: Unregistered,
            rule: "Messages, E1: sender guarantee_chain",
            others: &[],
        },
        Column {
            label: "E3 cancel (accepted)",
            kind: "E3",
            sender: Chain,
            state: Accepted,
            rule: "Messages, E3: sender guarantee_chain, its own guarantee",
            others: &[],
        },
        Column {
            label: "E9 advance data",
            kind: "E9",
            sender: Holder,
            state: Registered,
            rule: "Messages, E9: sender holder, its own guarantee",
            others: &[],
        },
        Column {
            label: "E11 before recording",
            kind: "E11",
            sender: Holder,
            state: Advance,
            rule: "Messages, E11: before recording, replaces the advance data",
            others: &[],
        },
        Column {
            label: "E11 en route (country LT)",
            kind: "E11",
            sender: Holder,
            state: SecondStarted,
            rule: "Messages, E11: after recording, an amendment in a country whose operation is started",
            others: &[],
        },
        Column {
            label: "E13 withdraw",
            kind: "E13",
            sender: Holder,
            state: Advance,
            rule: "Messages, E13: withdraws advance data not yet recorded",
            others: &[],
        },
        Column {
            label: "I1 accept",
            kind: "I1",
            sender: Customs("BY"),
            state: Advance,
            rule: "I1: customs of departure, at a declared departure office of the first operation",
            others: &[("LT", Code(380), R_I1_LATER), ("PL", Code(380), R_I1_LATER)],
        },
        Column {
            label: "I7 record",
            kind: "I7",
            sender: Customs("BY"),
            state: Accepted,
            rule: "I7: customs of the first operation's territory at I1's office record the declaration",
            others: &[("LT", Code(380), R_I7_FIRST), ("PL", Code(380), R_I7_FIRST)],
        },
        Column {
            label: "I7 record a declaration lodged nationally",
            kind: "I7",
            sender: Customs("BY"),
            state: AcceptedNationally,
            rule: "I7: a declaration lodged nationally comes in I7 without E9, from the customs that accepted",
            others: &[("LT", Code(380), R_I7_FIRST), ("PL", Code(380), R_I7_FIRST)],
        },
        Column {
            label: "I7 accept amendment (LT)",
            kind: "I7",
            sender: Customs("LT"),
            state: AmendmentWaiting,
            rule: "I7: after recording, the customs of the amendment's country accept it",
            others: &[("BY", Code(283), R_I7_283), ("PL", Code(283), R_I7_283)],
        },
        Column {
            label: "I9 start operation 1",
            kind: "I9",
            sender: Customs("BY"),
            state: Recorded,
            rule: "Operations: the first operation starts at a declared departure office (I9 after I7)",
            others: &[("LT", Code(281), R_I9_281), ("PL", Code(281), R_I9_281)],
        },
        Column {
            label: "I9 start operation 2",
            kind: "I9",
            sender: Customs("LT"),
            state: FirstTerminated,
            rule: "Operations: a later operation starts at any office with the entry role",
            others: &[("BY", Code(211), R_STATE_211), ("PL", Allow, R_I9_SAME_OP)],
        },
        Column {
            label: "I11 terminate operation 1",
            kind: "I11",
            sender: Customs("BY"),
            state: FirstStarted,
            rule: "I11: that country's started operation terminates at an office with the exit role",
            others: &[("LT", Code(213), R_STATE_213), ("PL", Code(213), R_STATE_213)],
        },
        Column {
            label: "I11 terminate operation 2",
            kind: "I11",
            sender: Customs("PL"),
            state: SecondStarted,
            rule: "I11: the last operation terminates at a declared destination office",
            others: &[("BY", Code(211), R_STATE_211), ("LT", Code(380), R_I11_LAST)],
        },
        Column {
            label: "I13 discharge operation 1",
            kind: "I13",
            sender: Customs("BY"),
            state: FirstTerminated,
            rule: "I13: customs of the terminating office's country discharge",
            others: &[("LT", Code(213), AMBIGUOUS_I13_213), ("PL", Code(213), AMBIGUOUS_I13_213)],
        },
        Column {
            label: "I13 discharge operation 2",
            kind: "I13",
            sender: Customs("PL"),
            state: SecondTerminated,
            rule: "I13: customs of the terminating office's country discharge",
            others: &[("BY", Code(212), AMBIGUOUS_I13_212), ("LT", Code(380), R_I13_OTHER)],
        },
        Column {
            label: "I17 refuse operation 2",
            kind: "I17",
            sender: Customs("LT"),
            state: FirstTerminated,
            rule: "I17: the earliest pending operation of the office's country, after the previous one terminated",
            others: &[("BY", Code(211), R_STATE_211), ("PL", Allow, R_I17_SAME_OP)],
        },
        Column {
            label: "X1 incident on operation 1",
            kind: "X1",
            sender: Customs("BY"),
            state: FirstStarted,
            rule: "X1: recorded on the sender country's started operation",
            others: &[("LT", Code(213), R_X1_213), ("PL", Code(213), R_X1_213)],
        },
        Column {
            label: "X1 incident on operation 2",
            kind: "X1",
            sender: Customs("LT"),
            state: SecondStarted,
            rule: "X1: recorded on the sender country's started operation",
            others: &[("BY", Code(213), R_X1_213), ("PL", Allow, R_X1_SAME_OP)],
        },
    ]
}

/// The body fields of message type `kind` sent in `state`, customs acting through `office`.
fn fields(kind: &str, state: State, office: &str) -> Value {
    match kind {
        "E1" => json!({"holder": HOLDER, "valid_until": "2099-12-31"}),
        "E3" | "E13" => json!({"reason": "matrix"}),
        "E9" => json!({"declaration": declaration_through(&ITINERARY)}),
        "E11" if state >= State::Recorded => {
            json!({"declaration": declaration_through(&ITINERARY), "country": "LT"})
        }
        "E11" => json!({"declaration": declaration_through(&ITINERARY)}),
        "I7" if state == State::AcceptedNationally => {
            json!({"office": office, "declaration": declaration_through(&ITINERARY)})
        }
        "I1" | "I7" | "I13" => json!({"office": office}),
        "I9" => json!({"office": office, "seals": [SEAL]}),
        "I11" => json!({"office": office, "seals": [SEAL], "reservations": []}),
        "I17" => json!({"office": office, "reason": "matrix"}),
        "X1" => json!({"office": office, "kind": "other", "description": "matrix"}),
        other => panic!("no fields for {other}"),
    }
}

/// A transport along `ITINERARY` brought to `state`.
async fn prepare<'a>(app: &'a TestApp, c: &'a Corridor, state: State) -> Trip<'a> {
    use State::*;
    let mut trip = Trip::through(app, c, &ITINERARY);
    if state == AcceptedNationally {
        trip.register().await;
        let accept = message("I1", &trip.reference, json!({"office": office("BY")}));
        trip.send_ok(c.customs("BY"), accept, "I2").await;
        return trip;
    }
    let steps = [Registered, Advance, Accepted, Recorded, FirstStarted, FirstTerminated, SecondStarted];
    for step in steps {
        if state < step {
            return trip;
        }
        match step {
            Registered => {
                trip.register().await;
            }
            Advance => {
                trip.advance().await;
            }
            Accepted => {
                trip.accept().await;
            }
            Recorded => {
                trip.record().await;
            }
            FirstStarted => {
                trip.start("BY").await;
            }
            FirstTerminated => {
                trip.terminate("BY").await;
            }
            SecondStarted if state == SecondTerminated => {
                trip.discharge("BY").await;
                trip.start("LT").await;
            }
            SecondStarted => {
                trip.start("LT").await;
            }
            _ => unreachable!(),
        }
    }
    match state {
        AmendmentWaiting => {
            let body = message("E11", &trip.reference, json!({"declaration": trip.declaration, "country": "LT"}));
            trip.send_ok(&c.holder, body, "E12").await;
        }
        SecondTerminated => {
            trip.terminate("PL").await;
        }
        _ => {}
    }
    trip
}

/// One cell: a party, through an office when it is customs, and what it must get.
struct Case {
    row: Row,
    office: &'static str,
    expect: Expect,
    rule: &'static str,
    /// The column's right sender.
    right: bool,
}

/// The cells of a message column, generated from the rules.
fn message_cases(column: &Column, rows: &[Row]) -> Vec<Case> {
    let right_office = match column.sender {
        Sender::Customs(country) => office(country),
        // A customs party sending a chain's or a holder's message names no office.
        _ => office("BY"),
    };
    let mut cases = Vec::new();
    for row in rows {
        let case = |office: &'static str, (expect, rule): (Expect, &'static str), right: bool| Case {
            row: row.clone(),
            office,
            expect,
            rule,
            right,
        };
        match (row.kind, column.sender) {
            (Kind::Unauthenticated, _) => cases.push(case(right_office, (Expect::Code(390), R_TOKEN), false)),
            (Kind::Admin, _) => cases.push(case(right_office, (Expect::Code(380), R_KIND), false)),
            (Kind::Chain { own }, Sender::Chain) => {
                let expect = match (own, column.kind) {
                    (true, _) => (Expect::Allow, column.rule),
                    (false, "E1") => (Expect::Allow, R_E1_ANY_CHAIN),
                    (false, _) => (Expect::Code(331), R_CHAIN),
                };
                cases.push(case(right_office, expect, own));
            }
            (Kind::Holder { own }, Sender::Holder) => {
                let expect = if own { (Expect::Allow, column.rule) } else { (Expect::Code(320), R_HOLDER) };
                cases.push(case(right_office, expect, own));
            }
            (Kind::Customs(country), Sender::Customs(right)) => {
                // Every customs party through every office of the rows' countries.
                for acting in CUSTOMS.map(office) {
                    let expect = if &acting[..2] != country {
                        (Expect::Code(380), R_OFFICE)
                    } else if country == OFF {
                        (Expect::Code(380), R_ITINERARY)
                    } else if country == right {
                        (Expect::Allow, column.rule)
                    } else {
                        let (_, expect, rule) = column
                            .others
                            .iter()
                            .find(|(c, _, _)| *c == country)
                            .unwrap_or_else(|| panic!("{}: no expectation for customs {country}", column.label));
                        (*expect, *rule)
                    };
                    cases.push(case(acting, expect, country == right && acting == right_office));
                }
            }
            (Kind::Customs(_), _) => cases.push(case(right_office, (Expect::Code(380), R_KIND), false)),
            (Kind::Chain { .. } | Kind::Holder { .. }, _) => {
                cases.push(case(right_office, (Expect::Code(380), R_KIND), false))
            }
        }
    }
    cases
}

/// Whether `reply` is what `expect` says; the mismatch otherwise.
fn judge(reply: &Reply, expect: Expect) -> Result<(), String> {
    let code = serde_json::from_str::<Value>(&reply.text).ok().and_then(|b| b["error"]["code"].as_u64());
    let ok = match expect {
        Expect::Allow => (200..300).contains(&reply.status),
        Expect::Code(want) => reply.status == status_of(want) && code == Some(u64::from(want)),
        Expect::NotFound(want) => reply.status == 404 && code == Some(u64::from(want)),
    };
    if ok { Ok(()) } else { Err(format!("got {} {}", reply.status, reply.text.chars().take(300).collect::<String>())) }
}

/// Failures, each with its cell and its rule.
#[derive(Default)]
struct Tally {
    checked: usize,
    failures: Vec<String>,
    /// Cells whose rule the binding leaves open, pinned to the code's answer.
    ambiguous: Vec<String>,
    /// Every cell with its rule, printed when TIRHUB_MATRIX_PRINT is set.
    cells: Vec<String>,
}

impl Tally {
    fn record(&mut self, column: &str, row: &str, office: &str, expect: Expect, rule: &str, reply: &Reply) {
        self.checked += 1;
        self.cells.push(format!("{column} | {row} | {office} | {expect:?} | {} | {rule}", reply.status));
        if rule.starts_with(AMBIGUOUS) {
            self.ambiguous.push(format!("[{column}] {row} via {office}: {expect:?}"));
        }
        if let Err(got) = judge(reply, expect) {
            self.failures.push(format!("[{column}] {row} via {office}: expected {expect:?} ({rule}); {got}"));
        }
    }
}

/// The acting office as the matrix shows it: none for a type without `office`.
fn shown(kind: &str, office: &'static str) -> &'static str {
    if fields_of(kind).contains(&"office") { office } else { "-" }
}

async fn send_case(app: &TestApp, column: &Column, case: &Case, reference: &str) -> Reply {
    let body = message_of(column.kind, reference, &fields(column.kind, column.state, case.office));
    case.row.call(app, Method::POST, "/v1/messages", Some(&body)).await
}

async fn message_columns(app: &TestApp, c: &Corridor, rows: &[Row], tally: &mut Tally) {
    for column in columns() {
        let cases = message_cases(&column, rows);
        assert_eq!(cases.iter().filter(|k| k.right).count(), 1, "{}: one right sender", column.label);
        let trip = prepare(app, c, column.state).await;
        // The refusals first, all on the one transport: none of them changes it.
        let refused: Vec<&Case> = cases.iter().filter(|k| k.expect != Expect::Allow).collect();
        let replies = join_all(refused.iter().map(|k| send_case(app, &column, k, &trip.reference))).await;
        for (case, reply) in refused.iter().zip(&replies) {
            tally.record(column.label, &case.row.label, shown(column.kind, case.office), case.expect, case.rule, reply);
        }
        // Others the binding allows too, each on a transport of its own in the same state.
        for case in cases.iter().filter(|k| k.expect == Expect::Allow && !k.right) {
            let own = prepare(app, c, column.state).await;
            let reply = send_case(app, &column, case, &own.reference).await;
            tally.record(
                column.label,
                &case.row.label,
                shown(column.kind, case.office),
                case.expect,
                case.rule,
                &reply,
            );
        }
        // Last, the right sender on the transport every refusal left as it was.
        let right = cases.iter().find(|k| k.right).expect("a right sender");
        let reply = send_case(app, &column, right, &trip.reference).await;
        tally.record(
            column.label,
            &right.row.label,
            shown(column.kind, right.office),
            right.expect,
            right.rule,
            &reply,
        );
    }
}

const UNKNOWN_GUARANTEE_TYPES: [&str; 11] = ["E3", "E9", "E11", "E13", "I1", "I7", "I9", "I11", "I13", "I17", "X1"];

/// Every message type but E1 on a guarantee that does not exist: 301 comes
/// before the sender's rights, so every authenticated party gets it, whatever
/// its kind (customs through their own office).
async fn unknown_guarantee_columns(app: &TestApp, rows: &[Row], tally: &mut Tally) {
    let unknown = reference();
    for kind in UNKNOWN_GUARANTEE_TYPES {
        let label = format!("{kind} on an unknown guarantee");
        let cases: Vec<(&Row, &str, Expect, &str)> = rows
            .iter()
            .map(|row| match row.kind {
                Kind::Unauthenticated => (row, office("BY"), Expect::Code(390), R_TOKEN),
                Kind::Customs(country) => (row, office(country), Expect::Code(301), R_MESSAGE_301),
                _ => (row, office("BY"), Expect::Code(301), R_MESSAGE_301),
            })
            .collect();
        let bodies: Vec<Value> = cases
            .iter()
            .map(|(_, office, _, _)| message_of(kind, &unknown, &fields(kind, State::Registered, office)))
            .collect();
        let calls =
            cases.iter().zip(&bodies).map(|((row, ..), body)| row.call(app, Method::POST, "/v1/messages", Some(body)));
        let replies = join_all(calls).await;
        for ((row, office, expect, rule), reply) in cases.iter().zip(&replies) {
            tally.record(&label, &row.label, shown(kind, office), *expect, rule, reply);
        }
    }
}

// ---- Query columns.

/// Who may call a query route.
#[derive(Clone, Copy)]
enum Access {
    /// A transport's read: the rights on that guarantee; customs when their
    /// country is one of these (the itinerary known so far).
    Read(&'static [&'static str]),
    /// Any authenticated party.
    Anyone,
    /// A guarantee that does not exist: 404/301 for every authenticated party.
    Unknown,
    AdminOnly,
    /// Customs only, any administration (its own records).
    Customs,
    /// Customs only, of the transport's itinerary.
    CustomsOn(&'static [&'static str]),
    /// Customs only; another administration than `owner` gets `code`.
    Administration {
        owner: &'static str,
        code: u16,
        rule: &'static str,
    },
}

fn expect_query(access: Access, kind: Kind) -> (Expect, &'static str) {
    use Expect::{Allow, Code};
    match (access, kind) {
        (_, Kind::Unauthenticated) => (Code(390), R_TOKEN),
        (Access::Unknown, _) => (Expect::NotFound(301), R_ROUTE_301),
        (Access::Anyone, _) => (Allow, R_ANYONE),
        (Access::AdminOnly, Kind::Admin) => (Allow, "Admin routes"),
        (Access::AdminOnly, _) => (Code(380), R_ADMIN_ONLY),
        (Access::Read(_), Kind::Admin) => (Allow, R_READ_ADMIN),
        (Access::Read(_), Kind::Chain { own: true }) => (Allow, R_READ_CHAIN),
        (Access::Read(_), Kind::Chain { own: false }) => (Code(380), R_READ_CHAIN),
        (Access::Read(_), Kind::Holder { own: true }) => (Allow, R_READ_HOLDER),
        (Access::Read(_), Kind::Holder { own: false }) => (Code(380), R_READ_HOLDER),
        (Access::Read(on), Kind::Customs(country)) if on.contains(&country) => (Allow, R_READ_CUSTOMS),
        (Access::Read(_), Kind::Customs(_)) => (Code(380), R_READ_CUSTOMS),
        (Access::Customs | Access::CustomsOn(_) | Access::Administration { .. }, Kind::Customs(country)) => {
            match access {
                Access::CustomsOn(on) if !on.contains(&country) => (Code(380), R_RISK_TRANSPORT),
                Access::Administration { owner, code, rule } if owner != country => (Code(code), rule),
                _ => (Allow, R_RISK_ALLOWED),
            }
        }
        (Access::Customs | Access::CustomsOn(_) | Access::Administration { .. }, _) => (Code(380), R_RISK_CUSTOMS),
    }
}

struct Query {
    label: String,
    method: Method,
    path: String,
    /// The body, given the row's country when it is customs.
    body: Option<fn(&str, &Context) -> Value>,
    access: Access,
}

/// What the query columns name: transports and records made for them.
struct Context {
    /// A reference no guarantee has.
    unknown: String,
    registered: String,
    /// Accepted by BY without advance data (no itinerary yet).
    national: String,
    advance: String,
    recorded: String,
    /// A profile of BY's customs.
    profile: String,
    /// A party the admin may revoke.
    victim: String,
}

fn queries(x: &Context) -> Vec<Query> {
    const ON: &[&str] = &ITINERARY;
    let q = |label: &str, method: Method, path: String, access: Access| Query {
        label: label.to_owned(),
        method,
        path,
        body: None,
        access,
    };
    let with = |mut query: Query, body: fn(&str, &Context) -> Value| {
        query.body = Some(body);
        query
    };
    vec![
        q("E5/I5 unknown guarantee", Method::GET, format!("/v1/guarantees/{}", x.unknown), Access::Unknown),
        q("E5/I5 guarantee (registered)", Method::GET, format!("/v1/guarantees/{}", x.registered), Access::Read(&[])),
        q(
            "E5/I5 guarantee (accepted nationally)",
            Method::GET,
            format!("/v1/guarantees/{}", x.national),
            Access::Read(&["BY"]),
        ),
        q("E5/I5 guarantee (advance data)", Method::GET, format!("/v1/guarantees/{}", x.advance), Access::Read(ON)),
        q("E5/I5 guarantee (recorded)", Method::GET, format!("/v1/guarantees/{}", x.recorded), Access::Read(ON)),
        q(
            "declaration (advance data)",
            Method::GET,
            format!("/v1/guarantees/{}/declaration", x.advance),
            Access::Read(ON),
        ),
        q(
            "declaration v1 (recorded)",
            Method::GET,
            format!("/v1/guarantees/{}/declaration?version=1", x.recorded),
            Access::Read(ON),
        ),
        q("timeline (recorded)", Method::GET, format!("/v1/guarantees/{}/timeline", x.recorded), Access::Read(ON)),
        q("I3 holder", Method::GET, format!("/v1/holders/{}", encode(HOLDER)), Access::Anyone),
        q("I19 office", Method::GET, "/v1/offices/BY000100".into(), Access::Anyone),
        q("E7/I15 notifications", Method::GET, "/v1/notifications?limit=10".into(), Access::Anyone),
        q("journal verify", Method::GET, "/v1/admin/journal/verify".into(), Access::AdminOnly),
        with(
            q("admin: create party", Method::POST, "/v1/admin/parties".into(), Access::AdminOnly),
            |_, _| json!({"kind": "guarantee_chain", "name": "Matrix chain"}),
        ),
        with(
            q("admin: create office", Method::POST, "/v1/admin/offices".into(), Access::AdminOnly),
            |_, _| json!({"code": "AM000777", "country": "AM", "name": "Matrix", "roles": ["exit"]}),
        ),
        with(
            q(
                "admin: ITDB holder",
                Method::PUT,
                format!("/v1/admin/holders/{}", encode("TUR/012/777")),
                Access::AdminOnly,
            ),
            |_, _| json!({"name": "Matrix carrier", "country": "TR", "status": "authorized"}),
        ),
        q("admin: revoke party", Method::DELETE, format!("/v1/admin/parties/{}", x.victim), Access::AdminOnly),
        q(
            "risk: assessments (recorded)",
            Method::GET,
            format!("/v1/risk/assessments/{}", x.recorded),
            Access::CustomsOn(ON),
        ),
        with(
            q("risk: result (recorded)", Method::POST, "/v1/risk/results".into(), Access::CustomsOn(ON)),
            |country, x| json!({"guarantee_reference": x.recorded, "office": office(country), "outcome": "compliant"}),
        ),
        q("risk: stats", Method::GET, "/v1/risk/stats".into(), Access::Customs),
        with(
            q("risk: preview", Method::POST, "/v1/risk/profiles/preview".into(), Access::Customs),
            |_, _| json!({"expression": "true"}),
        ),
        q("risk: models", Method::GET, "/v1/risk/models".into(), Access::Customs),
        q("risk: policies", Method::GET, "/v1/risk/policies".into(), Access::Customs),
        with(q("risk: default policy", Method::PUT, "/v1/risk/policies/*".into(), Access::Customs), |_, _| json!({})),
        with(
            q(
                "risk: BY office's policy",
                Method::PUT,
                "/v1/risk/policies/BY000100".into(),
                Access::Administration { owner: "BY", code: 180, rule: R_RISK_POLICY },
            ),
            |_, _| json!({}),
        ),
        q("risk: profiles", Method::GET, "/v1/risk/profiles".into(), Access::Customs),
        with(q("risk: new profile", Method::POST, "/v1/risk/profiles".into(), Access::Customs), |_, _| draft()),
        q(
            "risk: BY's profile",
            Method::GET,
            format!("/v1/risk/profiles/{}", x.profile),
            Access::Administration { owner: "BY", code: 183, rule: R_RISK_PROFILE },
        ),
        with(
            q(
                "risk: edit BY's profile",
                Method::PUT,
                format!("/v1/risk/profiles/{}", x.profile),
                Access::Administration { owner: "BY", code: 183, rule: R_RISK_PROFILE },
            ),
            |_, _| draft(),
        ),
    ]
}

fn draft() -> Value {
    json!({
        "name": "Matrix", "expression": "total_value > 10000.0", "lane": "yellow", "selection_percent": 10,
        "weight": 1, "reason": "matrix", "valid_from": "2026-01-01", "valid_until": null, "office_scope": "all"
    })
}

async fn query_columns(app: &TestApp, rows: &[Row], x: &Context, tally: &mut Tally) {
    for query in queries(x) {
        let cases: Vec<(&Row, (Expect, &'static str), Option<Value>)> = rows
            .iter()
            .map(|row| {
                let country = match row.kind {
                    Kind::Customs(country) => country,
                    _ => "BY",
                };
                (row, expect_query(query.access, row.kind), query.body.map(|body| body(country, x)))
            })
            .collect();
        // Refusals first (a revocation or an office is made once, by the admin).
        let (refused, allowed): (Vec<_>, Vec<_>) = cases.iter().partition(|(_, (e, _), _)| *e != Expect::Allow);
        for batch in [refused, allowed] {
            let replies = join_all(
                batch.iter().map(|(row, _, body)| row.call(app, query.method.clone(), &query.path, body.as_ref())),
            )
            .await;
            for ((row, (expect, rule), _), reply) in batch.iter().zip(&replies) {
                tally.record(&query.label, &row.label, "-", *expect, rule, reply);
            }
        }
    }
}

/// A party created and revoked at once: its token must not work.
async fn revoked(app: &TestApp, body: Value) -> String {
    let created =
        app.call(Method::POST, "/v1/admin/parties", Some(&app.admin), Some(body.to_string().into_bytes())).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let created = created.json();
    let path = format!("/v1/admin/parties/{}", created["id"].as_str().expect("an id"));
    let reply = app.call(Method::DELETE, &path, Some(&app.admin), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    created["token"].as_str().expect("a token").to_owned()
}

async fn authorization_matrix(app: &TestApp) {
    let started = std::time::Instant::now();
    let c = Corridor::seed(app).await;
    let revoked = vec![
        ("revoked chain".to_owned(), revoked(app, json!({"kind": "guarantee_chain", "name": "Gone"})).await),
        (
            "revoked holder (own tir_id)".to_owned(),
            revoked(app, json!({"kind": "holder", "name": "Gone", "tir_id": HOLDER})).await,
        ),
        (
            "revoked customs BY".to_owned(),
            revoked(app, json!({"kind": "customs", "name": "Gone", "country": "BY"})).await,
        ),
    ];
    let rows = rows(&c, &app.admin, &revoked);
    let mut tally = Tally::default();
    message_columns(app, &c, &rows, &mut tally).await;
    unknown_guarantee_columns(app, &rows, &mut tally).await;

    let by = c.customs("BY");
    let created = app.call(Method::POST, "/v1/risk/profiles", Some(by), Some(draft().to_string().into_bytes())).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let victim = app
        .call(
            Method::POST,
            "/v1/admin/parties",
            Some(&app.admin),
            Some(json!({"kind": "guarantee_chain", "name": "Victim"}).to_string().into_bytes()),
        )
        .await
        .json();
    let context = Context {
        unknown: reference(),
        registered: prepare(app, &c, State::Registered).await.reference,
        national: prepare(app, &c, State::AcceptedNationally).await.reference,
        advance: prepare(app, &c, State::Advance).await.reference,
        recorded: prepare(app, &c, State::Recorded).await.reference,
        profile: created.json()["id"].as_str().expect("a profile id").to_owned(),
        victim: victim["id"].as_str().expect("a party id").to_owned(),
    };
    query_columns(app, &rows, &context, &mut tally).await;

    eprintln!(
        "authorization matrix: {} cases checked ({} parties; {} message columns, {} on an unknown guarantee, {} query columns) in {:.1} s, {} disagreeing",
        tally.checked,
        rows.len(),
        columns().len(),
        UNKNOWN_GUARANTEE_TYPES.len(),
        queries(&context).len(),
        started.elapsed().as_secs_f64(),
        tally.failures.len()
    );
    if std::env::var_os("TIRHUB_MATRIX_PRINT").is_some() {
        eprintln!("column | party | office | expected | HTTP status | rule");
        for cell in &tally.cells {
            eprintln!("{cell}");
        }
    }
    for cell in &tally.ambiguous {
        eprintln!("  binding ambiguous, pinned to the code's answer: {cell}");
    }
    assert!(
        tally.failures.is_empty(),
        "{} cases disagree with the binding:\n{}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
}
