//! OpenAPI schemas of the identifiers and the bounded inputs (feature `openapi`).
//! Built from the same reference data and limits the parsers use, so that a
//! value the document calls valid is one the parser accepts, and the reverse.

use std::borrow::Cow;

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Array, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::ids::{Country, Currency, Date, GuaranteeRef, HsCode, OfficeCode, TirId};
use crate::limits::{RESERVATIONS_MAX, SEALS_MAX, TEXT_CHARS_MAX};
use crate::message::MessageId;
use crate::refdata;

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description))
}

/// `^(A|B|...)$` over the reference codes.
fn one_of_codes<'a>(codes: impl Iterator<Item = &'a str>) -> String {
    codes.collect::<Vec<_>>().join("|")
}

macro_rules! named_schema {
    ($ty:ty, $name:literal, $schema:expr) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                Schema::Object($schema.build()).into()
            }
        }
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

named_schema!(
    Country,
    "Country",
    string("ISO 3166-1 alpha-2 country code").enum_values(Some(refdata::countries().iter().map(|c| c.alpha2)))
);

named_schema!(
    Currency,
    "Currency",
    string("ISO 4217 currency code").enum_values(Some(refdata::currencies().iter().copied()))
);

named_schema!(
    HsCode,
    "HsCode",
    string("HS 2022 six-digit subheading").enum_values(Some(refdata::hs_subheadings().iter().map(|(code, _)| *code)))
);

named_schema!(
    GuaranteeRef,
    "GuaranteeRef",
    string("Guarantee reference number: two letters of which one is X, a number from 25 to 999, six digits")
        .min_length(Some(GuaranteeRef::MIN_CHARS))
        .max_length(Some(GuaranteeRef::MAX_CHARS))
        .pattern(Some(format!("^{}$", GuaranteeRef::PATTERN)))
        .examples(["XH25000001"])
);

named_schema!(
    TirId,
    "TirId",
    string("TIR holder id: the alpha-3 of the holder's country, the association's 3 digits, the holder's 1 to 9")
        .min_length(Some(TirId::MIN_CHARS))
        .max_length(Some(TirId::MAX_CHARS))
        .pattern(Some(format!(
            "^({})/[0-9]{{3}}/[0-9]{{1,{}}}$",
            one_of_codes(refdata::countries().iter().map(|c| c.alpha3)),
            TirId::HOLDER_DIGITS_MAX
        )))
        .examples(["LTU/012/345"])
);

named_schema!(
    OfficeCode,
    "OfficeCode",
    string("Customs office reference number: the country's alpha-2 and 6 of A-Z, 0-9")
        .min_length(Some(OfficeCode::CHARS))
        .max_length(Some(OfficeCode::CHARS))
        .pattern(Some(format!("^({})[A-Z0-9]{{6}}$", one_of_codes(refdata::countries().iter().map(|c| c.alpha2)))))
        .examples(["LTMDK001"])
);

/// Every calendar day of the years `Date::MIN_YEAR..=Date::MAX_YEAR` (1970 to 9999), leap days included.
const DATE_PATTERN: &str = concat!(
    "^(",
    "(19[7-9][0-9]|[2-9][0-9]{3})-",
    "((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))",
    "|(19(7[26]|8[048]|9[26])|[2-9][0-9](0[48]|[2468][048]|[13579][26])|([2468][048]|[3579][26])00)-02-29",
    ")$"
);

named_schema!(
    Date,
    "Date",
    string("Calendar date YYYY-MM-DD, years 1970 to 9999").pattern(Some(DATE_PATTERN)).examples(["2099-12-31"])
);

named_schema!(
    MessageId,
    "MessageId",
    string("The sender's idempotency key (a UUID in practice)")
        .min_length(Some(1))
        .max_length(Some(crate::limits::MESSAGE_ID_CHARS_MAX))
        .pattern(Some(format!("^[A-Za-z0-9._:-]{{1,{}}}$", crate::limits::MESSAGE_ID_CHARS_MAX)))
);

/// Rust's `char::is_whitespace` (Unicode White_Space), which `str::trim` uses.
const NOT_WHITESPACE: &str =
    "[^\t\n\u{b}\u{c}\r \u{85}\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}]";

/// Free text: not blank, at most `TEXT_CHARS_MAX` characters (`wire::Obj::text`).
pub fn text() -> Schema {
    Schema::Object(
        string("Free text, not blank")
            .min_length(Some(1))
            .max_length(Some(TEXT_CHARS_MAX))
            .pattern(Some(NOT_WHITESPACE))
            .build(),
    )
}

fn texts(items_max: usize, unique: bool) -> ArrayBuilder {
    ArrayBuilder::new().items(RefOr::T(text())).max_items(Some(items_max)).unique_items(unique)
}

/// Seal numbers: distinct in a declaration.
pub fn declared_seals() -> Array {
    texts(SEALS_MAX, true).build()
}

/// Seals found at a start (I9) or termination (I11), compared with the recorded ones as a set.
pub fn found_seals() -> Array {
    texts(SEALS_MAX, false).schema_type(SchemaType::from_iter([Type::Array, Type::Null])).build()
}

/// Reservations noted at termination (I11).
pub fn reservations() -> Array {
    texts(RESERVATIONS_MAX, false).schema_type(SchemaType::from_iter([Type::Array, Type::Null])).build()
}

/// `departure`, `destination`, `entry` or `exit`.
pub fn office_role() -> Schema {
    Schema::Object(
        string("The office's role in the transport")
            .enum_values(Some(crate::party::OfficeRole::ALL.iter().map(|r| r.as_str())))
            .build(),
    )
}

fn one_of(description: &str, values: impl IntoIterator<Item = &'static str>) -> Schema {
    Schema::Object(string(description).enum_values(Some(values)).build())
}

/// The control types of the contract; another is 306.
pub fn control_type() -> Schema {
    one_of("The kind of control", crate::records::ControlType::ALL.map(|t| t.as_str()))
}

pub fn control_result() -> Schema {
    one_of("What the control found", crate::records::ControlResult::ALL.map(|r| r.as_str()))
}

pub fn incident_kind() -> Schema {
    one_of("What happened en route", crate::records::IncidentKind::ALL.map(|k| k.as_str()))
}

/// Controls reported in I9, I11 or I17.
pub fn controls() -> Array {
    array_of::<crate::records::ReportedControl>(0, crate::limits::CONTROLS_MAX)
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .build()
}

/// The customs' own reference for the operation (an NCTS MRN fits).
pub fn operation_id() -> Schema {
    let max = crate::limits::OPERATION_ID_CHARS_MAX;
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .min_length(Some(1))
            .max_length(Some(max))
            .pattern(Some(format!("^[A-Z0-9-]{{1,{max}}}$")))
            .build(),
    )
}

fn array_of<T: PartialSchema>(items_min: usize, items_max: usize) -> ArrayBuilder {
    ArrayBuilder::new().items(T::schema()).min_items(Some(items_min)).max_items(Some(items_max))
}

/// Each country once, the first being the country of departure.
pub fn itinerary() -> Array {
    array_of::<Country>(1, crate::limits::ITINERARY_COUNTRIES_MAX).unique_items(true).build()
}

/// An office listed twice in the same role is refused (code 180).
pub fn declared_offices() -> Array {
    array_of::<crate::declaration::DeclaredOffice>(1, crate::limits::OFFICES_MAX).unique_items(true).build()
}

pub fn consignments() -> Array {
    array_of::<crate::declaration::Consignment>(1, crate::limits::CONSIGNMENTS_MAX).build()
}

pub fn goods() -> Array {
    array_of::<crate::declaration::Goods>(1, crate::limits::GOODS_PER_CONSIGNMENT_MAX).build()
}

pub fn packages() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
            .minimum(Some(1))
            .maximum(Some(crate::limits::PACKAGES_MAX))
            .build(),
    )
}

/// Masses and amounts: greater than zero, at most `AMOUNT_MAX`.
pub fn amount() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .exclusive_minimum(Some(0))
            .maximum(Some(crate::limits::AMOUNT_MAX))
            .build(),
    )
}

/// Every named schema the derived ones refer to, for the document's components.
pub fn components() -> Vec<(String, RefOr<Schema>)> {
    fn named<T: ToSchema>() -> (String, RefOr<Schema>) {
        (T::name().into_owned(), T::schema())
    }
    vec![
        named::<Country>(),
        named::<Currency>(),
        named::<HsCode>(),
        named::<GuaranteeRef>(),
        named::<TirId>(),
        named::<OfficeCode>(),
        named::<Date>(),
        named::<MessageId>(),
        named::<crate::declaration::Declaration>(),
        named::<crate::declaration::DeclaredOffice>(),
        named::<crate::declaration::Vehicle>(),
        named::<crate::declaration::Trader>(),
        named::<crate::declaration::Consignment>(),
        named::<crate::declaration::Goods>(),
        named::<crate::declaration::Money>(),
        named::<crate::records::ReportedControl>(),
    ]
}
