//! Field service: a visit goes to the best free engineer with the skill, never double-booked
//! (also when colleagues book the same hour at once); its report reaches the customer's
//! timeline and the ticket's log; a resolved ticket books the follow-up visit (回访) its SLA
//! policy asks for, once.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::both;
use crate::harness::{refused, TestApp};

async fn json_of(app: &TestApp, path: &str, t: &str) -> Value {
    let r = app.get(path, t).await;
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

/// Gives an agent a skill at a level.
async fn skilled(app: &TestApp, user: &Value, skill: &str, level: i64) {
    let r = app
        .req(
            reqwest::Method::PUT,
            &format!("/api/v1/skills/{}", user["id"].as_str().unwrap()),
            &app.admin_token,
        )
        .json(&json!({"version": 0, "skills": {skill: level}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

both!(
    visits_go_to_a_free_engineer_with_the_skill_and_report_to_the_timeline,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let (senior, senior_token) = app.user_with_role("service", "senior@visits.test").await;
        let (junior, _) = app.user_with_role("service", "junior@visits.test").await;
        skilled(&app, &senior, "空调", 8).await;
        skilled(&app, &junior, "空调", 5).await;
        let account = app
            .created("/api/v1/accounts", t, json!({"name": "四季酒店"}))
            .await;
        let contact = app
            .created(
                "/api/v1/contacts",
                t,
                json!({"name": "周经理", "account_id": account["id"]}),
            )
            .await;
        let ticket = app
            .created(
                "/api/v1/tickets",
                t,
                json!({"subject": "空调不制冷", "contact_id": contact["id"], "account_id": account["id"]}),
            )
            .await;
        let tid = ticket["id"].as_str().unwrap();
        let slot = (Utc::now() + Duration::days(2)).to_rfc3339();

        // Refusals name their fields.
        let r = app
            .post("/api/v1/visits", t, json!({"kind": "repair"}))
            .await;
        let mut errs = refused(r).await;
        errs.sort();
        assert_eq!(
            errs,
            vec![
                ("kind".into(), "invalid".into()),
                ("starts_at".into(), "required".into()),
                ("ticket_id".into(), "required".into()),
            ]
        );
        let admin_id = json_of(&app, "/api/v1/me", t).await["user"]["id"].clone();
        let r = app
            .post(
                "/api/v1/visits",
                t,
                json!({"ticket_id": tid, "skill": "空调", "engineer_id": admin_id, "starts_at": slot}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            vec![("engineer_id".into(), "lacks_skill".into())]
        );

        // The best free engineer: the senior, then (the senior busy) the junior, then nobody.
        let book = || {
            app.post(
                "/api/v1/visits",
                t,
                json!({"ticket_id": tid, "skill": "空调", "starts_at": slot, "minutes": 120,
                       "address": "北京市朝阳区建国路 1 号"}),
            )
        };
        let r = book().await;
        assert_eq!(r.status(), 201);
        let first: Value = r.json().await.unwrap();
        assert_eq!(first["engineer_id"], senior["id"]);
        assert_eq!(first["account_id"], account["id"], "the ticket's customer");
        assert_eq!(first["contact_id"], contact["id"]);
        let second: Value = book().await.json().await.unwrap();
        assert_eq!(second["engineer_id"], junior["id"]);
        assert_eq!(
            refused(book().await).await,
            vec![("engineer_id".into(), "none_free".into())]
        );
        // The senior an hour later overlaps their two-hour visit.
        let r = app
            .post(
                "/api/v1/visits",
                t,
                json!({"ticket_id": tid, "engineer_id": senior["id"],
                       "starts_at": (at(&first["starts_at"]) + Duration::minutes(60)).to_rfc3339()}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            vec![("starts_at".into(), "engineer_busy".into())]
        );
        let who = json_of(
            &app,
            &format!(
                "/api/v1/visits/engineers?skill=%E7%A9%BA%E8%B0%83&starts_at={}&minutes=60",
                urlencode(&slot)
            ),
            t,
        )
        .await;
        let free: Vec<bool> = who["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["free"].as_bool().unwrap())
            .collect();
        assert_eq!(free, vec![false, false], "both booked then");

        // Colleagues booking the senior's next free hour at once: one visit, the rest refused.
        let next = (Utc::now() + Duration::days(3)).to_rfc3339();
        let tries: Vec<_> = (0..8)
            .map(|_| {
                app.req(reqwest::Method::POST, "/api/v1/visits", t)
                    .json(
                        &json!({"ticket_id": tid, "engineer_id": senior["id"], "starts_at": next}),
                    )
                    .send()
            })
            .collect();
        let statuses: Vec<u16> = crate::concurrency::futures_join(tries)
            .await
            .iter()
            .map(|r| r.status().as_u16())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 201 || *s == 422),
            "{statuses:?}"
        );

        // Moving a visit at a stale version is refused.
        let fid = first["id"].as_str().unwrap();
        let r = app
            .patch(
                &format!("/api/v1/visits/{fid}"),
                t,
                json!({"version": 99, "minutes": 90}),
            )
            .await;
        assert_eq!(r.status(), 412);

        // The senior finishes on site: the outcome must fit the kind; then the report is on
        // the account's timeline and the ticket's log, and the visit is closed.
        let finish_path = format!("/api/v1/visits/{fid}/finish");
        let finish = |body: Value| app.post(&finish_path, &senior_token, body);
        let r = finish(json!({"report": "更换压缩机电容", "outcome": "satisfied"})).await;
        assert_eq!(refused(r).await, vec![("outcome".into(), "invalid".into())]);
        let r = finish(json!({"report": "更换压缩机电容，试机正常", "outcome": "solved"})).await;
        assert_eq!(r.status(), 200);
        let done: Value = r.json().await.unwrap();
        assert_eq!(done["status"], "done");
        let r = finish(json!({"report": "again", "outcome": "solved"})).await;
        assert_eq!(r.status(), 409);
        let timeline = json_of(
            &app,
            &format!(
                "/api/v1/accounts/{}/timeline",
                account["id"].as_str().unwrap()
            ),
            t,
        )
        .await;
        let visit = timeline["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "visit")
            .expect("the report on the timeline");
        assert!(visit["body"].as_str().unwrap().contains("更换压缩机电容"));
        let log = json_of(&app, &format!("/api/v1/tickets/{tid}/timeline"), t).await;
        let kinds: Vec<(&str, &str)> = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "visit")
            .map(|e| (e["kind"].as_str().unwrap(), e["to_value"].as_str().unwrap()))
            .collect();
        assert!(kinds.contains(&("visit", "solved")), "{kinds:?}");

        // Cancelling the junior's visit frees their hour: booked by name, it is theirs again
        // (the senior's hour counts no more either, their visit being done).
        let sid = second["id"].as_str().unwrap();
        let r = app
            .post(&format!("/api/v1/visits/{sid}/cancel"), t, json!({}))
            .await;
        assert_eq!(r.status(), 200);
        let again = app
            .created(
                "/api/v1/visits",
                t,
                json!({"ticket_id": tid, "engineer_id": junior["id"], "starts_at": slot}),
            )
            .await;
        assert_eq!(again["engineer_id"], junior["id"]);
        assert_eq!(book().await.status(), 201, "the senior is free again");
        // The agenda lists them.
        let mine = json_of(
            &app,
            &format!(
                "/api/v1/visits?engineer_id={}",
                junior["id"].as_str().unwrap()
            ),
            t,
        )
        .await;
        let states: Vec<&str> = mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["status"].as_str().unwrap())
            .collect();
        assert_eq!(states, vec!["cancelled", "scheduled"]);
    }
);

both!(
    a_resolved_ticket_books_its_follow_up_visit_once,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let (agent, agent_token) = app.user_with_role("service", "agent@followup.test").await;
        let r = app
            .post(
                "/api/v1/sla-policies",
                t,
                json!({"name": "回访", "resolution_minutes": 2400, "follow_up_days": 400}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            vec![("follow_up_days".into(), "out_of_range".into())]
        );
        app.created(
            "/api/v1/sla-policies",
            t,
            json!({"name": "回访", "resolution_minutes": 2400, "follow_up_days": 3}),
        )
        .await;
        let contact = app
            .created("/api/v1/contacts", t, json!({"name": "吴女士"}))
            .await;
        let ticket = app
            .created(
                "/api/v1/tickets",
                t,
                json!({"subject": "热水器漏水", "contact_id": contact["id"], "owner_id": agent["id"]}),
            )
            .await;
        let tid = ticket["id"].as_str().unwrap();
        let r = app
            .post(
                &format!("/api/v1/tickets/{tid}/messages"),
                &agent_token,
                json!({"kind": "reply", "body": "已更换阀门", "status": "resolved"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let path = format!("/api/v1/visits?ticket_id={tid}");
        let visits = json_of(&app, &path, t).await["items"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(visits.len(), 1);
        let v = &visits[0];
        assert_eq!(
            (v["kind"].as_str(), v["reason"].as_str()),
            (Some("follow_up"), Some("resolved"))
        );
        assert_eq!(v["engineer_id"], agent["id"]);
        // Three days on, at 10:00 in the company's zone (Shanghai, UTC+8).
        let resolved = json_of(&app, &format!("/api/v1/tickets/{tid}"), t).await;
        let local_day =
            (at(&resolved["resolved_at"]) + Duration::days(3) + Duration::hours(8)).date_naive();
        let ten = local_day.and_hms_opt(2, 0, 0).unwrap().and_utc();
        assert_eq!(at(&v["starts_at"]), ten);
        // Another ticket of the same owner resolved: its follow-up takes the next half hour.
        let other = app
            .created(
                "/api/v1/tickets",
                t,
                json!({"subject": "燃气灶打不着火", "contact_id": contact["id"], "owner_id": agent["id"]}),
            )
            .await;
        let oid = other["id"].as_str().unwrap();
        let r = app
            .post(
                &format!("/api/v1/tickets/{oid}/messages"),
                &agent_token,
                json!({"kind": "reply", "body": "已修好", "status": "resolved"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let second = json_of(&app, &format!("/api/v1/visits?ticket_id={oid}"), t).await;
        let second_at = at(&second["items"][0]["starts_at"]);
        if second_at.date_naive() == ten.date_naive() {
            assert_eq!(second_at, ten + Duration::minutes(30));
        }
        // Reopened and resolved again: still one follow-up.
        for status in ["open", "resolved"] {
            let cur = json_of(&app, &format!("/api/v1/tickets/{tid}"), t).await;
            let r = app
                .patch(
                    &format!("/api/v1/tickets/{tid}"),
                    t,
                    json!({"version": cur["version"], "status": status}),
                )
                .await;
            assert_eq!(r.status(), 200);
        }
        let again = json_of(&app, &path, t).await;
        assert_eq!(again["items"].as_array().unwrap().len(), 1);
        // The follow-up's outcomes are a follow-up's.
        let r = app
            .post(
                &format!("/api/v1/visits/{}/finish", v["id"].as_str().unwrap()),
                &agent_token,
                json!({"report": "电话回访，客户表示满意", "outcome": "satisfied"}),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
);

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

both!(
    an_engineer_books_and_reports_a_visit_on_the_pages,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let contact = app
            .created("/api/v1/contacts", t, json!({"name": "郑先生"}))
            .await;
        let ticket = app
            .created(
                "/api/v1/tickets",
                t,
                json!({"subject": "洗衣机异响", "contact_id": contact["id"]}),
            )
            .await;
        let tid = ticket["id"].as_str().unwrap();
        let (web, session) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let csrf = session["csrf_token"].as_str().unwrap().to_owned();
        let post = |path: String, form: Vec<(&str, &str)>| {
            let mut form: Vec<(String, String)> = form
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            form.push(("_csrf".into(), csrf.clone()));
            web.post(app.url(&path)).form(&form).send()
        };
        let page = web
            .get(app.url(&format!("/tickets/{tid}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("id=\"book-visit\""), "{page}");
        // A time that is not a time is named; a good one opens the visit's page.
        let r = post(
            format!("/tickets/{tid}/visits"),
            vec![("kind", "onsite"), ("starts_at", "明天上午")],
        )
        .await
        .unwrap();
        let page = r.text().await.unwrap();
        assert!(page.contains("id=\"refused\""), "{page}");
        let r = post(
            format!("/tickets/{tid}/visits"),
            vec![
                ("kind", "onsite"),
                ("starts_at", "2030-05-04T09:30"),
                ("minutes", "90"),
                ("address", "上海市徐汇区漕溪北路 88 号"),
            ],
        )
        .await
        .unwrap();
        assert!(r.status().is_success());
        let page = r.text().await.unwrap();
        assert!(
            page.contains("id=\"finish-form\"") && page.contains("漕溪北路"),
            "{page}"
        );
        let v = json_of(&app, &format!("/api/v1/visits?ticket_id={tid}"), t).await;
        let visit = &v["items"][0];
        // 09:30 in the company's time zone (Shanghai).
        assert_eq!(visit["starts_at"], "2030-05-04T01:30:00Z");
        let id = visit["id"].as_str().unwrap();
        let r = post(
            format!("/visits/{id}/finish"),
            vec![
                ("version", &visit["version"].to_string()),
                ("report", "更换减震器，试机无异响"),
                ("outcome", "solved"),
            ],
        )
        .await
        .unwrap();
        let page = r.text().await.unwrap();
        assert!(
            page.contains("id=\"report\"") && page.contains("更换减震器"),
            "{page}"
        );
        let agenda = web
            .get(app.url("/visits?who=all"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(agenda.contains("洗衣机异响"), "{agenda}");
    }
);

both!(
    a_ticket_on_a_covered_asset_gets_the_coverage_policy,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let r = app
            .post(
                "/api/v1/sla-policies",
                t,
                json!({"name": "x", "resolution_minutes": 60, "coverage": ["gold"]}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            vec![("coverage.0".into(), "invalid".into())]
        );
        let warranty = app
            .created(
                "/api/v1/sla-policies",
                t,
                json!({"name": "保修期内", "position": 1, "coverage": ["warranty", "contract"],
                       "resolution_minutes": 480}),
            )
            .await;
        let standard = app
            .created(
                "/api/v1/sla-policies",
                t,
                json!({"name": "标准", "position": 10, "resolution_minutes": 2400}),
            )
            .await;
        let account = app
            .created("/api/v1/accounts", t, json!({"name": "冷链物流"}))
            .await;
        let today = Utc::now().date_naive();
        let asset = |name: &'static str, body: Value| {
            let mut b = body;
            b["account_id"] = account["id"].clone();
            b["name"] = json!(name);
            app.created("/api/v1/assets", t, b)
        };
        let covered = asset(
            "冷柜 A",
            json!({"kind": "product", "warranty_until": (today + Duration::days(30)).to_string()}),
        )
        .await;
        let expired = asset(
            "冷柜 B",
            json!({"kind": "product", "warranty_until": (today - Duration::days(1)).to_string()}),
        )
        .await;
        let contract = asset(
            "维保合同",
            json!({"kind": "service", "ends_on": (today + Duration::days(365)).to_string()}),
        )
        .await;
        for (a, policy) in [
            (&covered, &warranty),
            (&expired, &standard),
            (&contract, &warranty),
        ] {
            let ticket = app
                .created(
                    "/api/v1/tickets",
                    t,
                    json!({"subject": "不制冷", "account_id": account["id"], "asset_id": a["id"]}),
                )
                .await;
            assert_eq!(ticket["sla_policy_id"], policy["id"], "{}", a["name"]);
        }
    }
);

/// Moves a user into a team.
async fn into_team(app: &TestApp, user: &Value, team: &Value) {
    let r = app
        .patch(
            &format!("/api/v1/users/{}", user["id"].as_str().unwrap()),
            &app.admin_token,
            json!({"version": user["version"], "team_id": team["id"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

both!(
    stations_take_tickets_by_region_product_and_language_and_go_on_their_visits,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let team = |name: &'static str| {
            let app = &app;
            async move { app.created("/api/v1/teams", t, json!({"name": name})).await }
        };
        let (gd, sh, lifts, en) = (
            team("广东服务站").await,
            team("上海服务站").await,
            team("电梯专线").await,
            team("English desk").await,
        );
        let (gd_eng, _) = app.user_with_role("service", "gd@station.test").await;
        let (sh_eng, _) = app.user_with_role("service", "sh@station.test").await;
        into_team(&app, &gd_eng, &gd).await;
        into_team(&app, &sh_eng, &sh).await;
        skilled(&app, &gd_eng, "维修", 4).await;
        skilled(&app, &sh_eng, "维修", 9).await;
        // A language, a region or a product that is no code is refused by name.
        let r = app
            .post(
                "/api/v1/queues",
                t,
                json!({"name": "坏", "team_id": en["id"], "languages": ["fr"],
                       "regions": ["x".repeat(51)]}),
            )
            .await;
        let mut errs = refused(r).await;
        errs.sort();
        assert_eq!(
            errs,
            vec![
                ("languages.0".into(), "invalid".into()),
                ("regions.0".into(), "invalid".into())
            ]
        );
        let queue = |name: &str, pos: i64, team: &Value, extra: Value| {
            let mut body = json!({"name": name, "position": pos, "team_id": team["id"],
                                  "strategy": "manual"});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            body
        };
        let english = app
            .created(
                "/api/v1/queues",
                t,
                queue("English", 1, &en, json!({"languages": ["en"]})),
            )
            .await;
        assert_eq!(english["languages"], json!(["en"]));
        app.created(
            "/api/v1/queues",
            t,
            queue("电梯", 2, &lifts, json!({"products": ["电梯", "AC-100"]})),
        )
        .await;
        app.created(
            "/api/v1/queues",
            t,
            queue("广东", 3, &gd, json!({"regions": ["广东", "Guangdong"]})),
        )
        .await;
        app.created(
            "/api/v1/queues",
            t,
            queue("上海", 4, &sh, json!({"regions": ["上海"]})),
        )
        .await;
        // The contact's province, else the account's.
        let sz = app
            .created(
                "/api/v1/accounts",
                t,
                json!({"name": "深圳某厂", "province": "广东省", "city": "深圳市"}),
            )
            .await;
        let shanghai = app
            .created(
                "/api/v1/accounts",
                t,
                json!({"name": "上海某楼宇", "province": "上海市"}),
            )
            .await;
        let moved = app
            .created(
                "/api/v1/contacts",
                t,
                json!({"name": "搬到上海的人", "account_id": sz["id"], "province": "上海市"}),
            )
            .await;
        let ticket = |body: Value| {
            let app = &app;
            async move { app.created("/api/v1/tickets", t, body).await }
        };
        let by_account = ticket(json!({"subject": "设备报修", "account_id": sz["id"]})).await;
        assert_eq!(by_account["team_id"], gd["id"]);
        let by_contact = ticket(
            json!({"subject": "设备报修", "account_id": sz["id"], "contact_id": moved["id"]}),
        )
        .await;
        assert_eq!(by_contact["team_id"], sh["id"]);
        let latin = app
            .created(
                "/api/v1/accounts",
                t,
                json!({"name": "GZ Works", "province": "guangdong"}),
            )
            .await;
        assert_eq!(
            ticket(json!({"subject": "维修", "account_id": latin["id"]})).await["team_id"],
            gd["id"]
        );
        // English goes to the English desk wherever the customer is.
        let english_one =
            ticket(json!({"subject": "The lift is stuck", "account_id": sz["id"]})).await;
        assert_eq!(english_one["team_id"], en["id"]);
        // The asset's product: by its category, or by its SKU.
        let lift = app
            .created(
                "/api/v1/products",
                t,
                json!({"sku": "EL-9", "name": "客梯", "category": "电梯", "list_price": 100}),
            )
            .await;
        let ac = app
            .created(
                "/api/v1/products",
                t,
                json!({"sku": "AC-100", "name": "空调", "list_price": 100}),
            )
            .await;
        for p in [&lift, &ac] {
            let asset = app
                .created(
                    "/api/v1/assets",
                    t,
                    json!({"account_id": shanghai["id"], "name": "设备", "product_id": p["id"]}),
                )
                .await;
            let tk = ticket(json!({"subject": "故障", "account_id": shanghai["id"],
                                   "asset_id": asset["id"]}))
            .await;
            assert_eq!(tk["team_id"], lifts["id"], "{}", p["sku"]);
        }
        // No region, product or language fits: the customer's station is still none.
        let nowhere = ticket(json!({"subject": "咨询"})).await;
        assert_eq!(nowhere["team_id"], Value::Null);
        // A visit for the Guangdong ticket goes to the Guangdong station's engineer first,
        // though Shanghai's knows the work better.
        let slot = (Utc::now() + Duration::days(3)).to_rfc3339();
        let list = json_of(
            &app,
            &format!(
                "/api/v1/visits/engineers?skill={}&starts_at={}&team_id={}",
                urlencode("维修"),
                urlencode(&slot),
                gd["id"].as_str().unwrap()
            ),
            t,
        )
        .await;
        assert_eq!(list["items"][0]["user_id"], gd_eng["id"]);
        assert_eq!(list["items"][0]["in_station"], true);
        assert_eq!(list["items"][1]["user_id"], sh_eng["id"]);
        let visit = app
            .created(
                "/api/v1/visits",
                t,
                json!({"ticket_id": by_account["id"], "skill": "维修", "starts_at": slot}),
            )
            .await;
        assert_eq!(visit["engineer_id"], gd_eng["id"]);
        // Without a station the better engineer goes.
        let visit = app
            .created(
                "/api/v1/visits",
                t,
                json!({"ticket_id": nowhere["id"], "skill": "维修", "starts_at": slot}),
            )
            .await;
        assert_eq!(visit["engineer_id"], sh_eng["id"]);
        // The queues page shows the station's regions and the languages in both tongues.
        let (web, _) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let page = web
            .get(app.url("/admin/queues"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("广东, Guangdong"), "{page}");
        assert!(page.contains("name=\"languages\" value=\"en\" checked"));
    }
);

both!(
    warranty_ends_book_one_follow_up_per_asset_and_end,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let (eng, _) = app.user_with_role("service", "patrol@visits.test").await;
        skilled(&app, &eng, "巡检", 3).await;
        let put = |body: Value| {
            app.req(reqwest::Method::PUT, "/api/v1/visits/warranty-sweep", t)
                .json(&body)
                .send()
        };
        // Off before it is saved; refusals named.
        let sweep = json_of(&app, "/api/v1/visits/warranty-sweep", t).await;
        assert_eq!(
            (sweep["active"].clone(), sweep["version"].clone()),
            (json!(false), json!(0))
        );
        let r = put(json!({"active": true})).await.unwrap();
        assert_eq!(
            refused(r).await,
            vec![("version".into(), "required".into())]
        );
        let r = put(json!({"version": 0, "days_before": 400}))
            .await
            .unwrap();
        assert_eq!(
            refused(r).await,
            vec![("days_before".into(), "out_of_range".into())]
        );
        let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
        let day = |d: i64| (now + Duration::days(d)).date_naive().to_string();
        let account = app
            .created("/api/v1/accounts", t, json!({"name": "保修客户"}))
            .await;
        let asset = |name: &str, until: String, status: &str| {
            app.created(
                "/api/v1/assets",
                t,
                json!({"account_id": account["id"], "name": name, "warranty_until": until,
                       "status": status}),
            )
        };
        let soon = asset("冷水机组", day(10), "active").await;
        let later = asset("空压机", day(60), "active").await;
        asset("旧锅炉", day(-1), "active").await;
        asset("已报废", day(5), "ended").await;
        let r = put(
            json!({"version": 0, "active": true, "days_before": 30, "skill": "巡检",
                           "next_at": now.to_rfc3339()}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        // Run twice at the same time (a retry, a second node): one visit, for the asset whose
        // warranty ends within 30 days, tomorrow (its day 30 before the end has passed).
        app.run_jobs_at(now + Duration::seconds(1)).await;
        app.run_jobs_at(now + Duration::seconds(2)).await;
        let warranty = || async {
            let all = json_of(&app, "/api/v1/visits?limit=100", t).await;
            all["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| v["reason"] == "warranty")
                .cloned()
                .collect::<Vec<Value>>()
        };
        let booked = warranty().await;
        assert_eq!(booked.len(), 1, "{booked:?}");
        let v = &booked[0];
        assert_eq!(v["asset_id"], soon["id"]);
        assert_eq!(v["asset_name"], "冷水机组");
        assert_eq!(v["warranty_until"], json!(day(10)));
        assert_eq!(v["kind"], "follow_up");
        assert_eq!(v["engineer_id"], eng["id"]);
        assert_eq!(v["account_id"], account["id"]);
        let shanghai = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        let starts = at(&v["starts_at"]).with_timezone(&shanghai);
        assert_eq!(
            starts.date_naive(),
            (now.with_timezone(&shanghai) + Duration::days(1)).date_naive()
        );
        assert_eq!(starts.format("%H:%M").to_string(), "10:00");
        let sweep = json_of(&app, "/api/v1/visits/warranty-sweep", t).await;
        assert_eq!(sweep["last_booked"], 1);
        assert_eq!(at(&sweep["next_at"]), now + Duration::days(1));
        // The next day: nothing new (the other warranty is 60 days off).
        app.run_jobs_at(now + Duration::days(1) + Duration::seconds(1))
            .await;
        assert_eq!(warranty().await.len(), 1);
        // A warranty extended is visited again, the old visit kept.
        let r = app
            .patch(
                &format!("/api/v1/assets/{}", later["id"].as_str().unwrap()),
                t,
                json!({"version": later["version"], "warranty_until": day(20)}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let r = app
            .patch(
                &format!("/api/v1/assets/{}", soon["id"].as_str().unwrap()),
                t,
                json!({"version": soon["version"], "warranty_until": day(25)}),
            )
            .await;
        assert_eq!(r.status(), 200);
        app.run_jobs_at(now + Duration::days(2) + Duration::seconds(1))
            .await;
        let mut ends: Vec<(String, String)> = warranty()
            .await
            .iter()
            .map(|v| {
                (
                    v["asset_name"].as_str().unwrap().to_owned(),
                    v["warranty_until"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        ends.sort();
        assert_eq!(
            ends,
            vec![
                ("冷水机组".to_owned(), day(10)),
                ("冷水机组".to_owned(), day(25)),
                ("空压机".to_owned(), day(20)),
            ]
        );
        // Switched off, the planned run books nothing.
        let sweep = json_of(&app, "/api/v1/visits/warranty-sweep", t).await;
        let r = put(json!({"version": 0, "active": false})).await.unwrap();
        assert_eq!(r.status(), 412);
        let r = put(json!({"version": sweep["version"], "active": false}))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let more = asset("新设备", day(3), "active").await;
        app.run_jobs_at(now + Duration::days(3) + Duration::seconds(1))
            .await;
        assert!(!warranty().await.iter().any(|v| v["asset_id"] == more["id"]));
        // The settings page and the visit's page say so in words.
        let (web, _) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let page = web
            .get(app.url("/admin/sla-policies"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("id=\"warranty-form\""));
        let id = warranty().await[0]["id"].as_str().unwrap().to_owned();
        let page = web
            .get(app.url(&format!("/visits/{id}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("保修到期"), "{page}");
    }
);
