//! Creating a checkpoint: built under a hidden name and renamed into place, so a
//! create killed half-way is never listed (and the next run removes what it left).

use super::{archive, gittree, inbox, store};
use af_spool::atomic::{self, Durability};
use af_spool::checkpoint::{self, CHECKPOINT_FILE, Checkpoint, CheckpointId, ConversationCopy, TreeSnapshot};
use af_spool::time::Timestamp;
use af_spool::{AgentId, Error, Result, Spool};
use std::path::Path;
use std::time::Instant;

/// The name of the archive of a working tree outside git.
const ARCHIVE: &str = "tree.tar.gz";
/// The name of the transcript's copy.
const TRANSCRIPT: &str = "transcript.jsonl";

/// Takes a checkpoint of the agent (under its checkpoint lock) and announces it.
pub fn create(spool: &Spool, id: &AgentId, description: &str) -> Result<Checkpoint> {
    if description.len() > 4096 || description.contains('\0') {
        return Err(Error::Invalid("the description must be at most 4096 bytes, without NUL".into()));
    }
    let _lock = store::lock(spool, id)?;
    let c = take(spool, id, description)?;
    store::announce(
        spool,
        "checkpoint.created",
        id,
        serde_json::json!({"checkpoint": c.id, "description": c.description, "holds": c.holds, "tookMs": c.took_ms}),
    );
    Ok(c)
}

/// Takes a checkpoint; call under the agent's checkpoint lock.
pub fn take(spool: &Spool, id: &AgentId, description: &str) -> Result<Checkpoint> {
    let t0 = Instant::now();
    let build = store::scratch(spool, id, "build");
    atomic::create_dir(&build)?;
    let built = fill(spool, id, description, &build, t0);
    let c = match built {
        Ok(c) => c,
        Err(e) => {
            // Leave the hidden directory to the next run's clean-up if we cannot remove it now.
            if let Ok(text) = std::fs::read_to_string(build.join(store::PENDING_REF)) {
                if let Some((top, r)) = text.split_once('\n') {
                    gittree::forget_ref(Path::new(top), r.trim_end());
                }
            }
            let _ = std::fs::remove_dir_all(&build);
            return Err(e);
        }
    };
    let target = spool.checkpoint_dir(id, &c.id);
    std::fs::rename(&build, &target).map_err(|e| Error::io("rename into", &target, e))?;
    atomic::sync_dir(&spool.checkpoints_dir(id))?;
    Ok(c)
}

fn fill(spool: &Spool, id: &AgentId, description: &str, build: &Path, t0: Instant) -> Result<Checkpoint> {
    let ckpt = CheckpointId::generate();
    let created_at = Timestamp::now();
    let config = spool.read_config(id)?;
    let state = spool.read_state(id)?;
    atomic::write_json(&build.join(af_spool::spool::CONFIG_FILE), &config, Durability::Volatile)?;
    atomic::write_json(&build.join(af_spool::spool::STATE_FILE), &state, Durability::Volatile)?;
    let mut holds = vec!["config".to_owned(), "state".to_owned()];
    let messages = inbox::capture(spool, id, &build.join("inbox"))?;
    holds.push("messages".into());
    let conversation = match &state.conversation {
        Some(conv) => {
            let mut copy = None;
            let t = &conv.transcript;
            match std::fs::copy(t, build.join(TRANSCRIPT)) {
                Ok(_) => copy = Some(TRANSCRIPT.to_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("copy the transcript", t, e)),
            }
            holds.push("conversation".into());
            Some(ConversationCopy { session_id: conv.session_id.clone(), transcript: Some(t.clone()), copy })
        }
        None => None,
    };
    let workdir = config.workdir.clone().filter(|w| w.is_dir());
    let tree = match &workdir {
        Some(dir) => {
            holds.push("workdir".into());
            Some(snapshot_tree(spool, id, &ckpt, dir, build, description)?)
        }
        None => None,
    };
    let c = Checkpoint {
        id: ckpt,
        agent: id.clone(),
        description: description.to_owned(),
        created_at,
        holds,
        workdir,
        tree,
        messages,
        conversation,
        took_ms: t0.elapsed().as_millis() as u64,
    };
    atomic::write_json(&build.join(CHECKPOINT_FILE), &c, Durability::Durable)?;
    Ok(c)
}

fn snapshot_tree(
    spool: &Spool,
    id: &AgentId,
    ckpt: &CheckpointId,
    dir: &Path,
    build: &Path,
    description: &str,
) -> Result<TreeSnapshot> {
    match gittree::Repo::discover(dir)? {
        Some(repo) => {
            let cache = spool.index_cache_path(id, &repo.top);
            let repo = repo.with_cache(cache).excluding(spool.root());
            let reference = checkpoint::git_ref(id, ckpt);
            // Written before the ref exists, so a killed run's leftover names the ref to delete.
            let pending = format!("{}\n{reference}\n", repo.top.display());
            atomic::write(&build.join(store::PENDING_REF), pending.as_bytes(), Durability::Volatile)?;
            let message = format!("af-checkpoint {id} {ckpt}\n\n{description}");
            let snap = repo.snapshot(&build.join("index.tmp"), &reference, &message)?;
            Ok(TreeSnapshot::Git { repo: repo.top, reference, commit: snap.commit, tree: snap.tree, head: snap.head })
        }
        None => {
            let bytes = archive::create(dir, &build.join(ARCHIVE), spool.root())?;
            Ok(TreeSnapshot::Archive { file: ARCHIVE.into(), bytes })
        }
    }
}
