//! Reference data compiled into the crate: HS 2022 subheadings, ISO 3166-1
//! countries with ISO 4217 currencies, UN/LOCODE border crossings, and the
//! countries that the TIR procedure treats as one territory (the EU).
//! See `data/README.md` for provenance and licenses.

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

const HS_CSV: &str = include_str!("../data/hs2022-subheadings.csv");
const COUNTRIES_CSV: &str = include_str!("../data/countries.csv");
const BORDER_CROSSINGS_CSV: &str = include_str!("../data/border-crossings.csv");
const TIR_TERRITORIES_CSV: &str = include_str!("../data/tir-territories.csv");

/// Accepted although not the main currency of any listed country: common
/// invoicing/guarantee currencies, the SDR, and TRY (the source has no
/// currency for Türkiye).
const EXTRA_CURRENCIES: [&str; 6] = ["EUR", "USD", "GBP", "CHF", "XDR", "TRY"];

/// One row of `countries.csv`. `currency` is empty when the source lists none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryRecord {
    pub alpha2: &'static str,
    pub alpha3: &'static str,
    pub name: &'static str,
    pub currency: &'static str,
}

/// One row of `border-crossings.csv`; coordinates are missing for some rows.
#[derive(Debug, Clone, PartialEq)]
pub struct BorderCrossing {
    pub country: &'static str,
    pub location: &'static str,
    pub name: &'static str,
    pub status: &'static str,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

/// One row of `tir-territories.csv`: a country that belongs to a TIR
/// territory of several countries (the European Union's member states, territory
/// `EU`). A country without a row is a territory of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TirTerritoryMember {
    pub territory: &'static str,
    /// ISO 3166-1 alpha-2 code.
    pub country: &'static str,
    /// The country's English name, as the file gives it.
    pub name: &'static str,
}

/// Description of an HS 2022 six-digit subheading.
pub fn hs_subheading(code: &str) -> Option<&'static str> {
    hs_entry(code).map(|&(_, description)| description)
}

/// All HS 2022 subheadings as `(code, description)`, sorted by code.
pub fn hs_subheadings() -> &'static [(&'static str, &'static str)] {
    &HS
}

/// Up to `limit` subheadings as `(code, description)`, in code order. A query
/// of digits matches code prefixes; otherwise every word of the query must
/// start a word of the description (case-insensitive), so "horse" finds
/// "Horses".
pub fn hs_search(query: &str, limit: usize) -> Vec<(&'static str, &'static str)> {
    let query = query.trim();
    if query.is_empty() || limit == 0 {
        return Vec::new();
    }
    if query.bytes().all(|b| b.is_ascii_digit()) {
        let start = HS.partition_point(|&(code, _)| code < query);
        return HS[start..].iter().take_while(|(code, _)| code.starts_with(query)).take(limit).copied().collect();
    }
    let query = query.to_lowercase();
    let wanted: Vec<&str> = words(&query).collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    HS.iter()
        .zip(HS_LOWER.iter())
        .filter(|(_, lower)| wanted.iter().all(|w| has_word_prefix(lower, w)))
        .map(|(entry, _)| entry)
        .take(limit)
        .copied()
        .collect()
}

/// Country by ISO 3166-1 alpha-2 code (exact, upper case).
pub fn country_by_alpha2(alpha2: &str) -> Option<&'static CountryRecord> {
    let list = &COUNTRIES.list;
    list.binary_search_by(|c| c.alpha2.cmp(alpha2)).ok().map(|i| &list[i])
}

/// Country by ISO 3166-1 alpha-3 code (exact, upper case).
pub fn country_by_alpha3(alpha3: &str) -> Option<&'static CountryRecord> {
    let data = &*COUNTRIES;
    data.by_alpha3.binary_search_by(|&i| data.list[i].alpha3.cmp(alpha3)).ok().map(|i| &data.list[data.by_alpha3[i]])
}

/// All countries, sorted by alpha-2 code.
pub fn countries() -> &'static [CountryRecord] {
    &COUNTRIES.list
}

/// Whether `code` is an accepted ISO 4217 currency (exact, upper case).
pub fn is_currency(code: &str) -> bool {
    currency(code).is_some()
}

/// All accepted currency codes, sorted.
pub fn currencies() -> &'static [&'static str] {
    &COUNTRIES.currencies
}

/// Every border crossing, sorted by country, location, name.
pub fn border_crossings() -> &'static [BorderCrossing] {
    &BORDER_CROSSINGS
}

/// Border crossings of one country (alpha-2, exact), in location order.
pub fn border_crossings_of(country: &str) -> Vec<&'static BorderCrossing> {
    let all = &*BORDER_CROSSINGS;
    let start = all.partition_point(|b| b.country < country);
    all[start..].iter().take_while(|b| b.country == country).collect()
}

/// Every row of `tir-territories.csv`, sorted by country.
pub fn tir_territory_members() -> &'static [TirTerritoryMember] {
    &TIR_TERRITORIES
}

/// The territory of several countries that `country` (alpha-2, exact) belongs
/// to, e.g. `Some("EU")` for "LT"; `None` when it is a territory of its own.
pub fn tir_territory_of(country: &str) -> Option<&'static str> {
    let list = &*TIR_TERRITORIES;
    list.binary_search_by(|m| m.country.cmp(country)).ok().map(|i| list[i].territory)
}

/// The interned territory code, when `code` is one of `tir-territories.csv`.
pub(crate) fn tir_territory(code: &str) -> Option<&'static str> {
    TIR_TERRITORIES.iter().find(|m| m.territory == code).map(|m| m.territory)
}

/// The interned `(code, description)` entry, so ids can hold `'static` refs.
pub(crate) fn hs_entry(code: &str) -> Option<&'static (&'static str, &'static str)> {
    HS.binary_search_by(|&(c, _)| c.cmp(code)).ok().map(|i| &HS[i])
}

/// The interned currency code, so `Currency` can be `Copy`.
pub(crate) fn currency(code: &str) -> Option<&'static str> {
    let list = &COUNTRIES.currencies;
    list.binary_search(&code).ok().map(|i| list[i])
}

/// Whether some word of `text` starts with `prefix` (itself one word).
fn has_word_prefix(text: &str, prefix: &str) -> bool {
    text.match_indices(prefix).any(|(i, _)| text[..i].chars().next_back().is_none_or(|c| !c.is_alphanumeric()))
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

const LOAD_FAILED: &str = "shipped reference data in crates/tir-model/data is malformed";

static HS: LazyLock<Vec<(&'static str, &'static str)>> = LazyLock::new(|| load_hs(HS_CSV).expect(LOAD_FAILED));
/// Lower-cased descriptions, parallel to `HS`; built on the first search so
/// each query is a substring scan rather than per-row case folding.
static HS_LOWER: LazyLock<Vec<String>> = LazyLock::new(|| HS.iter().map(|(_, d)| d.to_lowercase()).collect());
static COUNTRIES: LazyLock<Countries> = LazyLock::new(|| load_countries(COUNTRIES_CSV).expect(LOAD_FAILED));
static BORDER_CROSSINGS: LazyLock<Vec<BorderCrossing>> =
    LazyLock::new(|| load_border_crossings(BORDER_CROSSINGS_CSV).expect(LOAD_FAILED));
static TIR_TERRITORIES: LazyLock<Vec<TirTerritoryMember>> =
    LazyLock::new(|| load_tir_territories(TIR_TERRITORIES_CSV).expect(LOAD_FAILED));

#[derive(Debug)]
struct Countries {
    list: Vec<CountryRecord>,
    /// Indexes into `list`, sorted by alpha-3.
    by_alpha3: Vec<usize>,
    currencies: Vec<&'static str>,
}

/// Where and why a shipped file failed to load (shown by the `expect`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct DataError {
    file: &'static str,
    line: usize,
    problem: Cow<'static, str>,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}: {}", self.file, self.line, self.problem)
    }
}

/// Data rows of a CSV file after checking its header; yields
/// `(line number, fields)`.
fn rows(file: &'static str, text: &'static str, header: &[&str]) -> Result<Vec<(usize, Vec<&'static str>)>, DataError> {
    let err = |line: usize, problem: Cow<'static, str>| DataError { file, line, problem };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (_, first) = lines.next().ok_or_else(|| err(1, "empty file".into()))?;
    let found = split_csv_line(first).map_err(|e| err(1, e.to_string().into()))?;
    if found != header {
        return Err(err(1, format!("header {found:?}, expected {header:?}").into()));
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        if line.is_empty() {
            continue;
        }
        let fields = split_csv_line(line).map_err(|e| err(n, e.to_string().into()))?;
        if fields.len() != header.len() {
            return Err(err(n, format!("{} fields, expected {}", fields.len(), header.len()).into()));
        }
        out.push((n, fields.into_iter().map(leak).collect()));
    }
    Ok(out)
}

/// Unescaped fields must outlive the call; this runs once per file per
/// process, so leaking them is bounded.
fn leak(field: Cow<'static, str>) -> &'static str {
    match field {
        Cow::Borrowed(s) => s,
        Cow::Owned(s) => Box::leak(s.into_boxed_str()),
    }
}

fn is_upper(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_uppercase())
}

fn load_hs(text: &'static str) -> Result<Vec<(&'static str, &'static str)>, DataError> {
    const FILE: &str = "hs2022-subheadings.csv";
    let mut list = Vec::new();
    for (line, f) in rows(FILE, text, &["hscode", "description"])? {
        let (code, description) = (f[0], f[1]);
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DataError { file: FILE, line, problem: format!("bad code {code:?}").into() });
        }
        list.push((code, description));
    }
    list.sort_unstable();
    if let Some(w) = list.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(DataError { file: FILE, line: 0, problem: format!("duplicate code {}", w[0].0).into() });
    }
    Ok(list)
}

fn load_countries(text: &'static str) -> Result<Countries, DataError> {
    const FILE: &str = "countries.csv";
    let mut list = Vec::new();
    for (line, f) in rows(FILE, text, &["alpha2", "alpha3", "name", "currency"])? {
        let record = CountryRecord { alpha2: f[0], alpha3: f[1], name: f[2], currency: f[3] };
        // Country/TirId/OfficeCode rely on these shapes.
        let ok = is_upper(record.alpha2, 2)
            && is_upper(record.alpha3, 3)
            && !record.name.is_empty()
            && (record.currency.is_empty() || is_upper(record.currency, 3));
        if !ok {
            return Err(DataError { file: FILE, line, problem: format!("bad row {record:?}").into() });
        }
        list.push(record);
    }
    list.sort_unstable_by_key(|c| c.alpha2);
    let mut by_alpha3: Vec<usize> = (0..list.len()).collect();
    by_alpha3.sort_unstable_by_key(|&i| list[i].alpha3);
    let dup2 = list.windows(2).find(|w| w[0].alpha2 == w[1].alpha2);
    let dup3 = by_alpha3.windows(2).find(|w| list[w[0]].alpha3 == list[w[1]].alpha3);
    if dup2.is_some() || dup3.is_some() {
        return Err(DataError { file: FILE, line: 0, problem: "duplicate alpha-2 or alpha-3 code".into() });
    }
    let mut currencies: Vec<&'static str> =
        list.iter().map(|c| c.currency).filter(|c| !c.is_empty()).chain(EXTRA_CURRENCIES).collect();
    currencies.sort_unstable();
    currencies.dedup();
    Ok(Countries { list, by_alpha3, currencies })
}

fn load_border_crossings(text: &'static str) -> Result<Vec<BorderCrossing>, DataError> {
    const FILE: &str = "border-crossings.csv";
    let header = ["country", "location", "name", "status", "lat", "lon"];
    let mut list = Vec::new();
    for (line, f) in rows(FILE, text, &header)? {
        let bad = |what: &str| DataError { file: FILE, line, problem: format!("bad {what}").into() };
        let coordinate = |s: &str, max: f64, what: &str| -> Result<Option<f64>, DataError> {
            if s.is_empty() {
                return Ok(None);
            }
            match s.parse::<f64>() {
                Ok(v) if v.abs() <= max => Ok(Some(v)),
                _ => Err(bad(what)),
            }
        };
        if !is_upper(f[0], 2) {
            return Err(bad("country"));
        }
        if f[1].len() != 3 || !f[1].bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad("location"));
        }
        list.push(BorderCrossing {
            country: f[0],
            location: f[1],
            name: f[2],
            status: f[3],
            lat: coordinate(f[4], 90.0, "lat")?,
            lon: coordinate(f[5], 180.0, "lon")?,
        });
    }
    list.sort_by(|a, b| (a.country, a.location, a.name).cmp(&(b.country, b.location, b.name)));
    Ok(list)
}

fn load_tir_territories(text: &'static str) -> Result<Vec<TirTerritoryMember>, DataError> {
    const FILE: &str = "tir-territories.csv";
    let mut list = Vec::new();
    for (line, f) in rows(FILE, text, &["territory", "country", "name"])? {
        let member = TirTerritoryMember { territory: f[0], country: f[1], name: f[2] };
        // Territory::parse relies on both codes having a country code's shape.
        if !is_upper(member.territory, 2) || !is_upper(member.country, 2) || member.name.is_empty() {
            return Err(DataError { file: FILE, line, problem: format!("bad row {member:?}").into() });
        }
        list.push(member);
    }
    list.sort_unstable_by_key(|m| m.country);
    if let Some(w) = list.windows(2).find(|w| w[0].country == w[1].country) {
        return Err(DataError {
            file: FILE,
            line: 0,
            problem: format!("country {} listed twice", w[0].country).into(),
        });
    }
    Ok(list)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CsvError {
    /// A quoted field has no closing quote on its line.
    Unclosed,
    /// Text follows a closing quote before the next comma.
    TrailingText,
    /// A quote inside an unquoted field.
    QuoteInBareField,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CsvError::Unclosed => "unclosed quote",
            CsvError::TrailingText => "text after closing quote",
            CsvError::QuoteInBareField => "quote inside unquoted field",
        })
    }
}

/// Split one RFC 4180 record that fits on a single line. Fields borrow from
/// `line` unless they contain doubled quotes.
fn split_csv_line(line: &str) -> Result<Vec<Cow<'_, str>>, CsvError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = Vec::new();
    let mut rest = line;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut owned: Option<String> = None;
            let mut from = 0;
            let end = loop {
                let at = quoted[from..].find('"').map(|i| from + i).ok_or(CsvError::Unclosed)?;
                if quoted[at + 1..].starts_with('"') {
                    let buf = owned.get_or_insert_with(String::new);
                    buf.push_str(&quoted[from..=at]);
                    from = at + 2;
                } else {
                    break at;
                }
            };
            fields.push(match owned {
                Some(mut buf) => {
                    buf.push_str(&quoted[from..end]);
                    Cow::Owned(buf)
                }
                None => Cow::Borrowed(&quoted[..end]),
            });
            rest = &quoted[end + 1..];
            match rest.strip_prefix(',') {
                Some(next) => rest = next,
                None if rest.is_empty() => return Ok(fields),
                None => return Err(CsvError::TrailingText),
            }
        } else {
            let (field, next) = match rest.find(',') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            if field.contains('"') {
                return Err(CsvError::QuoteInBareField);
            }
            fields.push(Cow::Borrowed(field));
            match next {
                Some(next) => rest = next,
                None => return Ok(fields),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn csv_line_splits_plain_fields() {
        assert_eq!(split_csv_line("a,b,,c").unwrap(), ["a", "b", "", "c"]);
    }

    #[test]
    fn csv_line_keeps_commas_inside_quotes() {
        assert_eq!(split_csv_line(r#"0101,"Horses, asses; live",x"#).unwrap(), ["0101", "Horses, asses; live", "x"]);
    }

    #[test]
    fn csv_line_unescapes_doubled_quotes() {
        let fields = split_csv_line(r#""say ""hi"", ok","""",end"#).unwrap();
        assert_eq!(fields, [r#"say "hi", ok"#, r#"""#, "end"]);
        assert!(matches!(fields[0], Cow::Owned(_)));
    }

    #[test]
    fn csv_line_with_trailing_comma_has_empty_last_field() {
        assert_eq!(split_csv_line("a,\"b\",").unwrap(), ["a", "b", ""]);
    }

    #[test]
    fn csv_line_strips_carriage_return() {
        assert_eq!(split_csv_line("a,\"b\"\r").unwrap(), ["a", "b"]);
    }

    #[test]
    fn csv_line_rejects_malformed_quoting() {
        assert_eq!(split_csv_line(r#""open,b"#), Err(CsvError::Unclosed));
        assert_eq!(split_csv_line(r#""a"b,c"#), Err(CsvError::TrailingText));
        assert_eq!(split_csv_line(r#"a"b,c"#), Err(CsvError::QuoteInBareField));
    }

    #[test]
    fn csv_file_with_wrong_header_is_rejected() {
        let err = load_hs("code,description\n010121,x\n").unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn csv_file_with_missing_field_is_rejected() {
        let err = load_countries("alpha2,alpha3,name,currency\nLT,LTU,Lithuania\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn shipped_files_load() {
        assert_eq!(hs_subheadings().len(), 5612);
        assert_eq!(countries().len(), 249);
        assert_eq!(border_crossings().len(), 487);
        assert_eq!(tir_territory_members().len(), 27);
    }

    #[test]
    fn tir_territory_file_with_bad_rows_is_rejected() {
        let header = "territory,country,name\n";
        for (body, line) in [
            ("EU,LT,Lithuania\nEU,lv,Latvia\n", 3),
            ("EU,LT,Lithuania\nEUR,LV,Latvia\n", 3),
            ("EU,LT,\n", 2),
            ("EU,LT,Lithuania\nEU,LT,Lithuania\n", 0),
        ] {
            let err = load_tir_territories(Box::leak(format!("{header}{body}").into_boxed_str())).unwrap_err();
            assert_eq!(err.line, line, "{body:?}: {err}");
        }
        assert_eq!(load_tir_territories("country,territory,name\nLT,EU,Lithuania\n").unwrap_err().line, 1);
    }

    #[test]
    fn tir_territory_members_are_known_countries_and_codes_are_not() {
        for m in tir_territory_members() {
            let country =
                country_by_alpha2(m.country).unwrap_or_else(|| panic!("{} is not in countries.csv", m.country));
            assert_eq!(tir_territory_of(country.alpha2), Some(m.territory));
            // A territory code must never read as a country code.
            assert_eq!(country_by_alpha2(m.territory), None, "{}", m.territory);
            assert!(!m.name.is_empty());
        }
        assert!(tir_territory_members().windows(2).all(|w| w[0].country < w[1].country));
    }

    #[test]
    fn the_union_is_one_territory_of_27() {
        let union: Vec<&str> =
            tir_territory_members().iter().filter(|m| m.territory == "EU").map(|m| m.country).collect();
        assert_eq!(union.len(), 27);
        for member in ["LT", "PL", "DE", "BG", "RO", "HU", "AT", "FI", "EE", "LV", "CZ", "SK"] {
            assert_eq!(tir_territory_of(member), Some("EU"), "{member}");
        }
        for outside in ["TR", "RS", "BY", "RU", "KZ", "GE", "CH", "NO", "GB", "UA", "lt", "EU", ""] {
            assert_eq!(tir_territory_of(outside), None, "{outside}");
        }
        assert_eq!(tir_territory("EU"), Some("EU"));
        assert_eq!(tir_territory("LT"), None);
    }

    #[test]
    fn hs_lookup_finds_cars_and_horses() {
        let cars = hs_subheading("870323").unwrap();
        assert!(cars.starts_with("Vehicles;"), "{cars}");
        assert!(cars.contains("1500"), "{cars}");
        assert_eq!(hs_subheading("010121"), Some("Horses; live, pure-bred breeding animals"));
    }

    #[test]
    fn hs_lookup_rejects_headings_and_chapter_99() {
        assert_eq!(hs_subheading("0101"), None);
        assert_eq!(hs_subheading("999999"), None);
        assert_eq!(hs_subheading(""), None);
    }

    #[test]
    fn hs_search_by_word_finds_horses() {
        let found = hs_search("horses", 5);
        assert!(!found.is_empty());
        assert!(found.len() <= 5);
        assert_eq!(found[0].0, "010121");
        assert!(found.iter().all(|(_, d)| d.to_lowercase().contains("horses")));
    }

    #[test]
    fn hs_search_is_case_insensitive_and_matches_word_prefixes() {
        assert_eq!(hs_search("HORSE", 3), hs_search("horses", 3));
        assert!(!hs_search("horse live", 5).is_empty());
    }

    #[test]
    fn hs_search_by_digits_matches_code_prefix_in_order() {
        let found = hs_search("8703", 100);
        assert!(found.len() > 5);
        assert!(found.iter().all(|(c, _)| c.starts_with("8703")));
        assert!(found.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(hs_search("870323", 10), [("870323", hs_subheading("870323").unwrap())]);
    }

    #[test]
    fn hs_search_respects_limit_and_empty_queries() {
        assert_eq!(hs_search("01", 2).len(), 2);
        assert!(hs_search("horses", 0).is_empty());
        assert!(hs_search("   ", 5).is_empty());
        assert!(hs_search(";,", 5).is_empty());
        assert!(hs_search("zzzzqqq", 5).is_empty());
    }

    #[test]
    fn country_lookups_agree() {
        let lt = country_by_alpha2("LT").unwrap();
        assert_eq!(lt.alpha3, "LTU");
        assert_eq!(lt.name, "Lithuania");
        assert_eq!(lt.currency, "EUR");
        assert_eq!(country_by_alpha3("LTU"), Some(lt));
        for c in countries() {
            assert_eq!(country_by_alpha3(c.alpha3), Some(c));
        }
        assert_eq!(country_by_alpha2("lt"), None);
        assert_eq!(country_by_alpha3("XXX"), None);
    }

    #[test]
    fn multi_currency_country_keeps_first_currency() {
        assert_eq!(country_by_alpha2("NA").unwrap().currency, "NAD");
    }

    #[test]
    fn currencies_include_country_currencies_and_extras() {
        for code in ["EUR", "USD", "GBP", "CHF", "XDR", "TRY", "RUB", "KZT", "NAD"] {
            assert!(is_currency(code), "{code}");
        }
        for code in ["", "eur", "EURO", "XXX", "ZZZ"] {
            assert!(!is_currency(code), "{code}");
        }
    }

    #[test]
    fn lithuanian_border_crossings_include_medininkai() {
        let lt = border_crossings_of("LT");
        let mdk = lt.iter().find(|b| b.location == "MDK").unwrap();
        assert_eq!(mdk.name, "Medininkai");
        assert!(mdk.lat.is_some() && mdk.lon.is_some());
        assert!(lt.iter().any(|b| b.location == "KYB"));
        assert!(lt.iter().all(|b| b.country == "LT"));
        assert!(border_crossings_of("XX").is_empty());
    }

    #[test]
    fn border_crossings_are_sorted_by_country() {
        assert!(border_crossings().windows(2).all(|w| (w[0].country, w[0].location) <= (w[1].country, w[1].location)));
    }

    proptest! {
        #[test]
        fn csv_line_round_trips_quoted_fields(fields in prop::collection::vec(".*", 1..6)) {
            let fields: Vec<String> = fields.iter().map(|f| f.replace(['\r', '\n'], " ")).collect();
            let line = fields
                .iter()
                .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(",");
            prop_assert_eq!(split_csv_line(&line).unwrap(), fields);
        }

        #[test]
        fn csv_line_never_panics(line in ".*") {
            let _ = split_csv_line(&line);
        }

        #[test]
        fn lookups_never_panic(s in ".*") {
            let _ = hs_subheading(&s);
            let _ = hs_search(&s, 3);
            let _ = country_by_alpha2(&s);
            let _ = country_by_alpha3(&s);
            let _ = is_currency(&s);
            let _ = border_crossings_of(&s);
            let _ = tir_territory_of(&s);
        }
    }
}
