use crate::both;
use reqwest::Method;
use serde_json::{json, Value};

both!(
    create_list_get_update_user,
    |app: crate::harness::TestApp| async move {
        let t = &app.admin_token;
        let team: Value = app
            .post("/api/v1/teams", t, json!({"name": "华南销售"}))
            .await
            .json()
            .await
            .unwrap();
        let (sales, _) = app.user_with_role("sales", "zhang.san@acme.test").await;
        let id = sales["id"].as_str().unwrap();
        let r = app.get(&format!("/api/v1/users/{id}"), t).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["etag"], "\"1\"");
        let r = app
            .req(Method::PATCH, &format!("/api/v1/users/{id}"), t)
            .header("if-match", "\"1\"")
            .json(&json!({"name": "张三", "team_id": team["id"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let u: Value = r.json().await.unwrap();
        assert_eq!(u["name"], "张三");
        assert_eq!(u["version"], 2);
        // A stale version is refused and changes nothing.
        let r = app
            .req(Method::PATCH, &format!("/api/v1/users/{id}"), t)
            .header("if-match", "\"1\"")
            .json(&json!({"name": "李四"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 412);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["current_version"], 2);
        let u: Value = app
            .get(&format!("/api/v1/users/{id}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(u["name"], "张三");
        // No version at all is a validation error naming the field.
        let r = app
            .patch(&format!("/api/v1/users/{id}"), t, json!({"name": "王五"}))
            .await;
        assert_eq!(r.status(), 422);
        // Filters and search.
        let page: Value = app
            .get(
                &format!("/api/v1/users?team_id={}", team["id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        let page: Value = app
            .get("/api/v1/users?q=%E5%BC%A0", t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["items"][0]["name"], "张三");
        // The audit log has the before and after.
        let ev: Value = app
            .get(
                &format!("/api/v1/audit-events?entity=users&entity_id={id}&action=update"),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        let e = &ev["items"][0];
        assert_eq!(e["before"]["name"], "zhang.san@acme.test");
        assert_eq!(e["after"]["name"], "张三");
    }
);

both!(
    bad_input_is_named,
    |app: crate::harness::TestApp| async move {
        let t = &app.admin_token;
        let r = app.post("/api/v1/users", t, json!({})).await;
        assert_eq!(r.status(), 422);
        let p: Value = r.json().await.unwrap();
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["email", "name", "role_id"]);
        let r = app
            .post(
                "/api/v1/users",
                t,
                json!({"email": "not-an-email", "name": "x", "role_id": uuid::Uuid::now_v7()}),
            )
            .await;
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["errors"][0]["code"], "invalid_email");
        let r = app
            .post(
                "/api/v1/users",
                t,
                json!({"email": "a@b.cn", "name": "x", "role_id": uuid::Uuid::now_v7()}),
            )
            .await;
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["errors"][0]["field"], "role_id");
        assert_eq!(p["errors"][0]["code"], "unknown");
        // Unknown field and malformed JSON: 400 naming the problem.
        let r = app
            .post("/api/v1/users", t, json!({"emial": "a@b.cn"}))
            .await;
        assert_eq!(r.status(), 400);
        let p: Value = r.json().await.unwrap();
        assert!(p["detail"].as_str().unwrap().contains("emial"), "{p}");
        let r = app
            .req(Method::POST, "/api/v1/users", t)
            .header("content-type", "application/json")
            .body("{\"email\":")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        // Duplicate email.
        let r = app
            .post(
                "/api/v1/users",
                t,
                json!({"email": "ADMIN@acme.test", "name": "x", "role_id": uuid::Uuid::now_v7()}),
            )
            .await;
        let p: Value = r.json().await.unwrap();
        assert!(p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "email" && e["code"] == "taken"));
        let r = app.get("/api/v1/users?limit=0", t).await;
        assert_eq!(r.status(), 422);
        let r = app.get("/api/v1/users?sort=password_hash", t).await;
        assert_eq!(r.status(), 422);
    }
);

both!(
    last_admin_cannot_be_removed,
    |app: crate::harness::TestApp| async move {
        let me: Value = app
            .get("/api/v1/me", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        let id = me["user"]["id"].as_str().unwrap();
        let sales = app.role("sales").await["id"].clone();
        let r = app
            .patch(
                &format!("/api/v1/users/{id}"),
                &app.admin_token,
                json!({"role_id": sales, "version": me["user"]["version"]}),
            )
            .await;
        assert_eq!(r.status(), 422);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["errors"][0]["code"], "last_admin");
    }
);

both!(
    cursor_pagination_walks_every_user_once,
    |app: crate::harness::TestApp| async move {
        for i in 0..7 {
            app.user_with_role("sales", &format!("u{i}@acme.test"))
                .await;
        }
        for sort in ["name", "-name", "created_at", "-email"] {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!("/api/v1/users?limit=3&sort={sort}");
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let r = app.get(&path, &app.admin_token).await;
                assert_eq!(r.status(), 200);
                let page: Value = r.json().await.unwrap();
                for u in page["items"].as_array().unwrap() {
                    seen.push(u["email"].as_str().unwrap().to_owned());
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            assert_eq!(seen.len(), 8, "{sort}: {seen:?}");
            let mut uniq = seen.clone();
            uniq.sort();
            uniq.dedup();
            assert_eq!(uniq.len(), 8);
        }
    }
);

both!(
    idempotency_key_replays_instead_of_duplicating,
    |app: crate::harness::TestApp| async move {
        let t = &app.admin_token;
        let send = |name: &'static str| {
            app.req(Method::POST, "/api/v1/teams", t)
                .header("idempotency-key", "k-1")
                .json(&json!({"name": name}))
                .send()
        };
        let send = |name: &'static str| {
            let f = send(name);
            async move { f.await.unwrap() }
        };
        let a = send("北京").await;
        assert_eq!(a.status(), 201);
        let a: Value = a.json().await.unwrap();
        let b = send("北京").await;
        assert_eq!(b.status(), 201);
        assert_eq!(b.headers()["idempotent-replayed"], "true");
        let b: Value = b.json().await.unwrap();
        assert_eq!(a["id"], b["id"]);
        let teams: Value = app.get("/api/v1/teams", t).await.json().await.unwrap();
        assert_eq!(teams["items"].as_array().unwrap().len(), 1);
        let c = send("上海").await;
        assert_eq!(c.status(), 422, "same key, different body");
    }
);

both!(
    permission_matrix,
    |app: crate::harness::TestApp| async move {
        // (role, method, path, body, expected status)
        let (_, ro) = app.user_with_role("read_only", "ro@acme.test").await;
        let (_, sales) = app.user_with_role("sales", "sales@acme.test").await;
        let (_, mgr) = app.user_with_role("manager", "mgr@acme.test").await;
        let new_user = json!({"email": "n@acme.test", "name": "n", "password": "password-123456", "role_id": uuid::Uuid::now_v7()});
        let cases: Vec<(&str, &String, Method, &str, Option<Value>, u16)> = vec![
            ("read_only", &ro, Method::GET, "/api/v1/users", None, 200),
            (
                "read_only",
                &ro,
                Method::POST,
                "/api/v1/users",
                Some(new_user.clone()),
                403,
            ),
            (
                "read_only",
                &ro,
                Method::POST,
                "/api/v1/teams",
                Some(json!({"name": "t"})),
                403,
            ),
            (
                "read_only",
                &ro,
                Method::GET,
                "/api/v1/audit-events",
                None,
                403,
            ),
            (
                "read_only",
                &ro,
                Method::POST,
                "/api/v1/api-tokens",
                Some(json!({"name": "t"})),
                403,
            ),
            (
                "read_only",
                &ro,
                Method::PATCH,
                "/api/v1/tenant",
                Some(json!({"name": "x", "version": 1})),
                403,
            ),
            ("sales", &sales, Method::GET, "/api/v1/teams", None, 200),
            ("read_only", &ro, Method::GET, "/api/v1/leads", None, 200),
            (
                "read_only",
                &ro,
                Method::GET,
                "/api/v1/scoring-rules/model",
                None,
                200,
            ),
            (
                "read_only",
                &ro,
                Method::POST,
                "/api/v1/scoring-rules/model",
                Some(json!({})),
                403,
            ),
            (
                "sales",
                &sales,
                Method::DELETE,
                "/api/v1/scoring-rules/model",
                None,
                403,
            ),
            (
                "manager",
                &mgr,
                Method::DELETE,
                "/api/v1/scoring-rules/model",
                None,
                204,
            ),
            (
                "read_only",
                &ro,
                Method::POST,
                "/api/v1/leads",
                Some(json!({"name": "某人"})),
                403,
            ),
            (
                "sales",
                &sales,
                Method::POST,
                "/api/v1/leads",
                Some(json!({"name": "某人", "phone": "13500135000"})),
                201,
            ),
            (
                "sales",
                &sales,
                Method::POST,
                "/api/v1/users",
                Some(new_user.clone()),
                403,
            ),
            (
                "sales",
                &sales,
                Method::GET,
                "/api/v1/audit-events",
                None,
                403,
            ),
            (
                "sales",
                &sales,
                Method::POST,
                "/api/v1/api-tokens",
                Some(json!({"name": "t"})),
                201,
            ),
            ("sales", &sales, Method::GET, "/api/v1/jobs", None, 403),
            (
                "sales",
                &sales,
                Method::POST,
                "/api/v1/roles",
                Some(json!({"key": "x", "name": "x"})),
                403,
            ),
            (
                "manager",
                &mgr,
                Method::GET,
                "/api/v1/audit-events",
                None,
                200,
            ),
            (
                "manager",
                &mgr,
                Method::POST,
                "/api/v1/users",
                Some(new_user.clone()),
                403,
            ),
            // Custom fields: everyone reads the definitions, only admins change them.
            (
                "read_only",
                &ro,
                Method::GET,
                "/api/v1/custom-fields",
                None,
                200,
            ),
            (
                "manager",
                &mgr,
                Method::POST,
                "/api/v1/custom-fields",
                Some(json!({"entity": "contacts", "key": "m", "kind": "text", "label": "m"})),
                403,
            ),
            (
                "admin",
                &app.admin_token,
                Method::POST,
                "/api/v1/custom-fields",
                Some(json!({"entity": "contacts", "key": "a", "kind": "text", "label": "a"})),
                201,
            ),
            // Saved views: everyone keeps their own; sharing takes the manager's scope.
            (
                "read_only",
                &ro,
                Method::POST,
                "/api/v1/saved-views",
                Some(json!({"entity": "contacts", "name": "mine", "query": "q=x"})),
                201,
            ),
            (
                "sales",
                &sales,
                Method::POST,
                "/api/v1/saved-views",
                Some(json!({"entity": "contacts", "name": "all", "query": "", "shared": true})),
                422,
            ),
            (
                "manager",
                &mgr,
                Method::POST,
                "/api/v1/saved-views",
                Some(json!({"entity": "contacts", "name": "all", "query": "", "shared": true})),
                201,
            ),
            // Imports and bulk changes need the module's create / update right.
            (
                "read_only",
                &ro,
                Method::POST,
                "/api/v1/imports/accounts",
                Some(json!("name\nx\n")),
                403,
            ),
            (
                "read_only",
                &ro,
                Method::POST,
                "/api/v1/assets",
                Some(json!({"name": "x"})),
                403,
            ),
            (
                "admin",
                &app.admin_token,
                Method::GET,
                "/api/v1/jobs",
                None,
                200,
            ),
            (
                "admin",
                &app.admin_token,
                Method::POST,
                "/api/v1/roles",
                Some(
                    json!({"key": "field_rep", "name": "外勤", "permissions": {"users": {"read": "team"}}}),
                ),
                201,
            ),
        ];
        for (role, token, method, path, body, want) in cases {
            let mut rq = app.req(method.clone(), path, token);
            if let Some(b) = body {
                rq = rq.json(&b);
            }
            let r = rq.send().await.unwrap();
            assert_eq!(r.status().as_u16(), want, "{role} {method} {path}");
        }
        // A sales rep sees only their own API tokens; the admin sees all.
        let mine: Value = app
            .get("/api/v1/api-tokens", &sales)
            .await
            .json()
            .await
            .unwrap();
        let all: Value = app
            .get("/api/v1/api-tokens", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        assert!(mine["items"].as_array().unwrap().len() < all["items"].as_array().unwrap().len());
        // A custom role with team scope on users sees only its team.
        let custom = app.role("field_rep").await.clone();
        assert_eq!(custom["permissions"]["users"]["read"], "team");
        let (_, rep) = app.user_with_role("field_rep", "rep@acme.test").await;
        let seen: Value = app.get("/api/v1/users", &rep).await.json().await.unwrap();
        assert_eq!(
            seen["items"].as_array().unwrap().len(),
            1,
            "no team: only self"
        );
        // Built-in roles are fixed.
        let admin_role = app.role("admin").await.clone();
        let r = app
            .patch(
                &format!("/api/v1/roles/{}", admin_role["id"].as_str().unwrap()),
                &app.admin_token,
                json!({"name": "x", "version": 1}),
            )
            .await;
        assert_eq!(r.status(), 409);
    }
);

both!(
    api_token_revocation_is_immediate,
    |app: crate::harness::TestApp| async move {
        let r = app
            .post(
                "/api/v1/api-tokens",
                &app.admin_token,
                json!({"name": "erp"}),
            )
            .await;
        let t: Value = r.json().await.unwrap();
        let secret = t["secret"].as_str().unwrap();
        assert!(secret.starts_with("gx_"));
        assert_eq!(app.get("/api/v1/me", secret).await.status(), 200);
        let listed: Value = app
            .get(
                &format!("/api/v1/api-tokens/{}", t["id"].as_str().unwrap()),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        assert!(
            listed.get("secret").is_none(),
            "the secret is shown once only"
        );
        let r = app
            .req(
                Method::DELETE,
                &format!("/api/v1/api-tokens/{}", t["id"].as_str().unwrap()),
                &app.admin_token,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(app.get("/api/v1/me", secret).await.status(), 401);
    }
);

both!(
    tenant_settings_validate_and_version,
    |app: crate::harness::TestApp| async move {
        let t: Value = app
            .get("/api/v1/tenant", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(t["time_zone"], "Asia/Shanghai");
        assert_eq!(t["currency"], "CNY");
        let r = app
            .patch(
                "/api/v1/tenant",
                &app.admin_token,
                json!({"version": t["version"], "time_zone": "Mars/Base", "currency": "yuan"}),
            )
            .await;
        assert_eq!(r.status(), 422);
        let p: Value = r.json().await.unwrap();
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["time_zone", "currency"]);
        let r = app
            .patch(
                "/api/v1/tenant",
                &app.admin_token,
                json!({"version": t["version"], "time_zone": "Asia/Taipei", "currency": "TWD"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let r = app
            .patch(
                "/api/v1/tenant",
                &app.admin_token,
                json!({"version": t["version"], "name": "stale"}),
            )
            .await;
        assert_eq!(r.status(), 412);
    }
);

// Signing a user in without SMTP: an admin sets a password or makes a one-time link to pass on,
// and reads every queued email in full in the outbox.
crate::both!(
    admins_sign_users_in_without_smtp,
    |app: crate::harness::TestApp| async move {
        let sales = app.role("sales").await["id"].clone();
        let r = app
            .post(
                "/api/v1/users",
                &app.admin_token,
                json!({"email": "new@acme.test", "name": "新人", "role_id": sales}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let u: Value = r.json().await.unwrap();
        let id = u["id"].as_str().unwrap().to_owned();
        // The invitation waits in the outbox; the admin reads it whole, link included.
        let jobs: Value = app
            .get("/api/v1/jobs?status=pending", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        let mail = &jobs["items"][0]["email"];
        assert_eq!(mail["to"], "new@acme.test");
        assert!(
            mail["text"].as_str().unwrap().contains("/password?token="),
            "{mail}"
        );
        // A sign-in link, shown once; it retires the emailed one.
        let r = app
            .post(
                &format!("/api/v1/users/{id}/sign-in-links"),
                &app.admin_token,
                json!({}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let link: Value = r.json().await.unwrap();
        let url = link["url"].as_str().unwrap();
        let token = url.split("token=").nth(1).unwrap();
        let emailed = mail["text"]
            .as_str()
            .unwrap()
            .split("token=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        let use_link = |t: String, pw: &'static str| {
            let c = reqwest::Client::new();
            let u = app.url("/api/v1/password-links");
            async move {
                c.post(u)
                    .json(&json!({"token": t, "password": pw}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(
            use_link(emailed.to_owned(), "from-the-email-1").await,
            422,
            "the older link is retired"
        );
        assert_eq!(use_link(token.to_owned(), "from-the-admin-1").await, 201);
        app.session("new@acme.test", "from-the-admin-1").await;
        // The admin sets a password: too short is refused by name; then the user signs in with it.
        let put = |pw: &str| {
            app.req(
                reqwest::Method::PUT,
                &format!("/api/v1/users/{id}/password"),
                &app.admin_token,
            )
            .json(&json!({"password": pw}))
            .send()
        };
        let r = put("short").await.unwrap();
        assert_eq!(r.status(), 422);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["errors"][0]["field"], "password");
        assert_eq!(put("set-by-the-admin").await.unwrap().status(), 204);
        app.session("new@acme.test", "set-by-the-admin").await;
        // Not for a rep to do.
        let (_, rep) = app.user_with_role("sales", "rep@acme.test").await;
        let r = app
            .req(
                reqwest::Method::PUT,
                &format!("/api/v1/users/{id}/password"),
                &rep,
            )
            .json(&json!({"password": "rep-tries-this-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let r = app
            .post(
                &format!("/api/v1/users/{id}/sign-in-links"),
                &rep,
                json!({}),
            )
            .await;
        assert_eq!(r.status(), 403);
        assert_eq!(
            app.get("/api/v1/jobs", &rep).await.status(),
            403,
            "the outbox is the admins'"
        );
    }
);
