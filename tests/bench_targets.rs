//! `bench/run.py`'s creation targets (issue 12), computed from rates made
//! up here so that the answer is known: the derived churn creation rate,
//! and the lines it prints (PASS, FAIL, NOT MEASURED).

use std::process::Command;

/// Runs `code` with bench/run.py imported as `run`; its stdout.
fn python(code: &str) -> String {
    let bench = concat!(env!("CARGO_MANIFEST_DIR"), "/bench");
    let out = Command::new("python3")
        .args([
            "-B",
            "-c",
            &format!("import sys\nsys.path.insert(0, {bench:?})\nimport run\n{code}"),
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A churn round is contiguous's with 10% of its series new: from a
/// contiguous rate and a creation rate chosen here, the churn rate they
/// make gives the creation rate back; a churn round no slower than its
/// updates alone gives none.
#[test]
fn churn_creation_rate_inverts_the_round_it_models() {
    let got = python(
        "contiguous, creation = 2.0e6, 1.2e6\n\
         churn = 1 / (0.9 / contiguous + 0.1 / creation)\n\
         print(round(run.churn_creation_rate(churn, contiguous)))\n\
         print(run.churn_creation_rate(contiguous / 0.9, contiguous))\n\
         print(run.churn_creation_rate(3.0e6, 2.0e6))",
    );
    assert_eq!(got, "1200000\nNone\nNone\n");
}

/// The creation lines: one per shape's first round, then churn's derived
/// rate, each PASS (True), FAIL (False) or NOT MEASURED (None) against
/// 1.5 M series/s.
#[test]
fn creation_lines_judge_each_shape_and_churn() {
    let got = python(
        "n = run.CREATION_SERIES\n\
         cell = lambda first, rate: (None, {(n, 'promgate'): {'first': first, 'rate': rate}})\n\
         by_shape = {'contiguous': cell(1.6e6, 2.0e6), 'churn': cell(1.0e6, 1 / (0.9 / 2.0e6 + 0.1 / 1.4e6))}\n\
         for text, ok in run.creation_lines(by_shape, ['contiguous', 'churn']): print(ok, text)\n\
         by_shape['churn'] = cell(1.0e6, 3.0e6)\n\
         print(run.creation_lines(by_shape, ['contiguous', 'churn'])[-1][1])",
    );
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 4, "{got}");
    assert!(
        lines[0].starts_with("True creation 1,000,000 series (contiguous, first round): 1.600 M"),
        "{got}"
    );
    assert!(
        lines[1].starts_with("False creation 1,000,000 series (churn, first round): 1.000 M"),
        "{got}"
    );
    assert!(
        lines[2].starts_with("False creation 1,000,000 series (churn's 10% new"),
        "{got}"
    );
    assert!(lines[2].contains("): 1.400 M series/s"), "{got}");
    assert_eq!(lines[3], "None", "{got}");
}
