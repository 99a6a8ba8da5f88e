//! Many writers with overlapping series while /metrics is fetched over and
//! over, through real sockets: every page parses, no series appears twice,
//! and the final values are the greatest-timestamp ones.

mod common;

use std::collections::HashMap;

use common::*;

const WRITERS: i64 = 8;
const REQUESTS_PER_WRITER: i64 = 40;
const SERIES: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_and_scrapers_do_not_corrupt_each_other() {
    let (app, _) = app(&[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::new();
    let metrics = format!("http://{addr}/metrics");

    let hosts: Vec<String> = (0..SERIES).map(|i| format!("host-{i}")).collect();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let client = client.clone();
        let hosts = hosts.clone();
        writers.push(tokio::spawn(async move {
            for r in 0..REQUESTS_PER_WRITER {
                // Unique timestamps across writers, so "greatest wins" has one answer;
                // each writer sends an overlapping half of the series.
                let ts = 1 + r * WRITERS + w;
                let value = ts as f64 * 1.5;
                let start = (w as usize * 37) % SERIES;
                let labels: Vec<[(&str, &str); 2]> = (0..SERIES / 2)
                    .map(|i| {
                        [
                            ("__name__", "shared_load"),
                            ("host", hosts[(start + i) % SERIES].as_str()),
                        ]
                    })
                    .collect();
                let samples = [(value, ts)];
                let series: Vec<Series> = labels.iter().map(|l| (&l[..], &samples[..])).collect();
                let resp = client
                    .post(format!("http://{addr}/api/v1/write"))
                    .header("content-encoding", "snappy")
                    .body(snappy(&request(&series, &[])))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 204);
            }
            writer_and_first_series(w)
        }));
    }

    // Scrape while the writers run (bounded in count).
    let mut pages = 0;
    while pages < 200 && !writers.iter().all(|w| w.is_finished()) {
        let page = fetch_text(&client, &metrics).await.unwrap();
        check_page(&page);
        pages += 1;
    }
    assert!(pages > 0);
    let mut covered: HashMap<usize, i64> = HashMap::new();
    for w in writers {
        let (w, start) = w.await.unwrap();
        for i in 0..SERIES / 2 {
            let last_ts = 1 + (REQUESTS_PER_WRITER - 1) * WRITERS + w;
            let e = covered.entry((start + i) % SERIES).or_insert(last_ts);
            *e = (*e).max(last_ts);
        }
    }

    let page = fetch_text(&client, &metrics).await.unwrap();
    let lines = check_page(&page);
    assert_eq!(lines.len(), covered.len());
    for (host, ts) in covered {
        let key = format!("shared_load{{host=\"host-{host}\"}}");
        let (value, got_ts) = &lines[&key];
        assert_eq!(*got_ts, ts, "{key}");
        assert_eq!(*value, ts as f64 * 1.5, "{key}");
    }
    assert_parses(&page);
    server.abort();
}

/// A writer's id and the first of the series it writes.
fn writer_and_first_series(w: i64) -> (i64, usize) {
    (w, (w as usize * 37) % SERIES)
}

/// Parses every line; panics on a malformed line or a duplicated series.
fn check_page(page: &str) -> HashMap<String, (f64, i64)> {
    let mut seen = HashMap::new();
    for line in page.lines() {
        let mut parts = line.rsplitn(3, ' ');
        let ts: i64 = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("bad line {line:?}"));
        let value: f64 = parts
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("bad line {line:?}"));
        let key = parts.next().unwrap().to_string();
        assert!(
            seen.insert(key, (value, ts)).is_none(),
            "duplicated series: {line}"
        );
    }
    seen
}
