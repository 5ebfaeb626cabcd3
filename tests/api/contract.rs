//! The code, the template and the sample events agree.

use serde_yaml_ng::Value;
use shared::store::table::{INDEXES, STREAM_VIEW, TABLE_KEYS, TTL_ATTRIBUTE};

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_sequence().unwrap().iter().map(|v| v[field].as_str().unwrap().to_owned()).collect()
}

#[test]
fn template_table_matches_the_code() {
    let t = template();
    let table = &t["Resources"]["Table"]["Properties"];
    let key_schema = &table["KeySchema"];
    assert_eq!(names(key_schema, "AttributeName"), [TABLE_KEYS.0, TABLE_KEYS.1]);
    assert_eq!(names(key_schema, "KeyType"), ["HASH", "RANGE"]);
    let gsis = table["GlobalSecondaryIndexes"].as_sequence().unwrap();
    assert_eq!(gsis.len(), INDEXES.len());
    for (spec, gsi) in INDEXES.iter().zip(gsis) {
        assert_eq!(gsi["IndexName"].as_str(), Some(spec.name));
        assert_eq!(names(&gsi["KeySchema"], "AttributeName"), [spec.hash, spec.range]);
        assert_eq!(gsi["Projection"]["ProjectionType"].as_str(), Some(spec.projection));
        let include: Vec<String> = gsi["Projection"]["NonKeyAttributes"]
            .as_sequence()
            .map(|s| s.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        assert_eq!(include, spec.include);
    }
    let mut defined = names(&table["AttributeDefinitions"], "AttributeName");
    defined.sort();
    let mut expected: Vec<String> = [TABLE_KEYS.0, TABLE_KEYS.1]
        .into_iter()
        .chain(INDEXES.iter().flat_map(|i| [i.hash, i.range]))
        .map(str::to_owned)
        .collect();
    expected.sort();
    assert_eq!(defined, expected);
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"].as_str(), Some(TTL_ATTRIBUTE));
    assert_eq!(table["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(table["StreamSpecification"]["StreamViewType"].as_str(), Some(STREAM_VIEW.as_str()));
}

#[test]
fn every_function_folder_is_in_the_template() {
    let t = template();
    let resources = t["Resources"].as_mapping().unwrap();
    let binaries: Vec<String> = resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap_or_default().to_owned())
        .collect();
    for entry in std::fs::read_dir(root().join("functions")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(binaries.contains(&name), "functions/{name} has no function in template.yaml");
    }
}

#[tokio::test]
async fn sample_events_parse_and_reach_their_routes() {
    let t = crate::helpers::TestApp::spawn().await;
    let mut seen = 0;
    for entry in std::fs::read_dir(root().join("events")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("aws:dynamodb") {
            continue;
        }
        let req = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let reply = t.send(req).await;
        assert!(![404, 405, 500].contains(&reply.status), "{path:?} -> {reply:?}");
        seen += 1;
    }
    assert!(seen >= 12, "only {seen} HTTP events");
}

#[test]
fn template_keeps_its_deployment_safety_settings() {
    let t = template();
    let r = &t["Resources"];
    let api = &r["Api"]["Properties"];
    assert!(!api["DefaultRouteSettings"]["ThrottlingRateLimit"].is_null(), "API throttling");
    assert!(!api["DefaultRouteSettings"]["ThrottlingBurstLimit"].is_null(), "API burst limit");
    let origins = &t["Parameters"]["CorsAllowOrigins"];
    assert_eq!(origins["Type"].as_str(), Some("CommaDelimitedList"));
    assert!(!origins["Default"].as_str().unwrap().contains('*'), "an explicit CORS allow-list");
    assert!(!api["CorsConfiguration"]["AllowOrigins"].is_null());
    assert!(!t["Globals"]["Function"]["ReservedConcurrentExecutions"].is_null(), "reserved concurrency");
    let table = &r["Table"]["Properties"];
    assert_eq!(table["DeletionProtectionEnabled"].as_bool(), Some(true));
    assert_eq!(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(), Some(true));
    for alarm in ["Api5xxAlarm", "LambdaThrottlesAlarm", "TableThrottlesAlarm"] {
        assert_eq!(r[alarm]["Type"].as_str(), Some("AWS::CloudWatch::Alarm"), "{alarm}");
    }
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    assert!(!text.contains("JWT_SECRET:"), "no signing key in the template");
}

/// In-process tests make their tables without the stream (see `TableStream`); that must be the
/// only difference from the deployed table.
#[tokio::test]
async fn test_tables_differ_from_the_deployed_table_only_by_the_stream() {
    let (plain, streamed) =
        tokio::join!(crate::helpers::TestApp::spawn(), crate::helpers::TestApp::spawn_with_stream());
    let describe = |t: &crate::helpers::TestApp| {
        let (client, name) = (t.app.store.client().clone(), t.app.store.table().to_owned());
        async move { client.describe_table().table_name(name).send().await.unwrap().table.unwrap() }
    };
    let (plain, streamed) = tokio::join!(describe(&plain), describe(&streamed));
    let spec = streamed.stream_specification.clone().expect("the deployed stream");
    assert!(spec.stream_enabled);
    assert_eq!(spec.stream_view_type, Some(STREAM_VIEW));
    assert!(plain.stream_specification.as_ref().is_none_or(|s| !s.stream_enabled));
    assert_eq!(plain.key_schema, streamed.key_schema);
    assert_eq!(plain.attribute_definitions, streamed.attribute_definitions);
    let indexes = |t: &aws_sdk_dynamodb::types::TableDescription| {
        let mut v: Vec<_> = t
            .global_secondary_indexes()
            .iter()
            .map(|g| (g.index_name.clone(), g.key_schema.clone(), g.projection.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(indexes(&plain), indexes(&streamed));
    assert_eq!(indexes(&plain).len(), INDEXES.len());
}
