//! Remote-Write 2.0 requests for the router tests: a builder interning
//! strings as a sender does, and the answer with its written headers.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use promgate::proto::v2::{self, Exemplar, Metadata, TimeSeries};
use prost::Message;
use tower::ServiceExt;

pub const V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

/// Builds a request, interning strings into the symbols table as a sender does.
#[derive(Default)]
pub struct Builder {
    pub symbols: Vec<String>,
    pub series: Vec<TimeSeries>,
}

impl Builder {
    pub fn new() -> Self {
        Builder {
            symbols: vec![String::new()],
            series: Vec::new(),
        }
    }

    pub fn sym(&mut self, s: &str) -> u32 {
        match self.symbols.iter().position(|x| x == s) {
            Some(i) => i as u32,
            None => {
                self.symbols.push(s.to_string());
                (self.symbols.len() - 1) as u32
            }
        }
    }

    pub fn refs(&mut self, labels: &[(&str, &str)]) -> Vec<u32> {
        labels
            .iter()
            .flat_map(|(n, v)| [self.sym(n), self.sym(v)])
            .collect()
    }

    /// A series with float samples and metadata `(type, help)`.
    pub fn series(
        mut self,
        labels: &[(&str, &str)],
        samples: &[(f64, i64)],
        md: Option<(v2::metadata::MetricType, &str)>,
    ) -> Self {
        let labels_refs = self.refs(labels);
        let metadata = md.map(|(t, help)| Metadata {
            r#type: t as i32,
            help_ref: self.sym(help),
            unit_ref: 0,
        });
        self.series.push(TimeSeries {
            labels_refs,
            samples: samples
                .iter()
                .map(|&(value, timestamp)| v2::Sample {
                    value,
                    timestamp,
                    start_timestamp: 0,
                })
                .collect(),
            metadata,
            ..Default::default()
        });
        self
    }

    pub fn raw(mut self, ts: TimeSeries) -> Self {
        self.series.push(ts);
        self
    }

    pub fn build(self) -> v2::Request {
        v2::Request {
            symbols: self.symbols,
            timeseries: self.series,
        }
    }
}

/// The answer to a 2.0 request: status, body, and the three written headers.
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
    pub written: Option<(u64, u64, u64)>,
}

pub async fn send(app: &Router, content_type: &str, encoding: &str, body: Vec<u8>) -> Answer {
    let resp = app
        .clone()
        .oneshot(
            Request::post("/api/v1/write")
                .header("content-type", content_type)
                .header("content-encoding", encoding)
                .header("x-prometheus-remote-write-version", "2.0.0")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let header = |name: &str| -> Option<u64> {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().parse().unwrap())
    };
    let written = match (
        header("x-prometheus-remote-write-samples-written"),
        header("x-prometheus-remote-write-histograms-written"),
        header("x-prometheus-remote-write-exemplars-written"),
    ) {
        (Some(s), Some(h), Some(e)) => Some((s, h, e)),
        (None, None, None) => None,
        other => panic!("some written headers but not all: {other:?}"),
    };
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        written,
    }
}

pub async fn write2(app: &Router, req: &v2::Request) -> Answer {
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    send(app, V2, "snappy", body).await
}

impl Builder {
    /// Metadata `(type, help, unit)`, its strings interned.
    pub fn metadata(&mut self, t: v2::metadata::MetricType, help: &str, unit: &str) -> Metadata {
        Metadata {
            r#type: t as i32,
            help_ref: self.sym(help),
            unit_ref: self.sym(unit),
        }
    }

    /// An exemplar with `labels`, its strings interned.
    pub fn exemplar(&mut self, labels: &[(&str, &str)], value: f64, timestamp: i64) -> Exemplar {
        Exemplar {
            labels_refs: self.refs(labels),
            value,
            timestamp,
        }
    }
}

/// One float sample with no start timestamp.
pub fn sample(value: f64, timestamp: i64) -> v2::Sample {
    v2::Sample {
        value,
        timestamp,
        start_timestamp: 0,
    }
}
