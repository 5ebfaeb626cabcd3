//! The stage's access log: one line per request in the template's `AccessLogSettings.Format`,
//! with API Gateway's `$context` variables filled in (API Gateway developer guide, "Customize
//! HTTP API access logs", http-api-logging-variables.html). A variable with no value is written
//! as `-`, as API Gateway writes it. Only `$context` variables can appear, so no header, token or
//! query string reaches the log unless the template names it; the template names none.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use crate::cors::TemplateError;

/// The variables this stand-in fills in; a template naming another fails at start, so the
/// local log never silently lacks a field the deployed one has.
pub const VARIABLES: &[&str] = &[
    "apiId",
    "domainName",
    "httpMethod",
    "identity.sourceIp",
    "identity.userAgent",
    "integrationLatency",
    "integrationStatus",
    "path",
    "protocol",
    "requestId",
    "extendedRequestId",
    "requestTime",
    "requestTimeEpoch",
    "responseLatency",
    "responseLength",
    "routeKey",
    "stage",
    "status",
];

/// The format, split into literal text and variables.
#[derive(Debug, Clone)]
pub struct AccessLog {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Variable(String),
}

impl AccessLog {
    /// Reads the `Api` resource's `AccessLogSettings.Format`.
    pub fn from_template(text: &str) -> Result<Self, TemplateError> {
        let t: Value = serde_yaml_ng::from_str(text).map_err(|e| TemplateError(e.to_string()))?;
        let format = t["Resources"]["Api"]["Properties"]["AccessLogSettings"]["Format"]
            .as_str()
            .ok_or_else(|| TemplateError("the Api resource has no AccessLogSettings.Format".into()))?;
        Self::parse(format)
    }

    /// Parses a format with `$context.name` variables.
    pub fn parse(format: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = format;
        while let Some(at) = rest.find("$context.") {
            parts.push(Part::Text(rest[..at].to_owned()));
            let after = &rest[at + "$context.".len()..];
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.')).unwrap_or(after.len());
            let name = after[..end].trim_end_matches('.');
            if !VARIABLES.contains(&name) {
                return Err(TemplateError(format!(
                    "AccessLogSettings.Format: devstack has no $context.{name}"
                )));
            }
            parts.push(Part::Variable(name.to_owned()));
            rest = &after[name.len()..];
        }
        parts.push(Part::Text(rest.to_owned()));
        Ok(Self { parts })
    }

    /// The variables the format names.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Variable(v) => Some(v.as_str()),
            Part::Text(_) => None,
        })
    }

    /// One line with `values` filled in. Values are escaped for a JSON string, so a quote in a
    /// user agent cannot break the line.
    pub fn line(&self, values: &BTreeMap<&str, String>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Variable(v) => match values.get(v.as_str()).filter(|s| !s.is_empty()) {
                    Some(value) => {
                        let quoted = serde_json::Value::from(value.as_str()).to_string();
                        out.push_str(&quoted[1..quoted.len() - 1]);
                    }
                    None => out.push('-'),
                },
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_format_is_one_json_object_per_request() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
        let log = AccessLog::from_template(&text).unwrap();
        let names: Vec<&str> = log.variables().collect();
        for needed in ["requestId", "routeKey", "status", "responseLatency"] {
            assert!(names.contains(&needed), "the format lacks $context.{needed}");
        }
        let values: BTreeMap<&str, String> =
            [("requestId", "r1".to_owned()), ("identity.userAgent", "a\"b".into())].into();
        let line = log.line(&values);
        assert!(!line.contains('\n'));
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["requestId"], "r1");
        assert_eq!(parsed["status"], "-", "no value is a dash");
    }

    #[test]
    fn unknown_variables_are_refused() {
        assert!(AccessLog::parse(r#"{"h":"$context.authorizer.claims.sub"}"#).is_err());
        let log = AccessLog::parse("$context.requestId $context.status.").unwrap();
        let values: BTreeMap<&str, String> = [("requestId", "r".to_owned()), ("status", "200".into())].into();
        assert_eq!(log.line(&values), "r 200.");
    }
}
