//! The accompanying document (issue 15): a PDF of the recorded declaration
//! with a QR code holding a token signed with the server's key.

use lopdf::{Document, Object};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tir_store::doc_token::{self, TokenError};
use tir_testkit::fixtures::{HOLDER, SEAL};

use tir_testkit::server::*;

on_both_stores!(the_document_carries_the_declaration_and_a_token_that_verifies, readers_and_refusals);

/// A GET with raw bytes (the PDF is binary): status, content type, body.
async fn fetch(app: &TestApp, token: &str, path: &str) -> (u16, String, Vec<u8>) {
    let response = app.client.get(format!("{}{path}", app.base)).bearer_auth(token).send().await.expect("an answer");
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (status, content_type, response.bytes().await.expect("a body").to_vec())
}

/// What a document shows: every text shown on its pages, in order, and its Keywords.
struct Read {
    texts: Vec<String>,
    keywords: String,
    pages: usize,
}

impl Read {
    fn shows(&self, needle: &str) -> bool {
        self.texts.iter().any(|t| t.contains(needle))
    }

    /// The token as printed under the QR code: the Courier lines, joined.
    fn printed_token(&self) -> String {
        let start = self.texts.iter().position(|t| t.starts_with("TIR1.")).expect("the token is printed");
        self.texts[start..].iter().take_while(|t| !t.contains(' ')).cloned().collect()
    }
}

fn read_pdf(bytes: &[u8]) -> Read {
    let doc = Document::load_mem(bytes).expect("the PDF parses");
    let mut texts = Vec::new();
    let pages = doc.get_pages();
    for page in pages.values() {
        let content = doc.get_and_decode_page_content(*page).expect("a content stream");
        for op in content.operations {
            if op.operator == "Tj"
                && let Some(Object::String(bytes, _)) = op.operands.first()
            {
                // WinAnsi: Latin-1 for what these tests look for.
                texts.push(bytes.iter().map(|b| *b as char).collect());
            }
        }
    }
    let info = doc.trailer.get(b"Info").and_then(Object::as_reference).expect("document information");
    let info = doc.get_dictionary(info).expect("an information dictionary");
    let keywords = match info.get(b"Keywords").expect("Keywords") {
        Object::String(bytes, _) => String::from_utf8(bytes.clone()).expect("ASCII keywords"),
        other => panic!("Keywords {other:?}"),
    };
    // A4 portrait, in points.
    let first = *pages.values().next().expect("a page");
    let media = doc.get_dictionary(first).unwrap().get(b"MediaBox").unwrap().as_array().unwrap().clone();
    let size: Vec<f32> = media.iter().map(|v| v.as_float().unwrap()).collect();
    assert!((size[2] - 595.28).abs() < 0.5 && (size[3] - 841.89).abs() < 0.5, "A4: {size:?}");
    Read { texts, keywords, pages: pages.len() }
}

/// SHA-256 of the `declaration` member exactly as the declaration route writes it.
async fn declaration_sha256(app: &TestApp, token: &str, path: &str, version: u32) -> String {
    let reply = app.get_reply(token, &format!("{path}/declaration?version={version}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let text = reply.text;
    let start = text.find("\"declaration\":{").expect("a declaration member") + "\"declaration\":".len();
    assert!(text.ends_with('}'));
    let member = &text[start..text.len() - 1];
    serde_json::from_str::<Value>(member).expect("the member is the declaration's JSON");
    Sha256::digest(member.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

async fn published_keys(app: &TestApp) -> Vec<tir_store::PublicKey> {
    let (status, keys) = app.get(&app.admin, "/v1/keys").await;
    assert_eq!(status, 200, "{keys}");
    doc_token::keys_from_view(&keys).expect("the keys parse")
}

async fn the_document_carries_the_declaration_and_a_token_that_verifies(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::new(app, &c);
    trip.up_to_recorded().await;
    let path = format!("{}/accompanying-document", trip.path());
    let (status, content_type, pdf) = fetch(app, &c.holder, &path).await;
    assert_eq!((status, content_type.as_str()), (200, "application/pdf"), "{}", String::from_utf8_lossy(&pdf));
    assert!(pdf.starts_with(b"%PDF-"));
    let doc = read_pdf(&pdf);
    assert_eq!(doc.pages, 1);
    let sha = declaration_sha256(app, &c.holder, &trip.path(), 1).await;
    let hs = tir_model::refdata::hs_subheading("870323").expect("an HS 2022 subheading");
    for needle in [
        format!("Guarantee {}", trip.reference),
        format!("Holder: {HOLDER}"),
        "Guarantee chain: ".into(),
        "Countries: TR > GE > AZ".into(),
        "departure TR000100 Office TR000100".into(),
        "entry GE000100".into(),
        "destination AZ000200".into(),
        "Operation 1 (".into(),
        "Vehicle: 34ABC123 (TR)".into(),
        format!("Seals: {SEAL}"),
        "Consignor: Anatolia Export (TR)".into(),
        "Consignee: Baku Import (AZ)".into(),
        format!("HS 870323 - {}", &hs[..hs.len().min(30)]),
        "Passenger cars".into(),
        "Packages: 4".into(),
        "Gross mass: 6200 kg".into(),
        "Value: 88000 EUR".into(),
        "Declaration version: 1".into(),
        "Declaration SHA-256:".into(),
        sha.clone(),
        "Issued at: ".into(),
        "does not prove that the goods".into(),
    ] {
        assert!(doc.shows(&needle), "{needle:?} is not in {:#?}", doc.texts);
    }

    // The token: printed under the QR code and in the Keywords, the same; it verifies.
    let token = doc.printed_token();
    assert_eq!(token, doc.keywords);
    let keys = published_keys(app).await;
    let claims = doc_token::verify(&token, &keys).expect("the token verifies under a published key");
    assert_eq!(
        (claims.reference.as_str(), claims.v, claims.sha256.as_str()),
        (trip.reference.as_str(), 1, sha.as_str())
    );
    assert!(keys.iter().any(|k| k.key_id == claims.kid));
    assert!(doc.shows(&format!("Issued at: {}", claims.iat)));
    // The QR code, read back as a scanner would (rasterized from the PDF's squares), holds the token.
    assert_eq!(scan_qr(&pdf), token);
    // One changed byte, or another key under its id, and it fails.
    let mut tampered = token.clone().into_bytes();
    let i = tampered.len() / 3;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    assert!(doc_token::verify(&String::from_utf8(tampered).unwrap(), &keys).is_err());
    let stranger = tir_store::ServerKey::generate(0).unwrap().public();
    assert!(matches!(doc_token::verify(&token, &[stranger]), Err(TokenError::Invalid(_))));
    // Regenerated per request: same version and hash, a new issue time at most.
    let (_, _, again) = fetch(app, &c.tr, &path).await;
    let again = doc_token::verify(&read_pdf(&again).keywords, &keys).unwrap();
    assert_eq!((again.v, again.sha256.as_str()), (1, sha.as_str()));

    // An accepted amendment: version 2, another SHA-256.
    trip.start("TR").await;
    let mut amended = trip.declaration.clone();
    amended["consignments"][0]["goods"][0]["packages"] = json!(5);
    let e11 = message("E11", &trip.reference, json!({"declaration": amended, "country": "TR"}));
    trip.send_ok(&c.holder, e11, "E12").await;
    trip.send_ok(&c.tr, message("I7", &trip.reference, json!({"office": "TR000100"})), "I8").await;
    let (status, _, pdf) = fetch(app, &c.az, &path).await;
    assert_eq!(status, 200);
    let doc = read_pdf(&pdf);
    let sha2 = declaration_sha256(app, &c.holder, &trip.path(), 2).await;
    assert_ne!(sha, sha2);
    let claims = doc_token::verify(&doc.keywords, &keys).unwrap();
    assert_eq!((claims.v, claims.sha256.as_str()), (2, sha2.as_str()));
    assert!(doc.shows("Declaration version: 2") && doc.shows("Packages: 5"), "{:#?}", doc.texts);
}

/// The text of the first page's QR code: its filled squares (`re` operators,
/// the page's only ones) painted into a bitmap with a quiet zone, then
/// decoded by a QR reader that knows nothing of how they were drawn.
fn scan_qr(pdf: &[u8]) -> String {
    let doc = Document::load_mem(pdf).unwrap();
    let first = *doc.get_pages().values().next().unwrap();
    let content = doc.get_and_decode_page_content(first).unwrap();
    let squares: Vec<[f32; 4]> = content
        .operations
        .iter()
        .filter(|op| op.operator == "re")
        .map(|op| {
            let v: Vec<f32> = op.operands.iter().map(|o| o.as_float().expect("a number")).collect();
            [v[0], v[1], v[2], v[3]]
        })
        .collect();
    assert!(!squares.is_empty(), "the page draws a QR code");
    let module = squares[0][2];
    let left = squares.iter().map(|s| s[0]).fold(f32::MAX, f32::min);
    let top = squares.iter().map(|s| s[1] + s[3]).fold(f32::MIN, f32::max);
    let right = squares.iter().map(|s| s[0] + s[2]).fold(f32::MIN, f32::max);
    let modules = ((right - left) / module).round() as usize;
    let (quiet, scale) = (4, 4);
    let side = (modules + 2 * quiet) * scale;
    let mut dark = vec![false; (modules + 2 * quiet) * (modules + 2 * quiet)];
    for s in &squares {
        let col = ((s[0] - left) / module).round() as usize + quiet;
        let row = ((top - s[1] - s[3]) / module).round() as usize + quiet;
        dark[row * (modules + 2 * quiet) + col] = true;
    }
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
        if dark[(y / scale) * (modules + 2 * quiet) + x / scale] { 0 } else { 255 }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code found");
    grids[0].decode().expect("the QR code decodes").1
}

async fn readers_and_refusals(app: &TestApp) {
    let c = Corridor::seed(app).await;
    let mut trip = Trip::new(app, &c);
    trip.up_to_accepted().await;
    let path = format!("{}/accompanying-document", trip.path());
    // Before recording: advance data is not a document to travel on.
    app.get_reply(&c.holder, &path).await.assert_not_found(307, "/reference");
    trip.record().await;
    for token in [&c.holder, &c.tr, &c.ge, &c.az, &c.chain_a] {
        let (status, content_type, _) = fetch(app, token, &path).await;
        assert_eq!((status, content_type.as_str()), (200, "application/pdf"));
    }
    for token in [&c.am, &c.chain_b, &c.other_holder] {
        app.get_reply(token, &path).await.assert_error(380, "/reference");
    }
    app.get_reply(&c.holder, "/v1/guarantees/XH99999999/accompanying-document")
        .await
        .assert_not_found(301, "/reference");
    let (_, openapi) = app.get(&app.admin, "/v1/openapi.json").await;
    let answers = &openapi["paths"]["/v1/guarantees/{reference}/accompanying-document"]["get"]["responses"];
    assert!(answers["200"]["content"]["application/pdf"].is_object(), "{answers}");
    for code in ["400", "403", "404"] {
        assert!(answers[code]["content"]["application/json"].is_object(), "{code}: {answers}");
    }
    app.get_reply(&c.holder, "/v1/guarantees/xh1234/accompanying-document").await.assert_error(106, "/reference");
}
