//! Prometheus metrics, written in the text exposition format (version 0.0.4) at `GET /metrics`:
//! counters, gauges and histograms keyed by their label sets. Small enough not to need a crate;
//! one mutex guards it (a few hundred nanoseconds per request, never held across an await).
//!
//! Layer: serving.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Latency buckets in seconds (Prometheus' defaults, extended to a minute for generation).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];
/// Batch-size buckets (rows per forward pass).
pub const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

#[derive(Clone, Debug, Default)]
struct Histogram {
    buckets: Vec<f64>,
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

struct Family {
    help: &'static str,
    kind: Kind,
    values: BTreeMap<String, f64>,
    histograms: BTreeMap<String, Histogram>,
}

/// The server's metrics registry.
pub struct Metrics {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

/// `{a="x",b="y"}` with values escaped as the format asks (backslash, quote, newline).
fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            families: Mutex::new(BTreeMap::new()),
        }
    }

    fn with_family(&self, name: &'static str, help: &'static str, kind: Kind, f: impl FnOnce(&mut Family)) {
        // A panic elsewhere while holding the lock leaves plain numbers behind: still usable.
        let mut fams = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let fam = fams.entry(name).or_insert_with(|| Family {
            help,
            kind,
            values: BTreeMap::new(),
            histograms: BTreeMap::new(),
        });
        f(fam);
    }

    /// Adds `by` to a counter.
    pub fn add(&self, name: &'static str, help: &'static str, label_pairs: &[(&str, &str)], by: f64) {
        self.with_family(name, help, Kind::Counter, |f| {
            *f.values.entry(labels(label_pairs)).or_insert(0.0) += by;
        });
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, help: &'static str, label_pairs: &[(&str, &str)], value: f64) {
        self.with_family(name, help, Kind::Gauge, |f| {
            f.values.insert(labels(label_pairs), value);
        });
    }

    /// Records one observation in a histogram with upper bounds `buckets` (ascending).
    pub fn observe(
        &self,
        name: &'static str,
        help: &'static str,
        label_pairs: &[(&str, &str)],
        buckets: &[f64],
        value: f64,
    ) {
        self.with_family(name, help, Kind::Histogram, |f| {
            let h = f.histograms.entry(labels(label_pairs)).or_insert_with(|| Histogram {
                buckets: buckets.to_vec(),
                counts: vec![0; buckets.len()],
                ..Histogram::default()
            });
            for (b, c) in h.buckets.iter().zip(h.counts.iter_mut()) {
                if value <= *b {
                    *c += 1;
                }
            }
            h.sum += value;
            h.count += 1;
        });
    }

    /// A counter's or gauge's current value (0 when never set); a histogram's count.
    pub fn value(&self, name: &str, label_pairs: &[(&str, &str)]) -> f64 {
        let fams = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let key = labels(label_pairs);
        fams.get(name).map_or(0.0, |f| {
            f.values
                .get(&key)
                .copied()
                .or_else(|| f.histograms.get(&key).map(|h| h.count as f64))
                .unwrap_or(0.0)
        })
    }

    /// Every metric in Prometheus' text format.
    pub fn render(&self) -> String {
        let fams = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, f) in fams.iter() {
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", f.help);
            for (l, v) in &f.values {
                let _ = writeln!(out, "{name}{l} {v}");
            }
            for (l, h) in &f.histograms {
                // `le` joins the other labels: `{model="m",le="0.5"}`.
                let with_le = |le: &str| match l.strip_suffix('}') {
                    Some(open) => format!("{open},le=\"{le}\"}}"),
                    None => format!("{{le=\"{le}\"}}"),
                };
                for (b, c) in h.buckets.iter().zip(&h.counts) {
                    let _ = writeln!(out, "{name}_bucket{} {c}", with_le(&b.to_string()));
                }
                let _ = writeln!(out, "{name}_bucket{} {}", with_le("+Inf"), h.count);
                let _ = writeln!(out, "{name}_sum{l} {}", h.sum);
                let _ = writeln!(out, "{name}_count{l} {}", h.count);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let m = Metrics::new();
        m.add("reqs_total", "Requests.", &[("model", "a\"b")], 2.0);
        m.observe("lat_seconds", "Latency.", &[("route", "x")], &[0.1, 1.0], 0.5);
        m.observe("lat_seconds", "Latency.", &[("route", "x")], &[0.1, 1.0], 0.05);
        let text = m.render();
        assert!(
            text.contains("# TYPE reqs_total counter\nreqs_total{model=\"a\\\"b\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("lat_seconds_bucket{route=\"x\",le=\"0.1\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("lat_seconds_bucket{route=\"x\",le=\"1\"} 2\n"), "{text}");
        assert!(
            text.contains("lat_seconds_bucket{route=\"x\",le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("lat_seconds_count{route=\"x\"} 2\n"), "{text}");
        assert_eq!(m.value("lat_seconds", &[("route", "x")]), 2.0);
        assert_eq!(m.value("reqs_total", &[("model", "a\"b")]), 2.0);
    }
}
