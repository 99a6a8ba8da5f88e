//! The one lowering every protocol shares: wire labels and samples → a
//! [`WriteBatch`] of validated series with canonical keys.
//!
//! A decoder walks its own wire format and hands each series here as a label
//! iterator and a [`SeriesSummary`]; a decoder with a faster way to write a
//! key (Remote-Write 1.0's canonical-form path) uses [`Lowering::key_writer`]
//! and [`Lowering::push`] and falls back to [`Lowering::series`]. Either
//! way the same rules decide what is stored and why anything is rejected.

use std::time::Duration;

use crate::model::{
    self, EXEMPLAR_MAX_LABEL_CHARS, Exemplar, ExemplarRejectReason, KeySpan, KeyWriter, Metadata,
    MetricType, NO_EXEMPLAR, RejectReason, Rejection, Sample, SeriesLimits, SeriesUpdate, TextSpan,
    WriteBatch,
};

/// The sample timestamps a request may carry, in milliseconds since the
/// Unix epoch: after the epoch (the text format's scrapers read unsigned
/// timestamps only, and drop or restamp 0), and no further ahead of
/// promgate's clock than the future window, when one is set.
#[derive(Clone, Copy, Debug)]
pub struct TimeRange {
    /// The latest timestamp accepted.
    pub max_ms: i64,
    /// The future window it was computed from, for messages.
    pub window: Option<Duration>,
}

impl TimeRange {
    /// Samples up to `window` ahead of `now_ms`; any positive timestamp
    /// when `window` is `None`.
    pub fn new(now_ms: i64, window: Option<Duration>) -> Self {
        let max_ms = window.map_or(i64::MAX, |w| {
            now_ms.saturating_add(i64::try_from(w.as_millis()).unwrap_or(i64::MAX))
        });
        TimeRange { max_ms, window }
    }

    /// Is `t` a timestamp a sample may carry?
    #[inline(always)]
    pub fn contains(&self, t: i64) -> bool {
        t > 0 && t <= self.max_ms
    }
}

/// What a lowering accepts: the per-series limits and the time range.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// Per-series limits.
    pub series: SeriesLimits,
    /// Accepted sample timestamps.
    pub timestamps: TimeRange,
}

/// What the lowering needs of one series besides its labels.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeriesSummary {
    /// The sample that decides the series' state (see [`summarize`]).
    pub latest: Option<Sample>,
    /// Float samples carried within the time range.
    pub samples: u32,
    /// Native histogram samples carried.
    pub histograms: u32,
    /// Samples stamped beyond the time range, and the furthest of them.
    pub future: (u32, i64),
    /// Samples stamped at or before the epoch, and the first of them.
    pub before_epoch: (u32, i64),
}

impl SeriesSummary {
    /// Takes one more float sample, known to be within the time range, into account.
    #[inline]
    pub fn add(&mut self, sample: Sample) {
        self.samples += 1;
        self.latest = Some(match self.latest {
            Some(best) if sample.timestamp_ms < best.timestamp_ms => best,
            _ => sample,
        });
    }

    /// Takes one more float sample into account, counting it apart when its
    /// timestamp is outside `range`.
    #[inline]
    pub fn add_checked(&mut self, sample: Sample, range: &TimeRange) {
        let t = sample.timestamp_ms;
        if range.contains(t) {
            self.add(sample);
        } else if t <= 0 {
            if self.before_epoch.0 == 0 {
                self.before_epoch.1 = t;
            }
            self.before_epoch.0 += 1;
        } else {
            self.future = (self.future.0 + 1, self.future.1.max(t));
        }
    }
}

/// The summary of a series' float samples: the one that decides its state
/// is the greatest timestamp, and among equal timestamps the last one sent;
/// samples outside `range` are counted apart and never decide.
pub fn summarize(samples: impl Iterator<Item = Sample>, range: &TimeRange) -> SeriesSummary {
    let mut s = SeriesSummary::default();
    samples.for_each(|x| s.add_checked(x, range));
    s
}

/// Builds a [`WriteBatch`] series by series, whichever decoder feeds it.
pub struct Lowering<'l, 'a> {
    rules: &'l Rules,
    batch: WriteBatch,
    scratch: Vec<(&'a str, &'a str)>,
}

impl<'l, 'a> Lowering<'l, 'a> {
    /// A lowering into `batch` (cleared first, its buffers kept).
    pub fn new(rules: &'l Rules, mut batch: WriteBatch) -> Self {
        batch.clear();
        Lowering {
            rules,
            batch,
            scratch: Vec::new(),
        }
    }

    /// The sample timestamps accepted.
    #[inline]
    pub fn time_range(&self) -> &'l TimeRange {
        &self.rules.timestamps
    }

    /// A writer of one canonical key straight from wire bytes, for label
    /// sets already in canonical form; see [`KeyWriter`].
    #[inline]
    pub fn key_writer(&mut self) -> KeyWriter<'_, 'a> {
        KeyWriter::new(&mut self.batch.keys, &self.rules.series)
    }

    /// Rejects one metadata entry for `rejection`.
    pub fn reject_metadata(&mut self, rejection: Rejection) {
        self.batch.rejected.add_metadata(rejection);
    }

    /// Rejects a whole series for `rejection`, with the samples it carried.
    pub fn reject(&mut self, rejection: Rejection, samples: u64) {
        self.batch.rejected.add(rejection, samples);
    }

    /// Records a series whose key a [`Lowering::key_writer`] wrote.
    #[inline]
    pub fn push(&mut self, key: KeySpan, latest: Sample, samples: u32) {
        self.batch.series.push(SeriesUpdate {
            key,
            latest,
            samples,
            exemplars: 0,
            exemplar: NO_EXEMPLAR,
        });
    }

    /// Takes one exemplar of the series recorded last; the caller gives a
    /// series' exemplars, in the order sent, right after recording it
    /// (when [`Lowering::recorded`] grew), and gives none of a series it
    /// did not record.
    ///
    /// An exemplar whose label names and values hold more than
    /// [`EXEMPLAR_MAX_LABEL_CHARS`] characters, or whose label set has an
    /// empty name or a name twice, is refused and counted
    /// ([`ExemplarRejectReason`]); its series stays. Any other is counted as
    /// written, and kept when its timestamp is the greatest so far (the
    /// later among equals, as for samples): its labels sorted by name
    /// (as Prometheus' receiver sorts them) and rendered into the arena,
    /// replacing the series' exemplar kept before, which is the last text
    /// written there.
    pub fn exemplar(
        &mut self,
        labels: impl Iterator<Item = (&'a str, &'a str)>,
        value: f64,
        timestamp_ms: i64,
    ) {
        let scratch = &mut self.scratch;
        scratch.clear();
        scratch.extend(labels);
        let b = &mut self.batch;
        let Some(last) = b.series.last_mut() else {
            return;
        };
        if timestamp_ms != 0 && !self.rules.timestamps.contains(timestamp_ms) {
            b.rejected
                .add_exemplar(ExemplarRejectReason::TimestampOutOfRange);
            return;
        }
        let chars: usize = scratch
            .iter()
            .map(|(n, v)| n.chars().count() + v.chars().count())
            .sum();
        if chars > EXEMPLAR_MAX_LABEL_CHARS {
            b.rejected.add_exemplar(ExemplarRejectReason::LabelsTooLong);
            return;
        }
        scratch.sort_unstable_by(|x, y| x.0.cmp(y.0));
        let empty_name = scratch.first().is_some_and(|(n, _)| n.is_empty());
        if empty_name || scratch.windows(2).any(|w| w[0].0 == w[1].0) {
            b.rejected.add_exemplar(ExemplarRejectReason::InvalidLabels);
            return;
        }
        last.exemplars += 1;
        let kept = b.exemplars.get(last.exemplar as usize);
        if kept.is_some_and(|e| timestamp_ms < e.timestamp_ms) {
            return;
        }
        if let Some(e) = kept {
            // The text of the exemplar it replaces is the arena's tail.
            debug_assert_eq!((e.labels.start + e.labels.len) as usize, b.keys.len());
            b.keys.truncate(e.labels.start as usize);
        }
        let start = b.keys.len();
        model::write_label_text(&mut b.keys, scratch.iter().copied());
        let exemplar = Exemplar {
            labels: TextSpan {
                start: start as u32,
                len: (b.keys.len() - start) as u32,
            },
            value,
            timestamp_ms,
        };
        match b.exemplars.get_mut(last.exemplar as usize) {
            Some(e) => *e = exemplar,
            None => {
                last.exemplar = b.exemplars.len() as u32;
                b.exemplars.push(exemplar);
            }
        }
    }

    /// Series recorded so far.
    pub fn recorded(&self) -> usize {
        self.batch.series.len()
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
        self.timestamp_rejections(&s);
        let Some(latest) = s.latest else {
            return;
        };
        let b = &mut self.batch;
        match model::build_key(labels, &self.rules.series, &mut self.scratch, &mut b.keys) {
            Ok(key) => b.series.push(SeriesUpdate {
                key,
                latest,
                samples: s.samples,
                exemplars: 0,
                exemplar: NO_EXEMPLAR,
            }),
            Err(rejection) => b.rejected.add(rejection, u64::from(s.samples)),
        }
    }

    /// Records the samples of `s` stamped outside the time range; the
    /// series counts as rejected too when none of its samples is left.
    fn timestamp_rejections(&mut self, s: &SeriesSummary) {
        let range = self.rules.timestamps;
        let mut whole = s.latest.is_none() && s.histograms == 0;
        let (n, t) = s.future;
        if n > 0 {
            let window = range.window.map_or_else(String::new, |w| {
                format!(
                    " (--limits.future-time-window {})",
                    humantime::format_duration(w)
                )
            });
            let rejection = Rejection {
                reason: RejectReason::TimestampTooFarInFuture,
                detail: format!(
                    "sample timestamp {t} ms is more than {} ms ahead of promgate's clock{window}",
                    range.window.map_or(0, |w| w.as_millis())
                ),
            };
            self.count(rejection, n, &mut whole);
        }
        let (n, t) = s.before_epoch;
        if n > 0 {
            let rejection = Rejection {
                reason: RejectReason::TimestampNotAfterEpoch,
                detail: format!(
                    "sample timestamp {t} ms is not after the Unix epoch: scrapers cannot read it"
                ),
            };
            self.count(rejection, n, &mut whole);
        }
    }

    /// Counts `samples` rejected for `rejection`, and the series with them
    /// the first time when `whole`.
    fn count(&mut self, rejection: Rejection, samples: u32, whole: &mut bool) {
        if std::mem::take(whole) {
            self.batch.rejected.add(rejection, u64::from(samples));
        } else {
            self.batch
                .rejected
                .add_samples(rejection, u64::from(samples));
        }
    }

    /// Records the metadata of family `name`, or its rejection.
    pub fn metadata(&mut self, name: &str, metric_type: MetricType, help: &str, unit: &str) {
        // Any non-empty UTF-8 name, as for series (`model::key`), within
        // the length a `__name__` value may have.
        if name.is_empty() || name.len() > self.rules.series.max_value_len {
            let rejection = Rejection {
                reason: RejectReason::InvalidMetricName,
                detail: format!(
                    "metric family name of {} bytes in metadata: empty or over the limit of {}",
                    name.len(),
                    self.rules.series.max_value_len
                ),
            };
            self.batch.rejected.add_metadata(rejection);
            return;
        }
        let max = self.rules.series.max_help_len;
        if let Some((what, len)) = [("HELP", help.len()), ("unit", unit.len())]
            .into_iter()
            .find(|&(_, len)| len > max)
        {
            let rejection = Rejection {
                reason: RejectReason::MetadataTooLong,
                detail: format!(
                    "{what} of family {name:?} has {len} bytes, more than the limit of {max}"
                ),
            };
            self.batch.rejected.add_metadata(rejection);
            return;
        }
        let md = Metadata {
            metric_type,
            help: help.to_string(),
            unit: unit.to_string(),
        };
        // Keyed as the store names the family's series (`model::key_name`).
        self.batch
            .metadata
            .push((model::store_name(name).into_owned(), md));
    }

    /// The batch built.
    pub fn finish(self) -> WriteBatch {
        self.batch
    }
}
