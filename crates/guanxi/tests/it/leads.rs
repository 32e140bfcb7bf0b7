//! Leads: a person arrives once however often they write (matched to the lead or customer
//! they already are, the arrival on that record's timeline), leads have everything contacts
//! have from the record machinery, and conversion links existing customers instead of copying
//! them — under concurrency on both databases.

use crate::both;
use crate::harness::{refused, TestApp};
use serde_json::{json, Value};

async fn lead_timeline(app: &TestApp, id: &Value) -> Vec<Value> {
    let v: Value = app
        .get(
            &format!("/api/v1/leads/{}/timeline", id.as_str().unwrap()),
            &app.admin_token,
        )
        .await
        .json()
        .await
        .unwrap();
    v["items"].as_array().unwrap().clone()
}

async fn list(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/leads{query}"), token).await;
    assert_eq!(r.status(), 200, "{query}");
    let v: Value = r.json().await.unwrap();
    v["items"].as_array().unwrap().clone()
}

both!(a_person_arrives_once, |app: TestApp| async move {
    let t = &app.admin_token;
    let first = app
            .created(
                "/api/v1/leads",
                t,
                json!({"name": "李雷", "company": "华南机械", "phone": "138 0013 8000", "notes": "要报价"}),
            )
            .await;
    assert_eq!(first["outcome"], "created");
    assert_eq!(first["entity"], "leads");
    let lead = &first["lead"];
    assert_eq!(lead["source"], "api");
    assert_eq!(lead["status"], "new");
    assert_eq!(lead["phone_e164"], "+8613800138000");
    let id = first["id"].clone();
    // The same post again (a double submit, a retry): nothing new, not even a touch.
    let r = app
            .post(
                "/api/v1/leads",
                t,
                json!({"name": "李雷", "company": "华南机械", "phone": "138 0013 8000", "notes": "要报价"}),
            )
            .await;
    assert_eq!(r.status(), 200);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["outcome"], "repeated");
    assert_eq!(again["id"], id);
    // The same person writing again (full-width digits, another message): a touch on the
    // lead, with what was sent.
    let r = app
            .post(
                "/api/v1/leads",
                t,
                json!({"name": "李雷", "phone": "１３８００１３８０００", "notes": "还在等报价", "source": "form", "source_detail": "官网"}),
            )
            .await;
    assert_eq!(r.status(), 200);
    let touched: Value = r.json().await.unwrap();
    assert_eq!(touched["outcome"], "matched");
    assert_eq!(touched["id"], id);
    assert_eq!(touched["matched_on"], json!(["phone"]));
    let history = lead_timeline(&app, &id).await;
    let touch = history.iter().find(|e| e["type"] == "touch").unwrap();
    assert_eq!(touch["detail"]["notes"], "还在等报价");
    assert_eq!(touch["detail"]["source"], "form");
    assert_eq!(touch["detail"]["source_detail"], "官网");
    assert!(history.iter().any(|e| e["type"] == "create"));
    // By name at the same company (any case) too.
    let r: Value = app
        .post(
            "/api/v1/leads",
            t,
            json!({"name": "李雷", "company": "华南机械", "email": "lilei@hn.test"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["outcome"], "matched");
    assert_eq!(r["id"], id);
    assert_eq!(list(&app, t, "").await.len(), 1);
    // A customer is never a new lead: a contact's email matches, and the arrival is on the
    // contact's timeline.
    let contact = app
        .created(
            "/api/v1/contacts",
            t,
            json!({"name": "韩梅梅", "email": "hmm@example.com"}),
        )
        .await;
    let r: Value = app
        .post(
            "/api/v1/leads",
            t,
            json!({"name": "Han Meimei", "email": "HMM@Example.com", "product_interest": "挖掘机"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["outcome"], "matched");
    assert_eq!(r["entity"], "contacts");
    assert_eq!(r["id"], contact["id"]);
    assert_eq!(r["lead"], Value::Null);
    let tl: Value = app
        .get(
            &format!(
                "/api/v1/contacts/{}/timeline",
                contact["id"].as_str().unwrap()
            ),
            t,
        )
        .await
        .json()
        .await
        .unwrap();
    let touch = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "touch")
        .unwrap_or_else(|| panic!("no touch on {tl}"));
    assert_eq!(touch["detail"]["product_interest"], "挖掘机");
    assert_eq!(list(&app, t, "").await.len(), 1);
    // Bad input names the field, and creates nothing.
    let r = app
        .post(
            "/api/v1/leads",
            t,
            json!({"name": "", "phone": "12", "email": "nope", "source": "fax"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let fields: Vec<String> = refused(r).await.into_iter().map(|(f, _)| f).collect();
    for f in ["name", "phone", "email", "source"] {
        assert!(fields.contains(&f.to_owned()), "{f} in {fields:?}");
    }
    assert_eq!(list(&app, t, "").await.len(), 1);
});

both!(
    twenty_identical_posts_make_one_lead,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        let mut reqs = Vec::new();
        for i in 0..20 {
            // Half identical, half the same person with another message.
            let notes = if i % 2 == 0 { "同一条" } else { "另一条" };
            reqs.push(
                app.req(reqwest::Method::POST, "/api/v1/leads", &t)
                    .json(&json!({"name": "王芳", "phone": "13912345678", "notes": notes}))
                    .send(),
            );
        }
        let mut outcomes = Vec::new();
        for r in crate::concurrency::futures_join(reqs).await {
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap();
            assert!(status == 200 || status == 201, "{status} {v}");
            outcomes.push(v["outcome"].as_str().unwrap().to_owned());
        }
        assert_eq!(outcomes.iter().filter(|o| *o == "created").count(), 1);
        let leads = list(&app, &t, "").await;
        assert_eq!(leads.len(), 1);
        // One touch for the other message (its nine repeats are the same arrival), or none
        // when the other message came first and created the lead.
        let touches = lead_timeline(&app, &leads[0]["id"])
            .await
            .into_iter()
            .filter(|e| e["type"] == "touch")
            .count();
        assert_eq!(touches, 1);
        assert_eq!(outcomes.iter().filter(|o| *o == "matched").count(), 1);
    }
);

both!(leads_have_the_record_machinery, |app: TestApp| async move {
    let t = &app.admin_token;
    let field = app
        .created(
            "/api/v1/custom-fields",
            t,
            json!({"entity": "leads", "key": "budget", "kind": "money", "label": "预算"}),
        )
        .await;
    assert_eq!(field["entity"], "leads");
    let r = app
        .post(
            "/api/v1/custom-fields",
            t,
            json!({"entity": "invoices", "key": "x", "kind": "text", "label": "X"}),
        )
        .await;
    assert_eq!(refused(r).await, vec![("entity".into(), "unknown".into())]);
    let a = app
            .created(
                "/api/v1/leads",
                t,
                json!({"name": "张建华", "company": "华南物流", "phone": "13700137000", "industry": "物流",
                       "custom": {"budget": 500000}, "tags": ["展会"]}),
            )
            .await["lead"]
            .clone();
    let b = app
            .created(
                "/api/v1/leads",
                t,
                json!({"name": "Zhao Min", "company": "Acme", "email": "zm@acme.test", "custom": {"budget": 1000}}),
            )
            .await["lead"]
            .clone();
    // Search: Chinese, pinyin, initials, phone digits, the company's pinyin.
    for q in ["建华", "zhangjianhua", "zjh", "0013700", "huanan"] {
        let found = list(&app, t, &format!("?q={q}")).await;
        assert_eq!(found.len(), 1, "{q}");
        assert_eq!(found[0]["id"], a["id"], "{q}");
    }
    // Filters: custom, tag, industry, status; sort by a custom field.
    assert_eq!(list(&app, t, "?custom.budget.min=10000").await.len(), 1);
    assert_eq!(list(&app, t, "?tag=展会").await[0]["id"], a["id"]);
    assert_eq!(list(&app, t, "?industry=物流").await.len(), 1);
    assert_eq!(list(&app, t, "?status=new,working").await.len(), 2);
    let sorted = list(&app, t, "?sort=custom.budget").await;
    assert_eq!(sorted[0]["id"], b["id"]);
    let r = app.get("/api/v1/leads?status=won", t).await;
    assert_eq!(refused(r).await, vec![("status".into(), "invalid".into())]);
    // Status rules: disqualifying needs a reason; converting is its own action.
    let path = format!("/api/v1/leads/{}", a["id"].as_str().unwrap());
    let r = app
        .patch(
            &path,
            t,
            json!({"version": a["version"], "status": "disqualified"}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![("disqualify_reason".into(), "required".into())]
    );
    let r = app
        .patch(
            &path,
            t,
            json!({"version": a["version"], "status": "converted"}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![("status".into(), "convert_instead".into())]
    );
    let r = app
        .patch(
            &path,
            t,
            json!({"version": a["version"], "status": "working"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    // A stale version is refused, not overwritten.
    let r = app
        .patch(&path, t, json!({"version": a["version"], "title": "经理"}))
        .await;
    assert_eq!(r.status(), 412);
    // Bulk: assign to a rep (who is told), tag, trash; restore.
    let (rep, rep_token) = app.user_with_role("sales", "rep@acme.test").await;
    let r: Value = app
        .post(
            "/api/v1/leads/bulk",
            t,
            json!({"ids": [a["id"], b["id"]], "action": "assign", "owner_id": rep["id"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["done"].as_array().unwrap().len(), 2, "{r}");
    let mine = list(&app, &rep_token, "").await;
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|l| l["owner_id"] == rep["id"]));
    let told: Value = app
        .get("/api/v1/notifications", &rep_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(told["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["link"] == format!("/leads/{}", a["id"].as_str().unwrap())));
    let r: Value = app
        .post(
            "/api/v1/leads/bulk",
            t,
            json!({"ids": [b["id"]], "action": "delete"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["done"].as_array().unwrap().len(), 1);
    assert_eq!(list(&app, t, "").await.len(), 1);
    assert_eq!(list(&app, t, "?deleted=true").await.len(), 1);
    let r = app
        .post(
            &format!("/api/v1/leads/{}/restore", b["id"].as_str().unwrap()),
            t,
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(list(&app, t, "").await.len(), 2);
    // Read-only users read leads but cannot bring one in.
    let (_, ro) = app.user_with_role("read_only", "ro@acme.test").await;
    assert_eq!(list(&app, &ro, "").await.len(), 2);
    let r = app
        .post("/api/v1/leads", &ro, json!({"name": "某人"}))
        .await;
    assert_eq!(r.status(), 403);
});

both!(
    conversion_links_existing_customers_once,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let account = app
            .created("/api/v1/accounts", t, json!({"name": "东方重工"}))
            .await;
        let lead = app
            .created(
                "/api/v1/leads",
                t,
                json!({"name": "陈静", "company": "东方重工", "phone": "13600136000", "title": "采购"}),
            )
            .await;
        let id = lead["id"].as_str().unwrap().to_owned();
        // A touch before conversion moves with it.
        app.post(
            "/api/v1/leads",
            t,
            json!({"name": "陈静", "phone": "13600136000", "notes": "请回电"}),
        )
        .await;
        let r = app
            .post(&format!("/api/v1/leads/{id}/convert"), t, json!({}))
            .await;
        assert_eq!(r.status(), 200);
        let c: Value = r.json().await.unwrap();
        assert_eq!(c["account_id"], account["id"]);
        assert_eq!(c["account_created"], false);
        assert_eq!(c["contact_created"], true);
        assert_eq!(c["lead"]["status"], "converted");
        let contact: Value = app
            .get(
                &format!("/api/v1/contacts/{}", c["contact_id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(contact["name"], "陈静");
        assert_eq!(contact["account_id"], account["id"]);
        assert_eq!(contact["title"], "采购");
        let tl: Value = app
            .get(
                &format!(
                    "/api/v1/contacts/{}/timeline?types=touch",
                    c["contact_id"].as_str().unwrap()
                ),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(tl["items"][0]["detail"]["notes"], "请回电");
        // Converting again answers the first conversion; the converted lead stays readable and
        // is no longer edited.
        let again: Value = app
            .post(&format!("/api/v1/leads/{id}/convert"), t, json!({}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(again["contact_id"], c["contact_id"]);
        assert_eq!(again["contact_created"], false);
        let r = app
            .patch(
                &format!("/api/v1/leads/{id}"),
                t,
                json!({"version": c["lead"]["version"], "title": "总监"}),
            )
            .await;
        assert_eq!(r.status(), 409);
        // The person writing in again is now a customer: matched to the contact.
        let r: Value = app
            .post(
                "/api/v1/leads",
                t,
                json!({"name": "陈静", "phone": "13600136000", "notes": "下单"}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["entity"], "contacts");
        assert_eq!(r["id"], c["contact_id"]);
        // Two conversions of a new company's lead at once: one account, one contact.
        let other = app
            .created(
                "/api/v1/leads",
                t,
                json!({"name": "周强", "company": "西部电力", "email": "zq@xb.test"}),
            )
            .await;
        let path = format!("/api/v1/leads/{}/convert", other["id"].as_str().unwrap());
        let (r1, r2) = tokio::join!(app.post(&path, t, json!({})), app.post(&path, t, json!({})));
        let (v1, v2): (Value, Value) = (r1.json().await.unwrap(), r2.json().await.unwrap());
        assert_eq!(v1["account_id"], v2["account_id"], "{v1} {v2}");
        assert_eq!(v1["contact_id"], v2["contact_id"]);
        let accounts: Value = app
            .get("/api/v1/accounts?q=西部电力", t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(accounts["items"].as_array().unwrap().len(), 1);
    }
);

/// A sales rep in `team`, with an API token.
async fn rep_in(app: &TestApp, email: &str, team: &Value) -> (Value, String) {
    let (user, token) = app.user_with_role("sales", email).await;
    let r = app
        .patch(
            &format!("/api/v1/users/{}", user["id"].as_str().unwrap()),
            &app.admin_token,
            json!({"version": user["version"], "team_id": team["id"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    (r.json().await.unwrap(), token)
}

both!(
    assignment_respects_rules_capacity_and_leave,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let team = app
            .created("/api/v1/teams", t, json!({"name": "华南组"}))
            .await;
        let (a, a_token) = rep_in(&app, "a.rep@acme.test", &team).await;
        let (b, _) = rep_in(&app, "b.rep@acme.test", &team).await;
        let (c, _) = app.user_with_role("sales", "c.rep@acme.test").await;
        let r = app
            .post(
                "/api/v1/assignment-rules",
                t,
                json!({"name": "华南轮流", "target": "round_robin"}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            vec![("team_id".into(), "required".into())]
        );
        app.created(
            "/api/v1/assignment-rules",
            t,
            json!({"name": "华南轮流", "target": "round_robin", "team_id": team["id"],
                   "conditions": [{"field": "province", "op": "in", "value": ["广东", "广西"]}]}),
        )
        .await;
        app.created(
            "/api/v1/assignment-rules",
            t,
            json!({"name": "能源大客户", "target": "user", "user_id": c["id"],
                   "conditions": [{"field": "industry", "op": "eq", "value": "能源"}]}),
        )
        .await;
        let owner_of = |i: usize, extra: Value| {
            let app = &app;
            async move {
                let mut body =
                    json!({"name": format!("客户{i}"), "phone": format!("1350013{i:04}")});
                for (k, v) in extra.as_object().unwrap() {
                    body[k] = v.clone();
                }
                let v = app.created("/api/v1/leads", &app.admin_token, body).await;
                v["lead"]["owner_id"].clone()
            }
        };
        // In turn within the team.
        let mut owners = vec![];
        for i in 0..4 {
            owners.push(owner_of(i, json!({"province": "广东"})).await);
        }
        let (first, second) = if owners[0] == a["id"] {
            (&a, &b)
        } else {
            (&b, &a)
        };
        assert_eq!(
            owners,
            vec![
                first["id"].clone(),
                second["id"].clone(),
                first["id"].clone(),
                second["id"].clone()
            ]
        );
        assert_eq!(owner_of(10, json!({"industry": "能源"})).await, c["id"]);
        // The rep is told, and sees the lead.
        let told: Value = app
            .get("/api/v1/notifications", &a_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(told["items"].as_array().unwrap().len(), 2);
        assert_eq!(told["items"][0]["kind"], "lead_assigned");
        // A full rep is passed over; a rep on leave too; then nobody in the team is
        // available and the lead stays with whoever brought it in.
        let r = app
            .req(
                reqwest::Method::PUT,
                &format!(
                    "/api/v1/assignment-rules/reps/{}",
                    a["id"].as_str().unwrap()
                ),
                t,
            )
            .json(&json!({"capacity": 2}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let rep: Value = r.json().await.unwrap();
        assert_eq!(
            (rep["load"].clone(), rep["capacity"].clone()),
            (json!(2), json!(2))
        );
        assert_eq!(owner_of(20, json!({"province": "广西"})).await, b["id"]);
        assert_eq!(owner_of(21, json!({"province": "广西"})).await, b["id"]);
        let r = app
            .req(
                reqwest::Method::PUT,
                &format!(
                    "/api/v1/assignment-rules/reps/{}",
                    b["id"].as_str().unwrap()
                ),
                t,
            )
            .json(&json!({"on_leave": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let admin_id = app
            .get("/api/v1/me", t)
            .await
            .json::<Value>()
            .await
            .unwrap()["user"]["id"]
            .clone();
        assert_eq!(owner_of(22, json!({"province": "广东"})).await, admin_id);
        // A named owner is kept whatever the rules say.
        assert_eq!(
            owner_of(23, json!({"province": "广东", "owner_id": c["id"]})).await,
            c["id"]
        );
        // A sales rep may read the rules but not change them.
        let r = app
            .post(
                "/api/v1/assignment-rules",
                &a_token,
                json!({"name": "x", "target": "user", "user_id": a["id"]}),
            )
            .await;
        assert_eq!(r.status(), 403);
    }
);

both!(scores_explain_themselves, |app: TestApp| async move {
    let t = &app.admin_token;
    app.created(
        "/api/v1/scoring-rules",
        t,
        json!({"name": "制造业", "points": 40,
                   "conditions": [{"field": "industry", "op": "eq", "value": "制造"}]}),
    )
    .await;
    app.created(
        "/api/v1/scoring-rules",
        t,
        json!({"name": "再次来访", "points": 30,
                   "conditions": [{"field": "touches", "op": "gte", "value": 1}]}),
    )
    .await;
    let r = app
            .post(
                "/api/v1/scoring-rules",
                t,
                json!({"name": "坏", "points": 500, "conditions": [{"field": "x", "op": "eq", "value": 1}]}),
            )
            .await;
    let mut errs = refused(r).await;
    errs.sort();
    assert_eq!(
        errs,
        vec![
            ("conditions.0.field".into(), "unknown_field".into()),
            ("points".into(), "out_of_range".into())
        ]
    );
    let lead = app
        .created(
            "/api/v1/leads",
            t,
            json!({"name": "钱进", "industry": "制造", "province": "广东", "phone": "13400134000"}),
        )
        .await["lead"]
        .clone();
    assert_eq!(lead["score"], 40);
    assert_eq!(lead["grade"], "C");
    assert_eq!(
        lead["score_reasons"],
        json!([{"rule": "制造业", "points": 40}])
    );
    // Scored as it is inserted with what a re-score reads back: an edit that changes no fact
    // (a re-score from the stored row) leaves score and reasons as they were.
    let path = format!("/api/v1/leads/{}", lead["id"].as_str().unwrap());
    let r = app
        .patch(
            &path,
            t,
            json!({"version": lead["version"], "notes": "回电"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let edited: Value = r.json().await.unwrap();
    assert_eq!(
        (&edited["score"], &edited["score_reasons"]),
        (&lead["score"], &lead["score_reasons"])
    );
    // The person reaches out again: engagement counts.
    app.post(
        "/api/v1/leads",
        t,
        json!({"name": "钱进", "phone": "13400134000", "notes": "要样品"}),
    )
    .await;
    let now: Value = app.get(&path, t).await.json().await.unwrap();
    assert_eq!(now["score"], 70);
    assert_eq!(now["grade"], "B");
    assert_eq!(list(&app, t, "?grade=B").await.len(), 1);
    assert_eq!(list(&app, t, "?grade=A").await.len(), 0);
    // A new rule re-scores every lead (in the background).
    app.created(
        "/api/v1/scoring-rules",
        t,
        json!({"name": "华南", "points": 20,
                   "conditions": [{"field": "province", "op": "eq", "value": "广东"}]}),
    )
    .await;
    app.run_pending_jobs().await;
    let now: Value = app.get(&path, t).await.json().await.unwrap();
    assert_eq!(now["score"], 90);
    assert_eq!(now["grade"], "A");
    let low = app
        .created(
            "/api/v1/leads",
            t,
            json!({"name": "孙低", "phone": "13400134001"}),
        )
        .await;
    assert_eq!(low["lead"]["score"], 0);
    let sorted = list(&app, t, "?sort=-score").await;
    assert_eq!(sorted[0]["id"], lead["id"]);
});

both!(
    nobody_waits_unanswered_silently,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let team = app
            .created("/api/v1/teams", t, json!({"name": "电销组"}))
            .await;
        let (a, a_token) = rep_in(&app, "a.rep@acme.test", &team).await;
        let (b, b_token) = rep_in(&app, "b.rep@acme.test", &team).await;
        let (mgr, mgr_token) = app.user_with_role("manager", "mgr@acme.test").await;
        let r = app
            .patch(
                &format!("/api/v1/users/{}", mgr["id"].as_str().unwrap()),
                t,
                json!({"version": mgr["version"], "team_id": team["id"]}),
            )
            .await;
        assert_eq!(r.status(), 200);
        // The manager takes no leads (capacity 0).
        let r = app
            .req(
                reqwest::Method::PUT,
                &format!(
                    "/api/v1/assignment-rules/reps/{}",
                    mgr["id"].as_str().unwrap()
                ),
                t,
            )
            .json(&json!({"capacity": 0}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = app
            .req(reqwest::Method::PUT, "/api/v1/lead-sla", t)
            .json(&json!({"items": [{"source": "api", "minutes": 0, "on_breach": "explode"}]}))
            .send()
            .await
            .unwrap();
        let mut errs = refused(r).await;
        errs.sort();
        assert_eq!(
            errs,
            vec![
                ("items.0.minutes".into(), "out_of_range".into()),
                ("items.0.on_breach".into(), "invalid".into())
            ]
        );
        let r = app
            .req(reqwest::Method::PUT, "/api/v1/lead-sla", t)
            .json(&json!({"items": [{"source": "*", "minutes": 240, "warn_minutes": 60, "on_breach": "reassign"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        app.created(
            "/api/v1/assignment-rules",
            t,
            json!({"name": "电销轮流", "target": "round_robin", "team_id": team["id"]}),
        )
        .await;
        let first = app
            .created(
                "/api/v1/leads",
                t,
                json!({"name": "吴用", "phone": "13200132000"}),
            )
            .await["lead"]
            .clone();
        let answered = app
            .created(
                "/api/v1/leads",
                t,
                json!({"name": "公孙胜", "phone": "13200132001"}),
            )
            .await["lead"]
            .clone();
        // The deadline is four business hours on the team's calendar (here the default
        // office hours, lunch excluded), from when the lead arrived.
        let created: chrono::DateTime<chrono::Utc> =
            first["created_at"].as_str().unwrap().parse().unwrap();
        let schedule = guanxi_platform::calendars::schedule_for(
            &app.db,
            uuid::Uuid::parse_str(&app.tenant_id).unwrap(),
            team["id"]
                .as_str()
                .map(|s| uuid::Uuid::parse_str(s).unwrap()),
        )
        .await
        .unwrap();
        let due = schedule.deadline(created, 240).unwrap();
        let stored: chrono::DateTime<chrono::Utc> =
            first["response_due_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(stored, due);
        // The second one is answered: its owner starts working it.
        let owner_token = if answered["owner_id"] == a["id"] {
            &a_token
        } else {
            &b_token
        };
        let r = app
            .patch(
                &format!("/api/v1/leads/{}", answered["id"].as_str().unwrap()),
                owner_token,
                json!({"version": answered["version"], "status": "working"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(list(&app, t, "?sla=waiting").await.len(), 1);
        // An hour before: the owner is warned.
        app.run_jobs_at(due - chrono::Duration::minutes(30)).await;
        let first_owner_token = if first["owner_id"] == a["id"] {
            &a_token
        } else {
            &b_token
        };
        let told: Value = app
            .get("/api/v1/notifications", first_owner_token)
            .await
            .json()
            .await
            .unwrap();
        assert!(told["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "sla_warning"));
        // At the deadline: breached, the team's manager told, the lead given to the other rep.
        app.run_jobs_at(due + chrono::Duration::minutes(1)).await;
        let breached = list(&app, t, "?sla=breached").await;
        assert_eq!(breached.len(), 1);
        assert_eq!(breached[0]["id"], first["id"]);
        assert_ne!(breached[0]["owner_id"], first["owner_id"]);
        assert!([a["id"].clone(), b["id"].clone()].contains(&breached[0]["owner_id"]));
        let told: Value = app
            .get("/api/v1/notifications", &mgr_token)
            .await
            .json()
            .await
            .unwrap();
        assert!(told["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "sla_breached"));
        // The answered lead is not breached.
        let r: Value = app
            .get(
                &format!("/api/v1/leads/{}", answered["id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["sla_breached_at"], Value::Null);
        assert!(r["responded_at"].is_string());
    }
);

both!(
    trade_show_cards_arrive_once_each,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let team = app
            .created("/api/v1/teams", t, json!({"name": "展会组"}))
            .await;
        let (a, a_token) = rep_in(&app, "a.rep@acme.test", &team).await;
        let (b, b_token) = rep_in(&app, "b.rep@acme.test", &team).await;
        app.created(
            "/api/v1/assignment-rules",
            t,
            json!({"name": "展会轮流", "target": "round_robin", "team_id": team["id"]}),
        )
        .await;
        // A customer already known, and a card that is theirs.
        app.created(
            "/api/v1/contacts",
            t,
            json!({"name": "老客户", "phone": "13100131999"}),
        )
        .await;
        let mut csv = String::from("姓名,公司,手机,职位,意向产品\n");
        for i in 0..300 {
            csv.push_str(&format!(
                "访客{i},展商{i}有限公司,1310013{i:04},经理,茶具\n"
            ));
        }
        csv.push_str("访客7,展商7有限公司,1310013 0007,经理,茶具\n"); // the same card twice
        csv.push_str("老客户,,13100131999,,\n");
        csv.push_str("坏号码,某公司,12,,\n");
        csv.push_str(",,,,\n");
        let (gbk, _, _) = encoding_rs::GBK.encode(&csv);
        let post = |dry: bool| {
            app.req(
                reqwest::Method::POST,
                &format!("/api/v1/leads/import?campaign=2026茶博会&dry_run={dry}"),
                t,
            )
            .header("content-type", "text/csv")
            .body(gbk.to_vec())
            .send()
        };
        // A dry run writes nothing.
        let r: Value = post(true).await.unwrap().json().await.unwrap();
        assert_eq!(r["dry_run"], true);
        assert_eq!(r["rows"], 303);
        assert!(list(&app, t, "").await.is_empty());
        let r = post(false).await.unwrap();
        assert_eq!(r.status(), 200);
        let r: Value = r.json().await.unwrap();
        assert_eq!(r["rows"], 303, "{r}");
        assert_eq!(r["created"], 300);
        assert_eq!(
            r["tasks"], 300,
            "a follow-up task for each new lead's owner"
        );
        assert_eq!(r["repeated"], 1, "the same card twice: {r}");
        assert_eq!(r["matched"], 1, "the known customer");
        assert_eq!(r["errors"][0]["row"], 304);
        assert!(r["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("phone"));
        assert_eq!(r["columns"]["姓名"], "name");
        // Tagged with the campaign, shared out in turn, and each rep told once.
        let tagged: Value = app
            .get("/api/v1/leads?tag=2026茶博会&limit=200", t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(tagged["items"].as_array().unwrap().len(), 200);
        for (rep, token) in [(&a, &a_token), (&b, &b_token)] {
            let mine: Value = app
                .get(
                    &format!(
                        "/api/v1/leads?limit=200&owner_id={}",
                        rep["id"].as_str().unwrap()
                    ),
                    token,
                )
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(mine["items"].as_array().unwrap().len(), 150);
            let told: Value = app
                .get("/api/v1/notifications", token)
                .await
                .json()
                .await
                .unwrap();
            let imported: Vec<&Value> = told["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["kind"] == "leads_imported")
                .collect();
            assert_eq!(imported.len(), 1);
            assert!(imported[0]["message"].as_str().unwrap().contains("150"));
            let tasks: Value = app
                .get("/api/v1/tasks?limit=500", token)
                .await
                .json()
                .await
                .unwrap();
            let tasks = tasks["items"].as_array().unwrap();
            assert_eq!(tasks.len(), 150);
            assert!(tasks
                .iter()
                .all(|k| k["record_type"] == "leads" && k["assignee_id"] == rep["id"]));
        }
        // Running the same file again enters nobody twice.
        let r: Value = post(false).await.unwrap().json().await.unwrap();
        assert_eq!(r["created"], 0);
        assert_eq!(list(&app, t, "?limit=200&tag=2026茶博会").await.len(), 200);
        // The export (headers in the reader's language) reads back in: nobody new.
        let csv = app
            .req(
                reqwest::Method::GET,
                "/api/v1/leads/export.csv?tag=2026茶博会",
                t,
            )
            .header("accept-language", "zh-CN")
            .send()
            .await
            .unwrap();
        assert_eq!(csv.status(), 200);
        let bytes = csv.bytes().await.unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.starts_with('\u{feff}') && text.contains("公司"),
            "{}",
            &text[..200.min(text.len())]
        );
        assert_eq!(text.lines().count(), 301, "a header and 300 leads");
        let r: Value = app
            .req(reqwest::Method::POST, "/api/v1/leads/import", t)
            .header("content-type", "text/csv")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["created"], 0, "{r}");
        assert_eq!(r["rows"], 300);
        let x = app.get("/api/v1/leads/export.xlsx", t).await;
        assert_eq!(x.status(), 200);
        assert!(x.bytes().await.unwrap().starts_with(b"PK"));
    }
);

both!(lead_rules_on_their_admin_page, |app: TestApp| async move {
    let (web, session) = app
        .session("admin@acme.test", "correct horse battery")
        .await;
    let csrf = session["csrf_token"].as_str().unwrap().to_owned();
    let page = web.get(app.url("/admin/lead-rules")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    // A condition that cannot be read is named, and what was typed stays.
    let r = web
        .post(app.url("/admin/lead-rules/scoring"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", "大客户"),
            ("points", "30"),
            ("conditions", "industry = 制造\nscore >= lots"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("id=\"error-scoring\"") && html.contains("score &gt;= lots"),
        "{html}"
    );
    let r = web
        .post(app.url("/admin/lead-rules/scoring"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", "大客户"),
            ("points", "30"),
            ("conditions", "industry in 制造, 能源"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success() || r.status().is_redirection());
    let rules: Value = app
        .get("/api/v1/scoring-rules", &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        rules["items"][0]["conditions"],
        json!([{"field": "industry", "op": "in", "value": ["制造", "能源"]}])
    );
    // Response times per source; a pool for the company.
    let r = web
        .post(app.url("/admin/lead-rules/sla"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("minutes.form", "120"),
            ("warn.form", "30"),
            ("on_breach.form", "pool"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let sla: Value = app
        .get("/api/v1/lead-sla", &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        sla["items"],
        json!([{"source": "form", "minutes": 120, "warn_minutes": 30, "on_breach": "pool"}])
    );
    let r = web
        .post(app.url("/admin/lead-rules/pools"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", "公海"),
            ("return_days", "15"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let pools: Value = app
        .get("/api/v1/pools", &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pools["items"][0]["return_days"], 15);
    // A sales rep does not get the page's forms.
    let (_, _) = app.user_with_role("sales", "rep@acme.test").await;
    let (rep_web, _) = app.session("rep@acme.test", "password-123456").await;
    let html = rep_web
        .get(app.url("/admin/lead-rules"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("id=\"new-scoring\""));
});

both!(calls_and_tasks_on_a_lead, |app: TestApp| async move {
    let t = &app.admin_token;
    app.created(
        "/api/v1/scoring-rules",
        t,
        json!({"name": "聊过", "points": 25,
               "conditions": [{"field": "logged", "op": "gte", "value": 1}]}),
    )
    .await;
    let (rep, rep_token) = app.user_with_role("sales", "rep@acme.test").await;
    let lead = app
        .created(
            "/api/v1/leads",
            t,
            json!({"name": "孙悦", "company": "北方重工", "phone": "13700137000",
                   "owner_id": rep["id"]}),
        )
        .await["lead"]
        .clone();
    let id = lead["id"].as_str().unwrap().to_owned();
    assert_eq!(lead["score"], 0);
    assert_eq!(lead["responded_at"], Value::Null);
    let path = format!("/api/v1/leads/{id}/activities");
    let log = |body: Value| app.post(&path, t, body);
    // A note to self does not answer the lead; a call does, and counts toward the score.
    let r = log(json!({"kind": "note", "subject": "看了官网"})).await;
    assert_eq!(r.status(), 201);
    let l: Value = app
        .get(&format!("/api/v1/leads/{id}"), t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(l["responded_at"], Value::Null);
    let r = log(json!({"kind": "call", "subject": "首次电话", "body": "下周来厂参观"})).await;
    assert_eq!(r.status(), 201);
    let call: Value = r.json().await.unwrap();
    assert_eq!(call["record_type"], "leads");
    assert_eq!(call["record_id"], json!(id));
    assert_eq!(call["account_id"], Value::Null);
    let l: Value = app
        .get(&format!("/api/v1/leads/{id}"), t)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(l["responded_at"], Value::Null);
    assert_eq!(l["score"], 25);
    assert_eq!(
        l["version"], lead["version"],
        "derived fields leave the version"
    );
    // A follow-up task for the rep: on their task list, naming the lead.
    let r = log(
        json!({"kind": "task", "subject": "安排参观", "assignee_id": rep["id"],
                       "due_at": "2030-01-02T03:00:00Z"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let task: Value = r.json().await.unwrap();
    let mine: Value = app
        .get("/api/v1/tasks", &rep_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["items"][0]["id"], task["id"]);
    assert_eq!(mine["items"][0]["record_type"], "leads");
    assert_eq!(mine["items"][0]["record_name"], "孙悦");
    // The lead's timeline has them, newest first, beside its own history.
    let tl = lead_timeline(&app, &json!(id)).await;
    let types: Vec<&str> = tl.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(&types[..3], &["task", "call", "note"], "{types:?}");
    assert!(types.contains(&"create"));
    let r = app
        .get(&format!("/api/v1/leads/{id}/timeline?types=call"), t)
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    // Naming a customer as well is refused; so is a lead the caller cannot read.
    let acc = app
        .created("/api/v1/accounts", t, json!({"name": "别家"}))
        .await;
    let r = log(json!({"kind": "call", "subject": "x", "account_id": acc["id"]})).await;
    assert_eq!(
        refused(r).await,
        vec![("account_id".into(), "read_only".into())]
    );
    let (_, other) = app.user_with_role("sales", "other@acme.test").await;
    let r = app
        .post(
            &format!("/api/v1/leads/{id}/activities"),
            &other,
            json!({"kind": "call", "subject": "偷看"}),
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = app
        .get(
            &format!("/api/v1/activities/{}", call["id"].as_str().unwrap()),
            &other,
        )
        .await;
    assert_eq!(r.status(), 404);
    // The rep, whose lead it is, completes the task.
    let r = app
        .patch(
            &format!("/api/v1/activities/{}", task["id"].as_str().unwrap()),
            &rep_token,
            json!({"version": task["version"], "done": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    // Converted: the calls and tasks are the customer's too.
    let conv: Value = app
        .post(&format!("/api/v1/leads/{id}/convert"), t, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let contact = conv["contact_id"].as_str().unwrap();
    let ctl: Value = app
        .get(
            &format!("/api/v1/contacts/{contact}/timeline?types=call,task"),
            t,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ctl["items"].as_array().unwrap().len(), 2, "{ctl}");
    let atl: Value = app
        .get(
            &format!(
                "/api/v1/accounts/{}/timeline?types=call",
                conv["account_id"].as_str().unwrap()
            ),
            t,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(atl["items"][0]["subject"], "首次电话");
    // A lead in the trash takes nothing new.
    let other_lead = app
        .created(
            "/api/v1/leads",
            t,
            json!({"name": "周到", "phone": "13600136000"}),
        )
        .await;
    let oid = other_lead["id"].as_str().unwrap();
    let r = app
        .req(reqwest::Method::DELETE, &format!("/api/v1/leads/{oid}"), t)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = app
        .post(
            &format!("/api/v1/leads/{oid}/activities"),
            t,
            json!({"kind": "call", "subject": "x"}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![("record_id".into(), "in_trash".into())]
    );
});

both!(
    scores_learn_from_won_and_lost_leads,
    |app: TestApp| async move {
        let t = &app.admin_token;
        // Too few outcomes: refused, saying why.
        let r = app.post("/api/v1/scoring-rules/model", t, json!({})).await;
        assert_eq!(
            refused(r).await,
            vec![("outcomes".into(), "not_enough".into())]
        );
        // Manufacturers from the web form mostly buy; restaurants mostly do not.
        for i in 0..24 {
            let (industry, won) = match i % 4 {
                0 | 1 => ("制造", i != 1),
                2 => ("餐饮", false),
                _ => ("餐饮", i % 8 == 7),
            };
            let v = app
                .created(
                    "/api/v1/leads",
                    t,
                    json!({"name": format!("客户{i}"), "company": format!("公司{i}"),
                       "phone": format!("1390000{i:04}"), "industry": industry}),
                )
                .await;
            let id = v["id"].as_str().unwrap();
            if won {
                let r = app
                    .post(&format!("/api/v1/leads/{id}/convert"), t, json!({}))
                    .await;
                assert_eq!(r.status(), 200);
            } else {
                let r = app
                    .patch(
                        &format!("/api/v1/leads/{id}"),
                        t,
                        json!({"version": v["lead"]["version"], "status": "disqualified",
                           "disqualify_reason": "预算不足"}),
                    )
                    .await;
                assert_eq!(r.status(), 200);
            }
        }
        let r = app
            .post("/api/v1/scoring-rules/model", t, json!({"weight": 150}))
            .await;
        assert_eq!(
            refused(r).await,
            vec![("weight".into(), "out_of_range".into())]
        );
        let r = app
            .post("/api/v1/scoring-rules/model", t, json!({"weight": 50}))
            .await;
        assert_eq!(r.status(), 200);
        let models: Value = r.json().await.unwrap();
        let company = &models["items"][0];
        assert_eq!(company["team_id"], Value::Null);
        assert_eq!(
            (company["won"].as_i64(), company["lost"].as_i64()),
            (Some(14), Some(10))
        );
        assert_eq!(company["counts"]["industry"]["制造"], json!([11, 1]));
        assert_eq!(company["counts"]["industry"]["餐饮"], json!([3, 9]));
        // The background re-score, then new leads: the manufacturer scores higher, and says why.
        app.run_pending_jobs().await;
        let maker = app
            .created(
                "/api/v1/leads",
                t,
                json!({"name": "新厂", "phone": "13800000001", "industry": "制造"}),
            )
            .await["lead"]
            .clone();
        let diner = app
            .created(
                "/api/v1/leads",
                t,
                json!({"name": "新店", "phone": "13800000002", "industry": "餐饮"}),
            )
            .await["lead"]
            .clone();
        assert!(
            maker["score"].as_i64() > diner["score"].as_i64(),
            "{maker} {diner}"
        );
        let why = &maker["score_reasons"][0];
        assert_eq!(why["rule"], "learned");
        assert!(why["probability"].as_f64().unwrap() > 0.5, "{why}");
        assert_eq!(why["lifts"][0]["field"], "industry");
        assert_eq!(why["lifts"][0]["won"], 11);
        assert_eq!(
            why["points"].as_i64(),
            Some((50.0 * why["probability"].as_f64().unwrap()).round() as i64)
        );
        // A sales rep may not train it; the admin may remove it: scores are the rules' again.
        let (_, rep) = app.user_with_role("sales", "rep@acme.test").await;
        let r = app
            .post("/api/v1/scoring-rules/model", &rep, json!({}))
            .await;
        assert_eq!(r.status(), 403);
        let r = app
            .req(reqwest::Method::DELETE, "/api/v1/scoring-rules/model", t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        app.run_pending_jobs().await;
        let l: Value = app
            .get(
                &format!("/api/v1/leads/{}", maker["id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(l["score"], 0);
        assert_eq!(l["score_reasons"], json!([]));
    }
);
