//! The Redis client of every program that meets other hosts: `redis://` or, for TLS, `rediss://`
//! (with `user:password@` for an ACL user). For TLS the server's certificate is checked against
//! the system's trusted roots, or against the CA in the PEM file `AF_REDIS_CA` (a private CA, as
//! Redis deployments often use); `AF_REDIS_CERT` and `AF_REDIS_KEY` (PEM files) give a client
//! certificate for servers that ask for one (`tls-auth-clients yes`).

use af_spool::{Error, Result};
use redis::{ClientTlsConfig, TlsCertificates};

/// The variables that set TLS up, each naming a PEM file.
pub const CA_VAR: &str = "AF_REDIS_CA";
pub const CERT_VAR: &str = "AF_REDIS_CERT";
pub const KEY_VAR: &str = "AF_REDIS_KEY";

/// A client for `url`; Invalid when the URL does not parse or a TLS file cannot be read.
pub fn client(url: &str) -> Result<redis::Client> {
    let bad_url = |e: redis::RedisError| {
        Error::Invalid(format!(
            "AF_REDIS_URL is no Redis URL ({e}); use redis://[user:password@]host:port or rediss://..."
        ))
    };
    if !url.starts_with("rediss://") {
        for var in [CA_VAR, CERT_VAR, KEY_VAR] {
            if std::env::var_os(var).is_some() {
                tracing::warn!(var, "set, but AF_REDIS_URL is not rediss://: no TLS, the variable is unused");
            }
        }
        return redis::Client::open(url).map_err(bad_url);
    }
    // One crypto provider for the process (ring); a second install is refused, harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root_cert = pem(CA_VAR)?;
    let client_tls = match (pem(CERT_VAR)?, pem(KEY_VAR)?) {
        (Some(client_cert), Some(client_key)) => Some(ClientTlsConfig { client_cert, client_key }),
        (None, None) => None,
        _ => return Err(Error::Invalid(format!("{CERT_VAR} and {KEY_VAR} go together: set both or neither"))),
    };
    if root_cert.is_none() && client_tls.is_none() {
        return redis::Client::open(url).map_err(bad_url);
    }
    redis::Client::build_with_tls(url, TlsCertificates { client_tls, root_cert }).map_err(bad_url)
}

/// A connection for reading the cluster's state from the Redis at `url`: Invalid for a bad URL,
/// System when Redis cannot be reached within [`super::IO_TIMEOUT`].
pub(crate) fn reading(url: &str) -> Result<redis::Connection> {
    let c = client(url)?.get_connection_with_timeout(super::IO_TIMEOUT).map_err(unreadable)?;
    c.set_read_timeout(Some(super::IO_TIMEOUT)).map_err(unreadable)?;
    Ok(c)
}

/// A failure of Redis while reading the cluster's state.
pub(crate) fn unreadable(e: redis::RedisError) -> Error {
    Error::System(format!("cannot read the cluster from redis: {e}"))
}

/// The PEM file a variable names, read; None when the variable is unset or empty.
fn pem(var: &str) -> Result<Option<Vec<u8>>> {
    match std::env::var_os(var) {
        Some(path) if !path.is_empty() => {
            std::fs::read(&path).map(Some).map_err(|e| Error::Invalid(format!("{var}={}: {e}", path.to_string_lossy())))
        }
        _ => Ok(None),
    }
}
