//! `GET /api/cluster`: every bridged host (reachable or not, its counts by status) and its
//! agents, as their `af-bus bridge` last published them to the Redis of `AF_REDIS_URL`; the
//! same records as `af-spawn ls --cluster --json`, and the cluster-wide pools' lanes (`pools`,
//! as `af-bus stats --cluster --json` lists them). `GET /api/agents?cluster=1` lists the same
//! agents (see agents.rs).

use crate::http::{Answer, ApiError, Reply};
use crate::routes::App;
use af_ops::bridge::{cluster, pool};

/// `GET /api/cluster`: 404 when af-api has no `AF_REDIS_URL`, 502 when Redis cannot be reached.
/// The document carries `thisHost`, this af-api's own host name (the dashboard shows it first),
/// and `pools`, every lane of every cluster-wide pool (as `af-bus stats --cluster`).
pub fn get(_app: &App) -> Answer {
    let mut doc = cluster::document(&hosts()?);
    doc["thisHost"] = af_spool::host::own_host()?.into();
    doc["pools"] = serde_json::to_value(pool::figures(&url()?)?).map_err(|e| ApiError::new(500, e.to_string()))?;
    Ok(Reply::json(200, &doc))
}

/// Every bridged host's state, read from the Redis of `AF_REDIS_URL`: 404 without one, 502 when
/// it cannot be reached.
pub fn hosts() -> Result<Vec<cluster::HostState>, ApiError> {
    Ok(cluster::read(&url()?)?)
}

/// `AF_REDIS_URL`: 404 without one.
fn url() -> Result<String, ApiError> {
    std::env::var("AF_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::new(404, "no cluster: af-api runs without AF_REDIS_URL"))
}
