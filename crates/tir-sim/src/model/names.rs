//! Company names for the simulated world: hauliers and traders, each with
//! the legal form of its country.

use tir_model::Country;

use super::rng::Rng;

const LEGAL_FORMS: [(&str, &str); 29] = [
    ("EE", "OU"),
    ("LV", "SIA"),
    ("LT", "UAB"),
    ("RU", "OOO"),
    ("BY", "OOO"),
    ("PL", "Sp. z o.o."),
    ("CZ", "s.r.o."),
    ("DE", "GmbH"),
    ("AT", "GmbH"),
    ("NL", "B.V."),
    ("BE", "NV"),
    ("TR", "A.S."),
    ("GE", "LLC"),
    ("AZ", "MMC"),
    ("KZ", "TOO"),
    ("UZ", "MChJ"),
    ("BG", "EOOD"),
    ("RO", "SRL"),
    ("HU", "Kft."),
    ("RS", "d.o.o."),
    ("HR", "d.o.o."),
    ("SI", "d.o.o."),
    ("IT", "S.r.l."),
    ("GR", "A.E."),
    ("MK", "DOOEL"),
    ("IR", "Co."),
    ("TM", "HJ"),
    ("PK", "(Pvt) Ltd"),
    ("AF", "Ltd"),
];

const STEMS: [&str; 30] = [
    "Atlas",
    "Orient",
    "Nova",
    "Delta",
    "Baltic",
    "Caspian",
    "Danube",
    "Amber",
    "Falcon",
    "Silk Road",
    "Anatolia",
    "Aurora",
    "Vega",
    "Polar",
    "Sunrise",
    "Horizon",
    "Meridian",
    "Granit",
    "Zenit",
    "Kama",
    "Ararat",
    "Pamir",
    "Tulpar",
    "Kartal",
    "Sokol",
    "Vistula",
    "Neman",
    "Aral",
    "Sirius",
    "Borealis",
];

const HAULIER_WORDS: [&str; 8] = ["Trans", "Logistics", "Cargo", "Freight", "Haulage", "Express", "Lines", "Transport"];

fn legal_form(country: Country) -> &'static str {
    LEGAL_FORMS.iter().find(|(c, _)| *c == country.as_str()).map_or("Ltd", |(_, form)| *form)
}

/// A trading company's name: a stem, its `sector` and the legal form of `country`.
pub(super) fn trader(rng: &mut Rng, sector: &str, country: Country) -> String {
    format!("{} {} {}", rng.pick(&STEMS), sector, legal_form(country))
}

/// A haulier's name: a stem, a word of the trade and the legal form of `country`.
pub(super) fn haulier(rng: &mut Rng, country: Country) -> String {
    format!("{} {} {}", rng.pick(&STEMS), rng.pick(&HAULIER_WORDS), legal_form(country))
}
