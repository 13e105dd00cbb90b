//! `POST /v1/admin/import/{residents,permits}`: the node's operator uploads a CSV file, which
//! is spooled to disk (imports can be gigabytes), validated and imported (snapshot or delta).
//! The router has checked the policy before the upload is read.

use std::sync::Arc;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use time::Date;
use tokio::io::AsyncWriteExt;

use super::respond::{json, store_failure, Resp};
use super::served::Served;
use super::Shared;
use crate::import::{self, ImportError, Mode};
use crate::problem::{Problem, ProblemKind};
use crate::store::Dataset;
use crate::wire::{bad_request, bounded_date, query_params, today};

/// How many of an import's row errors the node keeps with its summary.
const LAST_IMPORT_ERRORS: usize = 20;

/// Options of an import, from the query string.
struct ImportOptions {
    mode: Mode,
    as_of: Option<Date>,
    skip_invalid: bool,
}

fn import_options(query: Option<&str>) -> Result<ImportOptions, Problem> {
    let mut opts = ImportOptions {
        mode: Mode::Snapshot,
        as_of: None,
        skip_invalid: false,
    };
    let params = query_params(query, &["mode", "as_of", "skip_invalid"])?;
    for (k, v) in &params {
        let v = v.as_str();
        match *k {
            "mode" => {
                opts.mode = v
                    .parse()
                    .map_err(|e: String| bad_request(format!("mode: {e}")))?
            }
            "as_of" => {
                opts.as_of =
                    Some(bounded_date(v, today()).map_err(|e| bad_request(format!("as_of: {e}")))?)
            }
            "skip_invalid" => {
                opts.skip_invalid = match v {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad_request("skip_invalid: true or false")),
                }
            }
            other => return Err(bad_request(format!("unknown query parameter {other:?}"))),
        }
    }
    Ok(opts)
}

/// What an import answers, and what its audit entry records of the request: the SHA-256 of
/// the whole upload, when it was all received.
pub(super) struct Uploaded {
    pub answer: Result<Resp, Problem>,
    pub request_sha256: Option<[u8; 32]>,
}

/// `POST /v1/admin/import/{residents,permits}`: the body is the CSV file. The router has
/// checked the policy (resource `import`, territory this node) before the upload is read.
pub(super) async fn import(
    shared: &Arc<Shared>,
    served: &Arc<Served>,
    ds: Dataset,
    req: Request<impl super::respond::ReqBody>,
) -> Uploaded {
    let mut digest = None;
    let answer = receive_and_import(shared, served, ds, req, &mut digest).await;
    Uploaded {
        answer,
        request_sha256: digest,
    }
}

async fn receive_and_import(
    shared: &Arc<Shared>,
    served: &Arc<Served>,
    ds: Dataset,
    req: Request<impl super::respond::ReqBody>,
    digest: &mut Option<[u8; 32]>,
) -> Result<Resp, Problem> {
    use sha2::Digest as _;
    let s = &shared.settings;
    let service = match ds {
        Dataset::Residents => attesta_policy::Service::Residence,
        Dataset::Permits => attesta_policy::Service::LegalPresence,
    };
    if !served.serves(service) {
        return Err(Problem::new(ProblemKind::NotServed));
    }
    let opts = import_options(req.uri().query())?;

    // Spool the upload to a file: imports can be gigabytes, and validation reads it twice.
    let dir = s.data_dir.join("imports");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(store_failure)?;
    let path = dir.join(format!("upload-{}.csv", attesta_certs::random_hex(16)));
    let _cleanup = RemoveOnDrop(path.clone());
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(store_failure)?;
    let mut body = req.into_body();
    let mut size = 0u64;
    let mut hasher = sha2::Sha256::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| bad_request("the upload could not be read"))?;
        if let Some(data) = frame.data_ref() {
            size += data.len() as u64;
            if size > s.limits.max_import_bytes {
                return Err(Problem::new(ProblemKind::BodyTooLarge).with_detail(format!(
                    "imports are limited to {} bytes",
                    s.limits.max_import_bytes
                )));
            }
            hasher.update(data);
            file.write_all(data).await.map_err(store_failure)?;
        }
    }
    *digest = Some(hasher.finalize().into());
    file.flush().await.map_err(store_failure)?;
    drop(file);

    let store = served.store.clone();
    let result = tokio::task::spawn_blocking(move || {
        import::run(&store, &path, ds, opts.mode, opts.as_of, opts.skip_invalid)
    })
    .await
    .map_err(|_| Problem::new(ProblemKind::Internal))?;
    match result {
        Ok(summary) => {
            tracing::info!(
                agency = %served.agency,
                dataset = summary.dataset,
                mode = summary.mode,
                applied = summary.applied,
                rejected = summary.rejected,
                "import applied"
            );
            // What the registry office's page shows of the last import (a few of its errors).
            let mut kept = summary.clone();
            kept.errors.truncate(LAST_IMPORT_ERRORS);
            let stored = serde_json::to_vec(&kept)
                .map_err(|e| e.to_string())
                .and_then(|v| {
                    served
                        .store
                        .put_last_import(ds, &v)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = stored {
                tracing::warn!(error = %e, "the last import's summary was not kept");
            }
            Ok(json(StatusCode::OK, &summary))
        }
        Err(ImportError::Invalid {
            rejected,
            rows_read,
            errors,
        }) => Err(Problem::new(ProblemKind::InvalidRows)
            .with_detail(format!("{rejected} of {rows_read} rows are invalid"))
            .with_extension("rows_read", rows_read.into())
            .with_extension("rejected", rejected.into())
            .with_extension("errors", serde_json::to_value(errors).unwrap_or_default())),
        Err(e @ (ImportError::Header { .. } | ImportError::Csv(_))) => {
            Err(Problem::new(ProblemKind::InvalidRows).with_detail(e.to_string()))
        }
        Err(e @ ImportError::Store(_)) => Err(store_failure(e)),
    }
}

/// Deletes the spooled upload however the import ends.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
