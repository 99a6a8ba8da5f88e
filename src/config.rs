//! All of promgate's configuration: one clap-derive struct.
//!
//! Flags follow the Prometheus style (`--web.listen-address`); each can also
//! be set from the environment variable named in `--help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::exposition::{Escaping, RenderOptions, TimestampPolicy};
use crate::ingest;
use crate::model::SeriesLimits;
use crate::store::StoreLimits;

/// What promgate can do besides serving.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum Command {
    /// Read the text format from a file or stdin and send it by remote write (stamped now unless the text carries timestamps).
    Push(crate::push_client::PushArgs),
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, like the Prometheus family.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// promgate: a Prometheus remote-write receiver that keeps the latest sample
/// of every series and re-exposes them on /metrics for a scraper.
#[derive(Clone, Debug, Parser)]
#[command(name = "promgate", version, about, long_about = None)]
pub struct Config {
    /// A subcommand instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on for remote-write, /metrics and the /-/ endpoints: host:port, as Prometheus and the Pushgateway take it (":9091" is every IPv4 address, "localhost:9091" the name's first IPv4 address).
    #[arg(
        long = "web.listen-address",
        env = "PROMGATE_WEB_LISTEN_ADDRESS",
        default_value = "0.0.0.0:9091",
        value_parser = parse_listen_address
    )]
    pub listen_address: SocketAddr,

    /// How long a client may take to send a request's headers, idle keep-alive connections included; the connection is closed after it.
    #[arg(long = "web.read-header-timeout", env = "PROMGATE_WEB_READ_HEADER_TIMEOUT",
          default_value = "10s", value_parser = parse_duration)]
    pub read_header_timeout: Duration,

    /// Most connections open at once (plain and TLS); beyond it new connections wait in the kernel's accept queue until one closes, as Prometheus' --web.max-connections.
    #[arg(long = "web.max-connections", env = "PROMGATE_WEB_MAX_CONNECTIONS", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// How long a client may take to send a request's body (408 after it, reason body_timeout).
    #[arg(long = "web.read-timeout", env = "PROMGATE_WEB_READ_TIMEOUT",
          default_value = "30s", value_parser = parse_duration)]
    pub read_timeout: Duration,

    /// How long a client may read nothing of what promgate sends (each ~64 KiB part of a /metrics page, any answer); the connection is closed after it, freeing its place and render slot.
    #[arg(long = "web.write-timeout", env = "PROMGATE_WEB_WRITE_TIMEOUT",
          default_value = "30s", value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// After SIGTERM or SIGINT, how long requests in flight (and pages being streamed) may take before they are cut off.
    #[arg(long = "web.shutdown-timeout", env = "PROMGATE_WEB_SHUTDOWN_TIMEOUT",
          default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// A series not updated for this long leaves /metrics (e.g. 30s, 5m, 1h); 0 keeps series forever.
    #[arg(long = "series.ttl", env = "PROMGATE_SERIES_TTL", default_value = "5m", value_parser = parse_duration)]
    pub series_ttl: Duration,

    /// A group pushed through the push API (`/metrics/job/…`) and not pushed to again for this long is deleted (e.g. 1h, 1d); 0 keeps groups until deleted, as the Pushgateway does.
    #[arg(long = "push.ttl", env = "PROMGATE_PUSH_TTL", default_value = "0s", value_parser = parse_duration)]
    pub push_ttl: Duration,

    /// `original`: exposed samples carry their pushed timestamps; `none`: no timestamps.
    #[arg(
        long = "exposition.timestamps",
        env = "PROMGATE_EXPOSITION_TIMESTAMPS",
        value_enum,
        default_value = "original"
    )]
    pub timestamps: TimestampPolicy,

    /// How names outside the legacy character set (`http.server.duration`, `service.name`) are written for a scraper whose Accept header names no escaping scheme (vmagent, Prometheus 2): underscores (the spec's default), dots, values, or allow-utf-8 (the quoted syntax, for scrapers known to parse it; the page is then labelled text/plain version=1.0.0).
    #[arg(
        long = "exposition.default-escaping",
        env = "PROMGATE_EXPOSITION_DEFAULT_ESCAPING",
        value_enum,
        default_value = "underscores"
    )]
    pub default_escaping: Escaping,

    /// Most `le` buckets a native histogram shows on text and OpenMetrics pages (its classic form): a histogram with more is shown at a lower resolution, neighbouring buckets merged, which keeps the cumulative counts exact at the bounds that remain. 0 shows every bucket. The protobuf page always carries native histograms unchanged.
    #[arg(
        long = "exposition.native-histogram-max-buckets",
        env = "PROMGATE_EXPOSITION_NATIVE_HISTOGRAM_MAX_BUCKETS",
        default_value_t = 0
    )]
    pub native_histogram_max_buckets: usize,

    /// Most /metrics pages rendered at once; a scrape beyond waits for a slot.
    #[arg(
        long = "exposition.max-concurrent-scrapes",
        env = "PROMGATE_EXPOSITION_MAX_CONCURRENT_SCRAPES",
        default_value_t = 8,
        value_parser = parse_scrapes
    )]
    pub max_concurrent_scrapes: usize,

    /// How long a scrape waits for a render slot before 503 (e.g. 5s, 500ms).
    #[arg(long = "exposition.max-queue-duration", env = "PROMGATE_EXPOSITION_MAX_QUEUE_DURATION",
          default_value = "5s", value_parser = parse_duration)]
    pub max_scrape_queue_duration: Duration,

    /// Largest accepted request body, before decompression, in bytes (413 above).
    #[arg(long = "limits.request-body-bytes", env = "PROMGATE_LIMITS_REQUEST_BODY_BYTES", default_value_t = 16 << 20)]
    pub max_body_bytes: usize,

    /// Most request-body bytes held at once by writes and pushes, from their first byte until they are applied (503 when the budget stays spent for --limits.write-queue-duration, reason too_many_body_bytes); at least --limits.request-body-bytes. Default: 4 × --limits.request-body-bytes.
    #[arg(
        long = "limits.body-bytes-in-flight",
        env = "PROMGATE_LIMITS_BODY_BYTES_IN_FLIGHT"
    )]
    pub body_bytes_in_flight: Option<usize>,

    /// Largest accepted request body after decompression, in bytes (413 above); checked against the declared size before allocating.
    #[arg(long = "limits.decoded-body-bytes", env = "PROMGATE_LIMITS_DECODED_BODY_BYTES", default_value_t = 64 << 20,
          value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub max_decoded_bytes: u64,

    /// Most labels per series, __name__ included (400 above); 30 is VictoriaMetrics' -maxLabelsPerTimeseries, beyond which it drops labels.
    #[arg(
        long = "limits.labels-per-series",
        env = "PROMGATE_LIMITS_LABELS_PER_SERIES",
        default_value_t = 30
    )]
    pub max_labels: usize,

    /// Longest label name in bytes (400 above).
    #[arg(
        long = "limits.label-name-length",
        env = "PROMGATE_LIMITS_LABEL_NAME_LENGTH",
        default_value_t = 256
    )]
    pub max_label_name_len: usize,

    /// Longest label value in bytes (400 above).
    #[arg(
        long = "limits.label-value-length",
        env = "PROMGATE_LIMITS_LABEL_VALUE_LENGTH",
        default_value_t = 4096
    )]
    pub max_label_value_len: usize,

    /// Longest HELP text (or unit) of a metric family in bytes (400 above, reason metadata_too_long).
    #[arg(
        long = "limits.help-length",
        env = "PROMGATE_LIMITS_HELP_LENGTH",
        default_value_t = 4096
    )]
    pub max_help_len: usize,

    /// Most buckets (or custom bounds) a native histogram keeps: one with more is stored at a lower resolution, neighbouring buckets merged (counts stay exact at the bounds left), and refused (400, native_histogram_bucket_limit) if even the lowest cannot hold it. Bounds what a few bytes of zstd can make a page cost. 0: no limit.
    #[arg(
        long = "limits.native-histogram-buckets",
        env = "PROMGATE_LIMITS_NATIVE_HISTOGRAM_BUCKETS",
        default_value_t = 320
    )]
    pub max_histogram_buckets: usize,

    /// Most remote-write requests and pushes decoded and applied at once (1-1024); each holds its body and its decoded form. Like vmagent's -maxConcurrentInserts.
    #[arg(
        long = "limits.concurrent-writes",
        env = "PROMGATE_LIMITS_CONCURRENT_WRITES",
        default_value_t = default_concurrent_writes(),
        value_parser = parse_scrapes
    )]
    pub max_concurrent_writes: usize,

    /// How long a remote-write request or push waits for a slot before 503 (reason too_many_writes).
    #[arg(long = "limits.write-queue-duration", env = "PROMGATE_LIMITS_WRITE_QUEUE_DURATION",
          default_value = "10s", value_parser = parse_duration)]
    pub write_queue_duration: Duration,

    /// How far ahead of promgate's clock a sample may be stamped (400 beyond, reason timestamp_too_far_in_future); 0 for no bound.
    #[arg(long = "limits.future-time-window", env = "PROMGATE_LIMITS_FUTURE_TIME_WINDOW",
          default_value = "10m", value_parser = parse_duration)]
    pub future_time_window: Duration,

    /// Most live series; new series beyond it are rejected with 400, existing ones still update.
    #[arg(
        long = "limits.series",
        env = "PROMGATE_LIMITS_SERIES",
        default_value_t = 1_000_000
    )]
    pub max_series: usize,

    /// Most metric families with metadata (HELP/TYPE) held.
    #[arg(
        long = "limits.metadata",
        env = "PROMGATE_LIMITS_METADATA",
        default_value_t = 100_000
    )]
    pub max_metadata: usize,

    /// File the store (series, metadata, pushed groups) is snapshotted to, and loaded from at start-up; none or empty: nothing is persisted, as the Pushgateway without --persistence.file.
    #[arg(long = "persistence.file", env = "PROMGATE_PERSISTENCE_FILE", value_parser = parse_path)]
    pub persistence_file: Option<PathBuf>,

    /// How often the store is snapshotted to --persistence.file (once more at shutdown); 0: only at shutdown.
    #[arg(long = "persistence.interval", env = "PROMGATE_PERSISTENCE_INTERVAL",
          default_value = "5m", value_parser = parse_duration)]
    pub persistence_interval: Duration,

    /// Log level: error, warn, info, debug or trace (or a tracing filter directive).
    #[arg(long = "log.level", env = "PROMGATE_LOG_LEVEL", default_value = "info", value_parser = parse_log_level)]
    pub log_level: String,

    /// Log format.
    #[arg(
        long = "log.format",
        env = "PROMGATE_LOG_FORMAT",
        value_enum,
        default_value = "logfmt"
    )]
    pub log_format: LogFormat,

    /// Prometheus web-config file (exporter-toolkit format): basic_auth_users (bcrypt), tls_server_config (TLS, mTLS), http_server_config.headers, and promgate's authorization_tokens and roles. Applies to every endpoint; re-read when it changes. Empty: none.
    #[arg(long = "web.config.file", env = "PROMGATE_WEB_CONFIG_FILE", value_parser = parse_path)]
    pub web_config_file: Option<PathBuf>,

    /// How often the web config file and the files it names are checked for changes (content hash); 0: only on SIGHUP.
    #[arg(long = "web.config.reload-interval", env = "PROMGATE_WEB_CONFIG_RELOAD_INTERVAL",
          default_value = "5s", value_parser = parse_duration)]
    pub web_config_reload_interval: Duration,
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// A listen address as the Prometheus family writes it (Go's
/// `net.Listen`): `host:port`, the host an IPv4 address, an IPv6 one in
/// brackets (`[::1]:9091`), a name (bracketed or not), or empty; the port
/// decimal digits, empty for 0. An empty host (`:9091`, the Pushgateway's
/// default) is every IPv4 address, as promgate's default `0.0.0.0:9091`
/// (Go listens on IPv6 too there; `[::]:9091` does both on Linux); a name
/// is resolved once, at start-up, to its first IPv4 address (else its
/// first), as Go listens on one address of a name.
fn parse_listen_address(s: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = s.parse() {
        return Ok(address);
    }
    let (host, port) = s
        .rsplit_once(':')
        .filter(|_| !s.ends_with(']'))
        .ok_or_else(|| format!("{s:?} is not host:port (missing port)"))?;
    let port: u16 = match port {
        "" => 0,
        p if p.bytes().all(|b| b.is_ascii_digit()) => p
            .parse()
            .map_err(|_| format!("{s:?}: port {p} is over 65535"))?,
        p => return Err(format!("{s:?}: {p:?} is not a port")),
    };
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) => inner,
        None if host.contains([':', '[', ']']) => {
            return Err(format!(
                "{s:?}: an IPv6 address goes in brackets ([::1]:9091)"
            ));
        }
        None => host,
    };
    if host.is_empty() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    let found: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .map_err(|e| format!("{s:?}: cannot resolve {host:?}: {e}"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("{s:?}: {host:?} has no address"))
}

/// A path, the empty one included (`--persistence.file=` turns persistence
/// off, as in the Pushgateway), where clap's own parser refuses it.
fn parse_path(s: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(s))
}

/// A level (`error`, `warn`, `info`, `debug`, `trace`, `off`, any case) or
/// a tracing filter directive (one with `=`, e.g. `promgate=debug`). A bare
/// word that is neither, such as `warning`, would be read by tracing as a
/// target name and silence every log line: refused instead.
fn parse_log_level(s: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let known = LEVELS.iter().any(|l| l.eq_ignore_ascii_case(s.trim()));
    if known || s.contains('=') {
        Ok(s.trim().to_string())
    } else {
        Err(format!(
            "{s:?} is not a level (error, warn, info, debug, trace, off) nor a filter directive such as promgate=debug"
        ))
    }
}

/// Twice the cores, as vmagent's -maxConcurrentInserts, and at least 4.
fn default_concurrent_writes() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cores).clamp(4, 1024)
}

fn parse_scrapes(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err(format!("{s:?} is not a number from 1 to 1024")),
    }
}

impl Default for Config {
    /// Every flag at its default, as `promgate` with no flags (environment
    /// variables still apply, as for the binary).
    fn default() -> Self {
        Config::parse_from(["promgate"])
    }
}

impl Config {
    /// Checks the flags that bound each other; the message names both.
    ///
    /// # Errors
    ///
    /// `--limits.body-bytes-in-flight` below `--limits.request-body-bytes`:
    /// a body of the largest accepted size could never be received.
    pub fn check(&self) -> Result<(), String> {
        match self.body_bytes_in_flight {
            Some(budget) if budget < self.max_body_bytes => Err(format!(
                "--limits.body-bytes-in-flight ({budget}) is below --limits.request-body-bytes ({}): \
                 a body of the largest accepted size could never be received",
                self.max_body_bytes
            )),
            _ => Ok(()),
        }
    }

    /// Request-body bytes that may be held at once, in bytes:
    /// `--limits.body-bytes-in-flight`, by default four bodies of the
    /// largest accepted size.
    pub fn body_bytes_budget(&self) -> usize {
        self.body_bytes_in_flight
            .unwrap_or_else(|| self.max_body_bytes.saturating_mul(4))
            // A tokio semaphore holds at most this many permits.
            .min(tokio::sync::Semaphore::MAX_PERMITS)
    }

    /// Decoder limits from the flags.
    pub fn decode_limits(&self) -> ingest::Limits {
        ingest::Limits {
            max_decoded_bytes: self.max_decoded_bytes as usize,
            series: SeriesLimits {
                max_labels: self.max_labels,
                max_name_len: self.max_label_name_len,
                max_value_len: self.max_label_value_len,
                max_help_len: self.max_help_len,
                max_histogram_buckets: self.max_histogram_buckets,
            },
            future_window: Some(self.future_time_window).filter(|d| !d.is_zero()),
        }
    }

    /// Store limits from the flags.
    pub fn store_limits(&self) -> StoreLimits {
        StoreLimits {
            max_series: self.max_series,
            max_metadata: self.max_metadata,
        }
    }

    /// Per-series limits from the flags.
    pub fn series_limits(&self) -> SeriesLimits {
        self.decode_limits().series
    }

    /// How pages are rendered.
    pub fn render_options(&self) -> RenderOptions {
        RenderOptions {
            timestamps: self.timestamps,
            chunk_bytes: 64 * 1024,
            escaping: self.default_escaping,
            native_histogram_max_buckets: self.native_histogram_max_buckets,
        }
    }

    /// The TTL, or `None` when series are kept forever.
    pub fn ttl(&self) -> Option<Duration> {
        Some(self.series_ttl).filter(|d| !d.is_zero())
    }

    /// The web config file, or `None` when there is none (no flag, or an
    /// empty one, as exporter-toolkit takes it).
    pub fn web_config_file(&self) -> Option<&std::path::Path> {
        self.web_config_file
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
    }

    /// The snapshot file, or `None` when nothing is persisted (no flag, or
    /// an empty one as the Pushgateway takes it).
    pub fn persistence_file(&self) -> Option<&std::path::Path> {
        self.persistence_file
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
    }

    /// The snapshot period, or `None` for snapshots at shutdown only.
    pub fn persistence_interval(&self) -> Option<Duration> {
        Some(self.persistence_interval).filter(|d| !d.is_zero())
    }

    /// The pushed groups' TTL, or `None` when groups are kept until deleted.
    pub fn push_ttl(&self) -> Option<Duration> {
        Some(self.push_ttl).filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_budget_defaults_to_four_bodies_and_holds_at_least_one() {
        let c =
            Config::try_parse_from(["promgate", "--limits.request-body-bytes", "1000"]).unwrap();
        assert_eq!(c.body_bytes_budget(), 4000);
        assert_eq!(c.check(), Ok(()));
        let c = Config::try_parse_from([
            "promgate",
            "--limits.request-body-bytes",
            "1000",
            "--limits.body-bytes-in-flight",
            "999",
        ])
        .unwrap();
        let e = c.check().unwrap_err();
        assert!(
            e.starts_with(
                "--limits.body-bytes-in-flight (999) is below --limits.request-body-bytes (1000)"
            ),
            "{e}"
        );
        let c = Config::try_parse_from(["promgate", "--web.max-connections", "0"]);
        assert!(c.is_err(), "0 connections would serve nobody");
    }

    /// `--web.config.file=` (empty) is no web config, as exporter-toolkit
    /// and `--persistence.file=` take it.
    #[test]
    fn an_empty_web_config_file_is_none() {
        let c = Config::try_parse_from(["promgate", "--web.config.file="]).unwrap();
        assert_eq!(c.web_config_file(), None);
        let c = Config::try_parse_from(["promgate", "--web.config.file", "w.yml"]).unwrap();
        assert_eq!(c.web_config_file(), Some(std::path::Path::new("w.yml")));
    }

    /// The forms Prometheus and the Pushgateway take for
    /// `--web.listen-address`, so that a migration keeps its flags.
    #[test]
    fn listen_address_forms() {
        let parse = |s: &str| {
            Config::try_parse_from(["promgate", "--web.listen-address", s])
                .map(|c| c.listen_address.to_string())
                .map_err(|e| e.to_string())
        };
        assert_eq!(parse(":9091").unwrap(), "0.0.0.0:9091");
        assert!(parse("=:9091").is_err(), "a stray = is no host");
        assert_eq!(parse("127.0.0.1:0").unwrap(), "127.0.0.1:0");
        assert_eq!(parse("[::1]:9091").unwrap(), "[::1]:9091");
        assert_eq!(parse("localhost:9091").unwrap(), "127.0.0.1:9091");
        assert_eq!(parse("[localhost]:9091").unwrap(), "127.0.0.1:9091");
        assert_eq!(parse("localhost:").unwrap(), "127.0.0.1:0", "Go's port 0");
        assert_eq!(parse(":").unwrap(), "0.0.0.0:0");
        for bad in [
            "9091",
            ":port",
            ":+0",
            ":70000",
            "::1:0",
            "[::1]",
            "no-such-host.invalid:9091",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse("[::1]").unwrap_err().contains("missing port"));
        let c = Config::try_parse_from(["promgate", "--web.listen-address=:9092"]).unwrap();
        assert_eq!(c.listen_address.to_string(), "0.0.0.0:9092");
    }

    #[test]
    fn defaults_and_ttl_parsing() {
        let c = Config::try_parse_from(["promgate"]).unwrap();
        assert_eq!(c.listen_address.port(), 9091);
        assert_eq!(c.ttl(), Some(Duration::from_secs(300)));
        assert_eq!(c.timestamps, TimestampPolicy::Original);
        assert_eq!(c.max_concurrent_scrapes, 8);
        let c = Config::try_parse_from([
            "promgate",
            "--series.ttl",
            "0",
            "--exposition.timestamps",
            "none",
        ])
        .unwrap();
        assert_eq!(c.ttl(), None);
        assert_eq!(c.timestamps, TimestampPolicy::None);
        assert!(
            Config::try_parse_from(["promgate", "--exposition.max-concurrent-scrapes", "0"])
                .is_err()
        );
        assert!(Config::try_parse_from(["promgate", "--series.ttl", "soon"]).is_err());
        assert_eq!(c.persistence_file(), None);
        assert_eq!(c.persistence_interval(), Some(Duration::from_secs(300)));
        let c = Config::try_parse_from(["promgate", "--persistence.file="]).unwrap();
        assert_eq!(c.persistence_file(), None);
        let c = Config::try_parse_from([
            "promgate",
            "--persistence.file",
            "/var/lib/promgate/snapshot",
            "--persistence.interval",
            "0",
        ])
        .unwrap();
        assert_eq!(
            c.persistence_file(),
            Some(std::path::Path::new("/var/lib/promgate/snapshot"))
        );
        assert_eq!(c.persistence_interval(), None);
        for level in ["warn", "ERROR", "promgate=debug,tower_http=info"] {
            assert!(
                Config::try_parse_from(["promgate", "--log.level", level]).is_ok(),
                "{level}"
            );
        }
        for level in ["warning", "verbose", ""] {
            assert!(
                Config::try_parse_from(["promgate", "--log.level", level]).is_err(),
                "{level}"
            );
        }
    }
}
