//! Dashboards: the built-in management dashboard narrowed by period, team, region and "only
//! mine", counted against hand sums and in each viewer's record scope; saved dashboards
//! checked tile by tile, shared, version-checked, put on a home page; the pages.

use crate::both;
use crate::harness::{refused, TestApp};
use crate::value::ten_customers;
use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};

const MANAGEMENT: &str = "00000000-0000-0000-0000-0000000000d1";
const MY_NUMBERS: &str = "00000000-0000-0000-0000-0000000000d2";

async fn open(app: &TestApp, t: &str, id: &str, query: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/dashboards/{id}/data?{query}"), t)
        .await;
    assert_eq!(r.status(), 200, "{id}?{query}");
    r.json().await.unwrap()
}

/// A report tile's rows as (first grouping, first measure).
fn rows(tile: &Value) -> Vec<(String, i64)> {
    assert_eq!(tile["data"]["type"], "report", "{tile}");
    tile["data"]["result"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or("").to_owned(),
                r[1].as_i64().unwrap(),
            )
        })
        .collect()
}

fn total(tile: &Value) -> i64 {
    rows(tile).iter().map(|r| r.1).sum()
}

/// Customers in a grade-migration tile.
fn graded(tile: &Value) -> i64 {
    assert_eq!(tile["data"]["type"], "grade_migration", "{tile}");
    tile["data"]["moves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["customers"].as_i64().unwrap())
        .sum()
}

fn shanghai_today() -> chrono::NaiveDate {
    (Utc::now() + Duration::hours(8)).date_naive()
}

both!(
    management_dashboard_narrowed_by_period_team_region_and_scope,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        let accounts = ten_customers(&app, &t).await;
        // A rep in team 华南 owns 价值客户1 and 2 (three orders, 3,500 yuan).
        let (rep, rep_t) = app.user_with_role("sales", "rep@dash.test").await;
        let team = app
            .created("/api/v1/teams", &t, json!({"name": "华南"}))
            .await;
        let r = app
            .patch(
                &format!("/api/v1/users/{}", rep["id"].as_str().unwrap()),
                &t,
                json!({"version": rep["version"], "team_id": team["id"]}),
            )
            .await;
        assert_eq!(r.status(), 200);
        for a in &accounts[1..3] {
            let r = app
                .patch(
                    &format!("/api/v1/accounts/{}", a["id"].as_str().unwrap()),
                    &t,
                    json!({"version": 1, "owner_id": rep["id"]}),
                )
                .await;
            assert_eq!(r.status(), 200);
        }
        let r = app
            .patch(
                &format!("/api/v1/accounts/{}", accounts[0]["id"].as_str().unwrap()),
                &t,
                json!({"version": 1, "province": "广东"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        // Graded once: every account newly graded.
        let r = app.post("/api/v1/grading/runs", &t, json!({})).await;
        assert_eq!(r.status(), 202);
        assert_eq!(app.run_grading().await, 1);

        // All time: the ten customers' 10,000 yuan and the 400-day-old 999,999 (cancelled,
        // draft and dollar orders never count).
        let all = open(&app, &t, MANAGEMENT, "period=all").await;
        let tiles = all["tiles"].as_array().unwrap();
        assert_eq!(tiles.len(), 8);
        assert_eq!(all["dashboard"]["builtin"], true);
        let everything = 1_000_000 + 99_999_900;
        for (i, tile) in tiles.iter().enumerate().take(5) {
            assert_eq!(total(tile), everything, "tile {i}");
        }
        assert_eq!(
            rows(&tiles[2])
                .into_iter()
                .find(|r| r.0 == "广东")
                .map(|r| r.1),
            Some(500_000)
        );
        let by_rep: Vec<i64> = rows(&tiles[4]).iter().map(|r| r.1).collect();
        assert_eq!(
            by_rep,
            vec![everything - 350_000, 350_000],
            "the admin, then the rep"
        );
        assert_eq!(graded(&tiles[5]), 10);
        assert_eq!(tiles[6]["data"]["type"], "forecast");
        // The last 55 days on the Shanghai calendar: 2,000 + 1,500 + 1,000 yuan.
        let today = shanghai_today();
        let from = today - Duration::days(55);
        let q = format!("from={from}&to={today}");
        let recent = open(&app, &t, MANAGEMENT, &q).await;
        assert_eq!(recent["from"], from.to_string());
        assert_eq!(
            recent["filters"]["period"],
            Value::Null,
            "days replace the preset"
        );
        assert_eq!(total(&recent["tiles"][0]), 450_000);
        assert_eq!(total(&recent["tiles"][1]), 450_000);
        assert_eq!(
            recent["tiles"][6]["data"]["period"],
            format!(
                "{}-Q{}",
                chrono::Datelike::year(&today),
                (chrono::Datelike::month(&today) - 1) / 3 + 1
            )
        );
        // A region: only 广东's revenue; the forecast has no region and says so.
        let gd = open(
            &app,
            &t,
            MANAGEMENT,
            "period=all&province=%E5%B9%BF%E4%B8%9C",
        )
        .await;
        assert_eq!(total(&gd["tiles"][0]), 500_000);
        assert_eq!(rows(&gd["tiles"][2]), vec![("广东".to_owned(), 500_000)]);
        assert_eq!(graded(&gd["tiles"][5]), 1);
        assert_eq!(gd["tiles"][6]["unapplied"], json!(["region"]));
        assert_eq!(gd["tiles"][0]["unapplied"], json!([]));
        // A team: the rep's two customers.
        let q = format!("period=all&team_id={}", team["id"].as_str().unwrap());
        let south = open(&app, &t, MANAGEMENT, &q).await;
        assert_eq!(total(&south["tiles"][0]), 350_000);
        assert_eq!(graded(&south["tiles"][5]), 2);
        // Only mine: the admin's own eight.
        let mine = open(&app, &t, MANAGEMENT, "period=all&mine=true").await;
        assert_eq!(total(&mine["tiles"][0]), everything - 350_000);
        // The rep sees only what they may read, whatever they ask for.
        let theirs = open(&app, &rep_t, MANAGEMENT, "period=all").await;
        assert_eq!(total(&theirs["tiles"][0]), 350_000);
        assert_eq!(rows(&theirs["tiles"][4]).len(), 1, "one rep: themselves");
        assert_eq!(graded(&theirs["tiles"][5]), 2);
        // Their home dashboard opens on their own records.
        let home = open(&app, &rep_t, MY_NUMBERS, "period=all").await;
        assert_eq!(home["filters"]["mine"], true);
        assert_eq!(total(&home["tiles"][0]), 350_000);
        // Bad narrowing is named.
        let r = app
            .get(
                &format!("/api/v1/dashboards/{MANAGEMENT}/data?from=2026-12-01&to=2026-11-01"),
                &t,
            )
            .await;
        assert_eq!(refused(r).await, vec![("to".into(), "before_from".into())]);
        let r = app
            .get(
                &format!("/api/v1/dashboards/{MANAGEMENT}/data?period=decade"),
                &t,
            )
            .await;
        assert_eq!(r.status(), 400);
        assert_eq!(
            app.get(
                "/api/v1/dashboards/00000000-0000-0000-0000-0000000000d9/data",
                &t
            )
            .await
            .status(),
            404
        );
    }
);

both!(
    saved_dashboards_checked_shared_versioned_and_on_home,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        ten_customers(&app, &t).await;
        let (_, rep_t) = app.user_with_role("sales", "rep2@dash.test").await;
        let spec = json!({"entity": "orders", "group_by": [{"field": "status"}], "measures": [{"agg": "count"}], "chart": "bar"});
        let report = app
            .created(
                "/api/v1/reports",
                &t,
                json!({"name": "按状态订单数", "sharing": "company", "spec": spec}),
            )
            .await;
        let tiles = json!([
            {"title": "按省订单", "content": {"type": "report", "spec": {"entity": "orders", "group_by": [{"field": "province"}], "measures": [{"agg": "count"}]}}},
            {"title": "已存", "content": {"type": "saved_report", "report_id": report["id"]}},
            {"title": "迁移", "content": {"type": "grade_migration"}},
            {"title": "预测", "wide": true, "content": {"type": "forecast"}}
        ]);
        // Each bad part named.
        let bad = |tiles: Value, filters: Value| json!({"name": "坏的", "tiles": tiles, "filters": filters});
        let r = app
            .post(
                "/api/v1/dashboards",
                &t,
                bad(
                    json!([
                        {"title": "", "content": {"type": "forecast"}},
                        {"title": "x", "content": {"type": "report", "spec": {"entity": "orders", "group_by": [{"field": "colour"}], "measures": [{"agg": "count"}]}}},
                        {"title": "y", "content": {"type": "saved_report", "report_id": "00000000-0000-0000-0000-000000000001"}}
                    ]),
                    json!({"from": "2026-12-01", "to": "2026-11-30"}),
                ),
            )
            .await;
        let mut errs = refused(r).await;
        errs.sort();
        assert_eq!(
            errs,
            vec![
                ("filters.to".into(), "before_from".into()),
                ("tiles[0].title".into(), "required".into()),
                (
                    "tiles[1].content.spec.group_by[0].field".into(),
                    "unknown".into()
                ),
                ("tiles[2].content.report_id".into(), "unknown".into()),
            ]
        );
        let many: Vec<Value> = (0..13)
            .map(|i| json!({"title": format!("t{i}"), "content": {"type": "forecast"}}))
            .collect();
        let r = app
            .post("/api/v1/dashboards", &t, bad(json!(many), json!({})))
            .await;
        assert_eq!(refused(r).await, vec![("tiles".into(), "too_many".into())]);
        let r = app
            .post(
                "/api/v1/dashboards",
                &t,
                json!({"name": "x", "tiles": [{"title": "x", "content": {"type": "pie"}}]}),
            )
            .await;
        assert!(r.status() == 400 || r.status() == 422, "{}", r.status());
        // Saved and shared with the company.
        let d = app
            .created(
                "/api/v1/dashboards",
                &t,
                json!({"name": "华南周报", "sharing": "company", "tiles": tiles, "filters": {"period": "all"}}),
            )
            .await;
        let id = d["id"].as_str().unwrap().to_owned();
        assert_eq!(d["version"], 1);
        let listed: Value = app
            .get("/api/v1/dashboards", &rep_t)
            .await
            .json()
            .await
            .unwrap();
        let items = listed["items"].as_array().unwrap();
        assert_eq!(items.len(), 4, "three built in and the shared one");
        assert_eq!(items[1]["id"], MY_NUMBERS);
        assert_eq!(items[1]["home"], true, "the default home");
        // The rep may open it, not change or delete it; nobody changes a built-in one.
        let body = json!({"name": "改", "sharing": "company", "tiles": tiles, "version": 1});
        for (who, path) in [
            (&rep_t, format!("/api/v1/dashboards/{id}")),
            (&t, format!("/api/v1/dashboards/{MANAGEMENT}")),
        ] {
            let r = app
                .req(Method::PUT, &path, who)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{path}");
        }
        assert_eq!(
            app.req(Method::DELETE, &format!("/api/v1/dashboards/{id}"), &rep_t)
                .send()
                .await
                .unwrap()
                .status(),
            403
        );
        let opened = open(&app, &rep_t, &id, "").await;
        assert_eq!(opened["tiles"][1]["data"]["report_id"], report["id"]);
        assert_eq!(opened["tiles"][3]["wide"], true);
        assert_eq!(
            opened["tiles"][2]["data"]["run_id"],
            Value::Null,
            "not graded yet"
        );
        // A stale change is refused; a fresh one lands.
        let stale = json!({"name": "改", "sharing": "company", "tiles": tiles, "version": 0});
        let r = app
            .req(Method::PUT, &format!("/api/v1/dashboards/{id}"), &t)
            .json(&stale)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 412);
        let r = app
            .req(Method::PUT, &format!("/api/v1/dashboards/{id}"), &t)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let changed: Value = r.json().await.unwrap();
        assert_eq!(
            (changed["name"].as_str(), changed["version"].as_i64()),
            (Some("改"), Some(2))
        );
        // On the rep's home page.
        let r = app
            .req(
                Method::PUT,
                &format!("/api/v1/dashboards/{id}/home"),
                &rep_t,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let (c, _) = app.session("rep2@dash.test", "password-123456").await;
        let home = c
            .get(app.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            home.contains("id=\"home-dashboard\"") && home.contains("改"),
            "{home}"
        );
        // Its tiles come after the page, from the panel it names.
        assert!(home.contains(&format!("data-panel=\"/dashboards/{id}/panel\"")));
        let panel = c
            .get(app.url(&format!("/dashboards/{id}/panel")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            panel.contains("id=\"tile-4\"") && panel.contains("预测") && !panel.contains("<html"),
            "{panel}"
        );
        // A saved report deleted: its tile says so, the rest still shows.
        let r = app
            .req(
                Method::DELETE,
                &format!("/api/v1/reports/{}", report["id"].as_str().unwrap()),
                &t,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let opened = open(&app, &rep_t, &id, "").await;
        assert_eq!(
            opened["tiles"][1]["data"],
            json!({"type": "error", "code": "not_found", "field": null})
        );
        assert_eq!(opened["tiles"][0]["data"]["type"], "report");
        let html = c
            .get(app.url(&format!("/dashboards/{id}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("该已存报表已删除或不再与您共享"), "{html}");
        // Deleted: the rep's home is "My numbers" again.
        let r = app
            .req(Method::DELETE, &format!("/api/v1/dashboards/{id}"), &t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let home = c
            .get(app.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(home.contains("我的业绩"), "{home}");
        assert_eq!(
            app.get(&format!("/api/v1/dashboards/{id}"), &rep_t)
                .await
                .status(),
            404
        );
    }
);

both!(
    dashboard_pages_copy_edit_and_narrow,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        ten_customers(&app, &t).await;
        let (c, s) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let csrf = s["csrf_token"].as_str().unwrap().to_owned();
        let page = |path: String, lang: &'static str| {
            let c = c.clone();
            let url = app.url(&path);
            async move {
                let r = c
                    .get(url)
                    .header("accept-language", lang)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        let (status, html) = page("/dashboards".into(), "zh-CN").await;
        assert_eq!(status, 200);
        assert!(
            html.contains("管理驾驶舱") && html.contains("我的业绩"),
            "{html}"
        );
        let today = shanghai_today();
        let from = today - Duration::days(55);
        let (status, html) = page(
            format!("/dashboards/{MANAGEMENT}?period=custom&from={from}&to={today}"),
            "zh-CN",
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            html.contains("<svg class=\"chart\"") && html.contains("按等级收入"),
            "{html}"
        );
        assert!(html.contains(&format!("{from} – {today}")));
        // A copy, then edited: the first tile removed, the forecast added at the end.
        let r = c
            .post(app.url("/dashboards"))
            .form(&[
                ("_csrf", csrf.as_str()),
                ("name", "我的驾驶舱"),
                ("copy_of", MANAGEMENT),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let at = r.url().path().to_owned();
        let html = r.text().await.unwrap();
        assert!(
            html.contains("id=\"tile-editor\"") && html.contains("按等级收入"),
            "{html}"
        );
        let id = at.trim_start_matches("/dashboards/").to_owned();
        let d: Value = app
            .get(&format!("/api/v1/dashboards/{id}"), &t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(d["tiles"].as_array().unwrap().len(), 8);
        assert_eq!(
            d["tiles"][1]["title"], "按等级收入",
            "titles in the copier's language"
        );
        let r = c
            .post(app.url(&at))
            .form(&[
                ("_csrf", csrf.as_str()),
                ("version", "1"),
                ("name", "我的驾驶舱"),
                ("sharing", "private"),
                ("tile.0.remove", "on"),
                ("tile.1.place", "9"),
                ("add", "forecast"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let d: Value = app
            .get(&format!("/api/v1/dashboards/{id}"), &t)
            .await
            .json()
            .await
            .unwrap();
        let titles: Vec<&str> = d["tiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles.len(), 8);
        assert_eq!(titles[0], "按地区收入");
        assert_eq!(titles[6], "按等级收入", "moved to the end");
        assert_eq!(titles[7], "管道与预测");
        // A stale form is sent back saying so.
        let r = c
            .post(app.url(&at))
            .form(&[("_csrf", csrf.as_str()), ("version", "1"), ("name", "旧")])
            .send()
            .await
            .unwrap();
        let html = r.text().await.unwrap();
        assert!(html.contains("id=\"dashboard-error\""), "{html}");
        // In English (the titles are the copier's words).
        let (status, html) = page(format!("/dashboards/{id}"), "en").await;
        assert_eq!(status, 200);
        assert!(
            html.contains("Show on my home page")
                && html.contains("Last 12 months")
                && html.contains("管道与预测"),
            "{html}"
        );
        let r = c
            .post(app.url(&format!("/dashboards/{id}/home")))
            .form(&[("_csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("我的驾驶舱") && html.contains("id=\"home-dashboard\""));
    }
);
