//! The dashboard's map: the countries of Natural Earth (`world-atlas`,
//! `assets/countries-110m.json`, compiled in) in an equirectangular
//! projection cropped to where the traffic runs, the offices of the
//! crossings, the corridors between consecutive crossings of a transport
//! and, at each border, an arrow per direction coloured by the border's
//! median crossing time. SVG written on the server: no script, no tiles.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::LazyLock;

use maud::{Markup, PreEscaped, html};
use tir_model::{Country, OfficeCode, refdata};

use crate::pages::esc;
use crate::stats::{Crossing, PairFigures, duration_text};
use crate::topojson::{self, Point, Polygon, Ring, area_centroid};

/// Natural Earth 1:110m countries, TopoJSON, from the `world-atlas` npm
/// package (assets/README.md).
const ATLAS_JSON: &str = include_str!("../assets/countries-110m.json");
/// ISO 3166-1 numeric code (world-atlas's `id`) to alpha-2.
const ISO_NUMERIC_CSV: &str = include_str!("../assets/iso-numeric.csv");

/// Width of the map's `viewBox`; the height follows the region's shape.
const WIDTH: f64 = 1000.0;
/// Offices looked up at most (one store read each).
pub const OFFICES_MAX: usize = 200;
/// The region shown when nothing has crossed yet and no country is given:
/// Europe, Türkiye, the Caucasus and Central Asia (west, south, east, north).
const DEFAULT_REGION: [f64; 4] = [-10.0, 34.0, 75.0, 62.0];
/// How far (degrees) from the border of its two countries an office may be
/// and still place the border's arrow.
const NEAR_BORDER: f64 = 1.5;
/// Colour classes of the median crossing time, fastest first.
const CLASSES: usize = 4;

/// One country of the atlas, in degrees.
pub struct AtlasCountry {
    /// ISO 3166-1 alpha-2; `None` for the few shapes without an ISO code.
    pub alpha2: Option<&'static str>,
    pub name: String,
    pub polygons: Vec<Polygon>,
    arcs: BTreeSet<usize>,
    /// West, south, east, north.
    bbox: [f64; 4],
}

pub struct Atlas {
    arcs: Vec<Vec<Point>>,
    pub countries: Vec<AtlasCountry>,
}

static ATLAS: LazyLock<Result<Atlas, String>> = LazyLock::new(|| Atlas::parse(ATLAS_JSON));

/// The embedded atlas, decoded once.
pub fn atlas() -> Result<&'static Atlas, &'static str> {
    ATLAS.as_ref().map_err(String::as_str)
}

fn bbox(rings: impl Iterator<Item = Point>) -> [f64; 4] {
    rings.fold([f64::MAX, f64::MAX, f64::MIN, f64::MIN], |b, p| {
        [b[0].min(p[0]), b[1].min(p[1]), b[2].max(p[0]), b[3].max(p[1])]
    })
}

impl Atlas {
    pub fn parse(json: &str) -> Result<Atlas, String> {
        let mut topology = topojson::parse(json)?;
        let numeric: BTreeMap<&str, &str> =
            ISO_NUMERIC_CSV.lines().skip(1).filter_map(|line| line.split_once(',')).collect();
        let shapes = topology.objects.remove("countries").ok_or("no `countries` object")?;
        let countries = shapes
            .into_iter()
            .map(|s| {
                let alpha2 =
                    s.id.as_deref()
                        .and_then(|id| numeric.get(format!("{id:0>3}").as_str()).copied())
                        .and_then(|a| refdata::country_by_alpha2(a).map(|c| c.alpha2));
                let bbox = bbox(s.polygons.iter().flat_map(|p| p.iter().flatten().copied()));
                AtlasCountry { alpha2, name: s.name.unwrap_or_default(), polygons: s.polygons, arcs: s.arcs, bbox }
            })
            .collect();
        Ok(Atlas { arcs: topology.arcs, countries })
    }

    pub fn country(&self, alpha2: &str) -> Option<&AtlasCountry> {
        self.countries.iter().find(|c| c.alpha2 == Some(alpha2))
    }

    /// A point on the border of `a` and `b`: halfway along the longest arc
    /// both use. `None` when they share none (no land border at this scale).
    pub fn border_point(&self, a: &str, b: &str) -> Option<Point> {
        let (a, b) = (self.country(a)?, self.country(b)?);
        let length = |arc: &[Point]| arc.windows(2).map(|w| distance(w[0], w[1])).sum::<f64>();
        let longest = a
            .arcs
            .intersection(&b.arcs)
            .filter_map(|&i| self.arcs.get(i))
            .max_by(|x, y| length(x).total_cmp(&length(y)))?;
        let half = length(longest) / 2.0;
        let mut walked = 0.0;
        for w in longest.windows(2) {
            let step = distance(w[0], w[1]);
            if walked + step >= half && step > 0.0 {
                let t = (half - walked) / step;
                return Some([w[0][0] + t * (w[1][0] - w[0][0]), w[0][1] + t * (w[1][1] - w[0][1])]);
            }
            walked += step;
        }
        longest.first().copied()
    }

    /// How far (degrees) `p` is from the border of `a` and `b`; `None` when
    /// they share none.
    pub fn distance_to_border(&self, a: &str, b: &str, p: Point) -> Option<f64> {
        let (a, b) = (self.country(a)?, self.country(b)?);
        a.arcs
            .intersection(&b.arcs)
            .filter_map(|&i| self.arcs.get(i))
            .flatten()
            .map(|q| distance(p, *q))
            .min_by(f64::total_cmp)
    }

    /// The centroid of the country's largest polygon (its mainland).
    pub fn anchor(&self, alpha2: &str) -> Option<Point> {
        let country = self.country(alpha2)?;
        country
            .polygons
            .iter()
            .filter_map(|p| p.first())
            .map(|outer| area_centroid(outer))
            .max_by(|x, y| x.0.abs().total_cmp(&y.0.abs()))
            .map(|(_, c)| c)
    }
}

fn distance(a: Point, b: Point) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// Equirectangular, with longitudes shortened by the cosine of the middle
/// latitude so that shapes keep their proportions in the region shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    /// West, south, east, north, in degrees.
    pub region: [f64; 4],
    k: f64,
    pub height: f64,
}

impl View {
    /// The region around `points` (longitude, latitude), padded, at least
    /// 12° by 7°, widened or heightened so the map is between 9:20 and 5:8.
    pub fn around(points: &[Point]) -> View {
        let [w, s, e, n] = if points.is_empty() { DEFAULT_REGION } else { bbox(points.iter().copied()) };
        let (mut w, mut s, mut e, mut n) = (w, s, e, n);
        let grow = |lo: &mut f64, hi: &mut f64, min: f64| {
            let pad = ((*hi - *lo) * 0.15).max(1.5);
            *lo -= pad;
            *hi += pad;
            if *hi - *lo < min {
                let more = (min - (*hi - *lo)) / 2.0;
                *lo -= more;
                *hi += more;
            }
        };
        grow(&mut w, &mut e, 12.0);
        grow(&mut s, &mut n, 7.0);
        s = s.max(-85.0);
        n = n.min(85.0);
        let k = ((s + n) / 2.0).to_radians().cos().max(0.2);
        let ratio = (n - s) / ((e - w) * k);
        if ratio < 0.45 {
            let more = (0.45 * (e - w) * k - (n - s)) / 2.0;
            s -= more;
            n += more;
        } else if ratio > 0.625 {
            let more = ((n - s) / (0.625 * k) - (e - w)) / 2.0;
            w -= more;
            e += more;
        }
        let height = WIDTH * (n - s) / ((e - w) * k);
        View { region: [w, s, e, n], k, height }
    }

    /// A longitude, latitude to the map's x, y.
    pub fn project(&self, p: Point) -> [f64; 2] {
        let [w, _, e, n] = self.region;
        let scale = WIDTH / ((e - w) * self.k);
        // A longitude on the far side of the antimeridian (Chukotka at -170°
        // on a map centred at 40°) is taken past 180°, so a ring that crosses
        // it stays in one piece instead of spanning the map.
        let centre = (w + e) / 2.0;
        let lon = match p[0] - centre {
            d if d > 180.0 => p[0] - 360.0,
            d if d < -180.0 => p[0] + 360.0,
            _ => p[0],
        };
        [(lon - w) * self.k * scale, (n - p[1]) * scale]
    }

    fn meets(&self, b: [f64; 4]) -> bool {
        let [w, s, e, n] = self.region;
        b[0] <= e && b[2] >= w && b[1] <= n && b[3] >= s
    }
}

/// Clips a projected ring to the rectangle `[x0, y0, x1, y1]`
/// (Sutherland–Hodgman: a ring stays closed and fills the same inside).
fn clip(ring: &[[f64; 2]], r: [f64; 4]) -> Vec<[f64; 2]> {
    let mut out: Vec<[f64; 2]> = ring.to_vec();
    // Each edge: (inside test, intersection with the edge's line).
    for edge in 0..4 {
        let inside = |p: [f64; 2]| match edge {
            0 => p[0] >= r[0],
            1 => p[0] <= r[2],
            2 => p[1] >= r[1],
            _ => p[1] <= r[3],
        };
        let cut = |a: [f64; 2], b: [f64; 2]| {
            let t = match edge {
                0 => (r[0] - a[0]) / (b[0] - a[0]),
                1 => (r[2] - a[0]) / (b[0] - a[0]),
                2 => (r[1] - a[1]) / (b[1] - a[1]),
                _ => (r[3] - a[1]) / (b[1] - a[1]),
            };
            [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]
        };
        let input = std::mem::take(&mut out);
        for (i, &now) in input.iter().enumerate() {
            let before = input[(i + input.len() - 1) % input.len()];
            match (inside(before), inside(now)) {
                (true, true) => out.push(now),
                (true, false) => out.push(cut(before, now)),
                (false, true) => {
                    out.push(cut(before, now));
                    out.push(now);
                }
                (false, false) => {}
            }
        }
        if out.is_empty() {
            break;
        }
    }
    out
}

/// An SVG path (`M…L…Z`) of a polygon's rings, clipped to the view; empty
/// when none of it shows.
pub fn polygon_path(view: &View, polygon: &[Ring]) -> String {
    let margin = 5.0;
    let frame = [-margin, -margin, WIDTH + margin, view.height + margin];
    let mut d = String::new();
    for ring in polygon {
        let projected: Vec<[f64; 2]> = ring.iter().map(|&p| view.project(p)).collect();
        let clipped = clip(&projected, frame);
        let mut last: Option<(i64, i64)> = None;
        let mut points = 0;
        let mut part = String::new();
        for p in clipped {
            // Tenths of a unit: finer does not show, and the page stays small.
            let q = ((p[0] * 10.0).round() as i64, (p[1] * 10.0).round() as i64);
            if last == Some(q) {
                continue;
            }
            let _ = write!(part, "{}{}", if last.is_none() { "M" } else { "L" }, coordinate(q));
            last = Some(q);
            points += 1;
        }
        if points >= 3 {
            d += &part;
            d += "Z";
        }
    }
    d
}

fn coordinate((x, y): (i64, i64)) -> String {
    let tenths = |v: i64| {
        let sign = if v < 0 { "-" } else { "" };
        let a = v.unsigned_abs();
        if a.is_multiple_of(10) { format!("{sign}{}", a / 10) } else { format!("{sign}{}.{}", a / 10, a % 10) }
    };
    format!("{} {}", tenths(x), tenths(y))
}

/// Where an office is, when known: its UN/LOCODE (as registered with the
/// office) among the shipped border crossings that have coordinates.
pub fn locode_point(unlocode: &str) -> Option<Point> {
    let (country, location) = (unlocode.get(..2)?, unlocode.get(2..)?);
    let crossing = refdata::border_crossings_of(country).into_iter().find(|b| b.location == location)?;
    Some([crossing.lon?, crossing.lat?])
}

/// A border crossed, as (exit, entry).
type Border = (Country, Country);

/// What the map draws, worked out from the crossings (pure, tested).
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// Per border (exit, entry): where its arrow is drawn, the count, median.
    pub borders: Vec<BorderFlow>,
    /// Offices of the crossings: code, where, and whether the position is the
    /// office's own (its UN/LOCODE) or its border's.
    pub offices: Vec<(String, Point, bool)>,
    /// Consecutive crossings of the same transports: from, to, transports.
    pub corridors: Vec<(Point, Point, usize)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BorderFlow {
    pub exit: Country,
    pub entry: Country,
    pub at: Point,
    pub count: usize,
    pub median: f64,
}

/// The flow of `crossings`: each border at its busiest located office of
/// entry (else of exit, else the shared border in the atlas, else between
/// the two countries), the offices, and the corridors.
pub fn flow(atlas: &Atlas, crossings: &[Crossing], pairs: &[PairFigures], located: &BTreeMap<String, Point>) -> Flow {
    let mut at: BTreeMap<(Country, Country), Point> = BTreeMap::new();
    for p in pairs {
        let here: Vec<&Crossing> = crossings.iter().filter(|c| c.exit == p.exit && c.entry == p.entry).collect();
        let (p_exit, p_entry) = (p.exit.as_str(), p.entry.as_str());
        // An office far from the border of the two countries (the data may
        // pair a crossing with an inland office) does not place the border.
        let near = |o: &str| {
            located
                .get(o)
                .is_some_and(|p| atlas.distance_to_border(p_exit, p_entry, *p).is_none_or(|d| d <= NEAR_BORDER))
        };
        let busiest = |offices: Vec<&str>| {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for o in offices.into_iter().filter(|o| near(o)) {
                *counts.entry(o).or_default() += 1;
            }
            counts.into_iter().max_by_key(|(o, n)| (*n, std::cmp::Reverse(*o))).map(|(o, _)| located[o])
        };
        let point = busiest(here.iter().filter_map(|c| c.entry_office.as_ref().map(OfficeCode::as_str)).collect())
            .or_else(|| busiest(here.iter().filter_map(|c| c.exit_office.as_ref().map(OfficeCode::as_str)).collect()))
            .or_else(|| atlas.border_point(p.exit.as_str(), p.entry.as_str()))
            .or_else(|| {
                let (a, b) = (atlas.anchor(p.exit.as_str())?, atlas.anchor(p.entry.as_str())?);
                Some([(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0])
            });
        if let Some(point) = point {
            at.insert((p.exit, p.entry), point);
        }
    }
    let borders = pairs
        .iter()
        .filter_map(|p| {
            let point = *at.get(&(p.exit, p.entry))?;
            Some(BorderFlow { exit: p.exit, entry: p.entry, at: point, count: p.count, median: p.median })
        })
        .collect();
    let mut offices: BTreeMap<String, (Point, bool)> = BTreeMap::new();
    for c in crossings {
        for office in [c.exit_office.as_ref(), c.entry_office.as_ref()].into_iter().flatten() {
            let code = office.as_str().to_owned();
            if let Some(p) = located.get(&code) {
                offices.insert(code, (*p, true));
            } else if let Some(p) = at.get(&(c.exit, c.entry)) {
                offices.entry(code).or_insert((*p, false));
            }
        }
    }
    // Each transport's crossings in time order; consecutive ones make a corridor.
    let mut by_transport: BTreeMap<&str, Vec<&Crossing>> = BTreeMap::new();
    for c in crossings {
        by_transport.entry(&c.reference).or_default().push(c);
    }
    let mut segments: BTreeMap<(Border, Border), usize> = BTreeMap::new();
    for list in by_transport.values_mut() {
        list.sort_by_key(|c| c.started_at.unix_ms());
        for w in list.windows(2) {
            *segments.entry(((w[0].exit, w[0].entry), (w[1].exit, w[1].entry))).or_default() += 1;
        }
    }
    let corridors = segments
        .into_iter()
        .filter_map(|((a, b), n)| Some((*at.get(&a)?, *at.get(&b)?, n)))
        .filter(|(a, b, _)| a != b)
        .collect();
    Flow { borders, offices: offices.into_iter().map(|(code, (p, own))| (code, p, own)).collect(), corridors }
}

/// A round step (1, 2 or 5 × 10^k) at or above `raw`.
fn round_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|s| *s >= raw).unwrap_or(10.0 * power)
}

/// The colour classes' width: `CLASSES` bands of a round width from 0 up
/// past the slowest median.
pub fn band(medians: impl Iterator<Item = f64>) -> f64 {
    let slowest = medians.fold(0.0, f64::max);
    round_step(slowest / CLASSES as f64).max(0.1)
}

pub fn class_of(median: f64, band: f64) -> usize {
    ((median.max(0.0) / band).floor() as usize).min(CLASSES - 1)
}

fn xy(p: [f64; 2]) -> String {
    format!("{:.1} {:.1}", p[0], p[1])
}

/// What the map must show: the borders and offices, and the countries
/// crossed (and `home`) as far as 6° around their borders, within the
/// usual region (Europe to Central Asia), so a crossing is seen in its
/// countries and Russia does not stretch the map to the Pacific.
pub fn region_points(atlas: &Atlas, flow: &Flow, home: Option<Country>) -> Vec<Point> {
    const AROUND: f64 = 6.0;
    let mut points: Vec<Point> = flow.borders.iter().map(|b| b.at).collect();
    points.extend(flow.offices.iter().map(|(_, p, _)| *p));
    let mut countries: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
    for b in &flow.borders {
        countries.entry(b.exit.as_str()).or_default().push(b.at);
        countries.entry(b.entry.as_str()).or_default().push(b.at);
    }
    if let Some(h) = home {
        countries.entry(h.as_str()).or_default();
    }
    let [dw, ds, de, dn] = DEFAULT_REGION;
    for (code, near) in countries {
        let Some(c) = atlas.country(code) else { continue };
        let mut b = [c.bbox[0].max(dw), c.bbox[1].max(ds), c.bbox[2].min(de), c.bbox[3].min(dn)];
        if !near.is_empty() {
            let around = bbox(near.into_iter());
            b = [
                b[0].max(around[0] - AROUND),
                b[1].max(around[1] - AROUND),
                b[2].min(around[2] + AROUND),
                b[3].min(around[3] + AROUND),
            ];
        }
        if b[0] <= b[2] && b[1] <= b[3] {
            points.extend([[b[0], b[1]], [b[2], b[3]]]);
        }
    }
    points
}

/// The map of `flow`, `home` (the customs' country) shaded.
pub fn map_svg(atlas: &Atlas, flow: &Flow, home: Option<Country>) -> Markup {
    let view = View::around(&region_points(atlas, flow, home));
    let traffic: BTreeSet<&str> = flow.borders.iter().flat_map(|b| [b.exit.as_str(), b.entry.as_str()]).collect();
    let title = if flow.borders.is_empty() {
        "Map of the region: no crossing yet".to_owned()
    } else {
        format!(
            "Map of the crossings: {}",
            flow.borders
                .iter()
                .map(|b| format!(
                    "{} → {} {} ({})",
                    b.exit.as_str(),
                    b.entry.as_str(),
                    b.count,
                    duration_text(b.median)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut svg = format!(
        r#"<svg class="map" viewBox="0 0 {WIDTH} {:.0}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title><rect class="sea" width="{WIDTH}" height="{:.0}"/><g class="land">"#,
        view.height,
        esc(&title),
        esc(&title),
        view.height
    );
    for country in atlas.countries.iter().filter(|c| view.meets(c.bbox)) {
        let d: String = country.polygons.iter().map(|p| polygon_path(&view, p)).collect();
        if d.is_empty() {
            continue;
        }
        let code = country.alpha2.unwrap_or("");
        let class = match code {
            c if home.is_some_and(|h| h.as_str() == c) => "country home",
            c if traffic.contains(c) => "country traffic",
            _ => "country",
        };
        let _ = write!(
            svg,
            r#"<path class="{class}" data-country="{code}" d="{d}"><title>{}</title></path>"#,
            esc(&country.name)
        );
    }
    svg += "</g>";
    // Country codes of the countries crossed, at the mean of their visible outline.
    for code in &traffic {
        let Some(country) = atlas.country(code) else { continue };
        let inside: Vec<[f64; 2]> = country
            .polygons
            .iter()
            .flat_map(|p| p.first().into_iter().flatten())
            .map(|&p| view.project(p))
            .filter(|p| p[0] >= 0.0 && p[0] <= WIDTH && p[1] >= 0.0 && p[1] <= view.height)
            .collect();
        if inside.is_empty() {
            continue;
        }
        let n = inside.len() as f64;
        let c = inside.iter().fold([0.0, 0.0], |s, p| [s[0] + p[0] / n, s[1] + p[1] / n]);
        let _ = write!(
            svg,
            r#"<text class="country-code" x="{:.1}" y="{:.1}" text-anchor="middle">{code}</text>"#,
            c[0], c[1]
        );
    }
    let most = flow.corridors.iter().map(|c| c.2).max().unwrap_or(1).max(1) as f64;
    svg += r#"<g class="corridors">"#;
    for (a, b, n) in &flow.corridors {
        let width = 1.5 + 5.0 * (*n as f64 / most).sqrt();
        let _ = write!(
            svg,
            r#"<path class="corridor" d="M{}L{}" stroke-width="{width:.1}"><title>{n} transports</title></path>"#,
            xy(view.project(*a)),
            xy(view.project(*b))
        );
    }
    svg += "</g>";
    let band = band(flow.borders.iter().map(|b| b.median));
    let busiest = flow.borders.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
    svg += r#"<g class="crossings">"#;
    for b in &flow.borders {
        let p = view.project(b.at);
        // Pointing from the exit country to the entry country; the two
        // directions of one border sit side by side.
        let direction = match (atlas.anchor(b.exit.as_str()), atlas.anchor(b.entry.as_str())) {
            (Some(from), Some(to)) => {
                let (f, t) = (view.project(from), view.project(to));
                let (dx, dy) = (t[0] - f[0], t[1] - f[1]);
                let len = (dx * dx + dy * dy).sqrt();
                if len > 1e-6 { [dx / len, dy / len] } else { [1.0, 0.0] }
            }
            _ => [1.0, 0.0],
        };
        let normal = [-direction[1], direction[0]];
        let side = 5.0;
        let centre = [p[0] + normal[0] * side, p[1] + normal[1] * side];
        let half = 28.0;
        let from = [centre[0] - direction[0] * half, centre[1] - direction[1] * half];
        let to = [centre[0] + direction[0] * half, centre[1] + direction[1] * half];
        let head = 13.0;
        let left = [
            to[0] - direction[0] * head + normal[0] * head * 0.6,
            to[1] - direction[1] * head + normal[1] * head * 0.6,
        ];
        let right = [
            to[0] - direction[0] * head - normal[0] * head * 0.6,
            to[1] - direction[1] * head - normal[1] * head * 0.6,
        ];
        let width = 2.0 + 5.0 * (b.count as f64 / busiest).sqrt();
        let class = class_of(b.median, band);
        let pair = format!("{}-{}", b.exit.as_str(), b.entry.as_str());
        let label = format!(
            "{} → {}: {} crossings, median {}",
            b.exit.as_str(),
            b.entry.as_str(),
            b.count,
            duration_text(b.median)
        );
        let _ = write!(
            svg,
            r#"<g class="crossing t{class}" data-pair="{pair}"><title>{}</title><path class="arrow" d="M{}L{}" stroke-width="{width:.1}"/><path class="head" d="M{}L{}L{}Z"/><text class="count" x="{:.1}" y="{:.1}">{}</text></g>"#,
            esc(&label),
            xy(from),
            xy(to),
            xy(to),
            xy(left),
            xy(right),
            centre[0] + normal[0] * 14.0,
            centre[1] + normal[1] * 14.0 + 4.0,
            b.count
        );
    }
    svg += "</g><g class=\"offices\">";
    let label_offices = flow.offices.len() <= 12;
    for (code, point, own) in &flow.offices {
        let p = view.project(*point);
        let (class, title) = if *own {
            ("office", format!("{code} (its UN/LOCODE)"))
        } else {
            ("office placed", format!("{code} (no coordinates: drawn at its border)"))
        };
        let _ = write!(
            svg,
            r#"<circle class="{class}" data-office="{code}" cx="{:.1}" cy="{:.1}" r="5"><title>{}</title></circle>"#,
            p[0],
            p[1],
            esc(&title)
        );
        if label_offices && *own {
            let _ =
                write!(svg, r#"<text class="office-code" x="{:.1}" y="{:.1}">{code}</text>"#, p[0] + 7.0, p[1] - 6.0);
        }
    }
    svg += "</g></svg>";
    html! { (PreEscaped(svg)) }
}

/// The map's legend: the colour bands of the median crossing time.
pub fn legend(flow: &Flow) -> Markup {
    let band = band(flow.borders.iter().map(|b| b.median));
    html! {
        ul.legend aria-label="Legend of the map" {
            @for class in 0..CLASSES {
                li {
                    svg.swatch viewBox="0 0 24 10" aria-hidden="true" { path class=(format!("arrow t{class}")) d="M1 5L23 5" stroke-width="4" {} }
                    " median "
                    @if class + 1 == CLASSES { (duration_text(band * class as f64)) " or more" }
                    @else { (duration_text(band * class as f64)) " to " (duration_text(band * (class + 1) as f64)) }
                }
            }
            li { svg.swatch viewBox="0 0 24 10" aria-hidden="true" { circle.office cx="12" cy="5" r="4" {} } " office at its UN/LOCODE" }
            li { svg.swatch viewBox="0 0 24 10" aria-hidden="true" { circle class="office placed" cx="12" cy="5" r="4" {} } " office without coordinates, at its border" }
            li { svg.swatch viewBox="0 0 24 10" aria-hidden="true" { path.corridor d="M1 5L23 5" stroke-width="3" {} } " corridor: consecutive crossings of the same transports" }
        }
    }
}

/// Where the offices of `crossings` are, from their registered UN/LOCODE.
pub async fn locate(
    store: &dyn tir_store::Store,
    crossings: &[Crossing],
) -> Result<BTreeMap<String, Point>, tir_store::StoreError> {
    let codes: BTreeSet<&OfficeCode> =
        crossings.iter().flat_map(|c| [c.exit_office.as_ref(), c.entry_office.as_ref()]).flatten().collect();
    let mut out = BTreeMap::new();
    for code in codes.into_iter().take(OFFICES_MAX) {
        let Some(office) = store.office(code).await? else { continue };
        if let Some(point) = office.unlocode.as_deref().and_then(locode_point) {
            out.insert(code.as_str().to_owned(), point);
        }
    }
    Ok(out)
}

/// The dashboard's map section.
pub async fn section(
    store: &dyn tir_store::Store,
    crossings: &[Crossing],
    pairs: &[PairFigures],
    home: Option<Country>,
) -> Result<Markup, tir_store::StoreError> {
    let located = locate(store, crossings).await?;
    let Ok(atlas) = atlas() else {
        return Ok(html! {});
    };
    let flow = flow(atlas, crossings, pairs, &located);
    Ok(html! {
        section aria-labelledby="map" {
            h2 #map { "Map of the crossings" }
            p.hint { "Each border crossed, an arrow from the country of exit to the country of entry, its width by the crossings and its colour by their median crossing time; corridors join the consecutive crossings of the same transports. Countries: Natural Earth (public domain)." }
            figure.map-figure {
                (map_svg(atlas, &flow, home))
                figcaption { (legend(&flow)) }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tir_model::Timestamp;

    fn country(code: &str) -> Country {
        Country::parse(code).unwrap()
    }

    #[test]
    fn the_embedded_atlas_decodes_with_iso_codes_and_borders() {
        let atlas = atlas().expect("the atlas decodes");
        assert!(atlas.countries.len() > 170, "{}", atlas.countries.len());
        let lt = atlas.country("LT").expect("Lithuania");
        assert_eq!(lt.name, "Lithuania");
        let [w, s, e, n] = lt.bbox;
        assert!(w > 20.0 && e < 27.5 && s > 53.5 && n < 57.0, "{:?}", lt.bbox);
        let anchor = atlas.anchor("LT").unwrap();
        assert!((23.0..25.5).contains(&anchor[0]) && (54.5..56.0).contains(&anchor[1]), "{anchor:?}");
        // Türkiye and Georgia share a border; Türkiye and Lithuania do not.
        let tr_ge = atlas.border_point("TR", "GE").expect("a TR-GE border");
        assert!((41.0..43.8).contains(&tr_ge[0]) && (40.8..41.8).contains(&tr_ge[1]), "{tr_ge:?}");
        let by_lt = atlas.border_point("BY", "LT").expect("a BY-LT border");
        assert!((23.0..27.0).contains(&by_lt[0]) && (53.8..56.0).contains(&by_lt[1]), "{by_lt:?}");
        assert_eq!(atlas.border_point("TR", "LT"), None);
        assert_eq!(atlas.border_point("TR", "XX"), None);
    }

    #[test]
    fn a_country_projects_to_a_path_inside_the_view() {
        let atlas = atlas().unwrap();
        let view = View::around(&[[22.0, 54.0], [27.0, 56.0]]);
        let d = polygon_path(&view, &atlas.country("LT").unwrap().polygons[0]);
        assert!(d.starts_with('M') && d.ends_with('Z') && d.matches('L').count() > 10, "{d}");
        for pair in d.trim_end_matches('Z').split(['M', 'L', 'Z']).filter(|s| !s.is_empty()) {
            let xy: Vec<f64> = pair.split(' ').map(|v| v.parse().unwrap()).collect();
            assert!((0.0..=WIDTH).contains(&xy[0]) && (0.0..=view.height).contains(&xy[1]), "{pair} in {d}");
        }
        // Far away, nothing is drawn: Australia is not on a map of Lithuania.
        let au = atlas.country("AU").unwrap();
        assert_eq!(au.polygons.iter().map(|p| polygon_path(&view, p)).collect::<String>(), "");
        // Russia is clipped to the frame, not drawn to the Pacific.
        let ru: String = atlas.country("RU").unwrap().polygons.iter().map(|p| polygon_path(&view, p)).collect();
        assert!(!ru.is_empty() && ru.len() < 20_000, "{}", ru.len());
        // Nor across the map where its outline crosses the antimeridian.
        let wide = View::around(&[[25.0, 54.0], [70.0, 41.0]]);
        let ru: String = atlas.country("RU").unwrap().polygons.iter().map(|p| polygon_path(&wide, p)).collect();
        for ring in ru.split('M').filter(|r| !r.is_empty()) {
            let xs: Vec<f64> = ring
                .trim_end_matches('Z')
                .split('L')
                .map(|pair| pair.split(' ').next().unwrap().parse().unwrap())
                .collect();
            for w in xs.windows(2) {
                assert!((w[1] - w[0]).abs() < WIDTH / 2.0, "a segment spans the map: {w:?}");
            }
        }
    }

    #[test]
    fn the_view_is_padded_and_keeps_a_readable_shape() {
        let view = View::around(&[[25.0, 54.0]]);
        let [w, s, e, n] = view.region;
        assert!(e - w >= 12.0 && n - s >= 7.0 && w < 25.0 && e > 25.0 && s < 54.0 && n > 54.0, "{view:?}");
        let ratio = view.height / WIDTH;
        assert!((0.449..=0.626).contains(&ratio), "{ratio}");
        // Projection: west edge to x = 0, north edge to y = 0, south-east corner to (WIDTH, height).
        assert_eq!(view.project([w, n]), [0.0, 0.0]);
        let corner = view.project([e, s]);
        assert!((corner[0] - WIDTH).abs() < 1e-6 && (corner[1] - view.height).abs() < 1e-6, "{corner:?}");
        // A wide corridor (Germany to Uzbekistan) keeps its width.
        let wide = View::around(&[[13.0, 52.0], [69.0, 41.0]]);
        assert!(wide.region[0] < 13.0 && wide.region[2] > 69.0);
        assert!(View::around(&[]).region[0] < DEFAULT_REGION[0]);
    }

    #[test]
    fn clipping_keeps_the_inside_of_a_ring() {
        let square = [[-5.0, -5.0], [5.0, -5.0], [5.0, 5.0], [-5.0, 5.0], [-5.0, -5.0]];
        let clipped = clip(&square, [0.0, 0.0, 10.0, 10.0]);
        let (area, _) = area_centroid(&[clipped.clone(), vec![clipped[0]]].concat());
        assert!((area.abs() - 25.0).abs() < 1e-9, "{clipped:?}");
        assert!(clip(&square, [20.0, 20.0, 30.0, 30.0]).is_empty());
    }

    #[test]
    fn coordinates_are_written_in_tenths() {
        assert_eq!(coordinate((123, -45)), "12.3 -4.5");
        assert_eq!(coordinate((-5, 100)), "-0.5 10");
        assert_eq!(coordinate((0, 7)), "0 0.7");
    }

    fn crossing(
        reference: &str,
        exit: &str,
        entry: &str,
        exit_office: &str,
        entry_office: Option<&str>,
        started: i64,
    ) -> Crossing {
        Crossing {
            reference: reference.into(),
            exit: country(exit),
            entry: country(entry),
            exit_office: Some(OfficeCode::parse(exit_office).unwrap()),
            entry_office: entry_office.map(|o| OfficeCode::parse(o).unwrap()),
            terminated_at: Timestamp::from_unix_ms(started - 60_000),
            started_at: Timestamp::from_unix_ms(started),
        }
    }

    #[test]
    fn the_flow_places_borders_offices_and_corridors() {
        let atlas = atlas().unwrap();
        let crossings = vec![
            crossing("XA1", "RU", "BY", "RUSIM001", Some("BYSIM002"), 1_000_000),
            crossing("XA1", "BY", "LT", "BYSIM001", Some("LTMDK001"), 2_000_000),
            crossing("XA2", "BY", "LT", "BYSIM001", Some("LTMDK001"), 3_000_000),
        ];
        let pairs = crate::stats::by_pair(&crossings);
        let medininkai = locode_point("LTMDK").expect("Medininkai has coordinates");
        assert!((25.0..26.5).contains(&medininkai[0]) && (54.0..55.0).contains(&medininkai[1]), "{medininkai:?}");
        assert_eq!(locode_point("LTXXX"), None);
        let located = BTreeMap::from([("LTMDK001".to_owned(), medininkai)]);
        let flow = flow(atlas, &crossings, &pairs, &located);
        assert_eq!(flow.borders.len(), 2);
        let by_lt = flow.borders.iter().find(|b| b.exit.as_str() == "BY").unwrap();
        assert_eq!((by_lt.at, by_lt.count, by_lt.median), (medininkai, 2, 60.0));
        // RU → BY has no located office: drawn on the RU-BY border.
        let ru_by = flow.borders.iter().find(|b| b.exit.as_str() == "RU").unwrap();
        assert_eq!(Some(ru_by.at), atlas.border_point("RU", "BY"));
        assert!(flow.offices.contains(&("LTMDK001".to_owned(), medininkai, true)), "{:?}", flow.offices);
        assert!(flow.offices.contains(&("BYSIM001".to_owned(), medininkai, false)), "{:?}", flow.offices);
        assert!(flow.offices.iter().any(|(c, p, own)| c == "RUSIM001" && *p == ru_by.at && !own));
        let klaipeda = locode_point("LTMLM").unwrap();
        assert!(atlas.distance_to_border("BY", "LT", medininkai).unwrap() < 0.5);
        assert!(atlas.distance_to_border("BY", "LT", klaipeda).unwrap() > NEAR_BORDER, "Klaipėda is on the sea");
        assert_eq!(atlas.distance_to_border("TR", "LT", medininkai), None);
        let far = BTreeMap::from([("LTMDK001".to_owned(), klaipeda)]);
        let misplaced = super::flow(atlas, &crossings, &pairs, &far);
        assert_eq!(
            misplaced.borders.iter().find(|b| b.exit.as_str() == "BY").unwrap().at,
            atlas.border_point("BY", "LT").unwrap()
        );
        // XA1 crossed RU → BY then BY → LT: one corridor, one transport.
        assert_eq!(flow.corridors, vec![(ru_by.at, medininkai, 1)]);

        // The map holds Lithuania, Belarus and western Russia, not Siberia.
        let view = View::around(&region_points(atlas, &flow, Some(country("LT"))));
        let [w, s, e, n] = view.region;
        assert!(w < 21.0 && e > 32.0 && e < 60.0 && s < 51.5 && n > 56.5 && n < 75.0, "{view:?}");
        let svg = map_svg(atlas, &flow, Some(country("LT"))).into_string();
        assert!(svg.starts_with("<svg class=\"map\""), "{}", &svg[..200]);
        assert!(svg.contains(r#"class="country home" data-country="LT""#));
        assert!(svg.contains(r#"class="country traffic" data-country="BY""#));
        assert!(svg.contains(r#"data-pair="BY-LT""#) && svg.contains(r#"data-pair="RU-BY""#));
        assert!(svg.contains(r#"data-office="LTMDK001""#) && svg.contains(r#"class="corridor""#));
        assert!(svg.contains("<title>BY → LT: 2 crossings, median 1 min</title>"), "{svg}");
        assert!(svg.len() < 120_000, "{} bytes", svg.len());
        let legend = legend(&flow).into_string();
        assert!(legend.contains("median 0.0 s to") && legend.contains("or more"), "{legend}");
    }

    #[test]
    fn colour_bands_are_round_and_cover_the_slowest() {
        let b = band([60.0, 120.0, 330.0].into_iter());
        assert_eq!(b, 100.0);
        assert_eq!((class_of(60.0, b), class_of(120.0, b), class_of(330.0, b), class_of(1e9, b)), (0, 1, 3, 3));
        assert_eq!(band(std::iter::empty()), 1.0);
        assert_eq!(band([2.0].into_iter()), 0.5);
    }
}
