//! The layering ARCHITECTURE.md promises, checked on the sources: the pure
//! layers (ingest, model, store) never name the HTTP stack or the async
//! runtime, nor the layers above them; only `http/` knows statuses.

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Files under `src/<module>` (a directory or `<module>.rs`) mentioning any of `words`.
fn offenders(module: &str, words: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.join(format!("{module}.rs"))];
    if src.join(module).is_dir() {
        files.extend(sources(&src.join(module)));
    }
    let mut found = Vec::new();
    for file in files.iter().filter(|f| f.exists()) {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for w in words {
                if code.contains(w) {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    found
}

const RUNTIME_AND_HTTP: &[&str] = &["axum", "tokio", "hyper", "tower", "http::", "StatusCode"];

#[test]
fn pure_layers_import_no_http_and_no_runtime() {
    let mut all = Vec::new();
    for module in ["ingest", "model", "store"] {
        all.extend(offenders(module, RUNTIME_AND_HTTP));
        all.extend(offenders(
            module,
            &[
                "crate::http",
                "crate::server",
                "crate::exposition",
                "crate::self_metrics",
            ],
        ));
    }
    assert!(all.is_empty(), "layering broken:\n{}", all.join("\n"));
}

#[test]
fn the_check_sees_a_violation() {
    // The same scan over http/ must find axum, or the check proves nothing.
    assert!(!offenders("http", &["axum"]).is_empty());
}

#[test]
fn only_http_maps_errors_to_statuses() {
    let mut all = Vec::new();
    for module in ["ingest", "model", "store", "exposition", "server", "config"] {
        all.extend(offenders(module, &["StatusCode", "IntoResponse"]));
    }
    assert!(
        all.is_empty(),
        "statuses outside http/:\n{}",
        all.join("\n")
    );
}
