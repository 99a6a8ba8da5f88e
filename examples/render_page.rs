//! Renders a page of a store like the mock exporter's workload, for
//! profiling the exposition (callgrind instruction counts, `perf`):
//! 200 metric names of 6-8 legacy-named labels, `SERIES` series in all.
//!
//!     cargo run --release --example render_page -- [SERIES] [REPS] [text|openmetrics]
//!
//! Prints the time per page (wall clock; compare instruction counts under
//! callgrind when the machine is busy).

use std::time::Instant;

use promgate::config::Config;
use promgate::exposition;
use promgate::ingest;
use promgate::proto::{Label, Sample, TimeSeries, WriteRequest};
use promgate::store::{Store, StoreLimits};
use prost::Message;

fn main() {
    let mut args = std::env::args().skip(1);
    let series: usize = args.next().map_or(100_000, |a| a.parse().expect("SERIES"));
    let reps: usize = args.next().map_or(10, |a| a.parse().expect("REPS"));
    let format = args.next().unwrap_or_else(|| "text".into());
    let config = Config::default();
    let rules = config.decode_limits().rules(1_700_000_000_000);
    let store = Store::new(StoreLimits {
        max_series: 10_000_000,
        max_metadata: 10_000,
    });
    for first in (0..series).step_by(500) {
        let timeseries = (first..(first + 500).min(series))
            .map(|i| {
                let name = format!("app_metric_{}_total", i % 200);
                let labels = [
                    ("__name__", name),
                    ("cluster", format!("eu-west-{}", i % 3)),
                    (
                        "instance",
                        format!("10.0.{}.{}:8080", (i / 250) % 250, i % 250),
                    ),
                    ("job", "kubernetes-pods".to_string()),
                    ("method", ["GET", "POST"][i % 2].to_string()),
                    ("route", format!("/api/v1/items/{}", i / 200)),
                ];
                TimeSeries {
                    labels: labels
                        .into_iter()
                        .map(|(n, v)| Label {
                            name: n.to_string(),
                            value: v,
                        })
                        .collect(),
                    samples: vec![Sample {
                        value: i as f64 * 1.5,
                        timestamp: 1_699_999_999_000,
                    }],
                    ..Default::default()
                }
            })
            .collect();
        let req = WriteRequest {
            timeseries,
            metadata: Vec::new(),
        };
        let batch = ingest::v1::decode(&req.encode_to_vec(), &rules).expect("decodes");
        store.apply(&batch);
    }
    let opts = config.render_options();
    let start = Instant::now();
    let bytes = render_pages(&store, &opts, reps, &format);
    let per = start.elapsed() / reps as u32;
    println!("{format}: {series} series, {bytes} bytes, {per:?} per page");
}

/// The pages alone, for `callgrind --toggle-collect=render_page::render_pages`.
#[inline(never)]
fn render_pages(
    store: &Store,
    opts: &promgate::exposition::RenderOptions,
    reps: usize,
    format: &str,
) -> usize {
    let mut bytes = 0;
    for _ in 0..reps {
        let mut page = Vec::with_capacity(16 << 20);
        let _ = match format {
            "openmetrics" => exposition::render_openmetrics(store, opts, &mut page),
            _ => exposition::render(store, opts, &mut page),
        };
        bytes = page.len();
    }
    bytes
}
