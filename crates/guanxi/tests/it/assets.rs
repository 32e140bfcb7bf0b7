//! Assets through the API: what a customer owns or subscribes to, with serial, dates and
//! warranty; visible and changeable as the customer is; moved by a merge.

use crate::both;
use crate::harness::TestApp;
use serde_json::{json, Value};

async fn created(app: &TestApp, path: &str, token: &str, body: Value) -> Value {
    let r = app.post(path, token, body).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{v}");
    v
}

async fn codes(r: reqwest::Response) -> Vec<String> {
    assert_eq!(r.status(), 422);
    let p: Value = r.json().await.unwrap();
    let mut v: Vec<String> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["field"].as_str().unwrap(),
                e["code"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

both!(assets_of_a_customer, |app: TestApp| async move {
    let t = &app.admin_token;
    let acct = created(&app, "/api/v1/accounts", t, json!({"name": "杭州移动用户"})).await;
    let aid = acct["id"].as_str().unwrap();
    let line = created(
        &app,
        "/api/v1/assets",
        t,
        json!({"account_id": aid, "name": "5G 套餐 128 元", "serial": "13800138000",
               "kind": "subscription", "started_on": "2025-01-01", "ends_on": "2026-12-31",
               "warranty_until": "2026-06-30"}),
    )
    .await;
    assert_eq!(line["status"], "active");
    assert_eq!(line["quantity"], 1);
    assert_eq!(line["account_name"], "杭州移动用户");

    // Every bad field is named; nothing is stored.
    let r = app
        .post(
            "/api/v1/assets",
            t,
            json!({"name": "", "kind": "car", "started_on": "2026-02-30",
                   "ends_on": "2020-01-01", "quantity": 0}),
        )
        .await;
    assert_eq!(
        codes(r).await,
        [
            "account_id:required",
            "kind:invalid",
            "name:required",
            "quantity:out_of_range",
            "started_on:invalid_date"
        ]
    );
    let r = app
        .post(
            "/api/v1/assets",
            t,
            json!({"account_id": aid, "name": "x", "started_on": "2026-01-01", "ends_on": "2025-01-01"}),
        )
        .await;
    assert_eq!(codes(r).await, ["ends_on:before_start"]);
    // A serial belongs to one live asset.
    let r = app
        .post(
            "/api/v1/assets",
            t,
            json!({"account_id": aid, "name": "副卡", "serial": "13800138000"}),
        )
        .await;
    assert_eq!(codes(r).await, ["serial:taken"]);

    // Which customer has this line? And whose warranties end soon?
    let found: Value = app
        .get("/api/v1/assets?serial=13800138000", t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"][0]["account_id"], aid);
    let soon: Value = app
        .get("/api/v1/assets?warranty_before=2026-07-01", t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(soon["items"].as_array().unwrap().len(), 1);

    // Edits are versioned.
    let path = format!("/api/v1/assets/{}", line["id"].as_str().unwrap());
    let r = app
        .patch(&path, t, json!({"version": 1, "status": "suspended"}))
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .patch(&path, t, json!({"version": 1, "status": "ended"}))
        .await;
    assert_eq!(r.status(), 412);

    // A rep cannot add assets to a customer that is not theirs; to their own, they can.
    let (_, rep) = app.user_with_role("sales", "rep@example.com").await;
    let r = app
        .post(
            "/api/v1/assets",
            &rep,
            json!({"account_id": aid, "name": "宽带"}),
        )
        .await;
    // (The admin's customer is outside a rep's team: to the rep it does not exist.)
    assert_eq!(codes(r).await, ["account_id:unknown"]);
    let mine = created(
        &app,
        "/api/v1/accounts",
        &rep,
        json!({"name": "小王的客户"}),
    )
    .await;
    created(
        &app,
        "/api/v1/assets",
        &rep,
        json!({"account_id": mine["id"], "name": "宽带 500M"}),
    )
    .await;

    // Removed, it is gone from lists and its serial is free again.
    let r = app
        .req(reqwest::Method::DELETE, &path, t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    created(
        &app,
        "/api/v1/assets",
        t,
        json!({"account_id": aid, "name": "新号", "serial": "13800138000"}),
    )
    .await;
});

both!(
    a_merge_moves_assets_and_unmerge_returns_them,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let keep = created(
            &app,
            "/api/v1/contacts",
            t,
            json!({"name": "陈一", "phone": "13900139000"}),
        )
        .await;
        let dup = created(
            &app,
            "/api/v1/contacts",
            t,
            json!({"name": "陈一", "phone": "139 0013 9000"}),
        )
        .await;
        let asset = created(
            &app,
            "/api/v1/assets",
            t,
            json!({"contact_id": dup["id"], "name": "净水器", "serial": "WP-1"}),
        )
        .await;
        let kid = keep["id"].as_str().unwrap();
        let r = app
            .post(
                &format!("/api/v1/contacts/{kid}/merge"),
                t,
                json!({"version": keep["version"], "merge_ids": [dup["id"]]}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let a: Value = app
            .get(
                &format!("/api/v1/assets/{}", asset["id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(a["contact_id"], kid);
        let r = app
            .post(
                &format!("/api/v1/contacts/{}/unmerge", dup["id"].as_str().unwrap()),
                t,
                json!({}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let a: Value = app
            .get(
                &format!("/api/v1/assets/{}", asset["id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(a["contact_id"], dup["id"]);
    }
);

both!(
    accounts_merge_with_everything_they_hold,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let group = created(&app, "/api/v1/accounts", t, json!({"name": "阿里巴巴集团"})).await;
        let keep = created(
            &app,
            "/api/v1/accounts",
            t,
            json!({"name": "阿里巴巴（中国）有限公司", "parent_id": group["id"]}),
        )
        .await;
        let dup = created(
        &app,
        "/api/v1/accounts",
        t,
        json!({"name": "阿里巴巴中国", "credit_code": "91330100799655058B", "industry": "互联网"}),
    )
    .await;
        let (kid, did) = (keep["id"].as_str().unwrap(), dup["id"].as_str().unwrap());
        let person = created(
            &app,
            "/api/v1/contacts",
            t,
            json!({"name": "马云", "account_id": did}),
        )
        .await;
        let child = created(
            &app,
            "/api/v1/accounts",
            t,
            json!({"name": "阿里云", "parent_id": did}),
        )
        .await;
        let asset = created(
            &app,
            "/api/v1/assets",
            t,
            json!({"account_id": did, "name": "企业邮箱"}),
        )
        .await;

        // Merging an ancestor into its descendant is refused (merge the other way round).
        let r = app
            .post(
                &format!("/api/v1/accounts/{kid}/merge"),
                t,
                json!({"version": 1, "merge_ids": [group["id"]]}),
            )
            .await;
        assert_eq!(codes(r).await, ["merge_ids[0]:ancestor"]);

        // The survivor takes the duplicate's credit code and industry; everything moves to it.
        let r = app
        .post(
            &format!("/api/v1/accounts/{kid}/merge"),
            t,
            json!({"version": 1, "merge_ids": [did], "take": {"credit_code": did, "industry": did}}),
        )
        .await;
        let merged: Value = r.json().await.unwrap();
        assert_eq!(merged["credit_code"], "91330100799655058B", "{merged}");
        assert_eq!(merged["industry"], "互联网");
        assert_eq!(merged["parent_id"], group["id"], "its own parent stays");
        let get = |path: String| {
            let app = &app;
            async move { app.get(&path, t).await.json::<Value>().await.unwrap() }
        };
        assert_eq!(
            get(format!(
                "/api/v1/contacts/{}",
                person["id"].as_str().unwrap()
            ))
            .await["account_id"],
            kid
        );
        assert_eq!(
            get(format!(
                "/api/v1/accounts/{}",
                child["id"].as_str().unwrap()
            ))
            .await["parent_id"],
            kid
        );
        assert_eq!(
            get(format!("/api/v1/assets/{}", asset["id"].as_str().unwrap())).await["account_id"],
            kid
        );
        let gone = get(format!("/api/v1/accounts/{did}")).await;
        assert_eq!(gone["merged_into"], kid);
        // Merged twice: refused.
        let r = app
            .post(
                &format!("/api/v1/accounts/{kid}/merge"),
                t,
                json!({"version": 2, "merge_ids": [did]}),
            )
            .await;
        assert_eq!(codes(r).await, ["merge_ids[0]:already_merged"]);

        // Undo: the survivor gives back the credit code it took, and everything goes back.
        let r = app
            .post(&format!("/api/v1/accounts/{did}/unmerge"), t, json!({}))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            get(format!(
                "/api/v1/contacts/{}",
                person["id"].as_str().unwrap()
            ))
            .await["account_id"],
            did
        );
        assert_eq!(
            get(format!(
                "/api/v1/accounts/{}",
                child["id"].as_str().unwrap()
            ))
            .await["parent_id"],
            did
        );
        assert_eq!(
            get(format!("/api/v1/assets/{}", asset["id"].as_str().unwrap())).await["account_id"],
            did
        );
    }
);
