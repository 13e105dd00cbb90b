//! What the console reads from a browser: forms (`application/x-www-form-urlencoded`) and
//! uploads (`multipart/form-data`), each with the operator's anti-forgery token; and the
//! checks that a POST comes from the console's own pages.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use attesta_certs::OperatorIdentity;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use tokio::io::AsyncWriteExt;

use super::i18n::msg;
use super::pages;
use super::{Console, ReqBody, Resp};

/// Longest form body the console reads.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The anti-forgery token of `op`'s forms: HMAC-SHA256 under this process's key of the
/// operator's certificate.
pub(super) fn csrf_token(console: &Console, op: &OperatorIdentity) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&console.csrf_key)
        .expect("HMAC takes any key length");
    mac.update(b"attesta console csrf\0");
    mac.update(&op.fingerprint);
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time comparison of a form's token with the expected one.
fn token_matches(expected: &str, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A POST must come from a page of this console: `Origin` present and equal to the console's
/// own (`https://` and the Host the browser addressed), and no cross-site fetch metadata.
pub(super) fn same_origin<B>(req: &Request<B>) -> Result<(), &'static str> {
    let h = req.headers();
    if let Some(site) = h.get("sec-fetch-site") {
        if site != "same-origin" {
            return Err(msg("richiesta inviata da un altro sito: rifiutata"));
        }
    }
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = h.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(o), Some(host)) if o.strip_prefix("https://") == Some(host) => Ok(()),
        (None, _) => Err(msg("richiesta senza intestazione Origin: rifiutata")),
        _ => Err(msg("richiesta inviata da un altro sito: rifiutata")),
    }
}

/// A posted form with the operator's anti-forgery token (`csrf`) and the fields `known`:
/// the fields, or the page that refuses it.
pub(super) async fn posted(
    req: Request<impl ReqBody>,
    ctx: &pages::Ctx,
    known: &[&'static str],
) -> Result<Fields, Resp> {
    let mut names = vec!["csrf"];
    names.extend_from_slice(known);
    let form = read_form(req, &names)
        .await
        .map_err(|why| pages::error(ctx, StatusCode::BAD_REQUEST, &why))?;
    if !token_matches(&ctx.csrf, form.get("csrf").map(String::as_str)) {
        return Err(pages::refused(
            ctx.lang,
            StatusCode::FORBIDDEN,
            msg("modulo scaduto o non inviato da questa console: ricaricate la pagina"),
        ));
    }
    Ok(form)
}

/// Reads an `application/x-www-form-urlencoded` body of at most [`MAX_FORM_BYTES`], with the
/// API's rules for parameters (each at most once, none unknown).
async fn read_form(req: Request<impl ReqBody>, known: &[&'static str]) -> Result<Fields, String> {
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(
            msg("il modulo non è stato inviato come application/x-www-form-urlencoded").into(),
        );
    }
    let body = Limited::new(req.into_body(), MAX_FORM_BYTES)
        .collect()
        .await
        .map_err(|_| format!("modulo troppo grande (al massimo {MAX_FORM_BYTES} byte)"))?
        .to_bytes();
    let text = std::str::from_utf8(&body).map_err(|_| msg("modulo non in UTF-8").to_owned())?;
    crate::wire::query_params(Some(text), known).map_err(|p| p.detail.unwrap_or(p.title))
}

/// A form's fields, by name.
pub(super) type Fields = HashMap<&'static str, String>;

/// A field's value, trimmed ("" when absent).
pub(super) fn field(form: &Fields, name: &str) -> String {
    form.get(name)
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

/// A file sent with a form, spooled to disk; the file is deleted when this is dropped.
#[derive(Debug)]
pub(super) struct Upload {
    /// The file's name as the browser gave it (shown back, escaped; never used as a path).
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A `multipart/form-data` form: its text fields and its file, if one was chosen.
pub(super) struct Multipart {
    pub fields: Fields,
    pub file: Option<Upload>,
}

/// Reads a `multipart/form-data` body with the operator's anti-forgery token as its first
/// part (the console's forms put it first, and nothing is read past a part that is not it),
/// the text fields `known` (each at most once, each at most 16 KiB) and at most one file, in
/// the part `file_field`, spooled into `dir` (at most `max_file` bytes).
pub(super) async fn posted_multipart(
    req: Request<impl ReqBody>,
    ctx: &pages::Ctx,
    known: &[&'static str],
    file_field: &'static str,
    dir: &Path,
    max_file: u64,
) -> Result<Multipart, Resp> {
    let bad = |why: String| pages::error(ctx, StatusCode::BAD_REQUEST, &why);
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| bad(msg("il modulo non è stato inviato come multipart/form-data").into()))?;
    let mut allowed: Vec<&str> = vec!["csrf", file_field];
    allowed.extend_from_slice(known);
    let limits = multer::Constraints::new()
        .allowed_fields(allowed)
        .size_limit(
            multer::SizeLimit::new()
                .whole_stream(max_file + 2 * MAX_FORM_BYTES as u64 * (known.len() as u64 + 1))
                .per_field(MAX_FORM_BYTES as u64)
                .for_field(file_field, max_file),
        );
    let stream = req.into_body().into_data_stream();
    let mut parts = multer::Multipart::with_constraints(stream, boundary, limits);
    let too_big = || {
        format!(
            "file troppo grande: al massimo {} MiB dalla console (per archivi più grandi, \
             attesta import)",
            max_file >> 20
        )
    };
    let unreadable = |e: multer::Error| match e {
        multer::Error::FieldSizeExceeded { field_name, .. }
            if field_name.as_deref() == Some(file_field) =>
        {
            too_big()
        }
        multer::Error::StreamSizeExceeded { .. } => too_big(),
        multer::Error::FieldSizeExceeded { field_name, .. } => format!(
            "campo {} troppo lungo (al massimo {MAX_FORM_BYTES} byte)",
            field_name.unwrap_or_default()
        ),
        multer::Error::UnknownField { field_name } => {
            format!("campo sconosciuto: {}", field_name.unwrap_or_default())
        }
        _ => msg("modulo non leggibile").to_owned(),
    };
    let mut out = Multipart {
        fields: HashMap::new(),
        file: None,
    };
    let mut first = true;
    while let Some(mut part) = parts.next_field().await.map_err(|e| bad(unreadable(e)))? {
        let name = part.name().unwrap_or_default().to_owned();
        if first {
            first = false;
            let token = if name == "csrf" {
                part.text().await.ok()
            } else {
                None
            };
            if !token_matches(&ctx.csrf, token.as_deref()) {
                return Err(pages::refused(
                    ctx.lang,
                    StatusCode::FORBIDDEN,
                    msg("modulo scaduto o non inviato da questa console: ricaricate la pagina"),
                ));
            }
            continue;
        }
        if name == file_field {
            if out.file.is_some() {
                return Err(bad(format!("il campo {file_field} compare più volte")));
            }
            let file_name = part.file_name().unwrap_or_default().to_owned();
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|_| bad(msg("spazio di lavoro del nodo non scrivibile").into()))?;
            let mut upload = Upload {
                name: file_name,
                path: dir.join(format!("upload-{}.csv", attesta_certs::random_hex(16))),
                size: 0,
            };
            let mut file = tokio::fs::File::create(&upload.path)
                .await
                .map_err(|_| bad(msg("spazio di lavoro del nodo non scrivibile").into()))?;
            while let Some(chunk) = part.chunk().await.map_err(|e| bad(unreadable(e)))? {
                upload.size += chunk.len() as u64;
                file.write_all(&chunk)
                    .await
                    .map_err(|_| bad(msg("spazio di lavoro del nodo non scrivibile").into()))?;
            }
            file.flush()
                .await
                .map_err(|_| bad(msg("spazio di lavoro del nodo non scrivibile").into()))?;
            // No file chosen: browsers send an empty part without a name.
            if upload.size > 0 || !upload.name.is_empty() {
                out.file = Some(upload);
            }
            continue;
        }
        let Some(&known_name) = known.iter().find(|k| **k == name) else {
            return Err(bad(format!("{}: {name}", msg("campo sconosciuto"))));
        };
        let text = part.text().await.map_err(|e| bad(unreadable(e)))?;
        if out.fields.insert(known_name, text).is_some() {
            return Err(bad(format!("il campo {name} compare più volte")));
        }
    }
    if first {
        return Err(pages::refused(
            ctx.lang,
            StatusCode::FORBIDDEN,
            msg("modulo scaduto o non inviato da questa console: ricaricate la pagina"),
        ));
    }
    Ok(out)
}
