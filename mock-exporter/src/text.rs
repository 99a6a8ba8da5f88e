//! prometheus-client writes OpenMetrics; scrapers that ask for the classic
//! text format 0.0.4 (and `promtool check metrics`) get it converted here.
//!
//! The two differ, for what the catalogue uses, only in three ways: OpenMetrics
//! names a counter family without `_total` while 0.0.4 names it like its
//! samples, and 0.0.4 has neither `# UNIT` nor `# EOF`.

/// Converts prometheus-client's OpenMetrics output to the text format 0.0.4.
pub fn openmetrics_to_text(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    let mut pending_help: Option<(&str, &str)> = None;
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help = Some((name, help));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let family = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_string()
            };
            if let Some((help_name, help)) = pending_help.take()
                && help_name == name
            {
                out.push_str(&format!("# HELP {family} {help}\n"));
            }
            out.push_str(&format!("# TYPE {family} {kind}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_renamed_and_trailers_dropped() {
        let om = "# HELP a_requests Requests.\n# TYPE a_requests counter\n# UNIT a_requests x\na_requests_total 1\n# HELP g Gauge.\n# TYPE g gauge\ng 2\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(om),
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\na_requests_total 1\n# HELP g Gauge.\n# TYPE g gauge\ng 2\n"
        );
    }
}
