//! The route table (`shared::http::routes`), `template.yaml`'s API Gateway routes, `devstack api`'s
//! routing of them, the `cargo lambda watch` router in `Cargo.toml`, the test dispatcher and the
//! functions themselves agree: every real path, with every method, reaches the same function,
//! and that function answers it with the table's handler, its 405 (with the table's `Allow`) or
//! 404.

use lambda_http::Body;
use lambda_http::http::Method;
use serde_yaml_ng::Value;
use shared::http::routes::{self, Function, ROUTES};

use crate::helpers::TestApp;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn function_named(name: &str) -> Function {
    *Function::ALL.iter().find(|f| f.name() == name).unwrap_or_else(|| panic!("no function {name}"))
}

/// A path's segments with the trailing-slash form kept as an empty last segment, as both
/// routers see it.
fn raw_segments(path: &str) -> Vec<&str> {
    path.strip_prefix('/').unwrap().split('/').collect()
}

/// API Gateway HTTP API routing over the template's `HttpApi` events. As its developer guide
/// says ("Routing API requests", http-api-develop-routes): a route without a greedy variable
/// that matches the whole path wins; then the greedy route (`{proxy+}`, one or more trailing
/// segments) with the longest prefix; then `$default`. A route key cannot end in `/`, so
/// `/x/` is only matched by `/x/{proxy+}` (see the comment above `Resources` in the template).
struct ApiGateway {
    routes: Vec<(String, Function)>,
}

impl ApiGateway {
    fn load() -> Self {
        let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
        let t: Value = serde_yaml_ng::from_str(&text).unwrap();
        let mut routes = Vec::new();
        for resource in t["Resources"].as_mapping().unwrap().values() {
            if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
                continue;
            }
            let Some(binary) = resource["Metadata"]["BuildProperties"]["Binary"].as_str() else { continue };
            let Some(events) = resource["Properties"]["Events"].as_mapping() else { continue };
            for event in events.values().filter(|e| e["Type"].as_str() == Some("HttpApi")) {
                let p = &event["Properties"];
                assert_eq!(
                    p["Method"].as_str(),
                    Some("ANY"),
                    "{binary}: routes are per path, methods per handler"
                );
                routes.push((p["Path"].as_str().unwrap().to_owned(), function_named(binary)));
            }
        }
        assert!(routes.len() >= 10, "too few HttpApi routes read from the template");
        Self { routes }
    }

    fn route(&self, path: &str) -> Function {
        let segments = raw_segments(path);
        let mut greedy: Option<(usize, Function)> = None;
        for (route, function) in &self.routes {
            if route == "$default" {
                continue;
            }
            let pattern = raw_segments(route);
            if let Some(prefix) = pattern.strip_suffix(&["{proxy+}"]) {
                let fits = segments.len() > prefix.len() && same(prefix, &segments[..prefix.len()]);
                if fits && greedy.is_none_or(|(len, _)| prefix.len() > len) {
                    greedy = Some((prefix.len(), *function));
                }
            } else if pattern.len() == segments.len() && same(&pattern, &segments) {
                return *function;
            }
        }
        if let Some((_, function)) = greedy {
            return function;
        }
        self.routes.iter().find(|(r, _)| r == "$default").map(|(_, f)| *f).expect("a $default route")
    }
}

/// Literal segments equal, `{name}` any non-empty segment.
fn same(pattern: &[&str], segments: &[&str]) -> bool {
    pattern.iter().zip(segments).all(|(p, s)| if p.starts_with('{') { !s.is_empty() } else { p == s })
}

/// The `[workspace.metadata.lambda.watch.router]` table of `Cargo.toml`: `{name}` is one
/// segment, `{*rest}` the rest of the path, and literal segments win over both.
struct WatchRouter {
    routes: Vec<(String, Function)>,
}

impl WatchRouter {
    fn load() -> Self {
        let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        let section =
            text.split("[workspace.metadata.lambda.watch.router]").nth(1).expect("the router table");
        let routes: Vec<(String, Function)> = section
            .lines()
            .take_while(|l| !l.starts_with('['))
            .filter_map(|l| l.split_once(" = "))
            .map(|(path, function)| {
                (path.trim_matches('"').to_owned(), function_named(function.trim_matches('"')))
            })
            .collect();
        assert!(routes.len() >= 10, "too few router entries read from Cargo.toml");
        Self { routes }
    }

    fn route(&self, path: &str) -> Option<Function> {
        let segments = raw_segments(path);
        let mut best: Option<(usize, Function)> = None;
        for (route, function) in &self.routes {
            let pattern = raw_segments(route);
            let fits = match pattern.split_last() {
                Some((last, prefix)) if last.starts_with("{*") => {
                    segments.len() > prefix.len()
                        && same(prefix, &segments[..prefix.len()])
                        && !segments[prefix.len()..].concat().is_empty()
                }
                _ => pattern.len() == segments.len() && same(&pattern, &segments),
            };
            let literals = pattern.iter().filter(|p| !p.starts_with('{')).count();
            if fits && best.is_none_or(|(n, _)| literals > n) {
                best = Some((literals, *function));
            }
        }
        best.map(|(_, f)| f)
    }
}

/// Real paths for every route (each `{name}` filled in), with and without the trailing slash
/// and under the Django app's `/api/v1/` prefix, plus paths that no route has.
fn sample_paths() -> Vec<String> {
    let thread = "0190a1b2c3d4e5f6a7b8c9d0e1f2a3b4";
    let mut paths = Vec::new();
    for route in ROUTES {
        let path = route
            .path
            .replace("{thread}", thread)
            .replace("{message}", &format!("{thread}.7"))
            .replace("{user}", "0190a1b2c3d4e5f6a7b8c9d0e1f2a3b5");
        let bare = path.trim_end_matches('/').to_owned();
        if path.starts_with("/api/threads/") {
            paths.push(path.replacen("/api/", "/api/v1/", 1));
            paths.push(bare.replacen("/api/", "/api/v1/", 1));
        }
        paths.push(path);
        if route.function != Function::Admin {
            paths.push(bare);
        }
    }
    for unknown in [
        "/api/nothing/",
        "/api/threads/x/messages/y/z/",
        "/api/threads/x/other/",
        "/api/token/other/",
        "/api/users/me/more/",
        "/api/unread_count/x/",
        "/api/realtime/ticket/x/",
        "/api/realtime/",
        "/api/v1/token/",
        "/admin/nothing/",
        "/",
    ] {
        paths.push(unknown.to_owned());
    }
    paths
}

#[tokio::test]
async fn every_path_and_method_reaches_one_function_and_handler() {
    let t = TestApp::spawn().await;
    let gateway = ApiGateway::load();
    let watch = WatchRouter::load();
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let local = devstack::http_api::routes::Routes::from_template(&template).unwrap();
    let methods = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
    let mut checked = 0;
    for path in sample_paths() {
        let req = lambda_http::http::Request::builder().uri(&path).body(Body::Empty).unwrap();
        let table = routes::find(&shared::http::segments(&req));
        let deployed = gateway.route(&path);
        if let Some(m) = &table {
            assert_eq!(deployed, m.route.function, "{path}: template.yaml sends it elsewhere");
            assert_eq!(watch.route(&path), Some(m.route.function), "{path}: Cargo.toml's router disagrees");
        }
        for method in &methods {
            let served = local.route(method.as_str(), &path).map(|m| function_named(&m.route.function));
            assert_eq!(served, Some(deployed), "{method} {path}: devstack api sends it elsewhere");
            let req = lambda_http::http::Request::builder()
                .method(method.clone())
                .uri(&path)
                .header("host", "localhost:9000")
                .body(Body::Empty)
                .unwrap();
            let dispatched = t.send_to(deployed, req).await;
            let what = format!("{method} {path} -> {}: {dispatched:?}", deployed.name());
            match table.as_ref().map(|m| (m, m.handler(method.as_str()))) {
                Some((_, Some(_))) => assert!(![404, 405].contains(&dispatched.status), "{what}"),
                Some((m, None)) => {
                    assert_eq!(dispatched.status, 405, "{what}");
                    let allow = dispatched.headers.get("allow").and_then(|v| v.to_str().ok());
                    assert_eq!(allow, Some(m.route.allow().as_str()), "{what}");
                }
                None => assert_eq!(dispatched.status, 404, "{what}"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 250, "only {checked} path and method pairs checked");
}

#[test]
fn every_route_is_documented_in_the_openapi_spec() {
    let text = std::fs::read_to_string(root().join("docs/openapi.yaml")).unwrap();
    let spec: Value = serde_yaml_ng::from_str(&text).unwrap();
    let paths = spec["paths"].as_mapping().unwrap();
    for route in ROUTES.iter().filter(|r| r.function != Function::Admin) {
        let item = paths
            .iter()
            .find(|(p, _)| same_shape(p.as_str().unwrap(), route.path))
            .unwrap_or_else(|| panic!("{} is missing from docs/openapi.yaml", route.path))
            .1;
        for (method, _) in route.methods {
            assert!(
                !item[method.to_lowercase().as_str()].is_null(),
                "{method} {} is not in the spec",
                route.path
            );
        }
    }
}

/// Same literal segments, and a `{name}` where the other has one.
fn same_shape(a: &str, b: &str) -> bool {
    let (a, b) = (raw_segments(a), raw_segments(b));
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y || (x.starts_with('{') && y.starts_with('{')))
}

#[test]
fn browsers_may_use_every_method_the_routes_answer() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let t: Value = serde_yaml_ng::from_str(&text).unwrap();
    let allowed: Vec<&str> = t["Resources"]["Api"]["Properties"]["CorsConfiguration"]["AllowMethods"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for route in ROUTES.iter().filter(|r| r.function != Function::Admin) {
        for (method, _) in route.methods {
            assert!(allowed.contains(method), "{method} {} is not in the CORS AllowMethods", route.path);
        }
    }
}
