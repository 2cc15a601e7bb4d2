//! `af-spawn logs`: the tail of what the agent printed (captured from its tmux pane) or of its
//! supervisor's log (reaching into older generations, compressed or not, when the live file holds
//! fewer lines), and with `--follow`, what comes after (woken by the agent's fifodir, checked
//! every 200 ms; a rotation or truncation starts over at the new beginning).

use super::Ctx;
use af_ops::output::{read_after, tail_of_log};
use af_spool::{AgentId, ExitCode, control};
use std::io::Write;
use std::time::Duration;

pub fn run(ctx: &Ctx, id: &AgentId, follow: bool, lines: usize, supervisor: bool) -> anyhow::Result<ExitCode> {
    ctx.spool.require(id)?;
    let path = if supervisor { ctx.spool.wrap_log_path(id) } else { ctx.spool.output_log_path(id) };
    let mut listener = if follow { Some(control::listen(&ctx.spool, id)?) } else { None };
    let (text, mut offset) = tail_of_log(&path, lines)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&text)?;
    out.flush()?;
    let Some(listener) = listener.as_mut() else { return Ok(ExitCode::Ok) };
    loop {
        listener.wait(Duration::from_millis(200))?;
        loop {
            let chunk = read_after(&path, offset)?;
            offset = chunk.offset;
            if chunk.bytes.is_empty() {
                break;
            }
            out.write_all(&chunk.bytes)?;
            out.flush()?;
        }
    }
}
