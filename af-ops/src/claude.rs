//! Claude Code operations: where the CLI keeps its transcripts, saving and restoring them for
//! checkpoints, new session ids, a project's spending and its shared turn rate.

use af_spool::atomic::{self, Durability};
use af_spool::claude::{AccountLimit, Conversation, Tokens, is_uuid};
use af_spool::lock::Lock;
use af_spool::record::{AgentConfig, AgentType};
use af_spool::time::Timestamp;
use af_spool::{Error, Result, Spool};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The CLI's configuration directory: `CLAUDE_CONFIG_DIR` from the agent's environment, else from
/// ours, else `~/.claude`.
pub fn config_dir(environment: &std::collections::BTreeMap<String, String>) -> PathBuf {
    if let Some(d) = environment.get("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    PathBuf::from(home).join(".claude")
}

/// The CLI's name for a working directory: every character that is not an ASCII letter or digit
/// becomes `-`.
pub fn mangle_cwd(cwd: &Path) -> String {
    cwd.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
}

/// Where the CLI keeps the transcript of `session` run in `cwd`.
pub fn transcript_path(config_dir: &Path, cwd: &Path, session: &str) -> PathBuf {
    config_dir.join("projects").join(mangle_cwd(cwd)).join(format!("{session}.jsonl"))
}

/// A fresh random (version 4) UUID, for a new session.
pub fn new_session_id() -> Result<String> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| Error::io("read", Path::new("/dev/urandom"), e))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

/// Copies a conversation's transcript into `dir` (a checkpoint's folder), as `<session>.jsonl`.
/// `Ok(None)` when the session has no transcript yet (no turn ran).
pub fn save_transcript(conv: &Conversation, dir: &Path) -> Result<Option<PathBuf>> {
    let bytes = match std::fs::read(&conv.transcript) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", &conv.transcript, e)),
    };
    if !is_uuid(&conv.session_id) {
        return Err(Error::Invalid(format!("session id '{}' is not a UUID", conv.session_id)));
    }
    atomic::create_dir(dir)?;
    let saved = dir.join(format!("{}.jsonl", conv.session_id));
    atomic::write(&saved, &bytes, Durability::Durable)?;
    Ok(Some(saved))
}

/// Puts a saved transcript back where the CLI looks for the conversation's session (atomically),
/// so that the agent's next start resumes the conversation as it was saved.
pub fn restore_transcript(conv: &Conversation, saved: &Path) -> Result<()> {
    let bytes = std::fs::read(saved).map_err(|e| Error::io("read", saved, e))?;
    if let Some(dir) = conv.transcript.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }
    atomic::write(&conv.transcript, &bytes, Durability::Durable)
}

/// Refuses a claude-code agent that would run `bypassPermissions` as root (`as_root`) without
/// `IS_SANDBOX=1` (in its environment, or ours, which its af-wrap inherits): the CLI itself
/// refuses to start so, and the agent could never take a task.
pub fn check_root_bypass(config: &AgentConfig, as_root: bool) -> Result<()> {
    let bypass = config.claude.as_ref().and_then(|c| c.permission_mode.as_deref()) == Some("bypassPermissions");
    if config.kind != AgentType::ClaudeCode || !bypass || !as_root {
        return Ok(());
    }
    let sandbox = config.environment.get("IS_SANDBOX").cloned().or_else(|| std::env::var("IS_SANDBOX").ok());
    if sandbox.as_deref() == Some("1") {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "agent '{}': claude.permissionMode bypassPermissions as root needs \"IS_SANDBOX\": \"1\" in environment \
         (the claude CLI refuses to skip permissions as root outside a sandbox); run as another user, \
         or choose another permissionMode",
        config.id
    )))
}

/// Money spent by every agent of a project (each agent's latest session total, summed).
pub fn project_cost(spool: &Spool, project: &str) -> Result<(f64, Tokens)> {
    let mut cost = 0.0;
    let mut tokens = Tokens::default();
    for id in spool.agent_ids()? {
        let (Ok(config), Ok(state)) = (spool.read_config(&id), spool.read_state(&id)) else { continue };
        if config.project_id == project {
            cost += state.cost_usd;
            tokens = tokens.plus(state.tokens);
        }
    }
    Ok((cost, tokens))
}

/// Records that the account of `limit.config_dir` is under a usage limit until `limit.resets_at`.
/// `true` when this is news (no limit of the account was in force): the caller alerts once per
/// limit. A later reset than the one recorded replaces it.
pub fn record_account_limit(spool: &Spool, limit: &AccountLimit) -> Result<bool> {
    let path = spool.account_limit_path(&limit.config_dir);
    if let Some(dir) = path.parent() {
        atomic::create_dir(dir)?;
    }
    let _lock = Lock::exclusive(&atomic::sibling(&path, ".lock"))?;
    let now = Timestamp::now();
    let current: Option<AccountLimit> =
        atomic::read_json(&path).unwrap_or(None).filter(|l: &AccountLimit| l.resets_at.0 > now.0);
    if current.as_ref().is_some_and(|c| c.resets_at.0 >= limit.resets_at.0) {
        return Ok(false);
    }
    atomic::write_json(&path, limit, Durability::Volatile)?;
    Ok(current.is_none())
}

/// The usage limit the account of `config_dir` is under now, if any.
pub fn account_limit(spool: &Spool, config_dir: &Path) -> Result<Option<AccountLimit>> {
    let path = spool.account_limit_path(config_dir);
    let now = Timestamp::now();
    Ok(atomic::read_json::<AccountLimit>(&path)?.filter(|l| l.resets_at.0 > now.0))
}

/// Takes one of the project's `limit` turns per minute: `None` when taken, else when the next one
/// is free. Under a lock, so agents of one project never take the same slot.
pub fn take_project_turn(spool: &Spool, project: &str, limit: u32) -> Result<Option<Timestamp>> {
    let path = spool.project_turns_path(project);
    if let Some(dir) = path.parent() {
        atomic::create_dir(dir)?;
    }
    let _lock = Lock::exclusive(&atomic::sibling(&path, ".lock"))?;
    let now = Timestamp::now();
    let mut turns: Vec<u64> = atomic::read_json(&path).unwrap_or(None).unwrap_or_default();
    turns.retain(|t| now.0.saturating_sub(*t) < 60_000);
    if turns.len() >= limit as usize {
        return Ok(turns.iter().min().map(|t| Timestamp(t + 60_000)));
    }
    turns.push(now.0);
    atomic::write_json(&path, &turns, Durability::Volatile)?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_live_under_the_mangled_cwd() {
        let p = transcript_path(Path::new("/h/.claude"), Path::new("/tmp/my_dir.x"), "abc");
        assert_eq!(p, Path::new("/h/.claude/projects/-tmp-my-dir-x/abc.jsonl"));
    }

    #[test]
    fn a_project_takes_at_most_its_turns_per_minute() {
        let root = std::env::temp_dir().join(atomic::unique_name("claude-test"));
        let spool = Spool::open(&root).unwrap();
        assert_eq!(take_project_turn(&spool, "org/repo", 2).unwrap(), None);
        assert_eq!(take_project_turn(&spool, "org/repo", 2).unwrap(), None);
        let free = take_project_turn(&spool, "org/repo", 2).unwrap().expect("the third is refused");
        assert!(free.0 > Timestamp::now().0 + 50_000, "free again about a minute later");
        assert_eq!(take_project_turn(&spool, "other", 2).unwrap(), None, "projects count apart");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_account_limit_is_news_once_until_its_reset() {
        let root = std::env::temp_dir().join(atomic::unique_name("claude-test"));
        let spool = Spool::open(&root).unwrap();
        let dir = Path::new("/home/me/.claude");
        let at = |secs: u64| AccountLimit {
            config_dir: dir.into(),
            resets_at: Timestamp(Timestamp::now().0 + secs * 1000),
            kind: Some("five_hour".into()),
            agent: "a".into(),
        };
        assert_eq!(account_limit(&spool, dir).unwrap(), None);
        assert!(record_account_limit(&spool, &at(60)).unwrap(), "news");
        assert!(!record_account_limit(&spool, &at(30)).unwrap(), "the same limit, from another agent");
        assert!(!record_account_limit(&spool, &at(90)).unwrap(), "a later reset: kept, no news");
        let now = account_limit(&spool, dir).unwrap().expect("in force");
        assert!(now.resets_at.0 > Timestamp::now().0 + 80_000);
        assert_eq!(account_limit(&spool, Path::new("/other")).unwrap(), None, "accounts apart");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn session_ids_are_uuids() {
        let a = new_session_id().unwrap();
        assert!(is_uuid(&a), "{a}");
        assert_ne!(a, new_session_id().unwrap());
        assert!(!is_uuid("../x"));
        assert!(!is_uuid("1234"));
    }
}
