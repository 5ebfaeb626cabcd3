//! Stream records as Lambda hands them to a function: the event
//! `{"Records": [{"eventID", "eventName", "eventVersion", "eventSource": "aws:dynamodb",
//! "awsRegion", "dynamodb": {...}, "eventSourceARN"}]}` of "Example event" in "Using AWS Lambda
//! with Amazon DynamoDB" (with-ddb.html), attribute values in DynamoDB's JSON (`{"S": ".."}`,
//! binary as base64), `ApproximateCreationDateTime` in epoch seconds.

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

fn b64(blob: &aws_sdk_dynamodbstreams::primitives::Blob) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(blob.as_ref()))
}

/// One attribute value in DynamoDB's JSON.
pub fn attribute(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": b64(b)}),
        AttributeValue::Ss(s) => json!({"SS": s}),
        AttributeValue::Ns(n) => json!({"NS": n}),
        AttributeValue::Bs(b) => json!({"BS": b.iter().map(b64).collect::<Vec<_>>()}),
        AttributeValue::M(m) => json!({"M": item(m)}),
        AttributeValue::L(l) => json!({"L": l.iter().map(attribute).collect::<Vec<_>>()}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(b) => json!({"NULL": b}),
        // A type newer than this SDK: nothing faithful to write.
        _ => Value::Null,
    }
}

/// An item (or key) in DynamoDB's JSON.
pub fn item(m: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), attribute(v))).collect())
}

/// One record of the Lambda event, from a `GetRecords` record of the stream `stream_arn`.
pub fn record(r: &Record, stream_arn: &str) -> Value {
    let mut out = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            out.insert(k.to_owned(), v);
        }
    };
    put("eventID", r.event_id.clone().map(Value::String));
    put("eventName", r.event_name.as_ref().map(|n| Value::String(n.as_str().to_owned())));
    put("eventVersion", r.event_version.clone().map(Value::String));
    put("eventSource", r.event_source.clone().map(Value::String));
    put("awsRegion", r.aws_region.clone().map(Value::String));
    if let Some(d) = &r.dynamodb {
        let mut inner = Map::new();
        if let Some(t) = d.approximate_creation_date_time {
            let millis = t.to_millis().unwrap_or_default();
            let secs = if millis % 1000 == 0 { json!(millis / 1000) } else { json!(millis as f64 / 1000.0) };
            inner.insert("ApproximateCreationDateTime".into(), secs);
        }
        for (name, image) in [("Keys", &d.keys), ("NewImage", &d.new_image), ("OldImage", &d.old_image)] {
            if let Some(image) = image {
                inner.insert(name.into(), item(image));
            }
        }
        if let Some(s) = &d.sequence_number {
            inner.insert("SequenceNumber".into(), Value::String(s.clone()));
        }
        if let Some(n) = d.size_bytes {
            inner.insert("SizeBytes".into(), json!(n));
        }
        if let Some(v) = &d.stream_view_type {
            inner.insert("StreamViewType".into(), Value::String(v.as_str().to_owned()));
        }
        put("dynamodb", Some(Value::Object(inner)));
    }
    put("eventSourceARN", Some(Value::String(stream_arn.to_owned())));
    if let Some(identity) = &r.user_identity {
        // TTL deletions: {"type": "Service", "principalId": "dynamodb.amazonaws.com"}.
        put(
            "userIdentity",
            Some(json!({"type": identity.r#type.clone(), "principalId": identity.principal_id.clone()})),
        );
    }
    Value::Object(out)
}

/// The event for a batch of records.
pub fn event(records: &[Value]) -> Value {
    json!({ "Records": records })
}

/// A record's sequence number, as partial batch responses name it.
pub fn sequence_number(record: &Value) -> Option<&str> {
    record["dynamodb"]["SequenceNumber"].as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::primitives::{Blob, DateTime};
    use aws_sdk_dynamodbstreams::types::{Identity, OperationType, StreamRecord, StreamViewType};

    #[test]
    fn every_attribute_type_and_the_lambda_event_shape() {
        let image: HashMap<String, AttributeValue> = [
            ("PK", AttributeValue::S("THREAD#1".into())),
            ("SK", AttributeValue::S("MSG#1".into())),
            ("n", AttributeValue::N("12.5".into())),
            ("b", AttributeValue::B(Blob::new(b"hi".to_vec()))),
            ("ss", AttributeValue::Ss(vec!["a".into(), "b".into()])),
            ("ns", AttributeValue::Ns(vec!["1".into()])),
            ("bs", AttributeValue::Bs(vec![Blob::new(b"x".to_vec())])),
            ("m", AttributeValue::M([("k".to_owned(), AttributeValue::Bool(true))].into())),
            ("l", AttributeValue::L(vec![AttributeValue::Null(true), AttributeValue::S("s".into())])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let keys: HashMap<_, _> = image
            .iter()
            .filter(|(k, _)| k.as_str() == "PK" || k.as_str() == "SK")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let r = Record::builder()
            .event_id("e1")
            .event_name(OperationType::Remove)
            .event_version("1.1")
            .event_source("aws:dynamodb")
            .aws_region("us-east-1")
            .user_identity(
                Identity::builder().r#type("Service").principal_id("dynamodb.amazonaws.com").build(),
            )
            .dynamodb(
                StreamRecord::builder()
                    .approximate_creation_date_time(DateTime::from_secs(1_700_000_000))
                    .set_keys(Some(keys))
                    .set_old_image(Some(image))
                    .sequence_number("100")
                    .size_bytes(77)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build(),
            )
            .build();
        let v = record(&r, "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/x");
        assert_eq!(v["eventName"], "REMOVE");
        assert_eq!(v["dynamodb"]["ApproximateCreationDateTime"], 1_700_000_000);
        let old = &v["dynamodb"]["OldImage"];
        assert_eq!(old["n"], json!({"N": "12.5"}));
        assert_eq!(old["b"], json!({"B": "aGk="}));
        assert_eq!(old["ss"], json!({"SS": ["a", "b"]}));
        assert_eq!(old["ns"], json!({"NS": ["1"]}));
        assert_eq!(old["bs"], json!({"BS": ["eA=="]}));
        assert_eq!(old["m"], json!({"M": {"k": {"BOOL": true}}}));
        assert_eq!(old["l"], json!({"L": [{"NULL": true}, {"S": "s"}]}));
        assert!(v["dynamodb"].get("NewImage").is_none());
        assert_eq!(sequence_number(&v), Some("100"));

        let parsed: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_value(event(&[v])).expect("Lambda's event type reads it");
        let rec = &parsed.records[0];
        assert_eq!(rec.event_name, "REMOVE");
        assert_eq!(
            rec.event_source_arn.as_deref(),
            Some("arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/x")
        );
        assert_eq!(rec.change.size_bytes, 77);
        assert_eq!(rec.change.approximate_creation_date_time.timestamp(), 1_700_000_000);
        assert_eq!(rec.user_identity.as_ref().map(|u| u.type_.as_str()), Some("Service"));
        assert!(rec.change.keys.get("PK").is_some());
    }
}
