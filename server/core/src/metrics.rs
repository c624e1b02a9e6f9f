//! Prometheus metrics: what this process counts as it works (workspace starts, gateway
//! requests, runtime errors, sign-in failures, open streams), and the text exposition format
//! (version 0.0.4) they are scraped in. Figures read from the database at scrape time (the
//! workspaces by state) are added by the caller through [`Exposition`].

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

/// Seconds from a user's create or start until the IDE answers (or the start failed).
const START_BUCKETS: [f64; 11] = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0];
/// Seconds until the gateway had the IDE's response head.
const GATEWAY_BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Per bucket, not cumulative (made cumulative when written).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }
}

/// The counters of one process (one replica), shared by everything that counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (template, outcome) → start durations.
    starts: Mutex<BTreeMap<(String, &'static str), Histogram>>,
    /// Status class (`2xx` …) → gateway request durations.
    gateway: Mutex<BTreeMap<&'static str, Histogram>>,
    /// Runtime operation → failures.
    runtime_errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Reason → refused sign-ins.
    sign_in_failures: Mutex<BTreeMap<&'static str, u64>>,
    sse_clients: AtomicI64,
    websockets: AtomicI64,
}

/// Decrements its gauge when dropped: held for as long as the stream it counts is open.
#[derive(Debug)]
pub struct Open {
    metrics: Arc<Metrics>,
    websocket: bool,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.metrics
            .gauge(self.websocket)
            .fetch_sub(1, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A user's workspace came up (`running`) or did not (`failed`) after `took`.
    pub fn workspace_started(&self, template: &str, running: bool, took: Duration) {
        let outcome = if running { "running" } else { "failed" };
        lock(&self.starts)
            .entry((template.to_string(), outcome))
            .or_insert_with(|| Histogram::new(&START_BUCKETS))
            .observe(took.as_secs_f64());
    }

    /// The gateway answered a workspace request with `status` after `took`.
    pub fn gateway_request(&self, status: u16, took: Duration) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        lock(&self.gateway)
            .entry(class)
            .or_insert_with(|| Histogram::new(&GATEWAY_BUCKETS))
            .observe(took.as_secs_f64());
    }

    /// A runtime call (`provision`, `start`, `stop`, `destroy`, `hand_over`) failed.
    pub fn runtime_error(&self, operation: &'static str) {
        *lock(&self.runtime_errors).entry(operation).or_default() += 1;
    }

    /// A sign-in was refused: `bad_credentials`, `suspended` or `rate_limited`.
    pub fn sign_in_failed(&self, reason: &'static str) {
        *lock(&self.sign_in_failures).entry(reason).or_default() += 1;
    }

    /// Counts an open dashboard event stream until the guard drops.
    pub fn sse_client(self: &Arc<Self>) -> Open {
        self.open(false)
    }

    /// Counts an open WebSocket through the gateway until the guard drops.
    pub fn websocket(self: &Arc<Self>) -> Open {
        self.open(true)
    }

    fn open(self: &Arc<Self>, websocket: bool) -> Open {
        self.gauge(websocket).fetch_add(1, Ordering::Relaxed);
        Open {
            metrics: self.clone(),
            websocket,
        }
    }

    fn gauge(&self, websocket: bool) -> &AtomicI64 {
        match websocket {
            true => &self.websockets,
            false => &self.sse_clients,
        }
    }

    /// Writes this process's metrics, after `extra` (the figures read at scrape time).
    pub fn render(&self, extra: &Exposition) -> String {
        let mut out = extra.text.clone();
        let starts = lock(&self.starts).clone();
        write_histograms(
            &mut out,
            "qingting_workspace_start_duration_seconds",
            "Seconds from a user's create or start until the IDE answered, or the start failed.",
            starts
                .iter()
                .map(|((t, o), h)| (vec![("template", t.as_str()), ("outcome", *o)], h)),
        );
        let gateway = lock(&self.gateway).clone();
        write_histograms(
            &mut out,
            "qingting_gateway_request_duration_seconds",
            "Seconds until the gateway had the answer to a workspace request, by status class.",
            gateway.iter().map(|(c, h)| (vec![("class", *c)], h)),
        );
        let errors = lock(&self.runtime_errors).clone();
        write_family(
            &mut out,
            "qingting_runtime_errors_total",
            "counter",
            "Runtime calls that failed, by operation.",
            errors
                .iter()
                .map(|(op, n)| (vec![("operation", *op)], *n as f64)),
        );
        let refused = lock(&self.sign_in_failures).clone();
        write_family(
            &mut out,
            "qingting_sign_in_failures_total",
            "counter",
            "Refused sign-ins, by reason.",
            refused
                .iter()
                .map(|(r, n)| (vec![("reason", *r)], *n as f64)),
        );
        let gauge = |a: &AtomicI64| a.load(Ordering::Relaxed).max(0) as f64;
        write_family(
            &mut out,
            "qingting_gateway_open_websockets",
            "gauge",
            "WebSockets open through the gateway of this process.",
            [(vec![], gauge(&self.websockets))],
        );
        write_family(
            &mut out,
            "qingting_dashboard_event_streams",
            "gauge",
            "Dashboards following their workspace list (server-sent events) on this process.",
            [(vec![], gauge(&self.sse_clients))],
        );
        out
    }
}

/// Metrics text built from figures read at scrape time.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    pub fn gauge<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
    ) {
        write_family(&mut self.text, name, "gauge", help, samples);
    }
}

fn write_family<'a>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{} {}", labels_text(&labels, None), number(v));
    }
}

fn write_histograms<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, &'a Histogram)>,
) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (labels, h) in series {
        let mut cumulative = 0;
        for (bound, n) in h.bounds.iter().zip(&h.counts) {
            cumulative += n;
            let le = number(*bound);
            let _ = writeln!(
                out,
                "{name}_bucket{} {cumulative}",
                labels_text(&labels, Some(&le))
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{} {}",
            labels_text(&labels, Some("+Inf")),
            h.count
        );
        let _ = writeln!(
            out,
            "{name}_sum{} {}",
            labels_text(&labels, None),
            number(h.sum)
        );
        let _ = writeln!(
            out,
            "{name}_count{} {}",
            labels_text(&labels, None),
            h.count
        );
    }
}

fn labels_text(labels: &[(&str, &str)], le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    match parts.is_empty() {
        true => String::new(),
        false => format!("{{{}}}", parts.join(",")),
    }
}

fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_end_in_the_count() {
        let m = Metrics::new();
        m.workspace_started("jupyter-python", true, Duration::from_millis(300));
        m.workspace_started("jupyter-python", true, Duration::from_secs(3));
        m.workspace_started("jupyter-python", false, Duration::from_secs(500));
        let text = m.render(&Exposition::default());
        let bucket = |le: &str, outcome: &str| {
            let key = format!(
                "qingting_workspace_start_duration_seconds_bucket{{template=\"jupyter-python\",outcome=\"{outcome}\",le=\"{le}\"}} "
            );
            text.lines()
                .find_map(|l| l.strip_prefix(&key))
                .unwrap_or_else(|| panic!("no {key} in\n{text}"))
                .to_string()
        };
        assert_eq!(bucket("0.25", "running"), "0");
        assert_eq!(bucket("0.5", "running"), "1");
        assert_eq!(bucket("5", "running"), "2");
        assert_eq!(bucket("+Inf", "running"), "2");
        assert_eq!(bucket("120", "failed"), "0");
        assert_eq!(bucket("+Inf", "failed"), "1");
        assert!(text.contains(
            "qingting_workspace_start_duration_seconds_sum{template=\"jupyter-python\",outcome=\"running\"} 3.3"
        ));
    }

    #[test]
    fn open_streams_count_until_dropped_and_labels_are_escaped() {
        let m = Metrics::new();
        let a = m.websocket();
        let _b = m.sse_client();
        let text = m.render(&Exposition::default());
        assert!(text.contains("qingting_gateway_open_websockets 1\n"));
        assert!(text.contains("qingting_dashboard_event_streams 1\n"));
        drop(a);
        assert!(m
            .render(&Exposition::default())
            .contains("qingting_gateway_open_websockets 0\n"));
        assert_eq!(
            labels_text(&[("t", "a\"b\\c\nd")], None),
            "{t=\"a\\\"b\\\\c\\nd\"}"
        );
    }
}
