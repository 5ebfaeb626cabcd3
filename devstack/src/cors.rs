//! The HTTP API's CORS, as API Gateway applies it, from the template's `CorsConfiguration`.
//!
//! "If you configure CORS for an API, API Gateway automatically sends a response to preflight
//! OPTIONS requests, even if there isn't an OPTIONS route configured for your API. For a CORS
//! request, API Gateway adds the configured CORS headers to the response from an integration.
//! [...] API Gateway ignores CORS headers returned from your backend integration." And: "To
//! return CORS headers, your request must contain an origin header. For the OPTIONS method, your
//! request must contain an origin header and an Access-Control-Request-Method header."
//! (API Gateway developer guide, "Configure CORS for HTTP APIs", http-api-cors.html.)
//! `cargo lambda watch` instead answers any origin with credentials allowed, so `make dev`
//! runs it with `--disable-cors` behind this.

use hyper::HeaderMap;
use hyper::header::{self, HeaderValue};
use serde_yaml_ng::Value;

/// The template's CORS configuration, with the allow-list its parameter names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// Exact origins allowed (`scheme://host[:port]`).
    pub allow_origins: Vec<String>,
    /// Methods a preflight allows.
    pub allow_methods: Vec<String>,
    /// Request headers a preflight allows (lower case).
    pub allow_headers: Vec<String>,
    /// Response headers scripts may read.
    pub expose_headers: Vec<String>,
    /// How long browsers may cache a preflight, in seconds.
    pub max_age: Option<u64>,
    /// Whether credentials (cookies) may be sent.
    pub allow_credentials: bool,
}

/// Why the template's CORS configuration could not be read.
#[derive(Debug, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "template.yaml: {}", self.0)
    }
}

impl std::error::Error for TemplateError {}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| s.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

impl Cors {
    /// Reads the `Api` resource's `CorsConfiguration`. `AllowOrigins` refers to the
    /// `CorsAllowOrigins` parameter: its default, unless `origins` overrides it (as
    /// `--parameter-overrides CorsAllowOrigins=...` does when deploying).
    pub fn from_template(text: &str, origins: Option<&str>) -> Result<Self, TemplateError> {
        let t: Value = serde_yaml_ng::from_str(text).map_err(|e| TemplateError(e.to_string()))?;
        let config = &t["Resources"]["Api"]["Properties"]["CorsConfiguration"];
        if config.is_null() {
            return Err(TemplateError("the Api resource has no CorsConfiguration".into()));
        }
        let listed = match origins {
            Some(o) => o.to_owned(),
            None => t["Parameters"]["CorsAllowOrigins"]["Default"]
                .as_str()
                .ok_or_else(|| TemplateError("no CorsAllowOrigins default".into()))?
                .to_owned(),
        };
        let allow_origins =
            listed.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect();
        Ok(Self {
            allow_origins,
            allow_methods: strings(&config["AllowMethods"]),
            allow_headers: strings(&config["AllowHeaders"]).into_iter().map(|h| h.to_lowercase()).collect(),
            expose_headers: strings(&config["ExposeHeaders"]),
            max_age: config["MaxAge"].as_u64(),
            allow_credentials: config["AllowCredentials"].as_bool().unwrap_or(false),
        })
    }

    fn allowed_origin<'a>(&self, request: &'a HeaderMap) -> Option<&'a HeaderValue> {
        let origin = request.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.allow_origins.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(text)).then_some(origin)
    }

    /// True for a preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    pub fn is_preflight(method: &hyper::Method, request: &HeaderMap) -> bool {
        method == hyper::Method::OPTIONS
            && request.contains_key(header::ORIGIN)
            && request.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The headers of API Gateway's own answer to a preflight: none if the origin, the method
    /// or a requested header is not allowed, so the browser refuses the request.
    pub fn preflight(&self, request: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::new();
        let Some(origin) = self.allowed_origin(request) else { return out };
        let method = request.get(header::ACCESS_CONTROL_REQUEST_METHOD).and_then(|m| m.to_str().ok());
        if !method.is_some_and(|m| self.allow_methods.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(m))) {
            return out;
        }
        let requested = request
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .split(',')
            .map(|h| h.trim().to_lowercase())
            .filter(|h| !h.is_empty());
        let headers_ok =
            requested.into_iter().all(|h| self.allow_headers.iter().any(|a| a == "*" || *a == h));
        if !headers_ok {
            return out;
        }
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, join(&self.allow_methods));
        if !self.allow_headers.is_empty() {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, join(&self.allow_headers));
        }
        if let Some(age) = self.max_age {
            out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
        }
        if self.allow_credentials {
            out.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        out
    }

    /// Puts the configured CORS headers on an integration's response, replacing any the
    /// integration set itself.
    pub fn apply(&self, request: &HeaderMap, response: &mut HeaderMap) {
        for name in [
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            header::ACCESS_CONTROL_MAX_AGE,
        ] {
            response.remove(name);
        }
        let Some(origin) = self.allowed_origin(request) else { return };
        response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if !self.expose_headers.is_empty() {
            response.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, join(&self.expose_headers));
        }
        if self.allow_credentials {
            response.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
    }
}

fn join(values: &[String]) -> HeaderValue {
    HeaderValue::from_str(&values.join(",")).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors() -> Cors {
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
        Cors::from_template(&template, Some("https://app.example.com, http://localhost:9000")).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn reads_the_templates_configuration() {
        let c = cors();
        assert_eq!(c.allow_origins, ["https://app.example.com", "http://localhost:9000"]);
        assert!(c.allow_methods.iter().any(|m| m == "PATCH"));
        assert!(c.allow_headers.contains(&"authorization".to_owned()));
        assert!(!c.allow_credentials);
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
        assert_eq!(Cors::from_template(&template, None).unwrap().allow_origins, ["https://app.example.com"]);
    }

    #[test]
    fn an_allowed_origin_gets_its_own_origin_back_and_no_credentials() {
        let c = cors();
        let mut response =
            headers(&[("access-control-allow-origin", "*"), ("access-control-allow-credentials", "true")]);
        c.apply(&headers(&[("origin", "http://localhost:9000")]), &mut response);
        assert_eq!(response["access-control-allow-origin"], "http://localhost:9000");
        assert_eq!(response["access-control-expose-headers"], "Retry-After");
        assert!(
            !response.contains_key("access-control-allow-credentials"),
            "the integration's own are dropped"
        );
    }

    #[test]
    fn other_origins_get_no_cors_headers_at_all() {
        let c = cors();
        let mut response = headers(&[("access-control-allow-origin", "https://evil.example")]);
        c.apply(&headers(&[("origin", "https://evil.example")]), &mut response);
        assert!(response.is_empty(), "{response:?}");
        let mut response = HeaderMap::new();
        c.apply(&HeaderMap::new(), &mut response);
        assert!(response.is_empty());
    }

    #[test]
    fn preflights_allow_only_the_configured_methods_and_headers() {
        let c = cors();
        let ok = c.preflight(&headers(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "PATCH"),
            ("access-control-request-headers", "authorization, content-type"),
        ]));
        assert_eq!(ok["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(ok["access-control-max-age"], "600");
        for refused in [
            headers(&[("origin", "https://evil.example"), ("access-control-request-method", "GET")]),
            headers(&[("origin", "https://app.example.com"), ("access-control-request-method", "TRACE")]),
            headers(&[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-secret"),
            ]),
        ] {
            assert!(c.preflight(&refused).is_empty(), "{refused:?}");
        }
    }
}
