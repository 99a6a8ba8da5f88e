//! The one lowering every protocol shares: wire labels and samples → a
//! [`WriteBatch`] of validated series with canonical keys.
//!
//! A decoder walks its own wire format and hands each series here as a label
//! iterator and a [`SeriesSummary`]; a decoder with a faster way to write a
//! key (Remote-Write 1.0's canonical-form path) uses [`Lowering::key_writer`]
//! and [`Lowering::push`] and falls back to [`Lowering::series`]. Either
//! way the same rules decide what is stored and why anything is rejected.

use std::borrow::Cow;
use std::time::Duration;

use crate::model::{
    self, BatchHistogram, EXEMPLAR_MAX_LABEL_CHARS, Exemplar, ExemplarRejectReason, HistogramError,
    KeySpan, KeyWriter, KnownNames, Metadata, MetricType, NO_EXEMPLAR, NO_HISTOGRAM,
    NativeHistogram, RejectReason, Rejection, Sample, SeriesLimits, SeriesUpdate, TextSpan,
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
    /// Native histogram messages carried (each goes to
    /// [`Lowering::histogram`] too, which judges them).
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
    /// The native histograms of the series being read, for the next
    /// [`Lowering::series`].
    pending: Histograms,
    /// The names [`Lowering::key_writer`]'s writers found valid.
    known: KnownNames<'a>,
}

/// What [`Lowering::histogram`] made of one series' native histograms.
#[derive(Debug, Default)]
struct Histograms {
    /// Valid, within the time range.
    written: u32,
    /// The latest of those (the last among equal timestamps).
    latest: Option<NativeHistogram>,
    /// Refused by validation, and the first reason.
    invalid: u32,
    error: Option<HistogramError>,
    /// Refused for too many buckets even at the lowest resolution, and
    /// the buckets (or custom bounds) of the first.
    over_limit: u32,
    first_over: usize,
    /// Outside the time range, as [`SeriesSummary::future`] and
    /// [`SeriesSummary::before_epoch`].
    future: (u32, i64),
    before_epoch: (u32, i64),
}

impl<'l, 'a> Lowering<'l, 'a> {
    /// A lowering into `batch` (cleared first, its buffers kept).
    pub fn new(rules: &'l Rules, mut batch: WriteBatch) -> Self {
        batch.clear();
        Lowering {
            rules,
            batch,
            scratch: Vec::new(),
            pending: Histograms::default(),
            known: KnownNames::default(),
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
        KeyWriter::new(&mut self.batch.keys, &self.rules.series, &mut self.known)
    }

    /// Rejects one metadata entry for `rejection`.
    pub fn reject_metadata(&mut self, rejection: Rejection) {
        self.batch.rejected.add_metadata(rejection);
    }

    /// Rejects a whole series for `rejection`, with the samples (and
    /// histograms) it carried.
    pub fn reject(&mut self, rejection: Rejection, samples: u64) {
        self.pending = Histograms::default();
        self.batch.rejected.add(rejection, samples);
    }

    /// Takes one native histogram message (1.0's `prometheus.Histogram`,
    /// 2.0's `io.prometheus.write.v2.Histogram` when `v2`) of the series the
    /// next [`Lowering::series`] records: decoded and validated as
    /// Prometheus' receiver validates it (`NativeHistogram::from_raw`), its
    /// timestamp held to the time range as a float sample's, its buckets
    /// (and custom bounds) to `--limits.native-histogram-buckets`: more
    /// are merged by lowering its resolution
    /// ([`NativeHistogram::limit_buckets`]), and a histogram still over
    /// at the lowest is refused. The decoder has checked the message's
    /// framing already.
    pub fn histogram(&mut self, message: &[u8], v2: bool) {
        let p = &mut self.pending;
        let max = self.rules.series.max_histogram_buckets;
        // A histogram no lowering of its resolution could bring within the
        // limit is refused before its buckets are decoded (a tiny
        // compressed run of zero deltas would otherwise cost gigabytes).
        if max > 0
            && let Ok(longest) = super::histogram::longest_bucket_list(message)
            && longest > max.saturating_mul(super::histogram::MOST_MERGED)
        {
            if p.over_limit == 0 {
                p.first_over = longest;
            }
            p.over_limit += 1;
            return;
        }
        match NativeHistogram::decode(message, v2) {
            Err(e) => {
                p.invalid += 1;
                p.error.get_or_insert(e);
            }
            Ok(mut h) => {
                if max > 0 {
                    let reduced = match h.limit_buckets(max) {
                        None => None,
                        Some(Cow::Owned(r)) => Some(Some(r)),
                        Some(Cow::Borrowed(_)) => Some(None),
                    };
                    match reduced {
                        None => {
                            if p.over_limit == 0 {
                                p.first_over = h.bucket_count().max(h.custom_values().len());
                            }
                            p.over_limit += 1;
                            return;
                        }
                        Some(Some(r)) => h = r,
                        Some(None) => {}
                    }
                }
                let t = h.timestamp_ms();
                if self.rules.timestamps.contains(t) {
                    p.written += 1;
                    if p.latest.as_ref().is_none_or(|l| t >= l.timestamp_ms()) {
                        p.latest = Some(h);
                    }
                } else if t <= 0 {
                    if p.before_epoch.0 == 0 {
                        p.before_epoch.1 = t;
                    }
                    p.before_epoch.0 += 1;
                } else {
                    p.future = (p.future.0 + 1, p.future.1.max(t));
                }
            }
        }
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
            histogram: NO_HISTOGRAM,
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
    /// Its native histograms are those given to [`Lowering::histogram`]
    /// since the last series: an invalid one is refused
    /// (`invalid_native_histogram`), the others written, and the latest
    /// of them decides the series' state unless a float sample is later
    /// (a histogram wins a tie: senders write it after the samples). A
    /// histogram whose sum is the staleness marker is a stale marker.
    /// A series with nothing valid records nothing else.
    pub fn series(
        &mut self,
        labels: impl Iterator<Item = (&'a str, &'a str)>,
        mut s: SeriesSummary,
    ) {
        let h = std::mem::take(&mut self.pending);
        for (mine, theirs) in [
            (&mut s.future, h.future),
            (&mut s.before_epoch, h.before_epoch),
        ] {
            if theirs.0 > 0 {
                if mine.0 == 0 {
                    mine.1 = theirs.1;
                } else if theirs.1 > 0 {
                    mine.1 = mine.1.max(theirs.1);
                }
                mine.0 += theirs.0;
            }
        }
        let mut whole = s.latest.is_none() && h.latest.is_none();
        if let Some(error) = &h.error {
            let rejection = Rejection {
                reason: RejectReason::InvalidNativeHistogram,
                detail: format!("native histogram refused: {error}"),
            };
            self.count(rejection, h.invalid, &mut whole);
        }
        if h.over_limit > 0 {
            let rejection = Rejection {
                reason: RejectReason::NativeHistogramBucketLimit,
                detail: format!(
                    "native histogram of {} buckets refused: more than --limits.native-histogram-buckets {} even at the lowest resolution",
                    h.first_over, self.rules.series.max_histogram_buckets
                ),
            };
            self.count(rejection, h.over_limit, &mut whole);
        }
        self.timestamp_rejections(&s, &mut whole);
        let (latest, histogram) = match (s.latest, h.latest) {
            (None, None) => return,
            (Some(float), None) => (float, None),
            (Some(float), Some(x)) if float.timestamp_ms > x.timestamp_ms() => (float, None),
            (_, Some(x)) => {
                let t = x.timestamp_ms();
                if model::is_stale_marker(x.sum()) {
                    let marker = f64::from_bits(model::STALE_NAN_BITS);
                    (
                        Sample {
                            value: marker,
                            timestamp_ms: t,
                        },
                        None,
                    )
                } else {
                    (
                        Sample {
                            value: x.count(),
                            timestamp_ms: t,
                        },
                        Some(x),
                    )
                }
            }
        };
        let b = &mut self.batch;
        match model::build_key(labels, &self.rules.series, &mut self.scratch, &mut b.keys) {
            Ok(key) => {
                let mut update = SeriesUpdate {
                    key,
                    latest,
                    samples: s.samples,
                    exemplars: 0,
                    exemplar: NO_EXEMPLAR,
                    histogram: NO_HISTOGRAM,
                };
                if h.written > 0 {
                    update.histogram = b.histograms.len() as u32;
                    b.histograms.push(BatchHistogram {
                        written: h.written,
                        latest: histogram,
                    });
                }
                b.series.push(update);
            }
            Err(rejection) => b.rejected.add(rejection, u64::from(s.samples + h.written)),
        }
    }

    /// Records the samples of `s` stamped outside the time range; the
    /// series counts as rejected too when none of its samples is left.
    fn timestamp_rejections(&mut self, s: &SeriesSummary, whole: &mut bool) {
        let range = self.rules.timestamps;
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
            self.count(rejection, n, whole);
        }
        let (n, t) = s.before_epoch;
        if n > 0 {
            let rejection = Rejection {
                reason: RejectReason::TimestampNotAfterEpoch,
                detail: format!(
                    "sample timestamp {t} ms is not after the Unix epoch: scrapers cannot read it"
                ),
            };
            self.count(rejection, n, whole);
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
