//! Round trips of the encoder and decoder, and every way a file can be bad.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;

use super::*;
use crate::ingest::push::{self, Grouping, Labels, ParsedFamily, ParsedSample};
use crate::ingest::{Limits, Rules};
use crate::model::{
    Metadata, MetricType, NativeHistogram, Sample, SeriesUpdate, WriteBatch, build_key,
};
use crate::store::{Store, StoreLimits};

const LIMITS: StoreLimits = StoreLimits {
    max_series: 1_000_000,
    max_metadata: 100_000,
};

fn rules() -> Rules {
    Limits {
        max_decoded_bytes: 1 << 20,
        series: crate::config::Config::default().series_limits(),
        future_window: None,
    }
    .rules(0)
}

/// A remote-written batch: (name, label value, value, timestamp) per
/// series, and (family, type, help) metadata.
fn batch(series: &[(&str, &str, f64, i64)], metadata: &[(&str, MetricType, &str)]) -> WriteBatch {
    let mut b = WriteBatch::default();
    let mut scratch = Vec::new();
    for &(name, value, v, ts) in series {
        let key = build_key(
            [("__name__", name), ("a", value)],
            &rules().series,
            &mut scratch,
            &mut b.keys,
        )
        .unwrap();
        b.series.push(SeriesUpdate {
            key,
            latest: Sample {
                value: v,
                timestamp_ms: ts,
            },
            samples: 1,
            exemplars: 0,
            exemplar: crate::model::NO_EXEMPLAR,
            histogram: crate::model::NO_HISTOGRAM,
        });
    }
    for &(name, metric_type, help) in metadata {
        b.metadata.push((
            name.into(),
            Metadata {
                metric_type,
                help: help.into(),
                unit: "seconds".into(),
            },
        ));
    }
    b
}

fn group(job: &str, labels: &[(&str, &str)]) -> Grouping {
    Grouping::new(
        job.into(),
        labels
            .iter()
            .map(|(a, b)| ((*a).into(), (*b).into()))
            .collect(),
    )
    .unwrap()
}

/// A histogram family with one `+Inf` bucket and the given count, and a
/// gauge with a label.
fn pushed_families(count: f64) -> Vec<ParsedFamily<'static>> {
    let sample = |name: &str, labels: &[(&str, &str)], value| ParsedSample {
        name: name.to_owned().into(),
        labels: Labels::from_pairs(labels.iter().copied()),
        value,
        timestamp_ms: None,
    };
    vec![
        ParsedFamily {
            name: "job_duration_seconds".into(),
            help: Some("How long the job took.".into()),
            metric_type: MetricType::Histogram,
            samples: vec![
                sample("job_duration_seconds_bucket", &[("le", "1")], count),
                sample("job_duration_seconds_bucket", &[("le", "+Inf")], count),
                sample("job_duration_seconds_sum", &[], 0.5 * count),
                sample("job_duration_seconds_count", &[], count),
            ],
            natives: Vec::new(),
        },
        ParsedFamily {
            name: "job_last_success".into(),
            help: Some("When \"it\" last worked\\n.".into()),
            metric_type: MetricType::Gauge,
            samples: vec![sample("job_last_success", &[("step", "a\nb")], 1e9)],
            natives: Vec::new(),
        },
    ]
}

fn push_to(s: &Store, g: &Grouping, families: &[ParsedFamily], at: u64) {
    let batch = push::lower(families, g, &rules(), 0).unwrap();
    s.push(g, batch, true, UNIX_EPOCH + Duration::from_secs(at))
        .unwrap();
}

/// Every series: key → (value bits, timestamp, traits, age in seconds).
fn contents(s: &Store) -> BTreeMap<String, (u64, i64, u8, u32)> {
    let now = s.now();
    let mut all = BTreeMap::new();
    for m in s.metrics() {
        let mut parts = m.parts();
        while parts.visit_next_entries(|e, _| {
            let sample = e.sample();
            all.insert(
                String::from_utf8(e.key().to_vec()).unwrap(),
                (
                    sample.value.to_bits(),
                    sample.timestamp_ms,
                    e.traits().bits(),
                    now - e.touched(),
                ),
            );
        }) {}
    }
    all
}

fn metadata(s: &Store) -> BTreeMap<String, Metadata> {
    s.metadata
        .iter()
        .map(|r| (r.key().to_string(), r.value().0.clone()))
        .collect()
}

/// The groups as the query API shows them, in a comparable form.
fn groups(s: &Store) -> String {
    format!("{:?}", s.group_views())
}

fn snapshot(s: &Store, at: SystemTime, compress: bool) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    s.write_snapshot(&mut out, at, compress).unwrap();
    out.into_inner()
}

fn options(now: SystemTime) -> LoadOptions {
    LoadOptions {
        limits: LIMITS,
        series_ttl: None,
        push_ttl: None,
        now,
    }
}

/// Asserts that `b` holds what `a` holds, ages within a second (the two
/// clocks may tick apart).
fn assert_same(a: &Store, b: &Store) {
    let (ca, cb) = (contents(a), contents(b));
    assert_eq!(ca.len(), cb.len());
    for ((ka, va), (kb, vb)) in ca.iter().zip(&cb) {
        assert_eq!(ka, kb);
        assert_eq!((va.0, va.1, va.2), (vb.0, vb.1, vb.2), "{ka}");
        // A pushed series goes with its group's clock, not its own.
        let pushed = va.2 & crate::model::SeriesTraits::PUSHED != 0;
        assert!(
            pushed || va.3.abs_diff(vb.3) <= 1,
            "{ka}: age {} then {}",
            va.3,
            vb.3
        );
    }
    assert_eq!(metadata(a), metadata(b));
    assert_eq!(groups(a), groups(b));
    assert_eq!(a.live_series(), b.live_series());
}

/// A store with remote-written series and metadata, and two pushed groups.
fn sample_store() -> Store {
    let s = Store::new(LIMITS);
    s.apply(&batch(
        &[
            ("up", "x", 1.0, 1_700_000_000_000),
            ("up", "quote\"back\\slash\nnewline", f64::NAN, 1),
            ("temp", "ünï", f64::NEG_INFINITY, i64::MAX),
            ("temp", "tiny", f64::from_bits(1), 5),
            // Names outside the legacy set: quoted keys, the delimiters in them.
            ("http.server.duration", "x", 2.0, 1_700_000_000_000),
            ("a\"b{c}\\", "y", 3.0, 5),
        ],
        &[
            ("up", MetricType::Gauge, "Up."),
            ("http.server.duration", MetricType::Gauge, "UTF-8."),
            ("temp", MetricType::Unknown, "Temperature, \"quoted\"."),
        ],
    ));
    push_to(
        &s,
        &group("backup", &[("instance", "db1")]),
        &pushed_families(3.0),
        100,
    );
    push_to(&s, &group("batch", &[]), &pushed_families(1.0), 200);
    s
}

#[test]
fn a_snapshot_loads_into_the_same_store_compressed_or_not() {
    let s = sample_store();
    s.backdate(30);
    let at = SystemTime::now();
    for compress in [true, false] {
        let file = snapshot(&s, at, compress);
        let (loaded, report) = load_bytes(&file, &options(at)).unwrap();
        assert_same(&s, &loaded);
        assert_eq!(report.series, s.live_series());
        assert_eq!(report.groups, 2);
        assert_eq!(report.metadata, s.metadata_len());
        assert_eq!(report.expired_series, 0);
        let ages: Vec<u32> = contents(&loaded).values().map(|v| v.3).collect();
        // Remote-written series keep their 30 s; pushed ones have their group's age.
        assert!(ages.iter().any(|&a| (30..=31).contains(&a)), "{ages:?}");
    }
}

#[test]
fn a_restored_group_is_replaced_and_deleted_as_before() {
    let s = sample_store();
    let at = SystemTime::now();
    let (loaded, _) = load_bytes(&snapshot(&s, at, true), &options(at)).unwrap();
    // Type conflicts with the restored group are still seen.
    let mut gauge = pushed_families(1.0);
    gauge[0].metric_type = MetricType::Gauge;
    gauge[0].samples.truncate(1);
    gauge[0].samples[0].name = "job_duration_seconds".into();
    gauge[0].samples[0].labels = Labels::default();
    let g = group("other", &[]);
    let lowered = push::lower(&gauge[..1], &g, &rules(), 0).unwrap();
    assert!(loaded.push(&g, lowered, true, at).is_err());
    // A PUT replaces the restored group: the histogram goes.
    let backup = group("backup", &[("instance", "db1")]);
    let lowered = push::lower(&pushed_families(1.0)[1..], &backup, &rules(), 0).unwrap();
    let out = loaded.push(&backup, lowered, true, at).unwrap();
    assert_eq!(out.replaced, 4);
    assert!(
        loaded
            .get(r#"job_duration_seconds_count{instance="db1",job="backup"}"#)
            .is_none()
    );
    let before = loaded.live_series();
    assert!(loaded.delete_group(&backup));
    // Its gauge and its two own series.
    assert_eq!(loaded.live_series(), before - 3);
    // `batch`, and `other`, made by its refused push (as the Pushgateway does).
    assert_eq!(loaded.group_count(), 2);
}

#[test]
fn native_histograms_pushed_and_remote_written_survive_a_snapshot() {
    use crate::ingest::push::ParsedNative;
    use crate::model::histogram::{RawHistogram, ResetHint, Span, WireCount};
    let s = Store::new(LIMITS);
    let g = group("native", &[]);
    let mut families = pushed_families(2.0);
    let raw = RawHistogram {
        count: Some(WireCount::Int(3)),
        sum: 1.5,
        schema: 3,
        zero_count: Some(WireCount::Int(1)),
        zero_threshold: 1e-128,
        negative_spans: vec![Span {
            offset: -3,
            length: 1,
        }],
        negative_deltas: vec![1],
        positive_spans: vec![Span {
            offset: 0,
            length: 1,
        }],
        positive_deltas: vec![1],
        ..RawHistogram::default()
    };
    families[0].natives.push(ParsedNative {
        labels: Labels::from_pairs([("path", "/a")]),
        raw: raw.clone(),
        timestamp_ms: None,
    });
    push_to(&s, &g, &families, 10);
    // A remote-written float histogram with custom bounds, a gauge one.
    let mut b = batch(&[("remote", "x", 0.0, 1_700_000_000_000)], &[]);
    let remote = NativeHistogram::from_raw(&RawHistogram {
        count: Some(WireCount::Float(2.5)),
        sum: 4.0,
        schema: -53,
        zero_count: Some(WireCount::Float(0.0)),
        positive_spans: vec![Span {
            offset: 0,
            length: 2,
        }],
        positive_counts: vec![0.5, 2.0],
        custom_values: vec![0.5, 1.0],
        reset_hint: ResetHint::Gauge.to_wire(),
        start_timestamp_ms: 1_600_000_000_000,
        timestamp_ms: 1_700_000_000_000,
        ..RawHistogram::default()
    })
    .unwrap();
    b.series[0].latest.value = remote.count();
    b.series[0].histogram = 0;
    b.histograms.push(crate::model::BatchHistogram {
        written: 1,
        latest: Some(remote.clone()),
    });
    s.apply(&b);
    let native = r#"job_duration_seconds{instance="",job="native",path="/a"}"#;
    assert_eq!(s.get(native).map(|x| x.value), Some(3.0));
    let at = SystemTime::now();
    for compress in [false, true] {
        let (loaded, report) = load_bytes(&snapshot(&s, at, compress), &options(at)).unwrap();
        assert_eq!(report.series, s.live_series());
        let histogram = |st: &Store, key: &str| {
            st.find(key, |e, extras| extras.histogram(e).cloned())
                .flatten()
        };
        let pushed = histogram(&loaded, native).expect("the pushed histogram");
        let mut want = NativeHistogram::from_raw(&raw).unwrap().to_raw();
        want.timestamp_ms = pushed.timestamp_ms();
        assert_eq!(pushed.to_raw(), want);
        assert_eq!(
            histogram(&loaded, r#"remote{a="x"}"#).map(|h| h.to_raw()),
            Some(remote.to_raw())
        );
        // The rest of the store as it was, and the query API alike.
        assert_eq!(contents(&loaded), contents(&s));
        let views = |st: &Store| -> Vec<Vec<(usize, f64)>> {
            st.group_views()
                .iter()
                .flat_map(|g| g.families.iter().map(|f| f.native_sums.clone()))
                .collect()
        };
        assert_eq!(views(&loaded), views(&s));
        assert!(views(&loaded).iter().flatten().any(|&(_, sum)| sum == 1.5));
    }
}

/// A version 1 file (no byte after a series record) still loads.
#[test]
fn a_version_1_snapshot_still_loads() {
    use super::format::Put;
    let mut body = Vec::new();
    body.u64(5); // the last push stamp
    body.u32(0); // groups
    body.u32(0); // metadata
    body.u32(1); // a block of one series
    body.series(
        br#"up{a="x"}"#,
        0,
        Sample {
            value: 1.5,
            timestamp_ms: 1_700_000_000_000,
        },
        3,
    );
    body.u32(0);
    let at = SystemTime::now();
    let taken_at = at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let mut file = super::format::header(0, taken_at, body.len() as u64).to_vec();
    file[8..12].copy_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&body);
    let crc = crc32fast::hash(&file);
    file.extend_from_slice(&crc.to_le_bytes());
    let (loaded, report) = load_bytes(&file, &options(at)).unwrap();
    assert_eq!(report.series, 1);
    assert_eq!(loaded.get(r#"up{a="x"}"#).map(|x| x.value), Some(1.5));
    // The same bytes called version 2 lack the histogram flag.
    file[8..12].copy_from_slice(&2u32.to_le_bytes());
    let end = file.len() - 4;
    let crc = crc32fast::hash(&file[..end]);
    file[end..].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        load_bytes(&file, &options(at)),
        Err(LoadError::Malformed(_))
    ));
}

#[test]
fn ages_count_the_downtime_and_the_ttl_drops_what_it_passed() {
    let s = Store::new(LIMITS);
    s.apply(&batch(
        &[("old", "x", 1.0, 1)],
        &[("old", MetricType::Gauge, "Old.")],
    ));
    s.backdate(200);
    s.apply(&batch(&[("fresh", "x", 1.0, 1)], &[]));
    push_to(&s, &group("j", &[]), &pushed_families(1.0), 1);
    for g in s.groups.lock().groups.values_mut() {
        g.touched -= 100;
    }
    let at = SystemTime::now();
    let file = snapshot(&s, at, true);
    let ttl = Duration::from_secs(300);
    // 90 s of downtime: `old` (200 s) has 10 s left, `fresh` 210 s, the
    // group (100 s) 60 s.
    let opts = LoadOptions {
        series_ttl: Some(ttl),
        push_ttl: Some(Duration::from_secs(250)),
        ..options(at + Duration::from_secs(90))
    };
    let (loaded, report) = load_bytes(&file, &opts).unwrap();
    let c = contents(&loaded);
    let age = |k: &str| c[k].3;
    assert!((290..=291).contains(&age(r#"old{a="x"}"#)), "{c:?}");
    assert!((90..=91).contains(&age(r#"fresh{a="x"}"#)), "{c:?}");
    assert_eq!(report.expired_series, 0);
    assert_eq!(report.groups, 1);
    // 11 s later, `old` is swept; `fresh` is not.
    loaded.backdate(11);
    assert_eq!(loaded.sweep(Some(ttl)), 1);
    assert!(loaded.get(r#"fresh{a="x"}"#).is_some());

    // 200 s of downtime: `old` is dropped at load, and so is its metadata;
    // the group (100 s + 200 s > 250 s) too.
    let opts = LoadOptions {
        now: at + Duration::from_secs(200),
        ..opts
    };
    let (loaded, report) = load_bytes(&file, &opts).unwrap();
    assert!(loaded.get(r#"old{a="x"}"#).is_none());
    assert!(loaded.get(r#"fresh{a="x"}"#).is_some());
    assert_eq!(loaded.metadata("old"), None);
    assert_eq!(report.expired_groups, 1);
    assert_eq!(report.expired_series, 1 + 7);
    assert_eq!(loaded.group_count(), 0);
    assert_eq!(loaded.live_series(), 1);
}

#[test]
fn the_limits_hold_for_a_loaded_store() {
    let s = sample_store();
    let at = SystemTime::now();
    let file = snapshot(&s, at, true);
    // Room for one group (7 series) and 2 remote-written series.
    let opts = LoadOptions {
        limits: StoreLimits {
            max_series: 9,
            max_metadata: 1,
        },
        ..options(at)
    };
    let (loaded, report) = load_bytes(&file, &opts).unwrap();
    assert_eq!(loaded.live_series(), 9);
    assert_eq!(loaded.group_count(), 1);
    // The second group (7) and 4 of the 6 remote-written series.
    assert_eq!(report.over_limit_series, 7 + 4);
    assert_eq!(loaded.metadata_len(), 1);
    assert!(report.over_limit_metadata > 0);
}

#[test]
fn bad_files_are_refused_with_their_reason() {
    let s = sample_store();
    let at = SystemTime::now();
    let file = snapshot(&s, at, true);
    let load = |bytes: &[u8]| load_bytes(bytes, &options(at)).map(|_| ()).unwrap_err();
    assert!(matches!(load(b""), LoadError::Truncated { .. }));
    assert!(matches!(load(&file[..5]), LoadError::Truncated { .. }));
    assert!(matches!(
        load(&file[..file.len() - 1]),
        LoadError::Truncated { .. }
    ));
    assert!(matches!(
        load(b"GIF89a and so on, a picture"),
        LoadError::NotASnapshot
    ));
    let mut v3 = file.clone();
    v3[8] = 3;
    assert!(matches!(
        load(&v3),
        LoadError::UnsupportedVersion { version: 3, .. }
    ));
    let mut flags = file.clone();
    flags[12] |= 2;
    assert!(matches!(load(&flags), LoadError::UnsupportedVersion { .. }));
    let mut flipped = file.clone();
    let middle = file.len() / 2;
    flipped[middle] ^= 0x10;
    assert!(matches!(load(&flipped), LoadError::ChecksumMismatch { .. }));
    let mut longer = file.clone();
    longer.push(0);
    assert!(matches!(load(&longer), LoadError::Malformed(_)));
    // A body that passes the checksum but is not a snapshot: refused whole.
    let mut bogus = format::header(0, 0, 4).to_vec();
    bogus.extend_from_slice(&1u32.to_le_bytes());
    let crc = crc32fast::hash(&bogus);
    bogus.extend_from_slice(&crc.to_le_bytes());
    assert!(matches!(load(&bogus), LoadError::Malformed(_)));
    // Counts far beyond the body (here 2^32 - 1 families) fail as such.
    let mut huge = format::header(0, 0, 0).to_vec();
    let mut body = Vec::new();
    body.extend_from_slice(&0i64.to_le_bytes());
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&[0; 20]);
    body.extend_from_slice(&u32::MAX.to_le_bytes());
    huge[format::BODY_LEN_AT..].copy_from_slice(&(body.len() as u64).to_le_bytes());
    huge.extend_from_slice(&body);
    let crc = crc32fast::hash(&huge);
    huge.extend_from_slice(&crc.to_le_bytes());
    assert!(matches!(load(&huge), LoadError::Malformed(why) if why.contains("ends inside")));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any store of remote-written series (any label value, any float and
    /// timestamp, any metadata) and pushed groups loads back the same.
    #[test]
    fn any_store_round_trips(
        series in prop::collection::vec(
            (0..4usize, "\\PC{0,12}|[\"\\\\\n]{1,3}", any::<u64>(), 1..i64::MAX),
            0..60,
        ),
        help in prop::collection::vec(("\\PC{0,20}", 0..8u8), 0..4),
        groups in prop::collection::vec(("[a-z]{1,5}", "\\PC{0,6}", 0..1000u64), 0..4),
        compress in any::<bool>(),
        backdate in 0..100u32,
    ) {
        let names = ["a", "b_total", "c_bucket", "d"];
        let s = Store::new(LIMITS);
        let values: Vec<String> = series.iter().map(|x| x.1.clone()).collect();
        let items: Vec<(&str, &str, f64, i64)> = series
            .iter()
            .zip(&values)
            .map(|(x, v)| {
                let value = f64::from_bits(x.2);
                // A stale marker is a deletion, not a value to store.
                let value = if crate::model::is_stale_marker(value) { 0.0 } else { value };
                (names[x.0], v.as_str(), value, x.3)
            })
            .collect();
        let types = [
            MetricType::Unknown, MetricType::Counter, MetricType::Gauge, MetricType::Histogram,
            MetricType::GaugeHistogram, MetricType::Summary, MetricType::Info, MetricType::StateSet,
        ];
        let md: Vec<(&str, MetricType, &str)> = help
            .iter()
            .enumerate()
            .map(|(i, (h, t))| (names[i], types[usize::from(*t)], h.as_str()))
            .collect();
        s.apply(&batch(&items, &md));
        s.backdate(backdate);
        for (job, value, count) in &groups {
            push_to(&s, &group(job, &[("where", value)]), &pushed_families(*count as f64), *count);
        }
        let at = SystemTime::now();
        let file = snapshot(&s, at, compress);
        let (loaded, _) = load_bytes(&file, &options(at)).unwrap();
        assert_same(&s, &loaded);
    }

    /// Any one byte changed, or the file cut anywhere, is refused.
    #[test]
    fn any_damage_is_refused(at in any::<prop::sample::Index>(), bit in 0..8u8, cut in any::<bool>()) {
        let s = sample_store();
        let now = SystemTime::now();
        let mut file = snapshot(&s, now, true);
        let i = at.index(file.len());
        if cut {
            file.truncate(i);
        } else {
            file[i] ^= 1 << bit;
        }
        prop_assert!(load_bytes(&file, &options(now)).is_err());
    }
}

#[test]
fn only_a_regular_file_is_read_and_junk_is_known_by_its_first_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(SystemTime::now());
    // A FIFO would block an open() until a writer came; a device never ends.
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let zero = dir.path().join("zero");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for path in [&fifo, &zero, &dir.path().to_path_buf()] {
        match load(path, &opts) {
            Err(LoadError::Io(e)) => assert_eq!(e.to_string(), "not a regular file", "{path:?}"),
            other => panic!("{path:?}: {:?}", other.map(|_| ())),
        }
    }
    // Junk: refused on its first bytes, however long it is.
    let junk = dir.path().join("junk");
    let file = std::fs::File::create(&junk).unwrap();
    file.set_len(1 << 40).unwrap();
    assert!(matches!(load(&junk, &opts), Err(LoadError::NotASnapshot)));
    assert!(matches!(load(&dir.path().join("absent"), &opts), Ok(None)));
}

#[test]
fn a_header_that_disagrees_with_the_file_length_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(SystemTime::now());
    let path = dir.path().join("snap");
    // A valid header announcing a 100-byte body, in a 50 GB (sparse) file.
    let header = format::header(format::FLAG_ZSTD, 0, 100);
    std::fs::write(&path, header).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(50 << 30)
        .unwrap();
    match load(&path, &opts) {
        Err(LoadError::Malformed(m)) => assert!(m.ends_with("bytes after the checksum"), "{m}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(100)
        .unwrap();
    assert!(matches!(
        load(&path, &opts),
        Err(LoadError::Truncated {
            len: 100,
            expected: 136
        })
    ));
}

#[test]
fn a_symlink_or_fifo_at_the_temporary_path_is_replaced_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let store = sample_store();
    let path = dir.path().join("snap");
    let tmp = temp_path(&path);
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, &tmp).unwrap();
    store.save_snapshot(&path).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(load(&path, &options(SystemTime::now())).unwrap().is_some());
    // A FIFO would block the open for ever.
    let made = std::process::Command::new("mkfifo")
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(made.success());
    store.save_snapshot(&path).unwrap();
    assert!(std::fs::symlink_metadata(&tmp).is_err(), "the FIFO is gone");
}
