//! `af-checkpoint diff`: what changed in the agent's working tree since a checkpoint.

use super::{print_json, print_line};
use af_ops::checkpoint::{archive, gittree, store};
use af_spool::checkpoint::TreeSnapshot;
use af_spool::{AgentId, Error, ExitCode, Spool};

pub fn run(spool: &Spool, id: &AgentId, ckpt: &str, patch: bool, json: bool) -> anyhow::Result<ExitCode> {
    let c = store::find(spool, id, ckpt)?;
    let text = match &c.tree {
        Some(TreeSnapshot::Git { repo, tree, .. }) => {
            let repo = gittree::Repo::at(repo)?.with_cache(spool.index_cache_path(id, repo)).excluding(spool.root());
            repo.diff(&store::scratch(spool, id, "diff-index"), tree, patch && !json)?
        }
        Some(TreeSnapshot::Archive { file, .. }) => {
            let dir = c.workdir.as_deref().ok_or_else(|| Error::Invalid("the checkpoint names no workdir".into()))?;
            let archive = spool.checkpoint_dir(id, &c.id).join(file);
            archive::diff(dir, &archive, &store::scratch(spool, id, "diff"), spool.root())?
        }
        None => return Err(Error::NotFound(format!("checkpoint '{}' holds no working tree", c.id)).into()),
    };
    if json {
        let rows: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(s, p)| serde_json::json!({"status": s, "path": p}))
            .collect();
        print_json(&serde_json::Value::Array(rows))?;
    } else if !text.is_empty() {
        print_line(&text)?;
    }
    Ok(ExitCode::Ok)
}
