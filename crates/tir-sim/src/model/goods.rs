//! What trucks carry: HS 2022 chapters weighted as road transit trade is
//! (vehicles, machinery, electronics, fresh fruit and plastics lead), and per
//! chapter the plausible mass of one goods line and its value per kg.

use tir_model::HsCode;
use tir_model::refdata::hs_subheadings;

use super::rng::{Cumulative, Rng};

/// One HS chapter's traffic profile.
#[derive(Debug, Clone, Copy)]
pub struct ChapterProfile {
    pub chapter: u8,
    /// Relative share of goods lines.
    pub weight: f64,
    /// Median gross mass of a full-truck goods line, kg (lognormal).
    pub mass_median_kg: f64,
    pub mass_sigma: f64,
    /// Median customs value per kg, EUR (lognormal, sigma `VALUE_SIGMA`).
    pub value_per_kg_eur: f64,
    /// Typical mass of one package (pallet, carton, car...), kg.
    pub kg_per_package: f64,
    /// Word used in trader names ("Orient Foods").
    pub sector: &'static str,
    /// The most traded subheadings, most frequent first; the chapter's other
    /// subheadings follow in a fixed shuffled order (Zipf over the ranks).
    pub head: &'static [&'static str],
}

pub const VALUE_SIGMA: f64 = 0.35;
/// Zipf exponent over a chapter's subheadings.
pub const ZIPF_S: f64 = 1.2;

#[allow(clippy::too_many_arguments)] // one row of the table below
const fn chapter(
    chapter: u8,
    weight: f64,
    mass_median_kg: f64,
    mass_sigma: f64,
    value_per_kg_eur: f64,
    kg_per_package: f64,
    sector: &'static str,
    head: &'static [&'static str],
) -> ChapterProfile {
    ChapterProfile { chapter, weight, mass_median_kg, mass_sigma, value_per_kg_eur, kg_per_package, sector, head }
}

pub const CHAPTERS: [ChapterProfile; 32] = [
    chapter(
        87,
        16.0,
        3500.0,
        0.8,
        14.0,
        800.0,
        "Motors",
        &["870323", "870332", "870899", "870840", "870421", "870829"],
    ),
    chapter(84, 13.0, 2500.0, 1.0, 22.0, 300.0, "Machinery", &["841810", "843149", "847130", "842139", "841459"]),
    chapter(85, 11.0, 1500.0, 1.0, 35.0, 40.0, "Electronics", &["852872", "851713", "854442", "850440", "851762"]),
    chapter(8, 9.0, 14000.0, 0.4, 1.8, 12.0, "Fruit", &["080810", "080610", "080510", "080222", "081310"]),
    chapter(39, 8.0, 9000.0, 0.7, 2.6, 400.0, "Plastics", &["392321", "392690", "390110", "390120"]),
    chapter(94, 7.0, 4500.0, 0.7, 5.0, 60.0, "Furniture", &["940360", "940350", "940161", "940171", "940320"]),
    chapter(61, 6.0, 2500.0, 0.8, 22.0, 25.0, "Textiles", &["610910", "611030", "610462", "611020"]),
    chapter(7, 5.0, 15000.0, 0.4, 0.9, 10.0, "Vegetables", &["070200", "070960"]),
    chapter(73, 4.0, 10000.0, 0.7, 3.0, 500.0, "Steel", &["730890"]),
    chapter(62, 4.0, 2500.0, 0.8, 28.0, 25.0, "Apparel", &["620342", "620462"]),
    chapter(20, 3.0, 15000.0, 0.5, 1.6, 12.0, "Foods", &["200290"]),
    chapter(40, 3.0, 9000.0, 0.6, 3.2, 50.0, "Tyres", &["401120", "401110"]),
    chapter(48, 3.0, 15000.0, 0.5, 1.2, 300.0, "Packaging", &["481910"]),
    chapter(72, 3.0, 22000.0, 0.2, 0.8, 2000.0, "Metals", &["721420"]),
    chapter(44, 2.5, 20000.0, 0.3, 0.5, 1500.0, "Timber", &["440799"]),
    chapter(22, 2.5, 16000.0, 0.4, 1.4, 12.0, "Beverages", &["220300", "220421", "220840"]),
    chapter(69, 2.0, 18000.0, 0.4, 0.7, 900.0, "Ceramics", &["690721"]),
    chapter(70, 2.0, 12000.0, 0.6, 1.6, 400.0, "Glass", &["700992"]),
    chapter(19, 2.0, 10000.0, 0.5, 2.4, 8.0, "Bakeries", &["190531"]),
    chapter(4, 2.0, 16000.0, 0.4, 3.5, 20.0, "Dairy", &["040690"]),
    chapter(52, 1.5, 15000.0, 0.5, 3.0, 200.0, "Cotton", &["520524"]),
    chapter(33, 1.5, 5000.0, 0.8, 10.0, 15.0, "Cosmetics", &["330499"]),
    chapter(30, 1.5, 2500.0, 1.0, 70.0, 10.0, "Pharma", &["300490"]),
    chapter(76, 1.5, 12000.0, 0.6, 4.0, 500.0, "Aluminium", &["760421"]),
    chapter(24, 1.2, 7000.0, 0.5, 30.0, 10.0, "Tobacco", &["240220"]),
    chapter(63, 1.0, 10000.0, 0.6, 1.2, 40.0, "Textiles", &["630900"]),
    chapter(2, 1.0, 18000.0, 0.3, 4.5, 20.0, "Meat", &["020130"]),
    chapter(29, 1.0, 15000.0, 0.6, 1.5, 200.0, "Chemicals", &["290511"]),
    chapter(28, 0.8, 18000.0, 0.5, 0.6, 1000.0, "Chemicals", &["280110"]),
    chapter(17, 0.8, 20000.0, 0.3, 0.6, 50.0, "Sugar", &["170199"]),
    chapter(25, 0.8, 22000.0, 0.2, 0.1, 1500.0, "Building", &["252329"]),
    chapter(68, 0.8, 20000.0, 0.3, 0.5, 1200.0, "Stone", &["680221"]),
];

/// Misdeclarations seen in practice: goods of the first chapter declared
/// under a code of the second (cigarettes as furniture, new clothes as rags...).
pub const MISDECLARATIONS: [(u8, u8); 9] =
    [(24, 94), (24, 69), (22, 20), (85, 39), (61, 63), (62, 63), (30, 33), (87, 73), (84, 73)];

/// One chapter with its subheadings in Zipf rank order.
#[derive(Debug, Clone)]
pub struct ChapterCodes {
    pub profile: ChapterProfile,
    pub codes: Vec<HsCode>,
    ranks: Cumulative,
}

/// The goods catalogue: chapters by weight, subheadings by Zipf rank.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub chapters: Vec<ChapterCodes>,
    weights: Cumulative,
}

impl Catalog {
    /// Builds the catalogue; `rng` fixes the order of the non-head subheadings.
    pub fn new(rng: &mut Rng) -> Catalog {
        let all = hs_subheadings();
        let chapters: Vec<ChapterCodes> = CHAPTERS
            .iter()
            .map(|profile| {
                let prefix = format!("{:02}", profile.chapter);
                let mut rest: Vec<&str> = all
                    .iter()
                    .map(|(code, _)| *code)
                    .filter(|c| c.starts_with(&prefix) && !profile.head.contains(c))
                    .collect();
                rng.shuffle(&mut rest);
                let codes: Vec<HsCode> = profile
                    .head
                    .iter()
                    .copied()
                    .chain(rest)
                    .map(|c| HsCode::parse(c).expect("HS codes of the catalogue are in the shipped HS 2022 list"))
                    .collect();
                ChapterCodes { profile: *profile, ranks: Cumulative::zipf(codes.len(), ZIPF_S), codes }
            })
            .collect();
        let weights = Cumulative::new(chapters.iter().map(|c| c.profile.weight));
        Catalog { chapters, weights }
    }

    pub fn chapter(&self, chapter: u8) -> &ChapterCodes {
        self.chapters.iter().find(|c| c.profile.chapter == chapter).expect("chapter listed in CHAPTERS")
    }

    /// A chapter drawn by weight.
    pub fn draw_chapter(&self, rng: &mut Rng) -> &ChapterCodes {
        &self.chapters[self.weights.sample(rng)]
    }
}

impl ChapterCodes {
    pub fn draw_code(&self, rng: &mut Rng) -> HsCode {
        self.codes[self.ranks.sample(rng)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_head_code_is_an_hs_2022_subheading_of_its_chapter() {
        for profile in CHAPTERS {
            for code in profile.head {
                let hs = HsCode::parse(code).unwrap_or_else(|e| panic!("{code}: {e}"));
                assert_eq!(hs.chapter(), profile.chapter, "{code}");
            }
        }
        let catalog = Catalog::new(&mut Rng::new(0));
        assert!(catalog.chapters.iter().all(|c| c.codes.len() > c.profile.head.len()));
    }

    #[test]
    fn misdeclared_chapters_are_in_the_catalogue() {
        let catalog = Catalog::new(&mut Rng::new(0));
        for (actual, declared) in MISDECLARATIONS {
            assert_ne!(actual, declared);
            catalog.chapter(actual);
            catalog.chapter(declared);
        }
    }

    #[test]
    fn chapters_are_listed_once() {
        let mut seen: Vec<u8> = CHAPTERS.iter().map(|c| c.chapter).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), CHAPTERS.len());
    }
}
