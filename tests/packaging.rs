//! The Dockerfile's build context is enough to build: the paths its build
//! stage copies, and nothing else, placed in an empty directory, build both
//! binaries with the stage's own `cargo build` command. And compose builds
//! what it runs: each `build:` of compose/docker-compose.yml names a context
//! that holds its Dockerfile, a target stage that exists, and an image whose
//! entry point is a binary the build stage compiles, started with flags that
//! binary takes.
//!
//! No Docker is needed: the test reads the Dockerfile, applies its `COPY`
//! lines (and `.dockerignore`) itself, and runs cargo. A path the build needs
//! but the Dockerfile forgets (`benches/`, named by Cargo.toml, once was)
//! fails here instead of in `docker build`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod stack;

/// The stage of the Dockerfile that compiles.
const BUILD_STAGE: &str = "build";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One stage of the Dockerfile: its name, working directory, `COPY` lines as
/// (sources, destination, the stage copied from), its `RUN cargo …` command
/// and its `ENTRYPOINT` (JSON form).
#[derive(Debug, Default)]
struct Stage {
    name: String,
    workdir: String,
    copies: Vec<(Vec<String>, String, Option<String>)>,
    cargo: Vec<String>,
    entrypoint: Vec<String>,
}

/// Reads every stage of `dockerfile`. Only the forms this Dockerfile uses are
/// understood; anything else fails the test, so that a new form is taught
/// here rather than silently skipped.
fn stages(dockerfile: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    // Join continuation lines first.
    let text = dockerfile.replace("\\\n", " ");
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (instruction, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let words: Vec<&str> = rest.split_whitespace().collect();
        let instruction = instruction.to_ascii_uppercase();
        if instruction == "FROM" {
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => name.to_string(),
                [_] => String::new(),
                _ => panic!("FROM form not understood here: {line}"),
            };
            // A stage starts where its base left off (WORKDIR included).
            let workdir = stages
                .iter()
                .find(|s| s.name == words[0])
                .map_or_else(|| "/".to_string(), |s| s.workdir.clone());
            stages.push(Stage {
                name,
                workdir,
                ..Default::default()
            });
            continue;
        }
        let Some(stage) = stages.last_mut() else {
            panic!("{line} before any FROM");
        };
        match instruction.as_str() {
            "WORKDIR" => stage.workdir = rest.trim().to_string(),
            "COPY" | "ADD" => {
                assert!(
                    !rest.trim_start().starts_with('['),
                    "the JSON form of {instruction} is not understood here: {line}"
                );
                let from = words
                    .iter()
                    .find_map(|w| w.strip_prefix("--from="))
                    .map(str::to_string);
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
                        "only plain paths are understood here: {line}"
                    );
                }
                stage.copies.push((
                    sources.iter().map(|s| s.to_string()).collect(),
                    dest.to_string(),
                    from,
                ));
            }
            "RUN" if words.first() == Some(&"cargo") => {
                stage.cargo = words[1..].iter().map(|w| w.to_string()).collect();
            }
            "ENTRYPOINT" => {
                let json: Vec<String> = serde_json::from_str(rest.trim()).unwrap_or_else(|e| {
                    panic!("only the JSON form of ENTRYPOINT is understood here: {line}: {e}")
                });
                stage.entrypoint = json;
            }
            _ => {}
        }
    }
    stages
}

/// What the build stage does with the context: the stage named
/// [`BUILD_STAGE`], which must copy from the context and run cargo.
fn build_stage(dockerfile: &str) -> Stage {
    let stage = stages(dockerfile)
        .into_iter()
        .find(|s| s.name == BUILD_STAGE)
        .unwrap_or_else(|| panic!("no stage {BUILD_STAGE:?}"));
    assert!(
        stage.copies.iter().any(|(_, _, from)| from.is_none()),
        "no COPY from the context in stage {BUILD_STAGE:?}"
    );
    assert!(
        !stage.cargo.is_empty(),
        "no RUN cargo … in stage {BUILD_STAGE:?}"
    );
    stage
}

/// The plain paths `.dockerignore` (in `context`) excludes (globs would need
/// a real matcher).
fn docker_ignored(context: &Path) -> Vec<String> {
    std::fs::read_to_string(context.join(".dockerignore"))
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

/// Places what the build stage copies from the build context `source` into
/// `context`, laid out as in the image's working directory.
fn materialise(stage: &Stage, source: &Path, context: &Path) {
    let ignored = docker_ignored(source);
    for (sources, dest, from) in &stage.copies {
        if from.is_some() {
            continue;
        }
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
            let from = source.join(s);
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
        !copies.iter().any(|(s, _, _)| s == &["src".to_string()]),
        "{copies:?}"
    );
}

/// A service of compose/docker-compose.yml that compose builds: its name,
/// build context (absolute), Dockerfile, target stage and command.
#[derive(Debug)]
struct ComposeBuild {
    service: String,
    context: PathBuf,
    dockerfile: String,
    target: String,
    command: Vec<String>,
}

/// Every `build:` of the compose file, as Compose v2 itself resolves it
/// (`docker compose config`: relative contexts made absolute).
fn compose_builds() -> Vec<ComposeBuild> {
    let (ok, json) = stack::run(
        Command::new(stack::compose_bin())
            .arg("-f")
            .arg(root().join("compose/docker-compose.yml"))
            .args(["config", "--format", "json"]),
    );
    assert!(ok, "{json}");
    let config: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut builds = Vec::new();
    for (name, service) in config["services"].as_object().unwrap() {
        let Some(build) = service.get("build") else {
            continue;
        };
        builds.push(ComposeBuild {
            service: name.clone(),
            context: PathBuf::from(build["context"].as_str().unwrap()),
            dockerfile: build["dockerfile"]
                .as_str()
                .unwrap_or("Dockerfile")
                .to_string(),
            target: build["target"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: a build without a target builds the last stage"))
                .to_string(),
            command: service["command"]
                .as_array()
                .map(|c| c.iter().map(|a| a.as_str().unwrap().to_string()).collect())
                .unwrap_or_default(),
        });
    }
    builds
}

/// Compose builds what it runs: each `build:` has a context holding its
/// Dockerfile, a target stage the Dockerfile has, whose entry point is a
/// binary the build stage copies out of a `cargo build --bin` of it; the
/// service's command uses only flags that binary takes; and every binary the
/// build stage makes is an image compose runs.
#[test]
fn compose_builds_every_image_it_runs() {
    let builds = compose_builds();
    let mut images: Vec<&str> = builds.iter().map(|b| b.target.as_str()).collect();
    images.sort();
    images.dedup();
    assert_eq!(images, ["mock-exporter", "promgate"], "{builds:?}");
    for b in &builds {
        let dockerfile = b.context.join(&b.dockerfile);
        let text = std::fs::read_to_string(&dockerfile).unwrap_or_else(|e| {
            panic!(
                "{}: the build context {} has no {}: {e}",
                b.service,
                b.context.display(),
                b.dockerfile
            )
        });
        let all = stages(&text);
        let build = build_stage(&text);
        let target = all.iter().find(|s| s.name == b.target).unwrap_or_else(|| {
            panic!("{}: no stage {:?} in {}", b.service, b.target, b.dockerfile)
        });
        // The entry point is what the stage copies out of the build stage.
        let entry = target
            .entrypoint
            .first()
            .unwrap_or_else(|| panic!("{}: stage {} has no ENTRYPOINT", b.service, b.target));
        let (sources, _, _) = target
            .copies
            .iter()
            .find(|(_, dest, from)| dest == entry && from.as_deref() == Some(BUILD_STAGE))
            .unwrap_or_else(|| {
                panic!(
                    "{}: stage {} copies no {entry} from {BUILD_STAGE}",
                    b.service, b.target
                )
            });
        let bin = sources[0]
            .strip_prefix(&format!("{}/target/release/", build.workdir))
            .unwrap_or_else(|| {
                panic!(
                    "{}: {entry} is not a release binary of {BUILD_STAGE}",
                    b.service
                )
            });
        assert!(
            build.cargo.contains(&"--release".to_string())
                && build.cargo.windows(2).any(|w| w == ["--bin", bin]),
            "{}: {BUILD_STAGE} does not build {bin}: cargo {:?}",
            b.service,
            build.cargo
        );
        // The service's flags are the binary's (the debug build beside this
        // test's, the same sources).
        let exe = Path::new(env!("CARGO_BIN_EXE_promgate")).with_file_name(bin);
        let (ok, help) = stack::run(Command::new(&exe).arg("--help"));
        assert!(ok, "{}: {help}", exe.display());
        for arg in &b.command {
            let flag = arg.split('=').next().unwrap();
            assert!(
                flag.starts_with("--") && help.contains(&format!("{flag} ")),
                "{}: {bin} takes no {flag}: {help}",
                b.service
            );
        }
    }
    // Every binary the build stage makes runs in compose.
    let build = build_stage(&std::fs::read_to_string(root().join("Dockerfile")).unwrap());
    for w in build.cargo.windows(2).filter(|w| w[0] == "--bin") {
        assert!(
            builds.iter().any(|b| b.target == w[1]),
            "the Dockerfile builds {}, which compose does not run",
            w[1]
        );
    }
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
///
/// The context and Dockerfile are the ones compose builds from; this
/// repository's compose builds both images from one.
#[test]
fn the_dockerfile_build_context_is_enough_to_build() {
    let mut contexts: Vec<(PathBuf, String)> = compose_builds()
        .into_iter()
        .map(|b| (b.context, b.dockerfile))
        .collect();
    contexts.sort();
    contexts.dedup();
    assert_eq!(contexts.len(), 1, "{contexts:?}");
    let (source, dockerfile) = contexts.remove(0);
    let stage = build_stage(&std::fs::read_to_string(source.join(dockerfile)).unwrap());
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
    materialise(&stage, &source, &context);

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
