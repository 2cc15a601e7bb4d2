//! `af-spawn logs`: the tail of what the agent printed (captured from its tmux pane) or of its
//! supervisor's log, and with `--follow`, what comes after (woken by the agent's fifodir, checked
//! every 200 ms; a rotation or truncation starts over at the new beginning).

use super::Ctx;
use af_spool::{AgentId, ExitCode, control};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

pub fn run(ctx: &Ctx, id: &AgentId, follow: bool, lines: usize, supervisor: bool) -> anyhow::Result<ExitCode> {
    ctx.spool.require(id)?;
    let path = if supervisor { ctx.spool.wrap_log_path(id) } else { ctx.spool.output_log_path(id) };
    let mut listener = if follow { Some(control::listen(&ctx.spool, id)?) } else { None };
    let text = std::fs::read(&path).unwrap_or_default();
    let mut offset = text.len() as u64;
    let mut out = std::io::stdout().lock();
    out.write_all(tail(&text, lines))?;
    out.flush()?;
    let Some(listener) = listener.as_mut() else { return Ok(ExitCode::Ok) };
    loop {
        listener.wait(Duration::from_millis(200))?;
        offset = copy_new(&path, offset, &mut out)?;
    }
}

/// The last `n` lines of `text`.
fn tail(text: &[u8], n: usize) -> &[u8] {
    let mut seen = 0;
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &text[i + 1..];
            }
        }
    }
    text
}

/// Copies what was appended since `offset`; returns the new offset.
fn copy_new(path: &Path, offset: u64, out: &mut impl Write) -> anyhow::Result<u64> {
    let Ok(mut f) = std::fs::File::open(path) else { return Ok(0) };
    let len = f.metadata()?.len();
    let start = if len < offset { 0 } else { offset };
    if len == start {
        return Ok(start);
    }
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(len - start).read_to_end(&mut buf)?;
    out.write_all(&buf)?;
    out.flush()?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn tails_lines() {
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(tail(b"a\n", 5), b"a\n");
        assert_eq!(tail(b"", 5), b"");
    }
}
