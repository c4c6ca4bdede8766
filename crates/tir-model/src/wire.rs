//! Reading JSON input field by field, so that every failure names its
//! contract code and the JSON pointer of the field.

use serde_json::{Map, Value};

use crate::error::{ErrorCode, EtirError, fail};
use crate::ids::ParseError;

/// Parses a request body. Malformed JSON is a format error at the root.
pub fn parse_body(body: &[u8]) -> Result<Value, EtirError> {
    serde_json::from_slice(body)
        .map_err(|e| EtirError::new(ErrorCode::WrongFormat, "").with_detail(format!("malformed JSON: {e}")))
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
    parse(raw)
        .map_err(|e| EtirError::new(parse_error_code(e), pointer).with_detail(format!("{raw:?} is not accepted here")))
}

/// A JSON object together with its pointer.
#[derive(Clone, Copy)]
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    pointer: &'a str,
}

/// A borrowed pointer would outlive nested values, so children own theirs.
pub struct OwnedObj<'a> {
    map: &'a Map<String, Value>,
    pointer: String,
}

impl<'a> OwnedObj<'a> {
    pub fn view(&self) -> Obj<'_> {
        Obj { map: self.map, pointer: &self.pointer }
    }
}

impl<'a> Obj<'a> {
    pub fn new(value: &'a Value, pointer: &'a str) -> Result<Obj<'a>, EtirError> {
        match value {
            Value::Object(map) => Ok(Obj { map, pointer }),
            _ => fail(ErrorCode::WrongFormat, pointer),
        }
    }

    pub fn pointer(&self, key: &str) -> String {
        format!("{}/{}", self.pointer, key)
    }

    /// A present, non-null value.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
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

    /// Free text: not blank, at most `chars_max` characters.
    pub fn text(&self, key: &str, chars_max: usize) -> Result<String, EtirError> {
        let raw = self.str(key)?;
        check_text(raw, &self.pointer(key), chars_max)
    }

    pub fn text_opt(&self, key: &str, chars_max: usize) -> Result<Option<String>, EtirError> {
        match self.str_opt(key)? {
            None => Ok(None),
            Some(raw) => check_text(raw, &self.pointer(key), chars_max).map(Some),
        }
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

    /// A list of free-text strings.
    pub fn texts(&self, key: &str, items_max: usize, chars_max: usize) -> Result<Vec<String>, EtirError> {
        self.array(key, items_max)?
            .into_iter()
            .map(|(pointer, v)| match v {
                Value::String(s) => check_text(s, &pointer, chars_max),
                Value::Null => fail(ErrorCode::RequiredFieldMissing, pointer),
                _ => fail(ErrorCode::WrongFormat, pointer),
            })
            .collect()
    }

    pub fn texts_opt(&self, key: &str, items_max: usize, chars_max: usize) -> Result<Option<Vec<String>>, EtirError> {
        if self.get(key).is_none() {
            return Ok(None);
        }
        self.texts(key, items_max, chars_max).map(Some)
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

fn check_text(raw: &str, pointer: &str, chars_max: usize) -> Result<String, EtirError> {
    if raw.trim().is_empty() {
        return fail(ErrorCode::RequiredFieldMissing, pointer);
    }
    if raw.chars().count() > chars_max {
        return Err(
            EtirError::new(ErrorCode::WrongLength, pointer).with_detail(format!("at most {chars_max} characters"))
        );
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code_of<T: std::fmt::Debug>(r: Result<T, EtirError>) -> (u16, String) {
        let e = r.unwrap_err();
        (e.code.number(), e.pointer)
    }

    #[test]
    fn malformed_json_is_a_format_error_at_the_root() {
        assert_eq!(code_of(parse_body(b"{\"a\":")), (106, String::new()));
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
