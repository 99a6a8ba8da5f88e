//! `POST /api/v1/write` at the router level: every acceptance rule and every
//! bad input, each answered with its status and reason while what was already
//! stored stays exactly as it was.

mod common;

use axum::Router;
use axum::http::StatusCode;
use common::*;
use promgate::proto::WriteRequest;
use prost::Message;

const UP: &[(&str, &str)] = &[("__name__", "up"), ("job", "node"), ("instance", "a:9100")];

/// An app holding one series, and its page.
async fn seeded(args: &[&str]) -> (Router, String) {
    let (app, _) = app(args);
    let (status, _) = write(&app, &request(&[(UP, &[(1.0, 1000)])], &[])).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(page, "up{instance=\"a:9100\",job=\"node\"} 1 1000\n");
    (app, page)
}

/// Sends a bad request and checks its status, its reason, and that the page did not change.
async fn assert_rejected(
    app: &Router,
    before: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    status: StatusCode,
    reason: &str,
) {
    let (got, text) = post(app, headers, body).await;
    assert_eq!(got, status, "body: {text}");
    assert!(text.contains(reason), "{reason:?} not in {text:?}");
    assert_eq!(text.lines().count(), 1, "reason must be one line: {text:?}");
    let (_, after) = get(app, "/metrics").await;
    assert_eq!(after, before, "a rejected request changed the store");
}

#[tokio::test]
async fn accepts_a_prometheus_request_and_exposes_it() {
    let (app, _) = seeded(&[]).await;
    let (status, body) = write(&app, &request(&[(UP, &[(0.0, 2000)])], &[])).await;
    assert_eq!((status, body.as_str()), (StatusCode::NO_CONTENT, ""));
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(page, "up{instance=\"a:9100\",job=\"node\"} 0 2000\n");
    assert_eq!(
        self_metric(&app, "promgate_samples_received_total").await,
        2.0
    );
    assert_eq!(
        self_metric(
            &app,
            "promgate_http_requests_total{route=\"/api/v1/write\",code=\"204\"}"
        )
        .await,
        2.0
    );
}

#[tokio::test]
async fn accepts_every_supported_encoding_and_content_type() {
    // Each case writes its own value to a fresh promgate, and the page must
    // show that value: a 204 alone would not tell a body decoded to nothing.
    type Encode = fn(&WriteRequest) -> Vec<u8>;
    let cases: [(Labels, Encode); 4] = [
        (&[], snappy),
        (
            &[(
                "content-type",
                "application/x-protobuf;proto=prometheus.WriteRequest",
            )],
            snappy,
        ),
        (&[("content-encoding", "zstd")], |req| {
            zstd::encode_all(&req.encode_to_vec()[..], 3).unwrap()
        }),
        (&[("content-encoding", "identity")], |req| {
            req.encode_to_vec()
        }),
    ];
    for (i, (headers, encode)) in cases.into_iter().enumerate() {
        let (app, _) = app(&[]);
        let value = 7.0 + i as f64;
        let (status, text) =
            post(&app, headers, encode(&request(&[(UP, &[(value, 1)])], &[]))).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{headers:?}: {text}");
        assert_eq!(
            sample_lines(&get(&app, "/metrics").await.1),
            [format!("up{{instance=\"a:9100\",job=\"node\"}} {value} 1")],
            "{headers:?}"
        );
    }
}

#[tokio::test]
async fn posts_the_shipped_fixture() {
    // Captured from Prometheus 2.42 remote-writing its own scrape of itself.
    let body = std::fs::read("tests/fixtures/prometheus-2.42-self-scrape.snappy").unwrap();
    let (app, _) = app(&[]);
    let (status, text) = post(&app, PROMETHEUS_HEADERS, body).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let (_, page) = get(&app, "/metrics").await;
    assert!(
        page.contains("up{instance=\"localhost:9090\",job=\"prometheus\"} 1 "),
        "{page}"
    );
    assert!(page.lines().count() > 100, "{page}");
}

#[tokio::test]
async fn malformed_bodies_are_rejected_and_lose_nothing() {
    let (app, before) = seeded(&[]).await;
    let good = snappy(&request(&[(UP, &[(9.0, 5000)])], &[]));
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "garbage",
            b"\xff\xfe not snappy at all".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed snappy body",
        ),
        (
            "truncated snappy",
            good[..good.len() - 3].to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed snappy body",
        ),
        (
            "huge declared size",
            vec![0x80, 0x80, 0x80, 0x80, 0x04, 0x00],
            StatusCode::PAYLOAD_TOO_LARGE,
            "decompressed body would be 1073741824 bytes",
        ),
        (
            "snappy of garbage protobuf",
            snap::raw::Encoder::new()
                .compress_vec(b"\x0a\xff\xff\xff\xff\x0f garbage")
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "malformed protobuf WriteRequest",
        ),
    ];
    for (name, body, status, reason) in cases {
        println!("case: {name}");
        assert_rejected(&app, &before, PROMETHEUS_HEADERS, body, status, reason).await;
    }
    let m = "promgate_requests_rejected_total";
    assert_eq!(
        self_metric(&app, &format!("{m}{{reason=\"malformed_compression\"}}")).await,
        2.0
    );
    assert_eq!(
        self_metric(&app, &format!("{m}{{reason=\"decoded_body_too_large\"}}")).await,
        1.0
    );
    assert_eq!(
        self_metric(&app, &format!("{m}{{reason=\"malformed_protobuf\"}}")).await,
        1.0
    );
    // Still serving: a good request after all that is stored.
    let (status, _) = post(&app, PROMETHEUS_HEADERS, good).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn unsupported_media_types_and_encodings_get_415() {
    let (app, before) = seeded(&[]).await;
    let body = snappy(&request(&[(UP, &[(9.0, 5000)])], &[]));
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("content-encoding", "gzip")],
            "unsupported Content-Encoding \"gzip\"",
        ),
        (
            &[("content-type", "application/json")],
            "unsupported Content-Type \"application/json\"",
        ),
        (
            &[(
                "content-type",
                "application/x-protobuf;proto=io.prometheus.write.v3.Request",
            )],
            "unsupported remote-write message \"io.prometheus.write.v3.Request\"",
        ),
    ];
    for (headers, reason) in cases {
        assert_rejected(
            &app,
            &before,
            headers,
            body.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            reason,
        )
        .await;
    }
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let (app, before) = seeded(&[
        "--limits.request-body-bytes",
        "100",
        "--limits.decoded-body-bytes",
        "200",
    ])
    .await;
    // Compressed body over the limit.
    let big: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    assert_rejected(
        &app,
        &before,
        &[("content-encoding", "identity")],
        big,
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than the limit of 100 bytes",
    )
    .await;
    // Small compressed body that decompresses past the decoded limit.
    let long_value = "x".repeat(500);
    let req = request(
        &[(&[("__name__", "m"), ("v", &long_value)], &[(1.0, 1)])],
        &[],
    );
    let body = snappy(&req);
    assert!(body.len() <= 100);
    assert_rejected(
        &app,
        &before,
        PROMETHEUS_HEADERS,
        body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "more than the limit of 200 bytes",
    )
    .await;
}

#[tokio::test]
async fn invalid_series_get_400_with_the_reason_and_valid_ones_are_stored() {
    let (app, before) = seeded(&[]).await;
    let cases: &[(Labels, &str, &str)] = &[
        (
            &[("__name__", "m"), ("", "x")],
            "empty label name",
            "invalid_label_name",
        ),
        (
            &[("__name__", "m"), ("a", "x"), ("a", "y")],
            "duplicate label name \"a\"",
            "duplicate_label_name",
        ),
        (
            &[("job", "x")],
            "series has no __name__ label",
            "missing_metric_name",
        ),
    ];
    for (labels, reason, label) in cases {
        assert_rejected(
            &app,
            &before,
            PROMETHEUS_HEADERS,
            snappy(&request(&[(labels, &[(1.0, 1)])], &[])),
            StatusCode::BAD_REQUEST,
            reason,
        )
        .await;
        let counted = self_metric(
            &app,
            &format!("promgate_series_rejected_total{{reason=\"{label}\"}}"),
        )
        .await;
        assert_eq!(counted, 1.0, "{label}");
    }
    // A mixed request stores the good series and still answers 400.
    let req = request(
        &[
            (&[("__name__", "good")], &[(3.0, 10)]),
            (
                &[("__name__", "m"), ("a", "x"), ("a", "y")],
                &[(1.0, 1), (2.0, 2)],
            ),
            (UP, &[(5.0, 2000)]),
        ],
        &[],
    );
    let (status, text) = write(&app, &req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        text,
        "stored 2 series, rejected 1 series (2 samples); first error: duplicate label name \"a\"\n"
    );
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(
        sample_lines(&page),
        ["good 3 10", "up{instance=\"a:9100\",job=\"node\"} 5 2000"]
    );
    assert_eq!(
        self_metric(
            &app,
            "promgate_samples_rejected_total{reason=\"duplicate_label_name\"}"
        )
        .await,
        3.0
    );
}

#[tokio::test]
async fn per_series_limits_get_400() {
    let (app, before) = seeded(&[
        "--limits.labels-per-series",
        "3",
        "--limits.label-value-length",
        "8",
        "--limits.label-name-length",
        "8",
    ])
    .await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("__name__", "m"), ("a", "1"), ("b", "2"), ("c", "3")],
            "series has 4 labels, more than the limit of 3",
        ),
        (
            &[("__name__", "m"), ("a", "123456789")],
            "value of label \"a\" has 9 bytes, more than the limit of 8",
        ),
        (
            &[("__name__", "m"), ("abcdefghi", "1")],
            "label name of 9 bytes is longer than the limit of 8",
        ),
    ];
    for (labels, reason) in cases {
        assert_rejected(
            &app,
            &before,
            PROMETHEUS_HEADERS,
            snappy(&request(&[(labels, &[(1.0, 1)])], &[])),
            StatusCode::BAD_REQUEST,
            reason,
        )
        .await;
    }
}

#[tokio::test]
async fn series_limit_rejects_new_series_and_still_updates_existing_ones() {
    let (app, _) = seeded(&["--limits.series", "1"]).await;
    let req = request(
        &[(&[("__name__", "new")], &[(1.0, 1)]), (UP, &[(2.0, 3000)])],
        &[],
    );
    let (status, text) = write(&app, &req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.contains("would exceed the limit of 1 live series"),
        "{text}"
    );
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(page, "up{instance=\"a:9100\",job=\"node\"} 2 3000\n");
    assert_eq!(
        self_metric(
            &app,
            "promgate_series_rejected_total{reason=\"series_limit\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn stale_markers_remove_series() {
    let (app, _) = seeded(&[]).await;
    let stale = f64::from_bits(promgate::model::STALE_NAN_BITS);
    let (status, _) = write(&app, &request(&[(UP, &[(stale, 2000)])], &[])).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(page, "");
    assert_eq!(
        self_metric(&app, "promgate_series_stale_removed_total").await,
        1.0
    );
    assert_eq!(self_metric(&app, "promgate_live_series").await, 0.0);
}

#[tokio::test]
async fn other_methods_and_paths_are_answered() {
    let (app, _) = app(&[]);
    assert_eq!(
        get(&app, "/api/v1/write").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(get(&app, "/nope").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "/-/healthy").await.0, StatusCode::OK);
    assert_eq!(get(&app, "/-/ready").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_request_after_a_larger_one_carries_nothing_over() {
    // The router reuses a worker thread's buffers between requests; the test
    // runtime has one thread, so every request here reuses the previous one's.
    let (app, _) = app(&[]);
    let names: Vec<String> = (0..200).map(|i| format!("series_{i}")).collect();
    let big: Vec<Vec<(&str, &str)>> = names
        .iter()
        .map(|n| vec![("__name__", n.as_str())])
        .collect();
    let big: Vec<(Labels, &[(f64, i64)])> = big.iter().map(|l| (&l[..], &[(1.0, 1)][..])).collect();
    let (status, _) = write(&app, &request(&big, &[])).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A small request with one bad series: its answer counts only its own.
    let (status, text) = post(
        &app,
        PROMETHEUS_HEADERS,
        snappy(&request(
            &[
                (&[("__name__", "m"), ("", "x")], &[(1.0, 2)]),
                (UP, &[(5.0, 2)]),
            ],
            &[],
        )),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.contains("stored 1 series, rejected 1 series"),
        "{text}"
    );
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(page.lines().count(), 201, "{page}");
    assert!(page.contains("up{instance=\"a:9100\",job=\"node\"} 5 2\n"));
}

#[tokio::test]
async fn out_of_order_samples_are_counted_as_samples() {
    let (app, _) = seeded(&[]).await;
    // Three samples, all older than the stored one at 1000: none is stored.
    let old = request(&[(UP, &[(7.0, 100), (8.0, 200), (9.0, 300)])], &[]);
    assert_eq!(write(&app, &old).await.0, StatusCode::NO_CONTENT);
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(page, "up{instance=\"a:9100\",job=\"node\"} 1 1000\n");
    assert_eq!(
        self_metric(&app, "promgate_samples_out_of_order_total").await,
        3.0
    );
}

#[tokio::test]
async fn unknown_paths_get_a_reason_and_are_counted() {
    let (app, _) = app(&[]);
    let (status, body) = get(&app, "/nope/../etc").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body.starts_with("not found: promgate serves POST /api/v1/write"),
        "{body}"
    );
    assert_eq!(
        self_metric(
            &app,
            "promgate_requests_rejected_total{reason=\"not_found\"}"
        )
        .await,
        1.0
    );
    // Every reason is on the page from the start.
    for reason in promgate::http::Error::REASONS {
        let series = format!("promgate_requests_rejected_total{{reason=\"{reason}\"}}");
        self_metric(&app, &series).await;
    }
}

fn now_ms() -> i64 {
    promgate::ingest::now_ms()
}

#[tokio::test]
async fn timestamps_outside_the_accepted_range_are_refused() {
    let (app, before) = seeded(&["--limits.future-time-window", "1m"]).await;
    let now = now_ms();
    let reason = |r: &'static str| format!("promgate_samples_rejected_total{{reason=\"{r}\"}}");
    for (t, why) in [
        (
            now + 120_000,
            "more than 60000 ms ahead of promgate's clock (--limits.future-time-window 1m)",
        ),
        (now + 100 * 365 * 86_400_000, "ahead of promgate's clock"),
        (i64::MAX, "ahead of promgate's clock"),
        (0, "sample timestamp 0 ms is not after the Unix epoch"),
        (-1, "sample timestamp -1 ms is not after the Unix epoch"),
        (i64::MIN, "not after the Unix epoch"),
    ] {
        let body = snappy(&request(&[(UP, &[(9.0, t)])], &[]));
        assert_rejected(
            &app,
            &before,
            PROMETHEUS_HEADERS,
            body,
            StatusCode::BAD_REQUEST,
            why,
        )
        .await;
    }
    assert_eq!(
        self_metric(&app, &reason("timestamp_too_far_in_future")).await,
        3.0
    );
    assert_eq!(
        self_metric(&app, &reason("timestamp_not_after_epoch")).await,
        3.0
    );
    // The edges inside: the first millisecond after the epoch, and the end
    // of the window (a second short of it, for the clock moving on).
    for t in [1, now + 59_000] {
        let (status, body) = write(&app, &request(&[(UP, &[(2.0, t)])], &[])).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{t}: {body}");
    }
    // A series with good and bad samples keeps the good ones and says so.
    let (status, body) = write(
        &app,
        &request(&[(UP, &[(3.0, now + 60_000), (4.0, now + 3_600_000)])], &[]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.starts_with("stored 1 series, rejected 0 series (1 samples)"),
        "{body}"
    );
    let (_, page) = get(&app, "/metrics").await;
    assert!(
        page.starts_with("up{instance=\"a:9100\",job=\"node\"} 3 "),
        "{page}"
    );
    // With no window, any time after the epoch is accepted.
    let (unbounded, _) = common::app(&["--limits.future-time-window", "0"]);
    let (status, _) = write(&unbounded, &request(&[(UP, &[(1.0, i64::MAX)])], &[])).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// Kind of prometheus/prometheus#14304: one sample from a bad clock must not
/// hide every correct sample after it.
#[tokio::test]
async fn a_far_future_sample_cannot_freeze_a_series() {
    let (app, _) = app(&[]);
    let now = now_ms();
    let future = request(&[(UP, &[(1.0, now + 100 * 365 * 86_400_000)])], &[]);
    assert_eq!(write(&app, &future).await.0, StatusCode::BAD_REQUEST);
    for i in 0..3 {
        let ok = request(
            &[(UP, &[(2.0 + f64::from(i), now + i64::from(i) * 1000)])],
            &[],
        );
        assert_eq!(write(&app, &ok).await.0, StatusCode::NO_CONTENT);
    }
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(
        page,
        format!("up{{instance=\"a:9100\",job=\"node\"}} 4 {}\n", now + 2000)
    );
}

#[tokio::test]
async fn labels_starting_with_two_underscores_are_refused() {
    let (app, before) = seeded(&[]).await;
    for name in [
        "__tmp_shard",
        "__address__",
        "__meta_kubernetes_pod_name",
        "__",
        "___x",
    ] {
        let labels = [("__name__", "shard_load"), (name, "1")];
        let body = snappy(&request(&[(&labels, &[(1.0, 5)])], &[]));
        let why = format!("label name {name:?} is reserved");
        assert_rejected(
            &app,
            &before,
            PROMETHEUS_HEADERS,
            body,
            StatusCode::BAD_REQUEST,
            &why,
        )
        .await;
    }
    assert_eq!(
        self_metric(
            &app,
            "promgate_series_rejected_total{reason=\"reserved_label_name\"}"
        )
        .await,
        5.0
    );
    // A metric name is a label value: "__" at its start is no label name.
    let odd = [("__name__", "__odd__")];
    assert_eq!(
        write(&app, &request(&[(&odd, &[(1.0, 5)])], &[])).await.0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_label_that_is_not_utf8_rejects_only_its_series() {
    use promgate::proto::lenient::{Label, MetricMetadata, Sample, TimeSeries, WriteRequest};
    let (app, _) = app(&[]);
    let series = |value: &[u8], v: f64| TimeSeries {
        labels: vec![
            Label {
                name: b"__name__".to_vec(),
                value: b"temp".to_vec(),
            },
            Label {
                name: b"room".to_vec(),
                value: value.to_vec(),
            },
        ],
        samples: vec![Sample {
            value: v,
            timestamp: 5,
        }],
        ..Default::default()
    };
    let req = WriteRequest {
        timeseries: vec![
            series(b"kitchen", 1.0),
            series(b"bad\xff", 2.0),
            series(b"hall", 3.0),
        ],
        metadata: vec![MetricMetadata {
            r#type: 2,
            metric_family_name: b"temp".to_vec(),
            help: b"not \xc3 UTF-8".to_vec(),
            unit: Vec::new(),
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let (status, text) = post(&app, PROMETHEUS_HEADERS, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        text,
        "stored 2 series, rejected 1 series (1 samples) and 1 metadata entry; first error: a label of a series is not valid UTF-8\n"
    );
    let (_, page) = get(&app, "/metrics").await;
    // The metadata was refused too: no HELP or TYPE.
    assert_eq!(
        sample_lines(&page),
        ["temp{room=\"hall\"} 3 5", "temp{room=\"kitchen\"} 1 5"]
    );
    assert!(!page.contains('#'), "{page}");
    assert_eq!(
        self_metric(
            &app,
            "promgate_series_rejected_total{reason=\"invalid_utf8\"}"
        )
        .await,
        2.0
    );
}

#[tokio::test]
async fn help_text_is_bounded() {
    let (app, before) = seeded(&["--limits.help-length", "100"]).await;
    let long = "h".repeat(101);
    for (help, unit) in [(long.as_str(), ""), ("short", long.as_str())] {
        let req = promgate::proto::WriteRequest {
            metadata: vec![promgate::proto::MetricMetadata {
                r#type: MetricType::Gauge as i32,
                metric_family_name: "up".into(),
                help: help.into(),
                unit: unit.into(),
            }],
            ..Default::default()
        };
        let why = "of family \"up\" has 101 bytes, more than the limit of 100";
        assert_rejected(
            &app,
            &before,
            PROMETHEUS_HEADERS,
            snappy(&req),
            StatusCode::BAD_REQUEST,
            why,
        )
        .await;
    }
    assert_eq!(
        self_metric(
            &app,
            "promgate_series_rejected_total{reason=\"metadata_too_long\"}"
        )
        .await,
        2.0
    );
    let ok = request(&[], &[("up", MetricType::Gauge, &"h".repeat(100))]);
    assert_eq!(write(&app, &ok).await.0, StatusCode::NO_CONTENT);
}

/// A write slot (like vmagent's -maxConcurrentInserts) is taken once the
/// body has arrived: a write whose body is still coming holds none, so with
/// one slot another write is served at once, and the slow one after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_still_arriving_holds_no_write_slot() {
    use axum::body::Body;
    use tower::ServiceExt;
    let (app, _) = app(&[
        "--limits.concurrent-writes",
        "1",
        "--limits.write-queue-duration",
        "200ms",
    ]);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    let slow = axum::http::Request::post("/api/v1/write")
        .header("content-encoding", "identity")
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .unwrap();
    let held = tokio::spawn(app.clone().oneshot(slow));
    let first = request(&[(UP, &[(1.0, 5)])], &[]).encode_to_vec();
    tx.send(Ok(first.into())).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (status, body) = write(&app, &request(&[(UP, &[(2.0, 6)])], &[])).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        self_metric(
            &app,
            "promgate_requests_rejected_total{reason=\"too_many_writes\"}"
        )
        .await,
        0.0
    );
    // The slow body ends and is applied: its older sample changes nothing.
    drop(tx);
    assert_eq!(
        held.await.unwrap().unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        self_metric(&app, "promgate_samples_out_of_order_total").await,
        1.0
    );
}

/// What the README lists as accepted and counted nowhere: a series' older
/// samples within one request (only its newest is kept, none is out of
/// order), a 1.0 series with no samples (nothing stored), and metadata of
/// a type the protocol does not define (its HELP kept, no TYPE line).
#[tokio::test]
async fn what_is_accepted_without_a_count() {
    let (app, _) = seeded(&[]).await;
    let mut req = request(
        &[
            (UP, &[(5.0, 2000), (1.0, 1500)]),
            (&[("__name__", "quiet")], &[]),
        ],
        &[(
            "up",
            promgate::proto::metric_metadata::MetricType::Gauge,
            "Is it up.",
        )],
    );
    req.metadata[0].r#type = 99;
    let (status, text) = write(&app, &req).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(
        page,
        "# HELP up Is it up.\nup{instance=\"a:9100\",job=\"node\"} 5 2000\n"
    );
    assert_eq!(
        self_metric(&app, "promgate_samples_out_of_order_total").await,
        0.0
    );
    assert_eq!(
        self_metric(&app, "promgate_series_created_total").await,
        1.0
    );
    // No rejection of any reason.
    let (_, own) = get(&app, "/-/metrics").await;
    let rejected: Vec<f64> = own
        .lines()
        .filter(|l| l.starts_with("promgate_series_rejected_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        !rejected.is_empty() && rejected.iter().all(|&n| n == 0.0),
        "{own}"
    );
}
