//! A task's payload turned into the prompt of one user turn.

use serde_json::Value;

/// The prompt for a task: a plain string as it is; `{"prompt": "..."}` as its prompt; the seed's
/// task shape `{type, action, requirements, files}` as a short structured brief (other fields are
/// appended as JSON); anything else as pretty JSON.
pub fn prompt_of(payload: &Value) -> String {
    let obj = match payload {
        Value::String(s) => return s.clone(),
        Value::Object(o) => o,
        other => return serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    if let Some(Value::String(p)) = obj.get("prompt") {
        return p.clone();
    }
    let mut out = String::new();
    if let Some(action) = obj.get("action").map(text) {
        out.push_str(&action);
        out.push('\n');
    }
    if let Some(kind) = obj.get("type").map(text) {
        out.push_str(&format!("\nTask type: {kind}\n"));
    }
    for (key, title) in [("requirements", "Requirements"), ("files", "Files")] {
        match obj.get(key) {
            Some(Value::Array(items)) if !items.is_empty() => {
                out.push_str(&format!("\n{title}:\n"));
                for item in items {
                    out.push_str(&format!("- {}\n", text(item)));
                }
            }
            Some(Value::Array(_)) | None => {}
            Some(other) => out.push_str(&format!("\n{title}: {}\n", text(other))),
        }
    }
    let rest: serde_json::Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !["type", "action", "requirements", "files"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !rest.is_empty() {
        out.push_str("\nDetails:\n");
        out.push_str(&serde_json::to_string_pretty(&Value::Object(rest)).unwrap_or_default());
        out.push('\n');
    }
    out.trim().to_owned()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_string_is_the_prompt() {
        assert_eq!(prompt_of(&json!("fix the build")), "fix the build");
        assert_eq!(prompt_of(&json!({"prompt": "hello"})), "hello");
    }

    #[test]
    fn the_seed_task_shape_becomes_a_brief() {
        let p = prompt_of(&json!({
            "type": "code-generation",
            "action": "Add a login form",
            "requirements": ["use React", "validate email"],
            "files": ["src/Login.tsx"],
            "deadline": "friday"
        }));
        assert_eq!(
            p,
            "Add a login form\n\nTask type: code-generation\n\nRequirements:\n- use React\n- validate email\n\n\
Files:\n- src/Login.tsx\n\nDetails:\n{\n  \"deadline\": \"friday\"\n}"
        );
    }

    #[test]
    fn other_values_are_json() {
        assert_eq!(prompt_of(&json!(42)), "42");
        assert_eq!(prompt_of(&json!({"type": "review"})), "Task type: review");
    }
}
