use serde_json::json;

use crate::helpers::{TestApp, path_of};

#[tokio::test]
async fn search_finds_active_users_by_prefix_without_private_fields() {
    let t = TestApp::spawn().await;
    let alice = t.user("alice").await;
    t.user("Albert").await;
    t.user("bob").await;
    t.user_with("alfred", false, false).await;
    let r = t.get("/api/users/?search=al", &alice).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["count"], 2);
    let names: Vec<&str> =
        r.body["results"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["Albert", "alice"]);
    for u in r.body["results"].as_array().unwrap() {
        assert_eq!(u.as_object().unwrap().len(), 2, "only id and username: {u}");
    }
    let all = t.get("/api/users/?limit=2", &alice).await;
    assert_eq!(all.body["count"], 3);
    let rest = t.get(&path_of(&all.body["next"]), &alice).await;
    assert_eq!(rest.body["results"][0]["username"], "bob");
    assert!(!format!("{all:?}{rest:?}").contains("argon2"));
}

#[tokio::test]
async fn me_is_the_caller() {
    let t = TestApp::spawn().await;
    let admin = t.user_with("admin", true, true).await;
    let r = t.get("/api/users/me/", &admin).await;
    assert_eq!(r.body, json!({"id": admin.id.as_str(), "username": "admin", "is_staff": true}));
}

#[tokio::test]
async fn search_pages_through_long_non_latin_names_and_refuses_impossible_prefixes() {
    let t = TestApp::spawn().await;
    let me = t.user("me").await;
    let long = "名".repeat(150);
    t.user(&long).await;
    t.user(&format!("{}x", &long[..long.len() - 3])).await;
    let first = t.get("/api/users/?search=%E5%90%8D&limit=1", &me).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body["count"], 2);
    let second = t.get(&path_of(&first.body["next"]), &me).await;
    assert_eq!(second.status, 200, "{second:?}");
    assert_eq!(second.body["results"].as_array().unwrap().len(), 1);
    let r = t.get("/api/users/?search=me%23", &me).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn usernames_are_unique() {
    let t = TestApp::spawn().await;
    t.user("alice").await;
    let again = t
        .app
        .store
        .create_user(shared::store::NewUser {
            username: "alice".into(),
            password_hash: "x".into(),
            is_staff: false,
            is_active: true,
            id: None,
            date_joined: None,
        })
        .await;
    assert!(matches!(again, Err(shared::store::CreateUserError::Taken)));
}
