//! Lambda's event filtering, applied to a DynamoDB stream record as the function would receive it.
//!
//! "A filter criteria (FilterCriteria) object is a structure that consists of a list of filters
//! (Filters). Each filter is a structure that defines an event filtering pattern (Pattern)."
//! "If an event matches at least one of the filters you define, Lambda sends the event to your
//! function" (so filters are OR'ed), and "For Kinesis, DynamoDB, and Amazon MQ event sources,
//! [...] Lambda drops the message" that matches none (Lambda developer guide, "Control which
//! events Lambda sends to your function", invocation-eventfiltering.html). For DynamoDB, the
//! pattern is matched against the record's JSON: `eventName`, `dynamodb.Keys`,
//! `dynamodb.NewImage` (with the attribute-value types, `{"S": ...}`) and so on
//! ("Filtering DynamoDB events", with-ddb-filtering.html).
//!
//! The syntax is EventBridge's (the Lambda guide's "Filter rule syntax" table): within a pattern
//! the fields are AND'ed; the array at a leaf lists values of which any may match (OR); and when
//! the event's value is itself an array, any of its elements may match. Operators, as the table
//! names them: exact string or number, `null` ("UserID is null": `[null]`), empty (`[""]`),
//! `{"exists": true|false}` ("exists matching only works on leaf nodes"), `{"prefix": ..}`,
//! `{"suffix": ..}` (also with `{"equals-ignore-case": ..}` inside), `{"equals-ignore-case":
//! ..}`, `{"anything-but": value | [values] | {"prefix"|"suffix"|"equals-ignore-case": ..}}`,
//! `{"numeric": [op, n, (op, n)]}` and `"$or": [pattern, ...]`.
//!
//! Not imitated: `wildcard` and `cidr` (refused when the template is read). DynamoDB's numbers
//! (`{"N": "5"}`) are strings in the record, so `numeric` never matches them, as the guide warns
//! for DynamoDB number attributes; it does match `SizeBytes` and `ApproximateCreationDateTime`.

use serde_json::{Map, Value};

/// One filter's pattern, checked when the template is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern(Map<String, Value>);

impl Pattern {
    /// Parses a `FilterCriteria.Filters[].Pattern` string.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("pattern {text:?} is not JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err(format!("pattern {text:?} is not a JSON object"));
        };
        check_object(&map)?;
        Ok(Self(map))
    }

    /// Whether a record (as the function would receive it) matches.
    pub fn matches(&self, record: &Value) -> bool {
        match_object(&self.0, Some(record))
    }
}

/// Whether any of the filters matches (Lambda OR's them); no filters at all lets everything
/// through.
pub fn any_matches(filters: &[Pattern], record: &Value) -> bool {
    filters.is_empty() || filters.iter().any(|p| p.matches(record))
}

fn check_object(map: &Map<String, Value>) -> Result<(), String> {
    for (key, value) in map {
        match (key.as_str(), value) {
            ("$or", Value::Array(alternatives)) if !alternatives.is_empty() => {
                for alternative in alternatives {
                    let Value::Object(m) = alternative else {
                        return Err("each \"$or\" alternative must be an object".into());
                    };
                    check_object(m)?;
                }
            }
            ("$or", _) => return Err("\"$or\" takes a non-empty array of patterns".into()),
            (_, Value::Object(m)) => check_object(m)?,
            (_, Value::Array(matchers)) => {
                for m in matchers {
                    check_matcher(m).map_err(|e| format!("{key}: {e}"))?;
                }
            }
            _ => return Err(format!("{key}: the values at a pattern's leaves must be arrays")),
        }
    }
    Ok(())
}

fn check_matcher(m: &Value) -> Result<(), String> {
    let Value::Object(op) = m else { return Ok(()) };
    if op.len() != 1 {
        return Err(format!("an operator object has exactly one key: {m}"));
    }
    let (name, arg) = op.iter().next().expect("one key");
    let ok = match name.as_str() {
        "exists" => arg.is_boolean(),
        "prefix" | "suffix" => arg.is_string() || string_ignoring_case(arg).is_some(),
        "equals-ignore-case" => arg.is_string(),
        "anything-but" => match arg {
            Value::String(_) | Value::Number(_) => true,
            Value::Array(values) => values.iter().all(|v| v.is_string() || v.is_number()),
            Value::Object(inner) if inner.len() == 1 => {
                let (k, v) = inner.iter().next().expect("one key");
                match k.as_str() {
                    "prefix" | "suffix" => v.is_string(),
                    "equals-ignore-case" => {
                        v.is_string() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
                    }
                    _ => false,
                }
            }
            _ => false,
        },
        "numeric" => numeric_conditions(arg).is_some(),
        other => return Err(format!("operator {other:?} is not imitated locally")),
    };
    if ok { Ok(()) } else { Err(format!("malformed {name:?}: {arg}")) }
}

fn string_ignoring_case(arg: &Value) -> Option<&str> {
    arg.as_object().filter(|o| o.len() == 1)?.get("equals-ignore-case")?.as_str()
}

fn numeric_conditions(arg: &Value) -> Option<Vec<(&str, f64)>> {
    let items = arg.as_array()?;
    if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
        return None;
    }
    items
        .chunks(2)
        .map(|pair| {
            let op = pair[0].as_str().filter(|o| matches!(*o, "<" | "<=" | "=" | ">" | ">="))?;
            Some((op, pair[1].as_f64()?))
        })
        .collect()
}

fn match_object(pattern: &Map<String, Value>, event: Option<&Value>) -> bool {
    pattern.iter().all(|(key, p)| {
        if key == "$or" {
            return p.as_array().is_some_and(|alts| {
                alts.iter().any(|a| a.as_object().is_some_and(|m| match_object(m, event)))
            });
        }
        let child = event.and_then(Value::as_object).and_then(|o| o.get(key));
        match p {
            Value::Object(m) => match_object(m, child),
            Value::Array(matchers) => match_leaf(matchers, child),
            _ => false,
        }
    })
}

fn match_leaf(matchers: &[Value], value: Option<&Value>) -> bool {
    match value {
        None => matchers.iter().any(|m| m.get("exists") == Some(&Value::Bool(false))),
        Some(Value::Array(items)) => items.iter().any(|item| matchers.iter().any(|m| match_one(m, item))),
        Some(v) => matchers.iter().any(|m| match_one(m, v)),
    }
}

fn same_number(a: &Value, b: &Value) -> bool {
    matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
}

fn match_one(matcher: &Value, value: &Value) -> bool {
    match matcher {
        Value::Null => value.is_null(),
        Value::String(s) => value.as_str() == Some(s),
        Value::Number(_) => value.is_number() && same_number(matcher, value),
        Value::Bool(b) => value.as_bool() == Some(*b),
        Value::Array(_) => false,
        Value::Object(op) => {
            let Some((name, arg)) = op.iter().next() else { return false };
            match name.as_str() {
                // A present value that is itself an object is an intermediate node.
                "exists" => arg.as_bool() == Some(true) && !value.is_object(),
                "prefix" => affix(arg, value, |v, a| v.starts_with(a)),
                "suffix" => affix(arg, value, |v, a| v.ends_with(a)),
                "equals-ignore-case" => match (value.as_str(), arg.as_str()) {
                    (Some(v), Some(a)) => v.to_lowercase() == a.to_lowercase(),
                    _ => false,
                },
                "anything-but" => anything_but(arg, value),
                "numeric" => {
                    let (Some(n), Some(conditions)) = (value.as_f64(), numeric_conditions(arg)) else {
                        return false;
                    };
                    conditions.iter().all(|&(op, bound)| match op {
                        "<" => n < bound,
                        "<=" => n <= bound,
                        "=" => n == bound,
                        ">" => n > bound,
                        _ => n >= bound,
                    })
                }
                _ => false,
            }
        }
    }
}

fn affix(arg: &Value, value: &Value, test: impl Fn(&str, &str) -> bool) -> bool {
    let Some(v) = value.as_str() else { return false };
    match (arg.as_str(), string_ignoring_case(arg)) {
        (Some(a), _) => test(v, a),
        (None, Some(a)) => test(&v.to_lowercase(), &a.to_lowercase()),
        _ => false,
    }
}

/// `anything-but` needs the field to be there ("matches anything except what's provided").
fn anything_but(arg: &Value, value: &Value) -> bool {
    if value.is_object() || value.is_array() {
        return false;
    }
    match arg {
        Value::String(_) | Value::Number(_) => !match_one(arg, value),
        Value::Array(excluded) => !excluded.iter().any(|e| match_one(e, value)),
        Value::Object(inner) => {
            let Some((name, a)) = inner.iter().next() else { return false };
            let Some(v) = value.as_str() else { return name != "prefix" && name != "suffix" };
            match name.as_str() {
                "prefix" => a.as_str().is_some_and(|a| !v.starts_with(a)),
                "suffix" => a.as_str().is_some_and(|a| !v.ends_with(a)),
                "equals-ignore-case" => {
                    let v = v.to_lowercase();
                    match a {
                        Value::String(s) => s.to_lowercase() != v,
                        Value::Array(list) => {
                            !list.iter().filter_map(Value::as_str).any(|s| s.to_lowercase() == v)
                        }
                        _ => false,
                    }
                }
                _ => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(event_name: &str, sk: &str) -> Value {
        json!({
            "eventName": event_name,
            "eventSource": "aws:dynamodb",
            "dynamodb": {
                "Keys": {"PK": {"S": "THREAD#1"}, "SK": {"S": sk}},
                "NewImage": {"PK": {"S": "THREAD#1"}, "SK": {"S": sk}, "n": {"N": "5"}, "tags": {"SS": ["a", "b"]}},
                "SizeBytes": 42
            }
        })
    }

    fn matches(pattern: &str, r: &Value) -> bool {
        Pattern::parse(pattern).expect("valid pattern").matches(r)
    }

    #[test]
    fn purge_pattern_from_the_template() {
        let p = r#"{"eventName": ["INSERT", "MODIFY"], "dynamodb": {"Keys": {"SK": {"S": ["PURGE"]}}}}"#;
        assert!(matches(p, &record("INSERT", "PURGE")));
        assert!(matches(p, &record("MODIFY", "PURGE")));
        assert!(!matches(p, &record("REMOVE", "PURGE")), "fields are AND'ed");
        assert!(!matches(p, &record("INSERT", "META")));
        assert!(!matches(p, &json!({"eventName": "INSERT"})), "a missing key does not match");
    }

    #[test]
    fn prefix_or_exact_in_one_array() {
        let p = r#"{"dynamodb": {"Keys": {"SK": {"S": [{"prefix": "MSG#"}, "META"]}}}}"#;
        assert!(matches(p, &record("INSERT", "MSG#0001")));
        assert!(matches(p, &record("INSERT", "META")));
        assert!(!matches(p, &record("INSERT", "METADATA")));
        assert!(!matches(p, &record("INSERT", "MEMBER#x")));
    }

    #[test]
    fn exact_numbers_null_and_empty() {
        let r = json!({"a": 5, "b": null, "c": "", "d": "x"});
        assert!(matches(r#"{"a": [5]}"#, &r));
        assert!(matches(r#"{"a": [5.0]}"#, &r));
        assert!(!matches(r#"{"a": [6]}"#, &r));
        assert!(!matches(r#"{"a": ["5"]}"#, &r), "a string never equals a number");
        assert!(matches(r#"{"b": [null]}"#, &r));
        assert!(!matches(r#"{"c": [null]}"#, &r));
        assert!(!matches(r#"{"missing": [null]}"#, &r), "null is not missing");
        assert!(matches(r#"{"c": [""]}"#, &r));
        assert!(!matches(r#"{"d": [""]}"#, &r));
    }

    #[test]
    fn exists() {
        let r = record("INSERT", "META");
        assert!(matches(r#"{"dynamodb": {"NewImage": {"n": {"N": [{"exists": true}]}}}}"#, &r));
        assert!(!matches(r#"{"dynamodb": {"NewImage": {"x": {"S": [{"exists": true}]}}}}"#, &r));
        assert!(matches(r#"{"dynamodb": {"NewImage": {"x": [{"exists": false}]}}}"#, &r));
        assert!(
            matches(r#"{"dynamodb": {"OldImage": {"x": [{"exists": false}]}}}"#, &r),
            "absent parents too"
        );
        assert!(!matches(r#"{"dynamodb": {"NewImage": {"n": [{"exists": false}]}}}"#, &r));
        assert!(!matches(r#"{"dynamodb": {"NewImage": [{"exists": true}]}}"#, &r), "only on leaf nodes");
    }

    #[test]
    fn prefix_suffix_and_ignoring_case() {
        let r = json!({"k": "Thread#42"});
        assert!(matches(r#"{"k": [{"prefix": "Thread#"}]}"#, &r));
        assert!(!matches(r#"{"k": [{"prefix": "thread#"}]}"#, &r));
        assert!(matches(r#"{"k": [{"prefix": {"equals-ignore-case": "THREAD#"}}]}"#, &r));
        assert!(matches(r##"{"k": [{"suffix": "#42"}]}"##, &r));
        assert!(!matches(r##"{"k": [{"suffix": "#4"}]}"##, &r));
        assert!(matches(r#"{"k": [{"suffix": {"equals-ignore-case": "AD#42"}}]}"#, &r));
        assert!(matches(r#"{"k": [{"equals-ignore-case": "THREAD#42"}]}"#, &r));
        assert!(!matches(r#"{"k": [{"equals-ignore-case": "THREAD#4"}]}"#, &r));
        assert!(!matches(r#"{"n": [{"prefix": "5"}]}"#, &json!({"n": 5})), "prefix is for strings");
    }

    #[test]
    fn anything_but() {
        let r = json!({"e": "INSERT", "n": 3});
        assert!(matches(r#"{"e": [{"anything-but": "REMOVE"}]}"#, &r));
        assert!(!matches(r#"{"e": [{"anything-but": "INSERT"}]}"#, &r));
        assert!(!matches(r#"{"e": [{"anything-but": ["INSERT", "MODIFY"]}]}"#, &r));
        assert!(matches(r#"{"e": [{"anything-but": ["MODIFY", "REMOVE"]}]}"#, &r));
        assert!(matches(r#"{"n": [{"anything-but": [1, 2]}]}"#, &r));
        assert!(!matches(r#"{"n": [{"anything-but": 3}]}"#, &r));
        assert!(matches(r#"{"e": [{"anything-but": {"prefix": "MOD"}}]}"#, &r));
        assert!(!matches(r#"{"e": [{"anything-but": {"prefix": "INS"}}]}"#, &r));
        assert!(!matches(r#"{"e": [{"anything-but": {"suffix": "ERT"}}]}"#, &r));
        assert!(!matches(r#"{"e": [{"anything-but": {"equals-ignore-case": ["insert"]}}]}"#, &r));
        assert!(!matches(r#"{"gone": [{"anything-but": "x"}]}"#, &r), "the field must be there");
    }

    #[test]
    fn numeric_ranges() {
        let r = record("INSERT", "META");
        assert!(matches(r#"{"dynamodb": {"SizeBytes": [{"numeric": [">", 0, "<=", 42]}]}}"#, &r));
        assert!(!matches(r#"{"dynamodb": {"SizeBytes": [{"numeric": [">", 42]}]}}"#, &r));
        assert!(matches(r#"{"dynamodb": {"SizeBytes": [{"numeric": ["=", 42]}]}}"#, &r));
        assert!(matches(r#"{"dynamodb": {"SizeBytes": [{"numeric": [">=", 42, "<", 43]}]}}"#, &r));
        // DynamoDB numbers are strings in the record.
        assert!(!matches(r#"{"dynamodb": {"NewImage": {"n": {"N": [{"numeric": ["=", 5]}]}}}}"#, &r));
        assert!(matches(r#"{"dynamodb": {"NewImage": {"n": {"N": ["5"]}}}}"#, &r));
    }

    #[test]
    fn arrays_in_the_event_match_any_element() {
        let r = record("INSERT", "META");
        assert!(matches(r#"{"dynamodb": {"NewImage": {"tags": {"SS": ["b", "z"]}}}}"#, &r));
        assert!(!matches(r#"{"dynamodb": {"NewImage": {"tags": {"SS": ["z"]}}}}"#, &r));
    }

    #[test]
    fn or_within_and_across_filters() {
        let p = r#"{"eventName": ["INSERT"], "$or": [
            {"dynamodb": {"Keys": {"SK": {"S": ["PURGE"]}}}},
            {"dynamodb": {"Keys": {"SK": {"S": [{"prefix": "MSG#"}]}}}}
        ]}"#;
        assert!(matches(p, &record("INSERT", "PURGE")));
        assert!(matches(p, &record("INSERT", "MSG#1")));
        assert!(!matches(p, &record("INSERT", "META")));
        assert!(!matches(p, &record("MODIFY", "PURGE")));

        let filters = [
            Pattern::parse(r#"{"eventName": ["REMOVE"]}"#).unwrap(),
            Pattern::parse(r#"{"dynamodb": {"Keys": {"SK": {"S": ["META"]}}}}"#).unwrap(),
        ];
        assert!(any_matches(&filters, &record("REMOVE", "X")));
        assert!(any_matches(&filters, &record("INSERT", "META")));
        assert!(!any_matches(&filters, &record("INSERT", "X")));
        assert!(any_matches(&[], &record("INSERT", "X")), "no filter criteria: every record");
    }

    #[test]
    fn malformed_or_unsupported_patterns_are_refused() {
        assert!(Pattern::parse("[]").is_err());
        assert!(Pattern::parse("not json").is_err());
        assert!(Pattern::parse(r#"{"eventName": "INSERT"}"#).is_err(), "leaves are arrays");
        assert!(Pattern::parse(r#"{"k": [{"wildcard": "a*"}]}"#).is_err());
        assert!(Pattern::parse(r#"{"k": [{"numeric": [">"]}]}"#).is_err());
        assert!(Pattern::parse(r#"{"k": [{"exists": "yes"}]}"#).is_err());
        assert!(Pattern::parse(r#"{"$or": []}"#).is_err());
    }
}
