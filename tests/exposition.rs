//! `GET /metrics`: golden pages for metadata, histograms, summaries, escaping,
//! special floats and hostile input, each also checked by `promtool check metrics`.
//!
//! Regenerate the golden files with `UPDATE_GOLDEN=1 cargo test --test exposition`
//! and review the diff. Series order within one metric name follows the hash
//! table, so comparisons sort each run of lines with the same metric name;
//! family order, member order and HELP/TYPE placement are compared exactly.

mod common;

use std::io::Read;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn page(
    series: &[Series<'_>],
    metadata: &[(&str, MetricType, &str)],
    args: &[&str],
) -> String {
    let (app, _) = app(args);
    let (status, text) = write(&app, &request(series, metadata)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let (status, page) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    page
}

/// Sorts each run of consecutive sample lines that share a metric name.
fn canonical(page: &str) -> String {
    let name = |l: &str| l.split(['{', ' ']).next().unwrap_or("").to_string();
    let mut out: Vec<String> = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    let flush = |run: &mut Vec<&str>, out: &mut Vec<String>| {
        run.sort_unstable();
        out.extend(run.drain(..).map(str::to_string));
    };
    for line in page.lines() {
        if line.starts_with('#') || run.last().is_some_and(|l| name(l) != name(line)) {
            flush(&mut run, &mut out);
        }
        if line.starts_with('#') {
            out.push(line.to_string());
        } else {
            run.push(line);
        }
    }
    flush(&mut run, &mut out);
    out.join("\n") + "\n"
}

fn golden(name: &str, page: &str) {
    let path = format!("tests/golden/{name}.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, canonical(page)).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(canonical(page), want, "page differs from {path}");
    assert_parses(page);
}

#[tokio::test]
async fn metadata_gives_help_and_type() {
    let p = page(
        &[
            (
                &[("__name__", "http_requests_total"), ("code", "200")],
                &[(1027.0, 1_700_000_000_000)],
            ),
            (
                &[("__name__", "http_requests_total"), ("code", "500")],
                &[(3.0, 1_700_000_000_000)],
            ),
            (
                &[("__name__", "temperature_celsius")],
                &[(21.5, 1_700_000_000_000)],
            ),
            (
                &[("__name__", "no_metadata_total")],
                &[(1.0, 1_700_000_000_000)],
            ),
            (&[("__name__", "jobs_total")], &[(7.0, 1_700_000_000_000)]),
        ],
        &[
            (
                "http_requests_total",
                MetricType::Counter,
                "Total HTTP requests.\nBy code, with a \\ backslash.",
            ),
            (
                "temperature_celsius",
                MetricType::Gauge,
                "Room temperature.",
            ),
            // OpenMetrics names the counter family without _total.
            ("jobs", MetricType::Counter, "Jobs run."),
            (
                "no_series_here",
                MetricType::Gauge,
                "Metadata without series is not shown.",
            ),
        ],
        &[],
    )
    .await;
    golden("metadata", &p);
}

#[tokio::test]
async fn histograms_are_one_family() {
    let t = 1_700_000_000_000;
    let mut series: Vec<Series> = Vec::new();
    let buckets: &[(&[(&str, &str)], f64)] = &[
        (
            &[
                ("__name__", "rpc_duration_seconds_bucket"),
                ("method", "GET"),
                ("le", "0.1"),
            ],
            10.0,
        ),
        (
            &[
                ("__name__", "rpc_duration_seconds_bucket"),
                ("method", "GET"),
                ("le", "0.5"),
            ],
            15.0,
        ),
        (
            &[
                ("__name__", "rpc_duration_seconds_bucket"),
                ("method", "GET"),
                ("le", "+Inf"),
            ],
            17.0,
        ),
        (
            &[("__name__", "rpc_duration_seconds_sum"), ("method", "GET")],
            2.25,
        ),
        (
            &[
                ("__name__", "rpc_duration_seconds_count"),
                ("method", "GET"),
            ],
            17.0,
        ),
        (
            &[
                ("__name__", "rpc_duration_seconds_bucket"),
                ("method", "POST"),
                ("le", "0.1"),
            ],
            0.0,
        ),
        (
            &[
                ("__name__", "rpc_duration_seconds_bucket"),
                ("method", "POST"),
                ("le", "0.5"),
            ],
            1.0,
        ),
        (
            &[
                ("__name__", "rpc_duration_seconds_bucket"),
                ("method", "POST"),
                ("le", "+Inf"),
            ],
            1.0,
        ),
        (
            &[("__name__", "rpc_duration_seconds_sum"), ("method", "POST")],
            0.3,
        ),
        (
            &[
                ("__name__", "rpc_duration_seconds_count"),
                ("method", "POST"),
            ],
            1.0,
        ),
    ];
    let samples: Vec<[(f64, i64); 1]> = buckets.iter().map(|(_, v)| [(*v, t)]).collect();
    for ((labels, _), s) in buckets.iter().zip(&samples) {
        series.push((labels, s));
    }
    let p = page(
        &series,
        &[(
            "rpc_duration_seconds",
            MetricType::Histogram,
            "RPC latency.",
        )],
        &[],
    )
    .await;
    golden("histogram", &p);
}

#[tokio::test]
async fn summaries_are_one_family() {
    let t = 1_700_000_000_000;
    let p = page(
        &[
            (
                &[("__name__", "gc_pause_seconds"), ("quantile", "0.5")],
                &[(0.002, t)],
            ),
            (
                &[("__name__", "gc_pause_seconds"), ("quantile", "0.99")],
                &[(0.02, t)],
            ),
            (&[("__name__", "gc_pause_seconds_sum")], &[(1.5, t)]),
            (&[("__name__", "gc_pause_seconds_count")], &[(400.0, t)]),
            // Not part of a summary: its own family.
            (
                &[("__name__", "gc_pause_seconds_bucket"), ("le", "1")],
                &[(1.0, t)],
            ),
        ],
        &[("gc_pause_seconds", MetricType::Summary, "GC pauses.")],
        &[],
    )
    .await;
    golden("summary", &p);
}

#[tokio::test]
async fn label_values_are_escaped() {
    let t = 1_700_000_000_000;
    let p = page(
        &[
            (
                &[("__name__", "escapes"), ("path", "C:\\temp\\new")],
                &[(1.0, t)],
            ),
            (
                &[("__name__", "escapes"), ("quote", "say \"hi\"")],
                &[(2.0, t)],
            ),
            (
                &[("__name__", "escapes"), ("text", "line1\nline2")],
                &[(3.0, t)],
            ),
            (
                &[("__name__", "escapes"), ("utf8", "日本語 ü \t tab")],
                &[(4.0, t)],
            ),
        ],
        &[],
        &[],
    )
    .await;
    golden("escaping", &p);
}

#[tokio::test]
async fn special_floats_round_trip() {
    // -0.0 is absent here: proto3 does not encode a field equal to zero, so
    // neither Prometheus nor any other sender can transmit it.
    let values = [
        ("nan", f64::NAN),
        ("pos_inf", f64::INFINITY),
        ("neg_inf", f64::NEG_INFINITY),
        ("min_subnormal", 5e-324),
        ("max", f64::MAX),
        ("tenth", 0.1),
        ("sum_of_tenths", 0.1 + 0.2),
        ("tiny", 1e-7),
        ("big_int", 123_456_789_012_345_680_000.0),
    ];
    let labels: Vec<[(&str, &str); 2]> = values
        .iter()
        .map(|(k, _)| [("__name__", "float_value"), ("case", *k)])
        .collect();
    let samples: Vec<[(f64, i64); 1]> = values.iter().map(|(_, v)| [(*v, 1)]).collect();
    let series: Vec<Series> = labels
        .iter()
        .zip(&samples)
        .map(|(l, s)| (&l[..], &s[..]))
        .collect();
    let p = page(&series, &[], &[]).await;
    golden("special_floats", &p);
    for (case, want) in values {
        let line = p
            .lines()
            .find(|l| l.contains(&format!("case=\"{case}\"")))
            .unwrap();
        let text = line.split(' ').nth(1).unwrap();
        let got: f64 = match text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            t => t.parse().unwrap(),
        };
        if want.is_nan() {
            assert!(got.is_nan());
        } else {
            assert_eq!(got.to_bits(), want.to_bits(), "{case}: {text}");
        }
    }
}

#[tokio::test]
async fn hostile_but_accepted_input_still_parses() {
    let t = 1;
    let p = page(
        &[
            // Histogram metadata, but a bucket bound the parser cannot read: exposed untyped.
            (&[("__name__", "weird_bucket"), ("le", "abc")], &[(1.0, t)]),
            (&[("__name__", "weird_count")], &[(1.0, t)]),
            // Summary metadata with an unreadable quantile: exposed untyped.
            (&[("__name__", "odd"), ("quantile", "high")], &[(1.0, t)]),
            // A summary whose base name is also a plain series without a
            // quantile: client_golang would drop that line, so untyped.
            (&[("__name__", "s")], &[(1.0, t)]),
            (&[("__name__", "s_count")], &[(2.0, t)]),
            // Names that differ only by suffix, without metadata.
            (&[("__name__", "x")], &[(1.0, t)]),
            (&[("__name__", "x_sum")], &[(1.0, t)]),
            (&[("__name__", "x_bucket"), ("le", "1")], &[(1.0, t)]),
            // A metric name (a label value) may start with "__".
            (&[("__name__", "__reserved__"), ("meta", "x")], &[(1.0, t)]),
            (
                &[("__name__", "colon:name"), ("_", "underscore")],
                &[(1.0, t)],
            ),
        ],
        &[
            ("weird", MetricType::Histogram, "h"),
            ("odd", MetricType::Summary, "s"),
            (
                "s",
                MetricType::Summary,
                "help with \\n literal and\nnewline",
            ),
            ("x", MetricType::Gaugehistogram, ""),
            ("colon:name", MetricType::Stateset, "state set"),
        ],
        &[],
    )
    .await;
    golden("hostile", &p);
}

#[tokio::test]
async fn timestamps_can_be_left_out() {
    let p = page(
        &[(&[("__name__", "up")], &[(1.0, 1234)])],
        &[],
        &["--exposition.timestamps", "none"],
    )
    .await;
    assert_eq!(p, "up 1\n");
}

#[tokio::test]
async fn large_pages_stream_in_chunks_and_gzip_when_asked() {
    let (app, _) = app(&[]);
    let names: Vec<String> = (0..20_000).map(|i| format!("host-{i:05}")).collect();
    for chunk in names.chunks(1000) {
        let labels: Vec<[(&str, &str); 3]> = chunk
            .iter()
            .map(|h| {
                [
                    ("__name__", "node_load1"),
                    ("instance", h.as_str()),
                    ("job", "node"),
                ]
            })
            .collect();
        let series: Vec<Series> = labels.iter().map(|l| (&l[..], &[(0.5, 10)][..])).collect();
        assert_eq!(
            write(&app, &request(&series, &[])).await.0,
            StatusCode::NO_CONTENT
        );
    }
    let resp = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let mut body = resp.into_body();
    let mut frames = 0;
    let mut plain = Vec::new();
    while let Some(frame) = body.frame().await {
        plain.extend_from_slice(frame.unwrap().data_ref().unwrap());
        frames += 1;
    }
    assert!(frames > 5, "a 20k-series page came in {frames} chunk(s)");
    let plain = String::from_utf8(plain).unwrap();
    assert_eq!(plain.lines().count(), 20_000);

    let resp = app
        .clone()
        .oneshot(
            Request::get("/metrics")
                .header(header::ACCEPT_ENCODING, "gzip")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
    let gz = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(
        gz.len() * 5 < plain.len(),
        "gzip saved too little: {} of {}",
        gz.len(),
        plain.len()
    );
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(sample_lines(&unzipped), sample_lines(&plain));
    assert_parses(&plain);
}

/// Regression (issue 10): with `--series.ttl 0` no sweep ran, so a family
/// whose last series a stale marker removed kept its HELP and TYPE on the
/// page with no samples under them.
#[tokio::test]
async fn a_family_without_live_series_never_appears() {
    for ttl in ["0", "5m"] {
        let (app, _) = app(&["--series.ttl", ttl]);
        let gone: &[(&str, &str)] = &[("__name__", "gone_total"), ("job", "x")];
        let kept: &[(&str, &str)] = &[("__name__", "kept_total"), ("job", "x")];
        let req = request(
            &[(gone, &[(1.0, 1000)]), (kept, &[(2.0, 1000)])],
            &[
                ("gone_total", MetricType::Counter, "Gone."),
                ("kept_total", MetricType::Counter, "Kept."),
            ],
        );
        assert_eq!(write(&app, &req).await.0, StatusCode::NO_CONTENT);
        let stale = f64::from_bits(promgate::model::STALE_NAN_BITS);
        let req = request(&[(gone, &[(stale, 2000)])], &[]);
        assert_eq!(write(&app, &req).await.0, StatusCode::NO_CONTENT);
        let (_, page) = get(&app, "/metrics").await;
        assert_eq!(
            page,
            "# HELP kept_total Kept.\n# TYPE kept_total counter\nkept_total{job=\"x\"} 2 1000\n",
            "--series.ttl {ttl}"
        );
        assert_parses(&page);
    }
}

/// A page big enough that its render blocks on a client that does not read:
/// more than the two chunks the channel holds.
async fn app_with_a_big_page(args: &[&str]) -> axum::Router {
    let (app, _) = app(args);
    let names: Vec<String> = (0..6000)
        .map(|i| format!("host-{i:05}-{}", "x".repeat(60)))
        .collect();
    for chunk in names.chunks(1000) {
        let labels: Vec<[(&str, &str); 2]> = chunk
            .iter()
            .map(|h| [("__name__", "node_load1"), ("instance", h.as_str())])
            .collect();
        let series: Vec<Series> = labels.iter().map(|l| (&l[..], &[(0.5, 10)][..])).collect();
        assert_eq!(
            write(&app, &request(&series, &[])).await.0,
            StatusCode::NO_CONTENT
        );
    }
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scrapes_are_bounded_and_the_rest_get_503() {
    let app = app_with_a_big_page(&[
        "--exposition.max-concurrent-scrapes",
        "1",
        "--exposition.max-queue-duration",
        "200ms",
    ])
    .await;
    // The first scrape holds the only slot while its client reads nothing.
    let held = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(held.status(), StatusCode::OK);
    let started = std::time::Instant::now();
    let (status, body) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    assert!(
        body.starts_with("too many concurrent scrapes: 1 pages"),
        "{body}"
    );
    assert_eq!(body.lines().count(), 1, "{body:?}");
    assert_eq!(
        self_metric(
            &app,
            "promgate_requests_rejected_total{reason=\"too_many_scrapes\"}"
        )
        .await,
        1.0
    );
    // The client goes away: its render stops and frees the slot.
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, page) = get(&app, "/metrics").await;
        if status == StatusCode::OK {
            assert_eq!(page.lines().count(), 6000);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slot was never freed"
        );
    }
}
