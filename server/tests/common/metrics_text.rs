//! A strict reader of Prometheus' text exposition format (0.0.4), for tests: every family
//! has its HELP and TYPE before its samples, names and labels are well formed, no series
//! repeats, and a histogram's buckets are cumulative and end in `+Inf` equal to its count.

use std::collections::{BTreeMap, BTreeSet};

/// Checks `text` and returns its samples by series (`name{labels}` as written).
pub fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(valid_name(name), "bad name in {line:?}");
            assert!(helped.insert(name.to_string()), "HELP twice: {line:?}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(helped.contains(name), "TYPE before HELP: {line:?}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line:?}"
            );
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "TYPE twice: {line:?}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
        let name = series.split('{').next().unwrap();
        assert!(valid_name(name), "bad name in {line:?}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                check_labels(labels, line);
            }
        }
        let family = family_of(name, &types);
        let kind = types
            .get(&family)
            .unwrap_or_else(|| panic!("sample before its TYPE: {line:?}"));
        if kind == "counter" {
            assert!(
                name.ends_with("_total"),
                "a counter's samples end in _total: {line:?}"
            );
        }
        let v = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        assert!(
            samples.insert(series.to_string(), v).is_none(),
            "repeated {series}"
        );
    }
    check_histograms(&samples, &types);
    samples
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn check_labels(labels: &str, line: &str) {
    let inner = labels
        .strip_prefix('{')
        .and_then(|l| l.strip_suffix('}'))
        .unwrap_or_else(|| panic!("labels in braces: {line:?}"));
    let mut seen = BTreeSet::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let (k, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("{line:?}"));
        assert!(
            valid_name(k) && !k.starts_with("__"),
            "bad label {k:?} in {line:?}"
        );
        assert!(seen.insert(k), "label twice in {line:?}");
        // The value ends at the first quote not escaped.
        let mut end = None;
        let mut escaped = false;
        for (i, ch) in after.char_indices() {
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.unwrap_or_else(|| panic!("unterminated label value in {line:?}"));
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
}

/// The family a sample belongs to (`x_bucket` → `x` for a histogram `x`).
fn family_of(name: &str, types: &BTreeMap<String, String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types
                .get(base)
                .is_some_and(|k| k == "histogram" || k == "summary")
            {
                return base.to_string();
            }
        }
    }
    name.to_string()
}

fn check_histograms(samples: &BTreeMap<String, f64>, types: &BTreeMap<String, String>) {
    for (family, _) in types.iter().filter(|(_, k)| *k == "histogram") {
        // Buckets by their series without `le`, in the order written is lost in a map:
        // collect (le, value) per series and check them sorted by le.
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for (s, v) in samples {
            let Some(labels) = s.strip_prefix(&format!("{family}_bucket")) else {
                continue;
            };
            let le_at = labels.find("le=\"").expect("a bucket has le");
            let le_end = labels[le_at + 4..].find('"').unwrap() + le_at + 4;
            let le = match &labels[le_at + 4..le_end] {
                "+Inf" => f64::INFINITY,
                x => x.parse().expect("le is a number"),
            };
            let rest = format!("{}{}", &labels[..le_at], &labels[le_end + 1..])
                .replace(",}", "}")
                .replace("{,", "{")
                .replace("{}", "");
            series.entry(rest).or_default().push((le, *v));
        }
        for (rest, mut buckets) in series {
            buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{family}{rest}: buckets not cumulative"
            );
            let (last_le, last) = *buckets.last().unwrap();
            assert!(last_le.is_infinite(), "{family}{rest}: no +Inf bucket");
            let count = samples[&format!("{family}_count{rest}")];
            assert_eq!(last, count, "{family}{rest}: +Inf bucket is not the count");
            assert!(samples.contains_key(&format!("{family}_sum{rest}")));
        }
    }
}
