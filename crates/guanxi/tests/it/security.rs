//! Security defects as classes: one-time links, return addresses, text from the URL, cookies
//! and headers.

use crate::both;
use crate::harness::TestApp;
use crate::jobs::link_in;
use reqwest::{redirect, Client, Method};
use serde_json::{json, Value};

async fn use_link(app: &TestApp, token: &str, password: &str) -> u16 {
    Client::new()
        .post(app.url("/api/v1/password-links"))
        .json(&json!({"token": token, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn ask_reset(app: &TestApp) -> String {
    let r = Client::new()
        .post(app.url("/api/v1/password-resets"))
        .json(&json!({"email": "admin@acme.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    app.run_pending_jobs().await;
    link_in(app.smtp.received().last().unwrap())
}

// Issuing a link retires the older ones; using one retires every other; so does changing the
// password another way.
both!(only_the_newest_link_works, |app: TestApp| async move {
    let first = ask_reset(&app).await;
    let second = ask_reset(&app).await;
    assert_ne!(first, second);
    assert_eq!(
        use_link(&app, &first, "older-link-password").await,
        422,
        "a newer link was issued"
    );
    let third = ask_reset(&app).await;
    assert_eq!(use_link(&app, &third, "newest-link-password").await, 201);
    assert_eq!(use_link(&app, &second, "second-link-password").await, 422);
    let fourth = ask_reset(&app).await;
    let (c, s) = app.session("admin@acme.test", "newest-link-password").await;
    let r = c
        .post(app.url("/api/v1/me/password"))
        .header("x-csrf-token", s["csrf_token"].as_str().unwrap())
        .json(&json!({"current_password": "newest-link-password", "new_password": "changed-by-hand-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        use_link(&app, &fourth, "fourth-link-password").await,
        422,
        "the password changed since"
    );
});

// Sign-out everywhere ends sessions; asked to, it revokes the API tokens too.
both!(
    sign_out_everywhere_can_revoke_tokens,
    |app: TestApp| async move {
        let (_, token) = app.user_with_role("sales", "rep@acme.test").await;
        let (c, s) = app.session("rep@acme.test", "password-123456").await;
        let csrf = s["csrf_token"].as_str().unwrap();
        let r = c
            .post(app.url("/api/v1/me/sign-out-everywhere"))
            .header("x-csrf-token", csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(
            app.get("/api/v1/me", &token).await.status(),
            200,
            "tokens kept by default"
        );
        let r = app
            .req(Method::POST, "/api/v1/me/sign-out-everywhere", &token)
            .json(&json!({"api_tokens": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(app.get("/api/v1/me", &token).await.status(), 401);
    }
);

// A return address is a path on this site, decided by a parser: the backslash trick and every
// other off-site form land on the home page.
both!(
    return_addresses_stay_on_the_site,
    |app: TestApp| async move {
        let c = Client::builder()
            .redirect(redirect::Policy::none())
            .build()
            .unwrap();
        for (back, expected) in [
            ("/\\evil.example", "/"),
            ("//evil.example", "/"),
            ("https://evil.example/", "/"),
            ("/\t/evil.example", "/"),
            (
                "/customers/contacts?q=%E5%BC%A0",
                "/customers/contacts?q=%E5%BC%A0",
            ),
        ] {
            let r = c
                .post(app.url("/lang"))
                .form(&[("locale", "en"), ("back", back)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303, "{back}");
            assert_eq!(r.headers()["location"], expected, "{back}");
        }
    }
);

// The red banner shows only messages the server chose: a crafted ?error= shows nothing of its
// own, a real refusal (keys) shows words in the reader's language.
both!(
    banners_show_only_server_messages,
    |app: TestApp| async move {
        let (c, _) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let phish = "Your account is locked, call 400-000-0000";
        let id: Value = app
            .post(
                "/api/v1/contacts",
                &app.admin_token,
                json!({"name": "张三"}),
            )
            .await
            .json()
            .await
            .unwrap();
        let id = id["id"].as_str().unwrap();
        let q = serde_urlencoded_pair("error", phish);
        for path in [
            format!("/customers/contacts/{id}?{q}"),
            format!("/customers/contacts?{q}"),
        ] {
            let html = c
                .get(app.url(&path))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(!html.contains("call 400"), "{path}");
        }
        let q = serde_urlencoded_pair("error", "activity.subject:required");
        let html = c
            .get(app.url(&format!("/customers/contacts/{id}?{q}")))
            .header("accept-language", "en")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("is required"),
            "the key becomes the server's words"
        );
    }
);

fn serde_urlencoded_pair(k: &str, v: &str) -> String {
    let mut s = String::new();
    for b in v.bytes() {
        s.push_str(&format!("%{b:02X}"));
    }
    format!("{k}={s}")
}
