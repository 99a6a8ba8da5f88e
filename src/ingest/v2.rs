//! Remote-Write 2.0 (`io.prometheus.write.v2.Request`, specification
//! 2.0-rc.4) → [`WriteBatch`].
//!
//! Strings come from the request's symbols table, read once per request
//! and borrowed from the body; series are then lowered exactly as 1.0's,
//! by the same [`Lowering`]. What 2.0 adds:
//!
//! - `symbols[0]` must be `""` (a request that breaks this is refused as a
//!   whole: nothing in it can be trusted to mean what the sender meant);
//! - a series whose `labels_refs` has an odd length, or whose references
//!   (labels, exemplar labels, help, unit) fall outside the table, is
//!   rejected (`invalid_symbol_reference`), as is one with neither samples
//!   nor histograms (`empty_series`), or one whose strings are not UTF-8;
//! - metadata comes with every series: its type, help and unit feed the
//!   family (see [`crate::model::family_name`]) as 1.0's separate metadata
//!   does;
//! - exemplars are validated and counted (written with their series), and
//!   the latest of each series kept (see [`Lowering::exemplar`]); native
//!   histograms are decoded, validated and written (see
//!   [`Lowering::histogram`]), an invalid one refused
//!   (`invalid_native_histogram`) with the rest of the request still stored;
//! - start timestamps (rc.4's `Sample.start_timestamp` and
//!   `Histogram.start_timestamp`, rc.3's `TimeSeries.created_timestamp`)
//!   are read past: the text format 0.0.4
//!   has no place for them.
//!
//! [`decode_with_prost`] is the reference the fast path is tested against.

use std::collections::HashMap;

use prost::Message;

use super::Error;
use super::lower::{Lowering, Rules, SeriesSummary, TimeRange, summarize};
use super::v1::{histogram, metric_type_of, sample, utf8};
use super::wire::{FIXED64, LEN, Reader, VARINT, expect};
use crate::model::{self, RejectReason, Rejection, Sample, SymbolFacts, WriteBatch};
use crate::proto::v2::lenient;

/// The symbols table of one request, borrowed from its body.
///
/// Each entry is the offset in the body of the symbol's length prefix, the
/// top bit set when the string is not UTF-8: four bytes per symbol, where
/// each takes at least two on the wire, so a table of a million empty
/// strings (a few hundred bytes of zstd) costs at most twice the decoded
/// body, which the decoded-size limit bounds. In a body shorter than
/// 2^28 bytes (any, under the default limit) the next three bits carry
/// the symbol's [`SymbolFacts`], found once when the table is read rather
/// than at each of its references.
struct Symbols<'a> {
    body: &'a [u8],
    at: &'a [u32],
    /// The bits of an entry that are its offset.
    offset: u32,
}

/// The top bit of an entry of [`Symbols::at`]: not UTF-8.
const NOT_UTF8: u32 = 1 << 31;
/// Bits of an entry in a body shorter than 2^28 bytes: the [`SymbolFacts`].
const LABEL_NAME: u32 = 1 << 30;
const METRIC_NAME: u32 = 1 << 29;
const PLAIN_VALUE: u32 = 1 << 28;
/// The offset bits of an entry that carries facts.
const FACTS_OFFSET: u32 = PLAIN_VALUE - 1;

impl<'a> Symbols<'a> {
    fn len(&self) -> usize {
        self.at.len()
    }

    /// Symbol `i`: `None` out of range, `Err(())` not UTF-8.
    #[inline(always)]
    fn get(&self, i: u32) -> Option<Result<&'a str, ()>> {
        self.get_with_facts(i).map(|s| s.map(|(text, _)| text))
    }

    /// Is reference `i` in range and its symbol UTF-8?
    #[inline(always)]
    fn is_valid(&self, i: u32) -> bool {
        self.at.get(i as usize).is_some_and(|&e| e & NOT_UTF8 == 0)
    }

    /// Symbol `i` with its facts (all false where the table has none).
    ///
    /// Always inlined: a request resolves two symbols per label of every
    /// series, and out of line each call returned its answer through
    /// memory, a fifth of the 2.0 decode and apply (callgrind).
    #[inline(always)]
    fn get_with_facts(&self, i: u32) -> Option<Result<(&'a str, SymbolFacts), ()>> {
        let &entry = self.at.get(i as usize)?;
        if entry & NOT_UTF8 != 0 {
            return Some(Err(()));
        }
        let at = (entry & self.offset) as usize;
        // Nearly every symbol is shorter than 128 bytes: a one-byte length.
        let bytes = match self.body.get(at) {
            Some(&len) if len < 0x80 => &self.body[at + 1..at + 1 + usize::from(len)],
            _ => Reader::new(&self.body[at..])
                .bytes()
                .expect("read when the table was built"),
        };
        let facts = if self.offset == FACTS_OFFSET {
            SymbolFacts {
                label_name: entry & LABEL_NAME != 0,
                metric_name: entry & METRIC_NAME != 0,
                plain_value: entry & PLAIN_VALUE != 0,
            }
        } else {
            SymbolFacts::default()
        };
        // SAFETY: `symbols` checked these bytes for UTF-8 when it built the
        // table (entries that failed carry NOT_UTF8 and returned above), and
        // the body is borrowed immutably for the table's whole life. Checking
        // again at each reference cost a tenth of the 2.0 decode (criterion).
        Some(Ok((unsafe { std::str::from_utf8_unchecked(bytes) }, facts)))
    }
}

/// Reads the symbols table (field 4), wherever it stands in the message,
/// into `at` (see [`Symbols`]); with it, the offset of the first field that
/// is not a symbol: the message is valid up to there, and holds nothing
/// else, so the series can be read from there on.
fn symbols<'a>(body: &'a [u8], at: &'a mut Vec<u32>) -> Result<(Symbols<'a>, usize), Error> {
    at.clear();
    let with_facts = body.len() <= FACTS_OFFSET as usize;
    let mut first_other = None;
    let mut r = Reader::new(body);
    while r.has_more() {
        let field_at = body.len() - r.rest().len();
        let (field, wire) = r.key()?;
        if field == 4 {
            expect(wire, LEN)?;
            let offset = (body.len() - r.rest().len()) as u32;
            let bytes = r.bytes()?;
            let entry = if with_facts {
                let facts = SymbolFacts::of(bytes);
                // A plain value is ASCII, so UTF-8: most symbols need no
                // second pass.
                if !facts.plain_value && utf8(bytes).is_none() {
                    offset | NOT_UTF8
                } else {
                    offset
                        | if facts.label_name { LABEL_NAME } else { 0 }
                        | if facts.metric_name { METRIC_NAME } else { 0 }
                        | if facts.plain_value { PLAIN_VALUE } else { 0 }
                }
            } else if utf8(bytes).is_none() {
                offset | NOT_UTF8
            } else {
                offset
            };
            at.push(entry);
        } else {
            first_other.get_or_insert(field_at);
            // Each series is passed over here once: its length read inline.
            if wire == LEN {
                r.bytes()?;
            } else {
                r.skip(field, wire)?;
            }
        }
    }
    let symbols = Symbols {
        body,
        at,
        offset: if with_facts { FACTS_OFFSET } else { !NOT_UTF8 },
    };
    if symbols.len() > 0 && symbols.get(0) != Some(Ok("")) {
        return Err(Error::InvalidRequest(
            "symbols[0] must be the empty string".into(),
        ));
    }
    Ok((symbols, first_other.unwrap_or(body.len())))
}

/// Decodes a decompressed `io.prometheus.write.v2.Request` and lowers it.
///
/// # Errors
///
/// [`Error::ProtobufV2`] when the framing is not a valid message;
/// [`Error::InvalidRequest`] when `symbols[0]` is not the empty string.
pub fn decode(buf: &[u8], rules: &Rules) -> Result<WriteBatch, Error> {
    let mut batch = WriteBatch::default();
    decode_into(buf, rules, &mut batch)?;
    Ok(batch)
}

/// [`decode`] into `batch`, cleared first, whose buffers are reused.
pub fn decode_into(buf: &[u8], rules: &Rules, batch: &mut WriteBatch) -> Result<(), Error> {
    decode_reusing(buf, rules, batch, &mut Vec::new())
}

/// [`decode_into`] with the symbols table's buffer kept by the caller too.
pub fn decode_reusing(
    buf: &[u8],
    rules: &Rules,
    batch: &mut WriteBatch,
    table: &mut Vec<u32>,
) -> Result<(), Error> {
    let mut lowering = Lowering::new(rules, std::mem::take(batch));
    let result = decode_fields(buf, &mut lowering, table).map_err(|e| match e {
        Error::Protobuf(detail) => Error::ProtobufV2(detail),
        other => other,
    });
    *batch = lowering.finish();
    result
}

fn decode_fields<'a>(
    buf: &'a [u8],
    lowering: &mut Lowering<'_, 'a>,
    table: &'a mut Vec<u32>,
) -> Result<(), Error> {
    // Senders write the symbols first: the second pass starts after them
    // instead of skipping each one again.
    let (symbols, series_at) = symbols(buf, table)?;
    let range = *lowering.time_range();
    let mut refs = Refs {
        packed: None,
        labels: Vec::new(),
        exemplars: Vec::new(),
        each: Vec::new(),
        histograms: Vec::new(),
        metadata: None,
    };
    let mut labels: Vec<(&'a str, &'a str)> = Vec::new();
    // Metadata repeats with every series: a family's (type, help, unit) is
    // lowered when it differs from the one last lowered for that family in
    // this request, so the last series' metadata wins as 1.0's entries,
    // applied in order, do (A, B, A ends on A). A family's series mostly
    // come together, so the last series' metadata, with its name as the
    // very same symbol (address and length: no string compare, no family
    // name to find), is compared first; a series that matches it changes
    // nothing.
    let mut lowered = HashMap::with_hasher(foldhash::fast::RandomState::default());
    let mut last = None;
    let mut r = Reader::new(&buf[series_at..]);
    while r.has_more() {
        let (field, wire) = r.key()?;
        if field != 5 {
            r.skip(field, wire)?;
            continue;
        }
        expect(wire, LEN)?;
        let message = r.bytes()?;
        let series = time_series(message, &mut refs, &range)?;
        let before = lowering.recorded();
        let name = match fast_series(lowering, &series, &refs, &symbols) {
            Some(name) => name,
            None => {
                // The fast path reads packed references straight from the
                // body; the general one wants them in a list (and a
                // malformed list fails the request, as prost fails it).
                if let Some(packed) = refs.packed.take() {
                    packed_uint32s(packed, &mut refs.labels)?;
                }
                let written = series.summary.samples + series.summary.histograms;
                let carried = written + series.summary.future.0 + series.summary.before_epoch.0;
                let resolved = resolve(&series, &refs, &symbols, &mut labels);
                let fault = resolved.err().or_else(|| {
                    (carried == 0).then(|| Rejection {
                        reason: RejectReason::EmptySeries,
                        detail: "a series has neither samples nor histograms".into(),
                    })
                });
                if let Some(rejection) = fault {
                    lowering.reject(rejection, u64::from(carried));
                    continue;
                }
                for &(start, end) in &refs.histograms {
                    lowering.histogram(&message[start..end], true);
                }
                lowering.series(labels.iter().copied(), series.summary);
                match labels.iter().find(|(n, _)| *n == "__name__") {
                    Some((_, v)) => v,
                    None => continue,
                }
            }
        };
        if lowering.recorded() == before {
            continue;
        }
        let mut start = 0;
        for &(end, value, timestamp) in &refs.each {
            // Every reference was resolved with the series.
            let text = |i: &u32| symbols.get(*i).and_then(Result::ok).unwrap_or_default();
            let pairs = refs.exemplars[start..end].chunks_exact(2);
            lowering.exemplar(pairs.map(|p| (text(&p[0]), text(&p[1]))), value, timestamp);
            start = end;
        }
        let (metric_type, help, unit) = series.metadata;
        if metric_type != 0 || help != 0 || unit != 0 {
            let same = (name.as_ptr(), name.len(), metric_type, help, unit);
            if last == Some(same) {
                continue;
            }
            last = Some(same);
            let t = metric_type_of(metric_type);
            let family = model::family_name(name, t);
            if lowered.insert(family, (metric_type, help, unit)) != Some((metric_type, help, unit))
            {
                // Both were resolved with the series.
                let text = |i: u32| symbols.get(i).and_then(Result::ok).unwrap_or_default();
                lowering.metadata(family, t, text(help), text(unit));
            }
        }
    }
    Ok(())
}

/// The fast path, for a series as Prometheus sends it: float samples in
/// the time range, no exemplars, every reference in range and UTF-8, labels
/// in canonical form (`__name__` first, then names strictly increasing, as
/// the specification requires them sorted). Writes the key straight from
/// the symbols, with no label list, and returns the metric name; `None`
/// (nothing recorded) for anything else, which the general path handles.
#[inline]
fn fast_series<'a>(
    lowering: &mut Lowering<'_, 'a>,
    series: &SeriesRead,
    refs: &Refs<'a>,
    symbols: &Symbols<'a>,
) -> Option<&'a str> {
    let s = &series.summary;
    let latest = s.latest?;
    if s.histograms > 0 || s.future.0 > 0 || s.before_epoch.0 > 0 || series.exemplars > 0 {
        return None;
    }
    let (_, help, unit) = series.metadata;
    if !symbols.is_valid(help) || !symbols.is_valid(unit) {
        return None;
    }
    // Senders pack the references in one field; the list is then read
    // here, pair by pair, with no vector in between (that vector cost 9%
    // of a 2.0 round: callgrind, examples/rw2_phases.rs).
    let mut packed = refs.packed.filter(|p| !p.is_empty())?;
    let mut key = lowering.key_writer();
    let facts = symbols.offset == FACTS_OFFSET;
    // The first label written is `__name__` (both writers insist).
    let mut name = "";
    while !packed.is_empty() {
        let Some(pair) = next_ref(&mut packed).zip(next_ref(&mut packed)) else {
            // A malformed or odd list: the general path says which.
            key.abandon();
            return None;
        };
        let label = (
            symbols.get_with_facts(pair.0),
            symbols.get_with_facts(pair.1),
        );
        let written = match label {
            (Some(Ok(n)), Some(Ok(v))) if facts => key.checked_label(n, v),
            (Some(Ok((n, _))), Some(Ok((v, _)))) => key.label(n.as_bytes(), v.as_bytes()),
            _ => false,
        };
        if !written {
            key.abandon();
            return None;
        }
        if name.is_empty()
            && let Some(Ok((v, _))) = label.1
        {
            name = v;
        }
    }
    let span = key.finish()?;
    lowering.push(span, latest, s.samples);
    Some(name)
}

/// A series' `Metadata`: `(type, help_ref, unit_ref)`.
type MetadataRefs = (i32, u32, u32);

/// One `TimeSeries`, read but not yet resolved against the symbols.
struct SeriesRead {
    summary: SeriesSummary,
    exemplars: u32,
    /// An exemplar's fault, found while reading it.
    exemplar_fault: Option<Rejection>,
    metadata: MetadataRefs,
}

/// What a series' references are checked in: the series' own label
/// references, then every exemplar's, in the order they came.
struct Refs<'a> {
    /// The series' label references as sent, when they came in one packed
    /// field (as every encoder sends them) and are not yet in `labels`.
    packed: Option<&'a [u8]>,
    labels: Vec<u32>,
    exemplars: Vec<u32>,
    /// Per exemplar: the end of its references in `exemplars`, its value
    /// and its timestamp.
    each: Vec<(usize, f64, i64)>,
    /// Each native histogram message: its start and end in the series.
    histograms: Vec<(usize, usize)>,
    /// The last `Metadata` read as a series' first, and what it holds.
    metadata: Option<(&'a [u8], MetadataRefs)>,
}

/// Resolves a series' label references into `labels`, and checks its
/// other references: the series' fault, if any.
fn resolve<'a>(
    series: &SeriesRead,
    refs: &Refs<'a>,
    symbols: &Symbols<'a>,
    labels: &mut Vec<(&'a str, &'a str)>,
) -> Result<(), Rejection> {
    labels.clear();
    if let Some(fault) = &series.exemplar_fault {
        return Err(fault.clone());
    }
    if !refs.labels.len().is_multiple_of(2) {
        return Err(odd("a series", refs.labels.len()));
    }
    for pair in refs.labels.chunks_exact(2) {
        labels.push((symbol(symbols, pair[0])?, symbol(symbols, pair[1])?));
    }
    let (_, help, unit) = series.metadata;
    symbol(symbols, help)?;
    symbol(symbols, unit)?;
    for &i in &refs.exemplars {
        symbol(symbols, i)?;
    }
    Ok(())
}

/// The rejection of a `labels_refs` list of odd length.
fn odd(of: &str, len: usize) -> Rejection {
    Rejection {
        reason: RejectReason::InvalidSymbolReference,
        detail: format!("labels_refs of {of} has an odd length ({len})"),
    }
}

/// The string of reference `i`, if it is in range and UTF-8.
fn symbol<'a>(symbols: &Symbols<'a>, i: u32) -> Result<&'a str, Rejection> {
    match symbols.get(i) {
        Some(Ok(s)) => Ok(s),
        Some(Err(())) => Err(Rejection {
            reason: RejectReason::InvalidUtf8,
            detail: format!("symbol {i} is not valid UTF-8"),
        }),
        None => Err(Rejection {
            reason: RejectReason::InvalidSymbolReference,
            detail: format!(
                "symbol reference {i} is out of range ({} symbols)",
                symbols.len()
            ),
        }),
    }
}

/// Appends a repeated `uint32` field's elements, packed or not, to `out`.
#[inline]
fn uint32s(r: &mut Reader<'_>, wire: u8, out: &mut Vec<u32>) -> Result<(), Error> {
    match wire {
        VARINT => out.push(r.varint()? as u32),
        LEN => packed_uint32s(r.bytes()?, out)?,
        _ => {
            return Err(Error::Protobuf(
                "invalid wire type for a known field".into(),
            ));
        }
    }
    Ok(())
}

/// Appends the elements of a packed `uint32` list to `out`.
fn packed_uint32s(mut rest: &[u8], out: &mut Vec<u32>) -> Result<(), Error> {
    out.reserve(rest.len());
    while !rest.is_empty() {
        match next_ref(&mut rest) {
            Some(i) => out.push(i),
            None => {
                // The reader's error says what is wrong with the varint.
                Reader::new(rest).varint()?;
                return Err(Error::Protobuf("malformed packed varint".into()));
            }
        }
    }
    Ok(())
}

/// Takes the next varint of a packed `uint32` list off `rest` (truncated
/// to 32 bits, as prost reads a `uint32`); `None` at the end of the list or
/// on a malformed varint, `rest` then unchanged.
///
/// References into a table of up to 16384 symbols take one or two bytes:
/// those are read inline, anything longer out of line.
#[inline(always)]
fn next_ref(rest: &mut &[u8]) -> Option<u32> {
    match **rest {
        [b0, ref tail @ ..] if b0 < 0x80 => {
            *rest = tail;
            Some(u32::from(b0))
        }
        [b0, b1, ref tail @ ..] if b1 < 0x80 => {
            *rest = tail;
            Some(u32::from(b0 & 0x7f) | u32::from(b1) << 7)
        }
        _ => next_ref_slow(rest),
    }
}

#[inline(never)]
fn next_ref_slow(rest: &mut &[u8]) -> Option<u32> {
    let mut r = Reader::new(rest);
    let value = r.varint().ok()? as u32;
    *rest = r.rest();
    Some(value)
}

/// Reads one `TimeSeries`: its references into `refs`, the rest summarised.
fn time_series<'a>(
    buf: &'a [u8],
    refs: &mut Refs<'a>,
    range: &TimeRange,
) -> Result<SeriesRead, Error> {
    refs.packed = None;
    refs.labels.clear();
    refs.exemplars.clear();
    refs.each.clear();
    refs.histograms.clear();
    let mut s = SeriesRead {
        summary: SeriesSummary::default(),
        exemplars: 0,
        exemplar_fault: None,
        metadata: (0, 0, 0),
    };
    // The layout every sender writes (Prometheus' `writev2.TimeSeries`
    // marshalled in field order): the packed references, one sample, and
    // the metadata if any, each shorter than 128 bytes. Read straight,
    // without the field loop's dispatch; anything else takes the loop.
    if let [0x0a, n, rest @ ..] = buf
        && *n < 0x80
        && let Some((packed, rest)) = rest.split_at_checked(usize::from(*n))
        && let [0x12, m, rest @ ..] = rest
        && *m < 0x80
        && let Some((one, rest)) = rest.split_at_checked(usize::from(*m))
    {
        let md = match rest {
            [] => Some(None),
            [0x2a, k, raw @ ..] if *k < 0x80 && usize::from(*k) == raw.len() => Some(Some(raw)),
            _ => None,
        };
        if let Some(md) = md {
            refs.packed = Some(packed);
            s.summary.add_checked(sample(one, true)?, range);
            if let Some(raw) = md {
                first_metadata(raw, refs, &mut s.metadata)?;
            }
            return Ok(s);
        }
    }
    let mut metadata_fields = 0u32;
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            // One packed field is kept as sent, for the fast path; a second
            // field (prost appends them) or an unpacked one makes a list.
            1 if wire == LEN && refs.packed.is_none() && refs.labels.is_empty() => {
                refs.packed = Some(r.bytes()?);
            }
            1 => {
                if let Some(packed) = refs.packed.take() {
                    packed_uint32s(packed, &mut refs.labels)?;
                }
                uint32s(&mut r, wire, &mut refs.labels)?;
            }
            2 => {
                expect(wire, LEN)?;
                s.summary.add_checked(sample(r.bytes()?, true)?, range);
            }
            3 => {
                expect(wire, LEN)?;
                let h = r.bytes()?;
                histogram(h, true)?;
                let start = h.as_ptr() as usize - buf.as_ptr() as usize;
                refs.histograms.push((start, start + h.len()));
                s.summary.histograms += 1;
            }
            4 => {
                expect(wire, LEN)?;
                let start = refs.exemplars.len();
                let (value, timestamp) = exemplar(r.bytes()?, &mut refs.exemplars)?;
                refs.each.push((refs.exemplars.len(), value, timestamp));
                let n = refs.exemplars.len() - start;
                if !n.is_multiple_of(2) && s.exemplar_fault.is_none() {
                    s.exemplar_fault = Some(odd("an exemplar", n));
                }
                s.exemplars += 1;
            }
            5 => {
                expect(wire, LEN)?;
                let raw = r.bytes()?;
                // A second field of a series merges into the first, as
                // prost merges it.
                if metadata_fields == 0 {
                    first_metadata(raw, refs, &mut s.metadata)?;
                } else {
                    metadata(raw, &mut s.metadata)?;
                }
                metadata_fields += 1;
            }
            6 => {
                expect(wire, VARINT)?;
                r.varint()?;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(s)
}

/// Reads a series' first `Metadata` into `md` (still unset). Senders repeat
/// a family's metadata with each of its series, byte for byte: read once,
/// then recognised by its bytes.
#[inline]
fn first_metadata<'a>(
    raw: &'a [u8],
    refs: &mut Refs<'a>,
    md: &mut MetadataRefs,
) -> Result<(), Error> {
    match refs.metadata {
        Some((last, known)) if last == raw => *md = known,
        _ => {
            metadata(raw, md)?;
            refs.metadata = Some((raw, *md));
        }
    }
    Ok(())
}

/// Reads one `Exemplar`: its label references, appended to `refs`, and
/// its value and timestamp (the last of each sent, as prost reads them).
fn exemplar(buf: &[u8], refs: &mut Vec<u32>) -> Result<(f64, i64), Error> {
    let (mut value, mut timestamp) = (0.0, 0);
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 => uint32s(&mut r, wire, refs)?,
            2 => {
                expect(wire, FIXED64)?;
                value = f64::from_bits(r.fixed64()?);
            }
            3 => {
                expect(wire, VARINT)?;
                timestamp = r.varint()? as i64;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok((value, timestamp))
}

/// Reads one `Metadata` into `(type, help_ref, unit_ref)`; a field sent twice
/// keeps its last value, as prost merges a repeated singular message.
fn metadata(buf: &[u8], md: &mut MetadataRefs) -> Result<(), Error> {
    let mut r = Reader::new(buf);
    while r.has_more() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, VARINT)?;
                md.0 = r.varint()? as i32;
            }
            3 => {
                expect(wire, VARINT)?;
                md.1 = r.varint()? as u32;
            }
            4 => {
                expect(wire, VARINT)?;
                md.2 = r.varint()? as u32;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(())
}

/// The reference decoder: prost (strings read as bytes), then the same
/// lowering as [`decode`].
pub fn decode_with_prost(buf: &[u8], rules: &Rules) -> Result<WriteBatch, Error> {
    let req = lenient::Request::decode(buf).map_err(|e| Error::ProtobufV2(e.to_string()))?;
    let symbols: Vec<Option<&str>> = req.symbols.iter().map(|s| utf8(s)).collect();
    if symbols.first().is_some_and(|s| *s != Some("")) {
        return Err(Error::InvalidRequest(
            "symbols[0] must be the empty string".into(),
        ));
    }
    let mut lowering = Lowering::new(rules, WriteBatch::default());
    let mut lowered = HashMap::new();
    for ts in &req.timeseries {
        let samples = ts.samples.iter().map(|s| Sample {
            value: s.value,
            timestamp_ms: s.timestamp,
        });
        let mut summary = summarize(samples, &rules.timestamps);
        summary.histograms = ts.histograms.len() as u32;
        let carried = (ts.samples.len() + ts.histograms.len()) as u64;
        let md = ts.metadata.unwrap_or_default();
        let check = || -> Result<Vec<(&str, &str)>, Rejection> {
            if let Some(e) = ts
                .exemplars
                .iter()
                .find(|e| !e.labels_refs.len().is_multiple_of(2))
            {
                return Err(odd("an exemplar", e.labels_refs.len()));
            }
            if !ts.labels_refs.len().is_multiple_of(2) {
                return Err(odd("a series", ts.labels_refs.len()));
            }
            let sym = |i: u32| symbol_of(&symbols, i);
            let labels = ts
                .labels_refs
                .chunks_exact(2)
                .map(|p| Ok((sym(p[0])?, sym(p[1])?)))
                .collect::<Result<Vec<_>, Rejection>>()?;
            sym(md.help_ref)?;
            sym(md.unit_ref)?;
            for e in &ts.exemplars {
                for &i in &e.labels_refs {
                    sym(i)?;
                }
            }
            if carried == 0 {
                return Err(Rejection {
                    reason: RejectReason::EmptySeries,
                    detail: "a series has neither samples nor histograms".into(),
                });
            }
            Ok(labels)
        };
        let labels = match check() {
            Ok(labels) => labels,
            Err(rejection) => {
                lowering.reject(rejection, carried);
                continue;
            }
        };
        for h in &ts.histograms {
            lowering.histogram(&h.encode_to_vec(), true);
        }
        let before = lowering.recorded();
        lowering.series(labels.iter().copied(), summary);
        if lowering.recorded() == before {
            continue;
        }
        for e in &ts.exemplars {
            let text = |i: u32| symbols[i as usize].unwrap_or_default();
            let pairs = e.labels_refs.chunks_exact(2);
            lowering.exemplar(
                pairs.map(|p| (text(p[0]), text(p[1]))),
                e.value,
                e.timestamp,
            );
        }
        let name = labels
            .iter()
            .find(|(n, _)| *n == "__name__")
            .map(|(_, v)| *v);
        if let Some(name) = name
            && (md.r#type != 0 || md.help_ref != 0 || md.unit_ref != 0)
        {
            let t = metric_type_of(md.r#type);
            let family = model::family_name(name, t);
            let md_refs = (md.r#type, md.help_ref, md.unit_ref);
            if lowered.insert(family, md_refs) != Some(md_refs) {
                let text = |i: u32| symbols[i as usize].unwrap_or_default();
                lowering.metadata(family, t, text(md.help_ref), text(md.unit_ref));
            }
        }
    }
    Ok(lowering.finish())
}

/// [`symbol`] over the reference decoder's plain table.
fn symbol_of<'a>(symbols: &[Option<&'a str>], i: u32) -> Result<&'a str, Rejection> {
    match symbols.get(i as usize) {
        Some(Some(s)) => Ok(s),
        Some(None) => Err(Rejection {
            reason: RejectReason::InvalidUtf8,
            detail: format!("symbol {i} is not valid UTF-8"),
        }),
        None => Err(Rejection {
            reason: RejectReason::InvalidSymbolReference,
            detail: format!(
                "symbol reference {i} is out of range ({} symbols)",
                symbols.len()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SeriesLimits;
    use prost::encoding::{double, fixed64, int64};

    const NOW_MS: i64 = 1_700_000_000_000;

    fn rules() -> Rules {
        Rules {
            series: SeriesLimits {
                max_labels: 30,
                max_name_len: 256,
                max_value_len: 4096,
                max_help_len: 4096,
                max_histogram_buckets: 320,
            },
            timestamps: TimeRange::new(NOW_MS, None),
        }
    }

    /// A request of one series `up` (symbols `""`, `__name__`, `up`) with
    /// one sample, the `Sample` message's bytes given.
    fn one_sample(sample: &[u8]) -> Vec<u8> {
        one_series(0x12, sample)
    }

    /// A request of one series `up` whose field `tag` (a length-delimited
    /// key byte: samples 0x12, histograms 0x1a) holds `message`.
    fn one_series(tag: u8, message: &[u8]) -> Vec<u8> {
        let mut series = vec![0x0a, 0x02, 0x01, 0x02, tag, message.len() as u8];
        series.extend_from_slice(message);
        let mut req = Vec::new();
        for s in [&b""[..], b"__name__", b"up"] {
            req.push(0x22);
            req.push(s.len() as u8);
            req.extend_from_slice(s);
        }
        req.push(0x2a);
        req.push(series.len() as u8);
        req.extend_from_slice(&series);
        req
    }

    #[test]
    fn a_start_timestamp_is_read_past_only_as_a_varint_as_prost_reads_it() {
        // Found by the write_v2 fuzz target: field 3 of a Sample was
        // skipped whatever its wire type, so a body prost refuses (a known
        // field with the wrong wire type) was accepted.
        let mut sample = Vec::new();
        double::encode(1, &1.0, &mut sample);
        int64::encode(2, &(NOW_MS - 1000), &mut sample);
        let mut good = sample.clone();
        int64::encode(3, &(NOW_MS - 60_000), &mut good);
        let mut bad = sample;
        fixed64::encode(3, &5, &mut bad);

        let good = one_sample(&good);
        let batch = decode(&good, &rules()).expect("a start timestamp is read past");
        assert_eq!(batch.series.len(), 1);
        assert!(decode_with_prost(&good, &rules()).is_ok());

        let bad = one_sample(&bad);
        assert!(
            matches!(decode(&bad, &rules()), Err(Error::ProtobufV2(_))),
            "{:?}",
            decode(&bad, &rules())
        );
        assert!(decode_with_prost(&bad, &rules()).is_err());
    }

    #[test]
    fn a_histogram_start_timestamp_is_field_17_read_as_a_varint() {
        // rc.4 added Histogram.start_timestamp = 17: read past as prost
        // reads it, a varint; any other wire type is refused by both.
        let request = |histogram: &[u8]| one_series(0x1a, histogram);
        let mut h = Vec::new();
        int64::encode(15, &(NOW_MS - 1000), &mut h);
        let mut good = h.clone();
        int64::encode(17, &(NOW_MS - 60_000), &mut good);
        let mut bad = h;
        fixed64::encode(17, &5, &mut bad);

        let good = request(&good);
        let batch = decode(&good, &rules()).expect("a start timestamp is read past");
        // An empty histogram (count 0, no buckets) is valid: written.
        assert_eq!(batch.rejected.series_total(), 0);
        assert_eq!(batch.histograms.len(), 1);
        let reference = decode_with_prost(&good, &rules()).unwrap();
        assert_eq!(reference.histograms, batch.histograms);

        let bad = request(&bad);
        assert!(matches!(decode(&bad, &rules()), Err(Error::ProtobufV2(_))));
        assert!(decode_with_prost(&bad, &rules()).is_err());
    }

    /// An exemplar to send: (name, value) labels, value, timestamp.
    type ExemplarIn<'a> = (&'a [(&'a str, &'a str)], f64, i64);

    /// What both decoders make of one series' exemplars: the one kept
    /// (labels, value, timestamp), how many counted, how many refused.
    type ExemplarsOut = (
        Option<(String, f64, i64)>,
        u32,
        Vec<(model::ExemplarRejectReason, u64)>,
    );

    /// A 2.0 request of one series `m` with one sample at 5 and these
    /// exemplars ((name, value) labels, value, timestamp), its symbols
    /// in order of first use.
    fn with_exemplars(exemplars: &[ExemplarIn<'_>]) -> Vec<u8> {
        use crate::proto::v2;
        let mut symbols = vec![String::new()];
        let mut refs = |labels: &[(&str, &str)]| -> Vec<u32> {
            let mut out = Vec::new();
            for s in labels.iter().flat_map(|(n, v)| [*n, *v]) {
                let i = symbols.iter().position(|x| x == s).unwrap_or_else(|| {
                    symbols.push(s.to_string());
                    symbols.len() - 1
                });
                out.push(i as u32);
            }
            out
        };
        let labels_refs = refs(&[("__name__", "m")]);
        let exemplars = exemplars
            .iter()
            .map(|(labels, value, timestamp)| v2::Exemplar {
                labels_refs: refs(labels),
                value: *value,
                timestamp: *timestamp,
            })
            .collect();
        let ts = v2::TimeSeries {
            labels_refs,
            samples: vec![v2::Sample {
                value: 1.0,
                timestamp: 5,
                ..Default::default()
            }],
            exemplars,
            ..Default::default()
        };
        v2::Request {
            symbols,
            timeseries: vec![ts],
        }
        .encode_to_vec()
    }

    /// The exemplar kept (labels, value, timestamp), the exemplars counted
    /// and refused, the same by both decoders.
    fn kept(bytes: &[u8]) -> ExemplarsOut {
        let view = |b: WriteBatch| {
            assert_eq!(b.series.len(), 1);
            let u = &b.series[0];
            let kept = b
                .exemplar(u)
                .map(|(e, l)| (l.to_string(), e.value, e.timestamp_ms));
            (kept, u.exemplars, b.rejected.exemplars.clone())
        };
        let fast = view(decode(bytes, &rules()).unwrap());
        assert_eq!(fast, view(decode_with_prost(bytes, &rules()).unwrap()));
        fast
    }

    #[test]
    fn the_latest_exemplar_is_kept_as_openmetrics_label_text() {
        let bytes = with_exemplars(&[
            (&[("trace_id", "old")], 1.0, 3),
            (
                &[
                    ("trace_id", "a\\b\"c\nd"),
                    ("service.name", "api"),
                    ("span_id", "é"),
                ],
                2.5,
                4,
            ),
            (&[("trace_id", "tie")], 3.0, 4),
            (&[("trace_id", "older")], 4.0, 2),
        ]);
        assert_eq!(
            kept(&bytes),
            (Some((r#"trace_id="tie""#.to_string(), 3.0, 4)), 4, vec![])
        );
        let bytes = with_exemplars(&[(
            &[
                ("trace_id", "a\\b\"c\nd"),
                ("service.name", "api"),
                ("span_id", "é"),
            ],
            2.5,
            0,
        )]);
        assert_eq!(
            kept(&bytes).0,
            Some((
                r#""service.name"="api",span_id="é",trace_id="a\\b\"c\nd""#.to_string(),
                2.5,
                0
            ))
        );
        assert_eq!(
            kept(&with_exemplars(&[(&[], 1.0, 9)])).0,
            Some((String::new(), 1.0, 9))
        );
    }

    #[test]
    fn an_exemplar_over_128_characters_is_refused_and_its_series_kept() {
        use model::ExemplarRejectReason::*;
        let at_limit = "é".repeat(124);
        let over = "x".repeat(125);
        let bytes = with_exemplars(&[
            (&[("span", &at_limit)], 1.0, 1),
            (&[("span", &over)], 2.0, 2),
            (&[("a", "1"), ("a", "2")], 3.0, 3),
            (&[("", "1")], 4.0, 4),
        ]);
        let (kept, counted, refused) = kept(&bytes);
        assert_eq!(kept, Some((format!(r#"span="{at_limit}""#), 1.0, 1)));
        assert_eq!(counted, 1);
        assert_eq!(refused, [(LabelsTooLong, 1), (InvalidLabels, 2)]);
        assert!(decode(&bytes, &rules()).unwrap().rejected.first.is_none());
    }
}
