//! Prometheus metrics, hand-written text exposition: request counts by status class and a
//! latency histogram, plus job counts read at scrape time.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use crate::state::AppState;

const BUCKETS_MS: [u64; 10] = [1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000];

#[derive(Default)]
pub struct Metrics {
    by_class: [AtomicU64; 5],
    buckets: [AtomicU64; BUCKETS_MS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    in_flight: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, status: u16, micros: u64) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.by_class[class].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(micros, Relaxed);
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if micros <= b * 1000 {
                self.buckets[i].fetch_add(1, Relaxed);
            }
        }
    }

    pub fn render(&self, jobs: &[(String, i64)]) -> String {
        let mut o = String::new();
        o.push_str("# HELP guanxi_http_requests_total HTTP requests by status class.\n# TYPE guanxi_http_requests_total counter\n");
        for (i, c) in self.by_class.iter().enumerate() {
            let _ = writeln!(
                o,
                "guanxi_http_requests_total{{class=\"{}xx\"}} {}",
                i + 1,
                c.load(Relaxed)
            );
        }
        o.push_str("# HELP guanxi_http_request_duration_seconds Request latency.\n# TYPE guanxi_http_request_duration_seconds histogram\n");
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            let _ = writeln!(
                o,
                "guanxi_http_request_duration_seconds_bucket{{le=\"{}\"}} {}",
                *b as f64 / 1000.0,
                self.buckets[i].load(Relaxed)
            );
        }
        let n = self.count.load(Relaxed);
        let _ = writeln!(
            o,
            "guanxi_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {n}"
        );
        let _ = writeln!(
            o,
            "guanxi_http_request_duration_seconds_sum {}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(o, "guanxi_http_request_duration_seconds_count {n}");
        o.push_str("# HELP guanxi_http_requests_in_flight Requests being handled now.\n# TYPE guanxi_http_requests_in_flight gauge\n");
        let _ = writeln!(
            o,
            "guanxi_http_requests_in_flight {}",
            self.in_flight.load(Relaxed)
        );
        o.push_str("# HELP guanxi_jobs Jobs in the queue by status.\n# TYPE guanxi_jobs gauge\n");
        for (status, count) in jobs {
            let _ = writeln!(o, "guanxi_jobs{{status=\"{status}\"}} {count}");
        }
        o
    }
}

/// Counts a request in flight until it is answered or dropped.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

pub async fn track(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    s.metrics.in_flight.fetch_add(1, Relaxed);
    let _guard = InFlight(&s.metrics.in_flight);
    let r = next.run(req).await;
    s.metrics
        .observe(r.status().as_u16(), start.elapsed().as_micros() as u64);
    r
}
