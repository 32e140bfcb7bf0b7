//! Price books and quotes: the price a customer gets (their negotiated book over their grade's
//! over everyone's, volume tiers, validity), quotes priced from them with discounts and VAT to
//! the fen, sent versions frozen against later price changes, one live version per deal, the
//! customer's answer (acceptance makes an order), numbering without repeats or gaps under
//! concurrency, and the permission edges.

use crate::both;
use crate::harness::{refused, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

/// The tenant's first pipeline (deals need one).
pub(crate) async fn pipeline(app: &TestApp) {
    app.created(
        "/api/v1/pipelines",
        &app.admin_token,
        json!({"name": "销售", "stages": [{"name": "接触"}, {"name": "赢单", "category": "won"}, {"name": "输单", "category": "lost"}]}),
    )
    .await;
}

/// Sends a quote as read (its version in `If-Match`).
pub(crate) async fn send(app: &TestApp, token: &str, q: &Value) -> reqwest::Response {
    app.req(
        Method::POST,
        &format!("/api/v1/quotes/{}/send", q["id"].as_str().unwrap()),
        token,
    )
    .header("if-match", format!("\"{}\"", q["version"]))
    .send()
    .await
    .unwrap()
}

both!(quotes_price_freeze_and_decide, |app: TestApp| async move {
    let t = app.admin_token.clone();
    pipeline(&app).await;
    let tea = app
        .created(
            "/api/v1/products",
            &t,
            json!({"sku": "TEA-1", "name": "龙井 250g", "list_price": 10_000, "tax_rate": 1300, "cost": 6_000}),
        )
        .await;
    app.created(
        "/api/v1/products",
        &t,
        json!({"sku": "CUP-1", "name": "茶杯", "list_price": 3_333, "tax_rate": 1300}),
    )
    .await;
    let r = app
        .post(
            "/api/v1/products",
            &t,
            json!({"sku": "BAD", "name": "x", "tax_rate": 10_001}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![("tax_rate".into(), "out_of_range".into())]
    );
    let acc = app
        .created(
            "/api/v1/accounts",
            &t,
            json!({"name": "杭州茶业", "grade": "a"}),
        )
        .await;
    assert_eq!(acc["grade"], "A", "a grade is stored upper-case");
    let r = app
        .post(
            "/api/v1/accounts",
            &t,
            json!({"name": "坏等级", "grade": "F"}),
        )
        .await;
    assert_eq!(refused(r).await, vec![("grade".into(), "invalid".into())]);
    let other = app
        .created("/api/v1/accounts", &t, json!({"name": "宁波茶庄"}))
        .await;

    // Books: everyone's with a volume tier, grade A's, and this customer's negotiated price
    // (valid only until yesterday at first).
    let r = app
        .post(
            "/api/v1/price-books",
            &t,
            json!({"name": "坏", "audience": "grade", "audience_value": "Z"}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![("audience_value".into(), "invalid".into())]
    );
    let r = app
        .post(
            "/api/v1/price-books",
            &t,
            json!({"name": "坏", "audience": "account", "valid_from": "2026-12-31", "valid_to": "2026-01-01",
                   "entries": [{"sku": "NOPE", "unit_price": 1}]}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![
            ("account_id".into(), "required".into()),
            ("entries[0].product_id".into(), "unknown".into()),
            ("valid_to".into(), "before_start".into())
        ]
    );
    app.created(
        "/api/v1/price-books",
        &t,
        json!({"name": "标准价", "entries": [
            {"product_id": tea["id"], "unit_price": 9_500},
            {"product_id": tea["id"], "min_quantity": 100, "unit_price": 8_000}]}),
    )
    .await;
    app.created(
        "/api/v1/price-books",
        &t,
        json!({"name": "A 级客户价", "audience": "grade", "audience_value": "A",
               "entries": [{"sku": "TEA-1", "unit_price": 9_000}]}),
    )
    .await;
    let today = chrono::Utc::now().date_naive();
    let yesterday = (today - chrono::Days::new(1)).to_string();
    let mine = app
        .created(
            "/api/v1/price-books",
            &t,
            json!({"name": "杭州茶业协议价", "audience": "account", "account_id": acc["id"],
                   "valid_to": yesterday, "entries": [{"sku": "TEA-1", "unit_price": 7_000}]}),
        )
        .await;
    let price = |account: &Value, q: i64| {
        let url = format!(
            "/api/v1/prices?product_id={}&account_id={}&quantity={q}",
            tea["id"].as_str().unwrap(),
            account.as_str().unwrap()
        );
        let app = &app;
        let t = t.clone();
        async move {
            let r = app.get(&url, &t).await;
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    // The expired negotiated price is passed over: grade A's applies, even above the general
    // volume tier; another customer gets everyone's price and its tier.
    let p = price(&acc["id"], 150).await;
    assert_eq!(
        (p["unit_price"].clone(), p["book_name"].clone()),
        (json!(9_000), json!("A 级客户价"))
    );
    assert_eq!(price(&other["id"], 1).await["unit_price"], 9_500);
    let p = price(&other["id"], 100).await;
    assert_eq!(
        (p["unit_price"].clone(), p["min_quantity"].clone()),
        (json!(8_000), json!(100))
    );
    let r = app
        .patch(
            &format!("/api/v1/price-books/{}", mine["id"].as_str().unwrap()),
            &t,
            json!({"version": mine["version"], "valid_to": null}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(price(&acc["id"], 150).await["unit_price"], 7_000);

    // A deal and its quote: lines priced from the books, a line discount, a discount on the
    // total spread over the lines, VAT per line.
    let deal = app
        .created(
            "/api/v1/opportunities",
            &t,
            json!({"name": "年度茶叶", "account_id": acc["id"], "amount": 1}),
        )
        .await;
    let q = app
        .created(
            "/api/v1/quotes",
            &t,
            json!({"opportunity_id": deal["id"], "discount_bp": 500, "valid_until": "2099-12-31",
                   "payment_terms": "月结 30 天", "lines": [
                {"product_id": tea["id"], "quantity": 3},
                {"sku": "CUP-1", "quantity": 3, "discount_bp": 1000},
                {"name": "上门品鉴", "unit_price": 50_000, "tax_rate": 600}]}),
        )
        .await;
    assert!(q["number"]
        .as_str()
        .unwrap()
        .starts_with(&format!("Q-{}-", today.format("%Y"))));
    assert_eq!(q["status"], "draft");
    let lines = q["lines"].as_array().unwrap();
    assert_eq!(lines[0]["unit_price"], 7_000);
    assert_eq!(lines[0]["book_name"], "杭州茶业协议价");
    assert_eq!(lines[1]["book_price"], 3_333, "no book: the list price");
    assert_eq!(lines[1]["tax_rate"], 1300, "VAT from the product");
    // 21,000 + (9,999 − 1,000) + 50,000 = 79,999; 5% off = 4,000 (3,999.95 rounded).
    let sum = |k: &str| lines.iter().map(|l| l[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(q["discount"], sum("discount"));
    assert_eq!(q["discount"].as_i64().unwrap() - 1_000, 4_000);
    assert_eq!(q["net"], 75_999);
    assert_eq!(q["total"], sum("total"));
    assert_eq!(q["tax"], sum("tax"));
    assert_eq!(
        q["total"].as_i64().unwrap(),
        q["net"].as_i64().unwrap() + q["tax"].as_i64().unwrap()
    );
    // A second quote for the deal is refused: one per deal.
    let r = app
        .post("/api/v1/quotes", &t, json!({"opportunity_id": deal["id"]}))
        .await;
    assert_eq!(
        refused(r).await,
        vec![("opportunity_id".into(), "taken".into())]
    );
    let r = app
        .patch(
            &format!("/api/v1/quotes/{}", q["id"].as_str().unwrap()),
            &t,
            json!({"version": q["version"], "lines": [{"product_id": tea["id"], "quantity": 0, "discount_bp": 10_001}]}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![
            ("lines[0].discount_bp".into(), "out_of_range".into()),
            ("lines[0].quantity".into(), "out_of_range".into())
        ]
    );

    // Sending freezes version 1 and sets the deal's amount to the total before VAT (as the
    // order its acceptance makes).
    let r = send(&app, &t, &q).await;
    assert_eq!(r.status(), 200);
    let q1: Value = r.json().await.unwrap();
    assert_eq!(
        (q1["status"].clone(), q1["sent_version"].clone()),
        (json!("sent"), json!(1))
    );
    let d: Value = app
        .get(
            &format!("/api/v1/opportunities/{}", deal["id"].as_str().unwrap()),
            &t,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["amount"], q1["net"]);
    assert!(q1["net"].as_i64() < q1["total"].as_i64());
    // Sending again with nothing changed is refused; a stale version is 412.
    assert_eq!(send(&app, &t, &q1).await.status(), 409);
    assert_eq!(send(&app, &t, &q).await.status(), 412);

    // A later price change touches neither the sent version nor the working copy.
    let r = app
        .patch(
            &format!("/api/v1/products/{}", tea["id"].as_str().unwrap()),
            &t,
            json!({"version": tea["version"], "name": "龙井 250g（新包装）", "list_price": 20_000}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let qurl = format!("/api/v1/quotes/{}", q["id"].as_str().unwrap());
    let vs: Value = app
        .get(&format!("{qurl}/versions"), &t)
        .await
        .json()
        .await
        .unwrap();
    let v1 = &vs["items"][0];
    assert_eq!(v1["snapshot"]["lines"][0]["name"], "龙井 250g");
    assert_eq!(v1["snapshot"]["customer"]["name"], "杭州茶业");
    assert_eq!(v1["snapshot"]["payment_terms"], "月结 30 天");
    assert_eq!(v1["total"], q1["total"]);

    // A revision (a bigger discount) is drafted while version 1 stays with the customer, then
    // sent as version 2, which supersedes it: an answer to version 1 is refused.
    let r = app
        .patch(
            &qurl,
            &t,
            json!({"version": q1["version"], "discount_bp": 1000}),
        )
        .await;
    let q2: Value = r.json().await.unwrap();
    assert_eq!(
        (q2["edited"].clone(), q2["sent_version"].clone()),
        (json!(true), json!(1))
    );
    assert!(q2["total"].as_i64() < q1["total"].as_i64());
    let q2: Value = send(&app, &t, &q2).await.json().await.unwrap();
    assert_eq!(q2["sent_version"], 2);
    let r = app
        .post(&format!("{qurl}/accept"), &t, json!({"version_no": 1}))
        .await;
    assert_eq!(
        refused(r).await,
        vec![("version_no".into(), "superseded".into())]
    );
    let vs: Value = app
        .get(&format!("{qurl}/versions"), &t)
        .await
        .json()
        .await
        .unwrap();
    let statuses: Vec<&str> = vs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["live", "superseded"]);

    // Declined, revised, sent again, accepted: the order is in the purchase history.
    let r = app
        .post(
            &format!("{qurl}/decline"),
            &t,
            json!({"version_no": 2, "reason": "价格偏高"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post(&format!("{qurl}/decline"), &t, json!({"version_no": 2}))
        .await;
    assert_eq!(
        refused(r).await,
        vec![("version_no".into(), "decided".into())]
    );
    let q3: Value = app.get(&qurl, &t).await.json().await.unwrap();
    assert_eq!(q3["status"], "declined");
    let q3: Value = app
        .patch(
            &qurl,
            &t,
            json!({"version": q3["version"], "discount_bp": 1200}),
        )
        .await
        .json()
        .await
        .unwrap();
    let q3: Value = send(&app, &t, &q3).await.json().await.unwrap();
    let r = app
        .post(&format!("{qurl}/accept"), &t, json!({"version_no": 3}))
        .await;
    assert_eq!(r.status(), 200);
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["status"], "accepted");
    let order: Value = app
        .get(
            &format!("/api/v1/orders/{}", done["order_id"].as_str().unwrap()),
            &t,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["account_id"], acc["id"]);
    assert_eq!(
        order["total"], q3["net"],
        "the order holds the amounts before VAT"
    );
    assert_eq!(order["lines"].as_array().unwrap().len(), 3);
    // Accepted is final.
    let r = app
        .patch(&qurl, &t, json!({"version": done["version"], "notes": "x"}))
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(
        app.req(Method::DELETE, &qurl, &t)
            .send()
            .await
            .unwrap()
            .status(),
        409,
        "a sent quote stays on record"
    );
});

both!(quote_numbers_never_repeat, |app: TestApp| async move {
    let t = app.admin_token.clone();
    pipeline(&app).await;
    let r = app
        .req(Method::PUT, "/api/v1/numbering/quotes", &t)
        .json(&json!({"pattern": "BJ-{YYYY}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused(r).await,
        vec![("pattern".into(), "needs_seq".into())]
    );
    let r = app
        .req(Method::PUT, "/api/v1/numbering/quotes", &t)
        .json(&json!({"pattern": "BJ{YY}-{SEQ:4}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let acc = app
        .created("/api/v1/accounts", &t, json!({"name": "并发客户"}))
        .await;
    let mut deals = Vec::new();
    for i in 0..50 {
        deals.push(
            app.created(
                "/api/v1/opportunities",
                &t,
                json!({"name": format!("单 {i}"), "account_id": acc["id"], "amount": 100}),
            )
            .await,
        );
    }
    // 50 quotes at once, and one refused in the middle (its transaction rolls back).
    let mut tasks = Vec::new();
    for (i, d) in deals.iter().enumerate() {
        let body = if i == 25 {
            json!({"opportunity_id": d["id"], "lines": [{"name": "x", "unit_price": -1}]})
        } else {
            json!({"opportunity_id": d["id"]})
        };
        let req = app.req(Method::POST, "/api/v1/quotes", &t).json(&body);
        tasks.push(tokio::spawn(async move { req.send().await.unwrap() }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        let r = task.await.unwrap();
        if r.status() == 201 {
            numbers.push(
                r.json::<Value>().await.unwrap()["number"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        } else {
            assert_eq!(r.status(), 422);
        }
    }
    let yy = chrono::Utc::now().format("%y").to_string();
    numbers.sort();
    let want: Vec<String> = (1..=49).map(|n| format!("BJ{yy}-{n:04}")).collect();
    assert_eq!(numbers, want, "49 numbers, no repeats, no gaps");
});

both!(quotes_follow_deal_permissions, |app: TestApp| async move {
    let t = app.admin_token.clone();
    pipeline(&app).await;
    let (rep, rep_token) = app.user_with_role("sales", "rep@quotes.test").await;
    let (_, other_token) = app.user_with_role("sales", "other@quotes.test").await;
    let acc = app
        .created(
            "/api/v1/accounts",
            &t,
            json!({"name": "权限客户", "owner_id": rep["id"]}),
        )
        .await;
    let deal = app
        .created(
            "/api/v1/opportunities",
            &rep_token,
            json!({"name": "代表的单", "account_id": acc["id"], "amount": 5_000}),
        )
        .await;
    // A rep cannot set prices; another rep without the team cannot quote on it.
    let r = app
        .post("/api/v1/price-books", &rep_token, json!({"name": "私价"}))
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .post(
            "/api/v1/quotes",
            &other_token,
            json!({"opportunity_id": deal["id"]}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        vec![("opportunity_id".into(), "unknown".into())]
    );
    let q = app
        .created(
            "/api/v1/quotes",
            &rep_token,
            json!({"opportunity_id": deal["id"]}),
        )
        .await;
    assert_eq!(
        q["lines"][0]["name"], "代表的单",
        "the deal's amount as the first line"
    );
    assert_eq!(q["total"], 5_000);
    let url = format!("/api/v1/quotes/{}", q["id"].as_str().unwrap());
    assert_eq!(app.get(&url, &other_token).await.status(), 404);
    let list: Value = app
        .get("/api/v1/quotes", &other_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    // The account's page lists what the customer was offered, and by whom.
    let (browser, _) = app
        .session("admin@acme.test", "correct horse battery")
        .await;
    let page = browser
        .get(app.url(&format!(
            "/customers/accounts/{}",
            acc["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let number = q["number"].as_str().unwrap();
    assert!(
        page.contains(number) && page.contains("rep@quotes.test"),
        "{number} on the account page"
    );
    // A quote never sent may be deleted.
    assert_eq!(
        app.req(Method::DELETE, &url, &rep_token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
});

both!(
    an_administrator_sets_the_quote_number_pattern_on_the_settings_page,
    |app: TestApp| async move {
        let (browser, _) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let page = browser
            .get(app.url("/settings"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("Q-{YYYY}-{SEQ:6}"), "the default is shown");
        let csrf = {
            let at = page.find("name=\"_csrf\" value=\"").unwrap() + 20;
            page[at..].split('"').next().unwrap().to_owned()
        };
        let post = |pattern: &str| {
            browser
                .post(app.url("/settings/numbering"))
                .form(&[("_csrf", csrf.as_str()), ("pattern", pattern)])
                .send()
        };
        let r = post("BJ-{YYYY}").await.unwrap();
        assert_eq!(r.status(), 422);
        assert!(
            r.text().await.unwrap().contains("{SEQ}"),
            "the refusal says what is missing"
        );
        let r = post("BJ{YY}{MM}-{SEQ:4}").await.unwrap();
        assert!(r.status().is_success());
        let now: Value = app
            .get("/api/v1/numbering/quotes", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(now["pattern"], "BJ{YY}{MM}-{SEQ:4}");
    }
);

both!(quotes_are_found_by_number, |app: TestApp| async move {
    let t = app.admin_token.clone();
    pipeline(&app).await;
    app.created(
        "/api/v1/products",
        &t,
        json!({"sku": "TEA-9", "name": "白茶", "list_price": 10_000}),
    )
    .await;
    let acc = app
        .created("/api/v1/accounts", &t, json!({"name": "搜索报价客户"}))
        .await;
    let deal = app
        .created(
            "/api/v1/opportunities",
            &t,
            json!({"name": "搜索单", "account_id": acc["id"], "amount": 1}),
        )
        .await;
    let q = app
        .created(
            "/api/v1/quotes",
            &t,
            json!({"opportunity_id": deal["id"], "lines": [{"sku": "TEA-9"}]}),
        )
        .await;
    let number = q["number"].as_str().unwrap().to_owned();
    let tail = number[number.len() - 6..].to_owned();
    for (typed, rank) in [
        (number.clone(), 0),
        (number.to_lowercase()[..6].to_owned(), 1),
        (tail.clone(), 3),
    ] {
        let found: Value = app
            .get(&format!("/api/v1/search?q={typed}"), &t)
            .await
            .json()
            .await
            .unwrap();
        let hit = found["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{found}"))
            .iter()
            .find(|h| h["kind"] == "quote")
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(
            (hit["id"].clone(), hit["rank"].clone()),
            (q["id"].clone(), json!(rank)),
            "{typed}"
        );
        assert_eq!(hit["detail"], "搜索报价客户");
    }
    // A rep who may not read the admin's quotes does not find it; a name finds no quote.
    let (_, rep_t) = app.user_with_role("sales", "rep@quote-search.test").await;
    let theirs: Value = app
        .get(&format!("/api/v1/search?q={number}"), &rep_t)
        .await
        .json()
        .await
        .unwrap();
    assert!(theirs["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["kind"] != "quote"));
    let by_name: Value = app
        .get("/api/v1/search?q=搜索", &t)
        .await
        .json()
        .await
        .unwrap();
    assert!(by_name["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["kind"] != "quote"));
});
