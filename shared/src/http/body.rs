//! Reading request bodies (JSON, and form data where the old clients sent it) into fields,
//! and validating those fields with DRF's messages.

use lambda_http::Request;
use lambda_http::http::header::CONTENT_TYPE;
use serde_json::{Map, Value};

use crate::ApiError;
use crate::domain::ids::UserId;
use crate::http::error::FieldErrors;

/// Largest body we read; a 10,000-character message fits several times over.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// A request body as named fields. Form bodies keep every value of a repeated key, since
/// DRF reads list fields from forms as repeated keys (`participants=2&participants=3`).
#[derive(Debug, Default)]
pub struct Fields {
    map: Map<String, Value>,
    form: bool,
}

/// Parses the request body as DRF's default parsers do: JSON, `application/x-www-form-urlencoded`
/// or `multipart/form-data`. An empty body is an empty set of fields.
pub async fn parse(req: &Request) -> Result<Fields, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("invalid").to_owned())
        .unwrap_or_default();
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if bytes.is_empty() {
        return Ok(Fields::default());
    }
    match mime.as_str() {
        "application/json" | "" => parse_json(bytes),
        m if m.ends_with("+json") => parse_json(bytes),
        "application/x-www-form-urlencoded" => Ok(parse_urlencoded(bytes)),
        "multipart/form-data" => parse_multipart(bytes, &content_type).await,
        _ => Err(ApiError::UnsupportedMediaType(truncate(&content_type))),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(100).collect()
}

fn parse_json(bytes: &[u8]) -> Result<Fields, ApiError> {
    // JSON is UTF-8 (RFC 8259, section 8.1). API Gateway hands a body that is not valid UTF-8 to
    // the function base64-encoded; it is refused with DRF's message for it, naming the first bad
    // byte, rather than with serde's, which calls it an unexpected character.
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(ApiError::Parse(utf8_error(bytes, &e)));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| ApiError::Parse(e.to_string()))?;
    match value {
        Value::Object(map) => Ok(Fields { map, form: false }),
        other => Err(ApiError::Validation(FieldErrors::one(
            "non_field_errors",
            format!("Invalid data. Expected a dictionary, but got {}.", type_name(&other)),
        ))),
    }
}

/// Python's words for the first byte that is not UTF-8, as DRF reports it.
fn utf8_error(bytes: &[u8], e: &std::str::Utf8Error) -> String {
    let at = e.valid_up_to();
    let byte = bytes[at];
    // A byte that can start a multi-byte sequence failed on what follows it.
    let reason = match e.error_len() {
        None => "unexpected end of data",
        Some(_) if (0xc2..=0xf4).contains(&byte) => "invalid continuation byte",
        Some(_) => "invalid start byte",
    };
    format!("'utf-8' codec can't decode byte 0x{byte:02x} in position {at}: {reason}")
}

fn form_fields(pairs: impl IntoIterator<Item = (String, String)>) -> Fields {
    let mut map = Map::new();
    for (k, v) in pairs {
        if let Value::Array(values) = map.entry(k).or_insert_with(|| Value::Array(Vec::new())) {
            values.push(Value::String(v));
        }
    }
    Fields { map, form: true }
}

fn parse_urlencoded(bytes: &[u8]) -> Fields {
    form_fields(form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), v.into_owned())))
}

async fn parse_multipart(bytes: &[u8], content_type: &str) -> Result<Fields, ApiError> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ApiError::BadRequest("Multipart form parse error - Invalid boundary in multipart: None".into())
    })?;
    let data = bytes::Bytes::copy_from_slice(bytes);
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(data) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut pairs = Vec::new();
    let bad = |e: multer::Error| ApiError::BadRequest(format!("Multipart form parse error - {e}"));
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let Some(name) = field.name().map(str::to_owned) else {
            continue;
        };
        let text = field.text().await.map_err(bad)?;
        pairs.push((name, text));
    }
    Ok(form_fields(pairs))
}

/// DRF's name for a JSON value's type in error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

impl Fields {
    /// Builds fields from a JSON object (for tests and tools).
    pub fn from_map(map: Map<String, Value>) -> Self {
        Self { map, form: false }
    }

    /// A field's single value; a form field given twice counts by its last value, as in DRF.
    fn scalar(&self, name: &str) -> Option<&Value> {
        let value = self.map.get(name)?;
        match value {
            Value::Array(values) if self.form => values.last(),
            _ => Some(value),
        }
    }

    /// Refuses fields the route does not read, so a typo or a stray field is reported rather
    /// than silently dropped; `read_only` fields (ones clients echo back from responses, like
    /// `id` or `sender`) are ignored, as DRF ignores them, and never applied.
    pub fn only(&self, known: &[&str], read_only: &[&str]) -> Result<(), ApiError> {
        let mut errors = FieldErrors::default();
        let unknown =
            self.map.keys().filter(|k| !known.contains(&k.as_str()) && !read_only.contains(&k.as_str()));
        for name in unknown.take(10) {
            let shown: String = name.chars().take(64).collect();
            errors.add(&shown, "Unknown field.");
        }
        errors.into_result()
    }

    /// A field's text if it is a string, without DRF's messages (HTML forms, where every value
    /// is text); text with NUL characters counts as absent, as [`Fields::string`] refuses it.
    pub fn text(&self, name: &str) -> Option<String> {
        self.scalar(name).and_then(Value::as_str).filter(|s| !s.contains('\0')).map(str::to_owned)
    }

    /// A required string field, at most `max_chars` characters; records DRF's messages on failure.
    pub fn string(&self, name: &str, max_chars: usize, errors: &mut FieldErrors) -> Option<String> {
        match self.scalar(name) {
            None | Some(Value::Null) => {
                let msg = if self.map.contains_key(name) {
                    "This field may not be null."
                } else {
                    "This field is required."
                };
                errors.add(name, msg);
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                errors.add(name, "This field may not be blank.");
                None
            }
            Some(Value::String(s)) => {
                // DRF runs every validator and reports each failure, in this order.
                let too_long = s.chars().count() > max_chars;
                if too_long {
                    errors.add(name, format!("Ensure this field has no more than {max_chars} characters."));
                }
                // PostgreSQL cannot store NUL, so DRF refused it; accepting it here would break
                // any later export of the data.
                let nul = s.contains('\0');
                if nul {
                    errors.add(name, "Null characters are not allowed.");
                }
                (!too_long && !nul).then(|| s.clone())
            }
            Some(_) => {
                errors.add(name, "Not a valid string.");
                None
            }
        }
    }

    /// An optional string field: absent or null is `None`; otherwise as [`Fields::string`].
    pub fn optional_string(&self, name: &str, max_chars: usize, errors: &mut FieldErrors) -> Option<String> {
        match self.scalar(name) {
            None | Some(Value::Null) => None,
            Some(_) => self.string(name, max_chars, errors),
        }
    }

    /// True when the body has the field at all (null included).
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// True when the body has the field and it is null (JSON `null`).
    pub fn is_null(&self, name: &str) -> bool {
        matches!(self.map.get(name), Some(Value::Null))
    }

    /// A required list field of at most `max_items` entries (as the schema's `maxItems` says),
    /// returned as raw values for the caller to check item by item.
    pub fn list(&self, name: &str, max_items: usize, errors: &mut FieldErrors) -> Option<Vec<Value>> {
        match self.map.get(name) {
            None => {
                errors.add(name, "This field is required.");
                None
            }
            Some(Value::Array(items)) if items.len() > max_items => {
                errors.add(name, format!("Ensure this field has no more than {max_items} elements."));
                None
            }
            Some(Value::Array(items)) => Some(items.clone()),
            Some(other) => {
                errors.add(name, format!("Expected a list of items but got type \"{}\".", type_name(other)));
                None
            }
        }
    }
}

impl Fields {
    /// An optional boolean (absent: `None`), as DRF's `BooleanField` reads one: JSON `true` and
    /// `false`, or in forms `true`/`false`/`1`/`0` and their like; null is refused.
    pub fn optional_bool(&self, name: &str, errors: &mut FieldErrors) -> Option<bool> {
        let value = self.scalar(name)?;
        let parsed = match value {
            Value::Bool(b) => Some(*b),
            Value::String(text) => match text.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Some(true),
                "false" | "0" | "no" | "off" => Some(false),
                _ => None,
            },
            Value::Number(n) if n.as_u64() == Some(1) => Some(true),
            Value::Number(n) if n.as_u64() == Some(0) => Some(false),
            _ => None,
        };
        if parsed.is_none() {
            let message = match value {
                Value::Null => "This field may not be null.",
                _ => "Must be a valid boolean.",
            };
            errors.add(name, message);
        }
        parsed
    }

    /// A list of user ids (strings, or whole numbers as Django's pks were), each once in the
    /// order first given, with at most `max_items` distinct: DRF's messages for a list of
    /// primary keys. `None` (with an error) when the field is missing or not such a list.
    pub fn user_ids(&self, name: &str, max_items: usize, errors: &mut FieldErrors) -> Option<Vec<UserId>> {
        let raw = self.list(name, max_items, errors)?;
        let mut ids: Vec<UserId> = Vec::with_capacity(raw.len());
        for value in raw {
            let text = match &value {
                Value::String(s) => s.clone(),
                Value::Number(n) if n.is_u64() => n.to_string(),
                other => {
                    errors.add(
                        name,
                        format!("Incorrect type. Expected pk value, received {}.", type_name(other)),
                    );
                    return None;
                }
            };
            let Ok(id) = text.parse::<UserId>() else {
                let shown: String = text.chars().take(64).collect();
                errors.add(name, format!("Invalid pk \"{shown}\" - object does not exist."));
                return None;
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Some(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Body;

    fn req(content_type: &str, body: &str) -> Request {
        lambda_http::http::Request::builder()
            .header("content-type", content_type)
            .body(Body::Text(body.into()))
            .unwrap()
    }

    #[tokio::test]
    async fn json_and_forms_give_the_same_fields() {
        let mut errors = FieldErrors::default();
        let json = parse(&req("application/json", r#"{"username":"bob"}"#)).await.unwrap();
        let form = parse(&req("application/x-www-form-urlencoded", "username=bob")).await.unwrap();
        let multipart = parse(&req(
            "multipart/form-data; boundary=XyZ",
            "--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nbob\r\n--XyZ--\r\n",
        ))
        .await
        .unwrap();
        for f in [json, form, multipart] {
            assert_eq!(f.string("username", 150, &mut errors).as_deref(), Some("bob"));
        }
        assert!(errors.is_empty());
    }

    #[tokio::test]
    async fn other_media_types_are_refused() {
        let e = parse(&req("text/plain", "a")).await.unwrap_err();
        assert_eq!(e.status(), 415);
    }

    #[tokio::test]
    async fn repeated_form_keys_make_lists() {
        let f = parse(&req("application/x-www-form-urlencoded", "p=2&p=3&t=a&t=b")).await.unwrap();
        let mut errors = FieldErrors::default();
        assert_eq!(f.list("p", 2, &mut errors).unwrap(), vec![Value::from("2"), Value::from("3")]);
        assert_eq!(f.string("t", 10, &mut errors).as_deref(), Some("b"));
        assert!(errors.is_empty());
        assert_eq!(f.list("p", 1, &mut errors), None, "more entries than the schema allows");
        assert!(!errors.is_empty());
    }

    #[tokio::test]
    async fn malformed_json_is_a_parse_error() {
        let e = parse(&req("application/json", "{\"text\": ")).await.unwrap_err();
        assert!(matches!(e, ApiError::Parse(_)));
        let e = parse(&req("application/json", "[1]")).await.unwrap_err();
        assert!(matches!(e, ApiError::Validation(_)));
    }

    #[tokio::test]
    async fn json_that_is_not_utf8_is_a_parse_error_naming_the_byte() {
        let binary = |bytes: &[u8]| {
            lambda_http::http::Request::builder()
                .header("content-type", "application/json")
                .body(Body::Binary(bytes.to_vec()))
                .unwrap()
        };
        for (bytes, message) in [
            (&b"{\"text\": \"\xff\"}"[..], "byte 0xff in position 10: invalid start byte"),
            (&b"{\"text\": \"\xc3(\"}"[..], "byte 0xc3 in position 10: invalid continuation byte"),
            (&b"{\"text\": \"\xe2\x82"[..], "byte 0xe2 in position 10: unexpected end of data"),
        ] {
            let e = parse(&binary(bytes)).await.unwrap_err();
            assert_eq!(e.status(), 400);
            let ApiError::Parse(detail) = &e else { panic!("{e:?}") };
            assert_eq!(*detail, format!("'utf-8' codec can't decode {message}"));
        }
        let ok = parse(&binary("{\"text\": \"é\"}".as_bytes())).await.unwrap();
        assert_eq!(ok.text("text").as_deref(), Some("é"));
    }

    #[test]
    fn string_rules_match_drf_but_numbers_are_not_text() {
        let f = Fields::from_map(
            serde_json::json!({"a": "  ", "b": 5, "c": [1], "d": "xyz"}).as_object().unwrap().clone(),
        );
        let mut e = FieldErrors::default();
        assert_eq!(f.string("a", 10, &mut e), None);
        assert_eq!(f.string("b", 10, &mut e), None);
        assert_eq!(f.string("c", 10, &mut e), None);
        assert_eq!(f.string("d", 2, &mut e), None);
        assert_eq!(f.string("missing", 2, &mut e), None);
        assert_eq!(e, {
            let mut x = FieldErrors::default();
            x.add("a", "This field may not be blank.");
            x.add("b", "Not a valid string.");
            x.add("c", "Not a valid string.");
            x.add("d", "Ensure this field has no more than 2 characters.");
            x.add("missing", "This field is required.");
            x
        });
    }

    #[tokio::test]
    async fn nul_characters_are_refused_in_json_and_forms() {
        let json =
            parse(&req("application/json", r#"{"a": "x\u0000y", "b": "\u0000", "c": "ok"}"#)).await.unwrap();
        let form = parse(&req("application/x-www-form-urlencoded", "a=x%00y&b=%00&c=ok")).await.unwrap();
        for f in [json, form] {
            let mut e = FieldErrors::default();
            assert_eq!(f.string("a", 10, &mut e), None);
            assert_eq!(f.optional_string("b", 10, &mut e), None);
            assert_eq!(f.string("c", 10, &mut e).as_deref(), Some("ok"));
            assert_eq!(e, {
                let mut x = FieldErrors::default();
                x.add("a", "Null characters are not allowed.");
                x.add("b", "Null characters are not allowed.");
                x
            });
            assert_eq!(f.text("a"), None);
            assert_eq!(f.text("c").as_deref(), Some("ok"));
        }
        let long = Fields::from_map(serde_json::json!({"a": "\u{0}xyz"}).as_object().unwrap().clone());
        let mut e = FieldErrors::default();
        assert_eq!(long.string("a", 2, &mut e), None);
        assert_eq!(e, {
            let mut x = FieldErrors::default();
            x.add("a", "Ensure this field has no more than 2 characters.");
            x.add("a", "Null characters are not allowed.");
            x
        });
    }
}
