//! Remote-Write 1.0 (`prometheus.WriteRequest`) → [`WriteBatch`].

use prost::Message;

use crate::error::Error;
use crate::model::{
    self, Metadata, MetricType, RejectReason, Rejection, Sample, SeriesLimits, SeriesUpdate,
    WriteBatch,
};
use crate::proto::{WriteRequest, metric_metadata};

/// Decodes a decompressed `WriteRequest` and lowers it into the model.
///
/// A body that is not a valid message fails as a whole; a series that breaks a
/// rule is recorded in [`WriteBatch::rejected`] and the others go on.
pub fn decode(buf: &[u8], limits: &SeriesLimits) -> Result<WriteBatch, Error> {
    let req = WriteRequest::decode(buf).map_err(|e| Error::Protobuf(e.to_string()))?;
    Ok(lower(&req, limits))
}

/// Lowers a decoded request into the model.
pub fn lower(req: &WriteRequest, limits: &SeriesLimits) -> WriteBatch {
    let mut batch = WriteBatch {
        series: Vec::with_capacity(req.timeseries.len()),
        ..WriteBatch::default()
    };
    let mut scratch = Vec::new();
    for ts in &req.timeseries {
        if !ts.histograms.is_empty() {
            let detail = format!(
                "native histograms are not supported by the text format (series with {} labels)",
                ts.labels.len()
            );
            let rejection = Rejection {
                reason: RejectReason::NativeHistogram,
                detail,
            };
            batch.rejected.add(rejection, ts.histograms.len() as u64);
        }
        let Some(latest) = latest(&ts.samples) else {
            continue;
        };
        let labels = ts
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()));
        match model::build_key(labels, limits, &mut scratch, &mut batch.keys) {
            Ok(key) => batch.series.push(SeriesUpdate {
                key,
                latest,
                samples: ts.samples.len() as u32,
            }),
            Err(rejection) => batch.rejected.add(rejection, ts.samples.len() as u64),
        }
    }
    for md in &req.metadata {
        let name = &md.metric_family_name;
        if !model::is_valid_metric_name(name) {
            batch.rejected.add(
                Rejection {
                    reason: RejectReason::InvalidMetricName,
                    detail: format!("invalid metric family name {name:?} in metadata"),
                },
                0,
            );
            continue;
        }
        let metric_type = match metric_metadata::MetricType::try_from(md.r#type) {
            Ok(metric_metadata::MetricType::Counter) => MetricType::Counter,
            Ok(metric_metadata::MetricType::Gauge) => MetricType::Gauge,
            Ok(metric_metadata::MetricType::Histogram) => MetricType::Histogram,
            Ok(metric_metadata::MetricType::Gaugehistogram) => MetricType::GaugeHistogram,
            Ok(metric_metadata::MetricType::Summary) => MetricType::Summary,
            Ok(metric_metadata::MetricType::Info) => MetricType::Info,
            Ok(metric_metadata::MetricType::Stateset) => MetricType::StateSet,
            Ok(metric_metadata::MetricType::Unknown) | Err(_) => MetricType::Unknown,
        };
        batch.metadata.push((
            name.clone(),
            Metadata {
                metric_type,
                help: md.help.clone(),
                unit: md.unit.clone(),
            },
        ));
    }
    batch
}

/// The sample that decides a series' state: the greatest timestamp, and among
/// equal timestamps the last one sent.
fn latest(samples: &[crate::proto::Sample]) -> Option<Sample> {
    samples
        .iter()
        .map(|s| Sample {
            value: s.value,
            timestamp_ms: s.timestamp,
        })
        .reduce(|best, s| {
            if s.timestamp_ms >= best.timestamp_ms {
                s
            } else {
                best
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Label, Sample as PbSample, TimeSeries};

    fn series(labels: &[(&str, &str)], samples: &[(f64, i64)]) -> TimeSeries {
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
                .map(|&(value, timestamp)| PbSample { value, timestamp })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn latest_sample_wins_and_later_wins_ties() {
        let req = WriteRequest {
            timeseries: vec![series(
                &[("__name__", "m")],
                &[(1.0, 10), (3.0, 30), (2.0, 20), (4.0, 30)],
            )],
            ..Default::default()
        };
        let batch = lower(&req, &SeriesLimits::default());
        assert_eq!(batch.series.len(), 1);
        assert_eq!(
            batch.series[0].latest,
            Sample {
                value: 4.0,
                timestamp_ms: 30
            }
        );
        assert_eq!(batch.series[0].samples, 4);
    }

    #[test]
    fn invalid_series_are_counted_and_valid_ones_kept() {
        let req = WriteRequest {
            timeseries: vec![
                series(&[("__name__", "ok")], &[(1.0, 1)]),
                series(&[("__name__", "bad-name")], &[(1.0, 1), (2.0, 2)]),
                series(&[("job", "x")], &[(1.0, 1)]),
            ],
            ..Default::default()
        };
        let batch = lower(&req, &SeriesLimits::default());
        assert_eq!(batch.series.len(), 1);
        assert_eq!(batch.key(&batch.series[0]), "ok");
        assert_eq!(batch.rejected.series_total(), 2);
        assert_eq!(batch.rejected.samples_total(), 3);
        assert_eq!(
            batch.rejected.first.unwrap().reason,
            RejectReason::InvalidMetricName
        );
    }
}
