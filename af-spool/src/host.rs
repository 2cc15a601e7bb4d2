//! Host names: the one place that decides what names a host (`AF_HOST`, else the hostname) and
//! how an address names a queue on another host (`ID@HOST`, the last `@` separates the host).

use crate::error::{Error, Result};

/// The longest host name accepted, in bytes.
pub const MAX_HOST_LEN: usize = 64;

/// Checks a host name: 1 to 64 ASCII letters, digits, `-`, `_` and `.`, starting with a letter
/// or a digit (so it is a file name, a Redis key part and a command-line argument as it is).
pub fn validate_host(s: &str) -> Result<()> {
    let shown: String = s.chars().flat_map(char::escape_default).take(80).collect();
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if s.is_empty()
        || s.len() > MAX_HOST_LEN
        || !s.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !s.chars().all(ok)
    {
        return Err(Error::Invalid(format!(
            "host name '{shown}' must be 1 to {MAX_HOST_LEN} letters, digits, '-', '_' or '.', starting with a letter or digit"
        )));
    }
    Ok(())
}

/// This host's name: `AF_HOST`, else the machine's hostname.
pub fn own_host() -> Result<String> {
    if let Some(h) = std::env::var("AF_HOST").ok().filter(|h| !h.is_empty()) {
        validate_host(&h).map_err(|e| Error::Invalid(format!("AF_HOST: {e}")))?;
        return Ok(h);
    }
    let name = nix::unistd::gethostname().map_err(|e| Error::System(format!("cannot read the hostname: {e}")))?;
    let name = name.to_string_lossy().into_owned();
    validate_host(&name).map_err(|e| Error::Invalid(format!("the hostname will not do ({e}); set AF_HOST")))?;
    Ok(name)
}

/// Splits `QUEUE@HOST` at its last `@`: the queue and, when there is one, the host (checked).
pub fn split_host(s: &str) -> Result<(&str, Option<&str>)> {
    match s.rsplit_once('@') {
        None => Ok((s, None)),
        Some((queue, host)) => {
            validate_host(host)?;
            if queue.is_empty() {
                return Err(Error::Invalid(format!("'{}' names a host but no queue", s.escape_default())));
            }
            Ok((queue, Some(host)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in ["alpha", "beta-2", "box.example.org", "a", "1host", "h_1"] {
            assert!(validate_host(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a b", "a/b", "a@b", "a:b", &"x".repeat(65), "é"] {
            assert!(validate_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn splits_at_the_last_at() {
        assert_eq!(split_host("w1").unwrap(), ("w1", None));
        assert_eq!(split_host("w1@beta").unwrap(), ("w1", Some("beta")));
        assert_eq!(split_host("pool:a@b@beta").unwrap(), ("pool:a@b", Some("beta")));
        assert!(split_host("@beta").is_err());
        assert!(split_host("w1@").is_err());
        assert!(split_host("w1@../x").is_err());
    }
}
