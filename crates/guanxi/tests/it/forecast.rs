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
        let p1 = perf["reps"]
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
        let r = app.get("/api/v1/forecasts?period=2026-13", &t).await;
        assert_eq!(refused(r).await, vec![("period".into(), "invalid".into())]);
    }
);
