//! Property tests of every parser of outside input in the spool contract: whatever the bytes, a
//! parser answers Ok or a typed error, never panics; what it accepts is what the rules say; what
//! it writes it reads back.

use crate::health::validate_alert_id;
use crate::human::{parse_cpus, parse_duration, parse_size};
use crate::id::{AgentId, MAX_ID_LEN};
use crate::message::{Kind, Message, Priority, validate_id};
use crate::queue::Entry;
use crate::record::AgentConfig;
use crate::time::Timestamp;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn ids_accept_exactly_the_rule(s in "\\PC{0,80}") {
        let ok = !s.is_empty()
            && s.len() <= MAX_ID_LEN
            && !s.starts_with('-')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        prop_assert_eq!(AgentId::new(&s).is_ok(), ok);
        if let Ok(id) = AgentId::new(&s) {
            prop_assert!(!id.as_str().contains('/') && id.as_str() != "." && id.as_str() != "..");
        }
    }

    #[test]
    fn ids_from_any_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..100)) {
        let s = String::from_utf8_lossy(&b);
        let _ = AgentId::new(&s);
        let _ = validate_id(&s);
        let _ = validate_alert_id(&s);
        let _ = Entry::parse(&s);
    }

    #[test]
    fn sizes_and_durations_never_panic_and_stay_in_range(s in "[ 0-9.]{0,12}[a-zA-Z]{0,4}") {
        if let Ok(n) = parse_size(&s) {
            prop_assert!(n >= 1);
        }
        if let Ok(d) = parse_duration(&s) {
            prop_assert!(d.as_secs_f64() <= 1e12);
        }
        if let Ok(c) = parse_cpus(&s) {
            prop_assert!(c > 0.0 && c <= 4096.0);
        }
    }

    #[test]
    fn sizes_in_units_read_back(n in 1u64..1_000_000, unit in prop::sample::select(vec![("", 1u64), ("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30)])) {
        prop_assert_eq!(parse_size(&format!("{n}{}", unit.0)).unwrap(), n * unit.1);
    }

    #[test]
    fn durations_in_units_read_back(n in 0u64..100_000, unit in prop::sample::select(vec![("ms", 1u64), ("s", 1000), ("m", 60_000), ("h", 3_600_000)])) {
        prop_assert_eq!(parse_duration(&format!("{n}{}", unit.0)).unwrap().as_millis() as u64, n * unit.1);
    }

    #[test]
    fn timestamps_read_back_and_any_text_is_safe(ms in 0u64..253_402_300_799_000, junk in "\\PC{0,30}") {
        let t = Timestamp(ms);
        prop_assert_eq!(Timestamp::parse_rfc3339(&t.rfc3339()), Some(t));
        let _ = Timestamp::parse_rfc3339(&junk);
    }

    #[test]
    fn configs_from_any_json_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = AgentConfig::from_json(&b);
    }

    #[test]
    fn configs_with_any_field_values_are_checked_not_trusted(
        id in "\\PC{0,20}",
        kind in "\\PC{0,12}",
        mem in "\\PC{0,10}",
        timeout in any::<i64>(),
        tasks in any::<i64>(),
    ) {
        let text = serde_json::json!({
            "id": id, "type": kind, "maxConcurrentTasks": tasks,
            "resourceLimits": {"memory": mem, "timeout": timeout},
        });
        if let Ok(c) = AgentConfig::from_json(text.to_string().as_bytes()) {
            prop_assert!(AgentId::new(c.id.as_str()).is_ok());
            prop_assert!((1..=1024).contains(&c.max_concurrent_tasks));
            prop_assert!(c.resource_limits.memory_bytes().is_ok());
        }
    }

    #[test]
    fn messages_read_back_and_any_bytes_are_safe(
        payload in "\\PC{0,200}",
        priority in prop::sample::select(vec!["critical", "high", "normal", "low"]),
        kind in prop::sample::select(vec!["request", "response", "event", "broadcast", "task"]),
        junk in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let m = Message::new("cli", Kind::parse(kind).unwrap(), Priority::parse(priority).unwrap(), serde_json::json!(payload));
        let bytes = m.encode().unwrap();
        let back: Message = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(back.id, m.id.clone());
        prop_assert!(validate_id(&m.id).is_ok());
        let _ = serde_json::from_slice::<Message>(&junk);
        let _ = Kind::parse(&String::from_utf8_lossy(&junk));
        let _ = Priority::parse(&String::from_utf8_lossy(&junk));
    }
}
