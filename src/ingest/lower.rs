//! The one lowering every protocol shares: wire labels and samples → a
//! [`WriteBatch`] of validated series with canonical keys.
//!
//! A decoder walks its own wire format and hands each series here as a label
//! iterator and a [`SeriesSummary`]; a decoder with a faster way to write a
//! key (Remote-Write 1.0's canonical-form path) uses [`Lowering::key_writer`]
//! and [`Lowering::push`] and falls back to [`Lowering::series`]. Either
//! way the same rules decide what is stored and why anything is rejected.

use crate::model::{
    self, KeySpan, KeyWriter, Metadata, MetricType, RejectReason, Rejection, Sample, SeriesLimits,
    SeriesUpdate, WriteBatch,
};

/// What the lowering needs of one series besides its labels.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeriesSummary {
    /// The sample that decides the series' state ([`latest`] of its samples).
    pub latest: Option<Sample>,
    /// Float samples carried.
    pub samples: u32,
    /// Native histogram samples carried.
    pub histograms: u32,
}

impl SeriesSummary {
    /// Takes one more float sample into account.
    #[inline]
    pub fn add(&mut self, sample: Sample) {
        self.samples += 1;
        self.latest = Some(match self.latest {
            Some(best) if sample.timestamp_ms < best.timestamp_ms => best,
            _ => sample,
        });
    }
}

/// The sample that decides a series' state: the greatest timestamp, and among
/// equal timestamps the last one sent.
pub fn latest(samples: impl Iterator<Item = Sample>) -> Option<Sample> {
    let mut s = SeriesSummary::default();
    samples.for_each(|x| s.add(x));
    s.latest
}

/// Builds a [`WriteBatch`] series by series, whichever decoder feeds it.
pub struct Lowering<'l, 'a> {
    limits: &'l SeriesLimits,
    batch: WriteBatch,
    scratch: Vec<(&'a str, &'a str)>,
}

impl<'l, 'a> Lowering<'l, 'a> {
    /// A lowering into `batch` (cleared first, its buffers kept).
    pub fn new(limits: &'l SeriesLimits, mut batch: WriteBatch) -> Self {
        batch.clear();
        Lowering {
            limits,
            batch,
            scratch: Vec::new(),
        }
    }

    /// A writer of one canonical key straight from wire bytes, for label
    /// sets already in canonical form; see [`KeyWriter`].
    #[inline]
    pub fn key_writer(&mut self) -> KeyWriter<'_, 'a> {
        KeyWriter::new(&mut self.batch.keys, self.limits)
    }

    /// Records a series whose key a [`Lowering::key_writer`] wrote.
    #[inline]
    pub fn push(&mut self, key: KeySpan, latest: Sample, samples: u32) {
        self.batch.series.push(SeriesUpdate {
            key,
            latest,
            samples,
        });
    }

    /// Validates one series and records it, or its rejection.
    ///
    /// Native histogram samples are rejected (reason `native_histogram`):
    /// the text format 0.0.4 cannot carry them. A series with no float
    /// sample records nothing else.
    pub fn series(&mut self, labels: impl Iterator<Item = (&'a str, &'a str)>, s: SeriesSummary) {
        if s.histograms > 0 {
            let detail = format!(
                "native histograms are not supported by the text format ({} in one series)",
                s.histograms
            );
            let rejection = Rejection {
                reason: RejectReason::NativeHistogram,
                detail,
            };
            self.batch.rejected.add(rejection, u64::from(s.histograms));
        }
        let Some(latest) = s.latest else {
            return;
        };
        let b = &mut self.batch;
        match model::build_key(labels, self.limits, &mut self.scratch, &mut b.keys) {
            Ok(key) => b.series.push(SeriesUpdate {
                key,
                latest,
                samples: s.samples,
            }),
            Err(rejection) => b.rejected.add(rejection, u64::from(s.samples)),
        }
    }

    /// Records the metadata of family `name`, or its rejection.
    pub fn metadata(&mut self, name: &str, metric_type: MetricType, help: &str, unit: &str) {
        if !model::is_valid_metric_name(name) {
            let rejection = Rejection {
                reason: RejectReason::InvalidMetricName,
                detail: format!("invalid metric family name {name:?} in metadata"),
            };
            self.batch.rejected.add(rejection, 0);
            return;
        }
        let md = Metadata {
            metric_type,
            help: help.to_string(),
            unit: unit.to_string(),
        };
        self.batch.metadata.push((name.to_string(), md));
    }

    /// The batch built.
    pub fn finish(self) -> WriteBatch {
        self.batch
    }
}
