//! `GET /metrics`: the spool's figures (see `af_ops::metrics`), the cluster-wide pools' (with
//! `AF_REDIS_URL`) and af-api's own, in the Prometheus text format. Served without the token to loopback clients (a Prometheus on this
//! host) or to all with `--metrics-public`; otherwise the token is needed as everywhere else.

use crate::http::{Answer, ApiError, Reply};
use crate::routes::App;
use af_ops::metrics::{Family, Kind, render};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The upper bounds of the request latency histogram, in seconds.
const BOUNDS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// af-api's request figures since it started.
#[derive(Default)]
pub struct HttpFigures {
    inner: Mutex<Figures>,
}

#[derive(Default)]
struct Figures {
    /// (route, status) → requests.
    requests: BTreeMap<(&'static str, u16), u64>,
    /// route → (counts per bucket, beyond the last bucket, sum of seconds).
    latency: BTreeMap<&'static str, ([u64; BOUNDS.len()], u64, f64)>,
}

impl HttpFigures {
    /// Counts a request answered on `route` with `status` after `took`.
    pub fn record(&self, route: &'static str, status: u16, took: Duration) {
        let mut f = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *f.requests.entry((route, status)).or_default() += 1;
        let secs = took.as_secs_f64();
        let (buckets, beyond, sum) = f.latency.entry(route).or_insert(([0; BOUNDS.len()], 0, 0.0));
        match BOUNDS.iter().position(|b| secs <= *b) {
            Some(i) => buckets[i] += 1,
            None => *beyond += 1,
        }
        *sum += secs;
    }

    fn families(&self) -> Vec<Family> {
        let f = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut requests = Family::new(
            "agentflow_api_requests_total",
            Kind::Counter,
            "Requests af-api answered, by route and HTTP status.",
        );
        for ((route, status), n) in &f.requests {
            requests.add(&[("route", route), ("status", &status.to_string())], *n as f64);
        }
        let mut latency = Family::new(
            "agentflow_api_request_duration_seconds",
            Kind::Histogram,
            "How long af-api took to answer, by route (event streams not counted).",
        );
        for (route, (buckets, beyond, sum)) in &f.latency {
            latency.add_histogram(&[("route", route)], &BOUNDS, buckets, *beyond, *sum);
        }
        vec![requests, latency]
    }
}

/// Serves the figures; with `AF_REDIS_URL`, the cluster-wide pools' too (left out, with a warning
/// in the log, while Redis cannot be read).
pub fn serve(app: &App) -> Answer {
    let mut families = af_ops::metrics::gather(&app.spool).map_err(|e| ApiError::new(500, e.to_string()))?;
    if let Some(url) = std::env::var("AF_REDIS_URL").ok().filter(|u| !u.is_empty()) {
        match af_ops::bridge::pool::figures(&url) {
            Ok(lanes) => families.extend(af_ops::metrics::cluster_pools(&lanes)),
            Err(e) => tracing::warn!(error = %e, "metrics without the cluster pools"),
        }
    }
    families.extend(app.http.families());
    Ok(Reply::bytes("text/plain; version=0.0.4; charset=utf-8", render(&families).into_bytes()))
}
