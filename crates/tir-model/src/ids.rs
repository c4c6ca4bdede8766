//! Identifiers parsed from untrusted input. Each type can only hold a valid
//! value: construction goes through `parse` (also used by `Deserialize`, so
//! bad stored data is rejected too). Checks run in the order length, shape,
//! then reference-data lookup, which fixes which `ParseError` is reported.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::refdata::{self, CountryRecord};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Wrong number of characters (contract code 105).
    Length,
    /// Right length, wrong characters or shape (contract code 106).
    Pattern,
    /// Well-formed but not in its list: HS code, currency (contract code 102).
    Unknown,
    /// Well-formed but not an ISO 3166 country, alone or as an identifier's prefix (305).
    UnknownCountry,
}

impl ParseError {
    /// The eTIR contract error code this maps to.
    pub const fn contract_code(self) -> u16 {
        match self {
            ParseError::Length => 105,
            ParseError::Pattern => 106,
            ParseError::Unknown => 102,
            ParseError::UnknownCountry => 305,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::Length => "wrong length",
            ParseError::Pattern => "wrong format",
            ParseError::Unknown => "unknown code",
            ParseError::UnknownCountry => "unknown country",
        })
    }
}

impl std::error::Error for ParseError {}

/// Display, FromStr and string serde for a type with `parse` and `as_str`.
macro_rules! string_id {
    ($ty:ident, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Self::parse(s)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Self::parse(&s)
                    .map_err(|e| serde::de::Error::custom(format_args!(concat!("invalid ", $what, ": {}"), e)))
            }
        }
    };
}

fn all_upper(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_uppercase())
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn all_upper_or_digit(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// ISO 3166-1 alpha-2 country code listed in `countries.csv`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country(&'static CountryRecord);

impl Country {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.chars().count() != 2 {
            return Err(ParseError::Length);
        }
        if !all_upper(s) {
            return Err(ParseError::Pattern);
        }
        refdata::country_by_alpha2(s).map(Country).ok_or(ParseError::UnknownCountry)
    }

    /// The alpha-2 code.
    pub fn as_str(&self) -> &'static str {
        self.0.alpha2
    }

    pub fn alpha3(&self) -> &'static str {
        self.0.alpha3
    }

    /// English name, e.g. "Lithuania".
    pub fn name(&self) -> &'static str {
        self.0.name
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Country").field(&self.as_str()).finish()
    }
}

string_id!(Country, "country code");

/// ISO 4217 alpha-3 currency code accepted by `refdata::is_currency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(&'static str);

impl Currency {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.chars().count() != 3 {
            return Err(ParseError::Length);
        }
        if !all_upper(s) {
            return Err(ParseError::Pattern);
        }
        refdata::currency(s).map(Currency).ok_or(ParseError::Unknown)
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

string_id!(Currency, "currency code");

/// Guarantee reference number, binding v2: two capital letters of which one is
/// `X`, a series number from 25 to 999 (no leading zero), then six digits, as
/// [`GuaranteeRef::PATTERN`] (`XH25000001`): the form NCTS accepts as a TIR
/// carnet number. Longer than 11 characters is `Length`; anything else that
/// does not match, shorter ones included, is `Pattern`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuaranteeRef(String);

impl GuaranteeRef {
    /// A two-digit series (25 to 99).
    pub const MIN_CHARS: usize = 10;
    /// A three-digit series (100 to 999).
    pub const MAX_CHARS: usize = 11;
    /// What `parse` accepts, as a regular expression (the OpenAPI document's pattern).
    pub const PATTERN: &str = "(X[A-Z]|[A-Z]X)(2[5-9]|[3-9][0-9]|[1-9][0-9][0-9])[0-9]{6}";

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        // Bound the count so huge inputs are rejected without a full scan.
        if s.chars().take(Self::MAX_CHARS + 1).count() > Self::MAX_CHARS {
            return Err(ParseError::Length);
        }
        let b = s.as_bytes();
        let letters_ok =
            b.len() >= 2 && b[0].is_ascii_uppercase() && b[1].is_ascii_uppercase() && (b[0] == b'X' || b[1] == b'X');
        // 10 bytes: series 25 to 99; 11 bytes: series 100 to 999. Either way six digits follow.
        let series_ok = match b.len() {
            10 => b[2] >= b'2' && (b[2] > b'2' || b[3] >= b'5'),
            11 => b[2] != b'0',
            _ => false,
        };
        if !(letters_ok && series_ok && all_digits(&s[2..])) {
            return Err(ParseError::Pattern);
        }
        Ok(GuaranteeRef(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_id!(GuaranteeRef, "guarantee reference");

/// TIR holder identification number `AAA/NNN/NNNNNNNNN`: alpha-3 of the holder's
/// country, 3-digit association number, 1 to 9-digit holder number, so at
/// most 17 characters (NCTS's field).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TirId {
    // First so the derived order is the textual order.
    text: String,
    country: Country,
}

impl TirId {
    /// Digits of the holder number, at most.
    pub const HOLDER_DIGITS_MAX: usize = 9;
    pub const MIN_CHARS: usize = 9;
    pub const MAX_CHARS: usize = 8 + Self::HOLDER_DIGITS_MAX;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let n = s.chars().take(Self::MAX_CHARS + 1).count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&n) {
            return Err(ParseError::Length);
        }
        let mut parts = s.split('/');
        let (Some(alpha3), Some(association), Some(holder), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ParseError::Pattern);
        };
        let shape_ok = alpha3.len() == 3
            && all_upper(alpha3)
            && association.len() == 3
            && all_digits(association)
            && (1..=Self::HOLDER_DIGITS_MAX).contains(&holder.len())
            && all_digits(holder);
        if !shape_ok {
            return Err(ParseError::Pattern);
        }
        let record = refdata::country_by_alpha3(alpha3).ok_or(ParseError::UnknownCountry)?;
        Ok(TirId { text: s.to_owned(), country: Country(record) })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The holder's country (from the alpha-3 prefix).
    pub fn country(&self) -> Country {
        self.country
    }

    /// The 3-digit association number.
    pub fn association(&self) -> &str {
        &self.text[4..7]
    }

    /// The 1 to 9-digit holder number.
    pub fn holder(&self) -> &str {
        &self.text[8..]
    }
}

string_id!(TirId, "TIR holder id");

/// Customs office reference number: alpha-2 country + 6 of A-Z, 0-9.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OfficeCode {
    text: String,
    country: Country,
}

impl OfficeCode {
    pub const CHARS: usize = 8;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.chars().take(Self::CHARS + 1).count() != Self::CHARS {
            return Err(ParseError::Length);
        }
        if s.len() != Self::CHARS || !all_upper(&s[..2]) || !all_upper_or_digit(&s[2..]) {
            return Err(ParseError::Pattern);
        }
        let record = refdata::country_by_alpha2(&s[..2]).ok_or(ParseError::UnknownCountry)?;
        Ok(OfficeCode { text: s.to_owned(), country: Country(record) })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn country(&self) -> Country {
        self.country
    }
}

string_id!(OfficeCode, "office code");

/// HS 2022 six-digit subheading listed in `hs2022-subheadings.csv`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HsCode(&'static (&'static str, &'static str));

impl HsCode {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.chars().take(7).count() != 6 {
            return Err(ParseError::Length);
        }
        if !all_digits(s) {
            return Err(ParseError::Pattern);
        }
        refdata::hs_entry(s).map(HsCode).ok_or(ParseError::Unknown)
    }

    pub fn as_str(&self) -> &'static str {
        self.0.0
    }

    pub fn description(&self) -> &'static str {
        self.0.1
    }

    /// The 2-digit HS chapter, 1..=97.
    pub fn chapter(&self) -> u8 {
        let b = self.0.0.as_bytes();
        (b[0] - b'0') * 10 + (b[1] - b'0')
    }
}

impl fmt::Debug for HsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HsCode").field(&self.as_str()).finish()
    }
}

string_id!(HsCode, "HS code");

/// Calendar date `YYYY-MM-DD`, years 1970..=9999.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date([u8; 10]);

impl Date {
    pub const MIN_YEAR: i64 = 1970;
    pub const MAX_YEAR: i64 = 9999;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.chars().take(11).count() != 10 {
            return Err(ParseError::Length);
        }
        let Ok(bytes) = <[u8; 10]>::try_from(s.as_bytes()) else {
            return Err(ParseError::Pattern);
        };
        let digits = |r: std::ops::Range<usize>| {
            bytes[r].iter().try_fold(0i64, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0')))
        };
        let (Some(y), b'-', Some(m), b'-', Some(d)) = (digits(0..4), bytes[4], digits(5..7), bytes[7], digits(8..10))
        else {
            return Err(ParseError::Pattern);
        };
        let valid = (Self::MIN_YEAR..=Self::MAX_YEAR).contains(&y)
            && (1..=12).contains(&m)
            && (1..=days_in_month(y, m)).contains(&d);
        if !valid {
            return Err(ParseError::Pattern);
        }
        Ok(Date(bytes))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("Date holds only ASCII digits and dashes")
    }

    pub fn year(&self) -> i64 {
        self.field(0..4)
    }

    pub fn month(&self) -> u8 {
        self.field(5..7) as u8
    }

    pub fn day(&self) -> u8 {
        self.field(8..10) as u8
    }

    /// Days since 1970-01-01 (which is day 0).
    pub fn days_since_epoch(&self) -> i64 {
        days_from_civil(self.year(), i64::from(self.month()), i64::from(self.day()))
    }

    fn field(&self, r: std::ops::Range<usize>) -> i64 {
        self.0[r].iter().fold(0, |acc, &b| acc * 10 + i64::from(b - b'0'))
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Date").field(&self.as_str()).finish()
    }
}

string_id!(Date, "date");

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Both conversions count in 400-year eras starting on March 1st, so the leap
// day falls at the end of the counted year and each era has 146,097 days.
const DAYS_PER_ERA: i64 = 146_097;
// Days from 0000-03-01 to 1970-01-01.
const EPOCH_SHIFT: i64 = 719_468;

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let month_from_march = (m + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_ERA + day_of_era - EPOCH_SHIFT
}

/// (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + EPOCH_SHIFT;
    let era = z.div_euclid(DAYS_PER_ERA);
    let day_of_era = z.rem_euclid(DAYS_PER_ERA);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let d = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let m = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let y = year_of_era + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Milliseconds since 1970-01-01T00:00:00Z. Serialized as the integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix_ms(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub const fn unix_ms(self) -> i64 {
        self.0
    }

    /// An RFC 3339 time, `2026-11-28T15:41:04Z` or with a fraction and an
    /// offset (`.123+02:00`); digits past milliseconds are dropped. Years
    /// 1970..=9999, as `Date`. Longer than 40 characters: `Length`.
    pub fn parse_rfc3339(s: &str) -> Result<Self, ParseError> {
        if s.chars().take(41).count() > 40 {
            return Err(ParseError::Length);
        }
        let b = s.as_bytes();
        if b.len() < 20 || !s.is_ascii() {
            return Err(ParseError::Pattern);
        }
        let digits = |r: std::ops::Range<usize>| {
            b[r].iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
        };
        let date = Date::parse(&s[..10])?;
        let (Some(h), b':', Some(mi), b':', Some(sec)) = (digits(11..13), b[13], digits(14..16), b[16], digits(17..19))
        else {
            return Err(ParseError::Pattern);
        };
        if !matches!(b[10], b'T' | b't') || h > 23 || mi > 59 || sec > 59 {
            return Err(ParseError::Pattern);
        }
        let mut rest = &b[19..];
        let mut ms = 0;
        if let Some((b'.', fraction)) = rest.split_first() {
            let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return Err(ParseError::Pattern);
            }
            ms = fraction[..n.min(3)].iter().fold(0i64, |acc, &c| acc * 10 + i64::from(c - b'0'))
                * 10i64.pow(3 - n.min(3) as u32);
            rest = &fraction[n..];
        }
        let offset_min = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let two = |a: u8, b: u8| {
                    (a.is_ascii_digit() && b.is_ascii_digit()).then(|| i64::from((a - b'0') * 10 + (b - b'0')))
                };
                let (Some(oh), Some(om)) = (two(*h1, *h2), two(*m1, *m2)) else {
                    return Err(ParseError::Pattern);
                };
                if oh > 23 || om > 59 {
                    return Err(ParseError::Pattern);
                }
                if *sign == b'+' { oh * 60 + om } else { -(oh * 60 + om) }
            }
            _ => return Err(ParseError::Pattern),
        };
        let days = days_from_civil(date.year(), i64::from(date.month()), i64::from(date.day()));
        let seconds = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
        Ok(Timestamp(seconds * 1000 + ms))
    }

    /// UTC with milliseconds, e.g. `2026-11-28T15:41:04.123Z`. Years outside
    /// 0000..=9999 (only reachable from extreme values) get a sign, as in
    /// ISO 8601 expanded years.
    pub fn to_rfc3339(self) -> String {
        const DAY_MS: i64 = 86_400_000;
        let (y, mo, d) = civil_from_days(self.0.div_euclid(DAY_MS));
        let ms_of_day = self.0.rem_euclid(DAY_MS);
        let (h, mi) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60);
        let (s, ms) = (ms_of_day / 1000 % 60, ms_of_day % 1000);
        if !(0..=9999).contains(&y) {
            let year = if y < 0 { format!("-{:04}", y.unsigned_abs()) } else { format!("+{y}") };
            return format!("{year}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z");
        }
        // The common case, written digit by digit: it runs for every timestamp
        // in every view, inside the store's write transaction.
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut value: i64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, y);
        put(5, 2, mo);
        put(8, 2, d);
        put(11, 2, h);
        put(14, 2, mi);
        put(17, 2, s);
        put(20, 3, ms);
        String::from_utf8(out.to_vec()).expect("ASCII digits")
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_errors_map_to_contract_codes() {
        assert_eq!(ParseError::Length.contract_code(), 105);
        assert_eq!(ParseError::Pattern.contract_code(), 106);
        assert_eq!(ParseError::Unknown.contract_code(), 102);
        assert_eq!(ParseError::UnknownCountry.contract_code(), 305);
    }

    #[test]
    fn country_accepts_known_alpha2_codes() {
        let lt = Country::parse("LT").unwrap();
        assert_eq!(lt.as_str(), "LT");
        assert_eq!(lt.alpha3(), "LTU");
        assert_eq!(lt.name(), "Lithuania");
        assert_eq!(lt.to_string(), "LT");
        assert_eq!(Country::parse("TR").unwrap().alpha3(), "TUR");
        assert_eq!("NA".parse::<Country>().unwrap().alpha3(), "NAM");
    }

    #[test]
    fn country_of_wrong_length_is_length() {
        for s in ["", "L", "LTU", "LT "] {
            assert_eq!(Country::parse(s), Err(ParseError::Length), "{s:?}");
        }
    }

    #[test]
    fn country_with_lower_case_or_digits_is_pattern() {
        for s in ["lt", "L1", "--", "ÄB"] {
            assert_eq!(Country::parse(s), Err(ParseError::Pattern), "{s:?}");
        }
    }

    #[test]
    fn country_not_in_iso_list_is_unknown() {
        assert_eq!(Country::parse("XX"), Err(ParseError::UnknownCountry));
        assert_eq!(Country::parse("EU"), Err(ParseError::UnknownCountry));
    }

    #[test]
    fn currency_accepts_country_currencies_and_extras() {
        for s in ["EUR", "USD", "GBP", "CHF", "XDR", "RUB", "KZT", "TRY"] {
            assert_eq!(Currency::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn currency_errors_cover_every_variant() {
        assert_eq!(Currency::parse("EU"), Err(ParseError::Length));
        assert_eq!(Currency::parse("EURO"), Err(ParseError::Length));
        assert_eq!(Currency::parse("eur"), Err(ParseError::Pattern));
        assert_eq!(Currency::parse("E1R"), Err(ParseError::Pattern));
        assert_eq!(Currency::parse("XXX"), Err(ParseError::Unknown));
    }

    #[test]
    fn guarantee_ref_accepts_the_v2_format() {
        for s in ["XH25000001", "XG99999999", "AX100000000", "XX999123456", "XA30000000", "ZX25345678"] {
            assert_eq!(GuaranteeRef::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(GuaranteeRef::MIN_CHARS, 10);
        assert_eq!(GuaranteeRef::MAX_CHARS, 11);
    }

    #[test]
    fn guarantee_ref_longer_than_11_is_length() {
        for s in ["XH2500000001", "XH25000001XXXX", &"9".repeat(12), &"Ä".repeat(12)] {
            assert_eq!(GuaranteeRef::parse(s), Err(ParseError::Length), "{s:?}");
        }
        // Only the first 12 characters are counted.
        assert_eq!(GuaranteeRef::parse(&"X".repeat(1_000_000)), Err(ParseError::Length));
    }

    #[test]
    fn guarantee_ref_not_matching_the_pattern_is_pattern() {
        for s in [
            "",
            "XH1",
            "XH1234",
            "XH2500001",    // 9 characters
            "XH24000001",   // series below 25
            "XH09000001",   // leading zero
            "XH012000001",  // leading zero in a three-digit series
            "AB25000001",   // no X
            "xh25000001",   // lower case
            "X125000001",   // a digit for a letter
            "XH2500000A",   // a letter among the digits
            "XH25 00001",   // a space
            "XH-25000001",  // a dash
            "ÄX25000001",   // not ASCII
            "XÄ2500000",    // not ASCII, 10 bytes
            "XH25000001\n", // a line break
        ] {
            assert_eq!(GuaranteeRef::parse(s), Err(ParseError::Pattern), "{s:?}");
        }
    }

    #[test]
    fn tir_id_accepts_holder_numbers_of_1_to_9_digits() {
        let id = TirId::parse("LTU/001/1").unwrap();
        assert_eq!(id.country(), Country::parse("LT").unwrap());
        assert_eq!(id.association(), "001");
        assert_eq!(id.holder(), "1");
        let id = TirId::parse("TUR/078/123456789").unwrap();
        assert_eq!(id.as_str(), "TUR/078/123456789");
        assert_eq!(id.country().as_str(), "TR");
        assert_eq!(id.holder(), "123456789");
        assert_eq!(TirId::MAX_CHARS, 17);
    }

    #[test]
    fn tir_id_of_wrong_length_is_length() {
        assert_eq!(TirId::parse("LTU/001/"), Err(ParseError::Length));
        assert_eq!(TirId::parse("LTU/001/1234567890"), Err(ParseError::Length));
        assert_eq!(TirId::parse(""), Err(ParseError::Length));
    }

    #[test]
    fn tir_id_of_wrong_shape_is_pattern() {
        for s in [
            "LTU-001-1234",
            "ltu/001/1234",
            "LTU/01/12345",
            "LTU/0001/123",
            "LTU/001/12A4",
            "LT/0011/1234",
            "LTU/001/12/4",
            "LTU//0011234",
            "LTU/001/+123",
        ] {
            assert_eq!(TirId::parse(s), Err(ParseError::Pattern), "{s:?}");
        }
    }

    #[test]
    fn tir_id_with_unknown_country_is_unknown() {
        assert_eq!(TirId::parse("XXX/001/1234"), Err(ParseError::UnknownCountry));
    }

    #[test]
    fn office_code_accepts_known_country_prefix() {
        let office = OfficeCode::parse("LT251000").unwrap();
        assert_eq!(office.as_str(), "LT251000");
        assert_eq!(office.country().alpha3(), "LTU");
        assert!(OfficeCode::parse("DE00ABCZ").is_ok());
    }

    #[test]
    fn office_code_of_wrong_length_is_length() {
        assert_eq!(OfficeCode::parse("LT25100"), Err(ParseError::Length));
        assert_eq!(OfficeCode::parse("LT2510000"), Err(ParseError::Length));
    }

    #[test]
    fn office_code_with_bad_characters_is_pattern() {
        for s in ["lt251000", "L1251000", "LT25100a", "LT-51000", "LT25100Ä"] {
            assert_eq!(OfficeCode::parse(s), Err(ParseError::Pattern), "{s:?}");
        }
    }

    #[test]
    fn office_code_with_unknown_country_is_unknown() {
        assert_eq!(OfficeCode::parse("XX251000"), Err(ParseError::UnknownCountry));
    }

    #[test]
    fn hs_code_knows_cars_and_horses() {
        let car = HsCode::parse("870323").unwrap();
        assert_eq!(car.chapter(), 87);
        assert!(car.description().starts_with("Vehicles;"));
        let horse = HsCode::parse("010121").unwrap();
        assert_eq!(horse.chapter(), 1);
        assert_eq!(horse.description(), "Horses; live, pure-bred breeding animals");
        assert_eq!(format!("{horse:?}"), r#"HsCode("010121")"#);
    }

    #[test]
    fn hs_code_errors_cover_every_variant() {
        assert_eq!(HsCode::parse("8703"), Err(ParseError::Length));
        assert_eq!(HsCode::parse("8703230"), Err(ParseError::Length));
        assert_eq!(HsCode::parse("8703.2"), Err(ParseError::Pattern));
        assert_eq!(HsCode::parse("87032a"), Err(ParseError::Pattern));
        assert_eq!(HsCode::parse("999999"), Err(ParseError::Unknown));
        assert_eq!(HsCode::parse("870300"), Err(ParseError::Unknown));
    }

    #[test]
    fn date_accepts_leap_days_in_leap_years_only() {
        for s in ["2000-02-29", "2024-02-29", "2400-02-29"] {
            assert_eq!(Date::parse(s).unwrap().as_str(), s);
        }
        for s in ["2100-02-29", "2023-02-29", "2000-02-30"] {
            assert_eq!(Date::parse(s), Err(ParseError::Pattern), "{s:?}");
        }
    }

    #[test]
    fn date_outside_1970_to_9999_or_impossible_is_pattern() {
        for s in [
            "1969-12-31",
            "0000-01-01",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "2026-01-00",
            "2026/01/01",
            "2026-1-010",
            "+026-01-01",
            "2026-01-0Ä",
        ] {
            assert_eq!(Date::parse(s), Err(ParseError::Pattern), "{s:?}");
        }
        assert!(Date::parse("9999-12-31").is_ok());
    }

    #[test]
    fn date_of_wrong_length_is_length() {
        for s in ["", "2026-1-1", "2026-01-011", "20260101"] {
            assert_eq!(Date::parse(s), Err(ParseError::Length), "{s:?}");
        }
    }

    #[test]
    fn date_counts_days_since_epoch() {
        let days = |s: &str| Date::parse(s).unwrap().days_since_epoch();
        assert_eq!(days("1970-01-01"), 0);
        assert_eq!(days("1970-03-01"), 59);
        assert_eq!(days("2000-02-29"), 11_016);
        assert_eq!(days("2000-03-01"), 11_017);
        assert_eq!(days("9999-12-31"), 2_932_896);
        let d = Date::parse("2026-11-28").unwrap();
        assert_eq!((d.year(), d.month(), d.day()), (2026, 11, 28));
    }

    #[test]
    fn dates_order_chronologically() {
        let a = Date::parse("2025-12-31").unwrap();
        let b = Date::parse("2026-01-01").unwrap();
        assert!(a < b);
    }

    #[test]
    fn timestamp_formats_known_instants() {
        let f = |ms| Timestamp::from_unix_ms(ms).to_rfc3339();
        assert_eq!(f(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(f(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(f(1_795_880_464_123), "2026-11-28T15:41:04.123Z");
        assert_eq!(f(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(f(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(Timestamp::from_unix_ms(42).to_string(), "1970-01-01T00:00:00.042Z");
    }

    #[test]
    fn timestamp_formats_extreme_values_without_panicking() {
        assert!(Timestamp::from_unix_ms(i64::MIN).to_rfc3339().starts_with('-'));
        assert!(Timestamp::from_unix_ms(i64::MAX).to_rfc3339().starts_with('+'));
    }

    #[test]
    fn timestamp_serializes_as_integer() {
        let t = Timestamp::from_unix_ms(1_795_880_464_123);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1795880464123");
        assert_eq!(serde_json::from_str::<Timestamp>("1795880464123").unwrap(), t);
        assert_eq!(t.unix_ms(), 1_795_880_464_123);
    }

    #[test]
    fn ids_serialize_as_plain_strings_and_round_trip() {
        fn round_trip<T>(s: &str)
        where
            T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug + FromStr,
            <T as FromStr>::Err: fmt::Debug,
        {
            let value: T = s.parse().unwrap();
            let json = serde_json::to_string(&value).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), value);
        }
        round_trip::<Country>("LT");
        round_trip::<Currency>("EUR");
        round_trip::<GuaranteeRef>("XG25345678");
        round_trip::<GuaranteeRef>("XH250000001");
        round_trip::<TirId>("LTU/001/12345");
        round_trip::<OfficeCode>("LT251000");
        round_trip::<HsCode>("870323");
        round_trip::<Date>("2000-02-29");
    }

    #[test]
    fn deserializing_invalid_strings_fails() {
        assert!(serde_json::from_str::<Country>("\"XX\"").is_err());
        assert!(serde_json::from_str::<Country>("42").is_err());
        assert!(serde_json::from_str::<Currency>("\"eur\"").is_err());
        assert!(serde_json::from_str::<GuaranteeRef>("\"AB\"").is_err());
        assert!(serde_json::from_str::<GuaranteeRef>("\"XH24000001\"").is_err());
        assert!(serde_json::from_str::<TirId>("\"XXX/001/1\"").is_err());
        assert!(serde_json::from_str::<OfficeCode>("\"LT25\"").is_err());
        assert!(serde_json::from_str::<HsCode>("\"999999\"").is_err());
        let err = serde_json::from_str::<Date>("\"2023-02-29\"").unwrap_err();
        assert!(err.to_string().contains("invalid date: wrong format"), "{err}");
    }

    /// `GuaranteeRef::PATTERN`, spelled out independently of `parse`.
    fn regex_like_pattern(s: &str) -> bool {
        let b = s.as_bytes();
        let upper = |c: u8| c.is_ascii_uppercase();
        let letters = b.len() >= 2 && upper(b[0]) && upper(b[1]) && (b[0] == b'X' || b[1] == b'X');
        let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
        letters
            && digits(&b[2..])
            && match b.len() {
                10 => (25..=99).contains(&s[2..4].parse::<u32>().unwrap()),
                11 => (100..=999).contains(&s[2..5].parse::<u32>().unwrap()),
                _ => false,
            }
    }

    fn known_country() -> impl Strategy<Value = &'static CountryRecord> {
        prop::sample::select(refdata::countries().iter().collect::<Vec<_>>())
    }

    fn valid_date() -> impl Strategy<Value = String> {
        (1970i64..=9999, 1i64..=12, 1i64..=31).prop_map(|(y, m, d)| {
            let d = d.min(days_in_month(y, m));
            format!("{y:04}-{m:02}-{d:02}")
        })
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_strings(s in ".{0,40}") {
            let _ = Country::parse(&s);
            let _ = Currency::parse(&s);
            let _ = GuaranteeRef::parse(&s);
            let _ = TirId::parse(&s);
            let _ = OfficeCode::parse(&s);
            let _ = HsCode::parse(&s);
            let _ = Date::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_near_valid_strings(s in "[A-Z0-9a-z/ÄĀ-]{0,16}") {
            let _ = Country::parse(&s);
            let _ = Currency::parse(&s);
            let _ = GuaranteeRef::parse(&s);
            let _ = TirId::parse(&s);
            let _ = OfficeCode::parse(&s);
            let _ = HsCode::parse(&s);
            let _ = Date::parse(&s);
        }

        #[test]
        fn country_round_trips(c in known_country()) {
            let country = Country::parse(c.alpha2).unwrap();
            prop_assert_eq!(Country::parse(country.as_str()), Ok(country));
            prop_assert_eq!(country.alpha3(), c.alpha3);
        }

        #[test]
        fn currency_round_trips(code in prop::sample::select(refdata::currencies().to_vec())) {
            let currency = Currency::parse(code).unwrap();
            prop_assert_eq!(Currency::parse(currency.as_str()), Ok(currency));
        }

        #[test]
        fn guarantee_ref_round_trips(s in GuaranteeRef::PATTERN) {
            let g = GuaranteeRef::parse(&s).unwrap();
            prop_assert_eq!(g.as_str(), s.as_str());
            prop_assert_eq!(GuaranteeRef::parse(g.as_str()), Ok(g));
        }

        #[test]
        fn guarantee_ref_agrees_with_its_pattern(s in "(X[A-Z]|[A-Z]X|[A-Z0-9]{2}|x[a-z]|)[0-9A]{0,11}") {
            let matches = regex_like_pattern(&s);
            match GuaranteeRef::parse(&s) {
                Ok(_) => prop_assert!(matches, "{s:?} accepted"),
                Err(e) => {
                    prop_assert!(!matches, "{s:?} refused");
                    let expected = if s.chars().count() > GuaranteeRef::MAX_CHARS { ParseError::Length } else { ParseError::Pattern };
                    prop_assert_eq!(e, expected);
                }
            }
        }

        #[test]
        fn tir_id_round_trips(c in known_country(), assoc in "[0-9]{3}", holder in "[0-9]{1,9}") {
            let id = TirId::parse(&format!("{}/{assoc}/{holder}", c.alpha3)).unwrap();
            prop_assert_eq!(id.country().as_str(), c.alpha2);
            prop_assert_eq!(id.association(), assoc.as_str());
            prop_assert_eq!(id.holder(), holder.as_str());
            prop_assert_eq!(TirId::parse(id.as_str()), Ok(id));
        }

        #[test]
        fn office_code_round_trips(c in known_country(), rest in "[A-Z0-9]{6}") {
            let office = OfficeCode::parse(&format!("{}{rest}", c.alpha2)).unwrap();
            prop_assert_eq!(office.country().as_str(), c.alpha2);
            prop_assert_eq!(OfficeCode::parse(office.as_str()), Ok(office));
        }

        #[test]
        fn hs_code_round_trips(entry in prop::sample::select(refdata::hs_subheadings().to_vec())) {
            let hs = HsCode::parse(entry.0).unwrap();
            prop_assert_eq!(hs.description(), entry.1);
            prop_assert_eq!(HsCode::parse(hs.as_str()), Ok(hs));
        }

        #[test]
        fn date_round_trips_and_agrees_with_timestamp(s in valid_date()) {
            let date = Date::parse(&s).unwrap();
            prop_assert_eq!(Date::parse(date.as_str()), Ok(date));
            let midnight = Timestamp::from_unix_ms(date.days_since_epoch() * 86_400_000);
            prop_assert_eq!(&midnight.to_rfc3339()[..10], date.as_str());
        }

        #[test]
        fn timestamp_date_part_is_a_valid_date(ms in 0i64..=253_402_300_799_999) {
            let text = Timestamp::from_unix_ms(ms).to_rfc3339();
            prop_assert_eq!(text.len(), 24);
            let date = Date::parse(&text[..10]).unwrap();
            prop_assert_eq!(date.days_since_epoch(), ms.div_euclid(86_400_000));
            let of_day = ms.rem_euclid(86_400_000);
            let time = format!(
                "T{:02}:{:02}:{:02}.{:03}Z",
                of_day / 3_600_000,
                of_day / 60_000 % 60,
                of_day / 1000 % 60,
                of_day % 1000
            );
            prop_assert_eq!(&text[10..], time.as_str());
        }

        #[test]
        fn timestamp_never_panics(ms in any::<i64>()) {
            let _ = Timestamp::from_unix_ms(ms).to_rfc3339();
        }
    }
}
