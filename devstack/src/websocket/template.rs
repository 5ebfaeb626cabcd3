//! The WebSocket API as the SAM template declares it: the `AWS::ApiGatewayV2::Api` whose
//! `ProtocolType` is `WEBSOCKET`, its routes, their integrations' functions, the route responses
//! that make a route two-way, and the stage.
//!
//! "In your WebSocket API, incoming JSON messages are directed to backend integrations based on
//! routes that you configure. (Non-JSON messages are directed to a `$default` route that you
//! configure.)" (API Gateway developer guide, "Overview of WebSocket APIs in API Gateway",
//! apigateway-websocket-api-overview.html.)

use std::collections::HashMap;

use serde_yaml_ng::Value;

use crate::cors::TemplateError;

/// One route: the function its integration invokes, and whether it is two-way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The name to invoke: the function's `Metadata.BuildProperties.Binary` (what
    /// `cargo lambda watch` serves it as).
    pub function: String,
    /// Whether the route has a `RouteResponseSelectionExpression` and an
    /// `AWS::ApiGatewayV2::RouteResponse`: only then is the integration's answer sent back to
    /// the client.
    pub two_way: bool,
}

/// The template's WebSocket API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketApi {
    /// The JSON field of a message's body that `RouteSelectionExpression` names
    /// (`$request.body.action` gives `action`).
    pub route_selection_field: String,
    /// Routes by route key (`$connect`, `$disconnect`, `$default`, or a custom key).
    pub routes: HashMap<String, Route>,
    /// The `AWS::ApiGatewayV2::Stage`'s `StageName`.
    pub stage: String,
}

/// A tagged value's content (`!Sub x`, `!Ref x` and `!GetAtt x` are tagged values).
fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn string(v: &Value) -> Option<&str> {
    untag(v).as_str()
}

/// The logical id that a `!Ref X` (or a plain string) names.
fn reference(v: &Value) -> Option<&str> {
    string(v)
}

/// The `${...}` names in a `!Sub` string.
fn substitutions(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    out
}

impl WebSocketApi {
    /// Reads the WebSocket API from the template's text.
    pub fn from_template(text: &str) -> Result<Self, TemplateError> {
        let t: Value = serde_yaml_ng::from_str(text).map_err(|e| TemplateError(e.to_string()))?;
        let resources = t["Resources"].as_mapping().ok_or_else(|| TemplateError("no Resources".into()))?;
        let of_type = |ty: &str| {
            resources
                .iter()
                .filter(move |(_, r)| r["Type"].as_str() == Some(ty))
                .filter_map(|(k, r)| Some((k.as_str()?, r)))
                .collect::<Vec<_>>()
        };
        let apis: Vec<_> = of_type("AWS::ApiGatewayV2::Api")
            .into_iter()
            .filter(|(_, r)| string(&r["Properties"]["ProtocolType"]) == Some("WEBSOCKET"))
            .collect();
        let (api_id, api) = match apis.as_slice() {
            [one] => *one,
            [] => return Err(TemplateError("no AWS::ApiGatewayV2::Api with ProtocolType WEBSOCKET".into())),
            _ => return Err(TemplateError("more than one WebSocket API; devstack serves one".into())),
        };
        let expression = string(&api["Properties"]["RouteSelectionExpression"])
            .ok_or_else(|| TemplateError(format!("{api_id} has no RouteSelectionExpression")))?;
        let route_selection_field = expression
            .trim_start_matches("${")
            .trim_end_matches('}')
            .strip_prefix("$request.body.")
            .filter(|f| !f.is_empty() && !f.contains('.'))
            .ok_or_else(|| {
                TemplateError(format!(
                    "RouteSelectionExpression {expression:?}: only $request.body.<field> is supported"
                ))
            })?
            .to_owned();
        let belongs = |r: &Value| reference(&r["Properties"]["ApiId"]) == Some(api_id);

        let with_response: Vec<&str> = of_type("AWS::ApiGatewayV2::RouteResponse")
            .into_iter()
            .filter(|(_, r)| belongs(r))
            .filter_map(|(_, r)| reference(&r["Properties"]["RouteId"]))
            .collect();

        let mut routes = HashMap::new();
        for (route_id, route) in of_type("AWS::ApiGatewayV2::Route").into_iter().filter(|(_, r)| belongs(r)) {
            let props = &route["Properties"];
            let key = string(&props["RouteKey"])
                .ok_or_else(|| TemplateError(format!("{route_id} has no RouteKey")))?;
            let target =
                string(&props["Target"]).ok_or_else(|| TemplateError(format!("{route_id} has no Target")))?;
            let integration_id = target
                .strip_prefix("integrations/")
                .and_then(|t| substitutions(t).first().copied())
                .ok_or_else(|| {
                    TemplateError(format!("{route_id}: Target {target:?} is not integrations/${{X}}"))
                })?;
            let function = Self::function_of(resources, integration_id)?;
            let two_way =
                !props["RouteResponseSelectionExpression"].is_null() && with_response.contains(&route_id);
            routes.insert(key.to_owned(), Route { function, two_way });
        }

        let stage = of_type("AWS::ApiGatewayV2::Stage")
            .into_iter()
            .find(|(_, r)| belongs(r))
            .and_then(|(_, r)| string(&r["Properties"]["StageName"]))
            .ok_or_else(|| {
                TemplateError(format!("no AWS::ApiGatewayV2::Stage with a StageName for {api_id}"))
            })?
            .to_owned();
        Ok(Self { route_selection_field, routes, stage })
    }

    /// The binary an integration invokes: its `IntegrationUri` names `${SomeFunction.Arn}`, and
    /// that function's `Metadata.BuildProperties.Binary` is what `cargo lambda watch` serves.
    fn function_of(
        resources: &serde_yaml_ng::Mapping,
        integration_id: &str,
    ) -> Result<String, TemplateError> {
        let integration = &resources
            .get(integration_id)
            .ok_or_else(|| TemplateError(format!("no resource {integration_id}")))?["Properties"];
        let uri = string(&integration["IntegrationUri"])
            .ok_or_else(|| TemplateError(format!("{integration_id} has no IntegrationUri")))?;
        let function_id =
            substitutions(uri).into_iter().find_map(|s| s.strip_suffix(".Arn")).ok_or_else(|| {
                TemplateError(format!("{integration_id}: IntegrationUri names no ${{Function.Arn}}"))
            })?;
        let function =
            resources.get(function_id).ok_or_else(|| TemplateError(format!("no resource {function_id}")))?;
        string(&function["Metadata"]["BuildProperties"]["Binary"])
            .map(str::to_owned)
            .ok_or_else(|| TemplateError(format!("{function_id} has no Metadata.BuildProperties.Binary")))
    }

    /// The route key a message selects: the selection field of a JSON object body when a route
    /// has that key, else `$default` ("Non-JSON messages are directed to a `$default` route").
    pub fn select_route(&self, body: &str) -> &str {
        let selected = serde_json::from_str::<serde_json::Value>(body).ok().and_then(|v| {
            match &v[&self.route_selection_field] {
                serde_json::Value::String(s) => Some(s.clone()),
                _ => None,
            }
        });
        match selected {
            Some(key) if !key.starts_with('$') => match self.routes.get_key_value(key.as_str()) {
                Some((k, _)) => k,
                None => "$default",
            },
            _ => "$default",
        }
    }
}
