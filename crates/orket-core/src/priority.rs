//! Priority parsing: `High`/`Medium`/`Low`, numbers and numeric strings; default 2.0.

use serde_json::Value;

/// The priority of a card that does not name one (`Medium`).
pub const DEFAULT_PRIORITY: f64 = 2.0;

/// Parses a priority as written in an asset file or a tool call.
///
/// `High` = 3.0, `Medium` = 2.0, `Low` = 1.0 (any case), finite numbers and numeric strings
/// as they are; a missing value (`None` or JSON `null`) is [`DEFAULT_PRIORITY`].
pub fn parse_priority(value: Option<&Value>) -> Result<f64, String> {
    let value = match value {
        None | Some(Value::Null) => return Ok(DEFAULT_PRIORITY),
        Some(v) => v,
    };
    let expected = "expected High, Medium, Low or a number";
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.is_finite() => Ok(f),
            _ => Err(format!("{expected}, found {n}")),
        },
        Value::String(s) => {
            parse_priority_str(s).ok_or_else(|| format!("{expected}, found \"{s}\""))
        }
        other => Err(format!("{expected}, found {}", json_kind(other))),
    }
}

/// Parses a priority written as text (`"High"`, `"2.5"`).
pub fn parse_priority_str(raw: &str) -> Option<f64> {
    match raw.trim().to_lowercase().as_str() {
        "high" => Some(3.0),
        "medium" => Some(2.0),
        "low" => Some(1.0),
        other => other.parse::<f64>().ok().filter(|f| f.is_finite()),
    }
}

/// A short name for the JSON type of a value ("a string", "an object"), for error messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn words_numbers_and_numeric_strings() {
        assert_eq!(parse_priority(Some(&json!("High"))), Ok(3.0));
        assert_eq!(parse_priority(Some(&json!("medium"))), Ok(2.0));
        assert_eq!(parse_priority(Some(&json!("LOW"))), Ok(1.0));
        assert_eq!(parse_priority(Some(&json!(" Low "))), Ok(1.0));
        assert_eq!(parse_priority(Some(&json!(3))), Ok(3.0));
        assert_eq!(parse_priority(Some(&json!(2.5))), Ok(2.5));
        assert_eq!(parse_priority(Some(&json!("4.25"))), Ok(4.25));
        assert_eq!(parse_priority(Some(&json!("0"))), Ok(0.0));
    }

    #[test]
    fn missing_is_medium() {
        assert_eq!(parse_priority(None), Ok(DEFAULT_PRIORITY));
        assert_eq!(parse_priority(Some(&Value::Null)), Ok(2.0));
    }

    #[test]
    fn garbage_is_refused_with_what_was_found() {
        assert_eq!(
            parse_priority(Some(&json!("Urgent"))),
            Err("expected High, Medium, Low or a number, found \"Urgent\"".to_string())
        );
        assert_eq!(
            parse_priority(Some(&json!("NaN"))),
            Err("expected High, Medium, Low or a number, found \"NaN\"".to_string())
        );
        assert_eq!(
            parse_priority(Some(&json!(["High"]))),
            Err("expected High, Medium, Low or a number, found an array".to_string())
        );
        assert!(parse_priority(Some(&json!(true))).is_err());
    }
}
