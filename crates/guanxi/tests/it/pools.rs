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
        let page_path = format!("/leads/pools/{}", pool["id"].as_str().unwrap());
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
