//! Deals through pipelines: stages with probabilities and forecast categories, moves by the
//! pipeline's rules with each stage's required fields, closing and reopening, the append-only
//! history (time in stage, slipped dates), the kanban's columns with counts and sums paged in
//! card order, a pipeline edit that maps a removed stage's deals, and racing moves (412).

use crate::both;
use crate::harness::{refused, TestApp};
use serde_json::{json, Value};

async fn pipeline(app: &TestApp, body: Value) -> Value {
    app.created("/api/v1/pipelines", &app.admin_token, body)
        .await
}

fn stage(p: &Value, name: &str) -> Value {
    p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()["id"]
        .clone()
}

async fn account(app: &TestApp, name: &str) -> Value {
    app.created(
        "/api/v1/accounts",
        &app.admin_token,
        json!({ "name": name }),
    )
    .await["id"]
        .clone()
}

both!(deals_move_by_their_pipeline, |app: TestApp| async move {
    let t = app.admin_token.clone();
    // A pipeline needs an open, a won and a lost stage.
    let r = app
        .post(
            "/api/v1/pipelines",
            &t,
            json!({"name": "缺阶段", "stages": [{"name": "接触"}]}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![
            ("stages".into(), "needs_lost".into()),
            ("stages".into(), "needs_won".into())
        ]
    );
    let sales = pipeline(
        &app,
        json!({"name": "产品销售", "stages": [
            {"name": "初步接触", "probability": 10},
            {"name": "需求确认", "probability": 30, "category": "pipeline"},
            {"name": "报价", "probability": 60, "category": "best_case", "required_fields": ["amount", "expected_close"]},
            {"name": "谈判", "probability": 80, "category": "commit"},
            {"name": "赢单", "category": "won"},
            {"name": "输单", "category": "lost", "required_fields": ["close_reason"]}
        ]}),
    )
    .await;
    assert_eq!(
        sales["is_default"], true,
        "the first pipeline is the default"
    );
    let project = pipeline(
        &app,
        json!({"name": "工程项目", "moves": "forward", "may_reopen": false, "stages": [
            {"name": "投标"}, {"name": "合同"}, {"name": "交付"}, {"name": "验收"},
            {"name": "完工", "category": "won"}, {"name": "流标", "category": "lost"}
        ]}),
    )
    .await;
    assert_eq!(project["is_default"], false);
    let acc = account(&app, "杭州茶业").await;

    // A new deal lands in the default pipeline's first stage with its probability.
    let r = app
        .post(
            "/api/v1/opportunities",
            &t,
            json!({"name": "年度茶叶采购", "account_id": acc, "amount": 1_000_000_000_000_000_001_i64}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![("amount".into(), "out_of_range".into())]
    );
    let r = app
        .post("/api/v1/opportunities", &t, json!({"name": "无客户"}))
        .await;
    assert_eq!(
        refused(r).await,
        vec![("account_id".into(), "required".into())]
    );
    let d = app
        .created(
            "/api/v1/opportunities",
            &t,
            json!({"name": "年度茶叶采购", "account_id": acc, "amount": 12_000_000}),
        )
        .await;
    assert_eq!(d["pipeline_id"], sales["id"]);
    assert_eq!(d["stage_name"], "初步接触");
    assert_eq!(d["probability"], 10);
    assert_eq!(d["weighted"], 1_200_000);
    assert_eq!(d["status"], "open");
    let url = format!("/api/v1/opportunities/{}", d["id"].as_str().unwrap());

    // Entering 报价 asks for its required fields, each named.
    let r = app
        .patch(
            &url,
            &t,
            json!({"version": d["version"], "stage_id": stage(&sales, "报价"), "amount": 0}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![
            ("amount".into(), "required_for_stage".into()),
            ("expected_close".into(), "required_for_stage".into())
        ]
    );
    let d: Value = app
        .patch(
            &url,
            &t,
            json!({"version": d["version"], "stage_id": stage(&sales, "报价"), "expected_close": "2026-12-20"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["stage_name"], "报价");
    assert_eq!(d["probability"], 60);
    // Two reps move the same card from the same version: the second is refused.
    let (a, b) = tokio::join!(
        app.patch(
            &url,
            &t,
            json!({"version": d["version"], "stage_id": stage(&sales, "谈判")})
        ),
        app.patch(
            &url,
            &t,
            json!({"version": d["version"], "stage_id": stage(&sales, "需求确认")})
        )
    );
    let mut codes = [a.status().as_u16(), b.status().as_u16()];
    codes.sort();
    assert_eq!(codes, [200, 412]);
    let d: Value = app.get(&url, &t).await.json().await.unwrap();
    // The close date slips; losing asks why; it closes.
    let d: Value = app
        .patch(
            &url,
            &t,
            json!({"version": d["version"], "expected_close": "2027-01-15"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .patch(
            &url,
            &t,
            json!({"version": d["version"], "stage_id": stage(&sales, "输单")}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![("close_reason".into(), "required_for_stage".into())]
    );
    let lost: Value = app
        .patch(
            &url,
            &t,
            json!({"version": d["version"], "stage_id": stage(&sales, "输单"), "close_reason": "价格太高"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(lost["status"], "lost");
    assert_eq!(lost["probability"], 0);
    assert!(lost["closed_at"].is_string());
    // This pipeline lets a lost deal reopen.
    let reopened: Value = app
        .patch(
            &url,
            &t,
            json!({"version": lost["version"], "stage_id": stage(&sales, "谈判")}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reopened["status"], "open");
    assert!(reopened["closed_at"].is_null());

    // The history: every stage, amount, probability and date change, oldest first.
    let h: Value = app
        .get(&format!("{url}/history"), &t)
        .await
        .json()
        .await
        .unwrap();
    let stages: Vec<&str> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["field"] == "stage")
        .map(|e| e["to_value"].as_str().unwrap())
        .collect();
    assert_eq!(stages.first(), Some(&"初步接触"));
    assert_eq!(stages.last(), Some(&"谈判"));
    assert!(stages.contains(&"输单"));
    assert_eq!(h["slipped"], 1);
    assert!(h["time_in_stage"]["报价"].as_i64().is_some(), "{h}");

    // A forward-only pipeline refuses going back; a closed deal there cannot reopen.
    let p = app
        .created(
            "/api/v1/opportunities",
            &t,
            json!({"name": "园区工程", "account_id": acc, "pipeline_id": project["id"], "stage_id": stage(&project, "交付")}),
        )
        .await;
    let purl = format!("/api/v1/opportunities/{}", p["id"].as_str().unwrap());
    let r = app
        .patch(
            &purl,
            &t,
            json!({"version": p["version"], "stage_id": stage(&project, "合同")}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![("stage_id".into(), "backward".into())]
    );
    let won: Value = app
        .patch(
            &purl,
            &t,
            json!({"version": p["version"], "stage_id": stage(&project, "完工")}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(won["status"], "won");
    let r = app
        .patch(
            &purl,
            &t,
            json!({"version": won["version"], "stage_id": stage(&project, "验收")}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![("stage_id".into(), "no_reopen".into())]
    );
    // A stage of another pipeline is unknown here.
    let r = app
        .patch(
            &purl,
            &t,
            json!({"version": won["version"], "stage_id": stage(&sales, "谈判")}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![("stage_id".into(), "unknown".into())]
    );
});

both!(the_board_pages_each_column, |app: TestApp| async move {
    let t = app.admin_token.clone();
    let p = pipeline(
        &app,
        json!({"name": "看板", "stages": [
            {"name": "甲", "probability": 20}, {"name": "乙", "probability": 50},
            {"name": "赢", "category": "won"}, {"name": "输", "category": "lost"}
        ]}),
    )
    .await;
    let acc = account(&app, "看板客户").await;
    for i in 0..3 {
        app.created(
            "/api/v1/opportunities",
            &t,
            json!({"name": format!("甲单{i}"), "account_id": acc, "amount": 1000 * (i + 1)}),
        )
        .await;
    }
    app.created(
        "/api/v1/opportunities",
        &t,
        json!({"name": "乙单", "account_id": acc, "amount": 10_000, "stage_id": stage(&p, "乙")}),
    )
    .await;
    let base = format!("/api/v1/pipelines/{}/board", p["id"].as_str().unwrap());
    let b: Value = app
        .get(&format!("{base}?limit=2"), &t)
        .await
        .json()
        .await
        .unwrap();
    let cols = b["columns"].as_array().unwrap();
    assert_eq!(cols.len(), 4);
    assert_eq!(cols[0]["count"], 3);
    assert_eq!(cols[0]["amount"], 6000);
    assert_eq!(cols[0]["weighted"], 1200);
    assert_eq!(cols[1]["count"], 1);
    assert_eq!(cols[1]["weighted"], 5000);
    assert_eq!(cols[2]["count"], 0);
    // Newest card first; two a page, the third on the next.
    let first: Vec<&str> = cols[0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(first, vec!["甲单2", "甲单1"]);
    let cursor = cols[0]["next_cursor"].as_str().unwrap();
    let more: Value = app
        .req(reqwest::Method::GET, &base, &t)
        .query(&[
            ("stage_id", cols[0]["stage"]["id"].as_str().unwrap()),
            ("cursor", cursor),
            ("limit", "2"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(more["columns"].as_array().unwrap().len(), 1);
    assert_eq!(more["columns"][0]["items"][0]["name"], "甲单0");
    assert!(more["columns"][0]["next_cursor"].is_null());
    let r = app.get(&format!("{base}?cursor=x"), &t).await;
    assert_eq!(r.status(), 422);

    // Removing a stage that holds deals needs a mapping to a kept stage of the same kind.
    let keep: Vec<Value> = p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] != "甲")
        .map(|s| json!({"id": s["id"], "name": s["name"], "category": s["category"], "probability": s["probability"]}))
        .collect();
    let purl = format!("/api/v1/pipelines/{}", p["id"].as_str().unwrap());
    let gone = stage(&p, "甲");
    let r = app
        .patch(&purl, &t, json!({"version": p["version"], "stages": keep}))
        .await;
    assert_eq!(
        refused(r).await,
        vec![(
            format!("remap.{}", gone.as_str().unwrap()),
            "required".into()
        )]
    );
    let r = app
        .patch(
            &purl,
            &t,
            json!({"version": p["version"], "stages": keep, "remap": {gone.as_str().unwrap(): stage(&p, "赢")}}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![(
            format!("remap.{}", gone.as_str().unwrap()),
            "other_kind".into()
        )]
    );
    let edited: Value = app
        .patch(
            &purl,
            &t,
            json!({"version": p["version"], "stages": keep, "remap": {gone.as_str().unwrap(): stage(&p, "乙")}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(edited["stages"].as_array().unwrap().len(), 3);
    let b: Value = app.get(&base, &t).await.json().await.unwrap();
    assert_eq!(b["columns"][0]["stage"]["name"], "乙");
    assert_eq!(b["columns"][0]["count"], 4);
    let moved = &b["columns"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "甲单0")
        .unwrap()
        .clone();
    let h: Value = app
        .get(
            &format!(
                "/api/v1/opportunities/{}/history",
                moved["id"].as_str().unwrap()
            ),
            &t,
        )
        .await
        .json()
        .await
        .unwrap();
    let last = h["items"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (last["from_value"].clone(), last["to_value"].clone()),
        (json!("甲"), json!("乙"))
    );
});

both!(deals_are_records, |app: TestApp| async move {
    let t = app.admin_token.clone();
    pipeline(
        &app,
        json!({"name": "默认", "stages": [{"name": "接触"}, {"name": "赢", "category": "won"}, {"name": "输", "category": "lost"}]}),
    )
    .await;
    let acc = account(&app, "记录客户").await;
    // Custom fields, tags, the search box (the account's name finds its deals), the trash.
    app.created(
        "/api/v1/custom-fields",
        &t,
        json!({"entity": "opportunities", "key": "competitor", "kind": "text", "label": "竞争对手"}),
    )
    .await;
    let d = app
        .created(
            "/api/v1/opportunities",
            &t,
            json!({"name": "扩容项目", "account_id": acc, "tags": ["重点"], "custom": {"competitor": "某友商"}}),
        )
        .await;
    assert_eq!(d["custom"]["competitor"], "某友商");
    let found: Value = app
        .get("/api/v1/opportunities?q=jlkh", &t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"][0]["name"], "扩容项目", "{found}");
    // The one search box finds the deal by its account's name too.
    let hits: Value = app
        .get("/api/v1/search?q=记录客户", &t)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        hits["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["kind"] == "opportunity" && h["name"] == "扩容项目"),
        "{hits}"
    );
    let found: Value = app
        .get(
            "/api/v1/opportunities?custom.competitor=某友商&tag=重点",
            &t,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let r: Value = app
        .post(
            "/api/v1/opportunities/bulk",
            &t,
            json!({"ids": [d["id"]], "action": "delete"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["done"].as_array().unwrap().len(), 1);
    let listed: Value = app
        .get("/api/v1/opportunities", &t)
        .await
        .json()
        .await
        .unwrap();
    assert!(listed["items"].as_array().unwrap().is_empty());
    let back = app
        .post(
            &format!(
                "/api/v1/opportunities/{}/restore",
                d["id"].as_str().unwrap()
            ),
            &t,
            json!({}),
        )
        .await;
    assert_eq!(back.status(), 200);
    let tl: Value = app
        .get(
            &format!(
                "/api/v1/opportunities/{}/timeline",
                d["id"].as_str().unwrap()
            ),
            &t,
        )
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["restore", "delete", "create"], "{tl}");
    // A rep works their own deals; another rep does not see them; read-only creates none.
    let (_, rep) = app.user_with_role("sales", "rep1@acme.test").await;
    let (_, other) = app.user_with_role("sales", "rep2@acme.test").await;
    // A deal is for a customer the rep can see.
    let r = app
        .post(
            "/api/v1/opportunities",
            &rep,
            json!({"name": "别人的客户", "account_id": acc}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![("account_id".into(), "unknown".into())]
    );
    let own = app
        .created("/api/v1/accounts", &rep, json!({"name": "我的客户"}))
        .await;
    let mine = app
        .created(
            "/api/v1/opportunities",
            &rep,
            json!({"name": "我的商机", "account_id": own["id"]}),
        )
        .await;
    let r = app
        .get(
            &format!("/api/v1/opportunities/{}", mine["id"].as_str().unwrap()),
            &other,
        )
        .await;
    assert_eq!(r.status(), 404);
    let (_, ro) = app.user_with_role("read_only", "ro@acme.test").await;
    let r = app
        .post(
            "/api/v1/opportunities",
            &ro,
            json!({"name": "x", "account_id": acc}),
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .post(
            "/api/v1/pipelines",
            &rep,
            json!({"name": "x", "stages": []}),
        )
        .await;
    assert_eq!(r.status(), 403);
});

both!(
    a_converted_lead_opens_its_first_deal,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        pipeline(
        &app,
        json!({"name": "默认", "stages": [{"name": "接触"}, {"name": "赢", "category": "won"}, {"name": "输", "category": "lost"}]}),
    )
    .await;
        let lead = app
        .created(
            "/api/v1/leads",
            &t,
            json!({"name": "周明", "company": "明德茶业", "product_interest": "礼盒", "phone": "13911112222"}),
        )
        .await;
        let url = format!("/api/v1/leads/{}/convert", lead["id"].as_str().unwrap());
        let c: Value = app
            .post(&url, &t, json!({"opportunity": {"amount": 500_000}}))
            .await
            .json()
            .await
            .unwrap();
        let deal_id = c["opportunity_id"].as_str().unwrap().to_owned();
        let d: Value = app
            .get(&format!("/api/v1/opportunities/{deal_id}"), &t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(d["name"], "明德茶业 · 礼盒");
        assert_eq!(d["account_id"], c["account_id"]);
        assert_eq!(d["contact_id"], c["contact_id"]);
        assert_eq!(d["lead_id"], lead["id"]);
        assert_eq!(d["amount"], 500_000);
        // Converting again answers the same conversion and deal; nothing new.
        let again: Value = app
            .post(&url, &t, json!({"opportunity": {"amount": 1}}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(again["opportunity_id"], c["opportunity_id"]);
        let all: Value = app
            .get("/api/v1/opportunities", &t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(all["items"].as_array().unwrap().len(), 1);
        // A deal needs an account: a lead converted into a contact alone cannot open one.
        let solo = app
            .created(
                "/api/v1/leads",
                &t,
                json!({"name": "散客", "phone": "13933334444"}),
            )
            .await;
        let r = app
            .post(
                &format!("/api/v1/leads/{}/convert", solo["id"].as_str().unwrap()),
                &t,
                json!({"create_account": false, "opportunity": {}}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            vec![("opportunity".into(), "needs_account".into())]
        );
        let l: Value = app
            .get(
                &format!("/api/v1/leads/{}", solo["id"].as_str().unwrap()),
                &t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_ne!(
            l["status"], "converted",
            "nothing of the refused conversion is kept"
        );
    }
);

both!(
    pipelines_are_shaped_on_their_page,
    |app: TestApp| async move {
        let (web, session) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let csrf = session["csrf_token"].as_str().unwrap().to_owned();
        let post = |path: &str, form: Vec<(String, String)>| {
            let mut form = form;
            form.push(("_csrf".into(), csrf.clone()));
            web.post(app.url(path)).form(&form).send()
        };
        // Without a lost stage the page says what is missing, in Chinese.
        let r = post(
            "/admin/pipelines",
            vec![
                ("name".into(), "渠道销售".into()),
                ("moves".into(), "any".into()),
                ("s0.name".into(), "接触".into()),
                ("s1.name".into(), "成交".into()),
                ("s1.category".into(), "won".into()),
            ],
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 422);
        let body = r.text().await.unwrap();
        assert!(body.contains("需要一个输单阶段"));
        // What was typed stays on the form.
        assert!(
            body.contains("value=\"接触\"") && body.contains("value=\"渠道销售\""),
            "{body}"
        );
        let r = post(
            "/admin/pipelines",
            vec![
                ("name".into(), "渠道销售".into()),
                ("moves".into(), "any".into()),
                ("may_reopen".into(), "1".into()),
                ("s0.name".into(), "接触".into()),
                ("s0.probability".into(), "20".into()),
                ("s1.name".into(), "谈判".into()),
                ("s1.category".into(), "commit".into()),
                ("s1.req.amount".into(), "1".into()),
                ("s2.name".into(), "成交".into()),
                ("s2.category".into(), "won".into()),
                ("s3.name".into(), "丢单".into()),
                ("s3.category".into(), "lost".into()),
            ],
        )
        .await
        .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let p: Value = app
            .get("/api/v1/pipelines", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        let p = p["items"][0].clone();
        assert_eq!(p["stages"][1]["required_fields"], json!(["amount"]));
        let acc = account(&app, "渠道客户").await;
        let d = app
            .created(
                "/api/v1/opportunities",
                &app.admin_token,
                json!({"name": "渠道单", "account_id": acc}),
            )
            .await;
        // Removing the first stage, which holds the deal: where its deals go is asked first.
        let id = p["id"].as_str().unwrap();
        let mut rows: Vec<(String, String)> = vec![
            ("version".into(), p["version"].to_string()),
            ("name".into(), "渠道销售".into()),
            ("moves".into(), "any".into()),
        ];
        for (i, st) in p["stages"].as_array().unwrap().iter().enumerate() {
            for (k, v) in [
                ("id", st["id"].as_str().unwrap().to_owned()),
                ("name", st["name"].as_str().unwrap().to_owned()),
                ("category", st["category"].as_str().unwrap().to_owned()),
            ] {
                rows.push((format!("s{i}.{k}"), v));
            }
        }
        rows.push(("s0.remove".into(), "1".into()));
        let r = post(&format!("/admin/pipelines/{id}"), rows.clone())
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        assert!(r.text().await.unwrap().contains("被删除阶段上的商机"));
        rows.push((
            "s0.remap".into(),
            p["stages"][1]["id"].as_str().unwrap().to_owned(),
        ));
        let r = post(&format!("/admin/pipelines/{id}"), rows).await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let moved: Value = app
            .get(
                &format!("/api/v1/opportunities/{}", d["id"].as_str().unwrap()),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(moved["stage_name"], "谈判");
        // The owner's home page lists it among their open deals; its page is a recent view.
        let home = web
            .get(app.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            home.contains("id=\"my-deals\"") && home.contains("渠道单"),
            "{home}"
        );
        // A card moved from a stale board (someone changed it since): the board again, saying
        // so; nothing moves.
        let r = post(
            &format!("/opportunities/{}/move", d["id"].as_str().unwrap()),
            vec![
                ("version".into(), d["version"].to_string()),
                (
                    "stage_id".into(),
                    p["stages"][2]["id"].as_str().unwrap().to_owned(),
                ),
                ("back".into(), "board".into()),
            ],
        )
        .await
        .unwrap();
        assert!(
            r.url().path().ends_with("/opportunities/board"),
            "{}",
            r.url()
        );
        assert!(r.text().await.unwrap().contains("id=\"refused\""));
        let still: Value = app
            .get(
                &format!("/api/v1/opportunities/{}", d["id"].as_str().unwrap()),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(still["stage_name"], "谈判");
    }
);

both!(
    a_deal_names_its_people_and_competitors,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        crate::quotes::pipeline(&app).await;
        let acc = account(&app, "参与方客户").await;
        let contact = |name: &str| {
            let app = &app;
            let body = json!({"name": name, "account_id": acc, "title": "总经理"});
            async move {
                app.created("/api/v1/contacts", &app.admin_token, body)
                    .await
            }
        };
        let (boss, eng) = (contact("王总").await, contact("李工").await);
        let deal = app
            .created(
                "/api/v1/opportunities",
                &t,
                json!({"name": "参与方单", "account_id": acc, "amount": 1}),
            )
            .await;
        let url = format!(
            "/api/v1/opportunities/{}/parties",
            deal["id"].as_str().unwrap()
        );
        let put = |body: Value| {
            let app = &app;
            let url = url.clone();
            async move {
                app.req(reqwest::Method::PUT, &url, &app.admin_token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
            }
        };
        let empty: Value = app.get(&url, &t).await.json().await.unwrap();
        assert_eq!(
            (empty["contacts"].clone(), empty["competitors"].clone()),
            (json!([]), json!([]))
        );
        // Bad input is named field by field; nothing changes.
        let r = put(json!({"version": deal["version"], "contacts": [
            {"contact_id": boss["id"], "role": "boss"}, {"contact_id": boss["id"], "role": "user"}],
            "competitors": [{"name": " "}]}))
        .await;
        assert_eq!(
            refused(r).await,
            vec![
                ("competitors[0].name".into(), "required".into()),
                ("contacts[0].role".into(), "invalid".into()),
                ("contacts[1].contact_id".into(), "duplicate".into())
            ]
        );
        let r = put(json!({"version": deal["version"], "contacts": [{"contact_id": uuid::Uuid::now_v7(), "role": "user"}]})).await;
        assert_eq!(
            refused(r).await,
            vec![("contacts[0].contact_id".into(), "unknown".into())]
        );
        // Two people set at once from the same version: one wins, the other is refused.
        let body = |role: &str| {
            json!({"version": deal["version"], "contacts": [
            {"contact_id": boss["id"], "role": "decision_maker"}, {"contact_id": eng["id"], "role": role}],
            "competitors": [{"name": "华为", "note": "报价低 8%"}]})
        };
        let (a, b) = tokio::join!(put(body("evaluator")), put(body("blocker")));
        let mut codes = [a.status().as_u16(), b.status().as_u16()];
        codes.sort();
        assert_eq!(codes, [200, 412]);
        let now: Value = app.get(&url, &t).await.json().await.unwrap();
        assert_eq!(now["contacts"][0]["role"], "decision_maker");
        assert_eq!(now["contacts"][1]["name"], "李工");
        assert_eq!(
            now["competitors"],
            json!([{"name": "华为", "note": "报价低 8%"}])
        );
        // The deal's version moved: an edit of the deal from before is refused.
        let r = app
            .patch(
                &format!("/api/v1/opportunities/{}", deal["id"].as_str().unwrap()),
                &t,
                json!({"version": deal["version"], "amount": 2}),
            )
            .await;
        assert_eq!(r.status(), 412);
        // A list left out stays; an empty list clears.
        let r = put(json!({"version": now["version"], "competitors": []})).await;
        let after: Value = r.json().await.unwrap();
        assert_eq!(
            (
                after["contacts"].as_array().unwrap().len(),
                after["competitors"].clone()
            ),
            (2, json!([]))
        );
        // A rep who may not edit the deal may not change its parties.
        let (_, rep_t) = app.user_with_role("sales", "rep@parties.test").await;
        let r = app
            .req(reqwest::Method::PUT, &url, &rep_t)
            .json(&json!({"version": after["version"], "competitors": []}))
            .send()
            .await
            .unwrap();
        assert!(matches!(r.status().as_u16(), 403 | 404), "{}", r.status());
    }
);

both!(
    the_board_opens_a_saved_view_of_the_deal_list,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        crate::quotes::pipeline(&app).await;
        let acc = account(&app, "视图客户").await;
        for (name, tags) in [("重点单甲", json!(["重点"])), ("普通单乙", json!([]))] {
            app.created(
                "/api/v1/opportunities",
                &t,
                json!({"name": name, "account_id": acc, "amount": 1, "tags": tags}),
            )
            .await;
        }
        let view = app
            .created(
                "/api/v1/saved-views",
                &t,
                json!({"entity": "opportunities", "name": "重点商机", "query": "tag=重点&sort=-amount"}),
            )
            .await;
        let (browser, _) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let page = |path: String| {
            let browser = browser.clone();
            let url = app.url(&path);
            async move { browser.get(url).send().await.unwrap().text().await.unwrap() }
        };
        let all = page("/opportunities/board".into()).await;
        assert!(all.contains("重点单甲") && all.contains("普通单乙"));
        let viewed = page(format!(
            "/opportunities/board?view={}",
            view["id"].as_str().unwrap()
        ))
        .await;
        assert!(
            viewed.contains("重点单甲") && !viewed.contains("普通单乙"),
            "{viewed}"
        );
        assert!(
            viewed.contains("重点商机"),
            "the view is offered and chosen"
        );
    }
);
