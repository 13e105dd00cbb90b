//! No import circles between the node crate's modules (a test over its own sources).
//!
//! A module is a file; it depends on every module it names through a `crate::`, `super::` or
//! `self::` path, `use` groups included (`use super::{a, b::c}`), leaving out its own
//! ancestors and descendants (a module and its submodules are one unit) and its tests. The
//! test fails naming every circle, each with the edges that close it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`server::status`) → file text, for every `.rs` under `src`.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable source directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(src)
                .expect("under src")
                .with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "tests") {
                continue;
            }
            if parts
                .last()
                .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
            {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).expect("readable source file");
            // Unit tests may reach anywhere.
            let text = match text.find("#[cfg(test)]\nmod tests") {
                Some(i) => text[..i].to_owned(),
                None => text,
            };
            out.insert(parts.join("::"), text);
        }
    }
    out
}

/// The paths a file names from `crate`, `super` or `self`, with `use` groups expanded.
fn paths(text: &str) -> Vec<Vec<String>> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = ["crate::", "super::", "self::"]
            .iter()
            .any(|p| bytes[i..].starts_with(p.as_bytes()));
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if starts && boundary {
            let (found, end) = path_at(&code, i, Vec::new());
            out.extend(found);
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Reads `seg::seg::…` at `i` (after `prefix`), expanding a `{…}` group; returns the paths and
/// where reading stopped.
fn path_at(code: &str, mut i: usize, prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let bytes = code.as_bytes();
    let mut segs = prefix;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'{' {
            let mut out = Vec::new();
            i += 1;
            loop {
                while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == b'}' {
                    return (out, i + 1);
                }
                let (found, end) = path_at(code, i, segs.clone());
                out.extend(found);
                // Skip `as name` and anything else up to the next item.
                i = end;
                while i < bytes.len() && bytes[i] != b',' && bytes[i] != b'}' {
                    i += 1;
                }
            }
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if start == i {
            return (vec![segs], i);
        }
        segs.push(code[start..i].to_owned());
        if bytes[i..].starts_with(b"::") {
            i += 2;
        } else {
            return (vec![segs], i);
        }
    }
}

/// The module a path names, seen from module `from`: its longest prefix that is a module.
fn resolve(modules: &BTreeMap<String, String>, from: &str, path: &[String]) -> Option<String> {
    let mut base: Vec<&str> = if from.is_empty() {
        Vec::new()
    } else {
        from.split("::").collect()
    };
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        _ => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
    }
    let mut best = None;
    for n in 0..=rest.len() {
        let mut m: Vec<&str> = base.clone();
        m.extend(rest[..n].iter().map(String::as_str));
        let name = m.join("::");
        if modules.contains_key(&name) {
            best = Some(name);
        }
    }
    best
}

fn related(a: &str, b: &str) -> bool {
    a == b
        || a.is_empty()
        || b.is_empty()
        || a.starts_with(&format!("{b}::"))
        || b.starts_with(&format!("{a}::"))
}

/// The import graph of the modules under `src`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules(src);
    let mut edges = BTreeMap::new();
    for (name, text) in &modules {
        let to: BTreeSet<String> = paths(text)
            .iter()
            .filter_map(|p| resolve(&modules, name, p))
            .filter(|m| !related(name, m))
            .collect();
        edges.insert(name.clone(), to);
    }
    edges
}

/// The strongly connected components with more than one module (Tarjan).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn use_groups_and_relative_paths_are_read() {
    let text =
        "use super::{a, b::{c, d as e}};\nuse crate::x::y;\nlet z = self::w::f(); // crate::no\n";
    let got: Vec<String> = paths(text).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        got,
        [
            "super::a",
            "super::b::c",
            "super::b::d",
            "crate::x::y",
            "self::w::f"
        ]
    );
}

#[test]
fn a_circle_is_found_and_named() {
    let mut edges = BTreeMap::new();
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    edges.insert("a".to_owned(), set(&["b"]));
    edges.insert("b".to_owned(), set(&["c"]));
    edges.insert("c".to_owned(), set(&["a"]));
    edges.insert("d".to_owned(), set(&["a"]));
    assert_eq!(circles(&edges), [["a", "b", "c"]]);
}

#[test]
fn the_node_crate_has_no_import_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&src);
    // The graph is read at all: the coordinator calls its peers through `server::peers`.
    assert!(
        edges
            .get("server::status")
            .is_some_and(|e| e.contains("server::peers")),
        "{:?}",
        edges.get("server::status")
    );
    let found = circles(&edges);
    let report: Vec<String> = found
        .iter()
        .map(|c| {
            let inner: Vec<String> = c
                .iter()
                .map(|m| {
                    let to: Vec<&str> = edges[m]
                        .iter()
                        .filter(|t| c.contains(t))
                        .map(String::as_str)
                        .collect();
                    format!("{m} -> {}", to.join(", "))
                })
                .collect();
            format!("[{}]", inner.join("; "))
        })
        .collect();
    assert!(found.is_empty(), "import circles: {}", report.join(" "));
}

#[test]
fn nothing_outside_the_cli_imports_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&src);
    let in_cli = |m: &str| m == "cli" || m.starts_with("cli::");
    assert!(
        edges.contains_key("cli::audit::report"),
        "the CLI layer is read"
    );
    let wrong: Vec<String> = edges
        .iter()
        .filter(|(from, _)| !from.is_empty() && !in_cli(from))
        .flat_map(|(from, to)| {
            to.iter()
                .filter(|t| in_cli(t))
                .map(move |t| format!("{from} -> {t}"))
        })
        .collect();
    assert!(wrong.is_empty(), "imports of the CLI layer: {wrong:?}");
}
