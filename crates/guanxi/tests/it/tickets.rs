//! The service desk through the API: a ticket logged from a call, its SLA policy chosen by
//! priority and customer grade, clocks derived from its log (a miss found by the scheduler,
//! escalated once; a wait on the customer pausing the resolution clock), replies and notes,
//! reopening, conflicting edits refused, merging duplicates, a policy change re-evaluating open
//! tickets, and every refusal naming its field.

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use crate::both;
use crate::harness::{refused, TestApp};

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

async fn json_of(app: &TestApp, path: &str, t: &str) -> Value {
    let r = app.get(path, t).await;
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

/// A company that works around the clock, so business time is clock time in these tests.
async fn around_the_clock(app: &TestApp) -> Value {
    let all = json!(["00:00-24:00"]);
    app.created(
        "/api/v1/calendars",
        &app.admin_token,
        json!({"name": "全天", "is_default": true, "week": {"mon": all, "tue": all, "wed": all,
               "thu": all, "fri": all, "sat": all, "sun": all}}),
    )
    .await
}

both!(
    a_call_becomes_a_ticket_whose_clocks_follow_its_log,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let calendar = around_the_clock(&app).await;
        // Bad policies are refused field by field.
        let r = app
            .post(
                "/api/v1/sla-policies",
                t,
                json!({"name": "", "priorities": ["soon"], "grades": ["Z"], "first_response_minutes": 0}),
            )
            .await;
        let mut errs = refused(r).await;
        errs.sort();
        assert_eq!(
            errs,
            vec![
                ("first_response_minutes".into(), "out_of_range".into()),
                ("grades.0".into(), "invalid".into()),
                ("name".into(), "required".into()),
                ("priorities.0".into(), "invalid".into()),
                // No target left.
                ("resolution_minutes".into(), "required".into()),
            ]
        );
        let gold = app
            .created(
                "/api/v1/sla-policies",
                t,
                json!({"name": "A 类客户加急", "position": 1, "priorities": ["high", "urgent"],
                       "grades": ["A"], "first_response_minutes": 60, "resolution_minutes": 480,
                       "warn_minutes": 15, "raise_priority": true}),
            )
            .await;
        let standard = app
            .created(
                "/api/v1/sla-policies",
                t,
                json!({"name": "标准", "position": 10, "first_response_minutes": 240,
                       "next_response_minutes": 120, "resolution_minutes": 2400}),
            )
            .await;
        let account = app
            .created(
                "/api/v1/accounts",
                t,
                json!({"name": "华东机械厂", "grade": "A"}),
            )
            .await;
        let contact = app
            .created(
                "/api/v1/contacts",
                t,
                json!({"name": "周强", "account_id": account["id"], "phone": "13800001111"}),
            )
            .await;
        // A call logged as a ticket: the contact brings the account, the grade picks the policy.
        let ticket = app
            .created(
                "/api/v1/tickets",
                t,
                json!({"subject": "设备无法启动", "contact_id": contact["id"], "priority": "high",
                       "channel": "phone", "category": "维修"}),
            )
            .await;
        let id = ticket["id"].as_str().unwrap().to_owned();
        assert_eq!(ticket["account_id"], account["id"]);
        assert_eq!(ticket["grade"], "A");
        assert_eq!(ticket["status"], "new");
        assert_eq!(ticket["owner_id"], Value::Null);
        assert!(ticket["number"].as_str().unwrap().starts_with("T-"));
        assert_eq!(ticket["sla_policy_id"], gold["id"]);
        let created = at(&ticket["created_at"]);
        assert_eq!(at(&ticket["sla_due_at"]), created + Duration::minutes(60));
        // Unknown references and codes are named.
        let r = app
            .post(
                "/api/v1/tickets",
                t,
                json!({"subject": " ", "priority": "asap", "channel": "fax",
                       "contact_id": uuid::Uuid::now_v7(), "owner_id": uuid::Uuid::now_v7()}),
            )
            .await;
        let mut errs = refused(r).await;
        errs.sort();
        assert_eq!(
            errs,
            vec![
                ("contact_id".into(), "unknown".into()),
                ("owner_id".into(), "unknown".into()),
                ("priority".into(), "invalid".into()),
                ("subject".into(), "required".into()),
            ]
        );
        // A normal ticket of the same customer falls to the standard policy.
        let other = app
            .created(
                "/api/v1/tickets",
                t,
                json!({"subject": "咨询保养周期", "account_id": account["id"]}),
            )
            .await;
        assert_eq!(other["sla_policy_id"], standard["id"]);
        // Fifteen minutes before the first response is due, nobody owns it: nothing breaks.
        app.run_jobs_at(created + Duration::minutes(46)).await;
        let now = json_of(&app, &format!("/api/v1/tickets/{id}"), t).await;
        assert_eq!(now["sla_breached"], false);
        // Past it: missed, recorded in the log once, and the priority raised a step.
        app.run_jobs_at(created + Duration::minutes(61)).await;
        app.run_jobs_at(created + Duration::minutes(62)).await;
        let now = json_of(&app, &format!("/api/v1/tickets/{id}"), t).await;
        assert_eq!(now["sla_breached"], true);
        assert_eq!(now["priority"], "urgent");
        let log = json_of(&app, &format!("/api/v1/tickets/{id}/timeline"), t).await;
        let misses: Vec<&Value> = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "sla" && e["to_value"] == "missed")
            .collect();
        assert_eq!(misses.len(), 1, "{log}");
        assert_eq!(misses[0]["from_value"], "first_response");
        // An edit from the version read before the escalation is refused.
        let r = app
            .patch(
                &format!("/api/v1/tickets/{id}"),
                t,
                json!({"version": ticket["version"], "category": "安装"}),
            )
            .await;
        assert_eq!(r.status(), 412);
        // The agent answers and waits on the customer: the resolution clock pauses.
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/messages"),
                t,
                json!({"kind": "reply", "body": "请确认电源指示灯是否亮起。", "status": "waiting_customer"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/messages"),
                t,
                json!({"kind": "note", "body": "可能是保险丝"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let now = json_of(&app, &format!("/api/v1/tickets/{id}"), t).await;
        assert_eq!(now["status"], "waiting_customer");
        assert!(now["first_replied_at"].is_string());
        let sla = json_of(&app, &format!("/api/v1/tickets/{id}/sla"), t).await;
        let target = |name: &str| -> Value {
            sla["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["target"] == name)
                .cloned()
                .unwrap_or(Value::Null)
        };
        // (The scheduler ran ahead of the clock above; the reply is logged at the real time,
        // within the hour, so re-evaluated from the log the first response was met.)
        assert_eq!(target("first_response")["state"], "met");
        assert!(target("first_response")["completed_at"].is_string());
        assert_eq!(target("resolution")["state"], "paused");
        assert_eq!(target("resolution")["due_at"], Value::Null);
        // The customer writes back: the ticket is open again and the clock runs.
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/messages"),
                t,
                json!({"kind": "customer", "body": "指示灯不亮。", "channel": "phone"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let messages = json_of(&app, &format!("/api/v1/tickets/{id}/messages"), t).await;
        let kinds: Vec<&str> = messages["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["reply", "note", "customer"]);
        assert_eq!(messages["items"][2]["contact_id"], contact["id"]);
        let now = json_of(&app, &format!("/api/v1/tickets/{id}"), t).await;
        assert_eq!(now["status"], "open");
        // Resolved: the resolution target is met; reopening counts and runs it again.
        let r = app
            .patch(
                &format!("/api/v1/tickets/{id}"),
                t,
                json!({"version": now["version"], "status": "resolved"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let resolved: Value = r.json().await.unwrap();
        assert!(resolved["resolved_at"].is_string());
        let sla = json_of(&app, &format!("/api/v1/tickets/{id}/sla"), t).await;
        let res = sla["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["target"] == "resolution")
            .unwrap()
            .clone();
        assert_eq!(res["state"], "met");
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/messages"),
                t,
                json!({"kind": "customer", "body": "又坏了"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let now = json_of(&app, &format!("/api/v1/tickets/{id}"), t).await;
        assert_eq!(
            (now["status"].as_str(), now["reopened"].as_i64()),
            (Some("open"), Some(1))
        );
        assert_eq!(now["resolved_at"], Value::Null);
        // A duplicate merged into it is closed and points at it; writing to it is refused.
        let dup = app
            .created(
                "/api/v1/tickets",
                t,
                json!({"subject": "设备又无法启动", "contact_id": contact["id"]}),
            )
            .await;
        let dup_id = dup["id"].as_str().unwrap();
        let r = app
            .post(
                &format!("/api/v1/tickets/{dup_id}/merge"),
                t,
                json!({"into": dup_id}),
            )
            .await;
        assert_eq!(refused(r).await, vec![("into".into(), "self".into())]);
        let r = app
            .post(
                &format!("/api/v1/tickets/{dup_id}/merge"),
                t,
                json!({"into": id}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let merged: Value = r.json().await.unwrap();
        assert_eq!(
            (merged["status"].as_str(), merged["merged_into_id"].as_str()),
            (Some("closed"), Some(id.as_str()))
        );
        let r = app
            .post(
                &format!("/api/v1/tickets/{dup_id}/messages"),
                t,
                json!({"kind": "reply", "body": "x"}),
            )
            .await;
        assert_eq!(r.status(), 409);
        // Lists: the queue by due time, filters by status, priority and search by number.
        let q = json_of(&app, "/api/v1/tickets?status=active&sort=due", t).await;
        let ids: Vec<&str> = q["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 2, "{q}");
        let found = json_of(
            &app,
            &format!("/api/v1/tickets?q={}", ticket["number"].as_str().unwrap()),
            t,
        )
        .await;
        assert_eq!(found["items"][0]["id"], ticket["id"]);
        let found = json_of(&app, "/api/v1/tickets?q=hdjx", t).await;
        assert!(found["items"].as_array().unwrap().len() >= 3, "{found}");
        let r = app.get("/api/v1/tickets?priority=asap", t).await;
        assert_eq!(r.status(), 422);
        // A policy change re-evaluates open tickets: the standard first response shrinks to a
        // minute, which the other ticket has long used.
        let r = app
            .patch(
                &format!("/api/v1/sla-policies/{}", standard["id"].as_str().unwrap()),
                t,
                json!({"version": standard["version"], "first_response_minutes": 1}),
            )
            .await;
        assert_eq!(r.status(), 200);
        app.run_jobs_at(at(&other["created_at"]) + Duration::minutes(3))
            .await;
        let sla = json_of(
            &app,
            &format!("/api/v1/tickets/{}/sla", other["id"].as_str().unwrap()),
            t,
        )
        .await;
        let first = sla["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["target"] == "first_response")
            .unwrap()
            .clone();
        assert_eq!(
            (first["target_minutes"].as_i64(), first["state"].as_str()),
            (Some(1), Some("missed"))
        );
        assert_eq!(
            at(&first["breached_at"]),
            at(&other["created_at"]) + Duration::minutes(1)
        );
        // A calendar change re-evaluates them too: a company that never works has used no
        // working time, so nothing is late and nothing falls due.
        let r = app
            .patch(
                &format!("/api/v1/calendars/{}", calendar["id"].as_str().unwrap()),
                t,
                json!({"version": calendar["version"], "week": {}}),
            )
            .await;
        assert_eq!(r.status(), 200);
        app.run_jobs_at(at(&other["created_at"]) + Duration::minutes(4))
            .await;
        let sla = json_of(
            &app,
            &format!("/api/v1/tickets/{}/sla", other["id"].as_str().unwrap()),
            t,
        )
        .await;
        for c in sla["items"].as_array().unwrap() {
            assert_eq!(
                (c["state"].as_str(), &c["due_at"]),
                (Some("running"), &Value::Null),
                "{c}"
            );
        }
    }
);

both!(
    agents_and_others_see_tickets_as_their_roles_allow,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let (_agent, agent_t) = app.user_with_role("service", "agent@example.com").await;
        let (_rep, rep_t) = app.user_with_role("sales", "rep@example.com").await;
        let (_ro, ro_t) = app.user_with_role("read_only", "ro@example.com").await;
        let account = app
            .created("/api/v1/accounts", &rep_t, json!({"name": "南方电气"}))
            .await;
        // A rep logs a ticket for a customer; the agent works it; read-only only reads.
        let ticket = app
            .created(
                "/api/v1/tickets",
                &rep_t,
                json!({"subject": "发票开错了", "account_id": account["id"]}),
            )
            .await;
        let id = ticket["id"].as_str().unwrap();
        let r = app
            .patch(
                &format!("/api/v1/tickets/{id}"),
                &rep_t,
                json!({"version": ticket["version"], "status": "closed"}),
            )
            .await;
        assert_eq!(r.status(), 403);
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/messages"),
                &agent_t,
                json!({"kind": "reply", "body": "已重新开具。", "status": "resolved"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let r = app.get(&format!("/api/v1/tickets/{id}"), &ro_t).await;
        assert_eq!(r.status(), 200);
        let r = app
            .post("/api/v1/tickets", &ro_t, json!({"subject": "x"}))
            .await;
        assert_eq!(r.status(), 403);
        let r = app
            .post(
                "/api/v1/sla-policies",
                &agent_t,
                json!({"name": "x", "resolution_minutes": 5}),
            )
            .await;
        assert_eq!(r.status(), 403);
        // 20 agents resolving the same version at once: exactly one wins.
        let now = json_of(&app, &format!("/api/v1/tickets/{id}"), t).await;
        let mut tasks = Vec::new();
        for i in 0..20 {
            let req = app
                .req(Method::PATCH, &format!("/api/v1/tickets/{id}"), &agent_t)
                .json(&json!({"version": now["version"], "category": format!("c{i}")}));
            tasks.push(tokio::spawn(async move {
                req.send().await.unwrap().status().as_u16()
            }));
        }
        let mut codes = Vec::new();
        for task in tasks {
            codes.push(task.await.unwrap());
        }
        assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
        assert!(codes.iter().all(|c| [200, 412].contains(c)), "{codes:?}");
    }
);

both!(
    a_call_is_logged_and_answered_on_the_pages,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let account = app
            .created(
                "/api/v1/accounts",
                t,
                json!({"name": "东方精工", "grade": "B"}),
            )
            .await;
        let contact = app
            .created(
                "/api/v1/contacts",
                t,
                json!({"name": "钱多多", "account_id": account["id"]}),
            )
            .await;
        let (web, session) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let csrf = session["csrf_token"].as_str().unwrap().to_owned();
        let post = |path: &str, form: Vec<(&str, String)>| {
            let mut form: Vec<(String, String)> =
                form.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            form.push(("_csrf".into(), csrf.clone()));
            web.post(app.url(path)).form(&form).send()
        };
        // A bad policy is named on its page, in Chinese; a good one is listed.
        let r = post(
            "/admin/sla-policies",
            vec![
                ("name", "B 类".into()),
                ("first_response_minutes", "快".into()),
            ],
        )
        .await
        .unwrap();
        let page = r.text().await.unwrap();
        assert!(page.contains("id=\"refused\""), "{page}");
        assert!(page.contains("首次响应（工作分钟）"), "{page}");
        let r = post(
            "/admin/sla-policies",
            vec![
                ("name", "B 类".into()),
                ("grades", "B".into()),
                ("first_response_minutes", "120".into()),
                ("resolution_minutes", "960".into()),
                ("active", "1".into()),
            ],
        )
        .await
        .unwrap();
        let page = r.text().await.unwrap();
        assert!(!page.contains("id=\"refused\""), "{page}");
        assert!(page.contains("value=\"B 类\""), "{page}");
        // The customer's page offers to log the call; the form arrives filled in.
        let page = web
            .get(app.url(&format!(
                "/customers/contacts/{}",
                contact["id"].as_str().unwrap()
            )))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("id=\"new-ticket\""), "{page}");
        let r = post(
            "/tickets",
            vec![
                ("subject", "漏油".into()),
                ("contact_id", contact["id"].as_str().unwrap().to_owned()),
                ("priority", "high".into()),
                ("channel", "phone".into()),
                ("status", "new".into()),
                ("owner_id", String::new()),
            ],
        )
        .await
        .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let page = r.text().await.unwrap();
        assert!(
            page.contains("漏油") && page.contains("id=\"clocks\""),
            "{page}"
        );
        assert!(page.contains("B 类"), "the policy by grade: {page}");
        let list: Value = json_of(&app, "/api/v1/tickets?q=漏油", t).await;
        let ticket = list["items"][0].clone();
        assert_eq!(ticket["account_id"], account["id"]);
        assert_eq!(ticket["channel"], "phone");
        assert_eq!(ticket["owner_id"], Value::Null);
        let id = ticket["id"].as_str().unwrap();
        // An empty reply is named; a reply that asks something waits on the customer.
        let r = post(
            &format!("/tickets/{id}/messages"),
            vec![
                ("kind", "reply".into()),
                ("body", " ".into()),
                ("version", ticket["version"].to_string()),
            ],
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 422);
        assert!(r.text().await.unwrap().contains("data-field=\"body\""));
        let r = post(
            &format!("/tickets/{id}/messages"),
            vec![
                ("kind", "reply".into()),
                ("body", "请拍一张漏油位置的照片。".into()),
                ("status", "waiting_customer".into()),
                ("version", ticket["version"].to_string()),
            ],
        )
        .await
        .unwrap();
        assert!(r.status().is_success());
        let page = r.text().await.unwrap();
        assert!(page.contains("请拍一张漏油位置的照片。"), "{page}");
        assert!(page.contains("等待客户"), "{page}");
        // The same form again from the page as it was: someone changed it meanwhile.
        let r = post(
            &format!("/tickets/{id}/messages"),
            vec![
                ("kind", "note".into()),
                ("body", "x".into()),
                ("version", ticket["version"].to_string()),
            ],
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 412);
        // The account's page, its deal and its quote flag the open high-priority ticket.
        let page = web
            .get(app.url(&format!(
                "/customers/accounts/{}",
                account["id"].as_str().unwrap()
            )))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("id=\"pressing-tickets\"") && page.contains("漏油"),
            "{page}"
        );
        // Both of the customer's pages list their tickets.
        assert!(page.contains("id=\"tickets\""), "{page}");
        let page = web
            .get(app.url(&format!(
                "/customers/contacts/{}",
                contact["id"].as_str().unwrap()
            )))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("id=\"tickets\"") && page.contains("漏油"),
            "{page}"
        );
        // The service dashboard counts it: by grade, in the backlog, with its clocks running.
        let data = json_of(
            &app,
            "/api/v1/dashboards/00000000-0000-0000-0000-0000000000d3/data?period=all",
            t,
        )
        .await;
        let tiles = data["tiles"].as_array().unwrap();
        assert_eq!(tiles.len(), 11);
        // Tiles in their order: by month, backlog by status, by agent, outcomes, misses by
        // target, by grade, reopenings, channels, CSAT by agent and by team, portal questions.
        for tile in &tiles[8..11] {
            assert_eq!(tile["data"]["type"], "report", "{tile}");
        }
        let rows = |i: usize| -> Vec<(String, f64)> {
            let tile = &tiles[i];
            assert_eq!(tile["data"]["type"], "report", "{tile}");
            tile["data"]["result"]["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r[0].as_str().unwrap_or("").to_owned(),
                        r[1].as_f64().unwrap(),
                    )
                })
                .collect()
        };
        for i in 0..8 {
            rows(i);
        }
        assert_eq!(rows(5), vec![("B".to_owned(), 1.0)]);
        assert_eq!(rows(1), vec![("waiting_customer".to_owned(), 1.0)]);
        assert_eq!(rows(3), vec![("met".to_owned(), 1.0)]);
        assert_eq!(rows(7), vec![("phone".to_owned(), 1.0)]);
        // And the page draws it.
        let page = web
            .get(app.url("/dashboards/00000000-0000-0000-0000-0000000000d3"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
    }
);

/// A service agent in `team`, with an API token.
async fn agent_in(app: &TestApp, email: &str, team: &Value) -> (Value, String) {
    let (user, token) = app.user_with_role("service", email).await;
    let r = app
        .patch(
            &format!("/api/v1/users/{}", user["id"].as_str().unwrap()),
            &app.admin_token,
            json!({"version": user["version"], "team_id": team["id"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    (user, token)
}

both!(
    queues_route_new_tickets_by_turn_load_and_skill,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let desk = app
            .created("/api/v1/teams", t, json!({"name": "一线客服"}))
            .await;
        let experts = app
            .created("/api/v1/teams", t, json!({"name": "二线专家"}))
            .await;
        let (a, _) = agent_in(&app, "a@desk.test", &desk).await;
        let (b, _) = agent_in(&app, "b@desk.test", &desk).await;
        let (x, _) = agent_in(&app, "x@desk.test", &experts).await;
        let (y, _) = agent_in(&app, "y@desk.test", &experts).await;
        // Refusals named.
        let r = app
            .post(
                "/api/v1/queues",
                t,
                json!({"name": "", "strategy": "skills", "grades": ["Z"], "min_level": 11}),
            )
            .await;
        let mut errs = refused(r).await;
        errs.sort();
        assert_eq!(
            errs,
            vec![
                ("grades.0".into(), "invalid".into()),
                ("min_level".into(), "out_of_range".into()),
                ("name".into(), "required".into()),
                ("skill".into(), "required".into()),
                ("team_id".into(), "required".into()),
            ]
        );
        app.created(
            "/api/v1/queues",
            t,
            json!({"name": "维修专家", "position": 1, "team_id": experts["id"], "strategy": "skills",
                   "categories": ["维修"], "skill": "液压", "min_level": 5}),
        )
        .await;
        app.created(
            "/api/v1/queues",
            t,
            json!({"name": "一线", "position": 2, "team_id": desk["id"], "strategy": "round_robin"}),
        )
        .await;
        // Skills: x knows hydraulics at 6, y at 9 but is away; a stale save is refused.
        let agents = json_of(&app, "/api/v1/skills", t).await;
        let profile = |id: &Value| {
            agents["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["user_id"] == *id)
                .unwrap()
                .clone()
        };
        assert_eq!(profile(&x["id"])["version"], 0);
        let put = |id: &Value, body: Value| {
            app.req(
                Method::PUT,
                &format!("/api/v1/skills/{}", id.as_str().unwrap()),
                t,
            )
            .json(&body)
            .send()
        };
        let r = put(&x["id"], json!({"version": 0, "skills": {"液压": 6}}))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = put(&x["id"], json!({"version": 0, "skills": {"液压": 7}}))
            .await
            .unwrap();
        assert_eq!(r.status(), 412);
        let r = put(&y["id"], json!({"skills": {"液压": 11}}))
            .await
            .unwrap();
        assert_eq!(
            refused(r).await,
            vec![("skills.液压".into(), "out_of_range".into())]
        );
        let r = put(&y["id"], json!({"skills": {"液压": 9}, "available": false}))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // A repair goes to the expert with the skill who is in.
        let repair = app
            .created(
                "/api/v1/tickets",
                t,
                json!({"subject": "液压缸漏油", "category": "维修"}),
            )
            .await;
        assert_eq!(repair["owner_id"], x["id"]);
        assert_eq!(repair["team_id"], experts["id"]);
        // Anything else goes round the front desk in turn.
        let mut owners = Vec::new();
        for i in 0..4 {
            let tk = app
                .created(
                    "/api/v1/tickets",
                    t,
                    json!({"subject": format!("咨询 {i}")}),
                )
                .await;
            assert_eq!(tk["team_id"], desk["id"]);
            owners.push(tk["owner_id"].clone());
        }
        assert_eq!(owners[0], owners[2]);
        assert_eq!(owners[1], owners[3]);
        assert_ne!(owners[0], owners[1]);
        assert!([a["id"].clone(), b["id"].clone()].contains(&owners[0]));
        // At capacity nobody takes more: it waits unassigned in the desk's queue.
        for u in [&a, &b] {
            let r = put(&u["id"], json!({"capacity": 2})).await.unwrap();
            assert_eq!(r.status(), 200);
        }
        let waiting = app
            .created("/api/v1/tickets", t, json!({"subject": "排队中"}))
            .await;
        assert_eq!(waiting["owner_id"], Value::Null);
        assert_eq!(waiting["team_id"], desk["id"]);
        let unassigned = json_of(&app, "/api/v1/tickets?unassigned=true", t).await;
        assert_eq!(unassigned["items"][0]["id"], waiting["id"]);
        // The workload view counts what each holds.
        let agents = json_of(&app, "/api/v1/skills", t).await;
        let open: i64 = agents["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["user_id"] == a["id"] || p["user_id"] == b["id"])
            .map(|p| p["open"].as_i64().unwrap())
            .sum();
        assert_eq!(open, 4);
        // Named owners are not routed.
        let named = app
            .created(
                "/api/v1/tickets",
                t,
                json!({"subject": "指定处理", "owner_id": y["id"]}),
            )
            .await;
        assert_eq!(named["owner_id"], y["id"]);
    }
);

both!(
    a_reply_reaches_the_customer_by_mail_once,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let contact = app
            .created(
                "/api/v1/contacts",
                t,
                json!({"name": "孙丽", "email": "sunli@example.com"}),
            )
            .await;
        let ticket = app
            .created(
                "/api/v1/tickets",
                t,
                json!({"subject": "账单疑问", "contact_id": contact["id"], "channel": "email"}),
            )
            .await;
        let id = ticket["id"].as_str().unwrap();
        // A note stays inside; the public reply goes out.
        for (kind, body) in [("note", "内部：先查账"), ("reply", "您好，账单已更正。")]
        {
            let r = app
                .post(
                    &format!("/api/v1/tickets/{id}/messages"),
                    t,
                    json!({"kind": kind, "body": body}),
                )
                .await;
            assert_eq!(r.status(), 201);
        }
        app.run_pending_jobs().await;
        app.run_pending_jobs().await;
        let sent: Vec<String> = app
            .smtp
            .received()
            .into_iter()
            .filter(|m| m.contains("sunli@example.com"))
            .collect();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let mail = &sent[0];
        let messages = json_of(&app, &format!("/api/v1/tickets/{id}/messages"), t).await;
        let reply = messages["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["kind"] == "reply")
            .unwrap()
            .clone();
        let mail_id = reply["mail_id"].as_str().unwrap();
        assert!(mail_id.contains(id), "{mail_id}");
        assert!(mail.contains(&format!("<{mail_id}>")), "{mail}");
        assert!(!mail.contains("内部"), "{mail}");
        // The number travels with it (the subject, RFC 2047-encoded, and the closing line).
        assert!(mail.contains(ticket["number"].as_str().unwrap()), "{mail}");
        // Nothing more goes out when the queue runs again.
        app.run_pending_jobs().await;
        let again = app
            .smtp
            .received()
            .into_iter()
            .filter(|m| m.contains("sunli@example.com"))
            .count();
        assert_eq!(again, 1);
    }
);

both!(
    messages_racing_on_one_ticket_never_overwrite_a_status,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let ticket = app
            .created("/api/v1/tickets", t, json!({"subject": "同时回复"}))
            .await;
        let id = ticket["id"].as_str().unwrap().to_owned();
        // Ten writers at once, each moving the status from the ticket as they read it: every
        // one lands in turn or is refused as stale — the stored status is the last one landed.
        let mut tasks = Vec::new();
        for i in 0..10 {
            let status = ["resolved", "waiting_customer"][i % 2];
            let req = app
                .req(Method::POST, &format!("/api/v1/tickets/{id}/messages"), t)
                .json(&json!({"kind": "reply", "body": format!("回复 {i}"), "status": status}));
            tasks.push(tokio::spawn(async move {
                let r = req.send().await.unwrap();
                (status, r.status().as_u16())
            }));
        }
        let mut landed = 0;
        for task in tasks {
            let (_, code) = task.await.unwrap();
            assert!([201, 412].contains(&code), "{code}");
            landed += usize::from(code == 201);
        }
        assert!(landed >= 1);
        let stored = json_of(&app, &format!("/api/v1/tickets/{id}"), t).await;
        let messages = json_of(&app, &format!("/api/v1/tickets/{id}/messages"), t).await;
        assert_eq!(messages["items"].as_array().unwrap().len(), landed);
        // Each landed message advanced the version once.
        assert_eq!(stored["version"].as_i64(), Some(1 + landed as i64));
        let log = json_of(&app, &format!("/api/v1/tickets/{id}/timeline"), t).await;
        let last_status = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|e| e["kind"] == "status")
            .unwrap()["to_value"]
            .clone();
        assert_eq!(stored["status"], last_status);
    }
);

both!(
    followers_hear_of_what_moves_a_ticket,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let (agent, a) = app
            .user_with_role("service", "follow.agent@acme.test")
            .await;
        let (_, rep) = app.user_with_role("sales", "follow.rep@acme.test").await;
        let contact = app
            .created("/api/v1/contacts", t, json!({"name": "关注客户"}))
            .await;
        let ticket = app
            .created(
                "/api/v1/tickets",
                t,
                json!({"subject": "关注的工单", "contact_id": contact["id"], "owner_id": null}),
            )
            .await;
        let id = ticket["id"].as_str().unwrap();
        let notes = |token: String| {
            let app = &app;
            async move {
                let n: Value = app
                    .get("/api/v1/notifications", &token)
                    .await
                    .json()
                    .await
                    .unwrap();
                n["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|x| x["kind"] == "ticket_followed")
                    .count()
            }
        };
        // The agent follows it; a rep (who may not edit it) cannot add a colleague.
        let f: Value = app
            .post(&format!("/api/v1/tickets/{id}/followers"), &a, json!({}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(f["items"][0]["user_id"], agent["id"]);
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/followers"),
                &rep,
                json!({"user_id": agent["id"], "follow": false}),
            )
            .await;
        assert_eq!(r.status(), 403);
        // The customer's words and a status change each tell the follower; their own do not.
        app.created(
            &format!("/api/v1/tickets/{id}/messages"),
            t,
            json!({"kind": "customer", "body": "还是不行"}),
        )
        .await;
        assert_eq!(notes(a.clone()).await, 1);
        let cur: Value = app
            .get(&format!("/api/v1/tickets/{id}"), t)
            .await
            .json()
            .await
            .unwrap();
        let r = app
            .patch(
                &format!("/api/v1/tickets/{id}"),
                t,
                json!({"status": "waiting_third_party", "version": cur["version"]}),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(notes(a.clone()).await, 2);
        app.created(
            &format!("/api/v1/tickets/{id}/messages"),
            &a,
            json!({"kind": "note", "body": "我自己写的"}),
        )
        .await;
        assert_eq!(notes(a.clone()).await, 2, "not told of their own note");
        // Stopping: no more news.
        let f: Value = app
            .post(
                &format!("/api/v1/tickets/{id}/followers"),
                &a,
                json!({"follow": false}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(f["items"], json!([]));
        app.created(
            &format!("/api/v1/tickets/{id}/messages"),
            t,
            json!({"kind": "customer", "body": "再次来信"}),
        )
        .await;
        assert_eq!(notes(a.clone()).await, 2);
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/followers"),
                t,
                json!({"user_id": uuid::Uuid::now_v7()}),
            )
            .await;
        assert_eq!(refused(r).await, vec![("user_id".into(), "unknown".into())]);
    }
);

/// Every clock and due time of a set of tickets, as stored.
async fn stored_clocks(app: &TestApp, ids: &[uuid::Uuid]) -> Vec<String> {
    let tenant: uuid::Uuid = app.tenant_id.parse().unwrap();
    let mut out = Vec::new();
    for id in ids {
        let rows: Vec<(
            String,
            i64,
            String,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
            i64,
        )> = app
            .db
            .fetch_all(
                "SELECT target, cycle, state, due_at, completed_at, elapsed_seconds FROM ticket_sla
                 WHERE tenant_id = $1 AND ticket_id = $2 ORDER BY target, cycle",
                guanxi_platform::args![tenant, *id],
            )
            .await
            .unwrap();
        let row: (Option<uuid::Uuid>, Option<DateTime<Utc>>, bool, i64) = app
            .db
            .fetch_one(
                "SELECT sla_policy_id, sla_due_at, sla_breached, sla_due_key FROM tickets
                 WHERE tenant_id = $1 AND id = $2",
                guanxi_platform::args![tenant, *id],
            )
            .await
            .unwrap();
        out.push(format!("{id}: {rows:?} {row:?}"));
    }
    out
}

both!(
    a_batch_evaluates_each_ticket_as_it_would_alone,
    |app: TestApp| async move {
        let t = &app.admin_token;
        around_the_clock(&app).await;
        app.created(
            "/api/v1/sla-policies",
            t,
            json!({"name": "紧急", "position": 1, "priorities": ["urgent"],
                   "first_response_minutes": 30, "resolution_minutes": 240, "warn_minutes": 10}),
        )
        .await;
        app.created(
            "/api/v1/sla-policies",
            t,
            json!({"name": "咨询", "position": 2, "categories": ["咨询"],
                   "first_response_minutes": 60, "next_response_minutes": 120,
                   "resolution_minutes": 960}),
        )
        .await;
        let mut ids = Vec::new();
        for (i, (priority, category)) in [
            ("urgent", "维修"),
            ("normal", "咨询"),
            ("normal", "维修"), // no policy covers it
            ("urgent", "咨询"),
            ("high", "咨询"),
            ("urgent", "维修"),
        ]
        .into_iter()
        .enumerate()
        {
            let tk = app
                .created(
                    "/api/v1/tickets",
                    t,
                    json!({"subject": format!("工单 {i}"), "priority": priority, "category": category}),
                )
                .await;
            let id = tk["id"].as_str().unwrap().to_owned();
            if i % 2 == 1 {
                let r = app
                    .post(
                        &format!("/api/v1/tickets/{id}/messages"),
                        t,
                        json!({"kind": "reply", "body": "收到", "status": "waiting_customer"}),
                    )
                    .await;
                assert_eq!(r.status(), 201);
            }
            if i == 3 {
                let r = app
                    .post(
                        &format!("/api/v1/tickets/{id}/messages"),
                        t,
                        json!({"kind": "reply", "body": "已解决", "status": "resolved"}),
                    )
                    .await;
                assert_eq!(r.status(), 201);
            }
            if i == 5 {
                let r = app
                    .req(Method::DELETE, &format!("/api/v1/tickets/{id}"), t)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 204);
            }
            ids.push(id.parse::<uuid::Uuid>().unwrap());
        }
        // Evaluated a day later one by one, then all at once (with an id that is no ticket):
        // the same clocks, due times, outcomes.
        let later = Utc::now() + Duration::days(1);
        let tenant: uuid::Uuid = app.tenant_id.parse().unwrap();
        let ctx = guanxi_platform::Ctx::system(tenant);
        for id in &ids {
            let mut tx = app.db.begin().await.unwrap();
            guanxi_service::sla::evaluate(&mut tx, &ctx, *id, later)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        let alone = stored_clocks(&app, &ids).await;
        assert!(alone.iter().any(|c| c.contains("missed")), "{alone:?}");
        let mut batch = ids.clone();
        batch.push(uuid::Uuid::now_v7());
        let mut tx = app.db.begin().await.unwrap();
        let done = guanxi_service::sla::evaluate_many(&mut tx, &ctx, &batch, later)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(done.len(), ids.len());
        assert_eq!(stored_clocks(&app, &ids).await, alone);
        // No outcome recorded twice by the second evaluation.
        let events: i64 = app
            .db
            .scalar(
                "SELECT COUNT(*) FROM ticket_events WHERE tenant_id = $1 AND kind = 'sla'",
                guanxi_platform::args![tenant],
            )
            .await
            .unwrap();
        let distinct: i64 = app
            .db
            .scalar(
                "SELECT COUNT(*) FROM (SELECT DISTINCT ticket_id, from_value, to_value, data
                 FROM ticket_events WHERE tenant_id = $1 AND kind = 'sla') d",
                guanxi_platform::args![tenant],
            )
            .await
            .unwrap();
        assert_eq!(events, distinct);
    }
);
