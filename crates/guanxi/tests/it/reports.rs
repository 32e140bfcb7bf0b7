//! The report builder: results against hand-written SQL and a hand count on both databases,
//! date buckets on the tenant's calendar, the viewer's record scope (a shared report too),
//! refused fields named, saved reports with versions, exports, and the pages.

use crate::both;
use crate::harness::{refused, TestApp};
use crate::value::ten_customers;
use chrono::{Datelike, Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

async fn run(app: &TestApp, t: &str, spec: Value) -> Value {
    let r = app.post("/api/v1/reports/run", t, spec).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// A result's rows as label → first measure.
fn by_label(result: &Value) -> BTreeMap<String, i64> {
    result["rows"]
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

both!(reports_match_hand_written_sql, |app: TestApp| async move {
    let t = app.admin_token.clone();
    ten_customers(&app, &t).await;
    // Orders by status: count and revenue, in yuan only (one order is in dollars).
    let r = run(
        &app,
        &t,
        json!({"entity": "orders", "group_by": [{"field": "status"}],
        "measures": [{"agg": "count"}, {"agg": "sum", "field": "total"}], "chart": "bar"}),
    )
    .await;
    assert_eq!(r["currency"], "CNY");
    let tenant: (uuid::Uuid,) = app
        .db
        .fetch_one(
            "SELECT tenant_id FROM users WHERE email = $1",
            guanxi_platform::args!["admin@acme.test"],
        )
        .await
        .unwrap();
    let want: Vec<(String, i64, i64)> = app
        .db
        .fetch_all(
            "SELECT status, COUNT(*), CAST(SUM(total) AS BIGINT) FROM orders
             WHERE tenant_id = $1 AND deleted_at IS NULL AND currency = 'CNY' GROUP BY status",
            guanxi_platform::args![tenant.0],
        )
        .await
        .unwrap();
    let got: Vec<(String, i64, i64)> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x[0].as_str().unwrap().to_owned(),
                x[1].as_i64().unwrap(),
                x[2].as_i64().unwrap(),
            )
        })
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    let mut want = want;
    want.sort();
    assert_eq!(sorted, want);
    // Largest count first when not grouped by date.
    assert!(got.windows(2).all(|w| w[0].1 >= w[1].1), "{got:?}");
    // Orders by month of the Shanghai calendar, counted by hand from the list.
    let r = run(
        &app,
        &t,
        json!({"entity": "orders", "group_by": [{"field": "ordered_at", "bucket": "month"}],
        "measures": [{"agg": "count"}]}),
    )
    .await;
    let list: Value = app
        .get("/api/v1/orders?limit=200", &t)
        .await
        .json()
        .await
        .unwrap();
    let mut months: BTreeMap<String, i64> = BTreeMap::new();
    for o in list["items"].as_array().unwrap() {
        let at: chrono::DateTime<Utc> = o["ordered_at"].as_str().unwrap().parse().unwrap();
        let local = at + Duration::hours(8);
        *months
            .entry(format!("{}-{:02}", local.year(), local.month()))
            .or_default() += 1;
    }
    assert_eq!(by_label(&r), months);
    let labels: Vec<&Value> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x[0])
        .collect();
    assert!(
        labels.windows(2).all(|w| w[0].as_str() < w[1].as_str()),
        "dates in order"
    );
    // Quarters and weeks (a Monday) too, the same on both databases.
    let r = run(
        &app,
        &t,
        json!({"entity": "orders", "group_by": [{"field": "ordered_at", "bucket": "quarter"}],
        "measures": [{"agg": "count"}]}),
    )
    .await;
    assert!(
        r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x[0].as_str().unwrap().contains("-Q")),
        "{r}"
    );
    let r = run(
        &app,
        &t,
        json!({"entity": "orders", "group_by": [{"field": "ordered_at", "bucket": "week"}],
        "measures": [{"agg": "count"}]}),
    )
    .await;
    for row in r["rows"].as_array().unwrap() {
        let d: chrono::NaiveDate = row[0].as_str().unwrap().parse().unwrap();
        assert_eq!(d.weekday(), chrono::Weekday::Mon, "{row}");
    }
    // Filters: a window of days, `in`, and distinct customers.
    let since = (Utc::now() + Duration::hours(8) - Duration::days(60)).date_naive();
    let r = run(&app, &t, json!({"entity": "orders",
        "filters": [{"field": "ordered_at", "op": "gte", "value": since.to_string()},
                    {"field": "status", "op": "in", "value": ["confirmed", "paid", "completed", "shipped"]}],
        "measures": [{"agg": "count"}, {"agg": "distinct", "field": "account"}]})).await;
    let start = since.and_hms_opt(0, 0, 0).unwrap().and_utc() - Duration::hours(8);
    let hand: (i64, i64) = app
        .db
        .fetch_one(
            "SELECT COUNT(*), COUNT(DISTINCT account_id) FROM orders WHERE tenant_id = $1 AND deleted_at IS NULL
             AND ordered_at >= $2 AND status IN ('confirmed', 'paid', 'completed', 'shipped')",
            guanxi_platform::args![tenant.0, start],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            r["rows"][0][0].as_i64().unwrap(),
            r["rows"][0][1].as_i64().unwrap()
        ),
        hand
    );
    // Order lines: quantity by product.
    let r = run(
        &app,
        &t,
        json!({"entity": "order_lines", "group_by": [{"field": "product"}],
        "measures": [{"agg": "sum", "field": "quantity"}, {"agg": "sum", "field": "margin"}]}),
    )
    .await;
    let lines: Vec<(String, i64)> = app
        .db
        .fetch_all(
            "SELECT COALESCE(p.name, l.name), CAST(SUM(l.quantity) AS BIGINT) FROM order_lines l
             JOIN orders o ON o.tenant_id = l.tenant_id AND o.id = l.order_id
             LEFT JOIN products p ON p.tenant_id = l.tenant_id AND p.id = l.product_id
             WHERE o.tenant_id = $1 AND o.deleted_at IS NULL AND o.currency = 'CNY' GROUP BY COALESCE(p.name, l.name)",
            guanxi_platform::args![tenant.0],
        )
        .await
        .unwrap();
    assert_eq!(by_label(&r), lines.into_iter().collect::<BTreeMap<_, _>>());
    // What makes no sense is refused, naming the field.
    let r = app
        .post(
            "/api/v1/reports/run",
            &t,
            json!({"entity": "orders", "group_by": [{"field": "nope"}],
        "measures": [{"agg": "sum", "field": "status"}, {"agg": "count", "field": "total"}]}),
        )
        .await;
    let fields = refused(r).await;
    for (f, code) in [
        ("group_by[0].field", "unknown"),
        ("measures[0].field", "not_numeric"),
        ("measures[1].field", "not_allowed"),
    ] {
        assert!(
            fields.contains(&(f.to_owned(), code.to_owned())),
            "{fields:?}"
        );
    }
    let r = app.post("/api/v1/reports/run", &t, json!({"entity": "orders", "group_by": [{"field": "status", "bucket": "month"}], "measures": [{"agg": "count"}]})).await;
    assert_eq!(
        refused(r).await,
        vec![("group_by[0].bucket".to_owned(), "not_a_date".to_owned())]
    );
    let r = app
        .post(
            "/api/v1/reports/run",
            &t,
            json!({"entity": "invoices", "measures": [{"agg": "count"}]}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![("entity".to_owned(), "unknown".to_owned())]
    );
});

both!(
    reports_count_only_what_the_viewer_may_read,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        let accounts = ten_customers(&app, &t).await;
        let (rep, rep_t) = app.user_with_role("sales", "rep@reports.test").await;
        // The rep owns two of the ten accounts (4 orders in yuan: 价值客户1 has two).
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
        let spec = json!({"entity": "orders", "group_by": [{"field": "account"}], "measures": [{"agg": "count"}]});
        let mine = by_label(&run(&app, &rep_t, spec.clone()).await);
        assert_eq!(
            mine,
            BTreeMap::from([("价值客户1".to_owned(), 2), ("价值客户2".to_owned(), 1)])
        );
        assert_eq!(by_label(&run(&app, &t, spec.clone()).await).len(), 10);
        // A report the admin shares with everyone: the rep opens it and sees their own figures.
        let r = app
            .post(
                "/api/v1/reports",
                &t,
                json!({"name": "按客户订单数", "sharing": "company", "spec": spec}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let shared: Value = r.json().await.unwrap();
        let id = shared["id"].as_str().unwrap();
        let ran: Value = app
            .get(&format!("/api/v1/reports/{id}/run"), &rep_t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(by_label(&ran), mine);
        // The rep may keep a private report but not share one, nor change the admin's.
        let r = app.post("/api/v1/reports", &rep_t, json!({"name": "我的", "sharing": "company", "spec": {"entity": "orders", "measures": [{"agg": "count"}]}})).await;
        assert_eq!(r.status(), 403);
        let r = app.post("/api/v1/reports", &rep_t, json!({"name": "我的", "spec": {"entity": "orders", "measures": [{"agg": "count"}]}})).await;
        assert_eq!(r.status(), 201);
        let private: Value = r.json().await.unwrap();
        let r = app
            .req(Method::PUT, &format!("/api/v1/reports/{id}"), &rep_t)
            .json(&json!({"name": "x", "version": 1, "spec": spec}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        // The admin does not see the rep's private report.
        assert_eq!(
            app.get(
                &format!("/api/v1/reports/{}", private["id"].as_str().unwrap()),
                &t
            )
            .await
            .status(),
            404
        );
        let listed: Value = app
            .get("/api/v1/reports", &rep_t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(listed["items"].as_array().unwrap().len(), 2);
        // A stale edit is refused; a fresh one lands.
        let r = app
            .req(Method::PUT, &format!("/api/v1/reports/{id}"), &t)
            .json(&json!({"name": "改名", "sharing": "company", "version": 0, "spec": spec}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 412);
        let r = app
            .req(Method::PUT, &format!("/api/v1/reports/{id}"), &t)
            .json(&json!({"name": "改名", "sharing": "company", "version": 1, "spec": spec}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // A field of a module the viewer may not read is refused by name.
        let r = app
            .post(
                "/api/v1/roles",
                &t,
                json!({"key": "order_clerk", "name": "Order clerk",
        "permissions": {"orders": {"read": "all"}, "analytics": {"read": "all"}}}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let (_, clerk_t) = app
            .user_with_role("order_clerk", "clerk@reports.test")
            .await;
        let r = app
            .post("/api/v1/reports/run", &clerk_t, spec.clone())
            .await;
        assert_eq!(
            refused(r).await,
            vec![("group_by[0].field".to_owned(), "forbidden_field".to_owned())]
        );
        let r = app.post("/api/v1/reports/run", &clerk_t, json!({"entity": "orders", "group_by": [{"field": "status"}], "measures": [{"agg": "count"}]})).await;
        assert_eq!(r.status(), 200);
        // Exports: CSV with a byte-order mark and the headings in the reader's language; XLSX.
        let csv = app.get(&format!("/api/v1/reports/{id}/export"), &t).await;
        assert_eq!(csv.status(), 200);
        let body = csv.bytes().await.unwrap();
        assert!(body.starts_with(&[0xEF, 0xBB, 0xBF]));
        let text = String::from_utf8_lossy(&body[3..]).to_string();
        assert!(
            text.lines().count() == 11 && text.contains("价值客户0"),
            "{text}"
        );
        let xlsx = app
            .get(&format!("/api/v1/reports/{id}/export?format=xlsx"), &t)
            .await;
        assert_eq!(xlsx.status(), 200);
        assert!(xlsx.bytes().await.unwrap().starts_with(b"PK"));
        assert_eq!(
            app.req(Method::DELETE, &format!("/api/v1/reports/{id}"), &rep_t)
                .send()
                .await
                .unwrap()
                .status(),
            403
        );
        assert_eq!(
            app.req(Method::DELETE, &format!("/api/v1/reports/{id}"), &t)
                .send()
                .await
                .unwrap()
                .status(),
            204
        );
    }
);

both!(
    report_pages_build_save_and_show,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        ten_customers(&app, &t).await;
        let (client, s) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let csrf = s["csrf_token"].as_str().unwrap().to_owned();
        let get = |path: String| {
            let c = client.clone();
            let url = app.url(&path);
            async move {
                let r = c.get(url).send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        let (status, html) = get("/reports".into()).await;
        assert_eq!(status, 200);
        assert!(html.contains("id=\"new-report\""));
        // The builder previews as it is changed: orders by month as a line.
        let q = "entity=orders&chart=line&g.field=ordered_at&g.bucket=month&m.agg=count&m.field=&m.agg=sum&m.field=total";
        let (status, html) = get(format!("/reports/new?{q}")).await;
        assert_eq!(status, 200);
        assert!(
            html.contains("id=\"report-chart\"")
                && html.contains("<polyline")
                && html.contains("id=\"report-result\""),
            "{html}"
        );
        assert!(html.contains("订单金额合计"), "{html}");
        // A field that makes no sense: said in words, no 500.
        let (status, html) =
            get("/reports/new?entity=orders&g.field=status&g.bucket=month&m.agg=count".into())
                .await;
        assert_eq!(status, 200);
        assert!(html.contains("不是日期字段"), "{html}");
        // Saved, then shown with its exports.
        let form: Vec<(&str, &str)> = vec![
            ("_csrf", csrf.as_str()),
            ("entity", "orders"),
            ("chart", "pie"),
            ("g.field", "status"),
            ("g.bucket", ""),
            ("m.agg", "count"),
            ("m.field", ""),
            ("name", "订单状态"),
            ("sharing", "private"),
        ];
        let r = client
            .post(app.url("/reports"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let url = r.url().to_string();
        let html = r.text().await.unwrap();
        assert!(
            url.contains("/reports/")
                && html.contains("订单状态")
                && html.contains("id=\"export-xlsx\""),
            "{html}"
        );
        assert!(
            html.contains("<path") || html.contains("<circle"),
            "a pie: {html}"
        );
        // Statuses in the reader's words on the page (the API keeps the codes).
        assert!(
            html.contains(">已取消<") && !html.contains(">cancelled<"),
            "{html}"
        );
        let (_, list) = get("/reports".into()).await;
        assert!(list.contains("订单状态"));
    }
);

both!(
    scheduled_reports_are_emailed_once,
    |app: TestApp| async move {
        let t = app.admin_token.clone();
        ten_customers(&app, &t).await;
        let spec = json!({"entity": "orders", "group_by": [{"field": "account"}], "measures": [{"agg": "sum", "field": "total"}]});
        let r = app
            .post(
                "/api/v1/reports",
                &t,
                json!({"name": "周报", "schedule": "weekly", "spec": spec}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            vec![("recipients".to_owned(), "required".to_owned())]
        );
        let r = app
            .post(
                "/api/v1/reports",
                &t,
                json!({"name": "周报", "schedule": "hourly", "recipients": ["nope"], "spec": spec}),
            )
            .await;
        let fields = refused(r).await;
        assert!(
            fields.iter().any(|(f, _)| f == "schedule")
                && fields.iter().any(|(f, _)| f == "recipients[0]"),
            "{fields:?}"
        );
        let r = app.post("/api/v1/reports", &t, json!({"name": "周报", "schedule": "weekly", "recipients": ["boss@acme.test"], "spec": spec})).await;
        assert_eq!(r.status(), 201);
        // Planned for the next Monday, 08:00 in Shanghai.
        let jobs: Value = app
            .get("/api/v1/jobs?kind=report_delivery&status=pending", &t)
            .await
            .json()
            .await
            .unwrap();
        let items = jobs["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{jobs}");
        let due: chrono::DateTime<Utc> = items[0]["run_at"].as_str().unwrap().parse().unwrap();
        let local = due + Duration::hours(8);
        assert_eq!(
            (local.weekday(), local.format("%H:%M").to_string()),
            (chrono::Weekday::Mon, "08:00".to_owned())
        );
        assert!(due > Utc::now() && due <= Utc::now() + Duration::days(7));
        // Nothing before it is due; at it, one mail with the table and the link, once.
        app.run_pending_jobs().await;
        assert_eq!(app.run_deliveries().await, 0);
        let before = app.smtp.received().len();
        app.run_jobs_at(due + Duration::minutes(1)).await;
        assert_eq!(app.run_deliveries().await, 1);
        assert_eq!(app.run_deliveries().await, 0, "once");
        app.run_jobs_at(due + Duration::minutes(2)).await;
        let sent = app.smtp.received();
        assert_eq!(sent.len(), before + 1);
        let mail = sent.last().unwrap();
        assert!(mail.contains("To: boss@acme.test"), "{mail}");
        let body: String = mail
            .split_once("\r\n\r\n")
            .or_else(|| mail.split_once("\n\n"))
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        use base64::Engine;
        let text = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap(),
        )
        .unwrap();
        // The table in the owner's language, in yuan, and the way back to the report.
        assert!(
            text.contains("价值客户0 | ¥5,000.00") && text.contains("/reports/"),
            "{text}"
        );
        // The next Monday's is planned, once.
        let jobs: Value = app
            .get("/api/v1/jobs?kind=report_delivery&status=pending", &t)
            .await
            .json()
            .await
            .unwrap();
        let next: Vec<&str> = jobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["run_at"].as_str().unwrap())
            .collect();
        assert_eq!(next.len(), 1);
        let next: chrono::DateTime<Utc> = next[0].parse().unwrap();
        assert_eq!(next - due, Duration::days(7));
    }
);
