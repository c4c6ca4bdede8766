//! `Declaration::parse` on JSON built from the fuzzer's bytes: either a
//! tree of its own, or the sample declaration with edits at paths made of the
//! declaration's keys (see `parsers::check_declaration`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

#[path = "../../crates/tir-model/tests/properties/parsers.rs"]
#[allow(dead_code)]
mod parsers;

use parsers::{KEYS, PathStep, WORDS};

#[derive(Arbitrary, Debug)]
enum Input {
    Tree(Json),
    Edited(Vec<Edit>),
}

#[derive(Arbitrary, Debug)]
struct Edit {
    path: Vec<Step>,
    value: Json,
}

#[derive(Arbitrary, Debug)]
enum Step {
    Key(u8),
    Index(u8),
    Remove,
    Push,
}

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Word(u8),
    Text(String),
    Array(Vec<Json>),
    Object(Vec<(Key, Json)>),
}

#[derive(Arbitrary, Debug)]
enum Key {
    Known(u8),
    Any(String),
}

fn key(k: Key) -> String {
    match k {
        Key::Known(i) => KEYS[usize::from(i) % KEYS.len()].to_owned(),
        Key::Any(s) => s,
    }
}

fn value(j: Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(b),
        Json::Int(n) => Value::from(n),
        Json::Float(x) => serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number),
        Json::Word(i) => Value::from(WORDS[usize::from(i) % WORDS.len()]),
        Json::Text(s) => Value::String(s),
        Json::Array(items) => Value::Array(items.into_iter().map(value).collect()),
        Json::Object(fields) => {
            Value::Object(fields.into_iter().map(|(k, v)| (key(k), value(v))).collect::<Map<_, _>>())
        }
    }
}

fuzz_target!(|input: Input| {
    let declaration = match input {
        Input::Tree(tree) => value(tree),
        Input::Edited(edits) => {
            let mut d = parsers::sample_declaration();
            for e in edits {
                let path: Vec<PathStep> = e
                    .path
                    .into_iter()
                    .map(|s| match s {
                        Step::Key(i) => PathStep::Key(KEYS[usize::from(i) % KEYS.len()]),
                        Step::Index(i) => PathStep::Index(i),
                        Step::Remove => PathStep::Remove,
                        Step::Push => PathStep::Push,
                    })
                    .collect();
                parsers::edit(&mut d, &path, value(e.value));
            }
            d
        }
    };
    parsers::check_declaration(&declaration);
});
