//! The Pushgateway's push API (its README, "API"): `PUT`, `POST` and
//! `DELETE` on `/metrics/job/<job>{/<label>/<value>}` (and `job@base64`,
//! `<label>@base64`), its query API (`GET /api/v1/metrics`,
//! `GET /api/v1/status`) and `PUT /api/v1/admin/wipe`.
//!
//! Answers as the Pushgateway does: `200` for a stored push, `202` for a
//! delete or a wipe, `400` with a one-line reason for a bad path, a body
//! that does not parse, or a push inconsistent with other groups; plus
//! promgate's own limits (`413`, `408`, `415`, `503`).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value, json};

use super::{AppState, Error};
use crate::ingest::{self, push::Grouping};
use crate::model::MetricType;
use crate::self_metrics::{MethodLabels, ReasonLabels};
use crate::store::{FamilyView, GroupView, Store};

/// Go's `base64.RawURLEncoding` as the Pushgateway uses it: URL-safe
/// alphabet, padding stripped before decoding, trailing bits ignored.
const BASE64_URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Path prefixes of the push API: plain job, base64 job.
const JOB: &str = "/metrics/job/";
const JOB_BASE64: &str = "/metrics/job@base64/";

fn decode_base64(what: &str, s: &str) -> Result<String, Error> {
    let bytes = BASE64_URL.decode(s.trim_end_matches('=')).map_err(|e| {
        ingest::Error::InvalidGrouping(format!("invalid base64 encoding in {what} {s:?}: {e}"))
    })?;
    String::from_utf8(bytes).map_err(|_| {
        ingest::Error::InvalidGrouping(format!("{what} {s:?} is not UTF-8 once decoded")).into()
    })
}

/// The grouping key of a push path, read as the Pushgateway reads it: the
/// whole path percent-decoded first (so an encoded `/` still separates;
/// base64 is the way to carry one), then split at `/`.
fn grouping(uri: &Uri) -> Result<Grouping, Error> {
    let path = uri.path();
    let (rest, job_base64) = match path.strip_prefix(JOB_BASE64) {
        Some(rest) => (rest, true),
        None => (path.strip_prefix(JOB).unwrap_or(""), false),
    };
    let rest = percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .map_err(|_| {
            ingest::Error::InvalidGrouping("path is not UTF-8 once percent-decoded".into())
        })?;
    let (job, labels) = rest.split_once('/').unwrap_or((&rest, ""));
    let job = if job_base64 {
        decode_base64("job name", job)?
    } else {
        job.to_string()
    };
    let mut pairs = Vec::new();
    if !labels.is_empty() {
        let parts: Vec<&str> = labels.split('/').collect();
        if !parts.len().is_multiple_of(2) {
            return Err(ingest::Error::InvalidGrouping(format!(
                "odd number of components in label string \"/{labels}\""
            ))
            .into());
        }
        for pair in parts.chunks(2) {
            let (name, value) = (pair[0], pair[1]);
            pairs.push(match name.strip_suffix("@base64") {
                Some(name) => (
                    name.to_string(),
                    decode_base64(&format!("label {name}"), value)?,
                ),
                None => (name.to_string(), value.to_string()),
            });
        }
    }
    Ok(Grouping::new(job, pairs)?)
}

/// The grouping key of a push path within the per-series limits.
fn checked_grouping(app: &AppState, uri: &Uri) -> Result<Grouping, Error> {
    let grouping = grouping(uri)?;
    grouping.check_limits(&app.settings.decode.series)?;
    Ok(grouping)
}

fn count_rejection(app: &AppState, e: &Error) {
    let labels = ReasonLabels { reason: e.reason() };
    app.metrics.requests_rejected.get_or_create(&labels).inc();
    tracing::debug!(reason = e.reason(), error = %e, "push refused");
}

/// `PUT` (replace the group) and `POST` (replace the families pushed).
pub(super) async fn push(
    State(app): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let replace = method == Method::PUT;
    match push_inner(&app, replace, &uri, &headers, body).await {
        Ok(()) => {
            let method = if replace { "PUT" } else { "POST" };
            app.metrics
                .pushes
                .get_or_create(&MethodLabels { method })
                .inc();
            StatusCode::OK.into_response()
        }
        Err(e) => {
            count_rejection(&app, &e);
            e.into_response()
        }
    }
}

async fn push_inner(
    app: &AppState,
    replace: bool,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), Error> {
    let grouping = checked_grouping(app, uri)?;
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let encoding = ingest::push::PushEncoding::from_header(header(header::CONTENT_ENCODING))?;
    let delimited = ingest::push::is_delimited_protobuf(header(header::CONTENT_TYPE));
    let body = super::body::read(app, headers, body).await?;
    // A push holds its parsed form like a remote write holds its decoded
    // one, so it takes one of the same slots.
    let slot = super::write::write_slot(app).await?;
    let wait = app.settings.writes.max_queue_duration;
    let parsing = tokio::time::timeout(wait, Arc::clone(&app.pushes).acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or(Error::TooManyWrites {
            limit: 1,
            waited: wait,
        })?;
    let app = app.clone();
    // Parsing and applying a large group takes milliseconds: off the
    // runtime's workers.
    tokio::task::spawn_blocking(move || {
        // The permits go with the work: a client that hangs up does not
        // free them while its push is still being parsed and applied.
        let _held = (slot, parsing);
        let limits = &app.settings.decode;
        // A parsed push takes up to ~25 times its text in memory, so its
        // decompressed text is held to the (compressed) body limit, not to
        // the decoded limit of remote write.
        let max = limits.max_decoded_bytes.min(app.settings.max_body_bytes);
        let body = ingest::push::decompress(encoding, &body.bytes, max)?;
        app.metrics.decoded_bytes.inc_by(body.len() as u64);
        let rules = limits.rules(ingest::now_ms());
        // A text body as client libraries write it is read and lowered in
        // one pass; any other body, and every refusal, takes the two steps.
        let one_pass = if delimited {
            None
        } else {
            ingest::push::lower_text(&body, &grouping, &rules, 0)
        };
        let (pushed, now) = match one_pass {
            Some(pushed) => (pushed, SystemTime::now()),
            None => {
                let families = if delimited {
                    ingest::push::parse_delimited(&body)?
                } else {
                    ingest::push::parse_text(&body)?
                };
                let now = SystemTime::now();
                // A body that parsed but cannot be stored is the group's
                // failure, as on the Pushgateway; one that did not parse
                // is not.
                let pushed = ingest::push::lower(&families, &grouping, &rules, 0)
                    .inspect_err(|_| app.store.record_push_failure(&grouping, now))?;
                (pushed, now)
            }
        };
        let outcome = app
            .store
            .push(&grouping, pushed, replace, now)
            .map_err(Error::PushConflict)?;
        app.metrics
            .record(&crate::model::Rejections::default(), &outcome.applied);
        Ok(())
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// `DELETE`: removes the group; `202` whether or not it existed.
pub(super) async fn delete(State(app): State<AppState>, uri: Uri) -> Response {
    match grouping(&uri) {
        Ok(g) => {
            let store = Arc::clone(&app.store);
            // Removing a large group takes a while: off the runtime's workers.
            let _ = tokio::task::spawn_blocking(move || store.delete_group(&g)).await;
            StatusCode::ACCEPTED.into_response()
        }
        Err(e) => {
            count_rejection(&app, &e);
            e.into_response()
        }
    }
}

/// `PUT /api/v1/admin/wipe`: removes every pushed group (remote-written
/// series stay); `202`.
pub(super) async fn wipe(State(app): State<AppState>) -> Response {
    let store = Arc::clone(&app.store);
    let n = tokio::task::spawn_blocking(move || store.wipe_groups())
        .await
        .unwrap_or(0);
    tracing::info!(groups = n, "wiped every pushed group");
    StatusCode::ACCEPTED.into_response()
}

fn json_response(data: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({"status": "success", "data": data}).to_string(),
    )
        .into_response()
}

/// The Pushgateway's names of the types (`dto.MetricType`).
fn type_name(t: MetricType) -> &'static str {
    match t {
        MetricType::Counter => "COUNTER",
        MetricType::Gauge => "GAUGE",
        MetricType::Histogram => "HISTOGRAM",
        MetricType::Summary => "SUMMARY",
        MetricType::GaugeHistogram => "GAUGE_HISTOGRAM",
        _ => "UNTYPED",
    }
}

/// A value as the Pushgateway's API writes it: Go's shortest formatting
/// (`1.2345675e+06`, `1e-07`, `+Inf`), not the page's.
fn number(v: f64) -> Value {
    Value::String(crate::model::go_float(v))
}

fn rfc3339(unix_seconds: f64) -> String {
    let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(unix_seconds.max(0.0));
    humantime::format_rfc3339_nanos(t).to_string()
}

/// Writes one group in the shape of the Pushgateway's `GET
/// /api/v1/metrics`: grouping labels, `last_push_successful`, and per
/// family its time, type, HELP and series (`value`; histograms
/// `buckets`/`count`/`sum`, summaries `quantiles`/`count`/`sum`; a native
/// histogram, of either histogram type, `buckets` empty unless classic ones
/// were pushed beside it, and its `count` and `sum`). Keys in byte order,
/// as a JSON map sorts them; one family's objects built at a time.
fn write_group(out: &mut dyn Write, g: &GroupView) -> io::Result<()> {
    enum Member<'g> {
        Labels,
        LastPushSuccessful,
        Family(&'g FamilyView),
    }
    let mut members: Vec<(&str, Member)> = g
        .families
        .iter()
        .map(|f| (f.name.as_str(), Member::Family(f)))
        .collect();
    members.push(("labels", Member::Labels));
    members.push(("last_push_successful", Member::LastPushSuccessful));
    // A family named `labels` takes the key, as a map written in this
    // order would keep it (a stable sort keeps the family first).
    members.sort_by(|a, b| a.0.cmp(b.0));
    members.dedup_by(|later, first| later.0 == first.0);
    out.write_all(b"{")?;
    for (i, (key, member)) in members.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, key)?;
        out.write_all(b":")?;
        match member {
            Member::Labels => {
                let labels: Map<String, Value> = g
                    .labels
                    .iter()
                    .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                    .collect();
                serde_json::to_writer(&mut *out, &labels)?;
            }
            Member::LastPushSuccessful => {
                serde_json::to_writer(&mut *out, &(g.push_failure_time <= g.push_time))?;
            }
            Member::Family(f) => write_family(out, f)?,
        }
    }
    out.write_all(b"}")
}

/// One family of a group, as [`write_group`] lists it: an object of `help`
/// (when not empty), `metrics` (one object per label set, `le`/`quantile`
/// aside, in the order of each set's first series), `time_stamp` and
/// `type`, keys in that (sorted) order as a JSON map writes them.
///
/// Written one label set at a time: a family of 100k series held ~2.6 KB
/// of JSON values per series when the whole family was built first.
fn write_family(out: &mut dyn Write, f: &FamilyView) -> io::Result<()> {
    // Each series' label set (its labels but the bound it gives its set),
    // as the index of the set's first appearance.
    let mut sets: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut set_of = Vec::with_capacity(f.series.len());
    let mut text = String::new();
    for (key, _) in &f.series {
        let (_, _, labels) = series_parts(f, key);
        text.clear();
        // Lengths first, so no two label sets write the same text.
        for (n, v) in &labels {
            let _ = write!(text, "{}:{n}{}:{v}", n.len(), v.len());
        }
        let next = sets.len() as u32;
        set_of.push(*sets.entry(text.clone()).or_insert(next));
    }
    drop(sets);
    // The series of each set, in series order (a counting sort).
    let mut starts = vec![0u32; set_of.len() + 1];
    for &set in &set_of {
        starts[set as usize + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut order = vec![0u32; set_of.len()];
    let mut at = starts.clone();
    for (k, &set) in set_of.iter().enumerate() {
        order[at[set as usize] as usize] = k as u32;
        at[set as usize] += 1;
    }
    let sums: std::collections::HashMap<usize, f64> = f.native_sums.iter().copied().collect();
    out.write_all(b"{")?;
    if !f.help.is_empty() {
        out.write_all(b"\"help\":")?;
        serde_json::to_writer(&mut *out, &f.help)?;
        out.write_all(b",")?;
    }
    out.write_all(b"\"metrics\":[")?;
    let mut first = true;
    for set in starts.windows(2).take_while(|w| w[0] < w[1]) {
        if !std::mem::take(&mut first) {
            out.write_all(b",")?;
        }
        let series = order[set[0] as usize..set[1] as usize]
            .iter()
            .map(|&k| (&f.series[k as usize], sums.get(&(k as usize)).copied()));
        serde_json::to_writer(&mut *out, &metric_json(f, series))?;
    }
    out.write_all(b"],\"time_stamp\":")?;
    serde_json::to_writer(&mut *out, &rfc3339(f.pushed_at))?;
    out.write_all(b",\"type\":")?;
    serde_json::to_writer(&mut *out, type_name(f.metric_type))?;
    out.write_all(b"}")
}

/// One label set's object in a family's `metrics`: `labels`, and `value`,
/// or `buckets`/`quantiles`, `count` and `sum`, from its series (key, value
/// and, for a native histogram, its sum), in series order.
fn metric_json<'f>(
    f: &FamilyView,
    series: impl Iterator<Item = (&'f (String, f64), Option<f64>)>,
) -> Map<String, Value> {
    let mut m = Map::new();
    for ((key, value), native_sum) in series {
        let (field, bound, labels) = series_parts(f, key);
        m.entry("labels").or_insert_with(|| {
            Value::Object(
                labels
                    .iter()
                    .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                    .collect(),
            )
        });
        // A native histogram as the Pushgateway lists one: no classic
        // buckets (those pushed beside it are its own series), its
        // count and sum.
        if let Some(sum) = native_sum {
            m.entry("buckets")
                .or_insert_with(|| Value::Object(Map::new()));
            m.insert("count".into(), number(*value));
            m.insert("sum".into(), number(sum));
            continue;
        }
        match bound {
            Some(b) => {
                if let Value::Object(map) =
                    m.entry(field).or_insert_with(|| Value::Object(Map::new()))
                {
                    map.insert(b, number(*value));
                }
            }
            None => {
                m.insert(field.into(), number(*value));
            }
        }
    }
    m
}

/// Where series `key` of family `f` goes in its label set's object: the
/// field (`value`, `buckets`, `quantiles`, `count`, `sum`), the bound it
/// gives there (`le`, `quantile`), and the set's labels (without it).
fn series_parts(f: &FamilyView, key: &str) -> (&'static str, Option<String>, Labels) {
    let (name, mut labels) = crate::model::parse_key(key);
    let suffix = name.strip_prefix(f.name.as_str()).unwrap_or("");
    let structured = matches!(f.metric_type, MetricType::Histogram | MetricType::Summary);
    let (field, bound) = match (f.metric_type, suffix) {
        (MetricType::Histogram, "_bucket") => ("buckets", take_label(&mut labels, "le")),
        (MetricType::Summary, "") => ("quantiles", take_label(&mut labels, "quantile")),
        (_, "_sum") if structured => ("sum", None),
        (_, "_count") if structured => ("count", None),
        _ => ("value", None),
    };
    (field, bound, labels)
}

type Labels = Vec<(String, String)>;

fn take_label(labels: &mut Labels, name: &str) -> Option<String> {
    let i = labels.iter().position(|(n, _)| n == name)?;
    Some(labels.remove(i).1)
}

/// `GET /api/v1/metrics`: every pushed group, as the Pushgateway lists them
/// (`{"data":[…],"status":"success"}`).
///
/// A listing is a page: it takes a render slot (`503` after
/// `--exposition.max-queue-duration` without one, counted as
/// `too_many_scrapes`) and is written on a render thread and streamed, one
/// group's snapshot at a time, so that its memory is one group's series and
/// a chunk of text, not the whole answer.
pub(super) async fn metrics_api(State(app): State<AppState>) -> Response {
    let listed = match super::exposition::slot(&app).await {
        Ok(permit) => {
            let store = Arc::clone(&app.store);
            super::exposition::stream(&app, permit, false, move |out| write_groups(&store, out))
        }
        Err(e) => Err(e),
    };
    match listed {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => {
            count_rejection(&app, &e);
            e.into_response()
        }
    }
}

/// Writes every pushed group (see [`metrics_api`]); a group deleted while
/// the listing runs is left out.
fn write_groups(store: &Store, out: &mut dyn Write) -> io::Result<()> {
    // The page's writer takes chunks (it yields the CPU after each write);
    // JSON comes in small pieces.
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    let out: &mut dyn Write = &mut out;
    out.write_all(b"{\"data\":[")?;
    let mut first = true;
    for id in store.group_ids() {
        let Some(group) = store.group_view(&id) else {
            continue;
        };
        if !std::mem::take(&mut first) {
            out.write_all(b",")?;
        }
        write_group(out, &group)?;
    }
    out.write_all(b"],\"status\":\"success\"}")?;
    out.flush()
}

/// `GET /api/v1/status`: build information and start time, as the
/// Pushgateway's (its `flags` are promgate's own, not listed).
pub(super) async fn status_api(State(app): State<AppState>) -> Response {
    json_response(json!({
        "build_information": {
            "version": env!("CARGO_PKG_VERSION"),
            "program": "promgate",
        },
        "start_time": humantime::format_rfc3339_seconds(app.settings.started).to_string(),
        "flags": {},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The family's object as it was built before it was streamed: whole,
    /// as `serde_json` values (the reference the streamed text must equal).
    fn family_json(f: &FamilyView) -> Value {
        // Per label set (without `le`/`quantile`): its JSON object.
        let mut metrics: Vec<(Labels, Map<String, Value>)> = Vec::new();
        let mut index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
        let mut natives = f.native_sums.iter().peekable();
        for (k, (key, value)) in f.series.iter().enumerate() {
            let native_sum = natives.next_if(|&&(i, _)| i == k).map(|&(_, sum)| sum);
            let (name, mut labels) = crate::model::parse_key(key);
            let suffix = name.strip_prefix(f.name.as_str()).unwrap_or("");
            let structured = matches!(f.metric_type, MetricType::Histogram | MetricType::Summary);
            let (field, bound) = match (f.metric_type, suffix) {
                (MetricType::Histogram, "_bucket") => ("buckets", take_label(&mut labels, "le")),
                (MetricType::Summary, "") => ("quantiles", take_label(&mut labels, "quantile")),
                (_, "_sum") if structured => ("sum", None),
                (_, "_count") if structured => ("count", None),
                _ => ("value", None),
            };
            // One index per label set: a family of many series stays linear.
            let i = *index.entry(labels.clone()).or_insert_with(|| {
                let mut m = Map::new();
                let l: Map<String, Value> = labels
                    .iter()
                    .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                    .collect();
                m.insert("labels".into(), Value::Object(l));
                metrics.push((labels, m));
                metrics.len() - 1
            });
            let slot = &mut metrics[i].1;
            // A native histogram as the Pushgateway lists one: no classic
            // buckets (those pushed beside it are its own series), its
            // count and sum.
            if let Some(sum) = native_sum {
                slot.entry("buckets")
                    .or_insert_with(|| Value::Object(Map::new()));
                slot.insert("count".into(), number(*value));
                slot.insert("sum".into(), number(sum));
                continue;
            }
            match bound {
                Some(b) => {
                    let map = slot
                        .entry(field)
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(map) = map {
                        map.insert(b, number(*value));
                    }
                }
                None => {
                    slot.insert(field.into(), number(*value));
                }
            }
        }
        let mut family = Map::new();
        family.insert("time_stamp".into(), Value::String(rfc3339(f.pushed_at)));
        family.insert(
            "type".into(),
            Value::String(type_name(f.metric_type).into()),
        );
        if !f.help.is_empty() {
            family.insert("help".into(), Value::String(f.help.clone()));
        }
        family.insert(
            "metrics".into(),
            Value::Array(metrics.into_iter().map(|(_, m)| Value::Object(m)).collect()),
        );
        Value::Object(family)
    }

    fn streamed(f: &FamilyView) -> String {
        let mut out = Vec::new();
        write_family(&mut out, f).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn view(
        t: MetricType,
        help: &str,
        series: &[(&str, f64)],
        natives: &[(usize, f64)],
    ) -> FamilyView {
        FamilyView {
            name: "f".into(),
            metric_type: t,
            help: help.into(),
            pushed_at: 1_700_000_000.25,
            series: series.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
            native_sums: natives.to_vec(),
        }
    }

    /// Histograms and summaries of interleaved label sets, an `le` label on
    /// a gauge (not a bound there), a native histogram beside classic
    /// buckets, a bound written twice: the streamed text is the text of the
    /// whole family built first, byte for byte.
    #[test]
    fn a_family_streamed_set_by_set_is_the_family_built_whole() {
        let families = [
            view(
                MetricType::Histogram,
                "h",
                &[
                    (r#"f_bucket{a="1",le="0.5"}"#, 1.0),
                    (r#"f_bucket{a="2",le="0.5"}"#, 2.0),
                    (r#"f_bucket{a="1",le="+Inf"}"#, 3.0),
                    (r#"f_sum{a="2"}"#, 4.5),
                    (r#"f_count{a="1"}"#, 3.0),
                    (r#"f_bucket{a="1",le="0.5"}"#, 7.0),
                    (r#"f{a="3"}"#, 9.0),
                ],
                &[(6, 12.5)],
            ),
            view(
                MetricType::Summary,
                "",
                &[
                    (r#"f{b="x",quantile="0.5"}"#, 1.0),
                    (r#"f_sum{b="x"}"#, 2.0),
                    (r#"f{quantile="0.9"}"#, 3.0),
                    (r#"f_count{b="x"}"#, 4.0),
                ],
                &[],
            ),
            view(
                MetricType::Gauge,
                "with \"quotes\" and \\n",
                &[
                    (r#"f{le="1"}"#, 1.0),
                    (r#"f{le="2"}"#, f64::NAN),
                    (r#"f{a="1:2",b=""}"#, -0.0),
                ],
                &[],
            ),
            view(MetricType::Counter, "", &[], &[]),
        ];
        for f in &families {
            let whole = serde_json::to_string(&family_json(f)).unwrap();
            assert_eq!(streamed(f), whole);
        }
    }

    proptest::proptest! {
        /// Any family: the streamed text is the whole-built one's.
        #[test]
        fn any_family_streams_as_it_is_built_whole(
            t in proptest::sample::select(vec![
                MetricType::Counter, MetricType::Gauge, MetricType::Histogram,
                MetricType::Summary, MetricType::Unknown, MetricType::GaugeHistogram,
            ]),
            series in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["f", "f_bucket", "f_sum", "f_count"]),
                    proptest::option::of(0..3u8),
                    proptest::option::of(0..3u8),
                    proptest::option::of(0..3u8),
                    proptest::option::of(0..3u8),
                    -5.0..5.0f64,
                ),
                0..40,
            ),
            natives in proptest::collection::vec(0..40usize, 0..4),
        ) {
            let keys: Vec<(String, f64)> = series
                .iter()
                .map(|(name, a, b, le, q, v)| {
                    let labels: Vec<String> = [("a", a), ("b", b), ("le", le), ("quantile", q)]
                        .iter()
                        .filter_map(|(n, x)| x.map(|x| format!("{n}=\"{x}\"")))
                        .collect();
                    (format!("{name}{{{}}}", labels.join(",")), *v)
                })
                .collect();
            let mut natives: Vec<(usize, f64)> = natives
                .into_iter()
                .filter(|&i| i < keys.len())
                .map(|i| (i, i as f64 / 2.0))
                .collect();
            natives.sort_by_key(|&(i, _)| i);
            natives.dedup_by_key(|&mut (i, _)| i);
            let f = FamilyView {
                name: "f".into(),
                metric_type: t,
                help: "h".into(),
                pushed_at: 1.5,
                series: keys,
                native_sums: natives,
            };
            let whole = serde_json::to_string(&family_json(&f)).unwrap();
            proptest::prop_assert_eq!(streamed(&f), whole);
        }
    }

    fn labels(path: &str) -> Result<Vec<(String, String)>, String> {
        let uri: Uri = path.parse().unwrap();
        grouping(&uri)
            .map(|g| g.labels().to_vec())
            .map_err(|e| e.to_string())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
    }

    #[test]
    fn paths_read_as_the_pushgateway_reads_them() {
        assert_eq!(labels("/metrics/job/j").unwrap(), pairs(&[("job", "j")]));
        assert_eq!(
            labels("/metrics/job/j/instance/i/a/b").unwrap(),
            pairs(&[("a", "b"), ("instance", "i"), ("job", "j")])
        );
        // Its README's examples: a base64 value with a slash, an empty value,
        // percent-encoded UTF-8, and base64 UTF-8.
        assert_eq!(
            labels("/metrics/job/directory_cleaner/path@base64/L3Zhci90bXA").unwrap(),
            pairs(&[("job", "directory_cleaner"), ("path", "/var/tmp")])
        );
        assert_eq!(
            labels("/metrics/job/example/first_label@base64/=/second_label/foobar").unwrap(),
            // An empty value is no label: the same group as without it.
            pairs(&[("job", "example"), ("second_label", "foobar")])
        );
        let titan = pairs(&[("job", "titan"), ("name", "Προμηθεύς")]);
        assert_eq!(
            labels(
                "/metrics/job/titan/name/%CE%A0%CF%81%CE%BF%CE%BC%CE%B7%CE%B8%CE%B5%CF%8D%CF%82"
            )
            .unwrap(),
            titan
        );
        assert_eq!(
            labels("/metrics/job/titan/name@base64/zqDPgc6_zrzOt864zrXPjc-C").unwrap(),
            titan
        );
        assert_eq!(
            labels("/metrics/job@base64/L2Jpbg").unwrap(),
            pairs(&[("job", "/bin")])
        );
        // A trailing slash adds nothing; a label named job is overridden.
        assert_eq!(labels("/metrics/job/j/").unwrap(), pairs(&[("job", "j")]));
        assert_eq!(
            labels("/metrics/job/j/job/k").unwrap(),
            pairs(&[("job", "j")])
        );
    }

    #[test]
    fn bad_paths_get_the_pushgateway_reasons() {
        let e = labels("/metrics/job/j/a").unwrap_err();
        assert!(e.contains("odd number of components"), "{e}");
        let e = labels("/metrics/job/j/__a/b").unwrap_err();
        assert!(e.contains("improper label name"), "{e}");
        let e = labels("/metrics/job/j/a-b/c").unwrap_err();
        assert!(e.contains("improper label name"), "{e}");
        let e = labels("/metrics/job@base64/=").unwrap_err();
        assert!(e.contains("job name is required"), "{e}");
        let e = labels("/metrics/job/j/a@base64/!!").unwrap_err();
        assert!(e.contains("invalid base64"), "{e}");
        let e = labels("/metrics/job/j/a@base64/_w").unwrap_err();
        assert!(e.contains("not UTF-8"), "{e}");
    }
}
