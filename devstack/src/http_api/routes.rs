//! The HTTP API's routes, read from the template's `HttpApi` events, and API Gateway's choice of
//! route for a request.
//!
//! "API Gateway selects the route with the most-specific match, using the following priorities":
//! a full match for a route and method, then a match with a greedy path variable (`{proxy+}`),
//! then the `$default` route; "If no routes match a request, API Gateway returns
//! {"message":"Not Found"} to the client." A route with the `ANY` method matches every method
//! that no route names for the same path. A path variable (`{id}`) matches one segment; a greedy
//! one (`{proxy+}`, last only) one or more. (API Gateway developer guide, "Create routes for HTTP
//! APIs", http-api-develop-routes.html, "Routing API requests".) A route key cannot end in `/`,
//! so `/x/` is matched by `/x/{proxy+}` (with an empty `proxy`), never by `/x`.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use crate::cors::TemplateError;

/// One `HttpApi` event: a method and path (or `$default`) and the function it invokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `ANY`, or a method in upper case; empty for `$default`.
    pub method: String,
    /// `/api/threads/{id}`, or `$default`.
    pub path: String,
    /// The function's binary (`Metadata.BuildProperties.Binary`), as `cargo lambda watch` names it.
    pub function: String,
}

impl Route {
    /// The route key, as `$context.routeKey` and the event's `routeKey` give it.
    pub fn key(&self) -> String {
        if self.path == "$default" { "$default".to_owned() } else { format!("{} {}", self.method, self.path) }
    }
}

/// The route a request matched, with its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<'a> {
    /// The route.
    pub route: &'a Route,
    /// `{name}` and `{name+}` variables and what they matched.
    pub path_parameters: BTreeMap<String, String>,
}

/// Every route of the template's HTTP API.
#[derive(Debug, Clone)]
pub struct Routes {
    /// In template order.
    pub routes: Vec<Route>,
}

fn segments(path: &str) -> Vec<&str> {
    path.strip_prefix('/').unwrap_or(path).split('/').collect()
}

fn variable(segment: &str) -> Option<&str> {
    segment.strip_prefix('{')?.strip_suffix('}')
}

impl Routes {
    /// Reads the `HttpApi` events of every `AWS::Serverless::Function` (the template has one HTTP
    /// API; an event naming another `ApiId` is refused rather than served on this one).
    pub fn from_template(text: &str) -> Result<Self, TemplateError> {
        let t: Value = serde_yaml_ng::from_str(text).map_err(|e| TemplateError(e.to_string()))?;
        let fail = |what: String| TemplateError(what);
        let resources = t["Resources"].as_mapping().ok_or_else(|| fail("no Resources".into()))?;
        let mut routes = Vec::new();
        for (name, resource) in resources {
            if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
                continue;
            }
            let name = name.as_str().unwrap_or("?");
            let Some(events) = resource["Properties"]["Events"].as_mapping() else { continue };
            for (event_name, event) in events {
                if event["Type"].as_str() != Some("HttpApi") {
                    continue;
                }
                let p = &event["Properties"];
                let event_name = event_name.as_str().unwrap_or("?");
                let api = match &p["ApiId"] {
                    Value::Tagged(t) => t.value.as_str(),
                    other => other.as_str(),
                };
                if api.is_some_and(|a| a != "Api") {
                    return Err(fail(format!("{name}.{event_name}: an HttpApi event of another API")));
                }
                let function = resource["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .ok_or_else(|| fail(format!("{name}: no Metadata.BuildProperties.Binary")))?;
                let path = p["Path"]
                    .as_str()
                    .ok_or_else(|| fail(format!("{name}.{event_name}: no Path")))?
                    .to_owned();
                let method = if path == "$default" {
                    String::new()
                } else {
                    p["Method"].as_str().unwrap_or("ANY").to_ascii_uppercase()
                };
                if path != "$default" && (!path.starts_with('/') || (path.len() > 1 && path.ends_with('/'))) {
                    return Err(fail(format!("{name}.{event_name}: API Gateway refuses the route {path}")));
                }
                routes.push(Route { method, path, function: function.to_owned() });
            }
        }
        if routes.is_empty() {
            return Err(fail("no function has an HttpApi event".into()));
        }
        Ok(Self { routes })
    }

    /// The route API Gateway picks for `method` and `path` (the path as requested, before any
    /// query), or `None` where it answers 404 itself.
    pub fn route(&self, method: &str, path: &str) -> Option<Matched<'_>> {
        let requested = segments(path);
        let method_fits = |r: &Route| r.method == "ANY" || r.method.eq_ignore_ascii_case(method);
        // Full matches: more literal segments beat variables, then a named method beats ANY (the
        // guide does not rank the two; the template names no method but ANY).
        let full = self
            .routes
            .iter()
            .filter(|r| r.path != "$default" && method_fits(r))
            .filter_map(|r| {
                let pattern = segments(&r.path);
                if pattern.last().is_some_and(|s| s.ends_with("+}")) || pattern.len() != requested.len() {
                    return None;
                }
                let mut params = BTreeMap::new();
                for (p, s) in pattern.iter().zip(&requested) {
                    match variable(p) {
                        Some(name) if !s.is_empty() => {
                            params.insert(name.to_owned(), (*s).to_owned());
                        }
                        None if p == s => {}
                        _ => return None,
                    }
                }
                let literals = pattern.iter().filter(|p| variable(p).is_none()).count();
                Some(((literals, r.method != "ANY"), Matched { route: r, path_parameters: params }))
            })
            .max_by_key(|(rank, _)| *rank);
        if let Some((_, m)) = full {
            return Some(m);
        }
        // Greedy matches: the longest prefix, then a named method.
        let greedy = self
            .routes
            .iter()
            .filter(|r| r.path != "$default" && method_fits(r))
            .filter_map(|r| {
                let pattern = segments(&r.path);
                let (last, prefix) = pattern.split_last()?;
                let name = variable(last)?.strip_suffix('+')?;
                if requested.len() <= prefix.len() {
                    return None;
                }
                let mut params = BTreeMap::new();
                for (p, s) in prefix.iter().zip(&requested) {
                    match variable(p) {
                        Some(v) if !s.is_empty() => {
                            params.insert(v.to_owned(), (*s).to_owned());
                        }
                        None if p == s => {}
                        _ => return None,
                    }
                }
                params.insert(name.to_owned(), requested[prefix.len()..].join("/"));
                Some(((prefix.len(), r.method != "ANY"), Matched { route: r, path_parameters: params }))
            })
            .max_by_key(|(rank, _)| *rank);
        if let Some((_, m)) = greedy {
            return Some(m);
        }
        self.routes
            .iter()
            .find(|r| r.path == "$default")
            .map(|route| Matched { route, path_parameters: BTreeMap::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Routes {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
        Routes::from_template(&text).unwrap()
    }

    /// Route key, function and path parameters.
    type Picked = (String, String, Vec<(String, String)>);

    fn pick(routes: &Routes, method: &str, path: &str) -> Option<Picked> {
        routes
            .route(method, path)
            .map(|m| (m.route.key(), m.route.function.clone(), m.path_parameters.into_iter().collect()))
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_templates_routes_pick_the_most_specific() {
        let r = template();
        assert_eq!(
            pick(&r, "GET", "/api/threads/abc"),
            Some(("ANY /api/threads/{id}".into(), "threads".into(), params(&[("id", "abc")])))
        );
        assert_eq!(
            pick(&r, "POST", "/api/threads/abc/messages/"),
            Some((
                "ANY /api/threads/{id}/messages/{proxy+}".into(),
                "messages".into(),
                params(&[("id", "abc"), ("proxy", "")])
            )),
            "the longest greedy prefix wins over /api/threads/{{id}}/{{proxy+}}"
        );
        assert_eq!(
            pick(&r, "POST", "/api/threads/abc/leave/"),
            Some((
                "ANY /api/threads/{id}/{proxy+}".into(),
                "threads".into(),
                params(&[("id", "abc"), ("proxy", "leave/")])
            ))
        );
        assert_eq!(pick(&r, "GET", "/api/users/me").map(|m| m.0), Some("ANY /api/users/me".into()));
        assert_eq!(pick(&r, "GET", "/api/users/me/").map(|m| m.0), Some("ANY /api/users/{proxy+}".into()));
        assert_eq!(pick(&r, "GET", "/admin").map(|m| m.1), Some("admin".into()));
        for unmatched in ["/api/threads/", "/", "/nothing", "/api/nothing/"] {
            assert_eq!(
                pick(&r, "GET", unmatched),
                Some(("$default".into(), "threads".into(), vec![])),
                "{unmatched}: the template's $default route takes it"
            );
        }
    }

    #[test]
    fn without_a_default_route_unmatched_paths_have_none() {
        let text = "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata:\n      BuildProperties:\n        Binary: f\n    Properties:\n      Events:\n        A:\n          Type: HttpApi\n          Properties:\n            Method: GET\n            Path: /pets/{id}\n        B:\n          Type: HttpApi\n          Properties:\n            Method: ANY\n            Path: /pets/dog\n        C:\n          Type: HttpApi\n          Properties:\n            Method: ANY\n            Path: /pets/{proxy+}\n";
        let r = Routes::from_template(text).unwrap();
        assert_eq!(pick(&r, "GET", "/pets/dog").map(|m| m.0), Some("ANY /pets/dog".into()), "literals win");
        assert_eq!(pick(&r, "GET", "/pets/cat").map(|m| m.0), Some("GET /pets/{id}".into()));
        assert_eq!(pick(&r, "POST", "/pets/cat").map(|m| m.0), Some("ANY /pets/{proxy+}".into()));
        assert_eq!(
            pick(&r, "GET", "/pets/"),
            Some(("ANY /pets/{proxy+}".into(), "f".into(), params(&[("proxy", "")])))
        );
        assert_eq!(pick(&r, "GET", "/pets"), None);
        assert_eq!(pick(&r, "GET", "/other/x"), None);
    }

    #[test]
    fn routes_api_gateway_refuses_are_refused() {
        let text = "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata:\n      BuildProperties:\n        Binary: f\n    Properties:\n      Events:\n        A:\n          Type: HttpApi\n          Properties:\n            Path: /pets/\n";
        assert!(Routes::from_template(text).is_err());
    }
}
