//! The shared pool (公海): claims within limits (each refusal names its limit), exactly one of
//! two racing reps gets a lead, releases need a reason, managers assign, and leads go back by
//! the pool's rules in one pass — every step on the lead's timeline.

use crate::both;
use crate::harness::{refused, TestApp};
use serde_json::{json, Value};

async fn post_json(app: &TestApp, path: &str, token: &str, body: Value) -> Value {
    let r = app.post(path, token, body).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{path}: {v}");
    v
}

async fn pooled(app: &TestApp, pool: &Value) -> Vec<Value> {
    let v: Value = app
        .get(
            &format!("/api/v1/pools/{}/leads", pool["id"].as_str().unwrap()),
            &app.admin_token,
        )
        .await
        .json()
        .await
        .unwrap();
    v["items"].as_array().unwrap().clone()
}

both!(claims_releases_and_returns, |app: TestApp| async move {
    let t = app.admin_token.clone();
    let pool = app
        .created(
            "/api/v1/pools",
            &t,
            json!({"name": "公司公海", "claim_per_day": 2, "max_held": 3, "reclaim_wait_days": 7,
                       "return_days": 30, "grade_days": {"A": 60}}),
        )
        .await;
    let r = app
        .post("/api/v1/pools", &t, json!({"name": "第二个公司公海"}))
        .await;
    assert_eq!(refused(r).await, vec![("team_id".into(), "taken".into())]);
    let base = format!("/api/v1/pools/{}", pool["id"].as_str().unwrap());
    // Five leads of the admin's go into the pool, saying why.
    let mut ids = vec![];
    for i in 0..5 {
        let v = app
            .created(
                "/api/v1/leads",
                &t,
                json!({"name": format!("公海客户{i}"), "phone": format!("1360013{i:04}")}),
            )
            .await;
        ids.push(v["id"].clone());
    }
    let r = app
        .post(&format!("{base}/release"), &t, json!({"ids": ids}))
        .await;
    assert_eq!(refused(r).await, vec![("reason".into(), "required".into())]);
    let r = post_json(
        &app,
        &format!("{base}/release"),
        &t,
        json!({"ids": ids, "reason": "暂无需求"}),
    )
    .await;
    assert_eq!(r["done"].as_array().unwrap().len(), 5);
    assert_eq!(pooled(&app, &pool).await.len(), 5);
    // Two reps race for the same lead: exactly one gets it.
    let (a, a_token) = app.user_with_role("sales", "a.rep@acme.test").await;
    let (_, b_token) = app.user_with_role("sales", "b.rep@acme.test").await;
    let claim = |token: &str, ids: Value| {
        app.req(reqwest::Method::POST, &format!("{base}/claim"), token)
            .json(&json!({ "ids": ids }))
            .send()
    };
    let (ra, rb) = tokio::join!(
        claim(&a_token, json!([ids[0]])),
        claim(&b_token, json!([ids[0]]))
    );
    let (ra, rb): (Value, Value) = (
        ra.unwrap().json().await.unwrap(),
        rb.unwrap().json().await.unwrap(),
    );
    let wins = [&ra, &rb]
        .iter()
        .filter(|r| r["done"].as_array().unwrap().len() == 1)
        .count();
    assert_eq!(wins, 1, "{ra} {rb}");
    let loser = if ra["done"].as_array().unwrap().is_empty() {
        &ra
    } else {
        &rb
    };
    assert_eq!(loser["failed"][0]["reason"], "taken");
    let (winner_token, winner_is_a) = if ra["done"].as_array().unwrap().len() == 1 {
        (&a_token, true)
    } else {
        (&b_token, false)
    };
    // Two a day: the winner's third claim today is refused, naming the limit.
    let r: Value = claim(winner_token, json!([ids[1], ids[2]]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["done"].as_array().unwrap().len(), 1);
    assert_eq!(r["failed"][0]["reason"], "claim_per_day");
    // What a rep gave back they may not take again for the waiting days.
    let held = ids[1].clone();
    let r = post_json(
        &app,
        &format!("{base}/release"),
        winner_token,
        json!({"ids": [held], "reason": "不是目标客户"}),
    )
    .await;
    assert_eq!(r["done"].as_array().unwrap().len(), 1);
    let other_token = if winner_is_a { &b_token } else { &a_token };
    let r: Value = claim(other_token, json!([ids[3]]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["done"].as_array().unwrap().len(), 1, "{r}");
    // A manager assigns from the pool within their team (this one has none: refused), an
    // admin anywhere; the rep is told.
    let (_, mgr) = app.user_with_role("manager", "mgr@acme.test").await;
    let r = app
        .post(
            &format!("{base}/assign"),
            &mgr,
            json!({"ids": [ids[4]], "owner_id": a["id"]}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![("owner_id".into(), "out_of_scope".into())]
    );
    let r = post_json(
        &app,
        &format!("{base}/assign"),
        &t,
        json!({"ids": [ids[4]], "owner_id": a["id"], "reason": "重点跟进"}),
    )
    .await;
    assert_eq!(r["done"].as_array().unwrap().len(), 1);
    // Every step is on the lead's timeline with its reason.
    let tl: Value = app
        .get(
            &format!("/api/v1/leads/{}/timeline", held.as_str().unwrap()),
            &t,
        )
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(&actions[..3], &["release", "claim", "release"], "{tl}");
    assert_eq!(tl["items"][0]["detail"]["reason"], "不是目标客户");
    // A month and a day without follow-up: the held leads go back, in one pass at the
    // pool's daily run; their owners are told once each.
    app.run_jobs_at(chrono::Utc::now() + chrono::Duration::days(31))
        .await;
    let back = pooled(&app, &pool).await;
    assert_eq!(back.len(), 5, "{back:?}");
    let told: Value = app
        .get("/api/v1/notifications", &a_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(told["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["kind"] == "pool_returned"));
    // A role without leads: creation cannot claim.
    let (_, svc) = app.user_with_role("read_only", "ro@acme.test").await;
    let r = claim(&svc, json!([ids[2]])).await.unwrap();
    assert_eq!(r.status(), 403);
});

both!(
    the_pool_page_claims_and_assigns,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        let pool = app
            .created("/api/v1/pools", &t, json!({"name": "公海"}))
            .await;
        let base = format!("/api/v1/pools/{}", pool["id"].as_str().unwrap());
        let mut ids = vec![];
        for i in 0..2 {
            let v = app
                .created(
                    "/api/v1/leads",
                    &t,
                    json!({"name": format!("待领{i}"), "phone": format!("1370013{i:04}")}),
                )
                .await;
            ids.push(v["id"].as_str().unwrap().to_owned());
        }
        post_json(
            &app,
            &format!("{base}/release"),
            &t,
            json!({"ids": ids, "reason": "测试"}),
        )
        .await;
        let (rep, _) = app.user_with_role("sales", "rep@acme.test").await;
        let (web, session) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let csrf = session["csrf_token"].as_str().unwrap().to_owned();
        let page_path = format!("/pools/{}", pool["id"].as_str().unwrap());
        let html = web
            .get(app.url(&page_path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("id=\"assign\"") && html.contains("待领0"),
            "{html}"
        );
        // Nobody chosen: said so, nothing moves.
        let r = web
            .post(app.url(&format!("{page_path}/assign")))
            .form(&[("_csrf", csrf.as_str()), ("ids", ids[0].as_str())])
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().contains("id=\"refused\""));
        let r = web
            .post(app.url(&format!("{page_path}/assign")))
            .form(&[
                ("_csrf", csrf.as_str()),
                ("ids", ids[0].as_str()),
                ("owner_id", rep["id"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().contains("id=\"claimed\""));
        let lead: Value = app
            .get(&format!("/api/v1/leads/{}", ids[0]), &t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(lead["owner_id"], rep["id"]);
        // The admin gave the other back just now: claiming it again is refused, and the page
        // says why.
        let r = web
            .post(app.url(&format!("{page_path}/claim")))
            .form(&[("_csrf", csrf.as_str()), ("ids", ids[1].as_str())])
            .send()
            .await
            .unwrap();
        let html = r.text().await.unwrap();
        assert!(
            html.contains("id=\"refused\"") && html.contains("刚放回"),
            "{html}"
        );
        assert_eq!(pooled(&app, &pool).await.len(), 1);
    }
);

async fn pooled_accounts(app: &TestApp, pool: &Value, token: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/api/v1/pools/{}/accounts", pool["id"].as_str().unwrap()),
            token,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["items"].as_array().unwrap().clone()
}

both!(
    customers_wait_in_their_pool_and_return_by_touch_and_order,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        // A customer pool beside a lead pool; grade periods are for leads; one company pool of
        // each kind.
        app.created("/api/v1/pools", &t, json!({"name": "线索公海"}))
            .await;
        let r = app
            .post(
                "/api/v1/pools",
                &t,
                json!({"name": "客户公海", "entity": "accounts", "grade_days": {"A": 60}}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            vec![("grade_days".into(), "leads_only".into())]
        );
        let r = app
            .post(
                "/api/v1/pools",
                &t,
                json!({"name": "x", "entity": "orders"}),
            )
            .await;
        assert_eq!(refused(r).await, vec![("entity".into(), "invalid".into())]);
        let pool = app
            .created(
                "/api/v1/pools",
                &t,
                json!({"name": "客户公海", "entity": "accounts", "max_held": 3,
                       "reclaim_wait_days": 0, "return_days": 30}),
            )
            .await;
        assert_eq!(pool["entity"], "accounts");
        let r = app
            .post(
                "/api/v1/pools",
                &t,
                json!({"name": "又一个", "entity": "accounts"}),
            )
            .await;
        assert_eq!(refused(r).await, vec![("team_id".into(), "taken".into())]);
        let base = format!("/api/v1/pools/{}", pool["id"].as_str().unwrap());
        let r = app.get(&format!("{base}/leads"), &t).await;
        assert_eq!(r.status(), 404);

        let (a, a_token) = app.user_with_role("sales", "a.rep@acme.test").await;
        let (_, b_token) = app.user_with_role("sales", "b.rep@acme.test").await;
        let (_, c_token) = app.user_with_role("sales", "c.rep@acme.test").await;
        let mut ids = vec![];
        for i in 0..3 {
            let v = app
                .created(
                    "/api/v1/accounts",
                    &a_token,
                    json!({"name": format!("公海公司{i}")}),
                )
                .await;
            ids.push(v["id"].as_str().unwrap().to_owned());
        }
        // The rep gives one back, saying why: it has no owner, waits in the pool, and is no
        // longer theirs to read; other reps see it there.
        let r = post_json(
            &app,
            &format!("{base}/release"),
            &a_token,
            json!({"ids": [ids[0]], "reason": "半年没有需求"}),
        )
        .await;
        assert_eq!(r["done"].as_array().unwrap().len(), 1, "{r}");
        let acc: Value = app
            .get(&format!("/api/v1/accounts/{}", ids[0]), &t)
            .await
            .json()
            .await
            .unwrap();
        assert!(acc["owner_id"].is_null(), "{acc}");
        assert_eq!(acc["pool_id"], pool["id"]);
        let r = app
            .get(&format!("/api/v1/accounts/{}", ids[0]), &a_token)
            .await;
        assert_eq!(r.status(), 404);
        let waiting = pooled_accounts(&app, &pool, &b_token).await;
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0]["name"], "公海公司0");
        // An edit never takes it out of the pool: naming an owner is refused, other changes
        // leave it waiting.
        let r = app
            .patch(
                &format!("/api/v1/accounts/{}", ids[0]),
                &t,
                json!({"version": acc["version"], "owner_id": a["id"]}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            vec![("owner_id".into(), "in_pool".into())]
        );
        let r = app
            .patch(
                &format!("/api/v1/accounts/{}", ids[0]),
                &t,
                json!({"version": acc["version"], "industry": "茶饮"}),
            )
            .await;
        let edited: Value = r.json().await.unwrap();
        assert!(edited["owner_id"].is_null(), "{edited}");
        // The rep who just gave it back may not take it again; of two others racing for it,
        // exactly one gets it.
        let claim = |token: &str, ids: Value| {
            app.req(reqwest::Method::POST, &format!("{base}/claim"), token)
                .json(&json!({ "ids": ids }))
                .send()
        };
        let r: Value = claim(&a_token, json!([ids[0]]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["failed"][0]["reason"], "just_released", "{r}");
        let (rb, rc) = tokio::join!(
            claim(&b_token, json!([ids[0]])),
            claim(&c_token, json!([ids[0]]))
        );
        let (rb, rc): (Value, Value) = (
            rb.unwrap().json().await.unwrap(),
            rc.unwrap().json().await.unwrap(),
        );
        let wins = [&rb, &rc]
            .iter()
            .filter(|r| r["done"].as_array().unwrap().len() == 1)
            .count();
        assert_eq!(wins, 1, "{rb} {rc}");
        let winner = if rb["done"].as_array().unwrap().len() == 1 {
            &b_token
        } else {
            &c_token
        };
        let won: Value = app
            .get(&format!("/api/v1/accounts/{}", ids[0]), winner)
            .await
            .json()
            .await
            .unwrap();
        assert!(
            won["pool_id"].is_null() && !won["owner_id"].is_null(),
            "{won}"
        );
        // At most three held: the rep holding three claims no fourth.
        app.created("/api/v1/accounts", &a_token, json!({"name": "第三个"}))
            .await;
        let extra = app
            .created("/api/v1/accounts", &t, json!({"name": "管理员的客户"}))
            .await;
        post_json(
            &app,
            &format!("{base}/release"),
            &t,
            json!({"ids": [extra["id"]], "reason": "分给销售"}),
        )
        .await;
        let r: Value = claim(&a_token, json!([extra["id"]]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["failed"][0]["reason"], "max_held", "{r}");
        // Every step is on the account's timeline, with its reason.
        let tl: Value = app
            .get(&format!("/api/v1/accounts/{}/timeline", ids[0]), &t)
            .await
            .json()
            .await
            .unwrap();
        let actions: Vec<&str> = tl["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["type"].as_str())
            .filter(|a| ["claim", "release", "return", "assign"].contains(a))
            .collect();
        assert_eq!(actions, vec!["claim", "release"], "{tl}");
        // A touch logged keeps a customer: 31 days on, the one followed up stays with its
        // rep, the one nobody touched goes back, and its rep is told.
        let later = chrono::Utc::now() + chrono::Duration::days(20);
        app.created(
            "/api/v1/activities",
            &a_token,
            json!({"kind": "visit", "account_id": ids[1], "subject": "拜访",
                   "occurred_at": later}),
        )
        .await;
        app.run_jobs_at(chrono::Utc::now() + chrono::Duration::days(31))
            .await;
        let names: Vec<String> = pooled_accounts(&app, &pool, &t)
            .await
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect();
        assert!(names.contains(&"公海公司2".to_owned()), "{names:?}");
        assert!(!names.contains(&"公海公司1".to_owned()), "{names:?}");
        let told: Value = app
            .get("/api/v1/notifications", &a_token)
            .await
            .json()
            .await
            .unwrap();
        assert!(told["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "accounts_returned"));
        // "No order within N days of taking it": an order keeps a customer, none sends it back.
        let v = app.get(&base, &t).await.json::<Value>().await.unwrap()["version"].clone();
        let r = app
            .patch(
                &base,
                &t,
                json!({"version": v, "return_days": null, "unconverted_days": 90}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let fresh = app
            .created("/api/v1/accounts", &a_token, json!({"name": "没下单的"}))
            .await;
        app.created(
            "/api/v1/orders",
            &a_token,
            json!({"account_id": ids[1], "lines": [{"name": "茶", "unit_price": 100}]}),
        )
        .await;
        app.run_jobs_at(chrono::Utc::now() + chrono::Duration::days(95))
            .await;
        let names: Vec<String> = pooled_accounts(&app, &pool, &t)
            .await
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect();
        assert!(names.contains(&"没下单的".to_owned()), "{names:?}");
        assert!(!names.contains(&"公海公司1".to_owned()), "{names:?}");
        let _ = fresh;
    }
);
