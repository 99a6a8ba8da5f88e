//! Which page a scraper gets, from its `Accept` header
//! (`content_negotiation.md` in prometheus/docs, "Selection of Format"):
//! the supported media range with the highest `q` wins, the first of equals
//! in header order; when none is supported, the text format 0.0.4.
//!
//! The protobuf format is the one prometheus/common's `expfmt` calls
//! `FmtProtoDelim`: media type `application/vnd.google.protobuf` with
//! `proto=io.prometheus.client.MetricFamily` and `encoding=delimited`,
//! both required (the other encodings, `text` and `compact-text`, are debug
//! formats no scraper asks for).

use super::Escaping;

/// The formats a page can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `text/plain; version=0.0.4`: names outside the legacy set escaped.
    Text004,
    /// `text/plain; version=1.0.0`: the same syntax, plus quoted names when
    /// the escaping is `allow-utf-8`.
    Text100,
    /// `application/openmetrics-text; version=1.0.0` (quoted names with
    /// `allow-utf-8`, as Prometheus 3 reads them).
    OpenMetrics100,
    /// `application/openmetrics-text; version=0.0.1`: the same page.
    OpenMetrics001,
    /// `application/vnd.google.protobuf;
    /// proto=io.prometheus.client.MetricFamily; encoding=delimited`:
    /// varint-length-prefixed `MetricFamily` messages, names escaped by the
    /// scheme (any UTF-8 name as it is with `allow-utf-8`). What Prometheus
    /// asks for first with native histograms enabled.
    Protobuf,
}

impl Format {
    /// The format's name in self-metrics (`format` label).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text004 => "text-0.0.4",
            Format::Text100 => "text-1.0.0",
            Format::OpenMetrics100 => "openmetrics-1.0.0",
            Format::OpenMetrics001 => "openmetrics-0.0.1",
            Format::Protobuf => "protobuf",
        }
    }

    /// Is this an OpenMetrics page?
    pub fn is_openmetrics(self) -> bool {
        matches!(self, Format::OpenMetrics100 | Format::OpenMetrics001)
    }
}

/// A negotiated page: its format and how it escapes names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Negotiated {
    /// The format.
    pub format: Format,
    /// The escaping scheme.
    pub escaping: Escaping,
}

impl Negotiated {
    /// The response's `Content-Type`: the media type and version, and for
    /// version 1.0.0 the escaping scheme ("Content-Type Response"). The
    /// protobuf page's is `expfmt`'s `FmtProtoDelim` with the scheme, as
    /// client_golang's `promhttp` writes it.
    pub fn content_type(self) -> &'static str {
        match (self.format, self.escaping) {
            (Format::Text004, _) => super::CONTENT_TYPE,
            (Format::OpenMetrics001, _) => {
                "application/openmetrics-text; version=0.0.1; charset=utf-8"
            }
            (Format::OpenMetrics100, Escaping::AllowUtf8) => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
            }
            (Format::OpenMetrics100, Escaping::Underscores) => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
            }
            (Format::OpenMetrics100, Escaping::Dots) => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=dots"
            }
            (Format::OpenMetrics100, Escaping::Values) => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=values"
            }
            (Format::Text100, Escaping::AllowUtf8) => {
                "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
            }
            (Format::Text100, Escaping::Underscores) => {
                "text/plain; version=1.0.0; charset=utf-8; escaping=underscores"
            }
            (Format::Text100, Escaping::Dots) => {
                "text/plain; version=1.0.0; charset=utf-8; escaping=dots"
            }
            (Format::Text100, Escaping::Values) => {
                "text/plain; version=1.0.0; charset=utf-8; escaping=values"
            }
            (Format::Protobuf, Escaping::AllowUtf8) => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=allow-utf-8"
            }
            (Format::Protobuf, Escaping::Underscores) => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=underscores"
            }
            (Format::Protobuf, Escaping::Dots) => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=dots"
            }
            (Format::Protobuf, Escaping::Values) => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=values"
            }
        }
    }
}

/// Chooses the page for the `Accept` header values `accept` (all of them,
/// in order; none when the header is absent). `default` is the escaping
/// for a media range that names none (`--exposition.default-escaping`).
///
/// - `text/plain` with `version=1.0.0` is [`Format::Text100`]; without a
///   version, with `version=0.0.4`, or `text/*` or `*/*`, it is
///   [`Format::Text004`]; `application/openmetrics-text` is
///   [`Format::OpenMetrics100`] (no version, or `1.0.0`) or
///   [`Format::OpenMetrics001`]; `application/vnd.google.protobuf` with
///   `proto=io.prometheus.client.MetricFamily` and `encoding=delimited`
///   (both required) is [`Format::Protobuf`].
/// - An `escaping` parameter with a scheme's name sets the escaping; an
///   unknown value counts as none (the scheme "MUST be validated").
/// - A page escaped `allow-utf-8` is labelled 1.0.0 whatever version was
///   asked, since 0.0.4 (0.0.1) has no quoted names.
/// - `q=0` excludes a range; a malformed `q` counts as 1. Other media types
///   (JSON, protobuf in another encoding or of another message) are not
///   supported and skipped.
pub fn negotiate<'h>(accept: impl IntoIterator<Item = &'h str>, default: Escaping) -> Negotiated {
    let mut best: Option<(f32, Negotiated)> = None;
    for range in accept.into_iter().flat_map(|v| v.split(',')) {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let (mut version, mut escaping, mut q) = (None, None, 1.0f32);
        let (mut proto, mut encoding) = (None, None);
        for param in parts {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "version" => version = Some(v),
                "proto" => proto = Some(v),
                "encoding" => encoding = Some(v),
                "escaping" => escaping = Escaping::from_param(v),
                "q" => {
                    q = v
                        .parse::<f32>()
                        .ok()
                        .filter(|q| q.is_finite())
                        .unwrap_or(1.0)
                }
                _ => {}
            }
        }
        let format = match (media.to_ascii_lowercase().as_str(), version) {
            ("text/plain", Some("1.0.0")) => Format::Text100,
            ("text/plain", None | Some("0.0.4")) | ("text/*" | "*/*", _) => Format::Text004,
            ("application/openmetrics-text", None | Some("1.0.0")) => Format::OpenMetrics100,
            ("application/openmetrics-text", Some("0.0.1")) => Format::OpenMetrics001,
            ("application/vnd.google.protobuf", _)
                if proto == Some("io.prometheus.client.MetricFamily")
                    && encoding == Some("delimited") =>
            {
                Format::Protobuf
            }
            _ => continue,
        };
        if q <= 0.0 || best.is_some_and(|(b, _)| b >= q) {
            continue;
        }
        let escaping = escaping.unwrap_or(default);
        let format = match (escaping, format) {
            (Escaping::AllowUtf8, Format::Text004) => Format::Text100,
            (Escaping::AllowUtf8, Format::OpenMetrics001) => Format::OpenMetrics100,
            (_, format) => format,
        };
        best = Some((q, Negotiated { format, escaping }));
    }
    best.map_or(
        Negotiated {
            format: match default {
                Escaping::AllowUtf8 => Format::Text100,
                _ => Format::Text004,
            },
            escaping: default,
        },
        |(_, n)| n,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(accept: &str) -> (Format, Escaping) {
        let n = negotiate([accept], Escaping::Underscores);
        (n.format, n.escaping)
    }

    /// The Accept headers the real scrapers send.
    #[test]
    fn real_scrapers_get_what_they_ask_for() {
        // Prometheus 3, UTF-8 names allowed (its default).
        let p3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        assert_eq!(page(p3), (Format::OpenMetrics100, Escaping::AllowUtf8));
        // Prometheus 3 with metric_name_escaping_scheme: underscores.
        let p3u = "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=underscores;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        assert_eq!(page(p3u), (Format::OpenMetrics100, Escaping::Underscores));
        // Prometheus 2.42.
        let p2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(page(p2), (Format::OpenMetrics100, Escaping::Underscores));
        // Prometheus 2.42 with native histograms: protobuf first.
        let p2pb = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(page(p2pb), (Format::Protobuf, Escaping::Underscores));
        assert_eq!(
            negotiate([p2pb], Escaping::Underscores).content_type(),
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=underscores"
        );
        // Prometheus 3 proto-first (scrape_native_histograms): it names no
        // escaping on the protobuf range (`acceptHeader` in scrape.go adds it
        // to the 1.0.0 text formats only), so the default scheme applies, as
        // in client_golang's `expfmt.NegotiateAccept`.
        let p3pb = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        assert_eq!(page(p3pb), (Format::Protobuf, Escaping::Underscores));
        assert_eq!(
            negotiate([p3pb], Escaping::AllowUtf8).content_type(),
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=allow-utf-8"
        );
        // A scraper that does name a scheme there gets it.
        let named = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;escaping=allow-utf-8,*/*;q=0.1";
        assert_eq!(page(named), (Format::Protobuf, Escaping::AllowUtf8));
        // OpenMetrics refused: Prometheus 3's text choice.
        let p3_text = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2";
        assert_eq!(page(p3_text), (Format::Text100, Escaping::AllowUtf8));
        assert_eq!(
            page("application/openmetrics-text;version=0.0.1"),
            (Format::OpenMetrics001, Escaping::Underscores)
        );
        // vmagent 1.79.
        assert_eq!(
            page("text/plain;version=0.0.4;q=1,*/*;q=0.1"),
            (Format::Text004, Escaping::Underscores)
        );
        // curl, and no header at all.
        assert_eq!(page("*/*"), (Format::Text004, Escaping::Underscores));
        assert_eq!(
            negotiate([], Escaping::Underscores),
            Negotiated {
                format: Format::Text004,
                escaping: Escaping::Underscores
            }
        );
    }

    #[test]
    fn ranges_are_weighed_and_checked() {
        // Spaces, case and order do not matter; q decides, then order.
        assert_eq!(
            page(
                "text/plain; version=0.0.4; q=0.2, TEXT/PLAIN ; Version=1.0.0 ; escaping=values ; q=0.9"
            ),
            (Format::Text100, Escaping::Values)
        );
        assert_eq!(
            page("text/plain;version=1.0.0;escaping=dots,text/plain;version=1.0.0;escaping=values"),
            (Format::Text100, Escaping::Dots)
        );
        // q=0 refuses a range; an unknown scheme is no scheme.
        assert_eq!(
            page("text/plain;version=1.0.0;escaping=allow-utf-8;q=0,text/plain;q=0.1"),
            (Format::Text004, Escaping::Underscores)
        );
        assert_eq!(
            page("text/plain;version=1.0.0;escaping=bogus"),
            (Format::Text100, Escaping::Underscores)
        );
        // An unsupported version or type alone: 0.0.4, the last resort.
        assert_eq!(
            page("text/plain;version=9.9.9,application/json"),
            (Format::Text004, Escaping::Underscores)
        );
        // allow-utf-8 asked with 0.0.4 is served (and labelled) 1.0.0.
        assert_eq!(
            page("text/plain;version=0.0.4;escaping=allow-utf-8"),
            (Format::Text100, Escaping::AllowUtf8)
        );
    }

    /// Protobuf is served only as the delimited `MetricFamily` stream.
    #[test]
    fn protobuf_needs_the_message_and_the_delimited_encoding() {
        let pb = "application/vnd.google.protobuf";
        let mf = "proto=io.prometheus.client.MetricFamily";
        for unsupported in [
            pb.to_string(),
            format!("{pb};{mf}"),
            format!("{pb};encoding=delimited"),
            format!("{pb};{mf};encoding=text"),
            format!("{pb};{mf};encoding=compact-text"),
            format!("{pb};proto=io.prometheus.write.v2.Request;encoding=delimited"),
        ] {
            assert_eq!(
                page(&format!("{unsupported},text/plain;q=0.1")),
                (Format::Text004, Escaping::Underscores),
                "{unsupported}"
            );
        }
        // Order of parameters, spaces and a quoted value do not matter.
        assert_eq!(
            page(&format!(
                "{pb} ; encoding=delimited ; proto=\"io.prometheus.client.MetricFamily\" ; escaping=dots"
            )),
            (Format::Protobuf, Escaping::Dots)
        );
        // q decides; allow-utf-8 keeps the protobuf page.
        assert_eq!(
            page(&format!(
                "{pb};{mf};encoding=delimited;q=0.3,application/openmetrics-text;version=1.0.0;q=0.4"
            )),
            (Format::OpenMetrics100, Escaping::Underscores)
        );
        let n = negotiate(
            [format!("{pb};{mf};encoding=delimited;escaping=values").as_str()],
            Escaping::AllowUtf8,
        );
        assert_eq!((n.format, n.escaping), (Format::Protobuf, Escaping::Values));
        assert_eq!(
            n.content_type(),
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=values"
        );
        let n = negotiate(
            [format!("{pb};{mf};encoding=delimited").as_str()],
            Escaping::AllowUtf8,
        );
        assert_eq!(
            (n.format, n.escaping, n.format.as_str()),
            (Format::Protobuf, Escaping::AllowUtf8, "protobuf")
        );
    }

    #[test]
    fn the_default_scheme_applies_where_none_is_named() {
        let n = negotiate(["text/plain;version=0.0.4"], Escaping::AllowUtf8);
        assert_eq!(
            (n.format, n.escaping),
            (Format::Text100, Escaping::AllowUtf8)
        );
        assert_eq!(
            n.content_type(),
            "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
        );
        let n = negotiate(
            ["text/plain;version=1.0.0;escaping=underscores"],
            Escaping::AllowUtf8,
        );
        assert_eq!(n.escaping, Escaping::Underscores);
        assert_eq!(
            negotiate(["*/*"], Escaping::Values).content_type(),
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }
}
