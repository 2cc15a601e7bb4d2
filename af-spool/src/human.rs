//! Human strings for sizes and durations (`"2GB"`, `"30s"`), parsed in one place.

use crate::error::{Error, Result};
use std::time::Duration;

/// Parses a size: a number with an optional unit `B`, `K`/`KB`/`KiB`, `M`/`MB`/`MiB`,
/// `G`/`GB`/`GiB`, `T`/`TB`/`TiB` (case-insensitive). Units are binary (1 GB = 2^30 bytes), as in
/// docker's `--memory`. Fractions are allowed (`"1.5GB"`).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| Error::Invalid(format!("size '{s}' has no number (try \"2GB\")")))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(Error::Invalid(format!("size '{s}' has an unknown unit '{other}' (use B, KB, MB, GB, TB)")));
        }
    };
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(Error::Invalid(format!("size '{s}' is out of range")));
    }
    Ok(bytes as u64)
}

/// Parses a duration: a number with an optional unit `ms`, `s`, `m`, `h`, `d`; a bare number is
/// seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| Error::Invalid(format!("duration '{s}' has no number (try \"30s\")")))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" | "sec" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => {
            return Err(Error::Invalid(format!("duration '{s}' has an unknown unit '{other}' (use ms, s, m, h, d)")));
        }
    };
    if !secs.is_finite() || !(0.0..=1e12).contains(&secs) {
        return Err(Error::Invalid(format!("duration '{s}' is out of range")));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a CPU count: a positive number of cores, like `"2"` or `"0.5"`.
pub fn parse_cpus(s: &str) -> Result<f64> {
    match s.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 && n <= 4096.0 => Ok(n),
        _ => Err(Error::Invalid(format!("cpu '{s}' is not a positive number of cores (try \"2\")"))),
    }
}

/// Formats bytes for people: `512B`, `1.5KB`, `42.0MB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{bytes}B") } else { format!("{v:.1}{}", UNITS[i]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2GB").unwrap(), 2 << 30);
        assert_eq!(parse_size("4gb").unwrap(), 4 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("GB").is_err());
        assert!(parse_size("2XB").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("2").unwrap(), 2.0);
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("two").is_err());
    }
}
