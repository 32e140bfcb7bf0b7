//! Custom fields through the API: an admin defines them, and they are validated, stored,
//! filtered, sorted, kept unique and archived the same way everywhere.

use crate::both;
use crate::harness::{refused, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

fn pair(f: &str, c: &str) -> (String, String) {
    (f.to_owned(), c.to_owned())
}

async fn names(app: &TestApp, query: &str) -> Vec<String> {
    let r = app
        .get(&format!("/api/v1/contacts?{query}"), &app.admin_token)
        .await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{query}: {v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The contact fields most tests use.
async fn define(app: &TestApp) -> Value {
    let t = &app.admin_token;
    for body in [
        json!({"entity": "contacts", "key": "region", "kind": "select", "label": "大区",
               "labels": {"en": "Region"}, "options": ["华东", "华北", "华南"], "required": true,
               "default": "华东", "section": "sales"}),
        json!({"entity": "contacts", "key": "tags", "kind": "multi_select", "label": "标签",
               "options": ["VIP", "渠道", "政府"]}),
        json!({"entity": "contacts", "key": "budget", "kind": "money", "label": "预算"}),
        json!({"entity": "contacts", "key": "score", "kind": "number", "label": "评分"}),
        json!({"entity": "contacts", "key": "vip", "kind": "boolean", "label": "贵宾"}),
        json!({"entity": "contacts", "key": "next_visit", "kind": "date", "label": "下次拜访"}),
        json!({"entity": "contacts", "key": "member_no", "kind": "text", "label": "会员号", "unique": true}),
        json!({"entity": "contacts", "key": "referrer", "kind": "user", "label": "推荐人"}),
        json!({"entity": "contacts", "key": "home", "kind": "url", "label": "主页"}),
    ] {
        app.created("/api/v1/custom-fields", t, body).await;
    }
    app.get("/api/v1/custom-fields?entity=contacts", t)
        .await
        .json()
        .await
        .unwrap()
}

both!(
    admins_define_fields_others_read_them,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let fields = define(&app).await;
        let keys: Vec<&str> = fields
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys.len(), 9);
        assert_eq!(
            keys[0], "region",
            "fields keep the order they were added in"
        );

        // A definition is checked as a whole, each field named.
        let bad = app
            .post(
                "/api/v1/custom-fields",
                t,
                json!({"entity": "contacts", "key": "Bad Key", "kind": "select", "label": "",
                   "unique": true, "section": "nowhere", "default": "x"}),
            )
            .await;
        assert_eq!(
            refused(bad).await,
            [
                pair("default", "unknown_option"),
                pair("key", "invalid_key"),
                pair("label", "required"),
                pair("options", "required"),
                pair("section", "unknown"),
                pair("unique", "not_applicable"),
            ]
        );
        let dup = app
            .post(
                "/api/v1/custom-fields",
                t,
                json!({"entity": "contacts", "key": "region", "kind": "text", "label": "x"}),
            )
            .await;
        assert_eq!(refused(dup).await, [pair("key", "taken")]);
        // The same key on another entity is another field.
        app.created(
            "/api/v1/custom-fields",
            t,
            json!({"entity": "accounts", "key": "region", "kind": "text", "label": "大区"}),
        )
        .await;

        // Kind and key never change (stored values would no longer fit); labels do.
        let region = &fields[0];
        let path = format!("/api/v1/custom-fields/{}", region["id"].as_str().unwrap());
        let r = app
            .patch(
                &path,
                t,
                json!({"version": region["version"], "kind": "text", "key": "area"}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            [pair("key", "immutable"), pair("kind", "immutable")]
        );
        let r = app
            .patch(
                &path,
                t,
                json!({"version": region["version"], "label": "销售大区"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        // A stale version is refused.
        let r = app
            .patch(
                &path,
                t,
                json!({"version": region["version"], "label": "x"}),
            )
            .await;
        assert_eq!(r.status(), 412);

        // A sales rep reads the definitions (forms need them) but cannot change them.
        let (_, rep) = app.user_with_role("sales", "rep@example.com").await;
        let seen: Value = app
            .get("/api/v1/custom-fields?entity=contacts", &rep)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(seen.as_array().unwrap().len(), 9);
        let r = app
            .post(
                "/api/v1/custom-fields",
                &rep,
                json!({"entity": "contacts", "key": "mine", "kind": "text", "label": "x"}),
            )
            .await;
        assert_eq!(r.status(), 403);

        // Another company sees none of them.
        let (_, other) = app.signup("别的公司", "boss@other.example").await;
        let theirs: Value = app
            .get("/api/v1/custom-fields", &other)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(theirs, json!([]));
        assert_eq!(app.get(&path, &other).await.status(), 404);
    }
);

both!(
    values_are_validated_and_stored_in_custom,
    |app: TestApp| async move {
        let t = &app.admin_token;
        define(&app).await;
        let me: Value = app.get("/api/v1/me", t).await.json().await.unwrap();
        let me_id = me["user"]["id"]
            .as_str()
            .or(me["id"].as_str())
            .unwrap()
            .to_owned();

        // Every bad value is named `custom.<key>`, in the caller's language.
        let r = app
        .req(Method::POST, "/api/v1/contacts", t)
        .header("accept-language", "zh-CN")
        .json(&json!({"name": "张三", "custom": {
            "region": "火星", "tags": ["VIP", "明星"], "budget": 12.5, "score": "很高",
            "vip": "也许", "next_visit": "2026-02-30", "referrer": "00000000-0000-0000-0000-000000000000",
            "home": "not a url", "nope": 1}}))
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 422);
        let p: Value = r.json().await.unwrap();
        let region = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["field"] == "custom.region")
            .unwrap();
        assert_eq!(region["message"], "不是可选项之一");
        let mut got: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "custom.budget",
                "custom.home",
                "custom.next_visit",
                "custom.nope",
                "custom.referrer",
                "custom.region",
                "custom.score",
                "custom.tags",
                "custom.vip"
            ]
        );
        let none: Value = app.get("/api/v1/contacts", t).await.json().await.unwrap();
        assert_eq!(none["items"], json!([]), "nothing was stored");

        // Good values are stored in their canonical form; the default fills what was left out.
        let c = app.created("/api/v1/contacts",
        t,
        json!({"name": "李四", "custom": {"tags": "政府、VIP", "budget": 1250000, "score": "88.5",
               "vip": "是", "next_visit": "2026-12-01", "referrer": me_id, "home": "example.cn",
               "member_no": "M-001"}}),
    )
    .await;
        assert_eq!(
            c["custom"],
            json!({"region": "华东", "tags": ["VIP", "政府"], "budget": 1250000, "score": 88.5,
               "vip": true, "next_visit": "2026-12-01", "referrer": me_id,
               "home": "https://example.cn", "member_no": "M-001"})
        );

        // A required field cannot be cleared; others can, and absent keys stay.
        let path = format!("/api/v1/contacts/{}", c["id"].as_str().unwrap());
        let r = app
            .patch(&path, t, json!({"version": 1, "custom": {"region": null}}))
            .await;
        assert_eq!(refused(r).await, [pair("custom.region", "required")]);
        let r = app
            .patch(
                &path,
                t,
                json!({"version": 1, "custom": {"home": null, "score": 90}}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let c: Value = r.json().await.unwrap();
        assert_eq!(c["custom"]["score"], 90);
        assert!(c["custom"].get("home").is_none());
        assert_eq!(c["custom"]["member_no"], "M-001");
    }
);

both!(
    unique_values_are_held_by_live_records,
    |app: TestApp| async move {
        let t = &app.admin_token;
        define(&app).await;
        let a = app
            .created(
                "/api/v1/contacts",
                t,
                json!({"name": "甲", "custom": {"member_no": "M-1"}}),
            )
            .await;
        let r = app
            .post(
                "/api/v1/contacts",
                t,
                json!({"name": "乙", "custom": {"member_no": "M-1"}}),
            )
            .await;
        assert_eq!(refused(r).await, [pair("custom.member_no", "taken")]);
        // An edit that keeps its own value is no conflict.
        let path_a = format!("/api/v1/contacts/{}", a["id"].as_str().unwrap());
        let r = app
            .patch(
                &path_a,
                t,
                json!({"version": 1, "custom": {"member_no": "M-1"}, "title": "经理"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        // A record in the trash lets go of its value; coming back it cannot take it again.
        assert_eq!(
            app.req(Method::DELETE, &path_a, t)
                .send()
                .await
                .unwrap()
                .status(),
            204
        );
        app.created(
            "/api/v1/contacts",
            t,
            json!({"name": "乙", "custom": {"member_no": "M-1"}}),
        )
        .await;
        let r = app.post(&format!("{path_a}/restore"), t, json!({})).await;
        assert_eq!(refused(r).await, [pair("custom.member_no", "taken")]);

        // Making a field unique checks the values already stored.
        app.created(
            "/api/v1/custom-fields",
            t,
            json!({"entity": "contacts", "key": "wx_group", "kind": "text", "label": "群"}),
        )
        .await;
        for n in ["丙", "丁"] {
            app.created(
                "/api/v1/contacts",
                t,
                json!({"name": n, "custom": {"wx_group": "G1"}}),
            )
            .await;
        }
        let fields: Value = app
            .get("/api/v1/custom-fields?entity=contacts", t)
            .await
            .json()
            .await
            .unwrap();
        let g = fields
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == "wx_group")
            .unwrap();
        let r = app
            .patch(
                &format!("/api/v1/custom-fields/{}", g["id"].as_str().unwrap()),
                t,
                json!({"version": g["version"], "unique": true}),
            )
            .await;
        assert_eq!(refused(r).await, [pair("unique", "values_not_unique")]);
    }
);

both!(
    lists_filter_and_sort_by_custom_fields,
    |app: TestApp| async move {
        let t = &app.admin_token;
        define(&app).await;
        for (name, region, tags, score, vip, visit) in [
            (
                "王一",
                "华东",
                json!(["VIP"]),
                json!(70),
                true,
                "2026-12-01",
            ),
            (
                "王二",
                "华北",
                json!(["渠道", "VIP"]),
                json!(95.5),
                false,
                "2027-01-15",
            ),
            ("王三", "华东", json!([]), Value::Null, false, "2026-11-01"),
            (
                "王四",
                "华南",
                json!(["政府"]),
                json!(40),
                true,
                "2027-03-01",
            ),
        ] {
            app.created(
                "/api/v1/contacts",
                t,
                json!({"name": name, "custom": {"region": region, "tags": tags, "score": score,
                   "vip": vip, "next_visit": visit}}),
            )
            .await;
        }
        let q = |s: &str| s.to_owned();
        assert_eq!(
            names(&app, &q("custom.region=%E5%8D%8E%E4%B8%9C")).await,
            ["王三", "王一"]
        );
        assert_eq!(names(&app, "custom.tags=VIP").await, ["王二", "王一"]);
        assert_eq!(names(&app, "custom.vip=true").await, ["王四", "王一"]);
        assert_eq!(names(&app, "custom.vip=false").await, ["王二", "王三"]);
        assert_eq!(
            names(&app, "custom.score.min=50&custom.score.max=100").await,
            ["王二", "王一"]
        );
        assert_eq!(
            names(
                &app,
                "custom.next_visit.min=2026-12-01&custom.next_visit.max=2027-01-31"
            )
            .await,
            ["王二", "王一"]
        );
        // Sorting by a custom field pages through every record once, missing values first.
        let mut seen = vec![];
        let mut cursor = String::new();
        loop {
            let v: Value = app
                .get(
                    &format!("/api/v1/contacts?sort=-custom.score&limit=1{cursor}"),
                    t,
                )
                .await
                .json()
                .await
                .unwrap();
            seen.extend(
                v["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["name"].as_str().unwrap().to_owned()),
            );
            match v["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(seen, ["王二", "王一", "王四", "王三"]);
        assert_eq!(
            names(&app, "sort=custom.next_visit").await,
            ["王三", "王一", "王二", "王四"]
        );

        // Filters name what is wrong with them.
        for (query, field, code) in [
            ("custom.nope=1", "custom.nope", "unknown_field"),
            ("custom.score.min=abc", "custom.score.min", "invalid_number"),
            ("custom.region.min=1", "custom.region.min", "not_applicable"),
            ("sort=custom.tags", "sort", "unknown_field"),
        ] {
            let r = app.get(&format!("/api/v1/contacts?{query}"), t).await;
            assert_eq!(refused(r).await, [pair(field, code)], "{query}");
        }
        // Other parameters are still checked.
        let r = app.get("/api/v1/contacts?colour=red", t).await;
        assert_eq!(r.status(), 400);
    }
);

both!(
    archived_fields_keep_their_values,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let fields = define(&app).await;
        let c = app
            .created(
                "/api/v1/contacts",
                t,
                json!({"name": "赵五", "custom": {"score": 61}}),
            )
            .await;
        let score = fields
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == "score")
            .unwrap();
        let path = format!("/api/v1/custom-fields/{}", score["id"].as_str().unwrap());
        let r = app
            .patch(
                &path,
                t,
                json!({"version": score["version"], "archived": true}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let live: Value = app
            .get("/api/v1/custom-fields?entity=contacts", t)
            .await
            .json()
            .await
            .unwrap();
        assert!(live.as_array().unwrap().iter().all(|f| f["key"] != "score"));
        let all: Value = app
            .get("/api/v1/custom-fields?entity=contacts&archived=true", t)
            .await
            .json()
            .await
            .unwrap();
        assert!(all.as_array().unwrap().iter().any(|f| f["key"] == "score"));
        // The value stays on the record, and can no longer be written.
        let cpath = format!("/api/v1/contacts/{}", c["id"].as_str().unwrap());
        let got: Value = app.get(&cpath, t).await.json().await.unwrap();
        assert_eq!(got["custom"]["score"], 61);
        let r = app
            .patch(&cpath, t, json!({"version": 1, "custom": {"score": 70}}))
            .await;
        assert_eq!(refused(r).await, [pair("custom.score", "unknown_field")]);
        // Brought back, it is live again with the value intact.
        let r = app
            .patch(
                &path,
                t,
                json!({"version": score["version"].as_i64().unwrap() + 1, "archived": false}),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(names(&app, "custom.score.min=60").await, ["赵五"]);
    }
);

both!(tags_and_bulk_actions, |app: TestApp| async move {
    let t = &app.admin_token;
    let (rep, rep_token) = app.user_with_role("sales", "rep2@example.com").await;
    let mut ids = vec![];
    for n in ["钱一", "钱二", "钱三"] {
        let c = app
            .created(
                "/api/v1/contacts",
                t,
                json!({"name": n, "tags": [" VIP ", "VIP", "展会"]}),
            )
            .await;
        assert_eq!(c["tags"], json!(["VIP", "展会"]), "trimmed, each once");
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let mine = app
        .created("/api/v1/contacts", &rep_token, json!({"name": "孙七"}))
        .await;

    // Tag three, one of them twice over: the one already tagged is left as it is.
    let r = app
        .post(
            "/api/v1/contacts/bulk",
            t,
            json!({"ids": [ids[0], ids[1]], "action": "tag", "tag": "重点"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        names(&app, "tag=%E9%87%8D%E7%82%B9").await,
        ["钱二", "钱一"]
    );
    let r: Value = app
        .post(
            "/api/v1/contacts/bulk",
            t,
            json!({"ids": [ids[0]], "action": "untag", "tag": "VIP"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["done"].as_array().unwrap().len(), 1);
    assert_eq!(names(&app, "tag=VIP").await, ["钱二", "钱三"]);

    // Assign: every record goes to the rep, with a transfer on its timeline.
    let r: Value = app
        .post(
            "/api/v1/contacts/bulk",
            t,
            json!({"ids": ids, "action": "assign", "owner_id": rep["id"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["done"].as_array().unwrap().len(), 3, "{r}");
    let c: Value = app
        .get(&format!("/api/v1/contacts/{}", ids[0]), t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["owner_id"], rep["id"]);

    // A rep's bulk action changes only what the rep may change: a record outside their scope
    // is reported as not found (its existence is not given away), the others are done.
    let other = app
        .created("/api/v1/contacts", t, json!({"name": "周八"}))
        .await;
    let r: Value = app
        .post(
            "/api/v1/contacts/bulk",
            &rep_token,
            json!({"ids": [mine["id"], other["id"], "00000000-0000-0000-0000-000000000000"],
                   "action": "delete"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["done"], json!([mine["id"]]));
    let reasons: Vec<&str> = r["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["not_found", "not_found"], "{r}");

    // Bad requests name the field.
    let r = app
        .post(
            "/api/v1/contacts/bulk",
            t,
            json!({"ids": [], "action": "assign"}),
        )
        .await;
    assert_eq!(
        refused(r).await,
        [pair("ids", "required"), pair("owner_id", "required")]
    );
});

both!(
    saved_views_are_personal_or_shared,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let (_, rep) = app.user_with_role("sales", "rep3@example.com").await;
        let (_, other_rep) = app.user_with_role("sales", "rep4@example.com").await;
        let mine = app.created("/api/v1/saved-views",
        &rep,
        json!({"entity": "contacts", "name": "我的浙江客户", "query": "?province=浙江省&cursor=abc&col=phone"}),
    )
    .await;
        assert_eq!(
            mine["query"], "province=%E6%B5%99%E6%B1%9F%E7%9C%81&col=phone",
            "the cursor is not part of a view"
        );
        // A rep cannot share with everyone; an admin can.
        let r = app
            .post(
                "/api/v1/saved-views",
                &rep,
                json!({"entity": "contacts", "name": "全员", "query": "", "shared": true}),
            )
            .await;
        assert_eq!(refused(r).await, [pair("shared", "out_of_scope")]);
        app.created(
            "/api/v1/saved-views",
            t,
            json!({"entity": "contacts", "name": "贵宾", "query": "tag=VIP", "shared": true}),
        )
        .await;
        let r = app
            .post(
                "/api/v1/saved-views",
                t,
                json!({"entity": "nothing", "name": "", "query": "x"}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            [pair("entity", "unknown_module"), pair("name", "required")]
        );
        let names_of = |v: Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x["name"].as_str().unwrap().to_owned())
                .collect()
        };
        let seen: Value = app
            .get("/api/v1/saved-views?entity=contacts", &rep)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(names_of(seen), ["贵宾", "我的浙江客户"]);
        // Another rep sees the shared view only, and cannot touch someone else's.
        let seen: Value = app
            .get("/api/v1/saved-views?entity=contacts", &other_rep)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(names_of(seen), ["贵宾"]);
        let path = format!("/api/v1/saved-views/{}", mine["id"].as_str().unwrap());
        assert_eq!(app.get(&path, &other_rep).await.status(), 404);
        let r = app
            .patch(&path, &rep, json!({"version": 1, "name": "浙江重点"}))
            .await;
        assert_eq!(r.status(), 200);
        let r = app
            .patch(&path, &rep, json!({"version": 1, "name": "旧版本"}))
            .await;
        assert_eq!(r.status(), 412);
        assert_eq!(
            app.req(Method::DELETE, &path, &rep)
                .send()
                .await
                .unwrap()
                .status(),
            204
        );
    }
);

both!(
    custom_fields_and_tags_export_and_import_back,
    |app: TestApp| async move {
        let t = &app.admin_token;
        define(&app).await;
        app.created(
            "/api/v1/contacts",
            t,
            json!({"name": "吴九", "tags": ["VIP", "展会"], "custom": {"region": "华南",
               "tags": ["VIP", "政府"], "budget": 123450, "vip": true, "member_no": "M-9",
               "referrer": "admin@acme.test"}}),
        )
        .await;
        let r = app
            .req(Method::GET, "/api/v1/contacts/export.csv", t)
            .header("accept-language", "zh-CN")
            .send()
            .await
            .unwrap();
        let csv = r.text().await.unwrap();
        let mut lines = csv.lines();
        let header = lines.next().unwrap();
        // The custom "标签" field's label repeats the built-in tags column's: it is written by key.
        for label in [
            "标签",
            "custom.tags",
            "大区",
            "预算",
            "贵宾",
            "会员号",
            "推荐人",
        ] {
            assert!(header.contains(label), "{header}");
        }
        let row = lines.next().unwrap();
        for v in [
            "\"VIP, 展会\"",
            "华南",
            "VIP、政府",
            "1234.50",
            "是",
            "M-9",
            "admin@acme.test",
        ] {
            assert!(row.contains(v), "{v} in {row}");
        }

        // The file imports back into another row: every custom value read as the API would.
        let again = csv.replace("吴九", "郑十").replace("M-9", "M-10");
        let r: Value = app
            .req(
                Method::POST,
                "/api/v1/imports/contacts?duplicates=create",
                t,
            )
            .header("content-type", "text/csv")
            .body(again)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["created"], 1, "{r}");
        let page: Value = app
            .get("/api/v1/contacts?custom.member_no=M-10", t)
            .await
            .json()
            .await
            .unwrap();
        let c = &page["items"][0];
        assert_eq!(c["name"], "郑十");
        assert_eq!(c["tags"], json!(["VIP", "展会"]));
        assert_eq!(c["custom"]["budget"], 123450);
        assert_eq!(c["custom"]["vip"], true);
        assert_eq!(c["custom"]["tags"], json!(["VIP", "政府"]));
        assert_eq!(c["custom"]["region"], "华南");
        assert!(c["custom"]["referrer"].is_string());

        // A bad custom value is reported with its column, and the row is skipped.
        let bad = "姓名,大区,会员号\n冯十一,火星,M-11\n";
        let r: Value = app
            .req(Method::POST, "/api/v1/imports/contacts", t)
            .header("content-type", "text/csv")
            .body(bad)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["failed"], 1, "{r}");
        assert_eq!(r["errors"][0]["column"], "大区");
        assert_eq!(r["errors"][0]["reason"], "unknown_option");
    }
);
