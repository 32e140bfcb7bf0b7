//! Customer 360 through the API: accounts and contacts with Chinese specifics, hierarchy,
//! versions, trash, ownership scope and the one search box.

use crate::both;
use crate::harness::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

async fn created(app: &TestApp, path: &str, token: &str, body: Value) -> Value {
    let r = app.post(path, token, body).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{v}");
    v
}

fn fields(problem: &Value) -> Vec<String> {
    let mut f: Vec<String> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    f.sort();
    f
}

both!(
    accounts_validate_chinese_specifics,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let a = created(
        &app,
        "/api/v1/accounts",
        t,
        json!({"name": " 北京示例科技有限公司 ", "credit_code": "91110000802100433b", "phone": "010-6234 5678",
               "wechat": "bjsl_2024", "website": "example.com.cn", "province": "北京市", "city": "北京市",
               "district": "海淀区", "address": "中关村大街 1 号", "industry": "软件"}),
    )
    .await;
        assert_eq!(a["name"], "北京示例科技有限公司");
        assert_eq!(a["credit_code"], "91110000802100433B");
        assert_eq!(a["phone"], "010-6234 5678", "the raw input is kept");
        assert_eq!(a["phone_e164"], "+861062345678");
        assert_eq!(a["website"], "https://example.com.cn");
        assert_eq!(a["country"], "CN");
        assert_eq!(a["version"], 1);
        // Any country's phone still works.
        let us = created(
            &app,
            "/api/v1/accounts",
            t,
            json!({"name": "Acme Inc.", "country": "US", "phone": "(650) 253-0000"}),
        )
        .await;
        assert_eq!(us["phone_e164"], "+16502530000");

        // Every bad field is named at once, in the caller's language; nothing is stored.
        let r = app
            .req(Method::POST, "/api/v1/accounts", t)
            .header("accept-language", "zh-CN")
            .json(
                &json!({"name": "", "credit_code": "91110000802100433C", "phone": "12345",
                      "wechat": "x", "email": "nope", "country": "XX"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let p: Value = r.json().await.unwrap();
        assert_eq!(
            fields(&p),
            ["country", "credit_code", "email", "name", "phone", "wechat"]
        );
        let credit = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["field"] == "credit_code")
            .unwrap();
        assert!(
            credit["message"]
                .as_str()
                .unwrap()
                .contains("统一社会信用代码"),
            "{credit}"
        );
        // The same credit code twice is one company.
        let r = app
            .post(
                "/api/v1/accounts",
                t,
                json!({"name": "重复公司", "credit_code": "91110000802100433B"}),
            )
            .await;
        assert_eq!(r.status(), 422);
        assert_eq!(fields(&r.json().await.unwrap()), ["credit_code"]);
        let list: Value = app.get("/api/v1/accounts", t).await.json().await.unwrap();
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
        // Unknown fields are refused, not ignored.
        let r = app
            .post("/api/v1/accounts", t, json!({"name": "X", "nmae": "typo"}))
            .await;
        assert_eq!(r.status(), 400);
    }
);

both!(
    account_hierarchy_versions_and_trash,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let group = created(&app, "/api/v1/accounts", t, json!({"name": "华润集团"})).await;
        let sub = created(
            &app,
            "/api/v1/accounts",
            t,
            json!({"name": "华润万家", "parent_id": group["id"]}),
        )
        .await;
        let branch = created(
            &app,
            "/api/v1/accounts",
            t,
            json!({"name": "华润万家深圳分公司", "parent_id": sub["id"]}),
        )
        .await;
        assert_eq!(branch["parent_name"], "华润万家");
        let kids: Value = app
            .get(
                &format!(
                    "/api/v1/accounts?parent_id={}",
                    group["id"].as_str().unwrap()
                ),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(kids["items"].as_array().unwrap().len(), 1);
        assert_eq!(kids["items"][0]["name"], "华润万家");

        // The group cannot become its own grandchild's child.
        let gid = group["id"].as_str().unwrap();
        let r = app
            .patch(
                &format!("/api/v1/accounts/{gid}"),
                t,
                json!({"version": 1, "parent_id": branch["id"]}),
            )
            .await;
        assert_eq!(r.status(), 422);
        assert_eq!(fields(&r.json().await.unwrap()), ["parent_id"]);

        // A stale version is refused and changes nothing; `null` clears a field.
        let r = app
            .patch(
                &format!("/api/v1/accounts/{gid}"),
                t,
                json!({"version": 1, "industry": "零售"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let r = app
            .patch(
                &format!("/api/v1/accounts/{gid}"),
                t,
                json!({"version": 1, "industry": "地产"}),
            )
            .await;
        assert_eq!(r.status(), 412);
        let now: Value = app
            .get(&format!("/api/v1/accounts/{gid}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(now["industry"], "零售");
        assert_eq!(now["version"], 2);
        let r = app
            .patch(
                &format!("/api/v1/accounts/{gid}"),
                t,
                json!({"version": 2, "industry": null}),
            )
            .await;
        let v: Value = r.json().await.unwrap();
        assert!(v["industry"].is_null(), "{v}");

        // Trash: gone from lists, listed in the trash, restorable; all of it audited.
        let sid = sub["id"].as_str().unwrap();
        let r = app
            .req(Method::DELETE, &format!("/api/v1/accounts/{sid}"), t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let live: Value = app
            .get("/api/v1/accounts?q=华润万家", t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            live["items"].as_array().unwrap().len(),
            1,
            "only the branch"
        );
        let trash: Value = app
            .get("/api/v1/accounts?deleted=true", t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(trash["items"][0]["id"], sub["id"]);
        let r = app
            .patch(
                &format!("/api/v1/accounts/{sid}"),
                t,
                json!({"version": 2, "name": "x"}),
            )
            .await;
        assert_eq!(
            r.status(),
            409,
            "a trashed record is restored before it is edited"
        );
        let r = app
            .post(&format!("/api/v1/accounts/{sid}/restore"), t, json!({}))
            .await;
        assert_eq!(r.status(), 200);
        let audit: Value = app
            .get(
                &format!("/api/v1/audit-events?entity=accounts&entity_id={sid}"),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        let actions: Vec<&str> = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["restore", "delete", "create"]);
    }
);

/// The names on one list page, and its next cursor.
async fn page_names(app: &TestApp, query: &str, token: &str) -> (Vec<String>, Option<String>) {
    let r = app.get(&format!("/api/v1/contacts?{query}"), token).await;
    assert_eq!(r.status(), 200, "{query}");
    let v: Value = r.json().await.unwrap();
    let names = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    (names, v["next_cursor"].as_str().map(str::to_owned))
}

// A search without a sort pages through its matches newest first (the index's order, so a
// frequent term costs no more than a rare one); with a sort it orders them by that field.
both!(a_search_pages_newest_first, |app: TestApp| async move {
    let t = &app.admin_token;
    for name in [
        "张建华3",
        "李四",
        "张建华1",
        "王建华2",
        "张建华5",
        "赵建华4",
    ] {
        created(&app, "/api/v1/contacts", t, json!({ "name": name })).await;
    }
    let mut seen = vec![];
    let mut query = "q=建华&limit=2".to_owned();
    loop {
        let (names, next) = page_names(&app, &query, t).await;
        assert!(names.len() <= 2);
        seen.extend(names);
        match next {
            Some(c) => query = format!("q=建华&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["赵建华4", "张建华5", "王建华2", "张建华1", "张建华3"]
    );
    // Pinyin initials and a one-character term (too short for the index) keep the order.
    let (names, _) = page_names(&app, "q=zjh", t).await;
    assert_eq!(names, ["赵建华4", "张建华5", "张建华1", "张建华3"]);
    let (names, _) = page_names(&app, "q=5", t).await;
    assert_eq!(names, ["张建华5"]);
    // A chosen sort orders the same matches by the field.
    let (names, next) = page_names(&app, "q=建华&sort=name&limit=4", t).await;
    assert_eq!(
        names,
        ["王建华2", "张建华1", "张建华3", "张建华5"],
        "by pinyin"
    );
    // A cursor of the name order is not one of the search order: refused, naming it.
    let r = app
        .get(
            &format!("/api/v1/contacts?q=建华&cursor={}", next.unwrap()),
            t,
        )
        .await;
    assert_eq!(r.status(), 422);
    let p: Value = r.json().await.unwrap();
    assert_eq!(fields(&p), ["cursor"]);
    // The trash is searched in the same order, apart from the live list.
    let v: Value = app
        .get("/api/v1/contacts?q=张建华1", t)
        .await
        .json()
        .await
        .unwrap();
    let id = v["items"][0]["id"].as_str().unwrap().to_owned();
    let r = app
        .req(Method::DELETE, &format!("/api/v1/contacts/{id}"), t)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (names, _) = page_names(&app, "q=建华", t).await;
    assert_eq!(names, ["赵建华4", "张建华5", "王建华2", "张建华3"]);
    let (names, _) = page_names(&app, "q=建华&deleted=true", t).await;
    assert_eq!(names, ["张建华1"]);
    // Accounts are searched the same way.
    for name in ["建华贸易有限公司", "宏达科技有限公司", "建华物流有限公司"]
    {
        created(&app, "/api/v1/accounts", t, json!({ "name": name })).await;
    }
    let v: Value = app
        .get("/api/v1/accounts?q=建华", t)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["建华物流有限公司", "建华贸易有限公司"]);
});

// A search page reads the newest search eras one at a time, then every older one at once
// (PostgreSQL; the tests' eras hold 8 rows): paging through many eras shows every match once,
// newest first, whatever the page size, and an edit does not move a record.
both!(a_search_pages_across_eras, |app: TestApp| async move {
    let t = &app.admin_token;
    let mut matching = vec![];
    let mut first_id = None;
    for i in 0..60 {
        let name = if i % 3 == 2 {
            format!("李明{i}")
        } else {
            format!("陈建华{i}")
        };
        let c = created(
            &app,
            "/api/v1/contacts",
            t,
            json!({ "name": name, "phone": format!("1380013{i:04}") }),
        )
        .await;
        if !name.starts_with("李") {
            matching.push(name);
            first_id.get_or_insert(c["id"].as_str().unwrap().to_owned());
        }
    }
    matching.reverse();
    let eras: i64 = app
        .db
        .scalar(
            "SELECT COUNT(*) FROM search_eras WHERE tbl = 'contacts'",
            guanxi_platform::args![],
        )
        .await
        .unwrap();
    assert!(
        eras * crate::harness::ERA_ROWS >= 60 && eras >= 5,
        "{eras} eras"
    );
    // The oldest match renamed: still a match, still the oldest.
    let r = app
        .patch(
            &format!("/api/v1/contacts/{}", first_id.unwrap()),
            t,
            json!({ "version": 1, "name": "陈建华0改" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    *matching.last_mut().unwrap() = "陈建华0改".to_owned();
    // Five digits or more (few matches at any size) read every era at once, in the same order.
    for (term, limit) in [
        ("建华", 7),
        ("cjh", 3),
        ("建华", 50),
        ("cjh", 40),
        ("0013", 11),
        ("80013", 9),
    ] {
        let mut seen = vec![];
        let mut query = format!("q={term}&limit={limit}");
        loop {
            let (names, next) = page_names(&app, &query, t).await;
            assert!(names.len() <= limit);
            seen.extend(names);
            match next {
                Some(c) => query = format!("q={term}&limit={limit}&cursor={c}"),
                None => break,
            }
        }
        let want: Vec<String> = if term.contains("0013") {
            // Every contact's phone holds 80013.
            let mut all: Vec<String> = (0..60)
                .map(|i| match i {
                    0 => "陈建华0改".to_owned(),
                    i if i % 3 == 2 => format!("李明{i}"),
                    i => format!("陈建华{i}"),
                })
                .collect();
            all.reverse();
            all
        } else {
            matching.clone()
        };
        assert_eq!(seen, want, "q={term} limit={limit}");
    }
    // The search box finds them too, the shortest names first.
    let r: Value = app
        .get("/api/v1/search?q=建华&limit=50", t)
        .await
        .json()
        .await
        .unwrap();
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 40, "{r}");
    assert_eq!(items[0]["name"], "陈建华1", "{r}");
});

// The search box reads a bounded window of the newest matches (a frequent term costs what a
// rare one does), yet a full name typed still finds its record first, however old.
both!(
    the_search_box_finds_a_full_name_among_many_matches,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let first = created(&app, "/api/v1/contacts", t, json!({ "name": "王伟" })).await;
        for i in 0..205 {
            created(
                &app,
                "/api/v1/contacts",
                t,
                json!({ "name": format!("王伟东{i}") }),
            )
            .await;
        }
        let r: Value = app
            .get("/api/v1/search?q=王伟&limit=3", t)
            .await
            .json()
            .await
            .unwrap();
        let items = r["items"].as_array().unwrap();
        assert_eq!(items.len(), 3, "{r}");
        assert_eq!(items[0]["id"], first["id"], "{r}");
        assert!(items[1..]
            .iter()
            .all(|h| h["name"].as_str().unwrap().starts_with("王伟东")));
    }
);

both!(one_search_box_finds_customers, |app: TestApp| async move {
    let t = &app.admin_token;
    let acct = created(
        &app,
        "/api/v1/accounts",
        t,
        json!({"name": "武当山文化传播有限公司", "credit_code": "91350100M000100Y43"}),
    )
    .await;
    let c = created(
        &app,
        "/api/v1/contacts",
        t,
        json!({"name": "张三丰", "account_id": acct["id"], "phone": "138 0013 8000",
               "email": "Zhang.SF@Wudang.CN", "title": "掌门", "gender": "男", "birthday": "1990-05-01"}),
    )
    .await;
    assert_eq!(c["phone_e164"], "+8613800138000");
    assert_eq!(c["email"], "zhang.sf@wudang.cn");
    assert_eq!(c["gender"], "male");
    assert_eq!(c["account_name"], "武当山文化传播有限公司");
    created(
        &app,
        "/api/v1/contacts",
        t,
        json!({"name": "Jane Smith", "phone": "+44 20 7946 0958"}),
    )
    .await;
    created(&app, "/api/v1/contacts", t, json!({"name": "张无忌"})).await;

    for q in [
        "三丰",
        "zhangsanfeng",
        "ZSF",
        "138 0013 8000",
        "+8613800138000",
        "13800138000",
        "zhang.sf@wudang",
        "武当山",
    ] {
        let r: Value = app
            .req(Method::GET, "/api/v1/search", t)
            .query(&[("q", q)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let contacts: Vec<&Value> = r["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["kind"] == "contact")
            .collect();
        assert_eq!(contacts.len(), 1, "{q}: {r}");
        assert_eq!(contacts[0]["name"], "张三丰", "{q}");
    }
    // The company is found by its name and its credit code.
    let r: Value = app
        .get("/api/v1/search?q=91350100M000100Y43", t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["items"][0]["kind"], "account");
    // Lists take the same search: initials find both 张s.
    let r: Value = app
        .get("/api/v1/contacts?q=zs", t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["items"].as_array().unwrap().len(),
        1,
        "zs is 张三丰 (zsf), not 张无忌 (zwj)"
    );
    let r: Value = app
        .get("/api/v1/contacts?q=zhang", t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["items"].as_array().unwrap().len(), 2);
    let r = app.get("/api/v1/search?q=%20", t).await;
    assert_eq!(r.status(), 422);
    // Contacts of the account, and a bad value on a contact named in the caller's language.
    let r: Value = app
        .get(
            &format!(
                "/api/v1/contacts?account_id={}",
                acct["id"].as_str().unwrap()
            ),
            t,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["items"].as_array().unwrap().len(), 1);
    let r = app
        .post("/api/v1/contacts", t, json!({"name": "坏数据", "birthday": "1990-02-30", "gender": "x", "account_id": "0190a000-0000-7000-8000-000000000000"}))
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        fields(&r.json().await.unwrap()),
        ["account_id", "birthday", "gender"]
    );
});

both!(
    ownership_scopes_what_each_role_sees,
    |app: TestApp| async move {
        let admin = &app.admin_token;
        let team: Value = app
            .post("/api/v1/teams", admin, json!({"name": "华东"}))
            .await
            .json()
            .await
            .unwrap();
        let (rep_a, a) = app.user_with_role("sales", "a@acme.test").await;
        let (rep_b, b) = app.user_with_role("sales", "b@acme.test").await;
        let (_, c) = app.user_with_role("sales", "c@acme.test").await;
        let (_, ro) = app.user_with_role("read_only", "ro@acme.test").await;
        // a and b share a team; c has none.
        for u in [&rep_a, &rep_b] {
            let r = app
                .patch(
                    &format!("/api/v1/users/{}", u["id"].as_str().unwrap()),
                    admin,
                    json!({"version": u["version"], "team_id": team["id"]}),
                )
                .await;
            assert_eq!(r.status(), 200);
        }
        let mine = created(&app, "/api/v1/accounts", &a, json!({"name": "甲的客户"})).await;
        assert_eq!(mine["owner_id"], rep_a["id"]);
        assert_eq!(mine["team_id"], team["id"]);
        let id = mine["id"].as_str().unwrap();

        // A teammate sees it but may not change it; an outsider does not even see it.
        assert_eq!(
            app.get(&format!("/api/v1/accounts/{id}"), &b)
                .await
                .status(),
            200
        );
        let r = app
            .patch(
                &format!("/api/v1/accounts/{id}"),
                &b,
                json!({"version": 1, "name": "抢"}),
            )
            .await;
        assert_eq!(r.status(), 403);
        assert_eq!(
            app.get(&format!("/api/v1/accounts/{id}"), &c)
                .await
                .status(),
            404
        );
        let found: Value = app
            .get("/api/v1/search?q=甲的", &c)
            .await
            .json()
            .await
            .unwrap();
        assert!(found["items"].as_array().unwrap().is_empty(), "{found}");
        let listed: Value = app.get("/api/v1/accounts", &c).await.json().await.unwrap();
        assert!(listed["items"].as_array().unwrap().is_empty());
        // A rep cannot create records for someone outside their scope.
        let r = app
            .post(
                "/api/v1/accounts",
                &c,
                json!({"name": "转给甲", "owner_id": rep_a["id"]}),
            )
            .await;
        assert_eq!(r.status(), 422);
        // Read-only reads everything and changes nothing; the admin sees all.
        assert_eq!(
            app.get(&format!("/api/v1/accounts/{id}"), &ro)
                .await
                .status(),
            200
        );
        let r = app
            .post("/api/v1/accounts", &ro, json!({"name": "不行"}))
            .await;
        assert_eq!(r.status(), 403);
        let r = app
            .req(Method::DELETE, &format!("/api/v1/accounts/{id}"), &ro)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        // The owner hands it to a teammate; history stays with the record.
        let r = app
            .patch(
                &format!("/api/v1/accounts/{id}"),
                &a,
                json!({"version": 1, "owner_id": rep_b["id"]}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let r = app
            .patch(
                &format!("/api/v1/accounts/{id}"),
                &b,
                json!({"version": 2, "industry": "制造"}),
            )
            .await;
        assert_eq!(r.status(), 200, "now b's");
    }
);

both!(
    built_in_roles_follow_the_code_after_an_upgrade,
    |app: TestApp| async move {
        // A tenant created by an older release: its built-in sales role knows no customer modules.
        app.db
            .execute(
                "UPDATE roles SET permissions = $1 WHERE key = $2",
                guanxi_platform::args![json!({"users": {"read": "all"}}), "sales"],
            )
            .await
            .unwrap();
        assert_eq!(app.role("sales").await["permissions"].get("accounts"), None);
        // The next start migrates and brings it up to date.
        guanxi_platform::migrate::run(&app.db, guanxi_web::MIGRATIONS)
            .await
            .unwrap();
        let sales = app.role("sales").await;
        assert_eq!(sales["permissions"]["accounts"]["read"], "team");
        assert_eq!(sales["permissions"]["accounts"]["update"], "own");
    }
);

both!(timeline_tasks_and_reminders, |app: TestApp| async move {
    let t = &app.admin_token;
    let (rep, rep_token) = app.user_with_role("sales", "rep@acme.test").await;
    let acct = created(&app, "/api/v1/accounts", t, json!({"name": "峨眉派"})).await;
    let aid = acct["id"].as_str().unwrap();
    let person = created(
        &app,
        "/api/v1/contacts",
        t,
        json!({"name": "灭绝师太", "account_id": aid}),
    )
    .await;
    let pid = person["id"].as_str().unwrap();
    // A call with the contact lands on the account's timeline too.
    let call = created(
        &app,
        "/api/v1/activities",
        t,
        json!({"kind": "call", "contact_id": pid, "subject": "续约电话", "body": "答应下周报价",
               "occurred_at": "2026-11-20T02:00:00Z"}),
    )
    .await;
    assert_eq!(call["account_id"], acct["id"]);
    created(
        &app,
        "/api/v1/activities",
        t,
        json!({"kind": "visit", "account_id": aid, "subject": "上门拜访"}),
    )
    .await;
    // Hand the account to the rep: the transfer shows in the timeline.
    let r = app
        .patch(
            &format!("/api/v1/accounts/{aid}"),
            t,
            json!({"version": 1, "owner_id": rep["id"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let tl: Value = app
        .get(&format!("/api/v1/accounts/{aid}/timeline"), t)
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["transfer", "visit", "create", "call"], "{tl}");
    assert_eq!(tl["items"][0]["detail"]["owner_name"], "rep@acme.test");
    assert_eq!(tl["items"][3]["contact_name"], "灭绝师太");
    let only: Value = app
        .get(
            &format!("/api/v1/accounts/{aid}/timeline?types=call,visit&limit=1"),
            t,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(only["items"].as_array().unwrap().len(), 1);
    assert_eq!(only["items"][0]["type"], "visit");
    let cursor = only["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .req(Method::GET, &format!("/api/v1/accounts/{aid}/timeline"), t)
        .query(&[("types", "call,visit"), ("cursor", cursor)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["type"], "call");
    let contact_tl: Value = app
        .get(&format!("/api/v1/contacts/{pid}/timeline"), t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        contact_tl["items"].as_array().unwrap().len(),
        2,
        "create + call"
    );

    // A task for the rep with an emailed reminder; another one done before its reminder.
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let due = (chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339();
    let task = created(
        &app,
        "/api/v1/activities",
        t,
        json!({"kind": "task", "account_id": aid, "subject": "发送报价单", "assignee_id": rep["id"],
               "due_at": due, "remind_at": soon}),
    )
    .await;
    let early = created(
        &app,
        "/api/v1/activities",
        t,
        json!({"kind": "task", "account_id": aid, "subject": "确认收货地址", "assignee_id": rep["id"], "remind_at": soon}),
    )
    .await;
    let mine: Value = app
        .get("/api/v1/tasks", &rep_token)
        .await
        .json()
        .await
        .unwrap();
    let subjects: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["发送报价单", "确认收货地址"], "dated first");
    // The assignee completes the second one (not theirs to edit otherwise).
    let r = app
        .patch(
            &format!("/api/v1/activities/{}", early["id"].as_str().unwrap()),
            &rep_token,
            json!({"version": 1, "done": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .patch(
            &format!("/api/v1/activities/{}", task["id"].as_str().unwrap()),
            &rep_token,
            json!({"version": 1, "due_at": null, "kind": "call"}),
        )
        .await;
    assert_eq!(
        r.status(),
        403,
        "the assignee completes a task, nothing more"
    );
    for change in [
        json!({"version": 1, "subject": "改个标题"}),
        json!({"version": 1, "assignee_id": app_admin_id(&app).await}),
        json!({"version": 1, "due_at": null}),
        json!({"version": 1, "done": true, "body": "顺便改正文"}),
    ] {
        let r = app
            .patch(
                &format!("/api/v1/activities/{}", task["id"].as_str().unwrap()),
                &rep_token,
                change.clone(),
            )
            .await;
        assert_eq!(r.status(), 403, "assignee may not {change}");
    }
    let r = app
        .patch(
            &format!("/api/v1/activities/{}", task["id"].as_str().unwrap()),
            t,
            json!({"version": 1, "due_at": null, "kind": "call"}),
        )
        .await;
    assert_eq!(r.status(), 422, "a task stays a task");
    let open: Value = app
        .get("/api/v1/tasks", &rep_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open["items"].as_array().unwrap().len(), 1);
    // Nothing is sent before the reminder time; at it, exactly one reminder goes out. (What is
    // due now — the rep's "handed to you" emails — goes first.)
    app.run_pending_jobs().await;
    let before = app.smtp.received().len();
    app.run_pending_jobs().await;
    assert_eq!(app.smtp.received().len(), before, "not before its time");
    app.run_jobs_at(chrono::Utc::now() + chrono::Duration::hours(2))
        .await;
    let sent = app.smtp.received();
    assert_eq!(
        sent.len(),
        before + 1,
        "one reminder, the finished task's was cancelled"
    );
    let mail = sent.last().unwrap();
    assert!(mail.contains("rep@acme.test"), "{mail}");
    // Non-tasks take no task fields; a read-only user logs nothing.
    let r = app
        .post(
            "/api/v1/activities",
            t,
            json!({"kind": "note", "account_id": aid, "subject": "x", "due_at": due}),
        )
        .await;
    assert_eq!(r.status(), 422);
    // Nothing is logged against a customer in the trash.
    let gone = created(&app, "/api/v1/accounts", t, json!({"name": "已关闭"})).await;
    let gid = gone["id"].as_str().unwrap();
    app.req(Method::DELETE, &format!("/api/v1/accounts/{gid}"), t)
        .send()
        .await
        .unwrap();
    let r = app
        .post(
            "/api/v1/activities",
            t,
            json!({"kind": "note", "account_id": gid, "subject": "x"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(fields(&r.json().await.unwrap()), ["account_id"]);
    let (_, ro) = app.user_with_role("read_only", "ro@acme.test").await;
    let r = app
        .post(
            "/api/v1/activities",
            &ro,
            json!({"kind": "note", "account_id": aid, "subject": "x"}),
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        app.get(&format!("/api/v1/accounts/{aid}/timeline"), &ro)
            .await
            .status(),
        200
    );
});

both!(
    products_orders_and_the_external_push,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let tea = created(&app, "/api/v1/products", t, json!({"sku": "TEA-001", "name": "武夷岩茶 250g", "category": "茶叶", "unit": "盒", "list_price": 19900})).await;
        created(
            &app,
            "/api/v1/products",
            t,
            json!({"sku": "CUP-01", "name": "青瓷茶杯", "list_price": 4500}),
        )
        .await;
        let r = app
            .post(
                "/api/v1/products",
                t,
                json!({"sku": "TEA-001", "name": "重复"}),
            )
            .await;
        assert_eq!(r.status(), 422);
        assert_eq!(fields(&r.json().await.unwrap()), ["sku"]);
        let acct = created(&app, "/api/v1/accounts", t, json!({"name": "福州茶行"})).await;
        let aid = acct["id"].as_str().unwrap();
        let buyer = created(
            &app,
            "/api/v1/contacts",
            t,
            json!({"name": "林掌柜", "account_id": aid}),
        )
        .await;

        // Lines by product id, by SKU (list price by default) and free-form; totals in fen.
        let o = created(
        &app,
        "/api/v1/orders",
        t,
        json!({"contact_id": buyer["id"], "channel": "store", "ordered_at": "2025-03-01T08:00:00Z",
               "lines": [{"product_id": tea["id"], "quantity": 2, "discount": 1800},
                         {"sku": "CUP-01", "quantity": 6},
                         {"name": "包装费", "unit_price": 500}]}),
    )
    .await;
        assert_eq!(o["account_id"], acct["id"], "the contact's account");
        assert_eq!(o["total"], 2 * 19900 - 1800 + 6 * 4500 + 500);
        assert_eq!(o["lines"][1]["name"], "青瓷茶杯");
        assert_eq!(o["lines"][1]["unit_price"], 4500);
        assert_eq!(o["status"], "confirmed");
        assert!(o["number"].as_str().unwrap().starts_with("SO-"));
        // Bad lines are named by position.
        let r = app
        .post("/api/v1/orders", t, json!({"account_id": aid, "lines": [{"name": "x", "unit_price": 100, "discount": 101}, {"name": "y", "unit_price": 1, "quantity": 0}, {"sku": "NOPE"}]}))
        .await;
        assert_eq!(r.status(), 422);
        assert_eq!(
            fields(&r.json().await.unwrap()),
            ["lines[0].discount", "lines[1].quantity", "lines[2].name"]
        );

        // The online shop pushes its order; sending it again stores nothing new.
        let body = json!({"account_id": aid, "status": "paid", "ordered_at": "2025-06-18T12:00:00Z",
                      "lines": [{"sku": "TEA-001", "quantity": 1}]});
        let push = |b: Value| {
            app.req(
                Method::PUT,
                "/api/v1/orders/external/online/TB-20250618-77",
                t,
            )
            .json(&b)
            .send()
        };
        let r = push(body.clone()).await.unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["guanxi-push"], "created");
        let first: Value = r.json().await.unwrap();
        assert_eq!(first["number"], "TB-20250618-77");
        let r = push(body.clone()).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["guanxi-push"], "unchanged");
        let again: Value = r.json().await.unwrap();
        assert_eq!(again["id"], first["id"]);
        assert_eq!(again["version"], 1);
        // Later it is returned: a new version, audited.
        let mut returned = body.clone();
        returned["status"] = json!("returned");
        let r = push(returned).await.unwrap();
        assert_eq!(r.headers()["guanxi-push"], "updated");
        let v2: Value = r.json().await.unwrap();
        assert_eq!(v2["version"], 2);
        let listed: Value = app
            .get(&format!("/api/v1/orders?account_id={aid}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(listed["items"].as_array().unwrap().len(), 2, "stored once");
        assert_eq!(
            listed["items"][0]["number"], "TB-20250618-77",
            "newest first"
        );
        let audit: Value = app
            .get(
                &format!(
                    "/api/v1/audit-events?entity=orders&entity_id={}",
                    first["id"].as_str().unwrap()
                ),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            audit["items"].as_array().unwrap().len(),
            2,
            "create + one update"
        );

        // Totals leave out the returned order; the timeline shows the orders.
        let totals: Value = app
            .get(&format!("/api/v1/accounts/{aid}/order-totals"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(totals[0]["orders"], 1);
        assert_eq!(totals[0]["total"], o["total"]);
        assert_eq!(totals[0]["currency"], "CNY");
        let tl: Value = app
            .get(&format!("/api/v1/accounts/{aid}/timeline?types=order"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(tl["items"].as_array().unwrap().len(), 2);
        assert_eq!(tl["items"][0]["body"], "returned");

        // Another company's shop uses the same external id: a separate order of its own.
        let (_, other) = app.signup("Other Co", "boss@other.test").await;
        let theirs = created(&app, "/api/v1/accounts", &other, json!({"name": "别家"})).await;
        let r = app
            .req(
                Method::PUT,
                "/api/v1/orders/external/online/TB-20250618-77",
                &other,
            )
            .json(&json!({"account_id": theirs["id"], "lines": [{"name": "x", "unit_price": 1}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let mine: Value = app
            .get(
                &format!("/api/v1/orders/{}", first["id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(mine["status"], "returned", "untouched");

        // A rep may not add orders to a customer outside their scope.
        let (_, rep) = app.user_with_role("sales", "rep@acme.test").await;
        let r = app
            .post(
                "/api/v1/orders",
                &rep,
                json!({"account_id": aid, "lines": [{"name": "x", "unit_price": 1}]}),
            )
            .await;
        assert_eq!(r.status(), 422, "the account is not the rep's to see");
    }
);

both!(
    a_departing_reps_book_moves_in_one_action,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let (leaver, leaver_token) = app.user_with_role("sales", "leaver@acme.test").await;
        let (a, _) = app.user_with_role("sales", "a@acme.test").await;
        let (b, _) = app.user_with_role("sales", "b@acme.test").await;
        let mut accounts = vec![];
        for name in ["甲公司", "乙公司", "丙公司"] {
            accounts.push(
                created(
                    &app,
                    "/api/v1/accounts",
                    &leaver_token,
                    json!({"name": name}),
                )
                .await,
            );
        }
        let c1 = created(
            &app,
            "/api/v1/contacts",
            &leaver_token,
            json!({"name": "甲联系人", "account_id": accounts[0]["id"]}),
        )
        .await;
        created(
            &app,
            "/api/v1/contacts",
            &leaver_token,
            json!({"name": "散客"}),
        )
        .await;
        let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        created(&app, "/api/v1/activities", &leaver_token, json!({"kind": "task", "account_id": accounts[0]["id"], "subject": "回访", "remind_at": soon})).await;
        let body = json!({"from_user_id": leaver["id"], "to_user_ids": [a["id"], b["id"]]});

        // A rep cannot move a colleague's book; a dry run counts without moving.
        let r = app
            .post("/api/v1/transfers", &leaver_token, body.clone())
            .await;
        assert_eq!(r.status(), 403);
        // A manager of another team is told why, as a form error, with any other.
        let teams: Value = app
            .post("/api/v1/teams", t, json!({"name": "华南"}))
            .await
            .json()
            .await
            .unwrap();
        let (mgr, mgr_token) = app.user_with_role("manager", "mgr@acme.test").await;
        let r = app
            .patch(
                &format!("/api/v1/users/{}", mgr["id"].as_str().unwrap()),
                t,
                json!({"version": mgr["version"], "team_id": teams["id"]}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let r = app
            .post(
                "/api/v1/transfers",
                &mgr_token,
                json!({"from_user_id": leaver["id"], "to_user_ids": []}),
            )
            .await;
        assert_eq!(r.status(), 422);
        let p: Value = r.json().await.unwrap();
        let fields: Vec<(&str, &str)> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
            .collect();
        assert!(
            fields.contains(&("to_user_ids", "required"))
                && fields.contains(&("from_user_id", "not_your_team")),
            "{p}"
        );
        let mut dry = body.clone();
        dry["dry_run"] = json!(true);
        let plan: Value = app
            .post("/api/v1/transfers", t, dry)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(plan["shares"][0]["accounts"], 2);
        assert_eq!(plan["shares"][1]["accounts"], 1);
        let still: Value = app
            .get(
                &format!("/api/v1/accounts/{}", accounts[0]["id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(still["owner_id"], leaver["id"]);

        let done: Value = app
            .post("/api/v1/transfers", t, body)
            .await
            .json()
            .await
            .unwrap();
        let total: i64 = done["shares"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                s["accounts"].as_i64().unwrap()
                    + s["contacts"].as_i64().unwrap()
                    + s["tasks"].as_i64().unwrap()
            })
            .sum();
        assert_eq!(total, 3 + 2 + 1);
        // The contact and the task follow their account (甲公司 → the first colleague).
        let first: Value = app
            .get(
                &format!("/api/v1/accounts/{}", accounts[0]["id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(first["owner_id"], a["id"]);
        let contact: Value = app
            .get(
                &format!("/api/v1/contacts/{}", c1["id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(contact["owner_id"], a["id"]);
        let leftover: Value = app
            .get(
                &format!(
                    "/api/v1/accounts?owner_id={}",
                    leaver["id"].as_str().unwrap()
                ),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert!(leftover["items"].as_array().unwrap().is_empty());
        let tasks: Value = app
            .get(
                &format!("/api/v1/tasks?assignee_id={}", a["id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(tasks["items"][0]["subject"], "回访");
        // History stays with the record: the timeline shows the transfer.
        let tl: Value = app
            .get(
                &format!(
                    "/api/v1/accounts/{}/timeline?types=transfer",
                    accounts[0]["id"].as_str().unwrap()
                ),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(tl["items"][0]["detail"]["owner_name"], "a@acme.test");
        // Each receiver is told once (one email each, now); the reminder later goes to the
        // new assignee only.
        let before = app.smtp.received().len();
        app.run_pending_jobs().await;
        assert_eq!(app.smtp.received().len(), before + 2);
        let before = app.smtp.received().len();
        app.run_jobs_at(chrono::Utc::now() + chrono::Duration::hours(2))
            .await;
        let sent = app.smtp.received();
        assert_eq!(sent.len(), before + 1);
        assert!(sent.last().unwrap().contains("a@acme.test"));
    }
);

both!(
    demo_company_is_deterministic_and_pareto_shaped,
    |app: TestApp| async move {
        use guanxi_customers::demo::{load, DemoSize};
        let admin_ctx = |tenant: &str| {
            let db = app.db.clone();
            let tenant = uuid::Uuid::parse_str(tenant).unwrap();
            async move {
                let (admin,): (uuid::Uuid,) = db
                    .fetch_one(
                        "SELECT id FROM users WHERE tenant_id = $1 ORDER BY created_at LIMIT 1",
                        guanxi_platform::args![tenant],
                    )
                    .await
                    .unwrap();
                guanxi_platform::auth::ctx_for_user(&db, tenant, admin)
                    .await
                    .unwrap()
            }
        };
        let size = DemoSize {
            accounts: 40,
            seed: 7,
        };
        let a = load(&app.db, &admin_ctx(&app.tenant_id).await, size)
            .await
            .unwrap();
        let (other, _) = app.signup("Second Demo", "second@demo.test").await;
        let b = load(&app.db, &admin_ctx(&other).await, size).await.unwrap();
        assert_eq!(a, b, "same seed, same company");
        assert_eq!(a.accounts, 40);
        assert!(
            a.contacts >= 40 && a.orders > 40 && a.activities > 0,
            "{a:?}"
        );
        // Same names and the same revenue in both tenants.
        let revenue = |tenant: String| {
            let db = app.db.clone();
            async move {
                let mut rows: Vec<(String, i64)> = db
                    .fetch_all(
                        "SELECT a.name, CAST(COALESCE(SUM(o.total), 0) AS BIGINT) FROM accounts a
                     LEFT JOIN orders o ON o.tenant_id = a.tenant_id AND o.account_id = a.id
                     WHERE a.tenant_id = $1 GROUP BY a.name",
                        guanxi_platform::args![uuid::Uuid::parse_str(&tenant).unwrap()],
                    )
                    .await
                    .unwrap();
                rows.sort();
                rows
            }
        };
        let ra = revenue(app.tenant_id.clone()).await;
        assert_eq!(ra, revenue(other).await);
        // Pareto: the top fifth of customers bring at least half of the revenue.
        let mut totals: Vec<i64> = ra.iter().map(|r| r.1).collect();
        totals.sort_unstable_by(|x, y| y.cmp(x));
        let all: i64 = totals.iter().sum();
        let top: i64 = totals[..totals.len() / 5].iter().sum();
        assert!(top * 2 >= all, "top 20% bring {top} of {all}");
    }
);

both!(
    likely_duplicates_are_found_before_saving,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let acct = created(
            &app,
            "/api/v1/accounts",
            t,
            json!({"name": "青城派", "credit_code": "91350100M000100Y43"}),
        )
        .await;
        let (_, rep) = app.user_with_role("sales", "rep@acme.test").await;
        created(&app, "/api/v1/contacts", t, json!({"name": "余沧海", "account_id": acct["id"], "phone": "13912345678", "email": "yu@qingcheng.cn"})).await;
        let probe = |q: Vec<(&'static str, String)>, token: String| {
            let app = &app;
            async move {
                let v: Value = app
                    .req(Method::GET, "/api/v1/duplicates", &token)
                    .query(&q)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                v
            }
        };
        // The same phone typed another way, by a rep who cannot open the record: still reported.
        let r = probe(
            vec![
                ("kind", "contact".into()),
                ("name", "余掌门".into()),
                ("phone", "+86 139-1234-5678".into()),
            ],
            rep.clone(),
        )
        .await;
        assert_eq!(r["items"].as_array().unwrap().len(), 1, "{r}");
        assert_eq!(r["items"][0]["name"], "余沧海");
        assert_eq!(r["items"][0]["score"], 90);
        assert_eq!(r["items"][0]["matched"], json!(["phone"]));
        assert_eq!(r["items"][0]["visible"], false);
        // Email in another case; the same name at the same account.
        let r = probe(
            vec![
                ("kind", "contact".into()),
                ("email", "YU@QingCheng.cn".into()),
            ],
            t.clone(),
        )
        .await;
        assert_eq!(r["items"][0]["matched"], json!(["email"]));
        let r = probe(
            vec![
                ("kind", "contact".into()),
                ("name", "余沧海".into()),
                ("account_id", acct["id"].as_str().unwrap().into()),
            ],
            t.clone(),
        )
        .await;
        assert_eq!(r["items"][0]["score"], 70);
        // An account by its credit code; nothing for a new customer.
        let r = probe(
            vec![
                ("kind", "account".into()),
                ("credit_code", "91350100m000100y43".into()),
            ],
            t.clone(),
        )
        .await;
        assert_eq!(r["items"][0]["score"], 100);
        let r = probe(
            vec![
                ("kind", "contact".into()),
                ("name", "新客户".into()),
                ("phone", "13700000000".into()),
            ],
            t.clone(),
        )
        .await;
        assert!(r["items"].as_array().unwrap().is_empty());
        // The record itself is not its own duplicate while being edited.
        let r = probe(
            vec![
                ("kind", "account".into()),
                ("name", "青城派".into()),
                ("exclude_id", acct["id"].as_str().unwrap().into()),
            ],
            t.clone(),
        )
        .await;
        assert!(r["items"].as_array().unwrap().is_empty());
        // A very common name does not crowd out the phone match: 25 namesakes, then the
        // probe by that name and 余沧海's phone still finds him first.
        for _ in 0..25 {
            created(&app, "/api/v1/contacts", t, json!({"name": "余沧海"})).await;
        }
        let r = probe(
            vec![
                ("kind", "contact".into()),
                ("name", "余沧海".into()),
                ("phone", "13912345678".into()),
            ],
            t.clone(),
        )
        .await;
        let items = r["items"].as_array().unwrap();
        assert_eq!(items.len(), 20, "at most 20 candidates");
        assert_eq!(items[0]["score"], 90, "{r}");
        assert_eq!(items[0]["matched"], json!(["phone", "name"]));
    }
);

both!(filtered_lists_export_as_csv, |app: TestApp| async move {
    let t = &app.admin_token;
    // Enough contacts to span several pages of the stream.
    let admin: Value = app.get("/api/v1/me", t).await.json().await.unwrap();
    let ctx = guanxi_platform::auth::ctx_for_user(
        &app.db,
        uuid::Uuid::parse_str(&app.tenant_id).unwrap(),
        uuid::Uuid::parse_str(admin["user"]["id"].as_str().unwrap()).unwrap(),
    )
    .await
    .unwrap();
    guanxi_customers::demo::load(
        &app.db,
        &ctx,
        guanxi_customers::demo::DemoSize {
            accounts: 110,
            seed: 3,
        },
    )
    .await
    .unwrap();
    let contacts: i64 = app
        .db
        .scalar(
            "SELECT COUNT(*) FROM contacts WHERE deleted_at IS NULL",
            vec![],
        )
        .await
        .unwrap();
    assert!(contacts > 200, "{contacts}");
    let r = app
        .req(Method::GET, "/api/v1/contacts/export.csv", t)
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "BOM for Excel");
    let mut rd = csv::Reader::from_reader(&bytes[3..]);
    let head: Vec<String> = rd.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(&head[..3], ["ID", "名称", "所属客户"]);
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len() as i64, contacts, "every contact, across pages");
    let e164 = head.iter().position(|h| h == "E.164").unwrap();
    assert!(
        rows.iter()
            .filter(|r| !r[e164].is_empty())
            .all(|r| r[e164].starts_with("'+86")),
        "E.164 written as text, not a formula"
    );
    // A filtered export holds just the filtered rows, and the export is audited.
    let one = created(
        &app,
        "/api/v1/accounts",
        t,
        json!({"name": "导出测试公司", "city": "杭州市"}),
    )
    .await;
    let body = app
        .req(Method::GET, "/api/v1/accounts/export.csv", t)
        .query(&[("q", "导出测试")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut rd = csv::Reader::from_reader(body.trim_start_matches('\u{feff}').as_bytes());
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][0], one["id"].as_str().unwrap());
    let audit: Value = app
        .get("/api/v1/audit-events?action=export", t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
    // Whoever may read may export; the audit log shows who did.
    let (_, nobody) = app.user_with_role("read_only", "ro@acme.test").await;
    assert_eq!(
        app.get("/api/v1/contacts/export.csv", &nobody)
            .await
            .status(),
        200
    );
});

both!(
    contacts_import_from_utf8_and_gbk_csv,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let import = |body: Vec<u8>, query: &'static str| {
            let app = &app;
            async move {
                app.req(Method::POST, &format!("/api/v1/imports/contacts{query}"), t)
                    .header("content-type", "text/csv")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
            }
        };
        let csv = "\u{feff}姓名,手机号码,公司名称,职位,备注\n\
               张三,138 0013 8000,武当派,掌门,\n\
               李四,12345,,,\"手机号写错了\"\n\
               Jane Smith,+44 20 7946 0958,Acme UK,Buyer,\"多行\n备注\"\n";
        // A dry run checks and counts, saving nothing.
        let r: Value = import(csv.as_bytes().to_vec(), "?dry_run=true")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            (r["created"].as_i64(), r["failed"].as_i64()),
            (Some(2), Some(1)),
            "{r}"
        );
        let none: Value = app.get("/api/v1/contacts", t).await.json().await.unwrap();
        assert!(none["items"].as_array().unwrap().is_empty());
        // The real run: good rows go in, the bad one is reported by row and column.
        let r = import(csv.as_bytes().to_vec(), "").await;
        assert_eq!(r.status(), 200);
        let r: Value = r.json().await.unwrap();
        assert_eq!(r["encoding"], "utf8");
        assert_eq!(r["created"], 2);
        assert_eq!(
            r["errors"],
            json!([{"row": 3, "column": "手机号码", "reason": "invalid_phone", "value": "12345", "name": "李四"}])
        );
        assert_eq!(
            r["columns"][2],
            json!({"header": "公司名称", "field": "account"})
        );
        let zs: Value = app
            .get("/api/v1/contacts?q=zs", t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            zs["items"][0]["account_name"], "武当派",
            "company created and linked"
        );
        assert_eq!(zs["items"][0]["phone_e164"], "+8613800138000");
        let jane: Value = app
            .get("/api/v1/contacts?q=jane", t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(jane["items"][0]["notes"], "多行\n备注", "kept as written");
        // Re-running the same file doubles nothing.
        let r: Value = import(csv.as_bytes().to_vec(), "")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            (r["created"].as_i64(), r["skipped"].as_i64()),
            (Some(0), Some(2)),
            "{r}"
        );
        // The same people from a GBK file (as Chinese Excel saves it), with a changed title, and
        // the update policy: the existing contact is updated, not doubled.
        let (gbk, _, _) = encoding_rs::GBK
            .encode("姓名,手机,职位\n张三,13800138000,名誉掌门\n王五,13900001111,\n");
        let r: Value = import(gbk.into_owned(), "?duplicates=update")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["encoding"], "gb18030");
        assert_eq!(
            (r["created"].as_i64(), r["updated"].as_i64()),
            (Some(1), Some(1)),
            "{r}"
        );
        let zs: Value = app
            .get("/api/v1/contacts?q=zs", t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(zs["items"].as_array().unwrap().len(), 1);
        assert_eq!(zs["items"][0]["title"], "名誉掌门");
        // Neither UTF-8 nor GBK: refused with a clear reason; no name column: refused.
        let r = import(vec![0xFF, 0xFE, 0x80, 0xFF, 0x00, 0x81], "").await;
        assert_eq!(r.status(), 422);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["errors"][0]["code"], "unknown_encoding");
        let r = import(b"phone\n13800138000\n".to_vec(), "").await;
        assert_eq!(r.status(), 422);
    }
);

both!(
    duplicate_contacts_merge_and_unmerge,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let acct = created(&app, "/api/v1/accounts", t, json!({"name": "桃花岛"})).await;
        let keep = created(
            &app,
            "/api/v1/contacts",
            t,
            json!({"name": "黄药师", "phone": "13600000001", "account_id": acct["id"]}),
        )
        .await;
        let dupe = created(&app, "/api/v1/contacts", t, json!({"name": "黄老邪", "phone": "13600000001", "email": "huang@taohua.cn", "title": "岛主"})).await;
        let (kid, did) = (keep["id"].as_str().unwrap(), dupe["id"].as_str().unwrap());
        let call = created(
            &app,
            "/api/v1/activities",
            t,
            json!({"kind": "call", "contact_id": did, "subject": "问候"}),
        )
        .await;
        let order = created(
            &app,
            "/api/v1/orders",
            t,
            json!({"contact_id": did, "lines": [{"name": "玉箫", "unit_price": 100000}]}),
        )
        .await;

        // Keep the survivor's name, take the email and title from the duplicate.
        let r = app
            .post(
                &format!("/api/v1/contacts/{kid}/merge"),
                t,
                json!({"version": 1, "merge_ids": [did], "take": {"email": did, "title": did}}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let merged: Value = r.json().await.unwrap();
        assert_eq!(merged["name"], "黄药师");
        assert_eq!(merged["email"], "huang@taohua.cn");
        assert_eq!(merged["title"], "岛主");
        // Its call and order now belong to the survivor; the duplicate is in the trash.
        let a: Value = app
            .get(
                &format!("/api/v1/activities/{}", call["id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(a["contact_id"], keep["id"]);
        let o: Value = app
            .get(
                &format!("/api/v1/orders/{}", order["id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(o["contact_id"], keep["id"]);
        let gone: Value = app
            .get(&format!("/api/v1/contacts/{did}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert!(gone["deleted_at"].is_string());
        let tl: Value = app
            .get(
                &format!("/api/v1/contacts/{kid}/timeline?types=merge,call"),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        let types: Vec<&str> = tl["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["merge", "call"]);
        // Merging it again, or merging a record into itself, is refused; so is a stale version.
        let r = app
            .post(
                &format!("/api/v1/contacts/{kid}/merge"),
                t,
                json!({"version": 2, "merge_ids": [did]}),
            )
            .await;
        assert_eq!(r.status(), 422);
        let r = app
            .post(
                &format!("/api/v1/contacts/{kid}/merge"),
                t,
                json!({"version": 2, "merge_ids": [kid]}),
            )
            .await;
        assert_eq!(r.status(), 422);
        let other = created(&app, "/api/v1/contacts", t, json!({"name": "另一个"})).await;
        let r = app
            .post(
                &format!("/api/v1/contacts/{kid}/merge"),
                t,
                json!({"version": 1, "merge_ids": [other["id"]]}),
            )
            .await;
        assert_eq!(r.status(), 412);
        // Another tenant's contact cannot be merged in.
        let (_, b) = app.signup("Other Co", "boss@other.test").await;
        let theirs = created(&app, "/api/v1/contacts", &b, json!({"name": "外人"})).await;
        let r = app
            .post(
                &format!("/api/v1/contacts/{kid}/merge"),
                t,
                json!({"version": 2, "merge_ids": [theirs["id"]]}),
            )
            .await;
        assert_eq!(r.status(), 422);
        // Undo: the duplicate comes back with its call and order.
        let r = app
            .post(&format!("/api/v1/contacts/{did}/unmerge"), t, json!({}))
            .await;
        assert_eq!(r.status(), 200);
        let back: Value = r.json().await.unwrap();
        assert!(back["deleted_at"].is_null());
        let a: Value = app
            .get(
                &format!("/api/v1/activities/{}", call["id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(a["contact_id"], dupe["id"]);
        let o: Value = app
            .get(
                &format!("/api/v1/orders/{}", order["id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(o["contact_id"], dupe["id"]);
        let r = app
            .post(&format!("/api/v1/contacts/{did}/unmerge"), t, json!({}))
            .await;
        assert_eq!(r.status(), 409, "nothing left to undo");
        // Both are as they were, field by field (but for version and update stamps); the
        // survivor's timeline shows the merge undone.
        let now_keep: Value = app
            .get(&format!("/api/v1/contacts/{kid}"), t)
            .await
            .json()
            .await
            .unwrap();
        let now_dupe: Value = app
            .get(&format!("/api/v1/contacts/{did}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_same_record(&keep, &now_keep);
        assert_same_record(&dupe, &now_dupe);
        let tl: Value = app
            .get(
                &format!("/api/v1/contacts/{kid}/timeline?types=merge,unmerge"),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        let types: Vec<&str> = tl["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["unmerge", "merge"]);
    }
);

/// Two states of one record agree on every field but version and update stamps.
fn assert_same_record(was: &Value, now: &Value) {
    for (k, v) in was.as_object().unwrap() {
        if ["version", "updated_at", "updated_by"].contains(&k.as_str()) {
            continue;
        }
        assert_eq!(&now[k], v, "field {k}: was {v}, now {}", now[k]);
    }
}

both!(
    account_merge_then_unmerge_restores_both,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let r = app
        .post("/api/v1/custom-fields", t, json!({"entity": "accounts", "key": "erp_code", "kind": "text", "label": "ERP", "unique": true}))
        .await;
        assert_eq!(r.status(), 201);
        let group = created(&app, "/api/v1/accounts", t, json!({"name": "集团"})).await;
        let keep = created(
            &app,
            "/api/v1/accounts",
            t,
            json!({"name": "华东贸易", "parent_id": group["id"], "wechat": "keep_wx01"}),
        )
        .await;
        let dupe = created(
            &app,
            "/api/v1/accounts",
            t,
            json!({"name": "华东贸易有限公司", "credit_code": "91330100799655058B",
        "wechat": "dupe_wx01", "tags": ["重点"], "custom": {"erp_code": "E-001"}}),
        )
        .await;
        let child = created(
            &app,
            "/api/v1/accounts",
            t,
            json!({"name": "华东杭州", "parent_id": dupe["id"]}),
        )
        .await;
        let (kid, did) = (keep["id"].as_str().unwrap(), dupe["id"].as_str().unwrap());
        let r = app
        .post(
            &format!("/api/v1/accounts/{kid}/merge"),
            t,
            json!({"version": keep["version"], "merge_ids": [did],
                   "take": {"credit_code": did, "wechat": did, "tags": did, "custom.erp_code": did}}),
        )
        .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let merged: Value = app
            .get(&format!("/api/v1/accounts/{kid}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(merged["credit_code"], "91330100799655058B");
        assert_eq!(merged["custom"]["erp_code"], "E-001");
        let r = app
            .post(&format!("/api/v1/accounts/{did}/unmerge"), t, json!({}))
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        for (was, id) in [
            (&keep, kid),
            (&dupe, did),
            (&child, child["id"].as_str().unwrap()),
        ] {
            let now: Value = app
                .get(&format!("/api/v1/accounts/{id}"), t)
                .await
                .json()
                .await
                .unwrap();
            assert_same_record(was, &now);
        }
    }
);

both!(contacts_export_as_vcard, |app: TestApp| async move {
    let t = &app.admin_token;
    let acct = created(&app, "/api/v1/accounts", t, json!({"name": "恒山派"})).await;
    created(&app, "/api/v1/contacts", t, json!({"name": "定闲师太", "family_name": "定", "given_name": "闲", "account_id": acct["id"],
        "phone": "138 0000 1111", "email": "dx@hengshan.cn", "title": "掌门; 住持", "notes": "第一行\n第二行", "city": "大同市"})).await;
    created(&app, "/api/v1/contacts", t, json!({"name": "别的人"})).await;
    let r = app
        .req(Method::GET, "/api/v1/contacts/export.vcf", t)
        .query(&[("q", "dxst")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/vcard; charset=utf-8");
    let card = r.text().await.unwrap();
    assert_eq!(
        card.matches("BEGIN:VCARD").count(),
        1,
        "only the filtered contact"
    );
    for line in [
        "FN:定闲师太\r\n",
        "N:定;闲;;;\r\n",
        "ORG:恒山派\r\n",
        "TITLE:掌门\\; 住持\r\n",
        "TEL;TYPE=CELL:+8613800001111\r\n",
        "EMAIL;TYPE=INTERNET:dx@hengshan.cn\r\n",
        "ADR:;;;大同市;;;CN\r\n",
        "NOTE:第一行\\n第二行\r\n",
    ] {
        assert!(card.contains(line), "{line:?} missing in {card}");
    }
});

both!(duplicate_pairs_list, |app: TestApp| async move {
    let t = &app.admin_token;
    let first = created(
        &app,
        "/api/v1/contacts",
        t,
        json!({"name": "任我行", "phone": "13700000007"}),
    )
    .await;
    let second = created(
        &app,
        "/api/v1/contacts",
        t,
        json!({"name": "任教主", "phone": "+86 137-0000-0007"}),
    )
    .await;
    created(
        &app,
        "/api/v1/contacts",
        t,
        json!({"name": "向问天", "phone": "13700000008"}),
    )
    .await;
    let pairs: Value = app
        .get("/api/v1/duplicates/contacts", t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pairs["items"].as_array().unwrap().len(), 1, "{pairs}");
    let p = &pairs["items"][0];
    assert_eq!(
        p["a"]["id"], first["id"],
        "the older one is proposed to keep"
    );
    assert_eq!(p["b"]["id"], second["id"]);
    assert_eq!(p["score"], 90);
    assert_eq!(p["matched"], json!(["phone"]));
    // The duplicates page lists it with a link to merge the two side by side.
    let (browser, _) = app
        .session("admin@acme.test", "correct horse battery")
        .await;
    let html = browser
        .get(app.url("/customers/duplicates"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("任我行")
            && html.contains("任教主")
            && html.contains("class=\"button merge\"")
            && html.contains("/merge?other="),
        "{html}"
    );
    // A rep who cannot see both sides is not shown the pair.
    let (_, rep) = app.user_with_role("sales", "rep@acme.test").await;
    let none: Value = app
        .get("/api/v1/duplicates/contacts", &rep)
        .await
        .json()
        .await
        .unwrap();
    assert!(none["items"].as_array().unwrap().is_empty());
    // Once merged, the pair is gone.
    let r = app
        .post(
            &format!("/api/v1/contacts/{}/merge", first["id"].as_str().unwrap()),
            t,
            json!({"version": 1, "merge_ids": [second["id"]]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let after: Value = app
        .get("/api/v1/duplicates/contacts", t)
        .await
        .json()
        .await
        .unwrap();
    assert!(after["items"].as_array().unwrap().is_empty());
});

async fn app_admin_id(app: &TestApp) -> Value {
    let me: Value = app
        .get("/api/v1/me", &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    me["user"]["id"].clone()
}

// The search box ranks the name as typed, then names starting so, then values (pinyin,
// initials, phone) starting so, then the rest — across accounts and contacts.
both!(
    search_ranks_prefixes_before_substrings,
    |app: TestApp| async move {
        let t = &app.admin_token;
        for name in ["华中天成", "湖中添彩", "金桥电子"] {
            created(&app, "/api/v1/accounts", t, json!({"name": name})).await;
        }
        created(&app, "/api/v1/accounts", t, json!({"name": "青岛港务"})).await;
        for name in ["张涛", "赵婷"] {
            created(&app, "/api/v1/contacts", t, json!({"name": name})).await;
        }
        let names = |v: Value| -> Vec<String> {
            v["items"]
                .as_array()
                .unwrap_or_else(|| panic!("{v}"))
                .iter()
                .map(|h| h["name"].as_str().unwrap().to_owned())
                .collect()
        };
        let zt = names(
            app.get("/api/v1/search?q=zt", t)
                .await
                .json()
                .await
                .unwrap(),
        );
        assert_eq!(
            &zt[..2],
            ["张涛", "赵婷"],
            "initials that start so come first: {zt:?}"
        );
        assert!(zt.contains(&"华中天成".to_owned()), "{zt:?}");
        let qd = names(
            app.get("/api/v1/search?q=qd", t)
                .await
                .json()
                .await
                .unwrap(),
        );
        assert_eq!(qd.first().map(String::as_str), Some("青岛港务"), "{qd:?}");
        let exact = names(
            app.get("/api/v1/search?q=%E5%BC%A0%E6%B6%9B", t)
                .await
                .json()
                .await
                .unwrap(),
        );
        assert_eq!(exact.first().map(String::as_str), Some("张涛"));
    }
);

// Lists sorted by name follow pinyin (张 among the z's, as a Chinese reader expects), page by
// page, for contacts and accounts.
both!(name_order_is_pinyin_order, |app: TestApp| async move {
    let t = &app.admin_token;
    for n in ["张三", "李四", "Alice", "王五", "陈六", "安七"] {
        created(&app, "/api/v1/contacts", t, json!({"name": n})).await;
        created(
            &app,
            "/api/v1/accounts",
            t,
            json!({"name": format!("{n}公司")}),
        )
        .await;
    }
    for (list, suffix) in [("contacts", ""), ("accounts", "公司")] {
        let mut names = vec![];
        let mut cursor = String::new();
        loop {
            let page: Value = app
                .get(&format!("/api/v1/{list}?sort=name&limit=2{cursor}"), t)
                .await
                .json()
                .await
                .unwrap();
            names.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["name"].as_str().unwrap().to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        let expected: Vec<String> = ["Alice", "安七", "陈六", "李四", "王五", "张三"]
            .iter()
            .map(|n| format!("{n}{suffix}"))
            .collect();
        assert_eq!(names, expected, "{list}");
    }
});
