//! The approval engine through its first user, quotes: a quote over the discount limit cannot
//! be sent unapproved; it is locked while pending; 或签 and 会签 steps, 加签, self-approval
//! skipped, recall, send back and rejection; a decision on a decided request is refused; and a
//! change after approval needs a new one.

use crate::both;
use crate::harness::{refused, TestApp};
use crate::quotes::{pipeline, send};
use serde_json::{json, Value};

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.post(path, token, body).await
}

/// A customer of `rep`'s, a deal on it and its quote (`quote`: the quote's body beyond the
/// deal), made as the rep.
async fn rep_quote(app: &TestApp, rep: &Value, rep_t: &str, name: &str, quote: Value) -> Value {
    let acc = app
        .created(
            "/api/v1/accounts",
            &app.admin_token,
            json!({"name": name, "owner_id": rep["id"]}),
        )
        .await;
    let deal = app
        .created(
            "/api/v1/opportunities",
            rep_t,
            json!({"name": "单", "account_id": acc["id"], "amount": 900}),
        )
        .await;
    let mut body = quote;
    body["opportunity_id"] = deal["id"].clone();
    app.created("/api/v1/quotes", rep_t, body).await
}

async fn quote(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/quotes/{id}"), &app.admin_token)
        .await
        .json()
        .await
        .unwrap()
}

both!(
    quotes_over_the_limit_wait_for_approval,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        let me: Value = app.get("/api/v1/me", &t).await.json().await.unwrap();
        let admin = &me["user"];
        let (rep, rep_t) = app.user_with_role("sales", "rep@approve.test").await;
        let (m1, m1_t) = app.user_with_role("manager", "m1@approve.test").await;
        let (m2, m2_t) = app.user_with_role("manager", "m2@approve.test").await;
        pipeline(&app).await;
        app.created(
            "/api/v1/products",
            &t,
            json!({"sku": "TEA-1", "name": "龙井", "list_price": 10_000}),
        )
        .await;
        // A process: quotes more than 15% below the book prices go to the rep's manager (或签),
        // then to both managers together (会签). A bad process is refused field by field.
        let r = post(
        &app,
        "/api/v1/approval-processes",
        &t,
        json!({"name": "坏", "entity": "quotes", "conditions": [{"field": "margin", "op": "gt", "value": 1}],
               "steps": [{"name": "一", "rule": "all", "approvers": [{"kind": "user", "user_id": uuid::Uuid::nil()}]}]}),
    )
    .await;
        assert_eq!(
            refused(r).await,
            vec![
                ("conditions[0].field".into(), "invalid".into()),
                ("steps[0].approvers[0].user_id".into(), "unknown".into())
            ]
        );
        let r = post(
            &app,
            "/api/v1/approval-processes",
            &rep_t,
            json!({"name": "x"}),
        )
        .await;
        assert_eq!(r.status(), 403, "reps do not shape approvals");
        app.created(
            "/api/v1/approval-processes",
            &t,
            json!({"name": "大额折扣", "entity": "quotes",
            "conditions": [{"field": "discount_bp", "op": "gt", "value": 1500}],
            "steps": [
                {"name": "主管审批", "rule": "any", "approvers": [{"kind": "manager"}]},
                {"name": "经理会签", "rule": "all", "approvers": [
                    {"kind": "user", "user_id": m1["id"]}, {"kind": "user", "user_id": m2["id"]}]}
            ]}),
        )
        .await;
        let acc = app
            .created(
                "/api/v1/accounts",
                &t,
                json!({"name": "审批客户", "owner_id": rep["id"]}),
            )
            .await;
        let deal = app
            .created(
                "/api/v1/opportunities",
                &rep_t,
                json!({"name": "大单", "account_id": acc["id"], "amount": 1}),
            )
            .await;
        let q = app
        .created(
            "/api/v1/quotes",
            &rep_t,
            json!({"opportunity_id": deal["id"], "discount_bp": 2000, "lines": [{"sku": "TEA-1", "quantity": 10}]}),
        )
        .await;
        let id = q["id"].as_str().unwrap().to_owned();
        assert_eq!(q["effective_discount_bp"], 2000);
        // Unapproved, it cannot be sent.
        assert_eq!(
            refused(send(&app, &rep_t, &q).await).await,
            vec![("approval".into(), "required".into())]
        );
        let submit = |token: String, version: Value| {
            let app = &app;
            let id = id.clone();
            async move {
                post(
                    app,
                    &format!("/api/v1/quotes/{id}/submit"),
                    &token,
                    json!({"version": version, "comment": "老客户续约"}),
                )
                .await
            }
        };
        let r = submit(rep_t.clone(), q["version"].clone()).await;
        assert_eq!(r.status(), 201);
        let req: Value = r.json().await.unwrap();
        let rurl = format!("/api/v1/approvals/{}", req["id"].as_str().unwrap());
        assert_eq!(req["status"], "pending");
        assert_eq!(req["step"], 0);
        // Pending, the quote is locked, and a second submission is refused.
        let r = app
            .patch(
                &format!("/api/v1/quotes/{id}"),
                &rep_t,
                json!({"version": q["version"], "notes": "改"}),
            )
            .await;
        assert_eq!(r.status(), 409);
        assert_eq!(
            submit(rep_t.clone(), q["version"].clone()).await.status(),
            409
        );
        // The approvers see it in their inbox; the rep cannot approve it.
        let inbox: Value = app
            .get("/api/v1/approvals?box=inbox", &m1_t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(inbox["items"][0]["id"], req["id"]);
        assert_eq!(
            post(&app, &format!("{rurl}/approve"), &rep_t, json!({}))
                .await
                .status(),
            403
        );
        // 或签: one manager's approval passes the first step.
        let r: Value = post(
            &app,
            &format!("{rurl}/approve"),
            &m2_t,
            json!({"comment": "同意"}),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(r["step"], 1);
        // 加签: m1 adds the admin to the 会签 step, so all three must approve.
        let r = post(
            &app,
            &format!("{rurl}/approvers"),
            &m1_t,
            json!({"user_id": admin["id"]}),
        )
        .await;
        assert_eq!(r.status(), 200);
        let r = post(
            &app,
            &format!("{rurl}/approvers"),
            &m1_t,
            json!({"user_id": m2["id"]}),
        )
        .await;
        assert_eq!(refused(r).await, vec![("user_id".into(), "taken".into())]);
        for tok in [&m1_t, &m2_t] {
            let r: Value = post(&app, &format!("{rurl}/approve"), tok, json!({}))
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(r["status"], "pending", "会签 waits for everyone");
        }
        assert_eq!(
            send(&app, &rep_t, &quote(&app, &id).await).await.status(),
            409,
            "pending, the quote is locked"
        );
        let r: Value = post(&app, &format!("{rurl}/approve"), &t, json!({}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["status"], "approved");
        let actions: Vec<&str> = r["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            vec![
                "submit",
                "approve",
                "add_approver",
                "approve",
                "approve",
                "approve",
                "approved"
            ]
        );
        assert_eq!(r["log"][0]["comment"], "老客户续约");
        // A decided request takes no more decisions; the rep was told.
        assert_eq!(
            post(&app, &format!("{rurl}/reject"), &m1_t, json!({}))
                .await
                .status(),
            409
        );
        let told: Value = app
            .get("/api/v1/notifications", &rep_t)
            .await
            .json()
            .await
            .unwrap();
        assert!(told["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "approval_decided"));
        // Approved at this version, it is sent.
        let q = quote(&app, &id).await;
        assert_eq!(q["approval_status"], "approved");
        let r = send(&app, &rep_t, &q).await;
        assert_eq!(r.status(), 200);

        // A revision is a new version of the quote: it needs approval again. Recalled, it unlocks;
        // sent back, and then rejected, it stays unsent.
        let q: Value = app
            .patch(
                &format!("/api/v1/quotes/{id}"),
                &rep_t,
                json!({"version": quote(&app, &id).await["version"], "discount_bp": 2500}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            refused(send(&app, &rep_t, &q).await).await,
            vec![("approval".into(), "required".into())]
        );
        let req: Value = submit(rep_t.clone(), q["version"].clone())
            .await
            .json()
            .await
            .unwrap();
        let rurl = format!("/api/v1/approvals/{}", req["id"].as_str().unwrap());
        assert_eq!(
            post(&app, &format!("{rurl}/recall"), &m1_t, json!({}))
                .await
                .status(),
            403
        );
        let r: Value = post(&app, &format!("{rurl}/recall"), &rep_t, json!({}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["status"], "recalled");
        assert_eq!(
            post(&app, &format!("{rurl}/approve"), &m1_t, json!({}))
                .await
                .status(),
            409,
            "recalled"
        );
        let req: Value = submit(rep_t.clone(), q["version"].clone())
            .await
            .json()
            .await
            .unwrap();
        let rurl = format!("/api/v1/approvals/{}", req["id"].as_str().unwrap());
        let r: Value = post(
            &app,
            &format!("{rurl}/send-back"),
            &m1_t,
            json!({"comment": "折扣太大"}),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(r["status"], "sent_back");
        let req: Value = submit(rep_t.clone(), q["version"].clone())
            .await
            .json()
            .await
            .unwrap();
        let rurl = format!("/api/v1/approvals/{}", req["id"].as_str().unwrap());
        let r: Value = post(&app, &format!("{rurl}/reject"), &m2_t, json!({}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["status"], "rejected");
        assert_eq!(
            refused(send(&app, &rep_t, &quote(&app, &id).await).await).await,
            vec![("approval".into(), "required".into())]
        );
        // Under the limit, nothing needs approval.
        let q: Value = app
            .patch(
                &format!("/api/v1/quotes/{id}"),
                &rep_t,
                json!({"version": quote(&app, &id).await["version"], "discount_bp": 1000}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            refused(submit(rep_t.clone(), q["version"].clone()).await).await,
            vec![("approval".into(), "not_required".into())]
        );
        assert_eq!(send(&app, &rep_t, &q).await.status(), 200);
    }
);

both!(
    a_step_of_only_the_submitter_passes_by_itself,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        let me: Value = app.get("/api/v1/me", &t).await.json().await.unwrap();
        let admin = &me["user"];
        pipeline(&app).await;
        app.created(
        "/api/v1/approval-processes",
        &t,
        json!({"name": "全部报价", "entity": "quotes", "steps": [
            {"name": "自己", "rule": "all", "approvers": [{"kind": "user", "user_id": admin["id"]}]}]}),
    )
    .await;
        let acc = app
            .created("/api/v1/accounts", &t, json!({"name": "自审客户"}))
            .await;
        let deal = app
            .created(
                "/api/v1/opportunities",
                &t,
                json!({"name": "单", "account_id": acc["id"], "amount": 500}),
            )
            .await;
        let q = app
            .created("/api/v1/quotes", &t, json!({"opportunity_id": deal["id"]}))
            .await;
        let r: Value = post(
            &app,
            &format!("/api/v1/quotes/{}/submit", q["id"].as_str().unwrap()),
            &t,
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(
            r["status"], "approved",
            "no self-approval: the step skips its only approver"
        );
        let actions: Vec<&str> = r["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, vec!["submit", "skip_submitter", "approved"]);
        assert_eq!(
            send(&app, &t, &quote(&app, q["id"].as_str().unwrap()).await)
                .await
                .status(),
            200
        );
    }
);

both!(
    two_approvers_at_once_both_count,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        let (rep, rep_t) = app.user_with_role("sales", "rep2@approve.test").await;
        let (m1, m1_t) = app.user_with_role("manager", "m3@approve.test").await;
        let (m2, m2_t) = app.user_with_role("manager", "m4@approve.test").await;
        pipeline(&app).await;
        app.created(
        "/api/v1/approval-processes",
        &t,
        json!({"name": "会签", "entity": "quotes", "steps": [{"name": "两位经理", "rule": "all", "approvers": [
            {"kind": "user", "user_id": m1["id"]}, {"kind": "user", "user_id": m2["id"]}]}]}),
    )
    .await;
        let q = rep_quote(&app, &rep, &rep_t, "并发审批", json!({})).await;
        let r: Value = post(
            &app,
            &format!("/api/v1/quotes/{}/submit", q["id"].as_str().unwrap()),
            &rep_t,
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
        let rurl = format!("/api/v1/approvals/{}/approve", r["id"].as_str().unwrap());
        // Both approve at the same moment: each decision sees the other's, so the request ends
        // approved — never waiting forever on two approvals that each missed the other.
        let tasks: Vec<_> = [m1_t, m2_t]
            .into_iter()
            .map(|tok| {
                let req = app.req(reqwest::Method::POST, &rurl, &tok).json(&json!({}));
                tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), 200);
        }
        let after: Value = app
            .get(
                &format!("/api/v1/approvals/{}", r["id"].as_str().unwrap()),
                &t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(after["status"], "approved");
        // Two sends of the same approved quote at once: one goes out, the other is refused.
        let q = quote(&app, q["id"].as_str().unwrap()).await;
        let sends: Vec<_> = (0..2)
            .map(|_| {
                let req = app
                    .req(
                        reqwest::Method::POST,
                        &format!("/api/v1/quotes/{}/send", q["id"].as_str().unwrap()),
                        &rep_t,
                    )
                    .header("if-match", format!("\"{}\"", q["version"]));
                tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
            })
            .collect();
        let mut codes = Vec::new();
        for s in sends {
            codes.push(s.await.unwrap());
        }
        codes.sort();
        assert_eq!(codes, vec![200, 412]);
        let versions: Value = app
            .get(
                &format!("/api/v1/quotes/{}/versions", q["id"].as_str().unwrap()),
                &t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(versions["items"].as_array().unwrap().len(), 1);
    }
);

/// The decision links in the approval emails sent to `to`, newest email first.
async fn emailed_links(app: &TestApp, to: &str) -> Vec<String> {
    let rows: Vec<(String,)> = app
        .db
        .fetch_all(
            "SELECT CAST(payload AS TEXT) FROM jobs WHERE kind = 'email' ORDER BY created_at DESC",
            guanxi_platform::args![],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|(p,)| serde_json::from_str::<Value>(p).unwrap())
        .filter(|p| p["to"] == to)
        .flat_map(|p| {
            p["text"]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .filter(|w| w.contains("/approvals/by-link/"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The hidden `_csrf` of a page's form.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").unwrap() + 20;
    html[at..].split('"').next().unwrap().to_owned()
}

both!(
    an_approver_decides_from_the_email_without_signing_in,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        let (rep, rep_t) = app.user_with_role("sales", "rep@mail-approve.test").await;
        let (m1, _) = app.user_with_role("manager", "m1@mail-approve.test").await;
        let (m2, _) = app.user_with_role("manager", "m2@mail-approve.test").await;
        pipeline(&app).await;
        app.created(
            "/api/v1/products",
            &t,
            json!({"sku": "TEA-1", "name": "龙井", "list_price": 10_000}),
        )
        .await;
        app.created(
            "/api/v1/approval-processes",
            &t,
            json!({"name": "折扣", "entity": "quotes",
            "conditions": [{"field": "discount_bp", "op": "gt", "value": 1000}],
            "steps": [{"name": "经理", "rule": "any", "approvers": [
                {"kind": "user", "user_id": m1["id"]}, {"kind": "user", "user_id": m2["id"]}]}]}),
        )
        .await;
        let q = rep_quote(
            &app,
            &rep,
            &rep_t,
            "邮件审批客户",
            json!({"discount_bp": 2000, "lines": [{"sku": "TEA-1"}]}),
        )
        .await;
        let r = post(
            &app,
            &format!("/api/v1/quotes/{}/submit", q["id"].as_str().unwrap()),
            &rep_t,
            json!({"version": q["version"]}),
        )
        .await;
        assert_eq!(r.status(), 201);
        let req: Value = r.json().await.unwrap();
        let rurl = format!("/api/v1/approvals/{}", req["id"].as_str().unwrap());
        app.run_pending_jobs().await;
        let m1_links = emailed_links(&app, "m1@mail-approve.test").await;
        assert_eq!(m1_links.len(), 2, "approve and reject: {m1_links:?}");
        let approve = m1_links
            .iter()
            .find(|l| l.ends_with("decision=approve"))
            .unwrap()
            .clone();
        let m2_reject = emailed_links(&app, "m2@mail-approve.test")
            .await
            .into_iter()
            .find(|l| l.ends_with("decision=reject"))
            .unwrap();
        let path = |link: &str| link[link.find("/approvals/by-link/").unwrap()..].to_owned();
        // Opening the link (as a mail scanner would) decides nothing; it shows what is asked.
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let page = browser.get(app.url(&path(&approve))).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(
            html.contains(q["number"].as_str().unwrap()) && html.contains("link-decide"),
            "{html}"
        );
        let pending: Value = app.get(&rurl, &t).await.json().await.unwrap();
        assert_eq!(pending["status"], "pending");
        // Without the page's form token, nothing happens; with it, m1 approves.
        let form_url = app.url(path(&approve).split('?').next().unwrap());
        let r = browser
            .post(&form_url)
            .form(&[("decision", "approve")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let r = browser
            .post(&form_url)
            .form(&[
                ("_csrf", csrf_of(&html).as_str()),
                ("decision", "approve"),
                ("comment", "邮件里同意"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("link-done"));
        let done: Value = app.get(&rurl, &t).await.json().await.unwrap();
        assert_eq!(done["status"], "approved");
        let vote = done["log"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["action"] == "approve")
            .unwrap()
            .clone();
        assert_eq!(
            (vote["actor_id"].clone(), vote["comment"].clone()),
            (m1["id"].clone(), json!("邮件里同意"))
        );
        // The same link again, and m2's link of the step already passed, decide nothing.
        let r = browser
            .post(&form_url)
            .form(&[("_csrf", csrf_of(&html).as_str()), ("decision", "approve")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        let m2_page = browser
            .get(app.url(&path(&m2_reject)))
            .send()
            .await
            .unwrap();
        assert_eq!(m2_page.status(), 200);
        assert!(m2_page.text().await.unwrap().contains("link-stale"));
        // A forged or altered link opens nothing.
        let forged = format!("{}x", path(&approve).split('?').next().unwrap());
        let r = browser.get(app.url(&forged)).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let r = browser
            .get(app.url("/approvals/by-link/not-a-token"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        // The audit says it was decided through the emailed link.
        let kinds: Vec<(String,)> = app
            .db
            .fetch_all(
                "SELECT actor_kind FROM audit_events WHERE entity = 'approval_requests' AND action = 'approve'",
                guanxi_platform::args![],
            )
            .await
            .unwrap();
        assert_eq!(kinds, vec![("email_link".to_owned(),)]);
    }
);
