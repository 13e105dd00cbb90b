//! Logs of the demo federation: its five nodes run in one process, and each node's lines go to
//! `DIR/logs/<agency>.log` (found by the `node` span the demo runs it in; lines outside any
//! node go to `DIR/logs/demo.log`). The terminal gets warnings and errors only, so the banner
//! stays readable.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The agency of a `node` span.
struct Agency(String);

/// Writes each event to the log file of the node it happened in.
pub struct PerNode {
    dir: PathBuf,
    files: Mutex<HashMap<String, File>>,
}

impl std::fmt::Debug for PerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerNode").field("dir", &self.dir).finish()
    }
}

impl PerNode {
    /// Log files in `dir` (created).
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            files: Mutex::default(),
        })
    }

    fn write(&self, file: &str, line: &str) {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if !files.contains_key(file) {
            let path = self.dir.join(format!("{file}.log"));
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
            {
                Ok(f) => {
                    files.insert(file.to_owned(), f);
                }
                Err(_) => return,
            }
        }
        if let Some(f) = files.get_mut(file) {
            // A log line that cannot be written is dropped, not a reason to stop a node.
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Collects an event's or a span's fields as `name=value`, the message first.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
    agency: Option<String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "agency" => self.agency = Some(format!("{value:?}")),
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "agency" => self.agency = Some(value.to_owned()),
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }
}

impl<S> Layer<S> for PerNode
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "node" {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(agency), Some(span)) = (fields.agency, ctx.span(id)) {
            span.extensions_mut().insert(Agency(agency));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let agency = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<Agency>().map(|a| a.0.clone()))
        });
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let line = format!(
            "{time} {:>5} {}: {}{}\n",
            meta.level(),
            meta.target(),
            fields.message,
            fields.rest
        );
        self.write(agency.as_deref().unwrap_or("demo"), &line);
    }
}

/// Tracing for `attesta demo up`: every node's lines to its file under `dir`, at `RUST_LOG`'s
/// level (info by default); warnings and errors also on the terminal.
pub fn init(dir: &Path) -> std::io::Result<()> {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let files = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(LevelFilter::WARN);
    let _ = tracing_subscriber::registry()
        .with(PerNode::new(dir)?.with_filter(files))
        .with(terminal)
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn each_nodes_lines_go_to_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let subscriber = tracing_subscriber::registry().with(PerNode::new(dir.path()).unwrap());
        tracing::subscriber::with_default(subscriber, || {
            let a = tracing::info_span!("node", agency = "comune-pesaro");
            let b = tracing::info_span!("node", agency = "questura-pu");
            a.in_scope(|| {
                let conn = tracing::info_span!("conn", client.addr = "127.0.0.1:1");
                conn.in_scope(|| tracing::info!(route = "/v1/status", "served"));
            });
            b.in_scope(|| tracing::warn!("checkpoint not cosigned"));
            tracing::info!("outside any node");
        });
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
        let pesaro = read("comune-pesaro.log");
        assert!(
            pesaro.contains("INFO") && pesaro.contains("served route=/v1/status"),
            "{pesaro}"
        );
        assert!(!pesaro.contains("checkpoint"), "{pesaro}");
        assert!(
            read("questura-pu.log").contains("WARN")
                && read("questura-pu.log").contains("checkpoint not cosigned")
        );
        assert!(read("demo.log").contains("outside any node"));
    }
}
