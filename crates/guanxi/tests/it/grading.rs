//! 4V grading: a scheme refused when it makes no sense, evaluations queued and run in the
//! background, the 1:4:10:4:1 split with its tie rule, grades given to the accounts (timeline,
//! notification), the same day never evaluated twice, a crashed evaluation taken over, the
//! quarterly scheduler, scope, and the pages — on both databases.

use crate::both;
use crate::harness::{refused, TestApp};
use crate::value::ten_customers;
use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};

fn only(dimension: &str, metric: &str) -> Value {
    let part = |d: &str| {
        if d == dimension {
            json!({"weight": 100, "inputs": [{"metric": metric, "weight": 1}]})
        } else {
            json!({"weight": 0, "inputs": []})
        }
    };
    json!({"period_days": 365, "quarterly": false, "economic": part("economic"),
           "relational": part("relational"), "functional": part("functional"),
           "development": part("development")})
}

async fn put_scheme(
    app: &TestApp,
    t: &str,
    party: &str,
    version: i64,
    scheme: Value,
) -> reqwest::Response {
    app.req(Method::PUT, "/api/v1/grading/scheme", t)
        .json(&json!({"party": party, "version": version, "scheme": scheme}))
        .send()
        .await
        .unwrap()
}

async fn json_of(app: &TestApp, path: &str, t: &str) -> Value {
    let r = app.get(path, t).await;
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// The grades of a run's customers, by account name.
async fn grades(app: &TestApp, t: &str, run: &Value) -> Vec<(String, String, bool)> {
    let page = json_of(
        app,
        &format!(
            "/api/v1/grading/runs/{}/customers?limit=500",
            run["id"].as_str().unwrap()
        ),
        t,
    )
    .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap().to_owned(),
                x["grade"].as_str().unwrap().to_owned(),
                x["tied"].as_bool().unwrap(),
            )
        })
        .collect()
}

both!(
    schemes_that_make_no_sense_are_refused,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        let v = json_of(&app, "/api/v1/grading/scheme", &t).await;
        assert_eq!(v["version"], 0, "the default until saved");
        assert_eq!(v["scheme"]["economic"]["weight"], 40);
        let mut bad = only("economic", "revenue");
        bad["economic"]["weight"] = json!(0);
        bad["functional"]["inputs"] = json!([{"metric": "breadth", "weight": -2}]);
        bad["development"]["inputs"] = json!([{"metric": "custom.nope", "weight": 1}]);
        let fields = refused(put_scheme(&app, &t, "accounts", 0, bad).await).await;
        for f in [
            "economic.weight",
            "relational.weight",
            "functional.inputs[0].weight",
            "development.inputs[0].metric",
        ] {
            assert!(fields.iter().any(|(k, _)| k == f), "{f} in {fields:?}");
        }
        // What a person cannot have, and a text field, cannot be inputs.
        app.created(
            "/api/v1/custom-fields",
            &t,
            json!({"entity": "contacts", "key": "memo", "kind": "text", "label": "备注"}),
        )
        .await;
        let mut wrong = only("relational", "contacts");
        wrong["functional"] =
            json!({"weight": 10, "inputs": [{"metric": "custom.memo", "weight": 1}]});
        let fields = refused(put_scheme(&app, &t, "contacts", 0, wrong).await).await;
        assert!(
            fields.contains(&("relational.inputs[0].metric".into(), "not_for_party".into())),
            "{fields:?}"
        );
        assert!(
            fields.contains(&("functional.inputs[0].metric".into(), "not_scorable".into())),
            "{fields:?}"
        );
        // Saved, then a stale version is refused.
        let r = put_scheme(&app, &t, "accounts", 0, only("economic", "revenue")).await;
        assert_eq!(r.status(), 200);
        let saved: Value = r.json().await.unwrap();
        assert_eq!(saved["version"], 1);
        let r = put_scheme(&app, &t, "accounts", 0, only("economic", "orders")).await;
        assert_eq!(r.status(), 412);
        let r = put_scheme(&app, &t, "accounts", 1, only("economic", "orders")).await;
        assert_eq!(r.status(), 200);
        // A rep neither configures nor reads the company's evaluations.
        let (_, rep_t) = app.user_with_role("sales", "rep@grading.test").await;
        assert_eq!(
            put_scheme(&app, &rep_t, "accounts", 2, only("economic", "revenue"))
                .await
                .status(),
            403
        );
        assert_eq!(app.get("/api/v1/grading/runs", &rep_t).await.status(), 403);
        let r = app
            .post("/api/v1/grading/runs", &t, json!({"as_of": "2999-01-01"}))
            .await;
        assert_eq!(
            refused(r).await,
            vec![("as_of".to_owned(), "future".to_owned())]
        );
    }
);

both!(
    evaluations_split_one_four_ten_four_one,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        let accounts = ten_customers(&app, &t).await;
        // Graded by revenue alone: 10 customers give A 1, B 2, C 5, D 2, E 0 (the half place of
        // A and of E goes to A).
        assert_eq!(
            put_scheme(&app, &t, "accounts", 0, only("economic", "revenue"))
                .await
                .status(),
            200
        );
        let r = app.post("/api/v1/grading/runs", &t, json!({})).await;
        assert_eq!(r.status(), 202);
        let run: Value = r.json().await.unwrap();
        assert_eq!(run["status"], "queued");
        // Asked again for the same day: the same run, not a second.
        let again = app.post("/api/v1/grading/runs", &t, json!({})).await;
        assert_eq!(again.status(), 200);
        assert_eq!(again.json::<Value>().await.unwrap()["id"], run["id"]);
        assert_eq!(app.run_grading().await, 1);
        assert_eq!(app.run_grading().await, 0, "nothing left");
        let id = run["id"].as_str().unwrap();
        let done = json_of(&app, &format!("/api/v1/grading/runs/{id}"), &t).await;
        assert_eq!(done["status"], "done", "{done}");
        assert_eq!(done["counts"], json!([1, 2, 5, 2, 0]));
        assert_eq!(
            (done["done"].clone(), done["total"].clone()),
            (json!(10), json!(10))
        );
        assert_eq!(done["changed"], 10, "all graded for the first time");
        assert_eq!(done["applied"], true);
        let g = grades(&app, &t, &done).await;
        let expect = ["A", "B", "B", "C", "C", "C", "C", "C", "D", "D"];
        for (i, (name, grade, tied)) in g.iter().enumerate() {
            assert_eq!(
                (name.as_str(), grade.as_str(), *tied),
                (format!("价值客户{i}").as_str(), expect[i], false)
            );
        }
        let moves = json_of(&app, &format!("/api/v1/grading/runs/{id}/moves"), &t).await;
        assert_eq!(
            moves["items"],
            json!([{"from": null, "to": "A", "customers": 1}, {"from": null, "to": "B", "customers": 2},
                   {"from": null, "to": "C", "customers": 5}, {"from": null, "to": "D", "customers": 2}])
        );
        let page = json_of(
            &app,
            &format!("/api/v1/grading/runs/{id}/customers?grade=A"),
            &t,
        )
        .await;
        let top = &page["items"][0];
        assert_eq!(top["rank"], 1);
        assert_eq!(top["total"], 10_000);
        assert_eq!(top["inputs"][0]["metric"], "revenue");
        assert_eq!(
            top["inputs"][0]["value"], 500_000,
            "why: the revenue measured"
        );
        // The accounts carry their grade now (price books follow it), and say so on the timeline.
        let a0 = json_of(
            &app,
            &format!("/api/v1/accounts/{}", accounts[0]["id"].as_str().unwrap()),
            &t,
        )
        .await;
        assert_eq!(a0["grade"], "A");
        assert_eq!(a0["version"], 2, "a grade change is a new version");
        let tl = json_of(
            &app,
            &format!(
                "/api/v1/accounts/{}/timeline",
                accounts[0]["id"].as_str().unwrap()
            ),
            &t,
        )
        .await;
        let event = tl["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "grade")
            .cloned()
            .expect("grade event");
        assert_eq!(event["detail"]["grade"], "A");
        let hist = json_of(
            &app,
            &format!(
                "/api/v1/grading/history?account_id={}",
                accounts[9]["id"].as_str().unwrap()
            ),
            &t,
        )
        .await;
        assert_eq!(hist["items"][0]["grade"], "D");
        // Graded by order count: 价值客户0 (3 orders) A, 价值客户1 (2) B, and eight tied at one
        // order — one more B, five C, two D — ordered by the earlier first purchase (价值客户9
        // bought 400 days ago, then 8, 7, … 2 most recently). As of yesterday: an older day than
        // the latest evaluation, so the accounts keep today's grades.
        assert_eq!(
            put_scheme(&app, &t, "accounts", 1, only("economic", "orders"))
                .await
                .status(),
            200
        );
        // (Yesterday on the tenant's calendar, Asia/Shanghai.)
        let yesterday = (Utc::now() + Duration::hours(8) - Duration::days(1)).date_naive();
        let r = app
            .post("/api/v1/grading/runs", &t, json!({"as_of": yesterday}))
            .await;
        assert_eq!(r.status(), 202);
        let older: Value = r.json().await.unwrap();
        app.run_grading().await;
        let older = json_of(
            &app,
            &format!("/api/v1/grading/runs/{}", older["id"].as_str().unwrap()),
            &t,
        )
        .await;
        assert_eq!(older["applied"], false);
        let g = grades(&app, &t, &older).await;
        let order: Vec<(&str, &str, bool)> = g
            .iter()
            .map(|(n, g, t)| (n.as_str(), g.as_str(), *t))
            .collect();
        assert_eq!(
            order,
            vec![
                ("价值客户0", "A", false),
                ("价值客户1", "B", false),
                ("价值客户9", "B", true),
                ("价值客户8", "C", true),
                ("价值客户7", "C", true),
                ("价值客户6", "C", true),
                ("价值客户5", "C", true),
                ("价值客户4", "C", true),
                ("价值客户3", "D", true),
                ("价值客户2", "D", true),
            ]
        );
        // Against the grades before it (today's): 价值客户9 went from D to B, 价值客户2 from B to D.
        let moves = json_of(
            &app,
            &format!(
                "/api/v1/grading/runs/{}/moves",
                older["id"].as_str().unwrap()
            ),
            &t,
        )
        .await;
        let moved = |from: &str, to: &str| {
            moves["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["from"] == from && m["to"] == to)
                .map_or(0, |m| m["customers"].as_i64().unwrap())
        };
        assert_eq!(
            (moved("D", "B"), moved("B", "D"), moved("A", "A")),
            (1, 1, 1),
            "{moves}"
        );
        let a9 = json_of(
            &app,
            &format!("/api/v1/accounts/{}", accounts[9]["id"].as_str().unwrap()),
            &t,
        )
        .await;
        assert_eq!(
            a9["grade"], "D",
            "an older evaluation does not change today's grade"
        );
        // The owner (the admin made them, the system graded them) heard once, about the first.
        let notes = json_of(&app, "/api/v1/notifications", &t).await;
        let heard: Vec<&Value> = notes["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["kind"] == "grades_changed")
            .collect();
        assert_eq!(heard.len(), 1, "{notes}");
        assert_eq!(heard[0]["params"]["count"], 10);
    }
);

// Each measure a customer's grade is made of, as counted by hand from the orders: revenue,
// orders and margin of the year, tenure since the first purchase ever, products bought and
// growth (the second half-year's revenue less the first's) — dollars, drafts, cancellations
// and the order before the year never counted where they should not be.
both!(
    each_input_is_measured_as_by_hand,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        ten_customers(&app, &t).await;
        let part = |metrics: &[&str]| json!({"weight": 1, "inputs": metrics.iter().map(|m| json!({"metric": m, "weight": 1})).collect::<Vec<_>>()});
        let scheme = json!({"period_days": 365, "quarterly": false,
        "economic": part(&["revenue", "orders", "margin"]), "relational": part(&["tenure"]),
        "functional": part(&["breadth"]), "development": part(&["growth"])});
        assert_eq!(
            put_scheme(&app, &t, "accounts", 0, scheme).await.status(),
            200
        );
        let r = app.post("/api/v1/grading/runs", &t, json!({})).await;
        assert_eq!(r.status(), 202);
        let run: Value = r.json().await.unwrap();
        assert_eq!(app.run_grading().await, 1);
        let page = json_of(
            &app,
            &format!(
                "/api/v1/grading/runs/{}/customers?limit=500",
                run["id"].as_str().unwrap()
            ),
            &t,
        )
        .await;
        let inputs = |name: &str| -> std::collections::BTreeMap<String, i64> {
            let x = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == name)
                .unwrap();
            x["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    (
                        i["metric"].as_str().unwrap().to_owned(),
                        i["value"].as_i64().unwrap(),
                    )
                })
                .collect()
        };
        let m = |pairs: &[(&str, i64)]| -> std::collections::BTreeMap<String, i64> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        };
        // 1,000 + 3,000 + 1,000 yuan, the last the product costing 600 of its 1,000; all in the
        // year's second half; first bought 100 days ago.
        assert_eq!(
            inputs("价值客户0"),
            m(&[
                ("revenue", 500_000),
                ("orders", 3),
                ("margin", 440_000),
                ("tenure", 100),
                ("breadth", 1),
                ("growth", 500_000)
            ])
        );
        assert_eq!(
            inputs("价值客户1"),
            m(&[
                ("revenue", 250_000),
                ("orders", 2),
                ("margin", 250_000),
                ("tenure", 60),
                ("breadth", 0),
                ("growth", 250_000)
            ])
        );
        // 20 yuan 300 days ago (the first half-year); a purchase 400 days ago makes the tenure,
        // not the year's figures; dollars, a draft and a cancellation count nowhere.
        assert_eq!(
            inputs("价值客户9"),
            m(&[
                ("revenue", 2_000),
                ("orders", 1),
                ("margin", 2_000),
                ("tenure", 400),
                ("breadth", 0),
                ("growth", -2_000)
            ])
        );
    }
);

both!(
    one_run_a_day_and_a_crashed_run_is_taken_over,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        ten_customers(&app, &t).await;
        // Eight requests at once for the same day: one run.
        let posts = (0..8)
            .map(|_| {
                app.req(Method::POST, "/api/v1/grading/runs", &t)
                    .json(&json!({}))
                    .send()
            })
            .collect();
        let mut created = 0;
        let mut ids = std::collections::BTreeSet::new();
        for r in crate::concurrency::futures_join(posts).await {
            let status = r.status().as_u16();
            assert!(status == 202 || status == 200, "{status}");
            created += usize::from(status == 202);
            ids.insert(
                r.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        assert_eq!((created, ids.len()), (1, 1));
        let id = ids.into_iter().next().unwrap();
        // A grader died mid-run: its claim is stale, and a partial snapshot was left.
        let uid: uuid::Uuid = id.parse().unwrap();
        let stale = Utc::now() - Duration::minutes(10);
        app.db
        .execute(
            "UPDATE grading_runs SET status = 'running', attempt = 1, done = 1, updated_at = $1 WHERE id = $2",
            guanxi_platform::args![stale, uid],
        )
        .await
        .unwrap();
        // Two graders at once: one takes it over, the snapshot holds each customer once.
        let (a, b) = tokio::join!(app.run_grading(), app.run_grading());
        assert_eq!(a + b, 1);
        let run = json_of(&app, &format!("/api/v1/grading/runs/{id}"), &t).await;
        assert_eq!(run["status"], "done");
        assert_eq!(
            run["counts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_i64().unwrap())
                .sum::<i64>(),
            10
        );
        let page = json_of(
            &app,
            &format!("/api/v1/grading/runs/{id}/customers?limit=500"),
            &t,
        )
        .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 10);
    }
);

both!(
    the_scheduler_evaluates_each_quarter,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        ten_customers(&app, &t).await;
        let mut scheme = only("economic", "revenue");
        scheme["quarterly"] = json!(true);
        assert_eq!(
            put_scheme(&app, &t, "accounts", 0, scheme).await.status(),
            200
        );
        // Nothing before the quarter ends.
        app.run_pending_jobs().await;
        assert_eq!(
            json_of(&app, "/api/v1/grading/runs", &t).await["items"],
            json!([])
        );
        // Two days into the next quarter (the job waits for the end of the quarter's last day).
        let today = Utc::now().date_naive();
        let end = guanxi_analytics::grading_runs::quarter_end(today);
        let after = (end + Duration::days(2))
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        let s = app.run_jobs_at(after).await;
        assert!(s.done >= 1);
        let runs = json_of(&app, "/api/v1/grading/runs", &t).await;
        let items = runs["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{runs}");
        assert_eq!(items[0]["as_of"], end.to_string());
        // The next quarter is planned, once: running the queue again at the same time adds nothing.
        app.run_jobs_at(after).await;
        assert_eq!(
            json_of(&app, "/api/v1/grading/runs", &t).await["items"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let next_end = guanxi_analytics::grading_runs::quarter_end(end + Duration::days(1));
        let jobs = json_of(&app, "/api/v1/jobs?kind=grading_quarter&status=pending", &t).await;
        let keys: Vec<&str> = jobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|j| j["dedupe_key"].as_str())
            .collect();
        assert_eq!(keys, vec![format!("accounts:{next_end}").as_str()]);
        assert_eq!(app.run_grading().await, 1);
    }
);

both!(grading_pages_in_both_languages, |app: TestApp| async move {
    let t = app.admin_token.clone();
    let accounts = ten_customers(&app, &t).await;
    let (client, s) = app
        .session("admin@acme.test", "correct horse battery")
        .await;
    let page = client.get(app.url("/value/grades")).send().await.unwrap();
    let status = page.status();
    let html = page.text().await.unwrap();
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("id=\"scheme-form\"") && html.contains("id=\"evaluate\""),
        "{html}"
    );
    assert!(html.contains("经济价值") && html.contains("1:4:10:4:1"));
    let csrf = s["csrf_token"].as_str().unwrap().to_owned();
    // A negative weight: back with the field named.
    let form = [
        ("_csrf", csrf.as_str()),
        ("party", "accounts"),
        ("version", "0"),
        ("period_days", "365"),
        ("economic.weight", "-1"),
        ("economic.metric", "revenue"),
        ("economic.iweight", "1"),
        ("economic.scores", ""),
        ("relational.weight", "0"),
        ("functional.weight", "0"),
        ("development.weight", "0"),
    ];
    let r = client
        .post(app.url("/value/grades/scheme"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("经济价值权重 不能为负数"), "{html}");
    let mut ok = form.to_vec();
    ok[4] = ("economic.weight", "100");
    let r = client
        .post(app.url("/value/grades/scheme"))
        .form(&ok)
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("id=\"scheme-saved\""));
    let r = client
        .post(app.url("/value/grades/runs"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("party", "accounts"),
            ("as_of", ""),
        ])
        .send()
        .await
        .unwrap();
    let url = r.url().to_string();
    let html = r.text().await.unwrap();
    assert!(
        html.contains("http-equiv=\"refresh\"") && html.contains("data-status=\"queued\""),
        "{html}"
    );
    app.run_grading().await;
    let html = client.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        html.contains("id=\"split-chart\"") && html.contains("价值客户0"),
        "{html}"
    );
    // The customer's page: grade, scores and why.
    let html = client
        .get(app.url(&format!(
            "/customers/accounts/{}",
            accounts[0]["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"grade-4v\""), "{html}");
    assert!(html.contains("评分依据"), "{html}");
});

both!(
    snapshots_kept_before_the_upgrade_read_the_same,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        ten_customers(&app, &t).await;
        // The accounts' default scheme: nine inputs over four dimensions.
        let run: Value = app
            .post("/api/v1/grading/runs", &t, json!({}))
            .await
            .json()
            .await
            .unwrap();
        app.run_grading().await;
        let id = run["id"].as_str().unwrap();
        let path = format!("/api/v1/grading/runs/{id}/customers?limit=500");
        let page = json_of(&app, &path, &t).await;
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 10);
        assert_eq!(items[0]["inputs"].as_array().unwrap().len(), 9);
        assert_eq!(items[0]["inputs"][8]["metric"], "pipeline");
        // A snapshot written before inputs were kept as [value, score]: each input whole, and
        // values of every JSON kind (a yes/no field, a select's option, nothing measured).
        let mut before = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let mut inputs = item["inputs"].clone();
            inputs[0]["value"] = [json!(true), json!("战略客户"), Value::Null][i % 3].clone();
            app.db
                .execute(
                    "UPDATE grading_scores SET inputs = $1 WHERE run_id = $2 AND customer_id = $3",
                    guanxi_platform::args![
                        inputs.clone(),
                        uuid::Uuid::parse_str(id).unwrap(),
                        uuid::Uuid::parse_str(item["customer_id"].as_str().unwrap()).unwrap()
                    ],
                )
                .await
                .unwrap();
            before.push(inputs);
        }
        app.db
            .execute(
                "DELETE FROM schema_migrations WHERE version = 5007",
                guanxi_platform::args![],
            )
            .await
            .unwrap();
        guanxi_platform::migrate::run(&app.db, guanxi_web::MIGRATIONS)
            .await
            .unwrap();
        let after = json_of(&app, &path, &t).await;
        let after: Vec<Value> = after["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["inputs"].clone())
            .collect();
        assert_eq!(after, before);
        // Kept as pairs: no names repeated in the rows.
        let (kept,): (String,) = app
            .db
            .fetch_one(
                "SELECT CAST(inputs AS TEXT) FROM grading_scores WHERE run_id = $1 ORDER BY rank LIMIT 1",
                guanxi_platform::args![uuid::Uuid::parse_str(id).unwrap()],
            )
            .await
            .unwrap();
        let kept: Value = serde_json::from_str(&kept).unwrap();
        assert_eq!(kept.as_array().unwrap().len(), 9);
        assert!(
            kept[1].is_array() && !kept.to_string().contains("economic"),
            "{kept}"
        );
    }
);
