//! `af-health metrics`: the spool's figures in the Prometheus text format, on stdout or into a
//! file for node_exporter's textfile collector: written beside it and renamed over it, as the
//! collector requires (it must never read half a file), with the mode the user's umask gives, so
//! that the collector (another user, as a rule) can read it. Missing folders on the way are made.

use af_spool::{Error, ExitCode, Spool};
use std::io::Write;
use std::path::Path;

pub fn run(spool: &Spool, output: Option<&Path>) -> anyhow::Result<ExitCode> {
    let text = af_ops::metrics::render(&af_ops::metrics::gather(spool)?);
    match output {
        Some(path) => write_replacing(path, text.as_bytes())?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::Ok)
}

fn write_replacing(path: &Path, bytes: &[u8]) -> af_spool::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // The mode the user's umask gives, not this program's own 077.
    let mode = |m: u32| std::fs::Permissions::from_mode(m & !af_ops::process::user_umask());
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| Error::Invalid(format!("{} names no file", path.display())))?;
    if !dir.is_dir() {
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::set_permissions(dir, mode(0o777)))
            .map_err(|e| Error::io("create directory", dir, e))?;
    }
    let tmp = dir.join(format!(".{}.{}", name.to_string_lossy(), std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.set_permissions(mode(0o666))?;
            f.write_all(bytes)
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("write", path, e)
    })
}
