use super::*;
use tir_model::fallback::{FallbackPeriod, FallbackScope, missing};

/// A minute in ms from the run's start: the times the offices wrote on paper.
fn at(minutes: i64) -> Timestamp {
    Timestamp::from_unix_ms(start_time().unix_ms() + minutes * MINUTE_MS)
}

fn late(mut body: Value, occurred_at: Timestamp) -> Value {
    body["fallback"] = json!(true);
    body["occurred_at"] = json!(occurred_at.to_rfc3339());
    body
}

fn declare(run: &mut Run, scope: &str, from: Timestamp) {
    let period = FallbackPeriod::declare(
        format!("fb-{scope}"),
        FallbackScope::parse(scope).unwrap(),
        "exchange unavailable".into(),
        from,
        "admin",
        run.now,
    )
    .unwrap();
    run.world.fallback.push(period);
}

/// Accepted, recorded, TR's operation started (minute 5 of the run); the
/// exchange is back at minute 30, when customs record what they did on paper.
fn started_in_tr() -> Run {
    let mut run = run_to(STARTED_TR);
    run.now = at(30);
    run
}

#[test]
fn a_start_recorded_in_fallback_is_exempt_from_281_while_the_previous_operation_is_started() {
    let mut run = started_in_tr();
    // Online, GE cannot start before TR's termination is recorded.
    run.rejects(&customs("GE"), i9(GE), 281, "/office");
    assert_eq!(run.op(0).started_at, Some(at(5)));
    declare(&mut run, "system", at(6));
    run.ok(&customs("GE"), late(i9(GE), at(8)));
    assert_eq!(run.op_states(), [OperationState::Started, OperationState::Started, OperationState::Pending]);
    assert_eq!(run.op(1).started_at, Some(at(8)), "the operation keeps the time at the office");
    let record = &run.op(1).recorded_late[0];
    assert_eq!((record.message_type.as_str(), record.occurred_at, record.period.as_str()), ("I9", at(8), "fb-system"));
    assert_eq!(record.received_at, run.now);
    // TR's termination, recorded late too, happened before GE's start.
    run.ok(&customs("TR"), late(i11(TR, &[]), at(7)));
    assert_eq!(run.op(0).terminated_at, Some(at(7)));
    let event = run.history.last().unwrap();
    assert_eq!(
        (event.occurred_at, event.fallback_period.as_deref(), event.at),
        (Some(at(7)), Some("fb-system"), run.now)
    );
}

#[test]
fn a_late_termination_after_the_next_start_is_281_by_occurred_at() {
    let mut run = started_in_tr();
    declare(&mut run, "system", at(6));
    run.ok(&customs("GE"), late(i9(GE), at(8)));
    // TR terminating after GE started would break "N starts once N-1 is terminated".
    run.rejects(&customs("TR"), late(i11(TR, &[]), at(9)), 281, "/occurred_at");
}

#[test]
fn a_late_start_before_the_previous_termination_is_281_by_occurred_at() {
    let mut run = started_in_tr();
    declare(&mut run, "system", at(6));
    run.ok(&customs("TR"), late(i11(TR, &[]), at(9)));
    run.rejects(&customs("GE"), late(i9(GE), at(8)), 281, "/occurred_at");
    run.ok(&customs("GE"), late(i9(GE), at(9)));
}

#[test]
fn a_late_start_before_the_previous_start_is_281() {
    let mut run = started_in_tr();
    // TR started at minute 5 of the run (received then, online).
    declare(&mut run, "system", at(0));
    run.rejects(&customs("GE"), late(i9(GE), at(2)), 281, "/occurred_at");
}

#[test]
fn a_late_termination_before_its_start_is_213_and_a_late_discharge_before_termination_285() {
    let mut run = started_in_tr();
    declare(&mut run, "TR", at(0));
    run.rejects(&customs("TR"), late(i11(TR, &[]), at(3)), 213, "/occurred_at");
    run.ok(&customs("TR"), late(i11(TR, &[]), at(7)));
    run.rejects(&customs("TR"), late(i13(TR), at(6)), 285, "/occurred_at");
    run.ok(&customs("TR"), late(i13(TR), at(7)));
    assert_eq!(run.op(0).discharged_at, Some(at(7)));
}

#[test]
fn fallback_outside_any_period_of_the_country_is_286() {
    let mut run = started_in_tr();
    run.rejects(&customs("TR"), late(i11(TR, &[]), at(7)), 286, "/occurred_at");
    declare(&mut run, "GE", at(6));
    run.rejects(&customs("TR"), late(i11(TR, &[]), at(7)), 286, "/occurred_at");
    declare(&mut run, "TR", at(8));
    run.rejects(&customs("TR"), late(i11(TR, &[]), at(7)), 286, "/occurred_at");
    run.ok(&customs("TR"), late(i11(TR, &[]), at(8)));
}

#[test]
fn occurred_at_in_the_future_is_102() {
    let mut run = started_in_tr();
    declare(&mut run, "TR", at(0));
    run.rejects(&customs("TR"), late(i11(TR, &[]), at(60)), 102, "/occurred_at");
}

#[test]
fn fallback_fields_parse_only_on_operation_messages_and_together() {
    let parse = |v: Value| Request::parse(&v).map_err(|e| (e.code.number(), e.pointer));
    let mut no_time = i9(GE);
    no_time["fallback"] = json!(true);
    assert_eq!(parse(no_time), Err((101, "/occurred_at".into())));
    let mut no_flag = i9(GE);
    no_flag["occurred_at"] = json!("2026-11-28T08:00:00Z");
    assert_eq!(parse(no_flag), Err((107, "/occurred_at".into())));
    let mut not_a_time = late(i9(GE), at(1));
    not_a_time["occurred_at"] = json!("28/11/2026");
    assert_eq!(parse(not_a_time), Err((103, "/occurred_at".into())));
    assert_eq!(parse(late(i1(TR), at(1))), Err((107, "/fallback".into())));
    let mut flag_text = late(i9(GE), at(1));
    flag_text["fallback"] = json!("yes");
    assert_eq!(parse(flag_text), Err((106, "/fallback".into())));
    for body in [i9(GE), i11(GE, &[]), i13(GE), i17(GE)] {
        let request = parse(late(body, at(1))).unwrap();
        assert!(request.fallback);
        assert_eq!(request.occurred_at, Some(at(1)));
    }
    let mut off = i9(GE);
    off["fallback"] = json!(false);
    assert_eq!(parse(off).unwrap().occurred_at, None);
}

#[test]
fn reconciliation_names_what_is_missing_until_released() {
    let mut run = started_in_tr();
    declare(&mut run, "system", at(6));
    run.ok(&customs("GE"), late(i9(GE), at(8)));
    let period = run.world.fallback[0].clone();
    assert!(period.had_open_operation(run.g()));
    let kinds = |g: &Guarantee| missing(g).iter().map(|m| m["kind"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(kinds(run.g()), ["termination", "termination", "release"]);
    run.ok(&customs("TR"), late(i11(TR, &[]), at(7)));
    run.ok(&customs("GE"), late(i11(GE, &[]), at(9)));
    assert_eq!(kinds(run.g()), ["discharge", "discharge", "release"]);
    run.drive([(customs("TR"), i13(TR)), (customs("GE"), i13(GE)), (customs("AZ"), i9(AZ))]);
    run.drive([(customs("AZ"), i11(AZ, &[])), (customs("AZ"), i13(AZ))]);
    assert_eq!(run.state(), GuaranteeState::Released);
    assert!(missing(run.g()).is_empty());
}
