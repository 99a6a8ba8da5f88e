//! The push API at the router: encodings, formats, limits, the query API,
//! wipe, expiry and how each refusal is answered and counted.

mod common;

use std::io::Write as _;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use common::*;
use prost::Message;

async fn put(app: &Router, path: &str, body: &str) -> (StatusCode, String) {
    send(app, "PUT", path, &[], body.as_bytes().to_vec()).await
}

#[tokio::test]
async fn pushed_series_have_the_grouping_labels_and_no_timestamp() {
    let (app, _) = app(&[]);
    let (status, body) = put(
        &app,
        "/metrics/job/j/instance/i",
        "# TYPE up gauge\nup{a=\"1\"} 1\n",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, page) = get(&app, "/metrics").await;
    assert!(
        page.contains("\nup{a=\"1\",instance=\"i\",job=\"j\"} 1\n"),
        "{page}"
    );
    assert!(page.contains("# TYPE up gauge\n"), "{page}");
    let push_time = page
        .lines()
        .find(|l| l.starts_with("push_time_seconds{instance=\"i\",job=\"j\"} "))
        .unwrap_or_else(|| panic!("{page}"));
    let t: f64 = push_time.rsplit(' ').next().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - t).abs() < 60.0, "{push_time}");
    assert_parses(&page);
}

#[tokio::test]
async fn gzip_snappy_and_protobuf_bodies_are_read() {
    let (app, _) = app(&[]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"zipped 1\n").unwrap();
    let (s, b) = send(
        &app,
        "PUT",
        "/metrics/job/gz",
        &[("content-encoding", "gzip")],
        gz.finish().unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let mut framed = snap::write::FrameEncoder::new(Vec::new());
    framed.write_all(b"snapped 2\n").unwrap();
    let (s, b) = send(
        &app,
        "PUT",
        "/metrics/job/sn",
        &[("content-encoding", "snappy")],
        framed.into_inner().unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    use promgate::proto::client::{Gauge, LabelPair, Metric, MetricFamily, MetricType};
    let family = MetricFamily {
        name: Some("proto_pushed".into()),
        help: Some("From protobuf.".into()),
        r#type: Some(MetricType::Gauge as i32),
        metric: vec![Metric {
            label: vec![LabelPair {
                name: Some("k".into()),
                value: Some("v".into()),
            }],
            gauge: Some(Gauge { value: Some(3.5) }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let (s, b) = send(
        &app,
        "PUT",
        "/metrics/job/pb",
        &[(
            "content-type",
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        )],
        family.encode_length_delimited_to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let (_, page) = get(&app, "/metrics").await;
    for line in [
        "zipped{instance=\"\",job=\"gz\"} 1\n",
        "snapped{instance=\"\",job=\"sn\"} 2\n",
        "proto_pushed{instance=\"\",job=\"pb\",k=\"v\"} 3.5\n",
        "# HELP proto_pushed From protobuf.\n",
    ] {
        assert!(page.contains(line), "{line:?} missing:\n{page}");
    }
}

/// A request the push API refuses, and how.
struct Case {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    status: StatusCode,
    reason: &'static str,
    says: &'static str,
}

#[tokio::test]
async fn refusals_get_their_status_reason_and_count() {
    let (app, _) = app(&["--limits.request-body-bytes", "1000"]);
    let cases = [
        Case {
            method: "PUT",
            path: "/metrics/job/j/odd",
            headers: vec![],
            body: b"x 1\n".to_vec(),
            status: StatusCode::BAD_REQUEST,
            reason: "invalid_push_path",
            says: "odd number of components",
        },
        Case {
            method: "PUT",
            path: "/metrics/job/j",
            headers: vec![("content-encoding", "br")],
            body: b"x 1\n".to_vec(),
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            reason: "unsupported_push_encoding",
            says: "\"br\"",
        },
        Case {
            method: "PUT",
            path: "/metrics/job/j",
            headers: vec![],
            body: vec![b'#'; 2000],
            status: StatusCode::PAYLOAD_TOO_LARGE,
            reason: "body_too_large",
            says: "1000 bytes",
        },
        Case {
            method: "PUT",
            path: "/metrics/job/j",
            headers: vec![("content-encoding", "gzip")],
            body: b"not gzip".to_vec(),
            status: StatusCode::BAD_REQUEST,
            reason: "malformed_compression",
            says: "gzip",
        },
        Case {
            method: "PUT",
            path: "/metrics/job/j",
            headers: vec![],
            body: b"x{ 1\n".to_vec(),
            status: StatusCode::BAD_REQUEST,
            reason: "malformed_text",
            says: "line 1",
        },
        Case {
            method: "POST",
            path: "/metrics/job/j",
            headers: vec![],
            body: b"x 1 123\n".to_vec(),
            status: StatusCode::BAD_REQUEST,
            reason: "invalid_push",
            says: "timestamps",
        },
    ];
    for Case {
        method,
        path,
        headers,
        body,
        status,
        reason,
        says,
    } in cases
    {
        let before = self_metric(
            &app,
            &format!("promgate_requests_rejected_total{{reason=\"{reason}\"}}"),
        )
        .await;
        let (s, b) = send(&app, method, path, &headers, body).await;
        assert_eq!(s, status, "{method} {path}: {b}");
        assert!(
            b.contains(says) && b.trim().lines().count() == 1,
            "{method} {path}: {b:?}"
        );
        let after = self_metric(
            &app,
            &format!("promgate_requests_rejected_total{{reason=\"{reason}\"}}"),
        )
        .await;
        assert_eq!(after, before + 1.0, "{reason} not counted");
    }
    // Nothing of any of them was stored, but the refusal after parsing was
    // recorded as the group's failure.
    let (_, page) = get(&app, "/metrics").await;
    assert!(!page.contains("\nx{"), "{page}");
    assert!(
        page.contains("push_failure_time_seconds{instance=\"\",job=\"j\"} "),
        "{page}"
    );
    assert!(
        page.contains("push_time_seconds{instance=\"\",job=\"j\"} 0\n"),
        "{page}"
    );
}

/// A listing of the groups is a page like `/metrics`: it holds a render
/// slot while it is streamed, so listings are bounded by
/// `--exposition.max-concurrent-scrapes` and one beyond waits, then gets
/// `503`; it streams (a client that does not read holds the slot, not a
/// whole answer in memory); and its text is the same whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_holds_a_render_slot_and_streams() {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let (app, _) = app(&[
        "--exposition.max-concurrent-scrapes",
        "1",
        "--exposition.max-queue-duration",
        "200ms",
    ]);
    // Three groups of 3,000 series: a listing of about 1 MB, more than the
    // render channel and a chunk hold.
    for g in 0..3 {
        let body: String = (0..3000)
            .map(|i| format!("listed{{series=\"{i}\"}} {i}\n"))
            .collect();
        let (s, b) = put(&app, &format!("/metrics/job/j{g}"), &body).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (s, whole) = get(&app, "/api/v1/metrics").await;
    assert_eq!(s, StatusCode::OK);
    let listed: serde_json::Value = serde_json::from_str(&whole).unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 3);
    assert_eq!(
        listed["data"][2]["listed"]["metrics"]
            .as_array()
            .unwrap()
            .len(),
        3000
    );

    let held = app
        .clone()
        .oneshot(Request::get("/api/v1/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(held.status(), StatusCode::OK);
    let (status, body) = get(&app, "/api/v1/metrics").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.starts_with("too many concurrent scrapes: 1 pages"),
        "{body}"
    );
    assert_eq!(
        self_metric(
            &app,
            "promgate_requests_rejected_total{reason=\"too_many_scrapes\"}"
        )
        .await,
        1.0
    );
    // Read at last, the held listing is the whole answer.
    let bytes = held.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(String::from_utf8_lossy(&bytes), whole);
}

#[tokio::test]
async fn the_query_api_lists_groups_in_the_pushgateways_shape() {
    let (app, _) = app(&[]);
    put(
        &app,
        "/metrics/job/j/instance/i",
        "# HELP h Latency.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 4\nh_count 3\ng 7\n",
    )
    .await;
    let (s, body) = get(&app, "/api/v1/metrics").await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success");
    let group = &v["data"][0];
    assert_eq!(
        group["labels"],
        serde_json::json!({"instance": "i", "job": "j"})
    );
    assert_eq!(group["last_push_successful"], true);
    assert_eq!(group["h"]["type"], "HISTOGRAM");
    assert_eq!(group["h"]["help"], "Latency.");
    let m = &group["h"]["metrics"][0];
    assert_eq!(m["buckets"], serde_json::json!({"1": "2", "+Inf": "3"}));
    assert_eq!(m["sum"], "4");
    assert_eq!(m["count"], "3");
    assert_eq!(
        m["labels"],
        serde_json::json!({"instance": "i", "job": "j"})
    );
    assert_eq!(group["g"]["type"], "UNTYPED");
    assert_eq!(group["g"]["metrics"][0]["value"], "7");
    assert_eq!(group["push_time_seconds"]["type"], "GAUGE");

    let (s, body) = get(&app, "/api/v1/status").await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["build_information"]["program"], "promgate");
}

#[tokio::test]
async fn wipe_removes_pushed_groups_and_keeps_remote_written_series() {
    let (app, _) = app(&[]);
    put(&app, "/metrics/job/a", "pushed 1\n").await;
    let req = request(&[(&[("__name__", "written")], &[(1.0, now())])], &[]);
    assert_eq!(write(&app, &req).await.0, StatusCode::NO_CONTENT);
    let (s, _) = send(&app, "PUT", "/api/v1/admin/wipe", &[], vec![]).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (_, page) = get(&app, "/metrics").await;
    assert!(!page.contains("pushed"), "{page}");
    assert!(
        page.contains("\nwritten ") || page.starts_with("written "),
        "{page}"
    );
}

#[tokio::test]
async fn a_name_pushed_and_remote_written_is_one_family() {
    let (app, _) = app(&[]);
    put(&app, "/metrics/job/a", "# TYPE shared counter\nshared 1\n").await;
    let req = request(
        &[(&[("__name__", "shared"), ("job", "rw")], &[(2.0, now())])],
        &[],
    );
    assert_eq!(write(&app, &req).await.0, StatusCode::NO_CONTENT);
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(page.matches("# TYPE shared counter\n").count(), 1, "{page}");
    let lines: Vec<&str> = page.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "# TYPE shared counter")
        .unwrap();
    let family: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|l| l.starts_with("shared{"))
        .copied()
        .collect();
    assert_eq!(family.len(), 2, "{page}");
    assert_parses(&page);
}

fn now() -> i64 {
    promgate::ingest::now_ms()
}

#[tokio::test]
async fn a_group_expires_after_push_ttl_and_a_push_refreshes_it() {
    let (_pg, addr) = spawn_promgate(&["--push.ttl", "2s", "--series.ttl", "1s"]);
    let client = reqwest::Client::new();
    let push = |job: &'static str| {
        let client = client.clone();
        async move {
            let r = client
                .put(format!("http://{addr}/metrics/job/{job}"))
                .body("kept 1\n")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    push("stale").await;
    push("fresh").await;
    let start = std::time::Instant::now();
    // `fresh` is pushed again every 500 ms; `stale` never.
    let page = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        push("fresh").await;
        let page = fetch_text(&client, &format!("http://{addr}/metrics"))
            .await
            .unwrap();
        if !page.contains("job=\"stale\"") {
            break page;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "stale group never expired:\n{page}"
        );
    };
    // Not before its TTL, and the pushed series outlived --series.ttl.
    assert!(start.elapsed() >= Duration::from_secs(2));
    assert!(
        page.contains("kept{instance=\"\",job=\"fresh\"} 1\n"),
        "{page}"
    );
    let metrics = fetch_text(&client, &format!("http://{addr}/-/metrics"))
        .await
        .unwrap();
    assert!(
        metrics.contains("promgate_push_groups_expired_total 1\n"),
        "{metrics}"
    );
}

/// The grouping labels are part of every pushed series (and of the group's
/// `push_time_seconds`), so a path over the per-series limits is refused
/// before anything is kept: no series, no group, no failure time.
#[tokio::test]
async fn a_grouping_over_the_per_series_limits_is_refused_and_creates_nothing() {
    let (app, _) = app(&[
        "--limits.labels-per-series",
        "6",
        "--limits.label-value-length",
        "16",
    ]);
    // job + 3 labels + __name__ + instance = 6: at the limit, accepted.
    let (s, b) = put(&app, "/metrics/job/ok/a/1/b/2/c/3", "x 1\n").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // job + 4 labels + __name__ + instance = 7.
    let too_many = "/metrics/job/many/a/1/b/2/c/3/d/4";
    // An empty body too: it would store only push_time_seconds.
    for body in ["x 1\n", ""] {
        let (s, b) = put(&app, too_many, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert!(
            b.contains("7 labels") && b.contains("--limits.labels-per-series 6"),
            "{b}"
        );
    }
    let long = format!("/metrics/job/long/v/{}", "x".repeat(17));
    let (s, b) = put(&app, &long, "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.contains("value of label v is 17 bytes"), "{b}");
    let (_, page) = get(&app, "/metrics").await;
    assert!(page.contains("job=\"ok\""), "{page}");
    for job in ["many", "long"] {
        assert!(!page.contains(&format!("job=\"{job}\"")), "{page}");
    }
    let (_, groups) = get(&app, "/api/v1/metrics").await;
    assert!(
        !groups.contains("many") && !groups.contains("\"long\""),
        "{groups}"
    );
    let (_, own) = get(&app, "/-/metrics").await;
    assert!(
        own.contains("promgate_requests_rejected_total{reason=\"invalid_push_path\"} 3\n"),
        "{own}"
    );
}

/// The `# TYPE`/`# HELP` lines of `page` and the sample lines of `name`.
fn headers_and(page: &str, name: &str) -> Vec<String> {
    page.lines()
        .filter(|l| l.starts_with('#') || l.starts_with(&format!("{name}{{")))
        .filter(|l| !l.contains("push_time_seconds") && !l.contains("push_failure_time_seconds"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_family_replaced_by_one_named_like_its_series_takes_its_own_type() {
    let (app, _) = app(&[]);
    let hist = "# TYPE hx histogram\nhx_bucket{le=\"1\"} 1\nhx_bucket{le=\"+Inf\"} 1\nhx_sum 1\nhx_count 1\n";
    assert_eq!(put(&app, "/metrics/job/hh", hist).await.0, StatusCode::OK);
    let gauge = "# TYPE hx_count gauge\nhx_count{z=\"1\"} 5\n";
    assert_eq!(put(&app, "/metrics/job/hh", gauge).await.0, StatusCode::OK);
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(
        headers_and(&page, "hx_count"),
        [
            "# TYPE hx_count gauge",
            "hx_count{instance=\"\",job=\"hh\",z=\"1\"} 5"
        ],
        "{page}"
    );
    assert_parses(&page);

    // A summary replaced by a counter named like its sum, with its own HELP.
    let summary =
        "# HELP sm A summary.\n# TYPE sm summary\nsm{quantile=\"0.5\"} 1\nsm_sum 2\nsm_count 3\n";
    assert_eq!(
        put(&app, "/metrics/job/ss", summary).await.0,
        StatusCode::OK
    );
    let counter = "# HELP sm_sum Its own help.\n# TYPE sm_sum counter\nsm_sum 7\n";
    assert_eq!(
        put(&app, "/metrics/job/ss", counter).await.0,
        StatusCode::OK
    );
    let (_, page) = get(&app, "/metrics").await;
    assert_eq!(
        headers_and(&page, "sm_sum"),
        [
            "# TYPE hx_count gauge",
            "# HELP sm_sum Its own help.",
            "# TYPE sm_sum counter",
            "sm_sum{instance=\"\",job=\"ss\"} 7"
        ],
        "{page}"
    );
    assert!(!page.contains("# TYPE sm summary"), "{page}");
    assert_parses(&page);
}

#[tokio::test]
async fn a_removed_group_leaves_no_type_to_misfile_a_later_remote_written_series() {
    let hist =
        "# HELP hx Latency.\n# TYPE hx histogram\nhx_bucket{le=\"+Inf\"} 1\nhx_sum 1\nhx_count 1\n";
    let remote_written = request(&[(&[("__name__", "hx_count")], &[(4.0, now())])], &[]);
    let assert_untyped = |page: &str| {
        assert!(!page.contains("# TYPE hx"), "{page}");
        assert!(!page.contains("# HELP hx"), "{page}");
        assert!(page.lines().any(|l| l.starts_with("hx_count 4 ")), "{page}");
        assert_parses(page);
    };
    // DELETE of the group, then the wipe.
    let (app, _) = app(&[]);
    for undo in ["DELETE /metrics/job/hh", "PUT /api/v1/admin/wipe"] {
        assert_eq!(put(&app, "/metrics/job/hh", hist).await.0, StatusCode::OK);
        let (method, path) = undo.split_once(' ').unwrap();
        let (s, b) = send(&app, method, path, &[], vec![]).await;
        assert!(s.is_success(), "{undo}: {s} {b}");
        assert_eq!(write(&app, &remote_written).await.0, StatusCode::NO_CONTENT);
        let (_, page) = get(&app, "/metrics").await;
        assert_untyped(&page);
    }
    // A group gone by --push.ttl.
    let (_pg, addr) = spawn_promgate(&["--push.ttl", "1s"]);
    let client = reqwest::Client::new();
    let r = client
        .put(format!("http://{addr}/metrics/job/hh"))
        .body(hist)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let url = format!("http://{addr}/metrics");
    eventually(Duration::from_secs(20), "the group to expire", || async {
        let page = fetch_text(&client, &url).await?;
        if page.contains("job=\"hh\"") {
            Err(page)
        } else {
            Ok(())
        }
    })
    .await;
    let r = client
        .post(format!("http://{addr}/api/v1/write"))
        .header("content-encoding", "snappy")
        .header("content-type", "application/x-protobuf")
        .body(snappy(&remote_written))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_untyped(&fetch_text(&client, &url).await.unwrap());
}
