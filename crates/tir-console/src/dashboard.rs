//! `GET /console/dashboard`: border-crossing times, daily volume per crossing
//! point and inspection hit rates, for customs (their country's transports)
//! and the admin (every transport). The charts are SVG drawn here, each with
//! a table of the same figures beside it: no JavaScript, readable at 390 px.

use std::collections::{BTreeSet, HashMap};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, PreEscaped, html};
use tir_model::Country;
use tir_model::party::Party;
use tir_store::console::CrossingFigures;

use crate::Console;
use crate::pages::{self, LIVE_EVERY, Page, esc};
use crate::session::Signed;
use crate::stats::{self, Bin, PairFigures, duration_text};

/// The crossings counted: those started at the entry on the last days (UTC), today included.
const WINDOW_DAYS: i64 = 30;
/// Crossing times per border read at most, the latest, for the median, p90 and histogram.
const SAMPLE_MAX: usize = 10_000;
/// Days shown in the daily volume.
const DAYS_SHOWN: usize = 14;

pub async fn dashboard(State(console): State<Console>, signed: Signed) -> Response {
    page(&console, &signed).await.unwrap_or_else(|page| page)
}

/// `GET /console/dashboard/live[?seen=TAG]`: the live part alone (no page
/// around it), which htmx swaps in place of the one on the page. `TAG` is
/// what the part shown was drawn from (`live_tag`); while it is still current
/// the answer is 204, which htmx does not swap, and nothing is recomputed.
pub async fn live(
    State(console): State<Console>,
    signed: Signed,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let result = async {
        let country = viewer(&signed)?;
        let (since_ms, tag) = live_tag(&console, country).await?;
        if let Some(unchanged) = pages::unchanged(&query.map(|Query(q)| q).unwrap_or_default(), &tag) {
            return Ok(unchanged);
        }
        let figures = crossing_figures(&console, country, since_ms).await?;
        Ok(pages::html_response(200, live_part(&console, country, since_ms, &figures, &tag).await?.into_string()))
    };
    result.await.unwrap_or_else(|page: Response| page)
}

/// The window's start and the tag of what the live part shows (`pages::live_tag`):
/// the journal's head, the window, and whose view.
async fn live_tag(console: &Console, country: Option<Country>) -> Result<(i64, String), Response> {
    let since_ms = window_start(crate::session::now_ms());
    let tag = pages::live_tag(console, &format!("{since_ms}-{}", country.map_or("all", |c| c.as_str()))).await?;
    Ok((since_ms, tag))
}

/// Customs see their country's transports, the admin every one (`None`).
fn viewer(signed: &Signed) -> Result<Option<Country>, Response> {
    match &signed.party {
        Party::Customs { country, .. } => Ok(Some(*country)),
        Party::Admin => Ok(None),
        _ => Err(pages::forbidden(signed)),
    }
}

/// The store's crossing figures of the window from `since_ms`, aggregated by the
/// database (docs/console.md, "At scale").
async fn crossing_figures(
    console: &Console,
    country: Option<Country>,
    since_ms: i64,
) -> Result<CrossingFigures, Response> {
    console.app.store.crossing_figures(country, since_ms, SAMPLE_MAX).await.map_err(pages::store_failed)
}

/// The first moment of the window: the start of the day `WINDOW_DAYS - 1` days before today's (UTC).
fn window_start(now_ms: i64) -> i64 {
    let (today, _) = tir_store::console::window(now_ms);
    (today - (WINDOW_DAYS - 1)) * tir_store::console::DAY_MS
}

/// The map, the crossing times and the daily volume, in the element htmx
/// refreshes: `hx-get` of this part alone every 10 s, swapped for the whole
/// element (`outerHTML`), so the answer carries the trigger on.
async fn live_part(
    console: &Console,
    country: Option<Country>,
    since_ms: i64,
    figures: &CrossingFigures,
    tag: &str,
) -> Result<Markup, Response> {
    let since = tir_store::console::day_of(since_ms);
    let crossings: u64 = figures.pairs.iter().map(|p| p.count).sum();
    let pairs = stats::pairs_of(&figures.pairs);
    let daily = stats::daily_of(&figures.daily);
    // The map places offices and corridors from the latest crossings (a bounded sample).
    let recent: Vec<stats::Crossing> = figures.recent.iter().map(stats::Crossing::from_row).collect();
    let map = crate::map::section(&*console.app.store, &recent, &pairs, country).await.map_err(pages::store_failed)?;
    let scope = match country {
        Some(c) => format!("Transports announced to the customs of {}: their crossings into or out of it.", c.name()),
        None => "Every transport.".to_owned(),
    };
    Ok(html! {
        div #live hx-get=(format!("/console/dashboard/live?seen={tag}")) hx-trigger=(LIVE_EVERY) hx-swap="outerHTML" {
            p.hint { (scope) " The last " (WINDOW_DAYS) " days (since " (since) ", UTC): " (crossings) " border crossings." }
            (map)
            section aria-labelledby="crossing-times" {
                h2 #crossing-times { "Border-crossing time" }
                p.hint { "From the termination of the TIR operation at the exit to the start of the next at the entry (as in the WCO Time Release Study), for each pair of neighbouring TIR territories." }
                @if pairs.is_empty() {
                    p { "No transport has crossed a border yet." }
                } @else {
                    div.table-wrap { table {
                        caption.hint { "Crossing time by border" }
                        thead { tr { th scope="col" { "Border" } th scope="col" { "Crossings" } th scope="col" { "Median" } th scope="col" { "90th percentile" } } }
                        tbody { @for p in &pairs { tr {
                            td { (border(p)) } td { (p.count) } td { (duration_text(p.median)) } td { (duration_text(p.p90)) }
                        } } }
                    } }
                    @for p in &pairs {
                        figure.chart {
                            (histogram_svg(p))
                            figcaption { (border(p)) ": " (p.count) " crossings, median " (duration_text(p.median)) ", 90th percentile " (duration_text(p.p90)) }
                        }
                    }
                }
            }
            section aria-labelledby="daily-volume" {
                h2 #daily-volume { "Daily volume per crossing point" }
                p.hint { "Crossings by the day of the start at the entry, the last " (DAYS_SHOWN) " days with traffic." }
                @if daily.is_empty() {
                    p { "No crossing yet." }
                } @else {
                    @for (point, days) in &daily {
                        @let shown: Vec<(&String, &usize)> = days.iter().rev().take(DAYS_SHOWN).collect::<Vec<_>>().into_iter().rev().collect();
                        figure.chart {
                            (bars_svg(&format!("Crossings per day at {point}"), &shown.iter().map(|(d, n)| (d.get(5..).unwrap_or(d).to_owned(), **n as f64, n.to_string())).collect::<Vec<_>>()))
                            figcaption { (point) }
                        }
                        div.table-wrap { table {
                            caption.hint { "Crossings per day at " (point) }
                            thead { tr { th scope="col" { "Day" } th scope="col" { "Crossings" } } }
                            tbody { @for (d, n) in &shown { tr { td { (d) } td { (n) } } } }
                        } }
                    }
                }
            }
        }
    })
}

async fn page(console: &Console, signed: &Signed) -> Result<Response, Response> {
    let country = viewer(signed)?;
    let store = &console.app.store;
    let (since_ms, tag) = live_tag(console, country).await?;
    let figures = crossing_figures(console, country, since_ms).await?;
    let countries: BTreeSet<Country> = figures.pairs.iter().flat_map(|p| [p.exit, p.entry]).collect();
    // Hit rates: the customs' own administration by selector; for the admin, each administration met.
    let administrations: Vec<Country> = match country {
        Some(c) => vec![c],
        None => countries.into_iter().collect(),
    };
    let mut rates: Vec<(String, tir_risk::stats::Group)> = Vec::new();
    for administration in &administrations {
        // The sums the writer keeps per day and selector (docs/console.md, "At scale").
        let figures = store.risk_stats(*administration).await.map_err(pages::store_failed)?;
        match country {
            Some(_) => rates.extend(figures.by_selector.into_iter().map(|g| (g.key.clone(), g))),
            None => {
                let mut total = tir_risk::stats::Group {
                    key: administration.as_str().to_owned(),
                    volume: 0,
                    inspected: 0,
                    hits: 0,
                    hit_rate: None,
                    revenue: 0.0,
                    revenue_per_inspection: None,
                };
                for g in &figures.by_selector {
                    total.volume += g.volume;
                    total.inspected += g.inspected;
                    total.hits += g.hits;
                    total.revenue += g.revenue;
                }
                total.hit_rate = (total.inspected > 0).then(|| total.hits as f64 / total.inspected as f64);
                if total.volume > 0 {
                    rates.push((administration.as_str().to_owned(), total));
                }
            }
        }
    }
    let live = live_part(console, country, since_ms, &figures, &tag).await?;
    let body = html! {
        (live)
        section aria-labelledby="hit-rates" {
            h2 #hit-rates { "Inspection hit rates" }
            p.hint { @if country.is_some() { "By what selected the transport (profile version, model, random share): inspections with an irregularity found, of those inspected." } @else { "By administration: inspections with an irregularity found, of those inspected." } }
            @if rates.iter().all(|(_, g)| g.inspected == 0) {
                p { "No inspection result recorded yet." }
            }
            @if !rates.is_empty() {
                @let bars: Vec<(String, f64, String)> = rates.iter().map(|(k, g)| (k.clone(), 100.0 * g.hit_rate.unwrap_or(0.0), g.hit_rate.map_or("–".to_owned(), |r| format!("{:.0} %", 100.0 * r)))).collect();
                figure.chart {
                    (bars_svg("Hit rate, percent", &bars))
                    figcaption { "Hit rate (%)" }
                }
                div.table-wrap { table {
                    caption.hint { "Inspection hit rates" }
                    thead { tr { th scope="col" { "Selected by" } th scope="col" { "Assessed" } th scope="col" { "Inspected" } th scope="col" { "Irregular" } th scope="col" { "Hit rate" } th scope="col" { "Revenue (EUR)" } } }
                    tbody { @for (key, g) in &rates { tr {
                        td.mono { (key) } td { (g.volume) } td { (g.inspected) } td { (g.hits) }
                        td { (pages::percent(g.hit_rate)) }
                        td { (format!("{:.2}", g.revenue)) }
                    } } }
                } }
            }
        }
    };
    Ok(Page::new("Dashboard").signed(signed).body(body))
}

fn border(p: &PairFigures) -> String {
    format!("{} → {}", p.exit.as_str(), p.entry.as_str())
}

const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 170.0;
const LEFT: f64 = 30.0;
const BOTTOM: f64 = 30.0;
const TOP: f64 = 30.0;

/// The histogram of one border, with the median and 90th percentile marked.
pub fn histogram_svg(p: &PairFigures) -> Markup {
    let title = format!("Crossing time {}: histogram", border(p));
    let bins: &[Bin] = &p.histogram;
    let Some(last) = bins.last() else { return html! {} };
    let span = last.high.max(1.0);
    let most = bins.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
    let plot_w = WIDTH - LEFT - 10.0;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let x = |v: f64| LEFT + plot_w * v / span;
    let y = |n: f64| TOP + plot_h * (1.0 - n / most);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(&title),
        esc(&title)
    );
    svg += &format!(r#"<text x="2" y="{}" class="axis">{}</text>"#, TOP + 4.0, most);
    svg += &format!(r#"<text x="2" y="{}" class="axis">0</text>"#, TOP + plot_h);
    for b in bins {
        let (x0, x1) = (x(b.low), x(b.high));
        let top = y(b.count as f64);
        svg += &format!(
            r#"<rect class="bar" x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}"><title>{} to {}: {}</title></rect>"#,
            x0 + 0.5,
            (x1 - x0 - 1.0).max(0.5),
            TOP + plot_h - top,
            esc(&duration_text(b.low)),
            esc(&duration_text(b.high)),
            b.count
        );
    }
    let base = TOP + plot_h;
    svg += &format!(r#"<line class="axis-line" x1="{LEFT}" y1="{base}" x2="{}" y2="{base}"/>"#, LEFT + plot_w);
    for (i, b) in bins.iter().enumerate() {
        // Every other label, so they do not run into each other at 390 px.
        if i % 2 == 0 {
            svg += &format!(
                r#"<text x="{:.1}" y="{}" class="axis">{}</text>"#,
                x(b.low),
                base + 12.0,
                esc(&duration_text(b.low))
            );
        }
    }
    svg += &format!(
        r#"<text x="{:.1}" y="{}" class="axis" text-anchor="end">{}</text>"#,
        LEFT + plot_w,
        base + 24.0,
        esc(&duration_text(span))
    );
    for (value, label, class) in [(p.median, "median", "median"), (p.p90, "p90", "p90")] {
        let at = x(value);
        // Right of the middle, the label ends at its line so it stays inside the chart.
        let anchor = if at > LEFT + plot_w / 2.0 { "end" } else { "start" };
        svg += &format!(
            r#"<line class="{class}" x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{base}"/><text x="{at:.1}" y="{}" class="mark {class}" text-anchor="{anchor}">{label} {}</text>"#,
            if class == "median" { TOP - 17.0 } else { TOP - 5.0 },
            esc(&duration_text(value))
        );
    }
    svg += "</svg>";
    html! { (PreEscaped(svg)) }
}

/// Vertical bars, each with its label under it and its value over it.
pub fn bars_svg(title: &str, bars: &[(String, f64, String)]) -> Markup {
    let most = bars.iter().map(|(_, v, _)| *v).fold(0.0, f64::max).max(1.0);
    let plot_w = WIDTH - LEFT - 10.0;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let step = plot_w / bars.len().max(1) as f64;
    let base = TOP + plot_h;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    svg += &format!(r#"<line class="axis-line" x1="{LEFT}" y1="{base}" x2="{}" y2="{base}"/>"#, LEFT + plot_w);
    for (i, (label, value, shown)) in bars.iter().enumerate() {
        let h = plot_h * value.max(0.0) / most;
        let x0 = LEFT + step * i as f64;
        let mid = x0 + step / 2.0;
        svg += &format!(
            r#"<rect class="bar" x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>{}: {}</title></rect>"#,
            x0 + step * 0.15,
            base - h,
            step * 0.7,
            esc(label),
            esc(shown)
        );
        svg += &format!(
            r#"<text x="{mid:.1}" y="{:.1}" class="axis" text-anchor="middle">{}</text>"#,
            base - h - 3.0,
            esc(shown)
        );
        // Long labels (selectors) are cut: the table beside the chart has them whole.
        let short: String = label.chars().take(((step / 6.0) as usize).max(3)).collect();
        svg += &format!(
            r#"<text x="{mid:.1}" y="{}" class="axis" text-anchor="middle">{}</text>"#,
            base + 12.0,
            esc(&short)
        );
    }
    svg += "</svg>";
    html! { (PreEscaped(svg)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_is_svg_with_its_title_bars_and_marks() {
        let p = PairFigures {
            exit: Country::parse("BY").unwrap(),
            entry: Country::parse("LT").unwrap(),
            count: 3,
            median: 120.0,
            p90: 180.0,
            histogram: stats::histogram(&[60.0, 120.0, 180.0], 10),
        };
        let svg = histogram_svg(&p).into_string();
        assert!(svg.starts_with("<svg class=\"chart\""), "{svg}");
        assert!(svg.contains("<title>Crossing time BY → LT: histogram</title>"), "{svg}");
        assert_eq!(svg.matches("<rect").count(), p.histogram.len());
        assert!(svg.contains("median 2 min") && svg.contains("p90 3 min"), "{svg}");
        assert!(svg.contains("text-anchor=\"end\">p90"), "a mark right of the middle ends at its line: {svg}");
    }

    #[test]
    fn bar_labels_are_escaped() {
        let svg = bars_svg("a <b>", &[("rule:x<y@1".to_owned(), 50.0, "50 %".to_owned())]).into_string();
        assert!(svg.contains("a &lt;b&gt;") && !svg.contains("x<y"), "{svg}");
    }
}
