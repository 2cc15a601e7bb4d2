//! What af-health judges beyond its probes, from the agent's sampled figures: the user's rules
//! (rules.rs) and, without any configuration, anomalies against the agent's own history
//! (anomaly.rs).

use super::figures::Figures;
use super::probe::Finding;
use super::rules::{self, Rule};
use af_spool::record::{Heartbeat, Status};
use af_spool::{Observed, Spool};

/// Samples the agent's figures (while it runs) and adds the checks of its rule.
pub fn figures(spool: &Spool, obs: &Observed, hb: Option<&Heartbeat>, rule: &Rule, f: &mut Finding) {
    let mut figures = Figures::read(spool, &obs.config.id);
    let running = matches!(obs.status(), Status::Running | Status::Paused);
    let sampled = running && figures.sample(spool, obs, hb);
    let anomalies = super::anomaly::judge(&mut figures, sampled);
    if sampled {
        figures.write(spool, &obs.config.id);
    }
    rules::apply(spool, obs, hb, rule, figures.cost_per_hour(), f);
    f.checks.extend(anomalies);
}
