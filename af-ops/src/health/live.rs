//! The health an agent shows from the moment it runs: af-wrap's heartbeats give a verdict before
//! any af-health pass, and a pass's verdict (which checks more: ping, memory, CPU, tasks) takes
//! its place once one judged the agent since it last started. Derived when read, never stored.

use super::Policy;
use af_spool::record::{Health, Heartbeat, Status};
use af_spool::{Observed, Spool};

/// The agent's health now, with af-health's default policy: see [`judge`]. Reads the heartbeat
/// of running agents only.
pub fn health(spool: &Spool, obs: &Observed) -> Health {
    if obs.status() != Status::Running {
        return obs.state.health;
    }
    let beat = spool.read_heartbeat(&obs.config.id).ok().flatten();
    judge(obs, beat.as_ref(), &Policy::default())
}

/// The verdict: an agent that is not running keeps its recorded health (`unknown` once stopped).
/// For a running one, a heartbeat of this supervisor older than the policy's stale
/// threshold (stretched to the interval the beat advertised: [`Policy::stale_after_ms`]) is
/// `unhealthy` (whatever an earlier pass said), older than half of it `degraded`;
/// otherwise af-health's verdict since the start, if any, else `healthy` while the agent's
/// process is up (`unhealthy` when it is gone). No heartbeat yet is `unknown`.
pub fn judge(obs: &Observed, beat: Option<&Heartbeat>, policy: &Policy) -> Health {
    if obs.status() != Status::Running {
        return obs.state.health;
    }
    let beat = beat.filter(|b| obs.state.wrap_pid.is_none_or(|w| w == b.wrap_pid));
    let Some(beat) = beat else { return obs.state.health };
    let age = beat.time.age_ms();
    let stale_ms = policy.stale_after_ms(Some(beat));
    if age > stale_ms {
        return Health::Unhealthy;
    }
    if obs.state.health != Health::Unknown {
        return obs.state.health;
    }
    if obs.state.pid.is_some_and(|p| !crate::procfs::same_process(p, obs.state.pid_start)) {
        return Health::Unhealthy;
    }
    if age > stale_ms / 2 { Health::Degraded } else { Health::Healthy }
}

/// `af-spawn ls --json`'s fields for one agent ([`Observed::summary`]) with the health of
/// [`health`].
pub fn summary(spool: &Spool, obs: &Observed) -> serde_json::Value {
    let mut v = obs.summary();
    v["health"] = serde_json::json!(health(spool, obs));
    v
}
