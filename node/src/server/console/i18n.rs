//! The console's languages: Italian, in which every page is written, and English, from a
//! catalogue (`en.tsv`) keyed by the Italian text, as gettext keys messages by their source
//! text. A text missing from the catalogue is shown in Italian; a unit test reads the console's
//! sources and fails on any text marked for translation (`.t("…")`, `msg("…")`) that the
//! catalogue lacks, and on any catalogue line no source uses.
//!
//! The language is the operator's choice (the `attesta-lingua` cookie, set by the switch at
//! the foot of every page), else the browser's `Accept-Language`, else Italian.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The cookie that keeps an operator's choice of language.
pub const COOKIE: &str = "attesta-lingua";

/// A language of the console.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    It,
    En,
}

/// Marks an Italian text as one to translate where it is shown (a label in a table, a message
/// made before the page that shows it): the text itself.
pub const fn msg(it: &'static str) -> &'static str {
    it
}

/// The English catalogue: one `Italian<TAB>English` line per text; `#` starts a comment.
const EN: &str = include_str!("en.tsv");

fn english() -> &'static HashMap<&'static str, &'static str> {
    static TABLE: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| catalogue(EN).into_iter().collect())
}

/// The `(Italian, English)` pairs of a catalogue's text.
fn catalogue(text: &'static str) -> Vec<(&'static str, &'static str)> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .collect()
}

impl Lang {
    /// The language's code, for `<html lang>` and the cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::It => "it",
            Lang::En => "en",
        }
    }

    /// The other language, offered by the switch.
    pub fn other(self) -> Lang {
        match self {
            Lang::It => Lang::En,
            Lang::En => Lang::It,
        }
    }

    /// The language's own name, as the switch shows it.
    pub fn name(self) -> &'static str {
        match self {
            Lang::It => "Italiano",
            Lang::En => "English",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        match code {
            "it" => Some(Lang::It),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// `it` in this language.
    pub fn t(self, it: &str) -> &str {
        match self {
            Lang::It => it,
            Lang::En => english().get(it).copied().unwrap_or(it),
        }
    }

    /// A message made elsewhere (often `reason: detail`): the whole text translated when the
    /// catalogue has it, else its part before the first `": "` translated and the detail
    /// (a name, a file's line, a peer's words) as it came.
    pub fn line(self, it: &str) -> String {
        let whole = self.t(it);
        if self == Lang::It || !std::ptr::eq(whole, it) {
            return whole.to_owned();
        }
        match it.split_once(": ") {
            Some((head, rest)) => format!("{}: {rest}", self.t(head)),
            None => it.to_owned(),
        }
    }

    /// The language of a request: the operator's cookie, else the first of Italian and
    /// English in `Accept-Language` by preference (RFC 9110 §12.5.4), else Italian.
    pub fn of<B>(req: &http::Request<B>) -> Lang {
        let h = req.headers();
        let chosen = h
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .and_then(|(_, v)| Lang::from_code(v));
        chosen
            .or_else(|| {
                h.get(http::header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(accepted)
            })
            .unwrap_or_default()
    }
}

/// The preferred of Italian and English in an `Accept-Language` value, if either is there
/// with a weight above zero (ties go to the first listed).
fn accepted(value: &str) -> Option<Lang> {
    let mut best: Option<(Lang, f32)> = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        let Some(lang) = Lang::from_code(primary) else {
            continue;
        };
        if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((lang, q));
        }
    }
    best.map(|(l, _)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The console's sources, where texts are marked for translation.
    const SOURCES: &[(&str, &str)] = &[
        ("mod.rs", include_str!("mod.rs")),
        ("form.rs", include_str!("form.rs")),
        ("outbound.rs", include_str!("outbound.rs")),
        ("registry.rs", include_str!("registry.rs")),
        ("prefettura.rs", include_str!("prefettura.rs")),
        ("auditor.rs", include_str!("auditor.rs")),
        ("pages/mod.rs", include_str!("pages/mod.rs")),
        ("pages/registry.rs", include_str!("pages/registry.rs")),
        ("pages/prefettura.rs", include_str!("pages/prefettura.rs")),
        ("pages/auditor.rs", include_str!("pages/auditor.rs")),
    ];

    /// Every string literal that is the first argument of one of `markers` in `src` (no escapes other than `\"`
    /// and `\\` are used in marked texts).
    fn marked(src: &str, markers: &[&str]) -> Vec<String> {
        let mut found = Vec::new();
        for m in markers {
            let mut rest = src;
            while let Some(at) = rest.find(m) {
                rest = &rest[at + m.len()..];
                // `cargo fmt` may put the text on the next line.
                let Some(quoted) = rest.trim_start().strip_prefix('"') else {
                    continue;
                };
                rest = quoted;
                let mut text = String::new();
                let mut chars = rest.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            // A line continuation: the newline and the next line's indent go.
                            Some('\n') => {
                                let tail = chars.as_str().trim_start();
                                chars = tail.chars();
                            }
                            Some(e) => text.push(e),
                            None => {}
                        },
                        c => text.push(c),
                    }
                }
                found.push(text);
            }
        }
        found
    }

    #[test]
    fn every_marked_text_has_an_english_line_and_every_line_is_used() {
        let table = english();
        let mut used = std::collections::HashSet::new();
        let mut missing = Vec::new();
        for (file, src) in SOURCES {
            for text in marked(src, &[".t(", "msg("]) {
                if !table.contains_key(text.as_str()) {
                    missing.push(format!("{file}: {text:?}"));
                }
                used.insert(text);
            }
        }
        assert!(
            missing.is_empty(),
            "texts without English in en.tsv:\n{}",
            missing.join("\n")
        );
        let unused: Vec<_> = table.keys().filter(|k| !used.contains(**k)).collect();
        assert!(unused.is_empty(), "en.tsv lines no source uses: {unused:?}");
    }

    #[test]
    fn the_catalogue_has_one_line_per_text_and_no_empty_translation() {
        let pairs = catalogue(EN);
        let mut seen = std::collections::HashSet::new();
        for (it, en) in &pairs {
            assert!(seen.insert(*it), "en.tsv: {it:?} twice");
            assert!(!en.trim().is_empty(), "en.tsv: {it:?} has no English");
            // A piece of a sentence keeps the blanks that join it to what is around it.
            let ends = |t: &str| (t.starts_with(' '), t.ends_with(' '));
            assert_eq!(
                ends(it),
                ends(en),
                "en.tsv: {it:?} and {en:?} differ in their blanks"
            );
        }
        for l in EN.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            assert!(l.contains('\t'), "en.tsv: a line without a tab: {l:?}");
        }
    }

    #[test]
    fn english_is_looked_up_and_italian_is_the_fallback() {
        assert_eq!(Lang::En.t("Verifica"), "Check");
        assert_eq!(Lang::It.t("Verifica"), "Verifica");
        assert_eq!(Lang::En.t("non nel catalogo"), "non nel catalogo");
        assert_eq!(
            Lang::En.line("codice fiscale: wrong check character"),
            "tax code: wrong check character"
        );
        assert_eq!(Lang::It.line("codice fiscale: x"), "codice fiscale: x");
    }

    #[test]
    fn the_cookie_wins_then_accept_language_then_italian() {
        let req = |headers: &[(&str, &str)]| {
            let mut b = http::Request::builder();
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            b.body(()).unwrap()
        };
        assert_eq!(Lang::of(&req(&[])), Lang::It);
        assert_eq!(
            Lang::of(&req(&[("accept-language", "en-GB,en;q=0.9")])),
            Lang::En
        );
        assert_eq!(
            Lang::of(&req(&[("accept-language", "de-DE, it;q=0.8, en;q=0.5")])),
            Lang::It
        );
        assert_eq!(
            Lang::of(&req(&[("accept-language", "it;q=0.4, en;q=0.9")])),
            Lang::En
        );
        assert_eq!(
            Lang::of(&req(&[("accept-language", "en;q=0, fr")])),
            Lang::It
        );
        assert_eq!(
            Lang::of(&req(&[
                ("accept-language", "en"),
                ("cookie", "a=b; attesta-lingua=it")
            ])),
            Lang::It
        );
        assert_eq!(
            Lang::of(&req(&[
                ("cookie", "attesta-lingua=xx"),
                ("accept-language", "en")
            ])),
            Lang::En
        );
    }
}
