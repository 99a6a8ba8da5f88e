//! `--web.config.file`: the Prometheus web configuration (the format of
//! exporter-toolkit, which Prometheus, node_exporter and the Pushgateway
//! share) with two small promgate extensions.
//!
//! ```yaml
//! tls_server_config:            # TLS, and mTLS with client_auth_type
//!   cert_file: server.crt       # paths are relative to this file's directory
//!   key_file: server.key
//! http_server_config:
//!   headers: { X-Content-Type-Options: nosniff }
//! basic_auth_users:             # user: bcrypt hash
//!   prometheus: $2y$10$...
//! authorization_tokens:         # promgate: name: SHA-256 (hex) of a bearer token
//!   legacy: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! roles:                        # promgate: what a user or token may do (default: all)
//!   vmagent: [read]
//! ```
//!
//! [`load`] reads the file and every file it names, validates all of it
//! (unknown keys are an error, as exporter-toolkit's strict unmarshalling
//! makes them) and builds what serving needs: the [`Credentials`] checked by
//! the HTTP layer and the TLS server configuration used by the accept loop.
//! [`WebConfigHandle`] holds the config in force and re-reads it when any of
//! those files changes; a config that fails to load never replaces a good one.

mod credentials;
mod tls;
mod watch;

pub use credentials::{Credentials, Denied, Principal, Role};
pub use tls::TlsSettings;
pub use watch::WebConfigHandle;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;

/// Why a web config could not be loaded: one line, naming the file and the
/// problem, never a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        // One line, whatever the parser said.
        let message: String = message.into();
        Error(message.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// A loaded, validated web config: everything the server needs to serve it.
#[derive(Debug)]
pub struct WebConfig {
    /// Users and tokens; empty when the file asks for no authentication.
    pub credentials: Arc<Credentials>,
    /// Response headers from `http_server_config.headers`.
    pub headers: Vec<(String, String)>,
    /// TLS, when `tls_server_config` is set.
    pub tls: Option<TlsSettings>,
}

impl WebConfig {
    /// One line describing what is enforced, for the start-up and reload logs.
    pub fn summary(&self) -> String {
        let tls = match &self.tls {
            None => "off".to_string(),
            Some(t) => t.summary(),
        };
        format!(
            "tls={tls} basic_auth_users={} authorization_tokens={} headers={}",
            self.credentials.users_len(),
            self.credentials.tokens_len(),
            self.headers.len()
        )
    }
}

/// The files a load read, each with the SHA-256 of what it held (`None`:
/// could not be read), in the order read: the config file first. The
/// watcher re-reads exactly these to notice a change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources(pub Vec<(PathBuf, Option<[u8; 32]>)>);

impl Sources {
    /// Reads `path`, recording it and the digest of its contents.
    fn read(&mut self, path: &Path, what: &str) -> Result<Vec<u8>, Error> {
        match std::fs::read(path) {
            Ok(bytes) => {
                self.0.push((path.to_path_buf(), Some(digest(&bytes))));
                Ok(bytes)
            }
            Err(e) => {
                self.0.push((path.to_path_buf(), None));
                Err(Error::new(format!(
                    "cannot read {what} {}: {e}",
                    path.display()
                )))
            }
        }
    }

    /// Whether any recorded file now holds something else (or appeared, or
    /// went away).
    pub fn changed(&self) -> bool {
        self.0.iter().any(|(path, was)| {
            let now = std::fs::read(path).ok().map(|b| digest(&b));
            now != *was
        })
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The file as written. Every section is optional and may be empty (`key:`
/// with nothing after it), as in exporter-toolkit.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tls_server_config: Option<tls::TlsFile>,
    http_server_config: Option<HttpFile>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    /// exporter-toolkit's token bucket; refused with a clear message.
    rate_limit: Option<serde::de::IgnoredAny>,
    authorization_tokens: Option<BTreeMap<String, String>>,
    roles: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// exporter-toolkit serves HTTP/2 over TLS when true (its default);
    /// promgate serves HTTP/1.1 only and accepts either value.
    #[allow(dead_code)]
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The headers exporter-toolkit lets a web config set, with the values it
/// accepts (any value when the list is empty).
const HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// Reads and validates the web config at `path` and every file it names.
///
/// Returns the files read (with their digests) whatever the outcome, so a
/// broken config is re-tried only once something changes.
pub fn load(path: &Path) -> (Result<WebConfig, Error>, Sources) {
    load_counting(path, Counter::default())
}

/// [`load`], counting bcrypt runs in `bcrypt_runs`.
fn load_counting(path: &Path, bcrypt_runs: Counter) -> (Result<WebConfig, Error>, Sources) {
    let mut sources = Sources::default();
    let result = load_into(path, &mut sources, bcrypt_runs)
        .map_err(|e| Error::new(format!("web config {}: {e}", path.display())));
    (result, sources)
}

fn load_into(path: &Path, sources: &mut Sources, bcrypt_runs: Counter) -> Result<WebConfig, Error> {
    let bytes = sources.read(path, "the file")?;
    let file = parse(&bytes)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    if file.rate_limit.is_some() {
        return Err(Error::new(
            "rate_limit is not supported by promgate (writes are bounded by --limits.concurrent-writes)",
        ));
    }
    let http = file.http_server_config.unwrap_or_default();
    let headers = validate_headers(http.headers.unwrap_or_default())?;
    let credentials = Credentials::new(
        file.basic_auth_users.unwrap_or_default(),
        file.authorization_tokens.unwrap_or_default(),
        file.roles.unwrap_or_default(),
    )?
    .counting_into(bcrypt_runs);
    let tls = match file.tls_server_config {
        None => None,
        Some(t) => Some(TlsSettings::build(t, dir, sources)?),
    };
    Ok(WebConfig {
        credentials: Arc::new(credentials),
        headers,
        tls,
    })
}

/// Parses the YAML strictly: unknown keys and duplicate keys are errors.
fn parse(bytes: &[u8]) -> Result<File, Error> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::new("the file is not UTF-8"))?;
    // An empty file (or one of comments only) is a valid config that
    // enforces nothing, as in exporter-toolkit.
    let blank = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if blank {
        return Ok(File::default());
    }
    let options = serde_saphyr::options! {
        with_snippet: false,
    };
    let file: Option<File> = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| Error::new(e.to_string()))?;
    Ok(file.unwrap_or_default())
}

fn validate_headers(headers: BTreeMap<String, String>) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let Some((canonical, allowed)) = HEADERS.iter().find(|(h, _)| *h == name) else {
            return Err(Error::new(format!(
                "HTTP header {name:?} can not be configured (allowed: {})",
                HEADERS.map(|(h, _)| h).join(", ")
            )));
        };
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(Error::new(format!(
                "invalid value for {name}: expected one of {allowed:?}, got {value:?}"
            )));
        }
        // A value that cannot be sent as a header is refused here rather
        // than dropped when answering.
        if value
            .bytes()
            .any(|b| !(b == b'\t' || (0x20..0x7f).contains(&b)))
        {
            return Err(Error::new(format!(
                "invalid value for {name}: only visible ASCII and spaces are allowed"
            )));
        }
        if !value.is_empty() {
            out.push(((*canonical).to_string(), value));
        }
    }
    Ok(out)
}

/// `path` relative to the config file's directory unless absolute, as
/// exporter-toolkit resolves `cert_file`, `key_file` and `client_ca_file`.
fn resolve(dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(yaml: &str) -> Result<WebConfig, Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, yaml).unwrap();
        load(&path).0
    }

    fn hash() -> String {
        bcrypt::hash("pw", 4).unwrap()
    }

    #[test]
    fn empty_and_null_sections_enforce_nothing() {
        for yaml in [
            "",
            "# nothing\n",
            "basic_auth_users:\n",
            "http_server_config:\n",
            "http_server_config:\n  http2: false\n",
        ] {
            let c = load_str(yaml).unwrap_or_else(|e| panic!("{yaml:?}: {e}"));
            assert!(c.credentials.is_empty() && c.tls.is_none() && c.headers.is_empty());
        }
    }

    #[test]
    fn unknown_and_duplicate_keys_are_errors() {
        for (yaml, needle) in [
            ("basic_auth_user:\n  a: b\n", "basic_auth_user"),
            ("http_server_config:\n  header: {}\n", "header"),
            ("tls_server_config:\n  certfile: x\n", "certfile"),
            (
                &format!("basic_auth_users:\n  a: '{h}'\n  a: '{h}'\n", h = hash()),
                "uplicate",
            ),
            ("rate_limit:\n  interval: 1s\n  burst: 1\n", "rate_limit"),
            ("basic_auth_users: [\n", ""),
        ] {
            let e = load_str(yaml).unwrap_err().to_string();
            assert!(e.contains(needle), "{yaml:?}: {e}");
            assert!(!e.contains('\n'), "{e:?}");
            assert!(e.starts_with("web config "), "{e}");
        }
    }

    #[test]
    fn headers_as_exporter_toolkit_allows_them() {
        let c = load_str(
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Content-Security-Policy: default-src 'self'\n    Strict-Transport-Security: ''\n",
        )
        .unwrap();
        assert_eq!(
            c.headers,
            [
                (
                    "Content-Security-Policy".to_string(),
                    "default-src 'self'".to_string()
                ),
                ("X-Frame-Options".to_string(), "deny".to_string()),
            ]
        );
        for yaml in [
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            "http_server_config:\n  headers:\n    Server: promgate\n",
        ] {
            assert!(load_str(yaml).is_err(), "{yaml}");
        }
    }

    #[test]
    fn a_missing_file_is_an_error_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.yml");
        let (result, sources) = load(&path);
        assert!(result.unwrap_err().to_string().contains("cannot read"));
        assert_eq!(sources.0, [(path.clone(), None)]);
        assert!(!sources.changed());
        std::fs::write(&path, "").unwrap();
        assert!(sources.changed());
    }
}
