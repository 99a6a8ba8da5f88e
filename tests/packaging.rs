//! The Dockerfile's build context is enough to build: the paths its build
//! stage copies, and nothing else, placed in an empty directory, build both
//! binaries with the stage's own `cargo build` command.
//!
//! No Docker is needed: the test reads the Dockerfile, applies its `COPY`
//! lines (and `.dockerignore`) itself, and runs cargo. A path the build needs
//! but the Dockerfile forgets (`benches/`, named by Cargo.toml, once was)
//! fails here instead of in `docker build`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The stage of the Dockerfile that compiles.
const BUILD_STAGE: &str = "build";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What the build stage does with the context: its working directory, its
/// `COPY` lines as (sources, destination), and its `RUN cargo …` command.
#[derive(Debug, Default)]
struct BuildStage {
    workdir: String,
    copies: Vec<(Vec<String>, String)>,
    cargo: Vec<String>,
}

/// Reads the build stage of `dockerfile`. Only the forms this Dockerfile
/// uses are understood; anything else fails the test, so that a new form
/// is taught here rather than silently skipped.
fn build_stage(dockerfile: &str) -> BuildStage {
    let mut stage = BuildStage {
        workdir: "/".into(),
        ..Default::default()
    };
    let mut in_stage = false;
    // Join continuation lines first.
    let text = dockerfile.replace("\\\n", " ");
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (instruction, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let words: Vec<&str> = rest.split_whitespace().collect();
        match instruction.to_ascii_uppercase().as_str() {
            "FROM" => {
                in_stage = words.len() == 3
                    && words[1].eq_ignore_ascii_case("as")
                    && words[2] == BUILD_STAGE;
            }
            _ if !in_stage => {}
            "WORKDIR" => stage.workdir = rest.trim().to_string(),
            "COPY" | "ADD" => {
                assert!(
                    !rest.trim_start().starts_with('['),
                    "the JSON form of {instruction} is not understood here: {line}"
                );
                if words.iter().any(|w| w.starts_with("--from")) {
                    continue;
                }
                let paths: Vec<&str> = words
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                assert!(paths.len() >= 2, "{line}");
                let (dest, sources) = paths.split_last().unwrap();
                for s in sources {
                    assert!(
                        !s.contains(['*', '?', '[']) && !s.contains(".."),
                        "only plain paths inside the context are understood here: {line}"
                    );
                }
                stage.copies.push((
                    sources.iter().map(|s| s.to_string()).collect(),
                    dest.to_string(),
                ));
            }
            "RUN" if words.first() == Some(&"cargo") => {
                stage.cargo = words[1..].iter().map(|w| w.to_string()).collect();
            }
            _ => {}
        }
    }
    assert!(!stage.copies.is_empty(), "no COPY in stage {BUILD_STAGE:?}");
    assert!(
        !stage.cargo.is_empty(),
        "no RUN cargo … in stage {BUILD_STAGE:?}"
    );
    stage
}

/// The plain paths `.dockerignore` excludes (globs would need a real matcher).
fn docker_ignored() -> Vec<String> {
    std::fs::read_to_string(root().join(".dockerignore"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().trim_start_matches("./").trim_end_matches('/'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .inspect(|l| {
            assert!(
                !l.contains(['*', '?', '[', '!']),
                ".dockerignore pattern {l:?} is not understood here"
            )
        })
        .map(str::to_string)
        .collect()
}

/// Copies `from` (a file or a directory's contents, as `COPY` does) to `to`,
/// skipping what `.dockerignore` excludes, and keeping modification times so
/// that cargo finds an unchanged tree up to date on the next run.
fn copy(from: &Path, rel: &str, to: &Path, ignored: &[String]) {
    if ignored.iter().any(|i| i == rel) {
        return;
    }
    let meta = std::fs::metadata(from)
        .unwrap_or_else(|e| panic!("COPY names {rel:?}, which the context does not have: {e}"));
    if meta.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        let mut entries: Vec<_> = std::fs::read_dir(from).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            copy(
                &e.path(),
                &format!("{rel}/{name}"),
                &to.join(&name),
                ignored,
            );
        }
        // Directories too: build.rs watches `proto` as a directory, and cargo
        // counts the directory's own time.
        std::fs::File::open(to)
            .unwrap()
            .set_modified(meta.modified().unwrap())
            .unwrap();
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
        std::fs::File::options()
            .write(true)
            .open(to)
            .unwrap()
            .set_modified(meta.modified().unwrap())
            .unwrap();
    }
}

/// Places what the build stage copies into `context`, laid out as in the
/// image's working directory.
fn materialise(stage: &BuildStage, context: &Path) {
    let ignored = docker_ignored();
    for (sources, dest) in &stage.copies {
        // Destinations are relative to WORKDIR; absolute ones must lie in it.
        let dest_rel = match dest.strip_prefix('/') {
            Some(abs) => Path::new(abs)
                .strip_prefix(stage.workdir.trim_start_matches('/'))
                .unwrap_or_else(|_| panic!("COPY to {dest}, outside WORKDIR {}", stage.workdir))
                .to_path_buf(),
            None => PathBuf::from(dest),
        };
        let dest_path = context.join(dest_rel);
        let into_dir = dest.ends_with('/') || sources.len() > 1;
        for s in sources {
            let s = s.trim_start_matches("./").trim_end_matches('/');
            let from = root().join(s);
            let to = if from.is_file() && into_dir {
                dest_path.join(from.file_name().unwrap())
            } else {
                dest_path.clone()
            };
            copy(&from, s, &to, &ignored);
        }
    }
}

#[test]
fn the_dockerfile_build_stage_parses() {
    let stage = build_stage(&std::fs::read_to_string(root().join("Dockerfile")).unwrap());
    assert_eq!(stage.workdir, "/src");
    assert!(
        stage.cargo.starts_with(&["build".to_string()]) && stage.cargo.contains(&"--locked".into()),
        "{:?}",
        stage.cargo
    );
    for bin in ["promgate", "mock-exporter"] {
        assert!(
            stage.cargo.windows(2).any(|w| w == ["--bin", bin]),
            "the image builds {bin}: {:?}",
            stage.cargo
        );
    }
    // The parser sees what it must: a stage without `COPY src src` loses it.
    let trimmed = std::fs::read_to_string(root().join("Dockerfile"))
        .unwrap()
        .replace("COPY src src\n", "");
    let copies = build_stage(&trimmed).copies;
    assert!(
        !copies.iter().any(|(s, _)| s == &["src".to_string()]),
        "{copies:?}"
    );
}

/// The stage's own command, in a directory holding only what it copies.
///
/// The release build, as in the image. Measured on the project's 2-core
/// machine: the first run compiles every dependency in release (110 s
/// within the whole suite, 150 s alone); later runs reuse them from
/// `target/docker-context/target`: 0.2 s when nothing changed, 15 s when
/// promgate's or mock-exporter's sources did. Were the cold build to pass
/// about 3 minutes in CI, `cargo check --locked --bins` would find the same
/// missing paths for less.
#[test]
fn the_dockerfile_build_context_is_enough_to_build() {
    let stage = build_stage(&std::fs::read_to_string(root().join("Dockerfile")).unwrap());
    // Beside the workspace's own build output, so that dependencies compiled
    // on an earlier run are reused; a fixed context path (and kept
    // modification times) lets cargo see an unchanged tree as up to date.
    let target = Path::new(env!("CARGO_BIN_EXE_promgate"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("docker-context");
    let context = target.join("context");
    if context.exists() {
        std::fs::remove_dir_all(&context).unwrap();
    }
    std::fs::create_dir_all(&context).unwrap();
    materialise(&stage, &context);

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let start = Instant::now();
    let out = Command::new(cargo)
        .args(&stage.cargo)
        .current_dir(&context)
        .env("CARGO_TARGET_DIR", target.join("target"))
        .output()
        .unwrap();
    eprintln!(
        "`cargo {}` took {:?}",
        stage.cargo.join(" "),
        start.elapsed()
    );
    assert!(
        out.status.success(),
        "`cargo {}` failed in a directory holding only the Dockerfile's COPY paths ({}): \
         add what it needs to the Dockerfile's build stage\n{}",
        stage.cargo.join(" "),
        context.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
