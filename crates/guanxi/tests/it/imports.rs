//! Imports beyond contacts' CSV: accounts and orders from CSV, XLSX exports imported back,
//! vCards in, a mapping chosen by hand, and an orders file run twice without doubling.

use crate::both;
use crate::harness::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

async fn import(app: &TestApp, path: &str, body: Vec<u8>) -> Value {
    let r = app
        .req(Method::POST, path, &app.admin_token)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
}

async fn items(app: &TestApp, path: &str) -> Vec<Value> {
    let v: Value = app.get(path, &app.admin_token).await.json().await.unwrap();
    v["items"].as_array().unwrap().clone()
}

both!(accounts_and_orders_from_csv, |app: TestApp| async move {
    let accounts = "公司名称,统一社会信用代码,行业,省份,城市,上级客户,标签\n\
        华东贸易集团,,贸易,上海市,上海市,,重点\n\
        华东贸易杭州分公司,91330100799655058B,贸易,浙江省,杭州市,华东贸易集团,\"重点,分公司\"\n\
        坏代码公司,91330100799655058C,,,,,\n\
        孤儿公司,,,,,不存在的集团,\n";
    let r = import(
        &app,
        "/api/v1/imports/accounts",
        accounts.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(
        (r["created"].as_u64(), r["failed"].as_u64()),
        (Some(2), Some(2)),
        "{r}"
    );
    let reasons: Vec<(String, String)> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["column"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "统一社会信用代码".to_owned(),
                "invalid_credit_code".to_owned()
            ),
            ("上级客户".to_owned(), "unknown".to_owned())
        ]
    );
    let branch = &items(&app, "/api/v1/accounts?q=%E6%9D%AD%E5%B7%9E").await[0];
    assert_eq!(branch["parent_name"], "华东贸易集团");
    assert_eq!(branch["tags"], json!(["重点", "分公司"]));
    // Again: the same companies are found (by credit code or name) and skipped.
    let r = import(
        &app,
        "/api/v1/imports/accounts",
        accounts.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(r["skipped"], 2, "{r}");

    // Orders: one row per line; the lines of an order on consecutive rows.
    let orders = "订单号,渠道,下单时间,客户,商品,数量,单价\n\
        ERP-001,erp,2026-11-01 10:00,华东贸易集团,龙井 250g,2,198.00\n\
        ERP-001,erp,2026-11-01 10:00,华东贸易集团,紫砂壶,1,680\n\
        ERP-002,erp,2026/11/02,华东贸易杭州分公司,龙井 250g,10,180\n\
        ERP-003,erp,2026-11-03,没有这个客户,龙井 250g,1,1\n";
    let r = import(&app, "/api/v1/imports/orders", orders.as_bytes().to_vec()).await;
    assert_eq!(
        (
            r["rows"].as_u64(),
            r["lines"].as_u64(),
            r["created"].as_u64(),
            r["failed"].as_u64()
        ),
        (Some(3), Some(4), Some(2), Some(1)),
        "{r}"
    );
    assert_eq!(r["errors"][0]["column"], "客户");
    let list = items(&app, "/api/v1/orders?sort=number").await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["number"], "ERP-001");
    assert_eq!(list[0]["total"], 39_600 + 68_000, "two lines, in fen");
    assert_eq!(
        list[0]["ordered_at"], "2026-11-01T02:00:00Z",
        "read as China time"
    );
    // The same file again doubles nothing; a corrected line updates its order.
    let r = import(&app, "/api/v1/imports/orders", orders.as_bytes().to_vec()).await;
    assert_eq!(
        (r["created"].as_u64(), r["skipped"].as_u64()),
        (Some(0), Some(2)),
        "{r}"
    );
    let fixed = orders.replace("紫砂壶,1,680", "紫砂壶,2,680");
    let r = import(&app, "/api/v1/imports/orders", fixed.into_bytes()).await;
    assert_eq!(r["updated"], 1, "{r}");
    assert_eq!(items(&app, "/api/v1/orders?sort=number").await.len(), 2);
    // A server's imports leave its SQLite writer the page cache it had and its checkpoints to
    // the checkpointer (a bulk load may grow a command's cache to 1 GiB and its checkpoint
    // interval to 64 MB, never a server's).
    if app.db.backend() == guanxi_platform::db::Backend::Sqlite && crate::harness::pool_size() > 2 {
        let kib: i64 = app
            .db
            .scalar("PRAGMA cache_size", guanxi_platform::args![])
            .await
            .unwrap();
        assert_eq!(kib, -8 * 1024, "the writer's cache, in KiB");
        let pages: i64 = app
            .db
            .scalar("PRAGMA wal_autocheckpoint", guanxi_platform::args![])
            .await
            .unwrap();
        assert_eq!(pages, 0, "the writer never checkpoints inside a commit");
    }
});

/// The counts an import reports.
fn tallies(r: &Value) -> [Option<u64>; 5] {
    ["rows", "created", "updated", "skipped", "failed"].map(|k| r[k].as_u64())
}

// Accounts and orders go in transactions of 200: a refused one mid-batch leaves the rest of its
// batch, a dry run reports exactly what the import then does (a parent named by an earlier row
// of the same file included), and a re-run doubles nothing.
both!(
    accounts_and_orders_across_batches,
    |app: TestApp| async move {
        let mut accounts = String::from("公司名称,上级客户,统一社会信用代码\n集团总部,,\n");
        for i in 0..450 {
            let code = if i == 250 { "91330100799655058C" } else { "" };
            accounts.push_str(&format!("分公司{i:03},集团总部,{code}\n"));
        }
        let dry = import(
            &app,
            "/api/v1/imports/accounts?dry_run=true",
            accounts.clone().into_bytes(),
        )
        .await;
        assert_eq!(
            tallies(&dry),
            [Some(451), Some(450), Some(0), Some(0), Some(1)],
            "{dry}"
        );
        assert!(
            items(&app, "/api/v1/accounts?q=%E5%88%86%E5%85%AC%E5%8F%B8")
                .await
                .is_empty()
        );
        let real = import(
            &app,
            "/api/v1/imports/accounts",
            accounts.clone().into_bytes(),
        )
        .await;
        assert_eq!(tallies(&real), tallies(&dry), "{real}");
        assert_eq!(real["errors"], dry["errors"]);
        assert_eq!(real["errors"][0]["row"], 253, "{real}");
        let count = |table: &'static str| {
            let db = app.db.clone();
            async move {
                let n: i64 = db
                    .scalar(
                        &format!("SELECT COUNT(*) FROM {table} WHERE deleted_at IS NULL"),
                        guanxi_platform::args![],
                    )
                    .await
                    .unwrap();
                n
            }
        };
        assert_eq!(count("accounts").await, 450);

        let mut orders = String::from("订单号,下单时间,客户,商品,数量,单价\n");
        for i in 0..450 {
            let (company, qty) = match i {
                // A company that is not there, in the middle of the second batch.
                300 => ("没有这个客户".to_owned(), 1),
                // 分公司250 was refused above.
                250 => ("集团总部".to_owned(), 1),
                _ => (format!("分公司{i:03}"), 1 + i % 3),
            };
            orders.push_str(&format!(
                "SO-{i:04},2026-11-01,{company},龙井 250g,{qty},198\n"
            ));
            orders.push_str(&format!("SO-{i:04},2026-11-01,{company},紫砂壶,1,680\n"));
        }
        let dry = import(
            &app,
            "/api/v1/imports/orders?dry_run=true",
            orders.clone().into_bytes(),
        )
        .await;
        let real = import(&app, "/api/v1/imports/orders", orders.clone().into_bytes()).await;
        assert_eq!(
            tallies(&real),
            [Some(450), Some(449), Some(0), Some(0), Some(1)],
            "{real}"
        );
        assert_eq!(tallies(&dry), tallies(&real), "{dry}");
        assert_eq!(
            real["errors"][0]["row"], 602,
            "the refused order's first row: {real}"
        );
        let again = import(&app, "/api/v1/imports/orders", orders.into_bytes()).await;
        assert_eq!(
            tallies(&again),
            [Some(450), Some(0), Some(0), Some(449), Some(1)],
            "{again}"
        );
        assert_eq!(count("orders").await, 449);
    }
);

both!(xlsx_and_vcard_round_trips, |app: TestApp| async move {
    let t = &app.admin_token;
    for body in [
        json!({"name": "张三丰", "phone": "138 0013 8000", "email": "zsf@wudang.cn", "title": "掌门", "tags": ["VIP"]}),
        json!({"name": "Jane Smith", "country": "GB", "phone": "+44 20 7946 0958", "birthday": "1990-05-04"}),
    ] {
        let r = app.post("/api/v1/contacts", t, body).await;
        assert_eq!(r.status(), 201);
    }
    // XLSX out…
    let r = app.get("/api/v1/contacts/export.xlsx", t).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("spreadsheetml"));
    let xlsx = r.bytes().await.unwrap().to_vec();
    assert_eq!(&xlsx[..2], b"PK", "a zip container");
    // …and back in, as new contacts (dry run first: it counts, saves nothing).
    let r = import(
        &app,
        "/api/v1/imports/contacts?format=xlsx&duplicates=create&dry_run=true",
        xlsx.clone(),
    )
    .await;
    assert_eq!(r["created"], 2, "{r}");
    assert_eq!(items(&app, "/api/v1/contacts").await.len(), 2);
    let r = import(
        &app,
        "/api/v1/imports/contacts?format=xlsx&duplicates=skip",
        xlsx,
    )
    .await;
    assert_eq!(r["skipped"], 2, "the same people are found: {r}");

    // vCard out and in, under another tenant.
    let vcf = app
        .get("/api/v1/contacts/export.vcf", t)
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let (_, other) = app.signup("另一家", "boss@other.example").await;
    let r = app
        .req(
            Method::POST,
            "/api/v1/imports/contacts?format=vcard",
            &other,
        )
        .body(vcf)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["created"], 2, "{v}");
    let theirs: Value = app
        .get("/api/v1/contacts?q=zsf", &other)
        .await
        .json()
        .await
        .unwrap();
    let c = &theirs["items"][0];
    assert_eq!(c["name"], "张三丰");
    assert_eq!(c["phone_e164"], "+8613800138000");
    assert_eq!(c["title"], "掌门");

    // A column the guess cannot place is mapped by hand (or ignored).
    let csv = "客户全称,手机号码,内部编号\n令狐冲,13900139000,X-1\n";
    let r = import(
        &app,
        "/api/v1/imports/contacts?map.%E5%AE%A2%E6%88%B7%E5%85%A8%E7%A7%B0=name&map.%E5%86%85%E9%83%A8%E7%BC%96%E5%8F%B7=",
        csv.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(r["created"], 1, "{r}");
    assert_eq!(r["columns"][0]["field"], "name");
    assert!(r["columns"][2]["field"].is_null());
    let r = app
        .req(
            Method::POST,
            "/api/v1/imports/contacts?map.%E5%AE%A2%E6%88%B7%E5%85%A8%E7%A7%B0=salary",
            t,
        )
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    // Not a workbook: refused, named.
    let r = app
        .req(Method::POST, "/api/v1/imports/accounts?format=xlsx", t)
        .body("name\nx\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["code"], "not_xlsx");
});

/// A multipart form body with text fields and one file.
fn multipart(fields: &[(&str, &str)], file: (&str, &[u8])) -> (String, Vec<u8>) {
    let boundary = "guanxi-test-boundary-7f3a";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: text/csv\r\n\r\n",
            file.0
        )
        .as_bytes(),
    );
    body.extend(file.1);
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// An import's page once the import has finished (it says so: an event, polled, bounded).
async fn finished(c: reqwest::Client, url: String) -> String {
    let mut html = String::new();
    for _ in 0..400 {
        html = c.get(&url).send().await.unwrap().text().await.unwrap();
        if !html.contains("data-status=\"running\"") {
            return html;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the import did not finish: {html}");
}

both!(
    page_imports_run_in_the_background_and_survive_a_restart,
    |app: TestApp| async move {
        let (c, s) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let csrf = s["csrf_token"].as_str().unwrap().to_owned();
        let csv =
            "姓名,手机,公司\n岳不群,13600001111,华山派\n宁中则,13600002222,华山派\n坏号码,12,\n";
        let (ctype, body) = multipart(
            &[
                ("_csrf", &csrf),
                ("target", "contacts"),
                ("duplicates", "skip"),
            ],
            ("华山.csv", csv.as_bytes()),
        );
        let r = c
            .post(app.url("/customers/import"))
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        // Followed to the import's own page.
        let page = r.url().path().to_owned();
        assert!(page.starts_with("/customers/imports/"), "{page}");
        let id = page.rsplit('/').next().unwrap().to_owned();
        let html = finished(c.clone(), app.url(&page)).await;
        assert!(html.contains("data-status=\"done\""), "{html}");
        assert!(html.contains("value=\"100\""), "a full progress bar");
        assert!(
            html.contains("import-errors") && html.contains("手机"),
            "{html}"
        );
        // The refused rows download as a file to fix and import again: the file's own
        // headers, the row as it was, and why.
        let csv = c
            .get(app.url(&format!("/customers/imports/{id}/errors.csv")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
        assert_eq!(lines.len(), 2, "{csv}");
        assert!(lines[0].starts_with("姓名,手机,公司,"), "{csv}");
        assert!(
            lines[1].starts_with("坏号码,12,,") && lines[1].contains("手机"),
            "{csv}"
        );

        // A crash mid-import: the next start marks it interrupted; running it again from its page
        // doubles nothing (the two people are found and skipped).
        app.db
            .execute(
                "UPDATE imports SET status = 'running'",
                guanxi_platform::args![],
            )
            .await
            .unwrap();
        let cut = guanxi_customers::import_runs::mark_interrupted(&app.db)
            .await
            .unwrap();
        assert_eq!(cut, 1);
        let html = c
            .get(app.url(&page))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("id=\"rerun\""), "{html}");
        let r = c
            .post(app.url(&format!("/customers/imports/{id}/rerun")))
            .form(&[("_csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let html = finished(c.clone(), app.url(&page)).await;
        assert!(html.contains("data-status=\"done\""), "{html}");
        let people: Value = app
            .get("/api/v1/contacts?q=1360000", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            people["items"].as_array().unwrap().len(),
            2,
            "nothing doubled"
        );
        // Another user of the company cannot see someone else's import.
        app.user_with_role("sales", "rep9@acme.test").await;
        let (rc, _) = app.session("rep9@acme.test", "password-123456").await;
        let r = rc.get(app.url(&page)).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
);

both!(
    scale_generator_writes_what_the_services_would,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let me: Value = app.get("/api/v1/me", t).await.json().await.unwrap();
        let ctx = guanxi_platform::auth::ctx_for_user(
            &app.db,
            uuid::Uuid::parse_str(&app.tenant_id).unwrap(),
            uuid::Uuid::parse_str(me["user"]["id"].as_str().unwrap()).unwrap(),
        )
        .await
        .unwrap();
        let mut seen = 0;
        let stats = guanxi_customers::demo::scale(&app.db, &ctx, 1_234, 7, |n| seen = n)
            .await
            .unwrap();
        assert_eq!((stats.accounts, stats.contacts, seen), (123, 1_234, 1_234));
        // Orders, their lines and activities are written as counted, each order's total the
        // sum of its lines.
        let tenant = uuid::Uuid::parse_str(&app.tenant_id).unwrap();
        let count = |table: &'static str| {
            let db = app.db.clone();
            async move {
                db.scalar::<i64>(
                    &format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1"),
                    guanxi_platform::args![tenant],
                )
                .await
                .unwrap() as usize
            }
        };
        assert_eq!(count("orders").await, stats.orders);
        // Written as a shop's orders are, oldest first (numbered in that order), not buyer by
        // buyer: a period's orders lie together, a buyer's apart.
        let placed: Vec<(String, chrono::DateTime<chrono::Utc>)> = app
            .db
            .fetch_all(
                "SELECT number, ordered_at FROM orders WHERE tenant_id = $1 ORDER BY number",
                guanxi_platform::args![tenant],
            )
            .await
            .unwrap();
        assert!(placed.windows(2).all(|w| w[0].1 <= w[1].1), "oldest first");
        // The generated rows are counted in their search eras, and a full era opens the next.
        let (counted, newest): (i64, i64) = app
            .db
            .fetch_one(
                "SELECT CAST(SUM(size) AS BIGINT), MAX(era) FROM search_eras WHERE tenant_id = $1 AND tbl = 'contacts'",
                guanxi_platform::args![tenant],
            )
            .await
            .unwrap();
        assert_eq!(counted, 1_234);
        assert!(newest >= 1, "{newest}");
        assert_eq!(count("order_lines").await, stats.order_lines);
        assert_eq!(count("activities").await, stats.activities);
        assert!(
            stats.orders > 2_000 && stats.order_lines >= 3 * stats.orders,
            "about three orders a contact, 1–6 lines each: {stats:?}"
        );
        let wrong: i64 = app
            .db
            .scalar(
                "SELECT COUNT(*) FROM orders o WHERE o.tenant_id = $1 AND o.total <> (SELECT SUM(l.amount)
                 FROM order_lines l WHERE l.tenant_id = o.tenant_id AND l.order_id = o.id)",
                guanxi_platform::args![tenant],
            )
            .await
            .unwrap();
        assert_eq!(wrong, 0);
        if app.db.backend() == guanxi_platform::db::Backend::Postgres {
            // The load merged its search-index entries (searches do not read through a pending
            // list), and ordinary writes keep that list short.
            let pending: i64 = app
                .db
                .scalar(
                    "SELECT CAST(COALESCE(SUM(gin_clean_pending_list(i.oid)), 0) AS BIGINT) FROM pg_class i
                     WHERE i.relname IN ('contacts_grams', 'accounts_grams', 'contacts_era_grams', 'accounts_era_grams') AND i.relnamespace = current_schema()::text::regnamespace",
                    guanxi_platform::args![],
                )
                .await
                .unwrap();
            assert_eq!(pending, 0, "pages left pending");
            let limit: String = app
                .db
                .scalar(
                    "SELECT current_setting('gin_pending_list_limit')",
                    guanxi_platform::args![],
                )
                .await
                .unwrap();
            assert_eq!(limit, "256kB");
        }
        // Revenue per customer is Pareto-shaped: the top fifth of contacts bring most of it.
        let per: Vec<(uuid::Uuid, i64)> = app
            .db
            .fetch_all(
                "SELECT contact_id, CAST(SUM(total) AS BIGINT) FROM orders WHERE tenant_id = $1 GROUP BY contact_id",
                guanxi_platform::args![tenant],
            )
            .await
            .unwrap();
        let mut revenue: Vec<i64> = per.iter().map(|(_, r)| *r).collect();
        revenue.sort_unstable_by(|a, b| b.cmp(a));
        let all: i64 = revenue.iter().sum();
        let top: i64 = revenue.iter().take(1_234 / 5).sum();
        assert!(top * 10 >= all * 6, "top 20% of contacts: {top} of {all}");
        assert!(per.len() < 1_234, "some contacts never bought");
        // A generated order reads back through the API with its lines.
        let list: Value = app
            .get("/api/v1/orders?limit=1", t)
            .await
            .json()
            .await
            .unwrap();
        let id = list["items"][0]["id"].as_str().unwrap();
        let order: Value = app
            .get(&format!("/api/v1/orders/{id}"), t)
            .await
            .json()
            .await
            .unwrap();
        let sum: i64 = order["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["amount"].as_i64().unwrap())
            .sum();
        assert_eq!(order["total"].as_i64(), Some(sum), "{order}");
        // Generated rows read back through the API like any other: search by pinyin initials and
        // by phone digits finds them; subsidiaries hang under parents.
        let page: Value = app
            .get("/api/v1/contacts?limit=1", t)
            .await
            .json()
            .await
            .unwrap();
        let c = &page["items"][0];
        let phone = c["phone_e164"].as_str().unwrap()[3..].to_owned();
        let found: Value = app
            .get(&format!("/api/v1/search?q={phone}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert!(
            found["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["id"] == c["id"]),
            "{found}"
        );
        let email_user = c["email"]
            .as_str()
            .unwrap()
            .split('.')
            .next()
            .unwrap()
            .to_owned();
        let found: Value = app
            .get(&format!("/api/v1/contacts?q={email_user}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert!(!found["items"].as_array().unwrap().is_empty());
        // Rows from before the search index get their tokens at the next start (backfill),
        // and are found again.
        app.db
            .execute("UPDATE contacts SET grams = NULL", vec![])
            .await
            .unwrap();
        let gone: Value = app
            .get(&format!("/api/v1/contacts?q={phone}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            gone["items"],
            json!([]),
            "the index decides which rows are candidates"
        );
        let filled = guanxi_customers::search::backfill_grams(&app.db)
            .await
            .unwrap();
        assert_eq!(filled, 1_234);
        let back: Value = app
            .get(&format!("/api/v1/contacts?q={phone}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(back["items"][0]["id"], c["id"]);
        let children: i64 = app
            .db
            .scalar(
                "SELECT COUNT(*) FROM accounts WHERE parent_id IS NOT NULL",
                vec![],
            )
            .await
            .unwrap();
        assert!(children >= 10, "{children}");
    }
);

both!(
    contacts_import_finds_duplicates_in_the_file_and_stored,
    |app: TestApp| async move {
        // Duplicates inside one file: the same phone in another format, the same email in
        // another case, the same name at the same company — each found before it is written.
        let file = "姓名,手机,邮箱,公司,职位\n\
            王五,13900000001,,,工程师\n\
            王五二,139 0000 0001,,,经理\n\
            赵六,,zhao@dup.test,,\n\
            赵六六,,ZHAO@dup.test,,总监\n\
            钱七,,,七星公司,\n\
            钱七,,,七星公司,会计\n\
            钱七,,,,出纳\n";
        let r = import(&app, "/api/v1/imports/contacts", file.as_bytes().to_vec()).await;
        assert_eq!(
            (r["created"].as_u64(), r["skipped"].as_u64()),
            (Some(4), Some(3)),
            "{r}"
        );
        // A same name without the company is not a likely duplicate: two 钱七 stored.
        assert_eq!(items(&app, "/api/v1/contacts?q=钱七").await.len(), 2);

        // `update` fills the stored contact, and a row repeated in the file fills the one the
        // file just created.
        let file = "姓名,手机,职位\n王五,+86 139 0000 0001,总工\n孙八,13700000002,甲\n孙八,13700000002,乙\n";
        let r = import(
            &app,
            "/api/v1/imports/contacts?duplicates=update",
            file.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(
            (r["created"].as_u64(), r["updated"].as_u64()),
            (Some(1), Some(2)),
            "{r}"
        );
        let wang = items(&app, "/api/v1/contacts?q=13900000001").await;
        assert_eq!(wang.len(), 1);
        assert_eq!(wang[0]["title"], "总工");
        assert_eq!(wang[0]["name"], "王五", "update keeps the stored name");
        let sun = items(&app, "/api/v1/contacts?q=13700000002").await;
        assert_eq!(sun.len(), 1);
        assert_eq!(sun[0]["title"], "乙");

        // Every created contact has its audit event with the stored record.
        let audit: Value = app
            .get(
                "/api/v1/audit-events?entity=contacts&action=create",
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        let events = audit["items"].as_array().unwrap();
        assert_eq!(events.len(), 5, "{audit}");
        assert!(events
            .iter()
            .any(|e| e["after"]["name"] == "孙八" && e["after"]["version"] == 1));
    }
);

/// An XLSX whose one sheet inflates a thousand times (20 MB of one letter in a cell).
fn xlsx_bomb() -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut buf);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    z.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
    z.write_all(b"<worksheet><sheetData><row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>")
        .unwrap();
    let chunk = vec![b'A'; 1 << 20];
    for _ in 0..20 {
        z.write_all(&chunk).unwrap();
    }
    z.write_all(b"</t></is></c></row></sheetData></worksheet>")
        .unwrap();
    z.finish().unwrap();
    buf.into_inner()
}

// Every import is bounded: a decompression bomb is refused before anything holds it (a dry run
// too), a cell past Excel's 32,767 characters and a row of more than 1,024 columns are row
// errors, the other rows go in.
both!(imports_are_bounded, |app: TestApp| async move {
    let t = &app.admin_token;
    let bomb = xlsx_bomb();
    assert!(bomb.len() < 200_000, "{} bytes", bomb.len());
    for path in [
        "/api/v1/imports/contacts?format=xlsx&dry_run=true",
        "/api/v1/imports/accounts?format=xlsx",
        "/api/v1/imports/orders?format=xlsx",
    ] {
        let r = app
            .req(Method::POST, path, t)
            .body(bomb.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{path}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["errors"][0]["field"], "file");
        assert_eq!(p["errors"][0]["code"], "xlsx_too_large");
    }
    let long = "长".repeat(40_000);
    let wide = vec!["x"; 1_100].join(",");
    let csv =
        format!("姓名,手机\n张三,13800138000\n{long},13900139000\n{wide}\n李四,13700137000\n");
    let r = import(&app, "/api/v1/imports/contacts", csv.into_bytes()).await;
    assert_eq!(r["created"], 2, "{r}");
    let codes: Vec<&str> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().or(e["code"].as_str()).unwrap_or(""))
        .collect();
    assert!(
        codes
            .iter()
            .any(|c| c.contains("cell_too_long") || c.contains("32,767")),
        "{r}"
    );
    assert!(
        codes
            .iter()
            .any(|c| c.contains("too_many_columns") || c.contains("1,024")),
        "{r}"
    );
});

// Exports: a bad filter or sort is an ordinary error response (it once dropped the connection
// inside the streamed body); a cell a spreadsheet would run as a formula is written as text and
// imports back as it was.
both!(
    exports_refuse_before_streaming_and_write_no_formulas,
    |app: TestApp| async move {
        let t = &app.admin_token;
        for path in [
            "/api/v1/contacts/export.csv?sort=nonsense",
            "/api/v1/accounts/export.csv?sort=nonsense",
            "/api/v1/contacts/export.vcf?sort=nonsense",
            "/api/v1/contacts/export.xlsx?sort=nonsense",
        ] {
            let r = app.get(path, t).await;
            assert!(r.status().is_client_error(), "{path}: {}", r.status());
            let p: Value = r.json().await.unwrap();
            assert!(
                p["type"]
                    .as_str()
                    .unwrap()
                    .starts_with("urn:guanxi:problem:"),
                "{p}"
            );
        }
        let evil = "=HYPERLINK(\"http://evil.example\",\"点我\")";
        let r = app
            .post(
                "/api/v1/contacts",
                t,
                json!({"name": evil, "phone": "+86 138 0013 8000", "tags": ["-vip"]}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let csv = app
            .get("/api/v1/contacts/export.csv", t)
            .await
            .text()
            .await
            .unwrap();
        assert!(
            !csv.contains(",=HYPERLINK") && !csv.contains("\"=HYPERLINK"),
            "{csv}"
        );
        assert!(csv.contains("'=HYPERLINK"), "{csv}");
        // Imported back into a fresh tenant, the name is the one typed.
        let (_, other) = app.signup("Other 公司", "other@other.test").await;
        let r = app
            .req(Method::POST, "/api/v1/imports/contacts", &other)
            .body(csv)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let list: Value = app
            .get("/api/v1/contacts", &other)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list["items"][0]["name"], evil);
        assert_eq!(list["items"][0]["tags"], json!(["-vip"]));
    }
);

// A country column is imported, by code or by name, and each row's national number is read in
// its own country (5,000 US contacts were once stored as CN).
both!(rows_carry_their_own_country, |app: TestApp| async move {
    let csv = "姓名,手机,国家\nJohn Smith,(415) 555-0132,美国\n张三,13800138000,\nAlice Brown,020 7946 0958,United Kingdom\n李四,13900139000,CN\n";
    let r = import(&app, "/api/v1/imports/contacts", csv.as_bytes().to_vec()).await;
    assert_eq!(r["created"], 4, "{r}");
    let all = items(&app, "/api/v1/contacts?limit=10").await;
    let by = |n: &str| all.iter().find(|c| c["name"] == n).unwrap().clone();
    assert_eq!(
        (
            by("John Smith")["country"].as_str(),
            by("John Smith")["phone_e164"].as_str()
        ),
        (Some("US"), Some("+14155550132"))
    );
    assert_eq!(by("Alice Brown")["country"], "GB");
    assert_eq!(by("Alice Brown")["phone_e164"], "+442079460958");
    assert_eq!(by("张三")["country"], "CN");
    let bad = "姓名,国家\n王五,Atlantis\n";
    let r = import(&app, "/api/v1/imports/contacts", bad.as_bytes().to_vec()).await;
    assert_eq!(r["failed"], 1, "{r}");
    assert_eq!(r["errors"][0]["column"], "国家", "{r}");
});

// An upload over the limit is refused with words a person can act on, on the page and in the
// API (it once said only "Error parsing multipart").
both!(uploads_over_the_limit_say_so, |app: TestApp| async move {
    let big = vec![b'a'; 11 * 1024 * 1024];
    let (c, _) = app
        .session("admin@acme.test", "correct horse battery")
        .await;
    let part = reqwest::multipart::Part::bytes(big.clone()).file_name("big.csv");
    let form = reqwest::multipart::Form::new()
        .text("_csrf", "x")
        .part("file", part);
    let r = c
        .post(app.url("/customers/import"))
        .header("accept-language", "zh-CN")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("10 MB") && html.contains("guanxi import") && html.contains("拆分"),
        "{html}"
    );
    let r = app
        .req(Method::POST, "/api/v1/imports/contacts", &app.admin_token)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
});

// The report speaks in the spreadsheet's terms: row numbers as it shows them (header = 1),
// the refused value and the record's name, and each skipped row names the record it matched.
both!(
    import_reports_name_rows_values_and_matches,
    |app: TestApp| async move {
        created_contact(&app, "王五", "13900139000").await;
        let csv =
            "姓名,手机\n张三,13800138000\n李四,12345\n张三,138 0013 8000\n王五,+86 139 0013 9000\n";
        let r = import(
            &app,
            "/api/v1/imports/contacts?duplicates=skip",
            csv.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(
            (
                r["rows"].as_u64(),
                r["created"].as_u64(),
                r["skipped"].as_u64(),
                r["failed"].as_u64()
            ),
            (Some(4), Some(1), Some(2), Some(1)),
            "{r}"
        );
        let e = &r["errors"][0];
        assert_eq!(
            (
                e["row"].as_u64(),
                e["column"].as_str(),
                e["value"].as_str(),
                e["name"].as_str()
            ),
            (Some(3), Some("手机"), Some("12345"), Some("李四")),
            "{r}"
        );
        let skipped: Vec<(u64, &str)> = r["skipped_rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["row"].as_u64().unwrap(),
                    k["matched_name"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(skipped, [(4, "张三"), (5, "王五")], "{r}");
    }
);

async fn created_contact(app: &TestApp, name: &str, phone: &str) {
    let r = app
        .post(
            "/api/v1/contacts",
            &app.admin_token,
            json!({"name": name, "phone": phone}),
        )
        .await;
    assert_eq!(r.status(), 201);
}

// A checked file stays on the server and the page refers to it by id (it once carried the whole
// file as base64 in a hidden field); importing it is one import however often it is submitted.
both!(
    a_checked_file_is_imported_once_by_reference,
    |app: TestApp| async move {
        let (c, s) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let csrf = s["csrf_token"].as_str().unwrap().to_owned();
        let csv = "姓名,手机\n风清扬,13700001111\n令狐冲,13700002222\n";
        let (ctype, body) = multipart(
            &[("_csrf", &csrf), ("target", "contacts"), ("dry_run", "1")],
            ("风.csv", csv.as_bytes()),
        );
        let html = c
            .post(app.url("/customers/import"))
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !html.contains("file_b64") && !html.contains("6aOO"),
            "no file in the page"
        );
        let at = html
            .find("name=\"upload_id\" value=\"")
            .expect("an upload id")
            + 24;
        let upload = html[at..at + 36].to_owned();
        let submit = || {
            let form = reqwest::multipart::Form::new()
                .text("_csrf", csrf.clone())
                .text("target", "contacts")
                .text("duplicates", "skip")
                .text("upload_id", upload.clone());
            c.post(app.url("/customers/import")).multipart(form).send()
        };
        let r = submit().await.unwrap();
        assert_eq!(r.url().path(), format!("/customers/imports/{upload}"));
        let html = finished(c.clone(), app.url(&format!("/customers/imports/{upload}"))).await;
        assert!(html.contains("data-status=\"done\""), "{html}");
        // Submitted again (a second click, the back button): the same import's page, nothing new.
        let r = submit().await.unwrap();
        assert_eq!(r.url().path(), format!("/customers/imports/{upload}"));
        let people: Value = app
            .get("/api/v1/contacts?q=1370000", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(people["items"].as_array().unwrap().len(), 2);
        let runs: i64 = app
            .db
            .scalar("SELECT COUNT(*) FROM imports", guanxi_platform::args![])
            .await
            .unwrap();
        assert_eq!(runs, 1);
    }
);

both!(
    trade_show_cards_from_the_lead_import_page,
    |app: TestApp| async move {
        let (c, s) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let csrf = s["csrf_token"].as_str().unwrap().to_owned();
        let csv = "姓名,公司,手机\n令狐冲,华山派,13911112222\n任盈盈,日月神教,13911113333\n令狐冲,华山派,13911112222\n坏号码,,12\n";
        let post = |dry: bool| {
            let mut fields = vec![("_csrf", csrf.as_str()), ("campaign", "2026茶博会")];
            if dry {
                fields.push(("dry_run", "1"));
            }
            let (ctype, body) = multipart(&fields, ("名片.csv", csv.as_bytes()));
            c.post(app.url("/leads/import"))
                .header("content-type", ctype)
                .body(body)
                .send()
        };
        // A dry run says what would happen and writes nothing.
        let html = post(true).await.unwrap().text().await.unwrap();
        assert!(html.contains("试运行"), "{html}");
        assert!(html.contains("id=\"created\">2<"), "{html}");
        assert!(html.contains("id=\"repeated\">1<"), "{html}");
        assert!(html.contains("row-errors"), "{html}");
        let leads: Value = app
            .get("/api/v1/leads", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(leads["items"].as_array().unwrap().len(), 0);
        // The real import: two leads tagged, each with its follow-up task.
        let html = post(false).await.unwrap().text().await.unwrap();
        assert!(html.contains("id=\"created\">2<"), "{html}");
        assert!(html.contains("id=\"tasks\">2<"), "{html}");
        let leads: Value = app
            .get("/api/v1/leads?tag=2026茶博会", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(leads["items"].as_array().unwrap().len(), 2);
        // No file: said on the form, nothing written.
        let (ctype, body) = multipart(&[("_csrf", &csrf)], ("empty.csv", b""));
        let r = c
            .post(app.url("/leads/import"))
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        assert!(r.text().await.unwrap().contains("class=\"errors\""));
    }
);

// A batch of accounts or orders is validated row by row and written together: a credit code
// given twice in one batch refuses only its second row (the rest of the batch goes in, each
// with one audit event); an order number met twice in a file is one order, updated the second
// time; a contact is the one of the company the row names; and a rep's file reaches only the
// customers the rep may see.
both!(
    batches_refuse_only_the_rows_at_fault,
    |app: TestApp| async move {
        let mut accounts = String::from("公司名称,统一社会信用代码\n");
        for i in 0..20 {
            let code = if i == 5 || i == 12 {
                "91330100799655058B"
            } else {
                ""
            };
            accounts.push_str(&format!("连锁店{i:02},{code}\n"));
        }
        let r = import(
            &app,
            "/api/v1/imports/accounts?duplicates=create",
            accounts.into_bytes(),
        )
        .await;
        assert_eq!(
            tallies(&r),
            [Some(20), Some(19), Some(0), Some(0), Some(1)],
            "{r}"
        );
        assert_eq!(
            (
                &r["errors"][0]["row"],
                &r["errors"][0]["column"],
                &r["errors"][0]["reason"]
            ),
            (&json!(14), &json!("统一社会信用代码"), &json!("taken")),
            "{r}"
        );
        let scalar = |sql: &'static str| {
            let db = app.db.clone();
            async move {
                let n: i64 = db.scalar(sql, guanxi_platform::args![]).await.unwrap();
                n
            }
        };
        assert_eq!(
            scalar("SELECT COUNT(*) FROM accounts WHERE name LIKE '连锁店%'").await,
            19
        );
        assert_eq!(
            scalar(
                "SELECT COUNT(*) FROM audit_events WHERE entity = 'accounts' AND action = 'create'"
            )
            .await,
            19,
            "one event for each account written, none for the rolled-back bulk write"
        );

        // Two companies, each with a contact named 王芳.
        let mut companies = vec![];
        for name in ["甲公司", "乙公司"] {
            let a = app
                .created("/api/v1/accounts", &app.admin_token, json!({"name": name}))
                .await;
            let c = app
                .created(
                    "/api/v1/contacts",
                    &app.admin_token,
                    json!({"name": "王芳", "account_id": a["id"]}),
                )
                .await;
            companies.push((a["id"].clone(), c["id"].clone()));
        }
        let orders = "订单号,客户,联系人,商品,数量,单价\n\
            D-1,乙公司,王芳,茶,1,10\n\
            D-2,,王芳,茶,1,10\n\
            D-1,乙公司,王芳,茶,2,10\n";
        let r = import(&app, "/api/v1/imports/orders", orders.as_bytes().to_vec()).await;
        assert_eq!(
            tallies(&r),
            [Some(3), Some(2), Some(1), Some(0), Some(0)],
            "{r}"
        );
        let list = items(&app, "/api/v1/orders?sort=number").await;
        assert_eq!(list.len(), 2, "D-1 once");
        assert_eq!(list[0]["total"], 2_000, "the second D-1 won");
        assert_eq!(list[0]["contact_id"], companies[1].1, "乙公司's 王芳");
        assert_eq!(list[0]["account_id"], companies[1].0);
        assert_eq!(list[1]["contact_id"], companies[0].1, "the oldest 王芳");
        assert_eq!(
            list[1]["account_id"], companies[0].0,
            "the contact brings its company"
        );

        // A rep imports orders for their own customer, not for the admin's.
        let (_, rep) = app.user_with_role("sales", "rep-import@example.com").await;
        let mine = app
            .created("/api/v1/accounts", &rep, json!({"name": "我的客户"}))
            .await;
        let file = "订单号,客户,商品,数量,单价\nR-1,我的客户,茶,1,10\nR-2,甲公司,茶,1,10\n";
        let r = app
            .req(Method::POST, "/api/v1/imports/orders", &rep)
            .body(file.as_bytes().to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r: Value = r.json().await.unwrap();
        assert_eq!(
            tallies(&r),
            [Some(2), Some(1), Some(0), Some(0), Some(1)],
            "{r}"
        );
        assert_eq!(
            (&r["errors"][0]["column"], &r["errors"][0]["reason"]),
            (&json!("客户"), &json!("unknown")),
            "{r}"
        );
        assert_eq!(
            r["errors"][0]["value"], "甲公司",
            "the company as the file names it"
        );
        let rep_orders = items(&app, "/api/v1/orders?sort=number").await;
        assert!(rep_orders
            .iter()
            .any(|o| o["number"] == "R-1" && o["account_id"] == mine["id"]));
        assert!(!rep_orders.iter().any(|o| o["number"] == "R-2"));
    }
);

// An order's create answer and its audit event are what a read of it returns, whether it came
// through the API (a time in nanoseconds, a contact bringing its company) or an import (written
// with its batch): the stored order is built once, not read back, and must not drift from it.
both!(
    a_created_order_is_what_a_read_returns,
    |app: TestApp| async move {
        let a = app
            .created(
                "/api/v1/accounts",
                &app.admin_token,
                json!({"name": "回读公司"}),
            )
            .await;
        let c = app
            .created(
                "/api/v1/contacts",
                &app.admin_token,
                json!({"name": "回读联系人", "account_id": a["id"]}),
            )
            .await;
        let created = app
            .created(
                "/api/v1/orders",
                &app.admin_token,
                json!({
                    "contact_id": c["id"],
                    "ordered_at": "2026-11-02T03:04:05.123456789Z",
                    "notes": "回读",
                    "lines": [
                        {"name": "龙井", "quantity": 3, "unit_price": 19_800, "discount": 100},
                        {"name": "紫砂壶", "unit_price": 68_000}
                    ]
                }),
            )
            .await;
        let file = "订单号,下单时间,客户,联系人,商品,数量,单价\n\
            IMP-1,2026-11-03 10:00,回读公司,回读联系人,龙井,2,198\n\
            IMP-1,2026-11-03 10:00,回读公司,回读联系人,紫砂壶,1,680\n";
        let r = import(&app, "/api/v1/imports/orders", file.as_bytes().to_vec()).await;
        assert_eq!(r["created"], 1, "{r}");
        let imported = items(&app, "/api/v1/orders?sort=number")
            .await
            .into_iter()
            .find(|o| o["number"] == "IMP-1")
            .unwrap();
        for (answer, id) in [(Some(&created), &created["id"]), (None, &imported["id"])] {
            let read: Value = app
                .get(
                    &format!("/api/v1/orders/{}", id.as_str().unwrap()),
                    &app.admin_token,
                )
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(read["account_name"], "回读公司", "{read}");
            assert_eq!(read["contact_name"], "回读联系人");
            assert_eq!(read["lines"].as_array().unwrap().len(), 2);
            if let Some(answer) = answer {
                assert_eq!(answer, &read, "the create's answer");
                assert_eq!(read["ordered_at"], "2026-11-02T03:04:05.123456Z");
            }
            let events: Value = app
                .get(
                    &format!(
                        "/api/v1/audit-events?entity=orders&action=create&entity_id={}",
                        id.as_str().unwrap()
                    ),
                    &app.admin_token,
                )
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events}");
            assert_eq!(events["items"][0]["after"], read, "the audit event");
        }
    }
);
