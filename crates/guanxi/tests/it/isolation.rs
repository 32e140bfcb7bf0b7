//! Walks every endpoint in the OpenAPI document as another tenant: lists never show tenant A's
//! records, and any of A's ids in a path is a 404. New endpoints are covered automatically.

use crate::both;
use reqwest::Method;
use serde_json::{json, Value};

both!(
    no_tenant_sees_another,
    |app: crate::harness::TestApp| async move {
        let a = &app.admin_token;
        // Tenant A's records of every kind.
        let team: Value = app
            .post("/api/v1/teams", a, json!({"name": "A队"}))
            .await
            .json()
            .await
            .unwrap();
        let (user, _) = app.user_with_role("sales", "a.rep@acme.test").await;
        let role: Value = app
            .post("/api/v1/roles", a, json!({"key": "a_role", "name": "A"}))
            .await
            .json()
            .await
            .unwrap();
        let token: Value = app
            .post("/api/v1/api-tokens", a, json!({"name": "a"}))
            .await
            .json()
            .await
            .unwrap();
        app.post(
            "/api/v1/users",
            a,
            json!({"email": "invitee@acme.test", "name": "I", "role_id": role["id"]}),
        )
        .await;
        let account: Value = app
            .post(
                "/api/v1/accounts",
                a,
                json!({"name": "甲方客户", "phone": "13800138000"}),
            )
            .await
            .json()
            .await
            .unwrap();
        let contact: Value = app
            .post(
                "/api/v1/contacts",
                a,
                json!({"name": "甲方联系人", "account_id": account["id"]}),
            )
            .await
            .json()
            .await
            .unwrap();
        let activity: Value = app
            .post(
                "/api/v1/activities",
                a,
                json!({"kind": "task", "contact_id": contact["id"], "subject": "甲方任务"}),
            )
            .await
            .json()
            .await
            .unwrap();
        let field: Value = app
            .post(
                "/api/v1/custom-fields",
                a,
                json!({"entity": "contacts", "key": "a_secret", "kind": "text", "label": "甲方字段"}),
            )
            .await
            .json()
            .await
            .unwrap();
        let view: Value = app
            .post(
                "/api/v1/saved-views",
                a,
                json!({"entity": "contacts", "name": "甲方视图", "query": "q=x", "shared": true}),
            )
            .await
            .json()
            .await
            .unwrap();
        let asset: Value = app
            .post(
                "/api/v1/assets",
                a,
                json!({"account_id": account["id"], "name": "甲方资产", "serial": "A-SERIAL-1"}),
            )
            .await
            .json()
            .await
            .unwrap();
        let calendar: Value = app
            .post(
                "/api/v1/calendars",
                a,
                json!({"name": "甲方日历", "team_id": team["id"], "days": [{"date": "2026-10-01", "kind": "holiday", "name": "甲方假日"}]}),
            )
            .await
            .json()
            .await
            .unwrap();
        let lead = app
            .created(
                "/api/v1/leads",
                a,
                json!({"name": "甲方线索", "company": "甲方公司", "phone": "13900139000"}),
            )
            .await["id"]
            .clone();
        let pipeline = app
            .created(
                "/api/v1/pipelines",
                a,
                json!({"name": "甲方流程", "stages": [{"name": "初步接触"}, {"name": "赢单", "category": "won"}, {"name": "输单", "category": "lost"}]}),
            )
            .await;
        let deal = app
            .created(
                "/api/v1/opportunities",
                a,
                json!({"name": "甲方商机", "account_id": account["id"], "amount": 100000}),
            )
            .await;
        let product = app
            .created(
                "/api/v1/products",
                a,
                json!({"sku": "JF-1", "name": "甲方产品", "list_price": 100}),
            )
            .await;
        let book = app
            .created(
                "/api/v1/price-books",
                a,
                json!({"name": "甲方价目", "audience": "account", "account_id": account["id"],
                       "entries": [{"product_id": product["id"], "unit_price": 90}]}),
            )
            .await;
        let quote = app
            .created(
                "/api/v1/quotes",
                a,
                json!({"opportunity_id": deal["id"], "lines": [{"sku": "JF-1"}]}),
            )
            .await;
        let me: Value = app.get("/api/v1/me", a).await.json().await.unwrap();
        let process = app
            .created(
                "/api/v1/approval-processes",
                a,
                json!({"name": "甲方审批", "entity": "quotes", "steps": [{"name": "审", "rule": "any",
                       "approvers": [{"kind": "user", "user_id": user["id"]}, {"kind": "user", "user_id": me["user"]["id"]}]}]}),
            )
            .await;
        let request = app
            .created(
                &format!("/api/v1/quotes/{}/submit", quote["id"].as_str().unwrap()),
                a,
                json!({}),
            )
            .await;
        let report = app
            .created(
                "/api/v1/reports",
                a,
                json!({"name": "甲方报表", "sharing": "company", "spec": {"entity": "orders", "measures": [{"agg": "count"}]}}),
            )
            .await;
        let dashboard = app
            .created(
                "/api/v1/dashboards",
                a,
                json!({"name": "甲方看板", "sharing": "company",
                       "tiles": [{"title": "甲方", "content": {"type": "saved_report", "report_id": report["id"]}}]}),
            )
            .await;
        let policy = app
            .created(
                "/api/v1/sla-policies",
                a,
                json!({"name": "甲方时限", "resolution_minutes": 480}),
            )
            .await;
        let queue = app
            .created(
                "/api/v1/queues",
                a,
                json!({"name": "甲方队列", "team_id": team["id"], "strategy": "least_loaded"}),
            )
            .await;
        let ticket = app
            .created(
                "/api/v1/tickets",
                a,
                json!({"subject": "甲方工单", "contact_id": contact["id"]}),
            )
            .await;
        let r = app
            .post(
                &format!(
                    "/api/v1/tickets/{}/messages",
                    ticket["id"].as_str().unwrap()
                ),
                a,
                json!({"kind": "reply", "body": "甲方回复"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let r = app.post("/api/v1/grading/runs", a, json!({})).await;
        assert_eq!(r.status(), 202);
        let grading: Value = r.json().await.unwrap();
        let mailbox = app
            .created(
                "/api/v1/mailboxes",
                a,
                json!({"name": "support", "address": "help@a.test", "host": "127.0.0.1",
                       "security": "plain", "port": 1, "username": "u", "password": "p",
                       "enabled": false}),
            )
            .await;
        let article = app
            .created(
                "/api/v1/articles",
                a,
                json!({"title": "甲方文章", "body": "甲方的设备保养", "status": "published",
                       "audience": "public"}),
            )
            .await;
        let jobs: Value = app.get("/api/v1/jobs", a).await.json().await.unwrap();
        let job_id = jobs["items"][0]["id"].as_str().unwrap().to_owned();
        let a_ids: Vec<String> = vec![
            team["id"].as_str().unwrap().into(),
            user["id"].as_str().unwrap().into(),
            role["id"].as_str().unwrap().into(),
            token["id"].as_str().unwrap().into(),
            job_id,
            app.tenant_id.clone(),
            account["id"].as_str().unwrap().into(),
            contact["id"].as_str().unwrap().into(),
            activity["id"].as_str().unwrap().into(),
            field["id"].as_str().unwrap().into(),
            view["id"].as_str().unwrap().into(),
            asset["id"].as_str().unwrap().into(),
            policy["id"].as_str().unwrap().into(),
            ticket["id"].as_str().unwrap().into(),
            queue["id"].as_str().unwrap().into(),
            calendar["id"].as_str().unwrap().into(),
            lead.as_str().unwrap().into(),
            pipeline["id"].as_str().unwrap().into(),
            pipeline["stages"][0]["id"].as_str().unwrap().into(),
            deal["id"].as_str().unwrap().into(),
            product["id"].as_str().unwrap().into(),
            book["id"].as_str().unwrap().into(),
            quote["id"].as_str().unwrap().into(),
            process["id"].as_str().unwrap().into(),
            request["id"].as_str().unwrap().into(),
            report["id"].as_str().unwrap().into(),
            dashboard["id"].as_str().unwrap().into(),
            grading["id"].as_str().unwrap().into(),
            mailbox["id"].as_str().unwrap().into(),
            article["id"].as_str().unwrap().into(),
        ];
        let (_, b) = app.signup("Other Co", "boss@other.test").await;
        let spec: Value = reqwest::get(app.url("/api/v1/openapi.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut walked = 0;
        for (path, ops) in spec["paths"].as_object().unwrap() {
            // The portal's endpoints answer portal sessions only (walked in `portal.rs`).
            if path.starts_with("/portal/") {
                continue;
            }
            for (method, _) in ops.as_object().unwrap() {
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                if path.contains('{') {
                    // Tenant A's id must get exactly the answer a random id gets: no 2xx, no 403,
                    // nothing that reveals the record exists.
                    let call = |id: String| {
                        let p = path
                            .replace("{id}", &id)
                            .replace("{mail_id}", &id)
                            .replace("{file_id}", &id)
                            .replace("{external_id}", &id)
                            .replace("{channel}", "erp");
                        let mut rq = app.req(m.clone(), &p, &b);
                        if m == Method::PATCH || m == Method::POST {
                            rq = rq.json(&json!({"version": 1}));
                        } else if m == Method::PUT {
                            rq = rq.json(&json!({}));
                        }
                        async move {
                            let r = rq.send().await.unwrap();
                            (r.status().as_u16(), r.text().await.unwrap())
                        }
                    };
                    let (random_status, random_body) = call(uuid::Uuid::now_v7().to_string()).await;
                    // A path keyed by id answers 404 for an unknown one — or 400 when the probe's
                    // body (`{"version": 1}`) is refused at the edge, before any id is looked
                    // up; others (the order push, keyed by the caller's own external id) need
                    // only answer A's ids as they answer any other.
                    if path.contains("{id}") {
                        assert!(
                            random_status == 404
                                || (random_status == 400 && random_body.contains("unknown field")),
                            "{method} {path} with a random id: {random_status} {random_body}"
                        );
                    }
                    for id in &a_ids {
                        let (status, body) = call(id.clone()).await;
                        assert_eq!(
                            status, random_status,
                            "{method} {path} {id} as another tenant: {body}"
                        );
                        assert_eq!(body, random_body, "{method} {path} {id}");
                        walked += 1;
                    }
                } else if m == Method::GET {
                    let r = app.get(path, &b).await;
                    let body = r.text().await.unwrap();
                    for id in &a_ids {
                        assert!(!body.contains(id.as_str()), "GET {path} leaked {id}");
                    }
                    walked += 1;
                }
            }
        }
        assert!(walked > 40, "walked {walked}");
        // Searching and filtering by A's values finds nothing of A's.
        for q in ["甲方", "13800138000", "jfkh"] {
            for path in [
                "/api/v1/search",
                "/api/v1/accounts",
                "/api/v1/contacts",
                "/api/v1/leads",
                "/api/v1/opportunities",
                "/api/v1/tickets",
                "/api/v1/articles",
                "/api/v1/articles/suggest",
                "/api/v1/pipelines",
                "/api/v1/quotes",
                "/api/v1/price-books",
                "/api/v1/approval-processes",
                "/api/v1/approvals?box=all",
            ] {
                let body = app
                    .req(Method::GET, path, &b)
                    .query(&[("q", q)])
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                assert!(!body.contains("甲方"), "{path}?q={q} leaked: {body}");
            }
        }
        let body = app
            .req(Method::GET, "/api/v1/tasks", &b)
            .query(&[("assignee_id", user["id"].as_str().unwrap())])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!body.contains("甲方"), "tasks leaked: {body}");
        // Bulk actions and filters with A's ids and values touch nothing of A's.
        for path in [
            "/api/v1/contacts/bulk",
            "/api/v1/accounts/bulk",
            "/api/v1/leads/bulk",
            "/api/v1/opportunities/bulk",
            "/api/v1/tickets/bulk",
            "/api/v1/articles/bulk",
        ] {
            let r: Value = app
                .post(
                    path,
                    &b,
                    json!({"ids": [contact["id"], account["id"], lead, deal["id"], ticket["id"], article["id"]], "action": "delete"}),
                )
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(r["done"], json!([]), "{path}: {r}");
        }
        // The same person arriving at B is new to B: A's lead is neither matched nor touched.
        let r: Value = app
            .created(
                "/api/v1/leads",
                &b,
                json!({"name": "甲方线索", "company": "甲方公司", "phone": "13900139000"}),
            )
            .await;
        assert_eq!(r["outcome"], "created");
        assert_ne!(r["id"], lead);
        let history: Value = app
            .get(
                &format!("/api/v1/leads/{}/timeline", lead.as_str().unwrap()),
                a,
            )
            .await
            .json()
            .await
            .unwrap();
        assert!(history["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] != "touch"));
        // B's help centre does not show A's public article, nor does A's own show it under B.
        let b_tenant: Value = app.get("/api/v1/tenant", &b).await.json().await.unwrap();
        let b_id = b_tenant["id"].as_str().unwrap();
        let art = article["id"].as_str().unwrap();
        for path in [format!("/help/{b_id}"), format!("/help/{b_id}?q=甲方设备")] {
            let body = reqwest::get(app.url(&path))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(!body.contains("甲方文章"), "{path} leaked A's article");
        }
        let r = reqwest::get(app.url(&format!("/help/{b_id}/articles/{art}")))
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let r = app.get("/api/v1/assets?serial=A-SERIAL-1", &b).await;
        assert!(!r.text().await.unwrap().contains("甲方"));
        let r = app.get("/api/v1/contacts?custom.a_secret=x", &b).await;
        assert_eq!(r.status(), 422, "A's custom field does not exist for B");
        // And tenant A's data is untouched.
        let t: Value = app
            .get(
                &format!("/api/v1/teams/{}", team["id"].as_str().unwrap()),
                a,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(t["name"], "A队");
    }
);
