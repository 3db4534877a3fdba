//! Prometheus text metrics: requests by route, status and decision; handshakes by result and
//! reason; open connections; upstream health and certificate expiry (read at scrape time).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// Counters shared by every listener; they survive reloads.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16, &'static str), u64>>,
    handshakes: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    tcp: Mutex<BTreeMap<(String, &'static str), u64>>,
    tcp_bytes: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Connections open now.
    pub connections: AtomicI64,
    /// Connections refused because the listener was full.
    pub connections_rejected: AtomicU64,
    /// Successful reloads.
    pub reloads: AtomicU64,
    /// Failed reloads (the old configuration kept serving).
    pub reload_failures: AtomicU64,
    /// Times freed memory was given back to the kernel.
    memory_trims: AtomicU64,
    /// Nanoseconds those took.
    memory_trim_nanos: AtomicU64,
}

/// One gauge line supplied at scrape time.
#[derive(Debug, Clone)]
pub struct Gauge {
    /// Metric name.
    pub name: &'static str,
    /// Label pairs.
    pub labels: Vec<(&'static str, String)>,
    /// Value.
    pub value: f64,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts one request.
    pub fn request(&self, route: &str, status: u16, decision: &'static str) {
        let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        // Look up before inserting so that the hot path allocates no key.
        if let Some(v) = m
            .iter_mut()
            .find(|((r, s, d), _)| r == route && *s == status && *d == decision)
        {
            *v.1 += 1;
            return;
        }
        m.insert((route.to_string(), status, decision), 1);
    }

    /// Counts one handshake: `result` is `ok` or `refused`, `reason` a refusal code.
    pub fn handshake(&self, result: &'static str, reason: &'static str) {
        let mut m = self.handshakes.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((result, reason)).or_insert(0) += 1;
    }

    /// Counts one relayed connection of a `tcp` listener: how it ended and the bytes it moved.
    pub fn tcp(&self, route: &str, result: &'static str, moved: crate::tcp::Moved) {
        let mut m = self.tcp.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((route.to_string(), result)).or_insert(0) += 1;
        drop(m);
        let mut b = self.tcp_bytes.lock().unwrap_or_else(|p| p.into_inner());
        *b.entry((route.to_string(), "up")).or_insert(0) += moved.up;
        *b.entry((route.to_string(), "down")).or_insert(0) += moved.down;
    }

    /// Counts one time freed memory was given back to the kernel, and how long it took.
    pub fn memory_trim(&self, took: std::time::Duration) {
        self.memory_trims.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.memory_trim_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with the given values read at scrape time appended.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let mut out = String::new();
        out.push_str("# HELP mutual_proxy_requests_total Requests by route, status and decision.\n# TYPE mutual_proxy_requests_total counter\n");
        for ((route, status, decision), v) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(out, "mutual_proxy_requests_total{{route=\"{}\",status=\"{status}\",decision=\"{decision}\"}} {v}", escape(route));
        }
        out.push_str("# HELP mutual_proxy_handshakes_total TLS handshakes by result and reason.\n# TYPE mutual_proxy_handshakes_total counter\n");
        for ((result, reason), v) in self
            .handshakes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "mutual_proxy_handshakes_total{{result=\"{result}\",reason=\"{reason}\"}} {v}"
            );
        }
        out.push_str("# HELP mutual_proxy_tcp_connections_total Connections relayed by tcp listeners, by how they ended.\n# TYPE mutual_proxy_tcp_connections_total counter\n");
        for ((route, result), v) in self.tcp.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "mutual_proxy_tcp_connections_total{{route=\"{}\",result=\"{result}\"}} {v}",
                escape(route)
            );
        }
        out.push_str("# HELP mutual_proxy_tcp_bytes_total Bytes relayed by tcp listeners (up: caller to upstream).\n# TYPE mutual_proxy_tcp_bytes_total counter\n");
        for ((route, dir), v) in self
            .tcp_bytes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "mutual_proxy_tcp_bytes_total{{route=\"{}\",direction=\"{dir}\"}} {v}",
                escape(route)
            );
        }
        let _ = writeln!(
            out,
            "# TYPE mutual_proxy_connections gauge\nmutual_proxy_connections {}",
            self.connections.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE mutual_proxy_connections_rejected_total counter\nmutual_proxy_connections_rejected_total {}", self.connections_rejected.load(Ordering::Relaxed));
        let _ = writeln!(out, "# TYPE mutual_proxy_reloads_total counter\nmutual_proxy_reloads_total{{result=\"ok\"}} {}\nmutual_proxy_reloads_total{{result=\"failed\"}} {}", self.reloads.load(Ordering::Relaxed), self.reload_failures.load(Ordering::Relaxed));
        out.push_str("# HELP mutual_proxy_memory_trims_total Times memory freed by connections was given back to the kernel.\n# TYPE mutual_proxy_memory_trims_total counter\n");
        let _ = writeln!(
            out,
            "mutual_proxy_memory_trims_total {}",
            self.memory_trims.load(Ordering::Relaxed)
        );
        out.push_str("# HELP mutual_proxy_memory_trim_seconds_total Time spent giving freed memory back to the kernel.\n# TYPE mutual_proxy_memory_trim_seconds_total counter\n");
        let _ = writeln!(
            out,
            "mutual_proxy_memory_trim_seconds_total {}",
            self.memory_trim_nanos.load(Ordering::Relaxed) as f64 / 1e9
        );
        out.push_str("# HELP mutual_proxy_allocator_info The allocator the proxy runs on (jemalloc; system where jemalloc is not built).\n# TYPE mutual_proxy_allocator_info gauge\n");
        let _ = writeln!(
            out,
            "mutual_proxy_allocator_info{{allocator=\"{}\"}} 1",
            mutual_alloc::kind().name()
        );
        let mut last = "";
        for g in gauges {
            if g.name != last {
                // Counts read at scrape time are counters by the `_total` convention.
                let kind = if g.name.ends_with("_total") {
                    "counter"
                } else {
                    "gauge"
                };
                let _ = writeln!(out, "# TYPE {} {kind}", g.name);
                last = g.name;
            }
            let labels: Vec<String> = g
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(out, "{}{{{}}} {}", g.name, labels.join(","), g.value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.request("www.example.com/", 200, "allow");
        m.request("www.example.com/", 200, "allow");
        m.request("www.example.com/", 403, "deny");
        m.handshake("refused", "unknown_issuer");
        m.memory_trim(std::time::Duration::from_millis(3));
        m.memory_trim(std::time::Duration::from_micros(1500));
        let text = m.render(&[Gauge {
            name: "mutual_proxy_upstream_healthy",
            labels: vec![
                ("upstream", "echo".into()),
                ("server", "127.0.0.1:8080".into()),
            ],
            value: 1.0,
        }]);
        for want in [
            "mutual_proxy_requests_total{route=\"www.example.com/\",status=\"200\",decision=\"allow\"} 2",
            "mutual_proxy_requests_total{route=\"www.example.com/\",status=\"403\",decision=\"deny\"} 1",
            "mutual_proxy_handshakes_total{result=\"refused\",reason=\"unknown_issuer\"} 1",
            "mutual_proxy_upstream_healthy{upstream=\"echo\",server=\"127.0.0.1:8080\"} 1",
            "# TYPE mutual_proxy_memory_trims_total counter\nmutual_proxy_memory_trims_total 2\n",
            "# TYPE mutual_proxy_memory_trim_seconds_total counter\nmutual_proxy_memory_trim_seconds_total 0.0045\n",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
    }
}
