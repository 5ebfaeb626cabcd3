//! `devstack web`: the reference web client (`web/`) as a static host such as S3 + CloudFront
//! serves it, on its own origin, so that the page calls the API cross-origin and goes through
//! the HTTP API's CORS exactly as in production.
//!
//! Only `GET` and `HEAD`; `/` is `index.html`; a path that names a folder gets its
//! `index.html`; a missing file is a 404. `/config.js` is generated from `--api-base`, as a
//! deployment writes it next to the files. Paths are percent-decoded once and then checked
//! segment by segment, so neither `..` nor `%2e%2e` (nor `%2f`, `\` or NUL) can leave the folder.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};

/// A folder of static files plus the generated `/config.js`.
#[derive(Debug, Clone)]
pub struct Site {
    root: PathBuf,
    config_js: String,
}

/// The body of `/config.js`: the page reads `window.MESSAGING_CONFIG.apiBase`. The value is
/// written as a JSON string, so no quote or `</script>` in it can break out.
pub fn config_js(api_base: &str) -> String {
    let base = api_base.trim_end_matches('/');
    let quoted = serde_json::Value::from(base).to_string().replace('<', "\\u003c");
    format!(
        "// Written by `devstack web --api-base`; a deployment writes its own.\n\
         window.MESSAGING_CONFIG = {{ apiBase: {quoted} }};\n"
    )
}

/// The `Content-Type` for a file name, by its extension; unknown ones are plain bytes.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// Why a request path names no file under the root.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// `..`, `.`, an encoded slash, a backslash, NUL or bad UTF-8: never served, whatever exists.
    Traversal,
}

/// The file a request path names, relative to the root, or why it names none. Checks the
/// decoded segments, so `/%2e%2e/x` is refused like `/../x`; an encoded `/` is refused too, as
/// it would otherwise turn one segment into two after the check.
pub fn relative_path(uri_path: &str) -> Result<PathBuf, Refused> {
    let mut out = PathBuf::new();
    let mut folder = true;
    for raw in uri_path.split('/') {
        if raw.is_empty() {
            folder = true;
            continue;
        }
        let segment =
            percent_encoding::percent_decode_str(raw).decode_utf8().map_err(|_| Refused::Traversal)?;
        if segment == "."
            || segment == ".."
            || segment.contains(['/', '\\', '\0'])
            // A drive letter or a hidden file (.git, .env): nothing the client needs.
            || segment.contains(':')
            || segment.starts_with('.')
        {
            return Err(Refused::Traversal);
        }
        out.push(segment.as_ref());
        folder = false;
    }
    if folder {
        out.push("index.html");
    }
    Ok(out)
}

fn answer(status: StatusCode, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).expect("valid content type"));
    // Local development: always revalidate, so an edited file shows on the next reload.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r
}

fn text(status: StatusCode, message: &'static str) -> Response<Full<Bytes>> {
    answer(status, "text/plain; charset=utf-8", Bytes::from_static(message.as_bytes()))
}

impl Site {
    pub fn new(root: impl Into<PathBuf>, api_base: &str) -> Self {
        Self { root: root.into(), config_js: config_js(api_base) }
    }

    /// The answer to `method` on `uri_path` (the path of the request URI, query excluded).
    pub async fn respond(&self, method: &Method, uri_path: &str) -> Response<Full<Bytes>> {
        let head = method == Method::HEAD;
        let mut response = if method != Method::GET && !head {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        } else if uri_path == "/config.js" {
            answer(StatusCode::OK, "text/javascript; charset=utf-8", Bytes::from(self.config_js.clone()))
        } else {
            match relative_path(uri_path) {
                Err(Refused::Traversal) => text(StatusCode::BAD_REQUEST, "bad path\n"),
                Ok(relative) => self.file(&relative).await,
            }
        };
        if head {
            *response.body_mut() = Full::new(Bytes::new());
        }
        response
    }

    async fn file(&self, relative: &Path) -> Response<Full<Bytes>> {
        let mut path = self.root.join(relative);
        if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
            path.push("index.html");
        }
        // Symbolic links inside the folder could still point out of it.
        let (Ok(root), Ok(real)) =
            (tokio::fs::canonicalize(&self.root).await, tokio::fs::canonicalize(&path).await)
        else {
            return text(StatusCode::NOT_FOUND, "not found\n");
        };
        if !real.starts_with(&root) {
            return text(StatusCode::NOT_FOUND, "not found\n");
        }
        match tokio::fs::read(&real).await {
            Ok(bytes) => answer(StatusCode::OK, content_type(&real), Bytes::from(bytes)),
            Err(_) => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// Serves the site on `listener` until the process ends.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let site = std::sync::Arc::new(self);
        loop {
            let (stream, _) = listener.accept().await?;
            let site = site.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let site = site.clone();
                        async move { Ok::<_, hyper::Error>(site.respond(req.method(), req.uri().path()).await) }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn site() -> (Site, PathBuf) {
        let dir = std::env::temp_dir().join(format!("devstack-web-{}", fastrand::u64(..)));
        std::fs::create_dir_all(dir.join("root/sub")).unwrap();
        std::fs::write(dir.join("root/index.html"), "<!doctype html><title>t</title>").unwrap();
        std::fs::write(dir.join("root/app.js"), "console.log(1)").unwrap();
        std::fs::write(dir.join("root/app.css"), "body{}").unwrap();
        std::fs::write(dir.join("root/sub/index.html"), "sub").unwrap();
        std::fs::write(dir.join("root/.env"), "SECRET=1").unwrap();
        std::fs::write(dir.join("secret.txt"), "outside").unwrap();
        (Site::new(dir.join("root"), "http://127.0.0.1:9000/"), dir)
    }

    async fn get(site: &Site, path: &str) -> (StatusCode, String, String) {
        let r = site.respond(&Method::GET, path).await;
        let status = r.status();
        let ct = r.headers()[header::CONTENT_TYPE].to_str().unwrap().to_owned();
        let body = String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        (status, ct, body)
    }

    #[tokio::test]
    async fn serves_files_with_their_content_types_and_index_at_the_root() {
        let (site, _dir) = site();
        let (s, ct, body) = get(&site, "/").await;
        assert_eq!((s, ct.as_str()), (StatusCode::OK, "text/html; charset=utf-8"));
        assert!(body.starts_with("<!doctype html>"));
        assert_eq!(get(&site, "/index.html").await.2, body);
        assert_eq!(get(&site, "/app.js").await.1, "text/javascript; charset=utf-8");
        assert_eq!(get(&site, "/app.css").await.1, "text/css; charset=utf-8");
        assert_eq!(get(&site, "/sub/").await.2, "sub");
        assert_eq!(get(&site, "/sub").await.2, "sub", "a folder without the slash gets its index too");
        assert_eq!(get(&site, "/%61pp.js").await.2, "console.log(1)", "paths are percent-decoded");
        assert_eq!(content_type(Path::new("a.PNG")), "image/png");
        assert_eq!(content_type(Path::new("a.svg")), "image/svg+xml");
        assert_eq!(content_type(Path::new("Makefile")), "application/octet-stream");
    }

    #[tokio::test]
    async fn missing_files_are_404_and_only_get_and_head_are_served() {
        let (site, _dir) = site();
        assert_eq!(get(&site, "/nope.js").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(&site, "/sub/nope/").await.0, StatusCode::NOT_FOUND);
        let post = site.respond(&Method::POST, "/").await;
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[header::ALLOW], "GET, HEAD");
        let head = site.respond(&Method::HEAD, "/app.js").await;
        assert_eq!(head.status(), StatusCode::OK);
        assert!(head.into_body().collect().await.unwrap().to_bytes().is_empty());
    }

    #[tokio::test]
    async fn nothing_outside_the_folder_or_hidden_is_served() {
        let (site, _dir) = site();
        for path in [
            "/../secret.txt",
            "/sub/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E/secret.txt",
            "/.%2e/secret.txt",
            "/sub/%2e%2e/%2e%2e/secret.txt",
            "/..%2fsecret.txt",
            "/%2e%2e%2fsecret.txt",
            "/..%5csecret.txt",
            "/./app.js",
            "/.env",
            "/%2eenv",
            "/app.js%00.html",
            "/%ff.js",
            "/C:/secret.txt",
        ] {
            let (status, _, body) = get(&site, path).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert!(!body.contains("outside") && !body.contains("SECRET"), "{path}");
        }
        assert_eq!(relative_path("/a/b.js"), Ok(PathBuf::from("a/b.js")));
        assert_eq!(relative_path("//a//b/"), Ok(PathBuf::from("a/b/index.html")));
        assert_eq!(relative_path("/%2e%2e/x"), Err(Refused::Traversal));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_symbolic_link_out_of_the_folder_is_not_followed() {
        let (site, dir) = site();
        std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("root/link.txt")).unwrap();
        let (status, _, body) = get(&site, "/link.txt").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(!body.contains("outside"));
    }

    #[tokio::test]
    async fn config_js_carries_the_api_base_as_a_javascript_string() {
        let (site, _dir) = site();
        let (status, ct, body) = get(&site, "/config.js").await;
        assert_eq!((status, ct.as_str()), (StatusCode::OK, "text/javascript; charset=utf-8"));
        assert!(
            body.contains(r#"window.MESSAGING_CONFIG = { apiBase: "http://127.0.0.1:9000" };"#),
            "{body}"
        );
        let hostile = config_js(r#"https://x/"};alert(1);</script>"#);
        assert!(hostile.contains(r#"apiBase: "https://x/\"};alert(1);\u003c/script>""#), "{hostile}");
    }
}
