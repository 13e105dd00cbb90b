//! The OpenAPI document and the server agree on the set of routes.

use std::collections::BTreeSet;

/// (method, path) pairs under `paths:` in docs/openapi.yaml. The file is ours and keeps the
/// usual layout: paths indented two spaces, methods four.
fn spec_routes() -> BTreeSet<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut in_paths = false;
    let mut current = None;
    let mut routes = BTreeSet::new();
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_paths = line == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /") {
            current = Some(format!("/{}", p.trim_end_matches(':')));
        } else if let (Some(m), Some(p)) = (line.strip_prefix("    "), &current) {
            let m = m.trim_end_matches(':');
            if ["get", "post", "put", "delete", "patch"].contains(&m) {
                routes.insert((m.to_uppercase(), p.clone()));
            }
        }
    }
    routes
}

#[test]
fn openapi_paths_are_exactly_the_routes_the_server_registers() {
    let served: BTreeSet<(String, String)> = attesta::server::ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let spec = spec_routes();
    assert!(!spec.is_empty());
    assert_eq!(served, spec);
}
