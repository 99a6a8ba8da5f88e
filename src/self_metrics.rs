//! promgate's own metrics (`promgate_*`), served on `/-/metrics`.
//!
//! Built with prometheus-client: counters are registered without `_total`
//! (the crate appends it), HTTP metrics are labelled by matched route, never
//! by raw URI, so a hostile client cannot grow the label space.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::model::{ExemplarRejectReason, RejectReason, Rejections};
use crate::store::ApplyOutcome;

/// Labels of the HTTP request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The matched route, e.g. `/api/v1/write`.
    pub route: &'static str,
    /// The response status code.
    pub code: u16,
}

/// Labels of the request duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The matched route.
    pub route: &'static str,
}

/// A rejection reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why it was rejected.
    pub reason: &'static str,
}

/// A body encoding.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EncodingLabels {
    /// snappy, zstd or identity.
    pub encoding: &'static str,
}

/// The outcome of an attempt (a web config reload).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or `failure`.
    pub result: &'static str,
}

/// A /metrics page's format.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PageLabels {
    /// `text-0.0.4`, `text-1.0.0`, `openmetrics-1.0.0` or `openmetrics-0.0.1`.
    pub format: &'static str,
    /// The escaping scheme of names outside the legacy set.
    pub escaping: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Every self-metric, and the registry that serves them.
pub struct SelfMetrics {
    registry: Registry,
    /// HTTP requests by route and status code.
    pub http_requests: Family<RequestLabels, Counter>,
    /// HTTP request duration by route (to the response head; `/metrics`
    /// streams its body afterwards).
    pub http_duration: HistogramFamily,
    /// Whole requests refused (remote-write and scrapes), by reason.
    pub requests_rejected: Family<ReasonLabels, Counter>,
    /// Samples accepted into the store.
    pub samples_received: Counter,
    /// Series updates accepted into the store.
    pub series_received: Counter,
    /// Samples rejected, by reason.
    pub samples_rejected: Family<ReasonLabels, Counter>,
    /// Series (and metadata entries) rejected, by reason.
    pub series_rejected: Family<ReasonLabels, Counter>,
    /// Exemplars accepted with the series updates accepted into the store
    /// (what Remote-Write 2.0 reports as written; the store keeps the
    /// latest of each series).
    pub exemplars_received: Counter,
    /// Native histogram samples accepted with the series updates accepted
    /// into the store (Remote-Write 2.0's histograms written).
    pub native_histograms_received: Counter,
    /// Exemplars refused, by reason (their series stored all the same).
    pub exemplars_rejected: Family<ReasonLabels, Counter>,
    /// Series created.
    pub series_created: Counter,
    /// Series removed by Prometheus stale markers.
    pub series_stale_removed: Counter,
    /// Series removed by the TTL sweep.
    pub series_expired: Counter,
    /// Samples not stored because the stored sample of their series is newer.
    pub out_of_order: Counter,
    /// Live series, set at each scrape of `/-/metrics`.
    pub live_series: Gauge,
    /// Metadata families held, set at each scrape.
    pub metadata_families: Gauge,
    /// Request body bytes received (compressed), by encoding.
    pub received_bytes: Family<EncodingLabels, Counter>,
    /// Request body bytes after decompression.
    pub decoded_bytes: Counter,
    /// Loads of `--web.config.file` after start-up, by result.
    pub web_config_reloads: Family<ResultLabels, Counter>,
    /// 1 when the last load of the web config succeeded, 0 when it failed.
    pub web_config_last_reload_successful: Gauge,
    /// When the web config in force was loaded (Unix seconds).
    pub web_config_last_reload_success_time: Gauge,
    /// bcrypt verifications run (basic-auth attempts the cache could not answer).
    pub auth_bcrypt_runs: Counter,
    /// TLS connections that failed or timed out in the handshake.
    pub tls_handshake_errors: Counter,
    /// Connections closed on the client's fault, by reason (see
    /// [`SelfMetrics::CONNECTION_CLOSE_REASONS`]).
    pub connections_closed: Family<ReasonLabels, Counter>,
    /// Connections open now (TLS handshakes in progress included).
    pub connections_open: Gauge,
    /// `--web.max-connections`.
    pub connections_max: Gauge,
    /// Times the accept loop found every connection of
    /// `--web.max-connections` taken and waited for one to close.
    pub connections_limit_reached: Counter,
    /// `/metrics` pages served (fully or not), by format and escaping.
    pub exposition_pages: Family<PageLabels, Counter>,
    /// Series left off `/metrics` pages, by reason (`escaping_collision`).
    pub exposition_series_dropped: Family<ReasonLabels, Counter>,
    /// Series written on `/metrics` pages with escaped names.
    pub exposition_series_escaped: Counter,
    /// Exemplars written on OpenMetrics and protobuf pages.
    pub exposition_exemplars: Counter,
    /// Native histograms shown on `/metrics` pages (classic form or native).
    pub exposition_native_histograms: Counter,
    /// Exemplars left off OpenMetrics and protobuf pages (their series
    /// still there).
    pub exposition_exemplars_dropped: Counter,
    /// Pushed groups held, set at each scrape.
    pub push_groups: Gauge,
    /// Pushes stored, by method (`PUT`, `POST`).
    pub pushes: Family<MethodLabels, Counter>,
    /// Groups removed because nothing was pushed to them within --push.ttl.
    pub groups_expired: Counter,
    /// Snapshots to --persistence.file, by result.
    pub persistence_snapshots: Family<ResultLabels, Counter>,
    /// When the last snapshot was put in place (Unix seconds).
    pub persistence_last_success: Gauge,
    /// Time to take and write a snapshot, successful or not.
    pub persistence_snapshot_duration: Histogram,
    /// Bytes of the last snapshot put in place.
    pub persistence_snapshot_bytes: Gauge,
    /// Series (pushed ones included) loaded from the snapshot at start-up.
    pub persistence_series_loaded: Gauge,
    /// Pushed groups loaded from the snapshot at start-up.
    pub persistence_groups_loaded: Gauge,
    /// Series of the snapshot left out at start-up, by reason (`expired`, `series_limit`).
    pub persistence_load_series_dropped: Family<ReasonLabels, Counter>,
    /// Snapshot files refused at start-up (and moved aside), by reason.
    pub persistence_load_failures: Family<ReasonLabels, Counter>,
    /// Time the start-up load took.
    pub persistence_load_duration: Gauge<f64, std::sync::atomic::AtomicU64>,
}

/// Labels of the push counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// The HTTP method.
    pub method: &'static str,
}

impl Default for SelfMetrics {
    /// Every metric registered, those of optional features included.
    fn default() -> Self {
        Self::new(Features {
            persistence: true,
            web_config: true,
        })
    }
}

/// The optional features whose metrics `/-/metrics` shows: only those
/// configured, so that an alert on one (a snapshot's age, a failed
/// reload) cannot fire on an instance that does not use the feature.
#[derive(Clone, Copy, Debug)]
pub struct Features {
    /// `--persistence.file` is set: the `promgate_persistence_*` metrics.
    pub persistence: bool,
    /// `--web.config.file` is set: `promgate_web_config_*`,
    /// `promgate_auth_bcrypt_runs_total`, `promgate_tls_handshake_errors_total`.
    pub web_config: bool,
}

impl SelfMetrics {
    /// Every reason of `promgate_connections_closed_total`.
    pub const CONNECTION_CLOSE_REASONS: [&'static str; 4] = [
        "header_timeout",
        "idle_timeout",
        "malformed_head",
        "write_timeout",
    ];

    /// Every reason of `promgate_exposition_series_dropped_total`.
    pub const EXPOSITION_DROP_REASONS: [&'static str; 4] = [
        "escaping_collision",
        "openmetrics_invalid",
        "native_histogram_le_label",
        "native_histogram_classic_sent",
    ];

    /// The pages scrapers ask for most, counted from zero: the default ones
    /// of vmagent (text 0.0.4), Prometheus 2 (OpenMetrics, underscores)
    /// and Prometheus 3 (OpenMetrics, allow-utf-8), and the protobuf page
    /// of Prometheus with native histograms (no scheme named: underscores
    /// by default).
    pub const PAGES: [(&'static str, &'static str); 4] = [
        ("text-0.0.4", "underscores"),
        ("openmetrics-1.0.0", "underscores"),
        ("openmetrics-1.0.0", "allow-utf-8"),
        ("protobuf", "underscores"),
    ];

    /// Creates every metric and registers those of promgate and of the
    /// `features` configured.
    pub fn new(features: Features) -> Self {
        let mut registry = Registry::with_prefix("promgate");
        let m = SelfMetrics {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
            }),
            requests_rejected: Family::default(),
            samples_received: Counter::default(),
            series_received: Counter::default(),
            samples_rejected: Family::default(),
            series_rejected: Family::default(),
            exemplars_received: Counter::default(),
            native_histograms_received: Counter::default(),
            exemplars_rejected: Family::default(),
            series_created: Counter::default(),
            series_stale_removed: Counter::default(),
            series_expired: Counter::default(),
            out_of_order: Counter::default(),
            live_series: Gauge::default(),
            metadata_families: Gauge::default(),
            received_bytes: Family::default(),
            decoded_bytes: Counter::default(),
            exposition_pages: Family::default(),
            exposition_series_dropped: Family::default(),
            exposition_series_escaped: Counter::default(),
            exposition_exemplars: Counter::default(),
            exposition_exemplars_dropped: Counter::default(),
            exposition_native_histograms: Counter::default(),
            push_groups: Gauge::default(),
            pushes: Family::default(),
            groups_expired: Counter::default(),
            persistence_snapshots: Family::default(),
            persistence_last_success: Gauge::default(),
            persistence_snapshot_duration: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            persistence_snapshot_bytes: Gauge::default(),
            persistence_series_loaded: Gauge::default(),
            persistence_groups_loaded: Gauge::default(),
            persistence_load_series_dropped: Family::default(),
            persistence_load_failures: Family::default(),
            persistence_load_duration: Gauge::default(),
            web_config_reloads: Family::default(),
            web_config_last_reload_successful: Gauge::default(),
            web_config_last_reload_success_time: Gauge::default(),
            auth_bcrypt_runs: Counter::default(),
            tls_handshake_errors: Counter::default(),
            connections_closed: Family::default(),
            connections_open: Gauge::default(),
            connections_max: Gauge::default(),
            connections_limit_reached: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "http_requests",
            "HTTP requests by route and status code",
            m.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, to the response head",
            m.http_duration.clone(),
        );
        r.register(
            "requests_rejected",
            "Requests refused as a whole (remote-write bodies, scrapes, unknown paths), by reason",
            m.requests_rejected.clone(),
        );
        r.register(
            "samples_received",
            "Samples accepted into the store",
            m.samples_received.clone(),
        );
        r.register(
            "series_received",
            "Series updates accepted into the store",
            m.series_received.clone(),
        );
        r.register(
            "samples_rejected",
            "Samples rejected, by reason",
            m.samples_rejected.clone(),
        );
        r.register(
            "series_rejected",
            "Series and metadata entries rejected, by reason",
            m.series_rejected.clone(),
        );
        r.register(
            "exemplars_received",
            "Exemplars accepted with the series updates accepted into the store",
            m.exemplars_received.clone(),
        );
        r.register(
            "native_histograms_received",
            "Native histogram samples accepted with the series updates accepted into the store",
            m.native_histograms_received.clone(),
        );
        r.register(
            "exemplars_rejected",
            "Exemplars refused (their series stored), by reason",
            m.exemplars_rejected.clone(),
        );
        r.register(
            "series_created",
            "Series created in the store",
            m.series_created.clone(),
        );
        r.register(
            "series_stale_removed",
            "Series removed by Prometheus stale markers",
            m.series_stale_removed.clone(),
        );
        r.register(
            "series_expired",
            "Series removed because no sample arrived within --series.ttl",
            m.series_expired.clone(),
        );
        r.register(
            "samples_out_of_order",
            "Samples not stored because the stored sample of their series is newer",
            m.out_of_order.clone(),
        );
        r.register(
            "live_series",
            "Series currently exposed on /metrics",
            m.live_series.clone(),
        );
        r.register(
            "metadata_families",
            "Metric families with pushed metadata",
            m.metadata_families.clone(),
        );
        r.register(
            "received_bytes",
            "Remote-write body bytes received, before decompression, by encoding",
            m.received_bytes.clone(),
        );
        r.register(
            "decoded_bytes",
            "Remote-write body bytes after decompression",
            m.decoded_bytes.clone(),
        );
        if features.web_config {
            r.register(
                "web_config_reloads",
                "Reloads of --web.config.file after start-up, by result (a failed one keeps the last good config)",
                m.web_config_reloads.clone(),
            );
            r.register(
                "web_config_last_reload_successful",
                "1 when the last load of --web.config.file succeeded, 0 when it failed",
                m.web_config_last_reload_successful.clone(),
            );
            r.register(
                "web_config_last_reload_success_timestamp_seconds",
                "When the web config in force was loaded",
                m.web_config_last_reload_success_time.clone(),
            );
            r.register(
                "auth_bcrypt_runs",
                "bcrypt verifications run for basic auth (attempts the verdict cache could not answer)",
                m.auth_bcrypt_runs.clone(),
            );
            r.register(
                "tls_handshake_errors",
                "TLS connections that failed or timed out in the handshake",
                m.tls_handshake_errors.clone(),
            );
        }
        r.register(
            "connections_closed",
            "Connections closed on the client's fault, by reason: header_timeout (a new connection sent no complete request head within --web.read-header-timeout), idle_timeout (a kept-alive connection sent no next request head within it), malformed_head (a request head that could not be parsed, answered 400 or 431 with an empty body), write_timeout (the client read nothing of an answer or page for --web.write-timeout)",
            m.connections_closed.clone(),
        );
        r.register(
            "connections_open",
            "Connections open now, TLS handshakes in progress included",
            m.connections_open.clone(),
        );
        r.register(
            "connections_max",
            "Most connections open at once (--web.max-connections)",
            m.connections_max.clone(),
        );
        r.register(
            "connections_limit_reached",
            "Times the accept loop found every place of --web.max-connections taken and stopped accepting until one closed (not the number of connections that waited)",
            m.connections_limit_reached.clone(),
        );
        r.register(
            "exposition_pages",
            "/metrics pages rendered, by format (text-0.0.4, text-1.0.0, openmetrics-1.0.0, openmetrics-0.0.1, protobuf) and escaping scheme of names outside the legacy character set",
            m.exposition_pages.clone(),
        );
        r.register(
            "exposition_series_dropped",
            "Series left off /metrics pages, by reason: escaping_collision (escaped for a scraper without UTF-8 names, the series became another one, two of its label names became one, or a label name became a reserved __ name); openmetrics_invalid (a NaN or negative counter sample, which OpenMetrics forbids, left off an OpenMetrics page); native_histogram_le_label (a native histogram with an le label, which its classic form's buckets need, left off a text or OpenMetrics page); native_histogram_classic_sent (a native histogram left off a text or OpenMetrics page because its sender wrote its classic form too, which the page shows)",
            m.exposition_series_dropped.clone(),
        );
        r.register(
            "exposition_series_escaped",
            "Series written on /metrics pages with their names outside the legacy character set escaped (underscores, dots or values), for scrapers that did not ask for UTF-8 names",
            m.exposition_series_escaped.clone(),
        );
        r.register(
            "exposition_exemplars",
            "Exemplars written on OpenMetrics and protobuf /metrics pages (the latest of each counter and histogram bucket series that has one)",
            m.exposition_exemplars.clone(),
        );
        r.register(
            "exposition_native_histograms",
            "Native histograms shown on /metrics pages: in their classic form (_bucket, _count, _sum) on text and OpenMetrics pages, unchanged on protobuf pages",
            m.exposition_native_histograms.clone(),
        );
        r.register(
            "exposition_exemplars_dropped",
            "Exemplars left off OpenMetrics and protobuf /metrics pages, their series still there: label names that, escaped for the scraper, became alike, a reserved __ name or over 128 characters, or (OpenMetrics only) labels holding an escaped quote (which prometheus_client's parser cannot read there)",
            m.exposition_exemplars_dropped.clone(),
        );
        r.register(
            "push_groups",
            "Groups pushed through the push API and held",
            m.push_groups.clone(),
        );
        r.register(
            "pushes",
            "Pushes stored through the push API, by method",
            m.pushes.clone(),
        );
        r.register(
            "push_groups_expired",
            "Pushed groups removed because nothing was pushed to them within --push.ttl",
            m.groups_expired.clone(),
        );
        if features.persistence {
            r.register(
                "persistence_snapshots",
                "Snapshots of the store to --persistence.file, by result (a failed one leaves the last good file as it was)",
                m.persistence_snapshots.clone(),
            );
            r.register(
                "persistence_last_success_timestamp_seconds",
                "When the last snapshot to --persistence.file was put in place",
                m.persistence_last_success.clone(),
            );
            r.register(
                "persistence_snapshot_duration_seconds",
                "Time to take and write a snapshot, successful or not",
                m.persistence_snapshot_duration.clone(),
            );
            r.register(
                "persistence_snapshot_bytes",
                "Size of the last snapshot put in place",
                m.persistence_snapshot_bytes.clone(),
            );
            r.register(
                "persistence_series_loaded",
                "Series (pushed ones included) loaded from --persistence.file at start-up",
                m.persistence_series_loaded.clone(),
            );
            r.register(
                "persistence_groups_loaded",
                "Pushed groups loaded from --persistence.file at start-up",
                m.persistence_groups_loaded.clone(),
            );
            r.register(
                "persistence_load_series_dropped",
                "Series of the snapshot left out at start-up: their TTL passed (expired) or --limits.series was reached (series_limit)",
                m.persistence_load_series_dropped.clone(),
            );
            r.register(
                "persistence_load_failures",
                "Snapshot files refused at start-up and moved aside, by reason; promgate then starts empty",
                m.persistence_load_failures.clone(),
            );
            r.register(
                "persistence_load_duration_seconds",
                "Time the start-up load of --persistence.file took",
                m.persistence_load_duration.clone(),
            );
            for result in ["success", "failure"] {
                m.persistence_snapshots
                    .get_or_create(&ResultLabels { result })
                    .inc_by(0);
            }
            for reason in ["expired", "series_limit"] {
                m.persistence_load_series_dropped
                    .get_or_create(&ReasonLabels { reason })
                    .inc_by(0);
            }
            for reason in crate::store::persist::LoadError::REASONS {
                m.persistence_load_failures
                    .get_or_create(&ReasonLabels { reason })
                    .inc_by(0);
            }
        }
        // Every reason starts at zero, so `rate()` and alerts see the series
        // before the first rejection happens.
        for reason in Self::CONNECTION_CLOSE_REASONS {
            m.connections_closed
                .get_or_create(&ReasonLabels { reason })
                .inc_by(0);
        }
        for reason in RejectReason::ALL {
            let labels = ReasonLabels {
                reason: reason.as_str(),
            };
            m.series_rejected.get_or_create(&labels).inc_by(0);
            m.samples_rejected.get_or_create(&labels).inc_by(0);
        }
        for reason in Self::EXPOSITION_DROP_REASONS {
            m.exposition_series_dropped
                .get_or_create(&ReasonLabels { reason })
                .inc_by(0);
        }
        for (format, escaping) in Self::PAGES {
            m.exposition_pages
                .get_or_create(&PageLabels { format, escaping })
                .inc_by(0);
        }
        for reason in ExemplarRejectReason::ALL {
            let labels = ReasonLabels {
                reason: reason.as_str(),
            };
            m.exemplars_rejected.get_or_create(&labels).inc_by(0);
        }
        SelfMetrics { registry, ..m }
    }

    /// Counts what a request stored and rejected.
    pub fn record(&self, decoded: &Rejections, applied: &ApplyOutcome) {
        self.samples_received.inc_by(applied.samples);
        self.series_received.inc_by(applied.series);
        self.exemplars_received.inc_by(applied.exemplars);
        self.native_histograms_received.inc_by(applied.histograms);
        for &(reason, n) in &decoded.exemplars {
            let labels = ReasonLabels {
                reason: reason.as_str(),
            };
            self.exemplars_rejected.get_or_create(&labels).inc_by(n);
        }
        self.series_created.inc_by(applied.created);
        self.series_stale_removed.inc_by(applied.stale_removed);
        self.out_of_order.inc_by(applied.out_of_order_samples);
        for rejections in [decoded, &applied.rejected] {
            for &(reason, n) in &rejections.series {
                let labels = ReasonLabels {
                    reason: reason.as_str(),
                };
                self.series_rejected.get_or_create(&labels).inc_by(n);
            }
            for &(reason, n) in &rejections.samples {
                let labels = ReasonLabels {
                    reason: reason.as_str(),
                };
                self.samples_rejected.get_or_create(&labels).inc_by(n);
            }
        }
    }

    /// Encodes the registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The families of `promgate_` in a page (their `# TYPE` lines).
    fn families(page: &str) -> Vec<&str> {
        page.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect()
    }

    /// An optional feature's metrics show only when it is configured (an
    /// alert on a snapshot's age or a failed reload would otherwise fire on
    /// every instance without it); promgate's own show always.
    #[test]
    fn optional_features_show_their_metrics_only_when_configured() {
        let optional = |name: &str| {
            name.starts_with("promgate_persistence_")
                || name.starts_with("promgate_web_config_")
                || name == "promgate_auth_bcrypt_runs"
                || name == "promgate_tls_handshake_errors"
        };
        let none = SelfMetrics::new(Features {
            persistence: false,
            web_config: false,
        })
        .encode();
        let all = SelfMetrics::default().encode();
        let (none, all) = (families(&none), families(&all));
        assert!(none.iter().all(|n| !optional(n)), "{none:?}");
        // 14 registered; `web_config_reloads` has no series (so no lines)
        // until the loaded config starts both results at zero.
        assert_eq!(all.iter().filter(|n| optional(n)).count(), 13, "{all:?}");
        let own: Vec<_> = all.iter().filter(|n| !optional(n)).collect();
        assert_eq!(
            own,
            none.iter().collect::<Vec<_>>(),
            "promgate's own differ"
        );
        assert!(own.contains(&&"promgate_live_series"));
        let persistence_only = SelfMetrics::new(Features {
            persistence: true,
            web_config: false,
        })
        .encode();
        let persistence_only = families(&persistence_only);
        assert!(persistence_only.contains(&"promgate_persistence_last_success_timestamp_seconds"));
        assert!(!persistence_only.contains(&"promgate_web_config_last_reload_successful"));
    }
}
