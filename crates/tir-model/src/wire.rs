//! Reading JSON input field by field, so that every failure names its
//! contract code and the JSON pointer of the field.
//!
//! The order of errors within a body (binding v2, "Messages": 100 first, then
//! the other 1xx in the order of the fields) is implemented so:
//! - 100 for the whole body before anything else: not JSON, not one object,
//!   or a key given twice at any depth (`parse_body`, pointer at that key);
//! - then each object's parser reads its known fields in the contract's order,
//!   descending into nested objects as it meets them, and only once its known
//!   fields have parsed does it call `Obj::finish`, which refuses the first key
//!   not read with 107. "First" is in key order: `serde_json::Map` keeps its
//!   keys sorted (no `preserve_order`), so the document's order is not known
//!   here; sorted order is deterministic all the same;
//! - rules across fields of an object (180, e.g. the declaration's itinerary
//!   and offices) come after that object's `finish`.

use std::cell::{Cell, RefCell};
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{ErrorCode, EtirError, fail};
use crate::ids::ParseError;

/// Parses a request body: one JSON object, no key given twice at any depth.
/// Anything else is 100, at the root, or at the repeated key. Nesting stays
/// bounded by serde_json's recursion limit (128), which applies to this visitor.
pub fn parse_body(body: &[u8]) -> Result<Value, EtirError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = Node { duplicate: &duplicate }.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(EtirError::new(ErrorCode::InvalidMessage, "").with_detail("the body is not one JSON object")),
        Err(e) => match duplicate.into_inner() {
            Some(mut path) => {
                path.reverse();
                let key = path.last().cloned().unwrap_or_default();
                let pointer: String = path.iter().map(|s| format!("/{}", escape(s))).collect();
                Err(EtirError::new(ErrorCode::InvalidMessage, pointer)
                    .with_detail(format!("key {:?} given twice", echo(&key))))
            }
            None => Err(EtirError::new(ErrorCode::InvalidMessage, "").with_detail(format!("malformed JSON: {e}"))),
        },
    }
}

/// At most 32 characters of what a client sent, for an error's detail: an
/// answer never grows with the input (issue 14's finding; the fuzz targets
/// found identifiers and keys echoed whole).
pub fn echo(raw: &str) -> String {
    const ECHO_CHARS_MAX: usize = 32;
    match raw.char_indices().nth(ECHO_CHARS_MAX) {
        Some((end, _)) => format!("{}...", &raw[..end]),
        None => raw.to_owned(),
    }
}

/// A JSON pointer's reference token for `key` (RFC 6901: `~` is `~0`, `/` is `~1`).
fn escape(key: &str) -> std::borrow::Cow<'_, str> {
    if key.contains(['~', '/']) { key.replace('~', "~0").replace('/', "~1").into() } else { key.into() }
}

/// Builds a `Value` like serde_json's own visitor, refusing a key given twice.
/// On that refusal `duplicate` holds the path to the key, innermost first:
/// each enclosing object or array adds its own key or index as the error
/// passes through it, so nothing is spent on paths while all goes well.
#[derive(Clone, Copy)]
struct Node<'s> {
    duplicate: &'s RefCell<Option<Vec<String>>>,
}

impl Node<'_> {
    fn add_to_path(&self, segment: impl FnOnce() -> String) {
        if let Some(path) = self.duplicate.borrow_mut().as_mut() {
            path.push(segment());
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            match seq.next_element_seed(self) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    let index = items.len();
                    self.add_to_path(|| index.to_string());
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(vec![key]);
                return Err(de::Error::custom("a key given twice"));
            }
            match access.next_value_seed(self) {
                Ok(value) => {
                    map.insert(key, value);
                }
                Err(e) => {
                    self.add_to_path(|| key);
                    return Err(e);
                }
            }
        }
        Ok(Value::Object(map))
    }
}

/// Canonical JSON text: object keys sorted, no whitespace. Two bodies that
/// differ only in key order or spacing are the same message.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Maps an identifier parse failure to its contract code.
pub fn parse_error_code(error: ParseError) -> ErrorCode {
    match error {
        ParseError::Length => ErrorCode::WrongLength,
        ParseError::Pattern => ErrorCode::WrongFormat,
        ParseError::Unknown => ErrorCode::InvalidDomain,
        ParseError::UnknownCountry => ErrorCode::CountryNotFound,
    }
}

/// Parses one identifier found at `pointer`.
pub fn parse_at<T>(
    raw: &str,
    pointer: &str,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<T, EtirError> {
    parse(raw).map_err(|e| {
        EtirError::new(parse_error_code(e), pointer).with_detail(format!("{:?} is not accepted here", echo(raw)))
    })
}

/// A JSON object together with its pointer, and the keys its parser has
/// read: `finish` refuses any other (107).
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    pointer: &'a str,
    /// Bit i: the i-th key (in the map's order) was read. A parser reads far
    /// fewer than 64 keys, so a key past the 64th is never needed to find the
    /// first key not read.
    read: Cell<u64>,
}

/// A borrowed pointer would outlive nested values, so children own theirs.
pub struct OwnedObj<'a> {
    map: &'a Map<String, Value>,
    pointer: String,
}

impl<'a> OwnedObj<'a> {
    pub fn view(&self) -> Obj<'_> {
        Obj { map: self.map, pointer: &self.pointer, read: Cell::new(0) }
    }
}

impl<'a> Obj<'a> {
    /// The body (pointer "") must be an object (100); a nested value of another type is 106.
    pub fn new(value: &'a Value, pointer: &'a str) -> Result<Obj<'a>, EtirError> {
        match value {
            Value::Object(map) => Ok(Obj { map, pointer, read: Cell::new(0) }),
            _ if pointer.is_empty() => fail(ErrorCode::InvalidMessage, pointer),
            _ => fail(ErrorCode::WrongFormat, pointer),
        }
    }

    pub fn pointer(&self, key: &str) -> String {
        format!("{}/{}", self.pointer, escape(key))
    }

    /// A present, non-null value. Present or not, `key` counts as read.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        let (found, value) = self.map.get_key_value(key)?;
        // Compared by address: the map's own key, found above.
        if let Some(i) = self.map.keys().take(64).position(|k| std::ptr::eq(k, found)) {
            self.read.set(self.read.get() | 1 << i);
        }
        Some(value).filter(|v| !v.is_null())
    }

    /// Call once the object's fields are parsed: the first key (in key
    /// order) that its parser did not read is a field the message does not
    /// have, 107 at that key.
    pub fn finish(&self) -> Result<(), EtirError> {
        let read = self.read.get();
        match self.map.keys().enumerate().find(|(i, _)| *i >= 64 || read & (1 << i) == 0) {
            None => Ok(()),
            Some((_, key)) => Err(EtirError::new(ErrorCode::UnknownField, self.pointer(key))
                .with_detail(format!("{:?} is not a field here", echo(key)))),
        }
    }

    pub fn required(&self, key: &str) -> Result<&'a Value, EtirError> {
        self.get(key).ok_or_else(|| EtirError::new(ErrorCode::RequiredFieldMissing, self.pointer(key)))
    }

    pub fn str_opt(&self, key: &str) -> Result<Option<&'a str>, EtirError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => fail(ErrorCode::WrongFormat, self.pointer(key)),
        }
    }

    pub fn str(&self, key: &str) -> Result<&'a str, EtirError> {
        self.str_opt(key)?.ok_or_else(|| EtirError::new(ErrorCode::RequiredFieldMissing, self.pointer(key)))
    }

    /// Free text (a name, description, reason, remark): not blank, at most
    /// `chars_max` characters, line breaks and tabs allowed (see `check_text`).
    pub fn text(&self, key: &str, chars_max: usize) -> Result<String, EtirError> {
        let raw = self.str(key)?;
        check_text(raw, &self.pointer(key), chars_max, Text::Free)
    }

    pub fn text_opt(&self, key: &str, chars_max: usize) -> Result<Option<String>, EtirError> {
        match self.str_opt(key)? {
            None => Ok(None),
            Some(raw) => check_text(raw, &self.pointer(key), chars_max, Text::Free).map(Some),
        }
    }

    /// Text that names a thing (a registration number): as `text`, but no
    /// control character at all, line breaks and tabs included.
    pub fn id_text(&self, key: &str, chars_max: usize) -> Result<String, EtirError> {
        let raw = self.str(key)?;
        check_text(raw, &self.pointer(key), chars_max, Text::Identifier)
    }

    pub fn parse<T>(&self, key: &str, parse: impl FnOnce(&str) -> Result<T, ParseError>) -> Result<T, EtirError> {
        let raw = self.str(key)?;
        parse_at(raw, &self.pointer(key), parse)
    }

    pub fn parse_opt<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, EtirError> {
        match self.str_opt(key)? {
            None => Ok(None),
            Some(raw) => parse_at(raw, &self.pointer(key), parse).map(Some),
        }
    }

    pub fn object(&self, key: &str) -> Result<OwnedObj<'a>, EtirError> {
        let pointer = self.pointer(key);
        match self.required(key)? {
            Value::Object(map) => Ok(OwnedObj { map, pointer }),
            _ => fail(ErrorCode::WrongFormat, pointer),
        }
    }

    pub fn object_opt(&self, key: &str) -> Result<Option<OwnedObj<'a>>, EtirError> {
        if self.get(key).is_none() {
            return Ok(None);
        }
        self.object(key).map(Some)
    }

    /// An array of at most `items_max` items, each with its pointer.
    pub fn array(&self, key: &str, items_max: usize) -> Result<Vec<(String, &'a Value)>, EtirError> {
        let pointer = self.pointer(key);
        match self.required(key)? {
            Value::Array(items) if items.len() > items_max => fail(ErrorCode::WrongLength, pointer)
                .map_err(|e: EtirError| e.with_detail(format!("at most {items_max} items"))),
            Value::Array(items) => Ok(items.iter().enumerate().map(|(i, v)| (format!("{pointer}/{i}"), v)).collect()),
            _ => fail(ErrorCode::WrongFormat, pointer),
        }
    }

    pub fn array_opt(&self, key: &str, items_max: usize) -> Result<Option<Vec<(String, &'a Value)>>, EtirError> {
        if self.get(key).is_none() {
            return Ok(None);
        }
        self.array(key, items_max).map(Some)
    }

    /// A list of free-text strings (reservations).
    pub fn texts(&self, key: &str, items_max: usize, chars_max: usize) -> Result<Vec<String>, EtirError> {
        self.text_list(key, items_max, chars_max, Text::Free)
    }

    pub fn texts_opt(&self, key: &str, items_max: usize, chars_max: usize) -> Result<Option<Vec<String>>, EtirError> {
        if self.get(key).is_none() {
            return Ok(None);
        }
        self.texts(key, items_max, chars_max).map(Some)
    }

    /// A list of texts that name things (seal numbers): see `id_text`.
    pub fn id_texts_opt(
        &self,
        key: &str,
        items_max: usize,
        chars_max: usize,
    ) -> Result<Option<Vec<String>>, EtirError> {
        if self.get(key).is_none() {
            return Ok(None);
        }
        self.text_list(key, items_max, chars_max, Text::Identifier).map(Some)
    }

    fn text_list(&self, key: &str, items_max: usize, chars_max: usize, kind: Text) -> Result<Vec<String>, EtirError> {
        self.array(key, items_max)?
            .into_iter()
            .map(|(pointer, v)| match v {
                Value::String(s) => check_text(s, &pointer, chars_max, kind),
                Value::Null => fail(ErrorCode::RequiredFieldMissing, pointer),
                _ => fail(ErrorCode::WrongFormat, pointer),
            })
            .collect()
    }

    /// A finite number greater than zero and at most `max`: another number
    /// breaks a rule of the declaration (180), anything else is 106.
    pub fn positive_f64(&self, key: &str, max: f64) -> Result<f64, EtirError> {
        let pointer = self.pointer(key);
        match self.required(key)?.as_f64() {
            Some(n) if n.is_finite() && n > 0.0 && n <= max => Ok(n),
            Some(_) => Err(EtirError::new(ErrorCode::DeclarationRuleBroken, pointer)
                .with_detail(format!("must be > 0 and <= {max}"))),
            None => fail(ErrorCode::WrongFormat, pointer),
        }
    }

    /// A whole number greater than zero and at most `max`: a number with a
    /// fraction is 104, a whole one out of range 180, anything else 106.
    pub fn positive_i64(&self, key: &str, max: i64) -> Result<i64, EtirError> {
        let pointer = self.pointer(key);
        let value = self.required(key)?;
        match value.as_i64() {
            Some(n) if n > 0 && n <= max => Ok(n),
            Some(_) => Err(EtirError::new(ErrorCode::DeclarationRuleBroken, pointer)
                .with_detail(format!("a whole number > 0 and <= {max}"))),
            None if value.is_number() => fail(ErrorCode::NotAnInteger, pointer),
            None => fail(ErrorCode::WrongFormat, pointer),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    /// May hold line breaks and tabs.
    Free,
    /// Holds no control character.
    Identifier,
}

/// A text's checks, in this order: only white space or invisible characters
/// (or nothing) is missing, 101; more than `chars_max` characters, 105; a
/// control character (other than a line break or tab in free text) or a
/// bidirectional control (U+202A–U+202E, U+2066–U+2069), 106.
fn check_text(raw: &str, pointer: &str, chars_max: usize, kind: Text) -> Result<String, EtirError> {
    // Most text is printable ASCII: one pass over the bytes decides it.
    let (chars, blank, refused) = if raw.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        (raw.len(), raw.bytes().all(|b| b == b' '), None)
    } else {
        let (mut chars, mut blank, mut refused) = (0, true, None);
        for c in raw.chars() {
            chars += 1;
            blank &= is_invisible(c);
            if refused.is_none() && is_refused(c, kind) {
                refused = Some(c);
            }
        }
        (chars, blank, refused)
    };
    if blank {
        return Err(EtirError::new(ErrorCode::RequiredFieldMissing, pointer)
            .with_detail("only white space or invisible characters"));
    }
    if chars > chars_max {
        return Err(
            EtirError::new(ErrorCode::WrongLength, pointer).with_detail(format!("at most {chars_max} characters"))
        );
    }
    if let Some(c) = refused {
        return Err(EtirError::new(ErrorCode::WrongFormat, pointer)
            .with_detail(format!("U+{:04X} is not allowed here", u32::from(c))));
    }
    Ok(raw.to_owned())
}

/// Unicode White_Space, and the zero-width characters that show nothing.
fn is_invisible(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

fn is_refused(c: char, kind: Text) -> bool {
    let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    let control = c.is_control() && !(kind == Text::Free && matches!(c, '\n' | '\r' | '\t'));
    bidi || control
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code_of<T: fmt::Debug>(r: Result<T, EtirError>) -> (u16, String) {
        let e = r.unwrap_err();
        (e.code.number(), e.pointer)
    }

    #[test]
    fn malformed_json_or_not_one_object_is_100_at_the_root() {
        for body in [&b"{\"a\":"[..], b"", b"[1]", b"\"x\"", b"null", b"{} {}", b"\xff", b"{\"a\": 1,}"] {
            assert_eq!(code_of(parse_body(body)), (100, String::new()), "{}", String::from_utf8_lossy(body));
        }
        assert!(parse_body(b" {\"a\": [1, 2.5, null, true, \"s\", {}]} ").is_ok());
    }

    #[test]
    fn a_key_given_twice_is_100_at_that_key_at_any_depth() {
        assert_eq!(code_of(parse_body(br#"{"a": 1, "a": 1}"#)), (100, "/a".into()));
        let nested = br#"{"declaration": {"vehicle": {"country": "TR", "registration": "X", "country": "GE"}}}"#;
        assert_eq!(code_of(parse_body(nested)), (100, "/declaration/vehicle/country".into()));
        let in_array = br#"{"c": [{"g": []}, {"g": [{"h": 1, "h": 2}]}]}"#;
        assert_eq!(code_of(parse_body(in_array)), (100, "/c/1/g/0/h".into()));
        let escaped = br#"{"a/b": {"~": 1, "~": 2}}"#;
        assert_eq!(code_of(parse_body(escaped)), (100, "/a~1b/~0".into()));
        // The same key in two objects is no duplicate.
        assert!(parse_body(br#"{"a": {"k": 1}, "b": {"k": 1}, "k": [{"k": 1}, {"k": 2}]}"#).is_ok());
    }

    #[test]
    fn nesting_stays_bounded_by_the_recursion_limit() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(code_of(parse_body(deep.as_bytes())), (100, String::new()));
        let shallow = format!("{{\"a\":{}{}}}", "[".repeat(120), "]".repeat(120));
        assert!(parse_body(shallow.as_bytes()).is_ok());
    }

    #[test]
    fn parse_body_builds_what_serde_json_builds() {
        let text = br#"{"n": [-1, 18446744073709551615, 1.5e300, 0.1], "s": "\u00e9\n", "o": {"z": null, "a": false}}"#;
        assert_eq!(parse_body(text).unwrap(), serde_json::from_slice::<Value>(text).unwrap());
    }

    #[test]
    fn a_key_not_read_is_107_after_the_keys_read() {
        let v = json!({"a": "x", "b": null, "c": "y", "z": 1});
        let o = Obj::new(&v, "/d").unwrap();
        o.str("a").unwrap();
        o.str("c").unwrap();
        assert_eq!(code_of(o.finish()), (107, "/d/b".into()));
        assert!(o.str_opt("b").unwrap().is_none());
        assert_eq!(code_of(o.finish()), (107, "/d/z".into()));
        o.get("z");
        o.get("absent");
        o.finish().unwrap();
        let empty = json!({});
        Obj::new(&empty, "").unwrap().finish().unwrap();
    }

    #[test]
    fn a_view_of_a_nested_object_tracks_its_own_keys() {
        let v = json!({"o": {"k": 1, "x/y": 2}});
        let o = Obj::new(&v, "").unwrap();
        let inner = o.object("o").unwrap();
        let inner = inner.view();
        inner.get("k");
        o.finish().unwrap();
        assert_eq!(code_of(inner.finish()), (107, "/o/x~1y".into()));
    }

    #[test]
    fn past_64_keys_the_first_not_read_is_still_found() {
        let map: Map<String, Value> = (0..100).map(|i| (format!("k{i:03}"), json!(i))).collect();
        let v = Value::Object(map);
        let o = Obj::new(&v, "").unwrap();
        for i in 0..64 {
            o.get(&format!("k{i:03}"));
        }
        o.get("k099");
        assert_eq!(code_of(o.finish()), (107, "/k064".into()));
    }

    #[test]
    fn free_text_may_break_lines_and_identifiers_may_not() {
        let v = json!({"t": "line one\nline two\r\n\tend", "nul": "a\u{0}b", "del": "a\u{7f}b", "c1": "a\u{85}b"});
        let o = Obj::new(&v, "").unwrap();
        assert!(o.text("t", 100).is_ok());
        assert_eq!(code_of(o.id_text("t", 100)), (106, "/t".into()));
        for key in ["nul", "del", "c1"] {
            assert_eq!(code_of(o.text(key, 100)), (106, format!("/{key}")));
            assert_eq!(code_of(o.id_text(key, 100)), (106, format!("/{key}")));
        }
        let seals = json!({"s": ["TR-1", "TR-\t2"], "r": ["ok", "two\nlines"]});
        let o = Obj::new(&seals, "").unwrap();
        assert_eq!(code_of(o.id_texts_opt("s", 5, 10)), (106, "/s/1".into()));
        assert_eq!(o.texts("r", 5, 20).unwrap().len(), 2);
    }

    #[test]
    fn bidirectional_controls_are_106() {
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            let v = json!({"t": format!("abc{c}def")});
            let o = Obj::new(&v, "").unwrap();
            assert_eq!(code_of(o.text("t", 100)), (106, "/t".into()), "U+{:04X}", u32::from(c));
            assert_eq!(code_of(o.id_text("t", 100)).0, 106);
        }
        // Other marks of direction and ordinary non-ASCII text pass.
        let v = json!({"t": "Gürcistan \u{200E} Тбилиси"});
        assert!(Obj::new(&v, "").unwrap().text("t", 100).is_ok());
    }

    #[test]
    fn only_white_space_or_invisible_characters_is_missing() {
        for blank in
            ["", " ", "\u{200B}", " \u{200C}\u{200D}\u{2060}\u{FEFF}", "\u{00A0}\u{3000}", "\n\t \r", "\u{2028}"]
        {
            let v = json!({"t": blank});
            let o = Obj::new(&v, "").unwrap();
            assert_eq!(code_of(o.text("t", 100)), (101, "/t".into()), "{blank:?}");
            assert_eq!(code_of(o.id_text("t", 100)), (101, "/t".into()), "{blank:?}");
        }
        let v = json!({"t": "\u{200B}x"});
        assert!(Obj::new(&v, "").unwrap().text("t", 100).is_ok());
    }

    #[test]
    fn text_length_counts_characters() {
        let v = json!({"t": "é".repeat(5), "u": "é".repeat(6)});
        let o = Obj::new(&v, "").unwrap();
        assert!(o.text("t", 5).is_ok());
        assert_eq!(code_of(o.text("u", 5)), (105, "/u".into()));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| json!(n)),
                "[a-z é\n\"]{0,8}".prop_map(Value::String),
            ]
        }

        /// Any JSON value, objects keyed from a small alphabet so that keys repeat across objects.
        fn value() -> impl Strategy<Value = Value> {
            scalar().prop_recursive(4, 32, 5, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map("[a-d/~]{1,2}", inner, 0..5)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// `object` as JSON text with its key `key` (added if absent) written twice.
        fn with_key_twice(object: &Map<String, Value>, key: &str, inner: &str) -> String {
            let mut parts: Vec<String> = object
                .iter()
                .filter(|(k, _)| k.as_str() != key)
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), v))
                .collect();
            let at = parts.len() / 2;
            let k = Value::String(key.to_owned());
            parts.insert(at, format!("{k}:{inner}"));
            parts.push(format!("{k}:1"));
            format!("{{{}}}", parts.join(","))
        }

        proptest! {
            #[test]
            fn any_body_without_repeated_keys_parses_as_serde_json_does(
                object in prop::collection::btree_map("[a-z]{1,3}", value(), 0..6)
            ) {
                let text = Value::Object(object.into_iter().collect()).to_string();
                prop_assert_eq!(parse_body(text.as_bytes()).unwrap(), serde_json::from_str::<Value>(&text).unwrap());
            }

            #[test]
            fn any_object_with_a_key_given_twice_is_100_at_that_key(
                outer in prop::collection::btree_map("[a-c]{1,2}", value(), 0..4),
                inner in prop::collection::btree_map("[a-c/~]{1,2}", value(), 0..4),
                nest in "[a-c]{1,2}",
                key in "[a-c/~]{1,2}",
                index in 0usize..3,
            ) {
                let outer: Map<String, Value> = outer.into_iter().collect();
                let inner: Map<String, Value> = inner.into_iter().collect();
                // The object with the repeated key sits at /nest/index in an array of plain objects.
                let twice = with_key_twice(&inner, &key, "{}");
                let items: Vec<String> = (0..index).map(|_| "{}".to_owned()).chain([twice]).collect();
                let array = format!("[{}]", items.join(","));
                let mut parts: Vec<String> = outer
                    .iter()
                    .filter(|(k, _)| **k != nest)
                    .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
                    .collect();
                parts.push(format!("{}:{array}", Value::String(nest.clone())));
                let body = format!("{{{}}}", parts.join(","));
                let expected = format!("/{}/{index}/{}", escape(&nest), escape(&key));
                let error = parse_body(body.as_bytes()).unwrap_err();
                prop_assert_eq!((error.code.number(), error.pointer), (100, expected), "{}", body);
            }
        }
    }

    #[test]
    fn details_echo_at_most_32_characters_of_the_input() {
        // Fuzz finding: an identifier, a repeated key and an unknown key were echoed whole.
        let long = "A".repeat(300);
        let detail = |e: EtirError| e.detail.unwrap();
        let v = json!({ "office": long.clone(), long.clone(): 1 });
        let o = Obj::new(&v, "").unwrap();
        let office = detail(o.parse("office", crate::ids::OfficeCode::parse).unwrap_err());
        assert_eq!(office, format!("\"{}...\" is not accepted here", "A".repeat(32)));
        let unknown = detail(o.finish().unwrap_err());
        assert_eq!(unknown, format!("\"{}...\" is not a field here", "A".repeat(32)));
        let twice = detail(parse_body(format!(r#"{{"{long}": 1, "{long}": 2}}"#).as_bytes()).unwrap_err());
        assert_eq!(twice, format!("key \"{}...\" given twice", "A".repeat(32)));
        assert_eq!(echo("short"), "short");
        assert_eq!(echo(&"é".repeat(33)), format!("{}...", "é".repeat(32)));
    }

    #[test]
    fn a_number_reads_back_as_the_number_written() {
        // Fuzz finding: serde_json's default float parser read the canonical
        // text of this number one ulp away (tir-model turns on `float_roundtrip`).
        let body =
            parse_body(br#"{"n": [5.5555555555555564e109, 0.30000000000000004, 1.7976931348623157e308]}"#).unwrap();
        let text = canonical(&body);
        assert_eq!(text, r#"{"n":[5.5555555555555564e+109,0.30000000000000004,1.7976931348623157e+308]}"#);
        assert_eq!(parse_body(text.as_bytes()).unwrap(), body);
    }

    #[test]
    fn canonical_text_ignores_key_order_and_spacing() {
        let a = parse_body(br#"{"b": [1, {"y": 2, "x": 1}], "a": "s"}"#).unwrap();
        let b = parse_body(br#"{"a":"s","b":[1,{"x":1,"y":2}]}"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(canonical(&a), r#"{"a":"s","b":[1,{"x":1,"y":2}]}"#);
    }

    #[test]
    fn missing_and_null_fields_are_101_with_pointer() {
        let v = json!({"a": null});
        let o = Obj::new(&v, "").unwrap();
        assert_eq!(code_of(o.str("a")), (101, "/a".into()));
        assert_eq!(code_of(o.str("b")), (101, "/b".into()));
    }

    #[test]
    fn wrong_type_is_106() {
        let v = json!({"a": 5, "n": "x"});
        let o = Obj::new(&v, "/d").unwrap();
        assert_eq!(code_of(o.str("a")), (106, "/d/a".into()));
        assert_eq!(code_of(o.positive_f64("n", 10.0)), (106, "/d/n".into()));
    }

    #[test]
    fn text_at_its_limit_passes_and_past_it_is_105() {
        let v = json!({"ok": "x".repeat(5), "long": "x".repeat(6), "blank": "  "});
        let o = Obj::new(&v, "").unwrap();
        assert!(o.text("ok", 5).is_ok());
        assert_eq!(code_of(o.text("long", 5)), (105, "/long".into()));
        assert_eq!(code_of(o.text("blank", 5)), (101, "/blank".into()));
    }

    #[test]
    fn array_at_its_limit_passes_and_past_it_is_105() {
        let v = json!({"a": ["x", "y"]});
        let o = Obj::new(&v, "").unwrap();
        assert_eq!(o.texts("a", 2, 10).unwrap().len(), 2);
        assert_eq!(code_of(o.texts("a", 1, 10)), (105, "/a".into()));
    }

    #[test]
    fn non_positive_numbers_are_180_and_fractions_where_a_whole_number_is_due_104() {
        let v = json!({"z": 0.0, "neg": -1, "big": 11, "ok": 3, "half": 2.5, "text": "3"});
        let o = Obj::new(&v, "").unwrap();
        assert_eq!(code_of(o.positive_f64("z", 10.0)).0, 180);
        assert_eq!(code_of(o.positive_i64("neg", 10)).0, 180);
        assert_eq!(code_of(o.positive_i64("big", 10)).0, 180);
        assert_eq!(code_of(o.positive_i64("half", 10)).0, 104);
        assert_eq!(code_of(o.positive_i64("text", 10)).0, 106);
        assert_eq!(o.positive_i64("ok", 10).unwrap(), 3);
    }
}
