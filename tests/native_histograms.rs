//! Native histograms from remote write to the page: stored as the latest
//! sample of their series, shown as classic histograms on text pages
//! (`_bucket` at every native boundary, `_count`, `_sum`), the bucket cap
//! lowering their resolution with the counts at the remaining bounds
//! unchanged, floats and stale markers replacing them, and the counts of
//! what was written and shown.
//!
//! The expected pages are computed here from the buckets sent: bucket `i`
//! of schema `s` ends at 2^(i·2^-s).

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use promgate::proto::{BucketSpan, Histogram, Label, TimeSeries, WriteRequest, histogram};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The upper bound of exponential bucket `index` of `schema`.
fn bound(schema: i32, index: i32) -> f64 {
    2f64.powf(f64::from(index) / 2f64.powi(schema))
}

/// An integer histogram of `schema` with positive buckets `(index, count)`
/// (each index greater than the last), a zero bucket of `zero` and
/// observations of sum `sum`, counted `count` (at least the buckets' total).
fn int_histogram(
    schema: i32,
    buckets: &[(i32, u64)],
    zero: u64,
    count: u64,
    sum: f64,
    t: i64,
) -> Histogram {
    let mut spans: Vec<BucketSpan> = Vec::new();
    let mut last: Option<i32> = None;
    for &(i, _) in buckets {
        match last {
            Some(l) if i == l + 1 => spans.last_mut().unwrap().length += 1,
            _ => spans.push(BucketSpan {
                offset: last.map_or(i, |l| i - l - 1),
                length: 1,
            }),
        }
        last = Some(i);
    }
    let mut previous = 0i64;
    let deltas = buckets
        .iter()
        .map(|&(_, c)| {
            let d = c as i64 - previous;
            previous = c as i64;
            d
        })
        .collect();
    Histogram {
        count: Some(histogram::Count::CountInt(count)),
        sum,
        schema,
        zero_threshold: 1e-128,
        zero_count: Some(histogram::ZeroCount::ZeroCountInt(zero)),
        positive_spans: spans,
        positive_deltas: deltas,
        timestamp: t,
        ..Default::default()
    }
}

fn series(labels: Labels, histograms: Vec<Histogram>, samples: &[(f64, i64)]) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(value, timestamp)| promgate::proto::Sample { value, timestamp })
            .collect(),
        histograms,
        ..Default::default()
    }
}

fn one(ts: TimeSeries) -> WriteRequest {
    WriteRequest {
        timeseries: vec![ts],
        metadata: Vec::new(),
    }
}

/// The classic form expected of an [`int_histogram`] with no zero-bucket
/// observations below the first bucket: `(le, cumulative)` lines.
fn expected_buckets(schema: i32, buckets: &[(i32, u64)], zero: u64, count: u64) -> Vec<(f64, u64)> {
    let mut out = vec![(1e-128, zero)];
    let mut cumulative = zero;
    let mut last: Option<i32> = None;
    for &(i, c) in buckets {
        // A bucket after a gap (or the first) shows its lower edge too.
        if last != Some(i - 1) {
            out.push((bound(schema, i - 1), cumulative));
        }
        cumulative += c;
        out.push((bound(schema, i), cumulative));
        last = Some(i);
    }
    out.push((f64::INFINITY, count));
    out
}

/// The `(le, value)` of every `name_bucket` line of `page`, in page order.
fn bucket_lines(page: &str, name: &str) -> Vec<(f64, f64)> {
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket{{")))
        .map(|l| {
            let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            let value = l.split(' ').nth(1).unwrap().parse().unwrap();
            (le, value)
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    a == b || ((a - b) / b).abs() < 1e-12
}

#[tokio::test]
async fn a_native_histogram_is_a_classic_histogram_on_the_text_page() {
    let (app, _) = app(&[]);
    let t = now();
    // Schema 3 (bounds 2^(i/8)), buckets with a gap, as a latency
    // histogram has them.
    let buckets = [(0, 2), (1, 5), (2, 1), (7, 4), (8, 3)];
    let h = int_histogram(3, &buckets, 1, 16, 20.5, t);
    let (status, body) = write(
        &app,
        &one(series(
            &[("__name__", "rpc_seconds"), ("job", "api")],
            vec![h],
            &[],
        )),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (_, page) = get(&app, "/metrics").await;
    assert!(page.starts_with("# TYPE rpc_seconds histogram\n"), "{page}");
    let want = expected_buckets(3, &buckets, 1, 16);
    let got = bucket_lines(&page, "rpc_seconds");
    assert_eq!(got.len(), want.len(), "{page}");
    for ((le, v), (want_le, want_v)) in got.iter().zip(&want) {
        assert!(close(*le, *want_le), "le {le} vs {want_le}\n{page}");
        assert_eq!(*v, *want_v as f64, "at le {le}\n{page}");
    }
    assert!(page.contains(&format!(
        "rpc_seconds_bucket{{job=\"api\",le=\"+Inf\"}} 16 {t}\n"
    )));
    assert!(page.contains(&format!("rpc_seconds_count{{job=\"api\"}} 16 {t}\n")));
    assert!(page.contains(&format!("rpc_seconds_sum{{job=\"api\"}} 20.5 {t}\n")));
    assert_parses(&page);
    assert_eq!(
        self_metric(&app, "promgate_native_histograms_received_total").await,
        1.0
    );
    assert_eq!(
        self_metric(&app, "promgate_exposition_native_histograms_total").await,
        1.0
    );
}

#[tokio::test]
async fn custom_bucket_and_float_histograms_map_one_to_one() {
    let (app, _) = app(&[]);
    let t = now();
    // Custom buckets (schema -53): bounds as sent, bucket i ends at bound i.
    let custom = Histogram {
        count: Some(histogram::Count::CountInt(10)),
        sum: 3.25,
        schema: -53,
        positive_spans: vec![BucketSpan {
            offset: 0,
            length: 3,
        }],
        positive_deltas: vec![4, -1, 0],
        custom_values: vec![0.1, 0.5, 2.5],
        timestamp: t,
        ..Default::default()
    };
    // A float histogram (an aggregation's result): counts as they are.
    let float = Histogram {
        count: Some(histogram::Count::CountFloat(4.5)),
        sum: 9.0,
        schema: 0,
        positive_spans: vec![BucketSpan {
            offset: 1,
            length: 2,
        }],
        positive_counts: vec![1.5, 3.0],
        timestamp: t,
        ..Default::default()
    };
    let req = WriteRequest {
        timeseries: vec![
            series(&[("__name__", "custom")], vec![custom], &[]),
            series(&[("__name__", "float")], vec![float], &[]),
        ],
        metadata: Vec::new(),
    };
    assert_eq!(write(&app, &req).await.0, 204);
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(
        bucket_lines(&page, "custom"),
        [(0.1, 4.0), (0.5, 7.0), (2.5, 10.0), (f64::INFINITY, 10.0)],
        "{page}"
    );
    // Schema 0: bucket 1 is (1, 2], bucket 2 is (2, 4]; the zero bucket
    // (threshold 0) ends at 0.
    assert_eq!(
        bucket_lines(&page, "float"),
        [
            (0.0, 0.0),
            (1.0, 0.0),
            (2.0, 1.5),
            (4.0, 4.5),
            (f64::INFINITY, 4.5)
        ],
        "{page}"
    );
    assert_parses(&page);
}

/// The `(le, value)` pairs of `page`'s `name_bucket` lines as a map keyed
/// by the bound's bits.
fn by_bound(lines: &[(f64, f64)]) -> std::collections::BTreeMap<u64, f64> {
    lines.iter().map(|&(le, v)| (le.to_bits(), v)).collect()
}

#[tokio::test]
async fn the_bucket_cap_lowers_the_resolution_and_keeps_the_counts_at_the_bounds_left() {
    let t = now();
    // Schema 5: 60 populated buckets, one run, as a busy latency
    // histogram has at high resolution.
    let buckets: Vec<(i32, u64)> = (-30..30).map(|i| (i, (i + 31) as u64 % 7 + 1)).collect();
    let total: u64 = buckets.iter().map(|b| b.1).sum();
    let h = int_histogram(5, &buckets, 0, total, 123.0, t);
    let req = one(series(&[("__name__", "busy_seconds")], vec![h], &[]));
    let (full, _) = app(&[]);
    let (capped, _) = app(&["--exposition.native-histogram-max-buckets", "10"]);
    assert_eq!(write(&full, &req).await.0, 204);
    assert_eq!(write(&capped, &req).await.0, 204);
    let full_page = get(&full, "/metrics").await.1;
    let capped_page = get(&capped, "/metrics").await.1;
    let all = bucket_lines(&full_page, "busy_seconds");
    let few = bucket_lines(&capped_page, "busy_seconds");
    // Each lowering of the schema halves the buckets: 60 → 30 → 15 → 8.
    assert!(all.len() > 60, "{full_page}");
    assert!(
        few.len() <= 11,
        "at most 10 bounds and +Inf:\n{capped_page}"
    );
    assert!(few.len() >= 6, "{capped_page}");
    // Every bound left holds what the buckets sent below it hold (a
    // bound of the coarse schema is one of the fine schema's).
    let below = |le: f64| -> f64 {
        let fine = buckets
            .iter()
            .filter(|&&(i, _)| bound(5, i) <= le * (1.0 + 1e-12));
        fine.map(|b| b.1 as f64).sum()
    };
    for &(le, v) in &few[..few.len() - 1] {
        assert_eq!(v, below(le), "le {le}\n{capped_page}");
        let on_grid = (le.log2() * 32.0 - (le.log2() * 32.0).round()).abs() < 1e-9;
        assert!(on_grid || le == 1e-128, "le {le} is no schema-5 boundary");
    }
    assert_eq!(few.last(), Some(&(f64::INFINITY, total as f64)));
    let all = by_bound(&all);
    let shared = by_bound(&few)
        .into_iter()
        .filter(|(b, _)| all.contains_key(b));
    for (bits, v) in shared {
        assert_eq!(all[&bits], v, "le {}", f64::from_bits(bits));
    }
    for suffix in ["_count", "_sum"] {
        let line = |page: &str| {
            page.lines()
                .find(|l| l.starts_with(&format!("busy_seconds{suffix} ")))
                .map(str::to_string)
        };
        assert_eq!(line(&capped_page), line(&full_page));
    }
    assert_parses(&capped_page);
}

#[tokio::test]
async fn a_float_sample_replaces_a_histogram_and_a_stale_histogram_removes_the_series() {
    let (app, _) = app(&[]);
    let t = now();
    let labels: Labels = &[("__name__", "flip")];
    let h = |at| int_histogram(0, &[(1, 2)], 0, 2, 3.0, at);
    assert_eq!(
        write(&app, &one(series(labels, vec![h(t)], &[]))).await.0,
        204
    );
    assert!(get(&app, "/metrics").await.1.contains("flip_count 2 "));
    // A later float: the series is a float series again.
    assert_eq!(
        write(&app, &one(series(labels, vec![], &[(7.0, t + 1)])))
            .await
            .0,
        204
    );
    assert_eq!(get(&app, "/metrics").await.1, format!("flip 7 {}\n", t + 1));
    // An older histogram changes nothing; a newer one takes over.
    assert_eq!(
        write(&app, &one(series(labels, vec![h(t)], &[]))).await.0,
        204
    );
    assert_eq!(get(&app, "/metrics").await.1, format!("flip 7 {}\n", t + 1));
    assert_eq!(
        write(&app, &one(series(labels, vec![h(t + 2)], &[])))
            .await
            .0,
        204
    );
    assert!(
        get(&app, "/metrics")
            .await
            .1
            .contains(&format!("flip_sum 3 {}\n", t + 2))
    );
    // A histogram whose sum is the staleness marker removes the series.
    let mut stale = h(t + 3);
    stale.sum = f64::from_bits(0x7ff0_0000_0000_0002);
    assert_eq!(
        write(&app, &one(series(labels, vec![stale], &[]))).await.0,
        204
    );
    assert_eq!(get(&app, "/metrics").await.1, "");
    assert_eq!(
        self_metric(&app, "promgate_series_stale_removed_total").await,
        1.0
    );
}

#[tokio::test]
async fn a_histogram_with_an_le_label_is_left_off_and_counted() {
    let (app, _) = app(&[]);
    let t = now();
    let h = int_histogram(0, &[(1, 2)], 0, 2, 3.0, t);
    let req = one(series(&[("__name__", "odd"), ("le", "1")], vec![h], &[]));
    assert_eq!(write(&app, &req).await.0, 204);
    assert_eq!(get(&app, "/metrics").await.1, "");
    assert_eq!(
        self_metric(
            &app,
            "promgate_exposition_series_dropped_total{reason=\"native_histogram_le_label\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn where_the_sender_writes_the_classic_form_too_the_page_shows_that_one() {
    let (app, _) = app(&[]);
    let t = now();
    // Prometheus with always_scrape_classic_histograms sends both forms.
    let mut req = request(
        &[
            (&[("__name__", "both_bucket"), ("le", "1")], &[(0.0, t)]),
            (&[("__name__", "both_bucket"), ("le", "+Inf")], &[(2.0, t)]),
            (&[("__name__", "both_count")], &[(2.0, t)]),
            (&[("__name__", "both_sum")], &[(3.0, t)]),
        ],
        &[("both", MetricType::Histogram, "Both forms.")],
    );
    let h = int_histogram(0, &[(1, 2)], 0, 2, 3.0, t);
    req.timeseries
        .push(series(&[("__name__", "both")], vec![h], &[]));
    assert_eq!(write(&app, &req).await.0, 204);
    let page = get(&app, "/metrics").await.1;
    let mut lines: Vec<&str> = page.lines().collect();
    lines[2..4].sort_unstable();
    assert_eq!(
        lines.join("\n"),
        format!(
            "# HELP both Both forms.\n# TYPE both histogram\n\
             both_bucket{{le=\"+Inf\"}} 2 {t}\nboth_bucket{{le=\"1\"}} 0 {t}\n\
             both_count 2 {t}\nboth_sum 3 {t}"
        )
    );
    assert_eq!(
        self_metric(
            &app,
            "promgate_exposition_series_dropped_total{reason=\"native_histogram_classic_sent\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn only_the_histograms_whose_classic_form_was_sent_are_hidden() {
    // Two senders (or two pushed groups) of one family: one writes the
    // classic form beside its native histogram, the other does not. The
    // second's is still shown, in its classic form.
    let (app, _) = app(&[]);
    let t = now();
    let mut req = request(
        &[
            (
                &[("__name__", "mixed_bucket"), ("a", "1"), ("le", "+Inf")],
                &[(2.0, t)],
            ),
            (&[("__name__", "mixed_count"), ("a", "1")], &[(2.0, t)]),
            (&[("__name__", "mixed_sum"), ("a", "1")], &[(3.0, t)]),
        ],
        &[("mixed", MetricType::Histogram, "Mixed.")],
    );
    let h = |count| int_histogram(0, &[(1, count)], 0, count, 3.0, t);
    req.timeseries.push(series(
        &[("__name__", "mixed"), ("a", "1")],
        vec![h(2)],
        &[],
    ));
    req.timeseries.push(series(
        &[("__name__", "mixed"), ("a", "2")],
        vec![h(5)],
        &[],
    ));
    assert_eq!(write(&app, &req).await.0, 204);
    for accept in ["text/plain", "application/openmetrics-text;version=1.0.0"] {
        let page = get_accept(&app, accept).await;
        let lines = |prefix: &str| page.lines().filter(|l| l.starts_with(prefix)).count();
        assert_eq!(lines("mixed_count{a=\"1\"}"), 1, "{accept}:\n{page}");
        assert_eq!(lines("mixed_bucket{a=\"1\""), 1, "{accept}:\n{page}");
        assert_eq!(lines("mixed_count{a=\"2\"} 5"), 1, "{accept}:\n{page}");
        assert_eq!(
            lines("mixed_bucket{a=\"2\",le=\"+Inf\"} 5"),
            1,
            "{accept}:\n{page}"
        );
    }
    assert_parses(&get(&app, "/metrics").await.1);
    assert_eq!(
        self_metric(
            &app,
            "promgate_exposition_series_dropped_total{reason=\"native_histogram_classic_sent\"}"
        )
        .await,
        3.0,
        "the first sender's histogram, hidden on each of the three pages"
    );
}

#[tokio::test]
async fn native_histograms_are_in_snapshots() {
    use promgate::store::persist::{LoadOptions, load};
    let (app, state) = app(&[]);
    let t = now();
    let mut req = request(&[(&[("__name__", "plain")], &[(1.0, t)])], &[]);
    let h = int_histogram(0, &[(1, 2)], 0, 2, 3.0, t);
    req.timeseries
        .push(series(&[("__name__", "native")], vec![h], &[]));
    assert_eq!(write(&app, &req).await.0, 204);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot");
    let saved = state.store.save_snapshot(&path).unwrap();
    let opts = LoadOptions {
        limits: promgate::config::Config::default().store_limits(),
        series_ttl: None,
        push_ttl: None,
        now: SystemTime::now(),
    };
    let (loaded, report) = load(&path, &opts).unwrap().expect("the file is there");
    assert_eq!(report.series, 2, "{saved:?}");
    assert_eq!(
        loaded.get("plain").map(|s| s.value),
        Some(1.0),
        "the float series is kept"
    );
    assert_eq!(
        loaded.get("native").map(|s| s.value),
        Some(2.0),
        "the histogram series too"
    );
    // Every page the same: the classic form (text) and the histogram as
    // sent (protobuf).
    let opts = promgate::config::Config::default().render_options();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    promgate::exposition::render(&state.store, &opts, &mut before).unwrap();
    promgate::exposition::render(&loaded, &opts, &mut after).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&before),
        String::from_utf8_lossy(&after)
    );
    assert!(String::from_utf8_lossy(&after).contains("native_bucket{le=\"+Inf\"} 2"));
    let (mut before, mut after) = (Vec::new(), Vec::new());
    promgate::exposition::render_protobuf(&state.store, &opts, &mut before).unwrap();
    promgate::exposition::render_protobuf(&loaded, &opts, &mut after).unwrap();
    assert_eq!(before, after);
}

/// The protobuf page of `app`, every message decoded.
async fn protobuf_page(app: &axum::Router) -> Vec<promgate::proto::client::MetricFamily> {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use prost::Message;
    use prost::bytes::Buf;
    use tower::ServiceExt;
    let req = axum::http::Request::get("/metrics")
        .header(
            "accept",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
        )
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(req).await.unwrap();
    let mut body = response.into_body().collect().await.unwrap().to_bytes();
    let mut families = Vec::new();
    while body.has_remaining() {
        families.push(
            promgate::proto::client::MetricFamily::decode_length_delimited(&mut body).unwrap(),
        );
    }
    families
}

#[tokio::test]
async fn the_protobuf_page_carries_native_histograms_as_they_were_sent() {
    use promgate::proto::client::{BucketSpan as PbSpan, MetricType as PbType};
    let (app, _) = app(&[]);
    let t = now();
    // An integer histogram with a gap, negative buckets and a zero bucket.
    let mut int = int_histogram(3, &[(0, 2), (1, 5), (7, 4)], 1, 15, 20.5, t);
    int.negative_spans = vec![BucketSpan {
        offset: -2,
        length: 1,
    }];
    int.negative_deltas = vec![3];
    // A float gauge histogram.
    let gauge = Histogram {
        count: Some(histogram::Count::CountFloat(4.5)),
        sum: -2.0,
        schema: 0,
        positive_spans: vec![BucketSpan {
            offset: 1,
            length: 2,
        }],
        positive_counts: vec![1.5, 3.0],
        reset_hint: histogram::ResetHint::Gauge as i32,
        timestamp: t,
        ..Default::default()
    };
    let req = WriteRequest {
        timeseries: vec![
            series(
                &[("__name__", "rpc_seconds"), ("job", "api")],
                vec![int],
                &[],
            ),
            series(&[("__name__", "queue_depth")], vec![gauge], &[]),
            // A float series beside them: its own family, its own type.
            series(
                &[("__name__", "rpc_seconds"), ("job", "old")],
                vec![],
                &[(1.0, t)],
            ),
        ],
        metadata: Vec::new(),
    };
    assert_eq!(write(&app, &req).await.0, 204);
    let families = protobuf_page(&app).await;
    let of = |name: &str, t: PbType| {
        families
            .iter()
            .filter(|f| f.name() == name && f.r#type() == t)
            .flat_map(|f| &f.metric)
            .collect::<Vec<_>>()
    };
    let rpc = of("rpc_seconds", PbType::Histogram);
    assert_eq!(rpc.len(), 1, "{families:?}");
    let h = rpc[0].histogram.as_ref().unwrap();
    assert_eq!(rpc[0].label[0].name(), "job");
    assert_eq!(rpc[0].label[0].value(), "api");
    assert_eq!(rpc[0].timestamp_ms, Some(t));
    assert_eq!(
        (h.schema(), h.sample_count(), h.sample_sum(), h.zero_count()),
        (3, 15, 20.5, 1)
    );
    assert_eq!(h.zero_threshold(), 1e-128);
    let spans = |s: &[PbSpan]| {
        s.iter()
            .map(|s| (s.offset(), s.length()))
            .collect::<Vec<_>>()
    };
    assert_eq!(spans(&h.positive_span), [(0, 2), (5, 1)]);
    assert_eq!(h.positive_delta, [2, 3, -1]);
    assert_eq!(spans(&h.negative_span), [(-2, 1)]);
    assert_eq!(h.negative_delta, [3]);
    let old = of("rpc_seconds", PbType::Untyped);
    assert_eq!(old.len(), 1, "{families:?}");
    assert_eq!(old[0].untyped.as_ref().unwrap().value(), 1.0);

    let queue = of("queue_depth", PbType::GaugeHistogram);
    assert_eq!(queue.len(), 1, "{families:?}");
    let g = queue[0].histogram.as_ref().unwrap();
    assert_eq!((g.sample_count_float(), g.sample_sum()), (4.5, -2.0));
    assert_eq!(spans(&g.positive_span), [(1, 2)]);
    assert_eq!(g.positive_count, [1.5, 3.0]);
    assert_eq!(
        self_metric(&app, "promgate_exposition_native_histograms_total").await,
        2.0
    );
}

#[tokio::test]
async fn a_histogram_over_the_bucket_limit_is_stored_coarser_or_refused() {
    let (app, _) = app(&[]);
    let t = now();
    // Half a million populated buckets in one span at schema 8: a few
    // hundred bytes of compressed request.
    let wide = Histogram {
        count: Some(histogram::Count::CountInt(540_000)),
        sum: 1.0,
        schema: 8,
        positive_spans: vec![BucketSpan {
            offset: -270_000,
            length: 540_000,
        }],
        positive_deltas: std::iter::once(1)
            .chain(std::iter::repeat_n(0, 539_999))
            .collect(),
        timestamp: t,
        ..Default::default()
    };
    // A million custom bounds around one bucket.
    let bounds: Vec<f64> = (1..=1_000_000).map(f64::from).collect();
    let custom = Histogram {
        count: Some(histogram::Count::CountInt(2)),
        sum: 1.0,
        schema: -53,
        positive_spans: vec![BucketSpan {
            offset: 10,
            length: 1,
        }],
        positive_deltas: vec![2],
        custom_values: bounds,
        timestamp: t,
        ..Default::default()
    };
    // Schema -4 (the lowest) over 2^±2000: no lower resolution holds it.
    let mut hopeless = int_histogram(-4, &[(-250, 1), (250, 1)], 0, 2, 1.0, t);
    hopeless.positive_spans = vec![BucketSpan {
        offset: -200,
        length: 400,
    }];
    hopeless.positive_deltas = std::iter::once(1)
        .chain(std::iter::repeat_n(0, 399))
        .collect();
    hopeless.count = Some(histogram::Count::CountInt(400));
    // No zero bucket: none of these buckets can fold into it.
    hopeless.zero_threshold = 0.0;
    let req = WriteRequest {
        timeseries: vec![
            series(&[("__name__", "wide")], vec![wide], &[]),
            series(&[("__name__", "custom")], vec![custom], &[]),
            series(&[("__name__", "hopeless")], vec![hopeless], &[]),
        ],
        metadata: Vec::new(),
    };
    let (status, body) = write(&app, &req).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("native histogram of 400 buckets refused: more than --limits.native-histogram-buckets 320"),
        "{body}"
    );
    let page = get(&app, "/metrics").await.1;
    let wide = bucket_lines(&page, "wide");
    // At most 320 buckets, each with its lower edge where none precedes it.
    assert!(wide.len() <= 2 * 320 + 2, "{}", wide.len());
    assert!(wide.len() > 100, "{}", wide.len());
    // Every count exact: the observations are one per fine bucket
    // (-270000..270000 at schema 8), so the count at `le` is the number of
    // fine buckets ending at or below it.
    for &(le, v) in &wide[..wide.len() - 1] {
        let fine_index = (le.log2() * 256.0).round() as i64;
        let want = (fine_index - (-270_000) + 1).clamp(0, 540_000) as f64;
        assert!(
            le < bound(8, -270_000) || v == want,
            "le {le}: {v}, want {want}"
        );
    }
    assert_eq!(wide.last(), Some(&(f64::INFINITY, 540_000.0)));
    let custom = bucket_lines(&page, "custom");
    assert!(custom.len() <= 321, "{}", custom.len());
    // The bucket of bound index 10 is (10, 11]: 0 below 10, 2 from 11 on.
    for &(le, v) in &custom {
        assert_eq!(v, if le >= 11.0 { 2.0 } else { 0.0 }, "le {le}");
    }
    assert!(!page.contains("hopeless"), "{page}");
    assert_eq!(
        self_metric(
            &app,
            "promgate_series_rejected_total{reason=\"native_histogram_bucket_limit\"}"
        )
        .await,
        1.0
    );
}

/// A bucket list longer than the limit times 4,096 (what lowering the
/// resolution from schema 8 to -4 can merge) is refused on its length on
/// the wire, before a bucket is decoded: two million zero deltas are two
/// megabytes of message, a few kilobytes compressed, and decoding them
/// first cost over a gigabyte (the review of 2026-11-30). A list just
/// within that bound is still decoded and lowered.
#[tokio::test]
async fn a_bucket_list_no_resolution_could_hold_is_refused_before_it_is_decoded() {
    let (app, _) = app(&["--limits.native-histogram-buckets", "2"]);
    let t = now();
    let run = |n: u32| Histogram {
        count: Some(histogram::Count::CountInt(u64::from(n))),
        sum: 1.0,
        schema: 8,
        positive_spans: vec![BucketSpan {
            offset: 1,
            length: n,
        }],
        positive_deltas: std::iter::once(1)
            .chain(std::iter::repeat_n(0, n as usize - 1))
            .collect(),
        timestamp: t,
        ..Default::default()
    };
    let req = WriteRequest {
        timeseries: vec![
            // 2 × 4,096 buckets from index 1 at schema 8 merge into 2 at
            // schema -4 (indices 1 to 4,096, then the next 4,096): decoded,
            // lowered, kept.
            series(&[("__name__", "within")], vec![run(2 * 4_096)], &[]),
            series(&[("__name__", "beyond")], vec![run(2 * 4_096 + 1)], &[]),
        ],
        metadata: Vec::new(),
    };
    let (status, body) = write(&app, &req).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("native histogram of 8193 buckets refused: more than --limits.native-histogram-buckets 2"),
        "{body}"
    );
    let page = get(&app, "/metrics").await.1;
    assert!(!page.contains("beyond"), "{page}");
    assert_eq!(
        bucket_lines(&page, "within").last(),
        Some(&(f64::INFINITY, 8_192.0)),
        "{page}"
    );
}

#[tokio::test]
async fn a_float_series_named_like_a_native_histograms_classic_line_is_never_shown_twice() {
    let t = now();
    let h = |at| int_histogram(0, &[(1, 2)], 0, 2, 3.0, at);
    for (native, float, line) in [
        // The same name.
        ("coll", "coll_count", "coll_count{ok=\"1\"}"),
        // Names that escape alike (underscores, the default).
        ("a.b", "a_b_count", "a_b_count{ok=\"1\"}"),
        ("e", "e_sum", "e_sum{ok=\"1\"}"),
    ] {
        let (app, _) = app(&[]);
        let req = WriteRequest {
            timeseries: vec![
                series(&[("__name__", native), ("ok", "1")], vec![h(t)], &[]),
                series(&[("__name__", float), ("ok", "1")], vec![], &[(9.0, t)]),
            ],
            metadata: Vec::new(),
        };
        assert_eq!(write(&app, &req).await.0, 204);
        for accept in ["text/plain", "application/openmetrics-text;version=1.0.0"] {
            let page = get_accept(&app, accept).await;
            let times = page.lines().filter(|l| l.starts_with(line)).count();
            assert_eq!(times, 1, "{native} beside {float}, {accept}:\n{page}");
            assert!(page.contains(&format!("{line} 9")), "{page}");
        }
        assert_eq!(
            self_metric(
                &app,
                "promgate_exposition_series_dropped_total{reason=\"native_histogram_classic_sent\"}"
            )
            .await,
            2.0,
            "{native}"
        );
    }
}

/// The `/metrics` page for `accept`.
async fn get_accept(app: &axum::Router, accept: &str) -> String {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let req = axum::http::Request::get("/metrics")
        .header("accept", accept)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(req).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn native_histograms_named_like_each_others_lines_are_both_shown() {
    let (app, _) = app(&[]);
    let t = now();
    let h = |count: u64| int_histogram(0, &[(1, count)], 0, count, 1.0, t);
    let req = WriteRequest {
        timeseries: vec![
            series(&[("__name__", "x"), ("x", "1")], vec![h(3)], &[]),
            series(&[("__name__", "x_count"), ("x", "1")], vec![h(7)], &[]),
        ],
        metadata: Vec::new(),
    };
    assert_eq!(write(&app, &req).await.0, 204);
    for accept in ["text/plain", "application/openmetrics-text;version=1.0.0"] {
        let page = get_accept(&app, accept).await;
        assert!(page.contains("x_count{x=\"1\"} 3"), "{accept}:\n{page}");
        assert!(
            page.contains("x_count_count{x=\"1\"} 7"),
            "{accept}:\n{page}"
        );
    }
    let text = get(&app, "/metrics").await.1;
    assert_parses(&text);
    assert_eq!(
        self_metric(
            &app,
            "promgate_exposition_series_dropped_total{reason=\"native_histogram_classic_sent\"}"
        )
        .await,
        0.0
    );
}

#[tokio::test]
async fn beside_a_native_histogram_a_float_bucket_is_shown_once_whatever_the_metadata() {
    let t = now();
    for metadata in [
        MetricType::Summary,
        MetricType::Counter,
        MetricType::Gaugehistogram,
    ] {
        let (app, _) = app(&[]);
        let mut req = request(
            &[
                (
                    &[("__name__", "x_bucket"), ("x", "1"), ("le", "1")],
                    &[(5.0, t)],
                ),
                (
                    &[("__name__", "x_bucket"), ("x", "1"), ("le", "+Inf")],
                    &[(3.0, t)],
                ),
            ],
            &[("x", metadata, "Whatever it says.")],
        );
        let h = int_histogram(0, &[(1, 2)], 0, 2, 3.0, t);
        req.timeseries
            .push(series(&[("__name__", "x"), ("x", "1")], vec![h], &[]));
        assert_eq!(write(&app, &req).await.0, 204);
        for accept in ["text/plain", "application/openmetrics-text;version=1.0.0"] {
            let page = get_accept(&app, accept).await;
            let lines: Vec<&str> = page
                .lines()
                .filter(|l| l.starts_with("x_bucket{le=\"1\",x=\"1\"}"))
                .collect();
            assert_eq!(lines.len(), 1, "{metadata:?}, {accept}:\n{page}");
            assert!(lines[0].contains(" 5"), "{metadata:?}:\n{page}");
        }
    }
}

#[tokio::test]
async fn buckets_inside_the_zero_bucket_keep_their_counts_when_the_resolution_is_lowered() {
    let t = now();
    // Schema 0, zero threshold 0.001: bucket -12 (upper bound 2^-12) lies
    // inside the zero bucket's range on both sides (possible on the wire).
    // Above zero, buckets 1 and 2 ((1, 2] and (2, 4]) merge at schema -1.
    let h = Histogram {
        count: Some(histogram::Count::CountInt(19)),
        sum: 1.0,
        schema: 0,
        zero_threshold: 0.001,
        positive_spans: vec![
            BucketSpan {
                offset: -12,
                length: 1,
            },
            BucketSpan {
                offset: 12,
                length: 2,
            },
        ],
        positive_deltas: vec![5, -2, 1],
        negative_spans: vec![
            BucketSpan {
                offset: -12,
                length: 1,
            },
            BucketSpan {
                offset: 11,
                length: 1,
            },
        ],
        negative_deltas: vec![2, 3],
        timestamp: t,
        ..Default::default()
    };
    let req = one(series(&[("__name__", "z")], vec![h], &[]));
    let mut pages = Vec::new();
    for limit in ["0", "2"] {
        let (app, _) = app(&["--limits.native-histogram-buckets", limit]);
        assert_eq!(write(&app, &req).await.0, 204, "limit {limit}");
        pages.push(bucket_lines(&get(&app, "/metrics").await.1, "z"));
    }
    let at = |lines: &[(f64, f64)], le: f64| lines.iter().find(|l| l.0 == le).map(|l| l.1);
    // Up to -0.5: the 5 in [-1, -0.5); up to 0.001: those, the 2 in
    // (-0.001, 0) and the 5 in (0, 2^-12].
    assert_eq!(at(&pages[0], -0.5), Some(5.0), "{:?}", pages[0]);
    assert_eq!(at(&pages[0], 0.001), Some(12.0), "{:?}", pages[0]);
    assert_eq!(at(&pages[1], 0.001), Some(12.0), "{:?}", pages[1]);
    assert!(pages[1].len() < pages[0].len(), "{:?}", pages[1]);
    for &(le, v) in &pages[1] {
        let exact = pages[0]
            .iter()
            .take_while(|l| l.0 <= le)
            .last()
            .map_or(0.0, |l| l.1);
        assert_eq!(v, exact, "le {le}: {:?} against {:?}", pages[1], pages[0]);
    }
}
