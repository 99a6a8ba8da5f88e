//! Remote-Write 2.0 at the router level: one test per rule of the
//! specification (2.0-rc.4) that binds a receiver, named after the rule,
//! and the hostile inputs a 2.0 decoder must survive.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::v2::{Builder, V2, send, write2};
use common::*;
use http_body_util::BodyExt;
use promgate::proto::v2::{self, Exemplar, Histogram, Metadata, TimeSeries};
use prost::Message;
use tower::ServiceExt;

fn now() -> i64 {
    promgate::ingest::now_ms()
}

use v2::metadata::MetricType as T;

#[tokio::test]
async fn receivers_must_support_io_prometheus_write_v2_request() {
    let (app, _) = app(&[]);
    let t = now();
    let req = Builder::new()
        .series(
            &[("__name__", "up"), ("instance", "a:9100"), ("job", "node")],
            &[(0.0, t - 1000), (1.0, t)],
            Some((T::Gauge, "Target is up.")),
        )
        .build();
    let a = write2(&app, &req).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::NO_CONTENT, ""));
    assert_eq!(a.written, Some((2, 0, 0)));
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(
        page,
        format!(
            "# HELP up Target is up.\n# TYPE up gauge\nup{{instance=\"a:9100\",job=\"node\"}} 1 {t}\n"
        )
    );
}

#[tokio::test]
async fn content_type_parameters_in_any_order_and_spacing() {
    let (app, _) = app(&[]);
    let req = Builder::new()
        .series(&[("__name__", "m")], &[(1.0, now())], None)
        .build();
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    for ct in [
        "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        "application/x-protobuf; proto=io.prometheus.write.v2.Request",
        "Application/X-Protobuf; charset=utf-8 ; proto=\"io.prometheus.write.v2.Request\"",
    ] {
        let a = send(&app, ct, "snappy", body.clone()).await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{ct}: {}", a.body);
        assert_eq!(a.written, Some((1, 0, 0)), "{ct}");
    }
    // `proto` given twice, alike or not, leaves the message unsaid: 415,
    // as Go's media-type parser (Prometheus' receiver) refuses it.
    for ct in [
        "application/x-protobuf;proto=prometheus.WriteRequest;proto=io.prometheus.write.v2.Request",
        "application/x-protobuf;proto=io.prometheus.write.v2.Request;proto=io.prometheus.write.v2.Request",
    ] {
        let a = send(&app, ct, "snappy", body.clone()).await;
        assert_eq!(
            a.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{ct}: {}",
            a.body
        );
        assert!(a.body.contains("proto given twice"), "{}", a.body);
    }
}

#[tokio::test]
async fn written_headers_come_with_every_answer_including_errors() {
    let (app, _) = app(&[]);
    let body = snap::raw::Encoder::new()
        .compress_vec(
            &Builder::new()
                .series(&[("__name__", "m")], &[(1.0, now())], None)
                .build()
                .encode_to_vec(),
        )
        .unwrap();
    // Unsupported encoding: 415, nothing written, and still the headers.
    let a = send(&app, V2, "br", body.clone()).await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", a.body);
    assert_eq!(a.written, Some((0, 0, 0)));
    // Garbage: 400 and the headers.
    let a = send(&app, V2, "snappy", b"not snappy".to_vec()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.written, Some((0, 0, 0)));
    // A 1.0 request gets none (1.0 receivers never sent them).
    let a = send(&app, "application/x-protobuf", "snappy", b"".to_vec()).await;
    assert_eq!(a.written, None, "{}", a.body);
    // The wrong method: 405, and the headers for a 2.0 request only.
    for (method, ct, headers) in [
        ("PUT", V2, true),
        ("GET", V2, true),
        ("DELETE", V2, true),
        ("PUT", "application/x-protobuf", false),
    ] {
        let req = Request::builder()
            .method(method)
            .uri("/api/v1/write")
            .header("content-type", ct)
            .body(Body::from(body.clone()))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        let written = ["samples", "histograms", "exemplars"].map(|what| {
            resp.headers()
                .get(format!("x-prometheus-remote-write-{what}-written"))
                .map(|v| v.to_str().unwrap().to_string())
        });
        let want = headers.then(|| "0".to_string());
        assert_eq!(written, [want.clone(), want.clone(), want], "{method} {ct}");
    }
}

#[tokio::test]
async fn unsupported_content_types_get_415() {
    let (app, _) = app(&[]);
    for ct in [
        "application/json",
        "application/x-protobuf;proto=io.prometheus.write.v3.Request",
    ] {
        let a = send(&app, ct, "snappy", Vec::new()).await;
        assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}");
        assert_eq!(a.body.lines().count(), 1);
    }
}

#[tokio::test]
async fn no_2xx_when_anything_was_not_written_and_the_body_gives_counts() {
    let (app, _) = app(&[]);
    let t = now();
    let req = Builder::new()
        .series(&[("__name__", "good")], &[(1.0, t), (2.0, t + 1)], None)
        .series(&[("__name__", "m"), ("", "x")], &[(1.0, t)], None)
        .series(&[("job", "no_name")], &[(1.0, t)], None)
        .build();
    let a = write2(&app, &req).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.written, Some((2, 0, 0)));
    assert_eq!(
        a.body,
        "stored 1 series, rejected 2 series (2 samples); first error: empty label name\n"
    );
}

#[tokio::test]
async fn symbols_must_start_with_the_empty_string() {
    let (app, _) = app(&[]);
    let mut req = Builder::new()
        .series(&[("__name__", "m")], &[(1.0, now())], None)
        .build();
    req.symbols[0] = "x".into();
    let a = write2(&app, &req).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.written, Some((0, 0, 0)));
    assert_eq!(
        a.body,
        "invalid remote-write 2.0 request: symbols[0] must be the empty string\n"
    );
    assert_eq!(get(&app, "/metrics").await.1, "");
}

#[tokio::test]
async fn references_must_point_into_the_symbols_table() {
    let (app, _) = app(&[]);
    let t = now();
    let sample = vec![v2::Sample {
        value: 1.0,
        timestamp: t,
        start_timestamp: 0,
    }];
    let b = Builder::new().series(&[("__name__", "kept")], &[(1.0, t)], None);
    let n = b.symbols.len() as u32;
    let req = b
        // A label reference past the end.
        .raw(TimeSeries {
            labels_refs: vec![1, n + 5],
            samples: sample.clone(),
            ..Default::default()
        })
        // An odd labels_refs.
        .raw(TimeSeries {
            labels_refs: vec![1, 2, 1],
            samples: sample.clone(),
            ..Default::default()
        })
        // Help and exemplar references past the end.
        .raw(TimeSeries {
            labels_refs: vec![1, 2],
            samples: sample.clone(),
            metadata: Some(Metadata {
                r#type: T::Gauge as i32,
                help_ref: 1_000_000,
                unit_ref: 0,
            }),
            ..Default::default()
        })
        .raw(TimeSeries {
            labels_refs: vec![1, 2],
            samples: sample,
            exemplars: vec![Exemplar {
                labels_refs: vec![u32::MAX, 0],
                value: 1.0,
                timestamp: t,
            }],
            ..Default::default()
        })
        .build();
    let a = write2(&app, &req).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.written, Some((1, 0, 0)));
    assert!(
        a.body.starts_with(
            "stored 1 series, rejected 4 series (4 samples); first error: symbol reference"
        ),
        "{}",
        a.body
    );
    assert_eq!(
        self_metric(
            &app,
            "promgate_series_rejected_total{reason=\"invalid_symbol_reference\"}"
        )
        .await,
        4.0
    );
}

#[tokio::test]
async fn a_series_must_carry_samples_or_histograms() {
    let (app, _) = app(&[]);
    let mut b = Builder::new();
    let labels_refs = b.refs(&[("__name__", "empty")]);
    let req = b
        .raw(TimeSeries {
            labels_refs,
            ..Default::default()
        })
        .build();
    let a = write2(&app, &req).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body
            .ends_with("a series has neither samples nor histograms\n"),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn native_histograms_are_written_beside_the_float_samples_of_the_request() {
    let (app, _) = app(&[]);
    let t = now();
    let mut b = Builder::new().series(&[("__name__", "floats")], &[(3.0, t)], None);
    let labels_refs = b.refs(&[("__name__", "latency_seconds")]);
    // Schema 0: bucket 1 is (1, 2], bucket 2 is (2, 4].
    let histogram = |count: u64, sum: f64, at: i64| Histogram {
        count: Some(v2::histogram::Count::CountInt(count)),
        sum,
        schema: 0,
        positive_spans: vec![v2::BucketSpan {
            offset: 1,
            length: 2,
        }],
        positive_deltas: vec![1, i64::try_from(count).unwrap() - 2],
        timestamp: at,
        ..Default::default()
    };
    let req = b
        .raw(TimeSeries {
            labels_refs,
            // Two in one series: both written, the later one shown.
            histograms: vec![histogram(3, 7.5, t), histogram(2, 1.5, t - 1000)],
            ..Default::default()
        })
        .build();
    let a = write2(&app, &req).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(a.written, Some((1, 2, 0)));
    assert_eq!(
        get(&app, "/metrics").await.1,
        format!(
            "floats 3 {t}\n\
             # TYPE latency_seconds histogram\n\
             latency_seconds_bucket{{le=\"0\"}} 0 {t}\n\
             latency_seconds_bucket{{le=\"1\"}} 0 {t}\n\
             latency_seconds_bucket{{le=\"2\"}} 1 {t}\n\
             latency_seconds_bucket{{le=\"4\"}} 3 {t}\n\
             latency_seconds_bucket{{le=\"+Inf\"}} 3 {t}\n\
             latency_seconds_count 3 {t}\n\
             latency_seconds_sum 7.5 {t}\n"
        )
    );
}

#[tokio::test]
async fn an_invalid_native_histogram_is_refused_with_its_reason_and_the_rest_stored() {
    let (app, _) = app(&[]);
    let t = now();
    let mut b = Builder::new().series(&[("__name__", "floats")], &[(3.0, t)], None);
    let labels_refs = b.refs(&[("__name__", "latency_seconds")]);
    let req = b
        .raw(TimeSeries {
            labels_refs,
            histograms: vec![Histogram {
                count: Some(v2::histogram::Count::CountInt(3)),
                sum: 1.5,
                schema: 3,
                // A span of two buckets, one bucket sent.
                positive_spans: vec![v2::BucketSpan {
                    offset: 0,
                    length: 2,
                }],
                positive_deltas: vec![3],
                timestamp: t,
                ..Default::default()
            }],
            ..Default::default()
        })
        .build();
    let a = write2(&app, &req).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.written, Some((1, 0, 0)));
    assert!(a.body.contains("native histogram refused: "), "{}", a.body);
    assert_eq!(get(&app, "/metrics").await.1, format!("floats 3 {t}\n"));
    let (_, metrics) = get(&app, "/-/metrics").await;
    assert!(
        metrics.contains("promgate_series_rejected_total{reason=\"invalid_native_histogram\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn metadata_with_each_series_feeds_help_and_type() {
    let (app, _) = app(&[]);
    let t = now();
    let h = Some((T::Histogram, "Request latency."));
    let req = Builder::new()
        .series(&[("__name__", "lat_bucket"), ("le", "0.5")], &[(1.0, t)], h)
        .series(
            &[("__name__", "lat_bucket"), ("le", "+Inf")],
            &[(2.0, t)],
            h,
        )
        .series(&[("__name__", "lat_count")], &[(2.0, t)], h)
        .series(&[("__name__", "lat_sum")], &[(0.7, t)], h)
        .series(
            &[("__name__", "jobs_total")],
            &[(7.0, t)],
            Some((T::Counter, "Jobs.")),
        )
        .build();
    let a = write2(&app, &req).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    let (_, page) = get(&app, "/metrics").await;
    assert!(
        page.starts_with("# HELP jobs_total Jobs.\n# TYPE jobs_total counter\n"),
        "{page}"
    );
    assert!(
        page.contains("# HELP lat Request latency.\n# TYPE lat histogram\n"),
        "{page}"
    );
    assert_parses(&page);
}

/// A family's metadata changes within one request (A, then B, then A
/// again: a sender that batched the family across a change and back): the
/// last series' metadata wins, as 1.0's metadata entries, applied in order,
/// do. Each series also carries its own metadata on every page.
#[tokio::test]
async fn the_last_metadata_of_a_family_in_a_request_wins() {
    let (app, _) = app(&[]);
    let t = now();
    let a = Some((T::Gauge, "Help A."));
    let b = Some((T::Counter, "Help B."));
    let req = Builder::new()
        .series(&[("__name__", "flip"), ("i", "1")], &[(1.0, t)], a)
        .series(&[("__name__", "flip"), ("i", "2")], &[(2.0, t)], b)
        .series(&[("__name__", "flip"), ("i", "3")], &[(3.0, t)], a)
        .build();
    let answer = write2(&app, &req).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    let (_, page) = get(&app, "/metrics").await;
    assert!(
        page.starts_with("# HELP flip Help A.\n# TYPE flip gauge\n"),
        "{page}"
    );
    // And the other way round in a second request: B, A, B ends on B.
    let req = Builder::new()
        .series(&[("__name__", "flip"), ("i", "1")], &[(1.0, t + 1)], b)
        .series(&[("__name__", "flip"), ("i", "2")], &[(2.0, t + 1)], a)
        .series(&[("__name__", "flip"), ("i", "3")], &[(3.0, t + 1)], b)
        .build();
    let answer = write2(&app, &req).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    let (_, page) = get(&app, "/metrics").await;
    assert!(
        page.starts_with("# HELP flip Help B.\n# TYPE flip counter\n"),
        "{page}"
    );
}
#[tokio::test]
async fn exemplars_are_counted_as_written_with_their_series() {
    let (app, _) = app(&[]);
    let t = now();
    let mut b = Builder::new();
    let labels_refs = b.refs(&[("__name__", "req_total")]);
    let trace = b.refs(&[("trace_id", "abc123")]);
    let req = b
        .raw(TimeSeries {
            labels_refs,
            samples: vec![v2::Sample {
                value: 5.0,
                timestamp: t,
                start_timestamp: t - 60_000,
            }],
            exemplars: vec![
                Exemplar {
                    labels_refs: trace,
                    value: 0.3,
                    timestamp: t,
                },
                Exemplar {
                    labels_refs: vec![],
                    value: 0.1,
                    timestamp: t,
                },
            ],
            // rc.3's created timestamp, read past.
            created_timestamp: t - 60_000,
            ..Default::default()
        })
        .build();
    let a = write2(&app, &req).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(a.written, Some((1, 0, 2)));
}

#[tokio::test]
async fn stale_markers_and_special_values_are_taken() {
    let (app, _) = app(&[]);
    let t = now();
    let req = Builder::new()
        .series(&[("__name__", "a")], &[(f64::NAN, t)], None)
        .series(&[("__name__", "b")], &[(f64::INFINITY, t)], None)
        .series(&[("__name__", "c")], &[(f64::NEG_INFINITY, t)], None)
        .build();
    assert_eq!(write2(&app, &req).await.status, StatusCode::NO_CONTENT);
    let stale = f64::from_bits(promgate::model::STALE_NAN_BITS);
    let req = Builder::new()
        .series(&[("__name__", "a")], &[(stale, t + 1)], None)
        .build();
    let a = write2(&app, &req).await;
    assert_eq!(
        (a.status, a.written),
        (StatusCode::NO_CONTENT, Some((1, 0, 0)))
    );
    assert_eq!(
        sample_lines(&get(&app, "/metrics").await.1),
        [format!("b +Inf {t}"), format!("c -Inf {t}")]
    );
}

#[tokio::test]
async fn victoriametrics_handshake_is_answered_as_victoriametrics_does() {
    let (app, _) = app(&[]);
    for method in ["GET", "POST"] {
        let resp = app
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri("/api/v1/write?get_vm_proto_version=1")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{method}");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"1", "{method}");
    }
    // Without it, GET is the wrong method.
    assert_eq!(
        get(&app, "/api/v1/write").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn hostile_requests_get_a_4xx_and_the_headers_never_a_panic() {
    let (app, _) = app(&[]);
    // A huge symbols table in a tiny body: zstd of a million empty strings.
    let mut table = Vec::new();
    for _ in 0..1_000_000 {
        table.extend_from_slice(&[0x22, 0x00]);
    }
    let mut zstd_body = Vec::new();
    zstd::stream::copy_encode(&table[..], &mut zstd_body, 3).unwrap();
    assert!(zstd_body.len() < 1000);
    let a = send(&app, V2, "zstd", zstd_body).await;
    // A request with no series is valid (spec 2.0): 204, nothing written.
    // The table costs four bytes an entry, at most twice the decoded body,
    // which --limits.decoded-body-bytes bounds (see the next test).
    assert_eq!(
        (a.status, a.written, a.body.as_str()),
        (StatusCode::NO_CONTENT, Some((0, 0, 0)), "")
    );
    // Truncated, bit-flipped and random bodies.
    let t = now();
    let good = Builder::new()
        .series(
            &[("__name__", "m"), ("a", "b")],
            &[(1.0, t)],
            Some((T::Gauge, "h")),
        )
        .build()
        .encode_to_vec();
    for cut in 0..good.len() {
        let mut bytes = good[..cut].to_vec();
        if let Some(b) = bytes.last_mut() {
            *b ^= 0x5a;
        }
        let body = snap::raw::Encoder::new().compress_vec(&bytes).unwrap();
        let a = send(&app, V2, "snappy", body).await;
        assert!(a.written.is_some());
        assert!(
            a.status == StatusCode::NO_CONTENT || a.status == StatusCode::BAD_REQUEST,
            "{cut}: {} {}",
            a.status,
            a.body
        );
        assert_eq!(
            a.body.lines().count().min(1),
            usize::from(a.status != StatusCode::NO_CONTENT)
        );
    }
}

/// A huge symbols table in a tiny body is bounded by the decoded-size
/// limit, as any body is (spec 2.0 sets no bound on the table; a request
/// with no series is valid): under the limit it is read (204, nothing
/// written), past it refused before it is inflated (413).
#[tokio::test]
async fn a_symbols_table_is_bounded_by_the_decoded_body_limit() {
    // A million empty strings: 2 000 000 bytes decoded.
    let table = [0x22, 0x00].repeat(1_000_000);
    let mut body = Vec::new();
    zstd::stream::copy_encode(&table[..], &mut body, 3).unwrap();
    let snappy_body = snap::raw::Encoder::new().compress_vec(&table).unwrap();
    for (limit, status) in [
        ("2000000", StatusCode::NO_CONTENT),
        ("1999999", StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let (app, _) = app(&["--limits.decoded-body-bytes", limit]);
        for (encoding, body) in [("zstd", &body), ("snappy", &snappy_body)] {
            let a = send(&app, V2, encoding, body.clone()).await;
            assert_eq!(
                (a.status, a.written),
                (status, Some((0, 0, 0))),
                "{limit} {encoding}: {}",
                a.body
            );
        }
        let decoded = self_metric(&app, "promgate_decoded_bytes_total").await;
        let expected = if status == StatusCode::NO_CONTENT {
            4_000_000.0
        } else {
            0.0
        };
        assert!(decoded <= expected, "{limit}: {decoded}");
        assert_eq!(get(&app, "/metrics").await.1, "");
    }
}

/// 2.0 reserves 1.0's field numbers, so a body sent under the other
/// message's type decodes to nothing: that must not be a silent 204.
#[tokio::test]
async fn a_body_of_the_other_version_is_refused_with_415_not_dropped() {
    let (app, _) = app(&[]);
    let t = now();
    let v1 = snappy(&request(&[(&[("__name__", "up")], &[(1.0, t)])], &[]));
    let a = send(&app, V2, "snappy", v1).await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", a.body);
    assert!(
        a.body
            .contains("carries the fields of prometheus.WriteRequest"),
        "{}",
        a.body
    );
    assert_eq!(a.written, Some((0, 0, 0)));
    let v2 = snap::raw::Encoder::new()
        .compress_vec(
            &Builder::new()
                .series(&[("__name__", "up")], &[(1.0, t)], None)
                .build()
                .encode_to_vec(),
        )
        .unwrap();
    let a = send(&app, "application/x-protobuf", "snappy", v2).await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", a.body);
    assert!(
        a.body.contains("proto=io.prometheus.write.v2.Request"),
        "{}",
        a.body
    );
    assert_eq!(
        self_metric(
            &app,
            "promgate_requests_rejected_total{reason=\"schema_mismatch\"}"
        )
        .await,
        2.0
    );
    assert_eq!(get(&app, "/metrics").await.1, "");
    // An empty body of either is still a 204.
    for ct in [V2, "application/x-protobuf"] {
        let a = send(&app, ct, "identity", Vec::new()).await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{ct}");
    }
}

#[tokio::test]
async fn a_refused_help_text_is_not_a_refused_series() {
    let (app, _) = app(&["--limits.help-length", "3"]);
    let req = Builder::new()
        .series(
            &[("__name__", "foo_total")],
            &[(42.0, now())],
            Some((T::Counter, "help text")),
        )
        .build();
    let a = write2(&app, &req).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.written, Some((1, 0, 0)));
    assert!(
        a.body.starts_with("stored 1 series, rejected 0 series (0 samples) and 1 metadata entry; first error: HELP of family \"foo_total\" has 9 bytes"),
        "{}",
        a.body
    );
}

/// Spec 2.0, `io.prometheus.write.v2.Request` ("Timeseries messages can
/// either specify samples or histograms, but not both"): promgate does not
/// refuse the series for carrying both: its samples and its histograms are
/// written and counted (204), and the series shows the later of the two.
#[tokio::test]
async fn a_series_with_both_samples_and_histograms_shows_the_later_and_writes_both() {
    let t = now();
    let histogram = |at| Histogram {
        count: Some(v2::histogram::Count::CountInt(1)),
        sum: 0.5,
        positive_spans: vec![v2::BucketSpan {
            offset: 0,
            length: 1,
        }],
        positive_deltas: vec![1],
        timestamp: at,
        ..Default::default()
    };
    for (float_at, histogram_at, shown) in [
        (t, t - 1000, format!("both 2 {t}\n")),
        (t - 1000, t, format!("both_count 1 {t}\n")),
        // A tie goes to the histogram, sent after the samples.
        (t, t, format!("both_count 1 {t}\n")),
    ] {
        let (app, _) = app(&[]);
        let mut b = Builder::new();
        let labels_refs = b.refs(&[("__name__", "both")]);
        let req = b
            .raw(TimeSeries {
                labels_refs,
                samples: vec![common::v2::sample(2.0, float_at)],
                histograms: vec![histogram(histogram_at)],
                ..Default::default()
            })
            .build();
        let a = write2(&app, &req).await;
        assert_eq!(
            (a.status, a.written),
            (StatusCode::NO_CONTENT, Some((1, 1, 0)))
        );
        let page = get(&app, "/metrics").await.1;
        assert!(page.contains(&shown), "{shown:?} in\n{page}");
    }
}

/// Spec 2.0, `TimeSeries.labels_refs` ("the underlying labels should be
/// sorted lexicographically"; label names MUST be unique): unsorted labels
/// are taken, the series being its label set whatever the order; a name
/// twice refuses the series (`duplicate_label_name`).
#[tokio::test]
async fn labels_may_come_unsorted_but_not_repeated() {
    let (app, _) = app(&[]);
    let t = now();
    let req = Builder::new()
        .series(
            &[("job", "a"), ("__name__", "m"), ("env", "p")],
            &[(1.0, t)],
            None,
        )
        .series(
            &[("__name__", "m"), ("env", "p"), ("job", "a")],
            &[(2.0, t + 1)],
            None,
        )
        .series(
            &[("__name__", "m"), ("a", "1"), ("a", "2")],
            &[(3.0, t)],
            None,
        )
        .build();
    let a = write2(&app, &req).await;
    assert_eq!(
        (a.status, a.written),
        (StatusCode::BAD_REQUEST, Some((2, 0, 0)))
    );
    assert!(
        a.body
            .ends_with("first error: duplicate label name \"a\"\n"),
        "{}",
        a.body
    );
    assert_eq!(
        get(&app, "/metrics").await.1,
        format!("m{{env=\"p\",job=\"a\"}} 2 {}\n", t + 1)
    );
    assert_eq!(
        self_metric(
            &app,
            "promgate_series_rejected_total{reason=\"duplicate_label_name\"}"
        )
        .await,
        1.0
    );
}

/// Spec 2.0, "Backward and Forward Compatibility" (a 2.x receiver must
/// read any 2.x sender): fields this schema does not know, in `Request`,
/// `TimeSeries`, `Sample`, `Exemplar` and `Metadata`, of every wire type,
/// are skipped and the rest of the message lands.
#[tokio::test]
async fn unknown_fields_are_skipped() {
    use prost::encoding::{bytes, fixed32, fixed64, uint64};
    let (app, _) = app(&[]);
    let t = now();
    // Appends one unknown field of each wire type.
    let unknown = |buf: &mut Vec<u8>| {
        uint64::encode(90, &7, buf);
        fixed64::encode(91, &7, buf);
        bytes::encode(92, &b"future".to_vec(), buf);
        fixed32::encode(93, &7, buf);
    };
    let mut b = Builder::new();
    let labels_refs = b.refs(&[("__name__", "m"), ("a", "b")]);
    let help_ref = b.sym("Help.");
    let trace = b.refs(&[("trace_id", "t1")]);
    let mut sample = common::v2::sample(4.0, t).encode_to_vec();
    unknown(&mut sample);
    let mut exemplar = Exemplar {
        labels_refs: trace,
        value: 1.0,
        timestamp: t,
    }
    .encode_to_vec();
    unknown(&mut exemplar);
    let mut metadata = Metadata {
        r#type: T::Gauge as i32,
        help_ref,
        unit_ref: 0,
    }
    .encode_to_vec();
    unknown(&mut metadata);
    let mut series = TimeSeries {
        labels_refs,
        ..Default::default()
    }
    .encode_to_vec();
    unknown(&mut series);
    bytes::encode(2, &sample, &mut series);
    bytes::encode(4, &exemplar, &mut series);
    bytes::encode(5, &metadata, &mut series);
    let mut req = Vec::new();
    unknown(&mut req);
    for s in &b.symbols {
        prost::encoding::string::encode(4, s, &mut req);
    }
    bytes::encode(5, &series, &mut req);
    unknown(&mut req);

    let body = snap::raw::Encoder::new().compress_vec(&req).unwrap();
    let a = send(&app, V2, "snappy", body).await;
    assert_eq!(
        (a.status, a.written),
        (StatusCode::NO_CONTENT, Some((1, 0, 1))),
        "{}",
        a.body
    );
    assert_eq!(
        get(&app, "/metrics").await.1,
        format!("# HELP m Help.\n# TYPE m gauge\nm{{a=\"b\"}} 4 {t}\n")
    );
}

/// Spec 2.0, `Sample.start_timestamp` (and rc.3's
/// `TimeSeries.created_timestamp`): "zero value means value not set", so a
/// start timestamp of 0 is no start timestamp, and neither is refused as a
/// sample timestamp of 0 would be.
#[tokio::test]
async fn a_start_timestamp_of_0_means_unset() {
    let (app, _) = app(&[]);
    let t = now();
    let mut b = Builder::new();
    let unset = b.refs(&[("__name__", "unset")]);
    let set = b.refs(&[("__name__", "set")]);
    let req = b
        .raw(TimeSeries {
            labels_refs: unset,
            samples: vec![common::v2::sample(1.0, t)],
            created_timestamp: 0,
            ..Default::default()
        })
        .raw(TimeSeries {
            labels_refs: set,
            samples: vec![v2::Sample {
                value: 2.0,
                timestamp: t,
                start_timestamp: t - 60_000,
            }],
            ..Default::default()
        })
        .build();
    let a = write2(&app, &req).await;
    assert_eq!(
        (a.status, a.written),
        (StatusCode::NO_CONTENT, Some((2, 0, 0))),
        "{}",
        a.body
    );
    assert_eq!(
        sample_lines(&get(&app, "/metrics").await.1),
        [format!("set 2 {t}"), format!("unset 1 {t}")]
    );
}

/// The exemplar the store keeps for the series with canonical key `key`:
/// (label text, value, timestamp).
fn stored_exemplar(
    state: &promgate::http::AppState,
    key: &str,
) -> Option<(String, f64, Option<i64>)> {
    let mut found = None;
    for m in state.store.metrics() {
        let mut parts = m.parts();
        while parts.visit_next(|r| {
            if r.key == key.as_bytes() {
                found = r
                    .exemplar
                    .map(|e| (e.labels.to_string(), e.value, e.timestamp_ms));
            }
        }) {}
    }
    found
}

/// Spec 2.0, `Exemplar.timestamp` (an exemplar MUST have one): promgate
/// does as Prometheus' receiver does (`Exemplar.ToExemplar` reads 0 as "no
/// timestamp" and appends it): an exemplar stamped 0 is accepted, counted
/// as written, and kept without a timestamp (README "Protocols").
#[tokio::test]
async fn an_exemplar_without_a_timestamp_is_written_as_prometheus_does() {
    let (app, state) = app(&[]);
    let t = now();
    let mut b = Builder::new();
    let labels_refs = b.refs(&[("__name__", "m")]);
    let exemplar = b.exemplar(&[("trace_id", "t1")], 1.0, 0);
    let req = b
        .raw(TimeSeries {
            labels_refs,
            samples: vec![common::v2::sample(1.0, t)],
            exemplars: vec![exemplar],
            ..Default::default()
        })
        .build();
    let a = write2(&app, &req).await;
    assert_eq!(
        (a.status, a.written),
        (StatusCode::NO_CONTENT, Some((1, 0, 1))),
        "{}",
        a.body
    );
    assert_eq!(
        stored_exemplar(&state, "m"),
        Some((r#"trace_id="t1""#.to_string(), 1.0, None))
    );
}

/// OpenMetrics 1.0, "Exemplars": an exemplar's label names and values
/// MUST NOT exceed 128 UTF-8 characters. One over is refused as
/// Prometheus' receiver refuses it (`ErrExemplarLabelLength`, logged, the
/// request still `2xx`): its series and samples are written, it is not,
/// and `-Exemplars-Written` counts only the one kept; the refusal is
/// counted by reason.
#[tokio::test]
async fn an_exemplar_over_128_characters_is_not_written_and_its_series_is() {
    let (app, state) = app(&[]);
    let t = now();
    let mut b = Builder::new();
    let labels_refs = b.refs(&[("__name__", "m")]);
    let long = "é".repeat(120);
    let fits = b.exemplar(&[("trace_id", long.as_str())], 1.0, t);
    let too_long = b.exemplar(&[("trace_id", format!("{long}x").as_str())], 2.0, t);
    let req = b
        .raw(TimeSeries {
            labels_refs,
            samples: vec![common::v2::sample(1.0, t)],
            exemplars: vec![fits, too_long],
            ..Default::default()
        })
        .build();
    let a = write2(&app, &req).await;
    assert_eq!(
        (a.status, a.written),
        (StatusCode::NO_CONTENT, Some((1, 0, 1))),
        "{}",
        a.body
    );
    assert_eq!(
        stored_exemplar(&state, "m"),
        Some((format!(r#"trace_id="{long}""#), 1.0, Some(t)))
    );
    let page = get(&app, "/-/metrics").await.1;
    for line in [
        "promgate_exemplars_received_total 1\n",
        "promgate_exemplars_rejected_total{reason=\"exemplar_labels_too_long\"} 1\n",
        "promgate_exemplars_rejected_total{reason=\"invalid_exemplar_labels\"} 0\n",
    ] {
        assert!(page.contains(line), "{line} in {page}");
    }
}

/// The one published Remote-Write 2.0 client, `promwrite` 0.2.6
/// (crates.io), run against the real binary: it writes `__name__` as
/// `symbols[0]`, where the specification requires the empty string, so
/// every request it sends is refused as a whole with the rule it breaks and
/// counted, and nothing of it is stored; the same series in a valid table
/// are taken. (Its requests carry no metadata or exemplars either.) Should
/// a later version fix its table, this test says so.
#[tokio::test]
async fn promwrite_0_2_6_breaks_the_symbols_rule_and_is_refused_with_it() {
    let (_proc, addr) = spawn_promgate(&[]);
    let url = format!("http://{addr}/api/v1/write");
    tokio::task::spawn_blocking(move || {
        let client = promwrite::Metric::new(url);
        client.name("jobs_done").label("job", "batch").set(3.0);
        client.name("queue_depth").label("queue", "mail").set(7.0);
        client.flush();
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let page = |path: &'static str| {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("http://{addr}{path}"))
                .send()
                .await
                .unwrap();
            r.text().await.unwrap()
        }
    };
    let own = page("/-/metrics").await;
    assert!(
        own.contains("promgate_requests_rejected_total{reason=\"invalid_request\"} 1\n"),
        "{own}"
    );
    assert_eq!(page("/metrics").await, "");

    // The same two series with `symbols[0]` empty: written.
    let t = now();
    let req = Builder::new()
        .series(
            &[("__name__", "jobs_done"), ("job", "batch")],
            &[(3.0, t)],
            None,
        )
        .series(
            &[("__name__", "queue_depth"), ("queue", "mail")],
            &[(7.0, t)],
            None,
        )
        .build();
    assert_eq!(req.symbols[0], "");
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let answer = http
        .post(format!("http://{addr}/api/v1/write"))
        .header(
            "content-type",
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        )
        .header("content-encoding", "snappy")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 204);
    let metrics = page("/metrics").await;
    assert!(
        metrics.contains(&format!("jobs_done{{job=\"batch\"}} 3 {t}\n"))
            && metrics.contains(&format!("queue_depth{{queue=\"mail\"}} 7 {t}\n")),
        "{metrics}"
    );
}
