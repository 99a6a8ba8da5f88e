//! One cluster's simulated fleet: a prometheus-client registry whose metrics
//! advance in one-second steps of a seeded generator.
//!
//! Dynamics: traffic follows a daily cycle in the cluster's time zone (peak at
//! 15:00 local), scaled by environment; Poisson arrivals and log-normal
//! latencies and sizes give noise; incidents (an error burst, a latency
//! spike, a filling queue) are drawn per 30-minute window from the seed.
//! Counters only rise, histograms are observed sample by sample (so buckets
//! are cumulative and `+Inf` equals `_count`), gauges are clamped to physical
//! bounds.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Poisson};
use std::sync::atomic::AtomicU64;

use crate::cluster::Profile;

/// The longest stretch of simulated time caught up in one scrape; a cluster
/// left unscraped for longer skips ahead (its counters simply rise less).
pub const MAX_CATCH_UP_SECS: i64 = 3600;

const INCIDENT_WINDOW_SECS: i64 = 1800;

type FloatCounter = Counter<f64, AtomicU64>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// An HTTP endpoint of a simulated service.
struct Route {
    service: &'static str,
    method: &'static str,
    route: &'static str,
    success: &'static str,
    /// Requests per second at the daily peak in production.
    peak_rps: f64,
    latency_median_s: f64,
    request_median_bytes: f64,
    response_median_bytes: f64,
}

const SERVICES: [&str; 3] = ["api-gateway", "checkout", "catalog"];

const ROUTES: [Route; 6] = [
    Route {
        service: "api-gateway",
        method: "GET",
        route: "/api/v1/products",
        success: "200",
        peak_rps: 24.0,
        latency_median_s: 0.035,
        request_median_bytes: 350.0,
        response_median_bytes: 14_000.0,
    },
    Route {
        service: "api-gateway",
        method: "POST",
        route: "/api/v1/sessions",
        success: "201",
        peak_rps: 6.0,
        latency_median_s: 0.08,
        request_median_bytes: 900.0,
        response_median_bytes: 600.0,
    },
    Route {
        service: "checkout",
        method: "GET",
        route: "/api/v1/cart",
        success: "200",
        peak_rps: 9.0,
        latency_median_s: 0.045,
        request_median_bytes: 300.0,
        response_median_bytes: 4_000.0,
    },
    Route {
        service: "checkout",
        method: "POST",
        route: "/api/v1/orders",
        success: "201",
        peak_rps: 3.0,
        latency_median_s: 0.22,
        request_median_bytes: 2_500.0,
        response_median_bytes: 1_200.0,
    },
    Route {
        service: "catalog",
        method: "GET",
        route: "/api/v1/items",
        success: "200",
        peak_rps: 16.0,
        latency_median_s: 0.025,
        request_median_bytes: 300.0,
        response_median_bytes: 30_000.0,
    },
    Route {
        service: "catalog",
        method: "PUT",
        route: "/api/v1/items/{id}",
        success: "200",
        peak_rps: 1.5,
        latency_median_s: 0.12,
        request_median_bytes: 5_000.0,
        response_median_bytes: 800.0,
    },
];

const ERROR_STATUSES: [&str; 3] = ["400", "500", "503"];
const ERROR_TYPES: [&str; 3] = ["timeout", "database", "validation"];
const DB_OPERATIONS: [(&str, f64, f64); 4] = [
    // (operation, share of queries, median seconds)
    ("select", 0.70, 0.002),
    ("insert", 0.15, 0.006),
    ("update", 0.10, 0.008),
    ("delete", 0.05, 0.004),
];
const POOL_SIZE: [i64; 3] = [50, 30, 40];
const CACHES: [(&str, f64); 2] = [("sessions", 0.93), ("products", 0.78)];
const QUEUES: [(&str, f64); 3] = [("emails", 4.0), ("payments", 2.0), ("webhooks", 6.0)];
const TASKS: [(&str, f64, f64); 3] = [
    // (task, per second at peak, median seconds)
    ("send_email", 2.0, 0.3),
    ("process_payment", 1.0, 0.9),
    ("generate_report", 0.05, 6.0),
];
const TRANSACTIONS: [(&str, f64); 3] = [("order", 1.5), ("refund", 0.1), ("subscription", 0.3)];
const NODES: usize = 3;
const CPUS: usize = 2;
const CPU_MODES: [&str; 4] = ["user", "system", "iowait", "idle"];
const FILESYSTEMS: [(&str, &str, &str, i64); 2] = [
    ("nvme0n1p1", "/", "ext4", 100 << 30),
    ("nvme1n1", "/data", "xfs", 500 << 30),
];

const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const SIZE_BUCKETS: [f64; 5] = [100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0];
const DB_BUCKETS: [f64; 8] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];
const TASK_BUCKETS: [f64; 8] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}
fn size_histogram() -> Histogram {
    Histogram::new(SIZE_BUCKETS)
}
fn db_histogram() -> Histogram {
    Histogram::new(DB_BUCKETS)
}
fn task_histogram() -> Histogram {
    Histogram::new(TASK_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: &'static str,
    method: &'static str,
    route: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    service: &'static str,
    method: &'static str,
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CpuLabels {
    node: String,
    cpu: String,
    mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeviceLabels {
    node: String,
    device: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FsLabels {
    node: String,
    device: &'static str,
    mountpoint: &'static str,
    fstype: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    service: &'static str,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransactionLabels {
    r#type: &'static str,
    status: &'static str,
}

struct Metrics {
    http_requests: Family<RequestLabels, Counter>,
    http_duration: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    http_request_size: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    http_response_size: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    cpu: Family<CpuLabels, FloatCounter>,
    mem_total: Family<NodeLabels, Gauge>,
    mem_available: Family<NodeLabels, Gauge>,
    disk_io_time: Family<DeviceLabels, FloatCounter>,
    net_receive: Family<DeviceLabels, Counter>,
    net_transmit: Family<DeviceLabels, Counter>,
    fs_size: Family<FsLabels, Gauge>,
    fs_avail: Family<FsLabels, Gauge>,
    app_errors: Family<ErrorLabels, Counter>,
    db_duration: Family<OperationLabels, Histogram, fn() -> Histogram>,
    db_connections: Family<ServiceLabels, Gauge>,
    db_connections_max: Family<ServiceLabels, Gauge>,
    cache_requests: Family<CacheLabels, Counter>,
    queue_size: Family<QueueLabels, Gauge>,
    task_duration: Family<TaskLabels, Histogram, fn() -> Histogram>,
    transactions: Family<TransactionLabels, Counter>,
    utilization: Family<NodeLabels, FloatGauge>,
}

/// The kinds of incident the generator injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncidentKind {
    /// A service answers a fifth of its requests with 5xx.
    ErrorBurst,
    /// A service (and the database behind it) is five times slower.
    LatencySpike,
    /// A queue's consumers slow to a fifth, so it fills.
    QueueFill,
}

/// An incident in progress: its kind and the service (or queue) index hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incident {
    /// What goes wrong.
    pub kind: IncidentKind,
    /// Index into the services (and, for queues, into the queues).
    pub target: usize,
}

/// A stable 64-bit FNV-1a hash, so a cluster's stream of numbers does not
/// change with the Rust version.
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The incident (if any) in progress at unix second `t`, a pure function of
/// seed, cluster and window.
pub fn incident_at(seed: u64, cluster: &str, t: i64) -> Option<Incident> {
    let window = t.div_euclid(INCIDENT_WINDOW_SECS);
    let mix = seed ^ stable_hash(cluster) ^ (window as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut rng = ChaCha8Rng::seed_from_u64(mix);
    if !rng.random_bool(0.35) {
        return None;
    }
    let start = rng.random_range(0..INCIDENT_WINDOW_SECS - 600);
    let length = rng.random_range(300..600);
    let kind = match rng.random_range(0..3) {
        0 => IncidentKind::ErrorBurst,
        1 => IncidentKind::LatencySpike,
        _ => IncidentKind::QueueFill,
    };
    let target = rng.random_range(0..SERVICES.len());
    let offset = t - window * INCIDENT_WINDOW_SECS;
    (start..start + length)
        .contains(&offset)
        .then_some(Incident { kind, target })
}

/// The daily traffic cycle at unix second `t` for a zone `utc_offset_hours`
/// from UTC: 1.0 at 15:00 local, 0.1 at 03:00.
pub fn daily_factor(t: i64, utc_offset_hours: f64) -> f64 {
    let local_hour = (t as f64 / 3600.0 + utc_offset_hours).rem_euclid(24.0);
    0.55 + 0.45 * (std::f64::consts::TAU * (local_hour - 9.0) / 24.0).sin()
}

fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean).map_or(0, |p| p.sample(rng) as u64)
}

fn log_normal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    LogNormal::new(median.ln(), sigma).map_or(median, |d| d.sample(rng))
}

fn gaussian(rng: &mut ChaCha8Rng, sd: f64) -> f64 {
    // Sum of uniforms: close enough to normal for noise, and cheap.
    (0..4).map(|_| rng.random::<f64>() - 0.5).sum::<f64>() * sd * 1.73
}

/// Sets size and available bytes of filesystem `f` of `node`, `used` full.
fn set_filesystem(m: &Metrics, node: &str, f: usize, used: f64) {
    let (device, mountpoint, fstype, size) = FILESYSTEMS[f];
    let labels = FsLabels {
        node: node.to_string(),
        device,
        mountpoint,
        fstype,
    };
    m.fs_size.get_or_create(&labels).set(size);
    m.fs_avail
        .get_or_create(&labels)
        .set(((1.0 - used) * size as f64) as i64);
}

/// One cluster's fleet.
pub struct Simulation {
    profile: Profile,
    seed: u64,
    rng: ChaCha8Rng,
    /// The next unix second to simulate.
    next: i64,
    scale: f64,
    registry: Registry,
    m: Metrics,
    nodes: Vec<String>,
    queue_len: [f64; 3],
    fs_used: Vec<[f64; 2]>,
}

impl Simulation {
    /// A fleet for `profile` whose clock starts at unix second `start`.
    pub fn new(seed: u64, profile: Profile, start: i64) -> Simulation {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ stable_hash(&profile.name));
        let scale = 0.85 + 0.3 * rng.random::<f64>();
        let subnet = stable_hash(&profile.name) % 200;
        let nodes: Vec<String> = (0..NODES)
            .map(|i| format!("ip-10-{subnet}-1-{}", 11 + i))
            .collect();
        let fs_used = (0..NODES)
            .map(|_| {
                [
                    0.35 + 0.2 * rng.random::<f64>(),
                    0.4 + 0.2 * rng.random::<f64>(),
                ]
            })
            .collect();
        let m = Metrics {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            http_request_size: Family::new_with_constructor(size_histogram),
            http_response_size: Family::new_with_constructor(size_histogram),
            cpu: Family::default(),
            mem_total: Family::default(),
            mem_available: Family::default(),
            disk_io_time: Family::default(),
            net_receive: Family::default(),
            net_transmit: Family::default(),
            fs_size: Family::default(),
            fs_avail: Family::default(),
            app_errors: Family::default(),
            db_duration: Family::new_with_constructor(db_histogram),
            db_connections: Family::default(),
            db_connections_max: Family::default(),
            cache_requests: Family::default(),
            queue_size: Family::default(),
            task_duration: Family::new_with_constructor(task_histogram),
            transactions: Family::default(),
            utilization: Family::default(),
        };
        let mut sim = Simulation {
            profile,
            seed,
            rng,
            next: start,
            scale,
            registry: Registry::default(),
            m,
            nodes,
            queue_len: [3.0, 1.0, 5.0],
            fs_used,
        };
        sim.register();
        sim.create_children();
        sim
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        let m = &self.m;
        r.register(
            "http_requests",
            "HTTP requests handled, by service, method, route and status code",
            m.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, in seconds",
            m.http_duration.clone(),
        );
        r.register(
            "http_request_size_bytes",
            "HTTP request body size, in bytes",
            m.http_request_size.clone(),
        );
        r.register(
            "http_response_size_bytes",
            "HTTP response body size, in bytes",
            m.http_response_size.clone(),
        );
        r.register(
            "node_cpu_seconds",
            "Seconds each CPU spent in each mode",
            m.cpu.clone(),
        );
        r.register(
            "node_memory_MemTotal_bytes",
            "Memory installed, in bytes",
            m.mem_total.clone(),
        );
        r.register(
            "node_memory_MemAvailable_bytes",
            "Memory available to new work without swapping, in bytes",
            m.mem_available.clone(),
        );
        r.register(
            "node_disk_io_time_seconds",
            "Seconds the disk spent doing I/O",
            m.disk_io_time.clone(),
        );
        r.register(
            "node_network_receive_bytes",
            "Bytes received by the network device",
            m.net_receive.clone(),
        );
        r.register(
            "node_network_transmit_bytes",
            "Bytes sent by the network device",
            m.net_transmit.clone(),
        );
        r.register(
            "node_filesystem_size_bytes",
            "Filesystem size, in bytes",
            m.fs_size.clone(),
        );
        r.register(
            "node_filesystem_avail_bytes",
            "Filesystem space available to non-root users, in bytes",
            m.fs_avail.clone(),
        );
        r.register(
            "node_cpu_utilization_ratio",
            "Share of CPU time not idle over the last second",
            m.utilization.clone(),
        );
        r.register(
            "app_errors",
            "Application errors, by service and error type",
            m.app_errors.clone(),
        );
        r.register(
            "app_database_queries_duration_seconds",
            "Database query time, in seconds, by operation",
            m.db_duration.clone(),
        );
        r.register(
            "app_database_connections_active",
            "Database connections in use, by service",
            m.db_connections.clone(),
        );
        r.register(
            "app_database_connections_max",
            "Database connection pool size, by service",
            m.db_connections_max.clone(),
        );
        r.register(
            "app_cache_requests",
            "Cache lookups, by cache and result",
            m.cache_requests.clone(),
        );
        r.register(
            "app_queue_size",
            "Jobs waiting in the queue",
            m.queue_size.clone(),
        );
        r.register(
            "app_worker_tasks_duration_seconds",
            "Background task run time, in seconds, by task",
            m.task_duration.clone(),
        );
        r.register(
            "app_business_transactions",
            "Business transactions, by type and outcome",
            m.transactions.clone(),
        );
    }

    /// Creates every series up front, so the page has its full shape from the
    /// first scrape (a real exporter's counters start at zero too).
    fn create_children(&mut self) {
        let m = &self.m;
        for r in &ROUTES {
            for status in std::iter::once(r.success).chain(ERROR_STATUSES) {
                let _ = m
                    .http_requests
                    .get_or_create(&RequestLabels {
                        service: r.service,
                        method: r.method,
                        route: r.route,
                        status,
                    })
                    .get();
            }
            let e = EndpointLabels {
                service: r.service,
                method: r.method,
                route: r.route,
            };
            let _ = m.http_duration.get_or_create(&e);
            let _ = m.http_request_size.get_or_create(&e);
            let _ = m.http_response_size.get_or_create(&e);
        }
        for (n, node) in self.nodes.iter().enumerate() {
            let nl = NodeLabels { node: node.clone() };
            for cpu in 0..CPUS {
                for mode in CPU_MODES {
                    let _ = m
                        .cpu
                        .get_or_create(&CpuLabels {
                            node: node.clone(),
                            cpu: cpu.to_string(),
                            mode,
                        })
                        .get();
                }
            }
            let total: i64 = if n == NODES - 1 { 32 << 30 } else { 16 << 30 };
            m.mem_total.get_or_create(&nl).set(total);
            m.mem_available.get_or_create(&nl).set(total * 6 / 10);
            m.utilization.get_or_create(&nl).set(0.0);
            let _ = m
                .disk_io_time
                .get_or_create(&DeviceLabels {
                    node: node.clone(),
                    device: "nvme0n1",
                })
                .get();
            let _ = m
                .net_receive
                .get_or_create(&DeviceLabels {
                    node: node.clone(),
                    device: "eth0",
                })
                .get();
            let _ = m
                .net_transmit
                .get_or_create(&DeviceLabels {
                    node: node.clone(),
                    device: "eth0",
                })
                .get();
        }
        for (s, service) in SERVICES.iter().enumerate() {
            for t in ERROR_TYPES {
                let _ = m
                    .app_errors
                    .get_or_create(&ErrorLabels { service, r#type: t })
                    .get();
            }
            m.db_connections
                .get_or_create(&ServiceLabels { service })
                .set(1);
            m.db_connections_max
                .get_or_create(&ServiceLabels { service })
                .set(POOL_SIZE[s]);
        }
        for (op, _, _) in DB_OPERATIONS {
            let _ = m
                .db_duration
                .get_or_create(&OperationLabels { operation: op });
        }
        for (cache, _) in CACHES {
            for result in ["hit", "miss"] {
                let _ = m
                    .cache_requests
                    .get_or_create(&CacheLabels { cache, result })
                    .get();
            }
        }
        for (task, _, _) in TASKS {
            let _ = m.task_duration.get_or_create(&TaskLabels { task });
        }
        for (t, _) in TRANSACTIONS {
            for status in ["completed", "failed"] {
                let _ = m
                    .transactions
                    .get_or_create(&TransactionLabels { r#type: t, status })
                    .get();
            }
        }
        for (n, node) in self.nodes.iter().enumerate() {
            for f in 0..FILESYSTEMS.len() {
                set_filesystem(m, node, f, self.fs_used[n][f]);
            }
        }
        for (q, (queue, _)) in QUEUES.iter().enumerate() {
            m.queue_size
                .get_or_create(&QueueLabels { queue })
                .set(self.queue_len[q] as i64);
        }
    }

    /// Simulates every second up to (not including) unix second `now`.
    pub fn advance_to(&mut self, now: i64) {
        if now - self.next > MAX_CATCH_UP_SECS {
            self.next = now - MAX_CATCH_UP_SECS;
        }
        while self.next < now {
            self.step(self.next);
            self.next += 1;
        }
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::with_capacity(64 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    fn step(&mut self, t: i64) {
        let daily = daily_factor(t, self.profile.utc_offset_hours);
        let load = daily * self.profile.traffic_factor() * self.scale;
        let incident = incident_at(self.seed, &self.profile.name, t);
        let hit = |kind, target| incident.is_some_and(|i| i.kind == kind && i.target == target);
        let rng = &mut self.rng;
        let m = &self.m;

        let mut requests_by_service = [0u64; 3];
        let mut errors_4xx = [0u64; 3];
        let mut errors_5xx = [0u64; 3];
        for r in &ROUTES {
            let s = SERVICES.iter().position(|x| *x == r.service).unwrap_or(0);
            let slow = if hit(IncidentKind::LatencySpike, s) {
                5.0
            } else {
                1.0
            };
            let p5xx = if hit(IncidentKind::ErrorBurst, s) {
                0.2
            } else {
                0.004
            };
            let p4xx = 0.015;
            let endpoint = EndpointLabels {
                service: r.service,
                method: r.method,
                route: r.route,
            };
            let duration = m.http_duration.get_or_create(&endpoint);
            let req_size = m.http_request_size.get_or_create(&endpoint);
            let resp_size = m.http_response_size.get_or_create(&endpoint);
            let n = poisson(rng, r.peak_rps * load);
            requests_by_service[s] += n;
            for _ in 0..n {
                let u: f64 = rng.random();
                let status = if u < p5xx {
                    errors_5xx[s] += 1;
                    if u < p5xx * 0.75 { "500" } else { "503" }
                } else if u < p5xx + p4xx {
                    errors_4xx[s] += 1;
                    "400"
                } else {
                    r.success
                };
                m.http_requests
                    .get_or_create(&RequestLabels {
                        service: r.service,
                        method: r.method,
                        route: r.route,
                        status,
                    })
                    .inc();
                duration.observe(log_normal(rng, r.latency_median_s * slow, 0.5));
                req_size.observe(log_normal(rng, r.request_median_bytes, 0.6).round());
                resp_size.observe(log_normal(rng, r.response_median_bytes, 0.7).round());
            }
        }
        let total: u64 = requests_by_service.iter().sum();

        // Application errors follow the HTTP errors they explain.
        for (s, service) in SERVICES.iter().enumerate() {
            let timeouts_share = if hit(IncidentKind::LatencySpike, s) {
                0.9
            } else {
                0.4
            };
            let timeouts = (errors_5xx[s] as f64 * timeouts_share).round() as u64;
            m.app_errors
                .get_or_create(&ErrorLabels {
                    service,
                    r#type: "timeout",
                })
                .inc_by(timeouts);
            m.app_errors
                .get_or_create(&ErrorLabels {
                    service,
                    r#type: "database",
                })
                .inc_by(errors_5xx[s] - timeouts);
            m.app_errors
                .get_or_create(&ErrorLabels {
                    service,
                    r#type: "validation",
                })
                .inc_by(errors_4xx[s]);
        }

        // Database: about two queries per request, slower while any service spikes.
        let db_slow = if incident.is_some_and(|i| i.kind == IncidentKind::LatencySpike) {
            4.0
        } else {
            1.0
        };
        for (op, share, median) in DB_OPERATIONS {
            let h = m
                .db_duration
                .get_or_create(&OperationLabels { operation: op });
            for _ in 0..poisson(rng, total as f64 * 1.8 * share) {
                h.observe(log_normal(rng, median * db_slow, 0.6));
            }
        }
        for (s, service) in SERVICES.iter().enumerate() {
            let slow = if hit(IncidentKind::LatencySpike, s) {
                6.0
            } else {
                1.0
            };
            let busy = requests_by_service[s] as f64 * 0.05 * slow + 1.0 + gaussian(rng, 1.0).abs();
            let active = (busy.round() as i64).clamp(0, POOL_SIZE[s]);
            m.db_connections
                .get_or_create(&ServiceLabels { service })
                .set(active);
        }

        for (cache, hit_ratio) in CACHES {
            let lookups = poisson(rng, total as f64 * 0.8);
            let ratio = (hit_ratio + gaussian(rng, 0.02)).clamp(0.0, 1.0);
            let hits = (lookups as f64 * ratio).round() as u64;
            m.cache_requests
                .get_or_create(&CacheLabels {
                    cache,
                    result: "hit",
                })
                .inc_by(hits);
            m.cache_requests
                .get_or_create(&CacheLabels {
                    cache,
                    result: "miss",
                })
                .inc_by(lookups - hits);
        }

        // Queues: arrivals follow traffic; consumers drain a little faster than
        // the peak arrival rate, unless an incident slows them.
        for (q, (queue, rate)) in QUEUES.iter().enumerate() {
            let arrivals = poisson(rng, rate * load) as f64;
            let capacity = if hit(IncidentKind::QueueFill, q) {
                rate * 0.2
            } else {
                rate * 1.3
            };
            let served = (poisson(rng, capacity) as f64).min(self.queue_len[q] + arrivals);
            self.queue_len[q] = (self.queue_len[q] + arrivals - served).max(0.0);
            m.queue_size
                .get_or_create(&QueueLabels { queue })
                .set(self.queue_len[q] as i64);
        }

        for (task, rate, median) in TASKS {
            let h = m.task_duration.get_or_create(&TaskLabels { task });
            for _ in 0..poisson(rng, rate * load) {
                h.observe(log_normal(rng, median, 0.5));
            }
        }

        for (kind, rate) in TRANSACTIONS {
            let failing = if hit(IncidentKind::ErrorBurst, 1) {
                0.3
            } else {
                0.03
            };
            for _ in 0..poisson(rng, rate * load) {
                let status = if rng.random_bool(failing) {
                    "failed"
                } else {
                    "completed"
                };
                m.transactions
                    .get_or_create(&TransactionLabels {
                        r#type: kind,
                        status,
                    })
                    .inc();
            }
        }

        let spiking = incident.is_some_and(|i| i.kind == IncidentKind::LatencySpike);
        let utilization = (0.08 + 0.6 * load + if spiking { 0.2 } else { 0.0 }).min(0.9);
        for (n, node) in self.nodes.iter().enumerate() {
            let u = (utilization + gaussian(rng, 0.03)).clamp(0.02, 0.97);
            m.utilization
                .get_or_create(&NodeLabels { node: node.clone() })
                .set(u);
            // Every CPU spends exactly one second per second across its modes.
            for cpu in 0..CPUS {
                let cpu = cpu.to_string();
                let shares = [0.7 * u, 0.22 * u, 0.08 * u, 1.0 - u];
                for (mode, share) in CPU_MODES.iter().zip(shares) {
                    m.cpu
                        .get_or_create(&CpuLabels {
                            node: node.clone(),
                            cpu: cpu.clone(),
                            mode,
                        })
                        .inc_by(share);
                }
            }
            let dev = |device| DeviceLabels {
                node: node.clone(),
                device,
            };
            m.disk_io_time
                .get_or_create(&dev("nvme0n1"))
                .inc_by((0.05 + 0.4 * u).min(1.0));
            let per_node = total as f64 / NODES as f64;
            m.net_receive
                .get_or_create(&dev("eth0"))
                .inc_by((per_node * 9_000.0 + 2_000.0 + gaussian(rng, 500.0).abs()) as u64);
            m.net_transmit
                .get_or_create(&dev("eth0"))
                .inc_by((per_node * 22_000.0 + 1_500.0 + gaussian(rng, 500.0).abs()) as u64);
            for f in 0..FILESYSTEMS.len() {
                // Disks fill with logs and data; a cleanup frees space at 85%.
                let used = &mut self.fs_used[n][f];
                *used += 2e-7 * (1.0 + load);
                if *used > 0.85 {
                    *used = 0.55;
                }
                set_filesystem(m, node, f, *used);
            }
            let total_mem = m
                .mem_total
                .get_or_create(&NodeLabels { node: node.clone() })
                .get();
            let free = (0.62 - 0.35 * u + gaussian(rng, 0.01)).clamp(0.05, 0.95);
            m.mem_available
                .get_or_create(&NodeLabels { node: node.clone() })
                .set((total_mem as f64 * free) as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_cycle_peaks_in_the_local_afternoon() {
        // 15:00 UTC at an offset of 0.
        let afternoon = 15 * 3600;
        let night = 3 * 3600;
        assert!((daily_factor(afternoon, 0.0) - 1.0).abs() < 1e-9);
        assert!((daily_factor(night, 0.0) - 0.1).abs() < 1e-9);
        // Singapore's afternoon is 07:00 UTC.
        assert!((daily_factor(7 * 3600, 8.0) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn incidents_happen_and_are_deterministic() {
        let day: Vec<_> = (0..86_400)
            .step_by(60)
            .map(|t| incident_at(7, "c", t))
            .collect();
        assert!(day.iter().any(Option::is_some));
        assert!(day.iter().filter(|i| i.is_some()).count() < day.len() / 2);
        let again: Vec<_> = (0..86_400)
            .step_by(60)
            .map(|t| incident_at(7, "c", t))
            .collect();
        assert_eq!(day, again);
    }
}
