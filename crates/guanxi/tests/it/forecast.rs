//! The forecast: each rep's open deals expected to close in the period by forecast category,
//! the weighted pipeline and what was won, against targets that managers set; a rep sees their
//! own deals' forecast.

use crate::both;
use crate::harness::{refused, TestApp};
use chrono::Datelike;
use reqwest::Method;
use serde_json::{json, Value};

both!(
    the_forecast_sums_by_category_against_targets,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        let (r1, r1_t) = app.user_with_role("sales", "r1@forecast.test").await;
        let (r2, _) = app.user_with_role("sales", "r2@forecast.test").await;
        let p = app
            .created(
                "/api/v1/pipelines",
                &t,
                json!({"name": "销售", "stages": [
                {"name": "接触", "probability": 10},
                {"name": "方案", "probability": 50, "category": "best_case"},
                {"name": "谈判", "probability": 80, "category": "commit"},
                {"name": "赢单", "category": "won"}, {"name": "输单", "category": "lost"}]}),
            )
            .await;
        let stage = |n: usize| p["stages"][n]["id"].clone();
        // This quarter on the tenant's calendar (Asia/Shanghai: UTC+8, no daylight saving).
        let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
        let q = (today.month() - 1) / 3;
        let period = format!("{}-Q{}", today.year(), q + 1);
        let first = chrono::NaiveDate::from_ymd_opt(today.year(), q * 3 + 1, 1).unwrap();
        let in_q = first.to_string();
        let in_q_late = (first + chrono::Days::new(80)).to_string();
        let next_q = (first + chrono::Days::new(100)).to_string();
        let acc = app
            .created("/api/v1/accounts", &t, json!({"name": "预测客户"}))
            .await;
        let deal = |owner: &Value, stage_id: Value, amount: i64, close: &str| {
            json!({"name": "单", "account_id": acc["id"], "owner_id": owner["id"], "stage_id": stage_id,
               "amount": amount, "expected_close": close})
        };
        for body in [
            deal(&r1, stage(0), 100_000, &in_q),
            deal(&r1, stage(1), 200_000, &in_q_late),
            deal(&r1, stage(2), 400_000, &in_q_late),
            deal(&r1, stage(2), 999_999, &next_q),
            deal(&r1, stage(3), 300_000, &in_q),
            deal(&r1, stage(4), 777_777, &in_q),
            deal(&r2, stage(2), 500_000, &in_q),
        ] {
            app.created("/api/v1/opportunities", &t, body).await;
        }
        // Targets: managers set them; a rep may not; a bad period is named.
        let put = |token: &str, body: Value| {
            app.req(Method::PUT, "/api/v1/targets", token)
                .json(&body)
                .send()
        };
        assert_eq!(
            put(
                &r1_t,
                json!({"period": period, "user_id": r1["id"], "amount": 1})
            )
            .await
            .unwrap()
            .status(),
            403
        );
        let r = put(
            &t,
            json!({"period": "2026-Q5", "user_id": r1["id"], "team_id": r1["id"], "amount": -1}),
        )
        .await
        .unwrap();
        assert_eq!(
            refused(r).await,
            vec![
                ("amount".into(), "out_of_range".into()),
                ("period".into(), "invalid".into()),
                ("user_id".into(), "user_or_team".into())
            ]
        );
        let r = put(
            &t,
            json!({"period": period, "user_id": r1["id"], "amount": 2_000_000}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        let r = put(
            &t,
            json!({"period": period, "user_id": r1["id"], "amount": 1_000_000}),
        )
        .await
        .unwrap();
        assert_eq!(
            r.json::<Value>().await.unwrap()["version"],
            2,
            "set again, it replaces"
        );

        let f: Value = app
            .get(&format!("/api/v1/forecasts?period={period}"), &t)
            .await
            .json()
            .await
            .unwrap();
        let row = |f: &Value, who: &Value| {
            f["reps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["owner_id"] == who["id"])
                .cloned()
                .unwrap()
        };
        let one = row(&f, &r1);
        assert_eq!(
            (
                one["pipeline"].clone(),
                one["best_case"].clone(),
                one["commit"].clone(),
                one["won"].clone()
            ),
            (
                json!(100_000),
                json!(200_000),
                json!(400_000),
                json!(300_000)
            ),
            "next quarter's and the lost deal are left out"
        );
        assert_eq!(one["weighted"], 10_000 + 100_000 + 320_000);
        assert_eq!(one["target"], 1_000_000);
        assert_eq!(row(&f, &r2)["commit"], 500_000);
        assert_eq!(f["total"]["commit"], 900_000);
        // A rep reads the forecast of their own deals.
        let mine: Value = app
            .get(&format!("/api/v1/forecasts?period={period}"), &r1_t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(mine["reps"].as_array().unwrap().len(), 1);
        assert_eq!(mine["total"]["commit"], 400_000);
        // Performance: r1 won one and lost one this quarter.
        let perf: Value = app
            .get(&format!("/api/v1/performance?period={period}"), &t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(perf["by"], "owner");
        let p1 = perf["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["owner_id"] == r1["id"])
            .cloned()
            .unwrap();
        assert_eq!(
            (p1["won"].clone(), p1["lost"].clone()),
            (json!(1), json!(1))
        );
        assert_eq!(p1["win_rate_bp"], 5_000);
        assert_eq!(p1["won_amount"], 300_000);
        // By grade: the account's grade (unset here), the same deals.
        let by_grade: Value = app
            .get(&format!("/api/v1/performance?period={period}&by=grade"), &t)
            .await
            .json()
            .await
            .unwrap();
        let rows = by_grade["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (
                rows[0]["key"].clone(),
                rows[0]["won"].clone(),
                rows[0]["activities"].clone()
            ),
            (Value::Null, json!(1), Value::Null)
        );
        // By industry, with the cycle counted in the database: the won deal opened 10 days
        // and 5 hours before it closed counts 10 days.
        app.db
            .execute(
                "UPDATE accounts SET industry = '制造' WHERE name = '预测客户'",
                guanxi_platform::args![],
            )
            .await
            .unwrap();
        app.db
            .execute(
                "UPDATE opportunities SET created_at = $1 WHERE status = 'won' AND amount = 300000",
                guanxi_platform::args![chrono::Utc::now() - chrono::Duration::hours(245)],
            )
            .await
            .unwrap();
        let by_industry: Value = app
            .get(
                &format!("/api/v1/performance?period={period}&by=industry"),
                &t,
            )
            .await
            .json()
            .await
            .unwrap();
        let ind = &by_industry["rows"][0];
        assert_eq!(
            (
                ind["key"].clone(),
                ind["won"].clone(),
                ind["lost"].clone(),
                ind["average_cycle_days"].clone()
            ),
            (json!("制造"), json!(1), json!(1), json!(10))
        );
        // By product: deals without a quote are left out (none here has one); by team.
        for q in [
            "by=product",
            "by=owner&team_id=00000000-0000-0000-0000-000000000000",
        ] {
            let r = app
                .get(&format!("/api/v1/performance?period={period}&{q}"), &t)
                .await;
            assert_eq!(r.status(), 200, "{q}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["rows"], json!([]), "{q}");
        }
        let r = app
            .get(
                &format!("/api/v1/performance?period={period}&by=colour"),
                &t,
            )
            .await;
        assert_eq!(r.status(), 400, "an unknown grouping is refused");
        let r = app.get("/api/v1/forecasts?period=2026-13", &t).await;
        assert_eq!(refused(r).await, vec![("period".into(), "invalid".into())]);

        // Calls: a rep calls their own number; only a manager adjusts someone else's.
        let call = |token: String, body: Value| {
            let app = &app;
            async move { app.post("/api/v1/forecasts/calls", &token, body).await }
        };
        let r = call(
            r1_t.clone(),
            json!({"period": period, "user_id": r1["id"], "amount": 450_000, "note": "两单在谈"}),
        )
        .await;
        assert_eq!(r.status(), 201);
        let mine: Value = r.json().await.unwrap();
        assert_eq!(
            (
                mine["adjusted"].clone(),
                mine["commit"].clone(),
                mine["won"].clone()
            ),
            (json!(false), json!(400_000), json!(300_000)),
            "the forecast as it stood is kept"
        );
        let r = call(
            r1_t.clone(),
            json!({"period": period, "user_id": r2["id"], "amount": 1}),
        )
        .await;
        assert_eq!(r.status(), 403, "a rep may not call another rep's number");
        let r = call(
            t.clone(),
            json!({"period": period, "user_id": r1["id"], "amount": -5, "note": "x".repeat(2_001)}),
        )
        .await;
        assert_eq!(
            refused(r).await,
            vec![
                ("amount".into(), "out_of_range".into()),
                ("note".into(), "too_long".into())
            ]
        );
        let r = call(t.clone(), json!({"period": period, "user_id": r1["id"], "amount": 380_000, "note": "谈判那单推迟"})).await;
        assert_eq!(r.status(), 201);
        let f: Value = app
            .get(&format!("/api/v1/forecasts?period={period}"), &t)
            .await
            .json()
            .await
            .unwrap();
        let c = &row(&f, &r1)["call"];
        assert_eq!(
            (
                c["amount"].clone(),
                c["adjusted"].clone(),
                c["note"].clone()
            ),
            (json!(380_000), json!(true), json!("谈判那单推迟")),
            "the latest call is the rep's number"
        );
        assert_eq!(row(&f, &r2)["call"], Value::Null);
        // Every call is kept, newest first, against what has been won since; a rep sees their own.
        let calls: Value = app
            .get(&format!("/api/v1/forecasts/calls?period={period}"), &t)
            .await
            .json()
            .await
            .unwrap();
        let amounts: Vec<i64> = calls["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["amount"].as_i64().unwrap())
            .collect();
        assert_eq!(amounts, [380_000, 450_000]);
        assert!(calls["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["won_now"] == 300_000));
        let r2_sees: Value = app
            .get(
                &format!("/api/v1/forecasts/calls?period={period}"),
                &app.user_with_role("sales", "r3@forecast.test").await.1,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            r2_sees["items"],
            json!([]),
            "another rep sees none of r1's calls"
        );
    }
);

both!(
    the_funnel_counts_each_deal_up_to_the_furthest_stage,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        let p = app
            .created(
                "/api/v1/pipelines",
                &t,
                json!({"name": "漏斗", "stages": [
            {"name": "接触"}, {"name": "方案", "category": "best_case"},
            {"name": "谈判", "category": "commit"},
            {"name": "赢单", "category": "won"}, {"name": "输单", "category": "lost"}]}),
            )
            .await;
        let stage = |n: usize| p["stages"][n]["id"].clone();
        let acc = app
            .created("/api/v1/accounts", &t, json!({"name": "漏斗客户"}))
            .await;
        let mut deals = Vec::new();
        for i in 0..6 {
            deals.push(
            app.created(
                "/api/v1/opportunities",
                &t,
                json!({"name": format!("单{i}"), "account_id": acc["id"], "stage_id": stage(0), "amount": 1_000, "expected_close": "2026-12-31", "close_reason": "价格"}),
            )
            .await,
        );
        }
        // Moves: 1 and 2 to 方案; 3 to 谈判 then lost; 4 won straight from 接触; 5 to 谈判 and
        // back to 接触 (it still reached 谈判).
        let moves: [(usize, &[usize]); 5] =
            [(1, &[1]), (2, &[1]), (3, &[2, 4]), (4, &[3]), (5, &[2, 0])];
        for (d, path) in moves {
            let url = format!("/api/v1/opportunities/{}", deals[d]["id"].as_str().unwrap());
            for s in path {
                let now: Value = app.get(&url, &t).await.json().await.unwrap();
                let r = app
                    .patch(
                        &url,
                        &t,
                        json!({"version": now["version"], "stage_id": stage(*s)}),
                    )
                    .await;
                assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
            }
        }
        let f: Value = app
            .get(
                &format!("/api/v1/pipelines/{}/funnel", p["id"].as_str().unwrap()),
                &t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            (
                f["created"].clone(),
                f["open"].clone(),
                f["won"].clone(),
                f["lost"].clone()
            ),
            (json!(6), json!(4), json!(1), json!(1))
        );
        let steps: Vec<(String, i64, Value)> = f["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_owned(),
                    s["deals"].as_i64().unwrap(),
                    s["conversion_bp"].clone(),
                )
            })
            .collect();
        assert_eq!(
            steps,
            vec![
                ("接触".to_owned(), 6, Value::Null),
                ("方案".to_owned(), 5, json!(8_333)),
                ("谈判".to_owned(), 3, json!(6_000)),
                ("赢单".to_owned(), 1, json!(3_333)),
            ]
        );
        assert_eq!(f["steps"][1]["amount"], 5_000);
        // Another quarter's cohort is empty; a bad period and an unknown pipeline are refused.
        let empty: Value = app
            .get(
                &format!(
                    "/api/v1/pipelines/{}/funnel?period=2020-Q1",
                    p["id"].as_str().unwrap()
                ),
                &t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(empty["created"], 0);
        let r = app
            .get(
                &format!(
                    "/api/v1/pipelines/{}/funnel?period=2020-Q9",
                    p["id"].as_str().unwrap()
                ),
                &t,
            )
            .await;
        assert_eq!(refused(r).await, vec![("period".into(), "invalid".into())]);
        let r = app
            .get(
                &format!("/api/v1/pipelines/{}/funnel", uuid::Uuid::new_v4()),
                &t,
            )
            .await;
        assert_eq!(r.status(), 404);
    }
);
