//! The template's DynamoDB event source mappings: which function each `Type: DynamoDB` event
//! of an `AWS::Serverless::Function` subscribes, with that event's settings.
//!
//! Defaults and ranges are those of "Lambda parameters for Amazon DynamoDB event source
//! mappings" (services-ddb-params.html): BatchSize 100 (maximum 10,000),
//! BisectBatchOnFunctionError false, MaximumBatchingWindowInSeconds 0, MaximumRetryAttempts -1
//! ("-1 means infinite: failed records are retried until the record expires", maximum 10,000),
//! StartingPosition required, TRIM_HORIZON or LATEST. The function's Timeout falls back to
//! `Globals.Function.Timeout`, then to SAM's default of 3 seconds.

use std::time::Duration;

use serde_yaml_ng::Value;

use super::filter::Pattern;
use crate::cors::TemplateError;

/// Where a mapping starts reading a shard it finds when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    /// Only records written after the mapping starts.
    Latest,
    /// The oldest record the stream still holds.
    TrimHorizon,
}

/// One `Type: DynamoDB` event of a function in the template.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// The function's logical id (`PurgeFunction`).
    pub resource: String,
    /// The event's key under `Events` (`PurgeMarkers`).
    pub event: String,
    /// The binary `cargo lambda watch` serves the function as (`Metadata.BuildProperties.Binary`).
    pub function: String,
    /// `BatchSize`.
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds`.
    pub batching_window: Duration,
    /// `StartingPosition`.
    pub starting_position: StartingPosition,
    /// `MaximumRetryAttempts`; `None` for -1 (retry until the record expires).
    pub maximum_retry_attempts: Option<u32>,
    /// `BisectBatchOnFunctionError`.
    pub bisect_batch_on_function_error: bool,
    /// `FunctionResponseTypes` includes `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// `FilterCriteria.Filters[].Pattern`, parsed.
    pub filters: Vec<Pattern>,
    /// The function's `Timeout`.
    pub timeout: Duration,
}

fn error(resource: &str, event: &str, what: impl std::fmt::Display) -> TemplateError {
    TemplateError(format!("{resource}.Events.{event}: {what}"))
}

/// Follows `!Ref Parameter` to the parameter's default; anything else as it is.
fn resolve<'a>(template: &'a Value, v: &'a Value) -> &'a Value {
    if let Value::Tagged(tagged) = v
        && tagged.tag == "Ref"
        && let Some(name) = tagged.value.as_str()
    {
        let default = &template["Parameters"][name]["Default"];
        if !default.is_null() {
            return default;
        }
    }
    v
}

fn number(template: &Value, v: &Value) -> Option<i64> {
    let v = resolve(template, v);
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn boolean(template: &Value, v: &Value) -> Option<bool> {
    let v = resolve(template, v);
    v.as_bool().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

impl Mapping {
    /// Every DynamoDB event source mapping in a SAM template, in the template's order.
    pub fn from_template(text: &str) -> Result<Vec<Mapping>, TemplateError> {
        let t: Value = serde_yaml_ng::from_str(text).map_err(|e| TemplateError(e.to_string()))?;
        let global_timeout = number(&t, &t["Globals"]["Function"]["Timeout"]);
        let mut mappings = Vec::new();
        let Some(resources) = t["Resources"].as_mapping() else {
            return Err(TemplateError("no Resources".into()));
        };
        for (id, resource) in resources {
            let Some(resource_id) = id.as_str() else { continue };
            if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
                continue;
            }
            let properties = &resource["Properties"];
            let Some(events) = properties["Events"].as_mapping() else { continue };
            for (key, event) in events {
                if event["Type"].as_str() != Some("DynamoDB") {
                    continue;
                }
                let event_id = key.as_str().unwrap_or_default();
                let fail = |what: &str| error(resource_id, event_id, what);
                let function = resource["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .ok_or_else(|| fail("the function has no Metadata.BuildProperties.Binary"))?
                    .to_owned();
                let p = &event["Properties"];
                let batch_size = match number(&t, &p["BatchSize"]) {
                    None if p["BatchSize"].is_null() => 100,
                    Some(n @ 1..=10_000) => n as usize,
                    _ => return Err(fail("BatchSize must be 1 to 10000")),
                };
                let window = match number(&t, &p["MaximumBatchingWindowInSeconds"]) {
                    None if p["MaximumBatchingWindowInSeconds"].is_null() => 0,
                    Some(n @ 0..=300) => n as u64,
                    _ => return Err(fail("MaximumBatchingWindowInSeconds must be 0 to 300")),
                };
                let starting_position = match resolve(&t, &p["StartingPosition"]).as_str() {
                    Some("LATEST") => StartingPosition::Latest,
                    Some("TRIM_HORIZON") => StartingPosition::TrimHorizon,
                    _ => return Err(fail("StartingPosition must be LATEST or TRIM_HORIZON")),
                };
                let maximum_retry_attempts = match number(&t, &p["MaximumRetryAttempts"]) {
                    None if p["MaximumRetryAttempts"].is_null() => None,
                    Some(-1) => None,
                    Some(n @ 0..=10_000) => Some(n as u32),
                    _ => return Err(fail("MaximumRetryAttempts must be -1 to 10000")),
                };
                let bisect_batch_on_function_error = match boolean(&t, &p["BisectBatchOnFunctionError"]) {
                    None if p["BisectBatchOnFunctionError"].is_null() => false,
                    Some(b) => b,
                    None => return Err(fail("BisectBatchOnFunctionError must be true or false")),
                };
                let mut report_batch_item_failures = false;
                if let Some(types) = p["FunctionResponseTypes"].as_sequence() {
                    for ty in types {
                        match resolve(&t, ty).as_str() {
                            Some("ReportBatchItemFailures") => report_batch_item_failures = true,
                            other => {
                                return Err(fail(&format!("unknown FunctionResponseTypes entry {other:?}")));
                            }
                        }
                    }
                }
                let mut filters = Vec::new();
                if let Some(list) = p["FilterCriteria"]["Filters"].as_sequence() {
                    for filter in list {
                        let text = resolve(&t, &filter["Pattern"])
                            .as_str()
                            .ok_or_else(|| fail("each filter needs a Pattern string"))?;
                        filters.push(Pattern::parse(text).map_err(|e| fail(&e))?);
                    }
                }
                let timeout = number(&t, &properties["Timeout"]).or(global_timeout).unwrap_or(3);
                if timeout < 1 {
                    return Err(fail("the function's Timeout must be positive"));
                }
                mappings.push(Mapping {
                    resource: resource_id.to_owned(),
                    event: event_id.to_owned(),
                    function,
                    batch_size,
                    batching_window: Duration::from_secs(window),
                    starting_position,
                    maximum_retry_attempts,
                    bisect_batch_on_function_error,
                    report_batch_item_failures,
                    filters,
                    timeout: Duration::from_secs(timeout as u64),
                });
            }
        }
        Ok(mappings)
    }

    /// A mapping with Lambda's defaults, for tests and tools that build one in code.
    pub fn new(function: &str) -> Self {
        Mapping {
            resource: function.to_owned(),
            event: "Stream".to_owned(),
            function: function.to_owned(),
            batch_size: 100,
            batching_window: Duration::ZERO,
            starting_position: StartingPosition::Latest,
            maximum_retry_attempts: None,
            bisect_batch_on_function_error: false,
            report_batch_item_failures: false,
            filters: Vec::new(),
            timeout: Duration::from_secs(3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEMPLATE: &str = include_str!("../../../template.yaml");

    #[test]
    fn the_templates_purge_function() {
        let mappings = Mapping::from_template(TEMPLATE).expect("template reads");
        let purge: Vec<_> = mappings.iter().filter(|m| m.resource == "PurgeFunction").collect();
        assert_eq!(purge.len(), 1, "{mappings:?}");
        let m = purge[0];
        assert_eq!(m.event, "PurgeMarkers");
        assert_eq!(m.function, "purge");
        assert_eq!(m.batch_size, 10);
        assert_eq!(m.batching_window, Duration::ZERO);
        assert_eq!(m.starting_position, StartingPosition::Latest);
        assert_eq!(m.maximum_retry_attempts, Some(5));
        assert!(m.bisect_batch_on_function_error);
        assert!(!m.report_batch_item_failures);
        assert_eq!(m.timeout, Duration::from_secs(300));
        assert_eq!(m.filters.len(), 1);
        let marker = json!({"eventName": "INSERT", "dynamodb": {"Keys": {"SK": {"S": "PURGE"}}}});
        let message = json!({"eventName": "INSERT", "dynamodb": {"Keys": {"SK": {"S": "MSG#1"}}}});
        assert!(m.filters[0].matches(&marker));
        assert!(!m.filters[0].matches(&message));
    }

    /// The real template's PurgeFunction, unchanged, plus a second function with partial batch
    /// responses, parameters and the global timeout.
    #[test]
    fn a_second_function_with_partial_batch_responses() {
        let start = TEMPLATE.find("  PurgeFunction:").expect("PurgeFunction in template.yaml");
        // Up to the next resource: a line indented by exactly two spaces.
        let after = start + "  PurgeFunction:".len();
        let end = TEMPLATE[after..]
            .match_indices("\n  ")
            .map(|(i, _)| after + i)
            .find(|i| TEMPLATE[i + 3..].starts_with(|c: char| c.is_ascii_alphabetic()))
            .expect("a resource after it");
        let purge = &TEMPLATE[start..end];
        let text = format!(
            "Parameters:\n  Size:\n    Type: Number\n    Default: 25\n\
             Globals:\n  Function:\n    Timeout: 7\n\
             Resources:\n{purge}\n\
             \x20 IndexFunction:\n\
             \x20   Type: AWS::Serverless::Function\n\
             \x20   Metadata:\n\
             \x20     BuildProperties:\n\
             \x20       Binary: indexer\n\
             \x20   Properties:\n\
             \x20     Events:\n\
             \x20       Changes:\n\
             \x20         Type: DynamoDB\n\
             \x20         Properties:\n\
             \x20           Stream: !GetAtt Table.StreamArn\n\
             \x20           StartingPosition: TRIM_HORIZON\n\
             \x20           BatchSize: !Ref Size\n\
             \x20           MaximumBatchingWindowInSeconds: 2\n\
             \x20           FunctionResponseTypes: [ReportBatchItemFailures]\n\
             \x20           FilterCriteria:\n\
             \x20             Filters:\n\
             \x20               - Pattern: '{{\"eventName\": [\"INSERT\"]}}'\n\
             \x20               - Pattern: '{{\"dynamodb\": {{\"Keys\": {{\"SK\": {{\"S\": [{{\"prefix\": \"MSG#\"}}, \"META\"]}}}}}}}}'\n\
             \x20       Api:\n\
             \x20         Type: HttpApi\n"
        );
        let mappings = Mapping::from_template(&text).expect("template reads");
        assert_eq!(mappings.len(), 2, "{mappings:?}");
        assert_eq!(mappings[0].function, "purge");
        let m = &mappings[1];
        assert_eq!(
            (m.resource.as_str(), m.event.as_str(), m.function.as_str()),
            ("IndexFunction", "Changes", "indexer")
        );
        assert_eq!(m.batch_size, 25);
        assert_eq!(m.batching_window, Duration::from_secs(2));
        assert_eq!(m.starting_position, StartingPosition::TrimHorizon);
        assert_eq!(m.maximum_retry_attempts, None, "-1 by default: until the record expires");
        assert!(!m.bisect_batch_on_function_error);
        assert!(m.report_batch_item_failures);
        assert_eq!(m.timeout, Duration::from_secs(7), "Globals.Function.Timeout");
        assert_eq!(m.filters.len(), 2);
        let meta = json!({"eventName": "MODIFY", "dynamodb": {"Keys": {"SK": {"S": "META"}}}});
        assert!(!m.filters[0].matches(&meta) && m.filters[1].matches(&meta));
    }

    #[test]
    fn bad_settings_are_refused() {
        let with = |props: &str| {
            format!(
                "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata:\n      BuildProperties:\n        Binary: f\n    Properties:\n      Events:\n        S:\n          Type: DynamoDB\n          Properties:\n{props}"
            )
        };
        assert!(Mapping::from_template(&with("            StartingPosition: LATEST\n")).is_ok());
        assert!(
            Mapping::from_template(&with("            BatchSize: 10\n")).is_err(),
            "StartingPosition is required"
        );
        assert!(
            Mapping::from_template(&with("            StartingPosition: LATEST\n            BatchSize: 0\n"))
                .is_err()
        );
        assert!(
            Mapping::from_template(&with(
                "            StartingPosition: LATEST\n            FilterCriteria:\n              Filters:\n                - Pattern: '{\"a\": \"b\"}'\n"
            ))
            .is_err()
        );
        let no_binary = "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        S:\n          Type: DynamoDB\n          Properties:\n            StartingPosition: LATEST\n";
        assert!(Mapping::from_template(no_binary).is_err());
    }
}
