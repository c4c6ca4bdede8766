//! The accompanying document (issue 15, TIR Convention Annex 11): a PDF of the
//! recorded declaration that travels with the truck, with a QR code holding a
//! token signed with the server's key (`tir_store::doc_token`), so customs can
//! check it with no network. Made again on each request from the current
//! recorded declaration: an accepted amendment gives a new version.
//!
//! The PDF is A4, one column, black on white, Helvetica (WinAnsi; characters
//! outside it become `?`), content streams uncompressed. The token is written
//! three times: in the QR code, as a visible text line under it, and as the
//! document information's Keywords, so `tirhub document verify` reads it back
//! from the file's bytes.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use sha2::{Digest, Sha256};
use tir_model::declaration::Declaration;
use tir_model::guarantee::Guarantee;
use tir_model::{ErrorCode, EtirError, GuaranteeRef};

use crate::App;
use crate::auth::AnyParty;
use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::queries::{guarantee_readable_by, path_rejection};

/// SHA-256 (hex) of a declaration's canonical JSON: the compact JSON the server
/// stores and answers as the `declaration` member of
/// `GET /v1/guarantees/{reference}/declaration?version=v`.
pub fn declaration_sha256(declaration: &Declaration) -> String {
    let json = serde_json::to_vec(declaration).expect("declarations serialize");
    Sha256::digest(&json).iter().map(|b| format!("{b:02x}")).collect()
}

/// The PDF's bytes.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // Only describes the answer in the OpenAPI document.
pub struct PdfFile(Vec<u8>);

#[utoipa::path(get, path = "/v1/guarantees/{reference}/accompanying-document", tag = "queries",
    params(("reference" = GuaranteeRef, Path, description = "Guarantee reference, e.g. XH25000001")),
    responses(
        (status = 200, description = "The accompanying document of the current recorded declaration: an A4 PDF whose QR code holds a signed token (see the binding, \"Accompanying document\")", content_type = "application/pdf", body = PdfFile),
        (status = 400, description = "Codes 105, 106: a malformed reference", body = ErrorBody),
        (status = 403, description = "Code 380: not a party to this transport", body = ErrorBody),
        (status = 404, description = "Code 301: no such guarantee; 307: no declaration recorded yet", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn accompanying_document(
    State(app): State<App>,
    AnyParty(party): AnyParty,
    reference: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(raw) = reference.map_err(|r| path_rejection("/reference", r))?;
    let guarantee = guarantee_readable_by(&app, &party, &raw, "/reference").await?;
    // Advance data is not a document to travel on: only a recorded declaration.
    let Some(declaration) = guarantee.declaration.as_ref().filter(|_| guarantee.declaration_version >= 1) else {
        return Err(ApiError::Etir(EtirError::not_found_on_route(ErrorCode::DeclarationNotFound, "/reference")));
    };
    let sha256 = declaration_sha256(declaration);
    let reply =
        app.store.sign_document(guarantee.reference.as_str().to_owned(), guarantee.declaration_version, sha256).await?;
    let signed: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
    let Some(token) = signed["token"].as_str().filter(|_| reply.status == 201) else {
        return Err(tir_store::StoreError::Write(format!("the document was not signed: {}", reply.body)).into());
    };
    let claims = tir_store::doc_token::read(token)
        .map_err(|e| tir_store::StoreError::Write(format!("the server signed a bad token: {e}")))?
        .0;
    let mut facts = Facts { holder: None, offices: Vec::new() };
    facts.holder = app.store.holder(&guarantee.holder).await?.map(|h| h.name);
    for office in &declaration.offices {
        let name = app.store.office(&office.code).await?.map(|o| o.name);
        facts.offices.push(name);
    }
    let pdf = render(&guarantee, declaration, &facts, &claims, token);
    let filename = format!("attachment; filename=\"{}-v{}.pdf\"", guarantee.reference.as_str(), claims.v);
    Ok(([(header::CONTENT_TYPE, "application/pdf".to_owned()), (header::CONTENT_DISPOSITION, filename)], pdf)
        .into_response())
}

/// What the document shows that the guarantee does not hold.
struct Facts {
    holder: Option<String>,
    /// The declared offices' names, in the declaration's order.
    offices: Vec<Option<String>>,
}

/// Text for Helvetica with WinAnsiEncoding: Latin-1 letters kept, others `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '\u{2013}' | '\u{2014}' => b'-',
            '\u{2018}' | '\u{2019}' => b'\'',
            '\u{201c}' | '\u{201d}' => b'"',
            _ => b'?',
        })
        .collect()
}

const A4: (f32, f32) = (595.28, 841.89);
const MARGIN: f32 = 50.0;
const QR_SIZE: f32 = 150.0;

/// Lines of text laid out from the top, a new page when one is full.
struct Layout {
    pages: Vec<Content>,
    y: f32,
}

/// `text` in lines of at most `per_line` characters, broken after the last
/// space that fits; a word longer than a line (a hash, a token) is cut.
fn wrap(text: &str, per_line: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while rest.len() > per_line {
        let cut = rest[..=per_line].iter().rposition(|c| *c == ' ').filter(|&i| i > 0).unwrap_or(per_line);
        lines.push(rest[..cut].iter().collect());
        let skip = usize::from(rest.get(cut) == Some(&' '));
        rest.drain(..cut + skip);
    }
    if !rest.is_empty() || lines.is_empty() {
        lines.push(rest.into_iter().collect());
    }
    lines
}

impl Layout {
    fn new() -> Layout {
        Layout { pages: vec![Content::new()], y: A4.1 - MARGIN }
    }

    fn line(&mut self, size: f32, bold: bool, text: &str) {
        self.line_in(size, if bold { b"F2" } else { b"F1" }, text);
    }

    /// A line in font `font` (F1 Helvetica, F2 Helvetica-Bold, F3 Courier).
    fn line_in(&mut self, size: f32, font: &[u8], text: &str) {
        // Beside the QR code, lines stop short of it. Helvetica's characters
        // are at most about 0.6 em on average (Courier's exactly 0.6): wrap there.
        let beside_qr = self.y > A4.1 - MARGIN - QR_SIZE - 20.0;
        let width = A4.0 - 2.0 * MARGIN - if beside_qr { QR_SIZE + 15.0 } else { 0.0 };
        let per_line = ((width / (size * 0.6)) as usize).max(20);
        for chunk in wrap(text, per_line) {
            if self.y < MARGIN + size {
                self.pages.push(Content::new());
                self.y = A4.1 - MARGIN;
            }
            self.y -= size * 1.3;
            let content = self.pages.last_mut().expect("a page");
            content.begin_text();
            content.set_font(Name(font), size);
            content.next_line(MARGIN, self.y);
            content.show(Str(&win_ansi(&chunk)));
            content.end_text();
        }
    }

    fn gap(&mut self) {
        self.y -= 6.0;
    }
}

fn render(
    g: &Guarantee,
    d: &Declaration,
    facts: &Facts,
    claims: &tir_store::doc_token::Claims,
    token: &str,
) -> Vec<u8> {
    let mut layout = Layout::new();
    layout.line(16.0, true, "TIR accompanying document (eTIR)");
    layout.line(
        9.0,
        false,
        "Printed from the recorded eTIR declaration. Check the QR code against the keys of GET /v1/keys.",
    );
    layout.gap();
    layout.line(11.0, true, &format!("Guarantee {}", g.reference.as_str()));
    let holder = facts.holder.as_deref().unwrap_or("(not in the ITDB)");
    layout.line(10.0, false, &format!("Holder: {} - {}", g.holder.as_str(), holder));
    layout.line(10.0, false, &format!("Guarantee chain: {}", g.chain));
    layout.line(10.0, false, &format!("Guarantee state: {}", g.state.as_str()));
    layout.line(10.0, false, &format!("Declaration version: {}", claims.v));
    layout.line(10.0, false, "Declaration SHA-256:");
    layout.line_in(8.0, b"F3", &claims.sha256);
    layout.line(10.0, false, &format!("Issued at: {}", claims.iat));
    layout.line(10.0, false, &format!("Signing key: {}", claims.kid));
    // The QR code sits at the top right, beside the header.
    let qr_top = A4.1 - MARGIN;
    let token_lines = token.len().div_ceil(60) as f32;
    layout.y = layout.y.min(qr_top - QR_SIZE - 8.0 - 6.0 * token_lines - 6.0);
    layout.gap();
    layout.line(11.0, true, "Itinerary");
    let countries: Vec<&str> = d.itinerary.iter().map(|c| c.as_str()).collect();
    layout.line(10.0, false, &format!("Countries: {}", countries.join(" > ")));
    for (office, name) in d.offices.iter().zip(&facts.offices) {
        let name = name.as_deref().unwrap_or("");
        layout.line(10.0, false, &format!("  {} {} {}", office.role.as_str(), office.code.as_str(), name));
    }
    for op in &g.operations {
        let countries: Vec<&str> = op.countries.iter().map(|c| c.as_str()).collect();
        let id = op.operation_id.as_ref().map(|i| i.as_str().to_owned()).unwrap_or_else(|| "-".into());
        layout.line(
            10.0,
            false,
            &format!(
                "  Operation {} ({}): {}, state {}, id {}",
                op.sequence,
                op.territory.as_str(),
                countries.join(" > "),
                op.state.as_str(),
                id
            ),
        );
    }
    layout.gap();
    layout.line(11.0, true, "Vehicle and seals");
    match g.vehicle.as_ref().or(d.vehicle.as_ref()) {
        Some(v) => layout.line(10.0, false, &format!("Vehicle: {} ({})", v.registration, v.country.as_str())),
        None => layout.line(10.0, false, "Vehicle: not declared"),
    }
    let seals = g.seals.as_ref().unwrap_or(&d.seals);
    let seals = if seals.is_empty() { "none".to_owned() } else { seals.join(", ") };
    layout.line(10.0, false, &format!("Seals: {seals}"));
    for (i, c) in d.consignments.iter().enumerate() {
        layout.gap();
        layout.line(11.0, true, &format!("Consignment {}", i + 1));
        layout.line(10.0, false, &format!("Consignor: {} ({})", c.consignor.name, c.consignor.country.as_str()));
        layout.line(10.0, false, &format!("Consignee: {} ({})", c.consignee.name, c.consignee.country.as_str()));
        for (j, goods) in c.goods.iter().enumerate() {
            let hs = goods.hs_code.as_str();
            let subheading = tir_model::refdata::hs_subheading(hs).unwrap_or("not an HS 2022 subheading");
            layout.line(10.0, true, &format!("  {}. HS {} - {}", j + 1, hs, subheading));
            layout.line(10.0, false, &format!("     {}", goods.description));
            let packages = goods.packages.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
            let value = goods
                .value
                .as_ref()
                .map(|m| format!("{} {}", m.amount, m.currency.as_str()))
                .unwrap_or_else(|| "-".into());
            layout.line(
                10.0,
                false,
                &format!("     Packages: {packages}   Gross mass: {} kg   Value: {value}", goods.gross_mass_kg),
            );
        }
    }
    layout.gap();
    layout.line(
        8.0,
        false,
        "What the QR code proves: this declaration version, with this SHA-256, was recorded in eTIR",
    );
    layout.line(
        8.0,
        false,
        "at the time of issue, signed by the key named. It does not prove that the goods on the vehicle",
    );
    layout.line(8.0, false, "match, nor that the transport is still valid: check the live system when online.");

    // The QR code, drawn as filled squares (vector, prints sharp), and the token under it.
    let first = &mut layout.pages[0];
    if let Ok(code) = qrcode::QrCode::with_error_correction_level(token.as_bytes(), qrcode::EcLevel::M) {
        let width = code.width();
        let module = QR_SIZE / width as f32;
        let left = A4.0 - MARGIN - QR_SIZE;
        first.set_fill_gray(0.0);
        for (i, color) in code.to_colors().iter().enumerate() {
            if *color == qrcode::Color::Dark {
                let (x, y) = ((i % width) as f32, (i / width) as f32);
                first.rect(left + x * module, qr_top - (y + 1.0) * module, module, module);
            }
        }
        first.fill_nonzero();
    }
    // The token in full, small, under the QR code, wrapped at 60 characters.
    let mut y = qr_top - QR_SIZE - 8.0;
    for chunk in token.as_bytes().chunks(60) {
        first.begin_text();
        first.set_font(Name(b"F3"), 5.0);
        first.next_line(A4.0 - MARGIN - QR_SIZE - 30.0, y);
        first.show(Str(chunk));
        first.end_text();
        y -= 6.0;
    }
    let count = layout.pages.len();
    for (n, page) in layout.pages.iter_mut().enumerate() {
        page.begin_text();
        page.set_font(Name(b"F1"), 8.0);
        page.next_line(MARGIN, MARGIN / 2.0);
        let footer = format!("{} v{} - page {} of {count}", g.reference.as_str(), claims.v, n + 1);
        page.show(Str(&win_ansi(&footer)));
        page.end_text();
    }

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let fonts = [(Ref::new(3), "Helvetica"), (Ref::new(4), "Helvetica-Bold"), (Ref::new(5), "Courier")];
    let info = Ref::new(6);
    let first_page = 7;
    let page_ids: Vec<Ref> = (0..count).map(|n| Ref::new(first_page + 2 * n as i32)).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().copied()).count(count as i32);
    for (n, content) in layout.pages.into_iter().enumerate() {
        let content_id = Ref::new(first_page + 2 * n as i32 + 1);
        let mut page = pdf.page(page_ids[n]);
        page.media_box(Rect::new(0.0, 0.0, A4.0, A4.1));
        page.parent(tree);
        page.contents(content_id);
        let mut resources = page.resources();
        let mut names = resources.fonts();
        for (i, (id, _)) in fonts.iter().enumerate() {
            names.pair(Name(format!("F{}", i + 1).as_bytes()), *id);
        }
        names.finish();
        resources.finish();
        page.finish();
        pdf.stream(content_id, &content.finish());
    }
    for (id, base) in fonts {
        pdf.type1_font(id).base_font(Name(base.as_bytes())).encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    let title = format!("TIR accompanying document {} v{}", g.reference.as_str(), claims.v);
    pdf.document_info(info)
        .title(TextStr(&title))
        .subject(TextStr(&format!("sha256={}", claims.sha256)))
        .keywords(TextStr(token))
        .creator(TextStr("tirhub"));
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn lines_break_between_words_and_cut_only_a_word_longer_than_a_line() {
        let text = "Refrigerators and freezers; combined refrigerator-freezers, fitted with separate doors";
        let lines = wrap(text, 32);
        assert!(lines.iter().all(|l| l.chars().count() <= 32), "{lines:?}");
        assert_eq!(lines.join(" "), text, "no character lost or added but the spaces broken at");
        assert_eq!(lines[1], "combined refrigerator-freezers,");
        let hash = "28b406e10a5071def26136da88b5a18dc1016609cc12e1c21bbedc3e54fe8693";
        assert_eq!(wrap(hash, 40), [&hash[..40], &hash[40..]]);
        assert_eq!(wrap("short", 40), ["short"]);
        assert_eq!(wrap("", 40), [""]);
    }
}
