//! Hostile input at the edge: control characters anywhere in text (JSON bodies, query strings,
//! posted forms — signed in or not) are a 422 naming the field, never a 500 on PostgreSQL; no
//! list in a body is unbounded.

use crate::both;
use crate::harness::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

async fn refused(r: reqwest::Response, field: &str, code: &str) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 422, "{field}: {body}");
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == field && e["code"] == code),
        "{field}/{code}: {body}"
    );
}

both!(
    control_characters_are_refused_everywhere,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let aid = app
            .post("/api/v1/accounts", t, json!({"name": "甲"}))
            .await
            .json::<Value>()
            .await
            .unwrap()["id"]
            .clone();
        // JSON bodies, nested fields named by path.
        refused(
            app.post("/api/v1/contacts", t, json!({"name": "张\u{0}三"}))
                .await,
            "name",
            "control_characters",
        )
        .await;
        refused(
        app.post("/api/v1/orders", t, json!({"account_id": aid, "lines": [{"name": "茶", "unit_price": 1}, {"sku": "A\u{0}"}]})).await,
        "lines.1.sku",
        "control_characters",
    )
    .await;
        refused(
            app.post("/api/v1/products", t, json!({"sku": "X\u{0}", "name": "n"}))
                .await,
            "sku",
            "control_characters",
        )
        .await;
        // Query strings: list filters and the search box.
        for path in [
            "/api/v1/contacts?q=%00",
            "/api/v1/accounts?province=a%00b",
            "/api/v1/search?q=%E5%BC%A0%00",
            "/api/v1/orders?channel=%00",
            "/api/v1/contacts/export.csv?q=%00",
        ] {
            let field = path.split_once('?').unwrap().1.split('=').next().unwrap();
            refused(app.get(path, t).await, field, "control_characters").await;
        }
        // Signed out: sign-in and password reset.
        let anon = reqwest::Client::new();
        refused(
            anon.post(app.url("/api/v1/sessions"))
                .json(&json!({"email": "a\u{0}@b.c", "password": "x"}))
                .send()
                .await
                .unwrap(),
            "email",
            "control_characters",
        )
        .await;
        refused(
            anon.post(app.url("/api/v1/password-resets"))
                .json(&json!({"email": "a\u{0}@b.c"}))
                .send()
                .await
                .unwrap(),
            "email",
            "control_characters",
        )
        .await;
        // Posted forms (the web UI).
        refused(
            anon.post(app.url("/login"))
                .form(&[("email", "a\u{0}@b.c"), ("password", "x")])
                .send()
                .await
                .unwrap(),
            "email",
            "control_characters",
        )
        .await;
        // Tab, line feed and carriage return are text.
        let r = app
            .post(
                "/api/v1/contacts",
                t,
                json!({"name": "王五", "notes": "第一行\r\n\t第二行"}),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
);

both!(lists_in_a_body_are_bounded, |app: TestApp| async move {
    let t = &app.admin_token;
    let tags: Vec<String> = (0..100_000).map(|i| format!("t{i}")).collect();
    let started = std::time::Instant::now();
    refused(
        app.post("/api/v1/contacts", t, json!({"name": "张三", "tags": tags}))
            .await,
        "tags",
        "too_many",
    )
    .await;
    // Under the edge's bound, the field's own: at most 30 tags on a record.
    let tags: Vec<String> = (0..31).map(|i| format!("t{i}")).collect();
    refused(
        app.post("/api/v1/contacts", t, json!({"name": "张三", "tags": tags}))
            .await,
        "tags",
        "too_many",
    )
    .await;
    let ids: Vec<String> = (0..501).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    refused(
        app.req(Method::POST, "/api/v1/contacts/bulk", t)
            .json(&json!({"action": "delete", "ids": ids}))
            .send()
            .await
            .unwrap(),
        "ids",
        "too_many",
    )
    .await;
    eprintln!("refusals took {:?}", started.elapsed());
});

// Whatever refuses a request — an extractor (unknown query parameter, bad path id, wrong
// content type), the router (a method the path does not take), the body limit — the API
// answers application/problem+json, as its spec says.
both!(
    every_api_error_is_a_problem_document,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let cases = vec![
            app.get("/api/v1/jobs?bogus=1", t).await,
            app.get("/api/v1/contacts/not-a-uuid", t).await,
            app.req(Method::POST, "/api/v1/contacts", t)
                .body("name=x")
                .send()
                .await
                .unwrap(),
            app.req(Method::PUT, "/api/v1/contacts", t)
                .send()
                .await
                .unwrap(),
            app.req(Method::POST, "/api/v1/contacts", t)
                .header("content-type", "application/json")
                .body(vec![b' '; 11 * 1024 * 1024])
                .send()
                .await
                .unwrap(),
        ];
        for r in cases {
            let status = r.status();
            assert!(status.is_client_error(), "{status}");
            assert_eq!(
                r.headers()["content-type"],
                "application/problem+json",
                "{status}"
            );
            let p: Value = r.json().await.unwrap();
            assert_eq!(p["status"], status.as_u16());
        }
    }
);
