//! `promgate push`: reads the text format (a file or stdin) and sends it by
//! Remote-Write 1.0 to a promgate or any receiver, so that an operator can
//! post test data without writing protobuf.
//!
//! Samples without a timestamp are stamped with the time of sending (that is
//! what makes them visible in a "last hour" view downstream); samples that
//! carry one keep it. HELP and TYPE go along as 1.0 metadata. The text is
//! read by the same strict parser as pushed groups.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;

use crate::ingest::push::{ParsedFamily, parse_text};
use crate::model::MetricType;
use crate::proto;

/// Arguments of `promgate push`.
#[derive(Clone, Debug, clap::Args)]
pub struct PushArgs {
    /// The remote-write endpoint to send to (http only).
    #[arg(
        long = "url",
        env = "PROMGATE_PUSH_URL",
        default_value = "http://127.0.0.1:9091/api/v1/write"
    )]
    pub url: hyper::Uri,

    /// How long to wait for the receiver's answer.
    #[arg(long = "timeout", default_value = "10s", value_parser = crate::config::parse_duration)]
    pub timeout: Duration,

    /// The text-format file to send; `-` or nothing reads stdin.
    pub file: Option<PathBuf>,
}

/// The 1.0 request carrying `families`: one time series per sample (labels
/// sorted, `__name__` first among equals), stamped `now_ms` unless the
/// sample has a timestamp, and one metadata entry per typed or documented
/// family.
pub fn write_request(families: &[ParsedFamily<'_>], now_ms: i64) -> proto::WriteRequest {
    let mut request = proto::WriteRequest::default();
    for f in families {
        for s in &f.samples {
            let mut labels: Vec<proto::Label> = std::iter::once(("__name__", s.name.clone()))
                .chain(s.labels.iter())
                .filter(|(_, v)| !v.is_empty())
                .map(|(n, v)| proto::Label {
                    name: n.to_string(),
                    value: v.into_owned(),
                })
                .collect();
            labels.sort_by(|a, b| a.name.cmp(&b.name));
            request.timeseries.push(proto::TimeSeries {
                labels,
                samples: vec![proto::Sample {
                    value: s.value,
                    timestamp: s.timestamp_ms.unwrap_or(now_ms),
                }],
                ..Default::default()
            });
        }
        let help = f.help.clone().unwrap_or_default();
        if f.metric_type != MetricType::Unknown || !help.is_empty() {
            use proto::metric_metadata::MetricType as T;
            let t = match f.metric_type {
                MetricType::Counter => T::Counter,
                MetricType::Gauge => T::Gauge,
                MetricType::Histogram => T::Histogram,
                MetricType::Summary => T::Summary,
                _ => T::Unknown,
            };
            request.metadata.push(proto::MetricMetadata {
                r#type: t as i32,
                metric_family_name: f.name.to_string(),
                help,
                unit: String::new(),
            });
        }
    }
    request
}

/// Runs `promgate push`: read, parse, send, report.
///
/// # Errors
///
/// A one-line message: the input cannot be read or parsed, the receiver
/// cannot be reached in time, or it answered other than 2xx (its body
/// quoted).
pub async fn run(args: &PushArgs) -> Result<String, String> {
    // The client is hyper's plain HTTP one: say so before reading anything,
    // rather than failing to connect with hyper's bare "client error".
    if args.url.scheme_str() != Some("http") {
        return Err(format!(
            "{}: promgate push sends over plain http:// only",
            args.url
        ));
    }
    let text = match args.file.as_deref() {
        None => read_stdin()?,
        Some(p) if p.as_os_str() == "-" => read_stdin()?,
        Some(p) => std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
    };
    let families = parse_text(&text).map_err(|e| e.to_string())?;
    let now_ms = crate::ingest::now_ms();
    let request = write_request(&families, now_ms);
    let series = request.timeseries.len();
    let body = snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .map_err(|e| format!("cannot compress the request: {e}"))?;
    let http = Request::post(args.url.clone())
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .header(
            "User-Agent",
            concat!("promgate/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("invalid request to {}: {e}", args.url))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let answer = tokio::time::timeout(args.timeout, async {
        let response = client.request(http).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((status, body))
    })
    .await
    .map_err(|_| format!("no answer from {} within {:?}", args.url, args.timeout))?
    .map_err(|e| format!("cannot send to {}: {e}", args.url))?;
    let (status, body) = answer;
    if status.is_success() {
        Ok(format!(
            "sent {series} series of {} families to {}: {status}",
            families.len(),
            args.url
        ))
    } else {
        // A Pushgateway-API path refuses remote write's snappy body; name
        // the mix-up instead of leaving the user with that refusal alone.
        let hint = if args.url.path().starts_with("/metrics/job") {
            " (promgate push speaks remote write: send to /api/v1/write; push text to /metrics/job/… with curl)"
        } else {
            ""
        };
        Err(format!(
            "{} answered {status}: {}{hint}",
            args.url,
            String::from_utf8_lossy(&body).trim()
        ))
    }
}

fn read_stdin() -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    Ok(buf)
}
