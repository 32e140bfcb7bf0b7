//! The knowledge base: articles with their languages, drafts kept to their writers, suggestions
//! for a question in Chinese or English, votes, an article sent in a ticket reply, and the
//! public help centre showing only what is published and public.

use reqwest::Client;
use serde_json::{json, Value};

use crate::both;
use crate::harness::{refused, TestApp};

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a CSRF field") + 20;
    html[at..].split('"').next().unwrap().to_owned()
}

both!(
    articles_languages_drafts_and_suggestions,
    |app: TestApp| async move {
        let t = &app.admin_token;
        // Bad input names its fields.
        let r = app
            .post(
                "/api/v1/articles",
                t,
                json!({"locale": "fr", "status": "live"}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            vec![
                ("body".into(), "required".into()),
                ("locale".into(), "invalid".into()),
                ("status".into(), "invalid".into()),
                ("title".into(), "required".into()),
            ]
        );
        let r = app
            .post(
                "/api/v1/articles",
                t,
                json!({"title": "a\u{0}b", "body": "x"}),
            )
            .await;
        assert_eq!(refused(r).await[0].0, "title");

        let original = app
        .created(
            "/api/v1/articles",
            t,
            json!({"title": "设备无法开机怎么办", "body": "确认电源插头已插好。\n\n按住电源键五秒。",
                   "category": "维修", "status": "published", "audience": "public", "locale": "zh-CN"}),
        )
        .await;
        let oid = original["id"].as_str().unwrap();
        assert_eq!(original["group_id"], original["id"]);
        assert!(original["published_at"].is_string());
        let english = app
            .created(
                "/api/v1/articles",
                t,
                json!({"title": "The machine does not switch on", "body": "Check the plug.",
                   "locale": "en", "translation_of": oid, "status": "published"}),
            )
            .await;
        // A translation joins the original's group and starts where it is.
        assert_eq!(english["group_id"], original["id"]);
        assert_eq!(english["audience"], "public");
        assert_eq!(english["category"], "维修");
        // One live article per language of a group.
        let r = app
        .post(
            "/api/v1/articles",
            t,
            json!({"title": "Another English", "body": "x", "locale": "en", "translation_of": oid}),
        )
        .await;
        assert_eq!(refused(r).await, vec![("locale".into(), "taken".into())]);
        let langs: Value = app
            .get(&format!("/api/v1/articles/{oid}/translations"), t)
            .await
            .json()
            .await
            .unwrap();
        let locales: Vec<&str> = langs["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["locale"].as_str().unwrap())
            .collect();
        assert_eq!(locales, vec!["en", "zh-CN"]);
        // Trashing the English one frees its language; restoring it beside a new one is refused.
        let eid = english["id"].as_str().unwrap();
        let r = app
            .req(
                reqwest::Method::DELETE,
                &format!("/api/v1/articles/{eid}"),
                t,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        app.created(
        "/api/v1/articles",
        t,
        json!({"title": "The machine will not start", "body": "Check the plug and the power switch.", "locale": "en", "translation_of": oid, "status": "published"}),
    )
    .await;
        let r = app
            .post(&format!("/api/v1/articles/{eid}/restore"), t, json!({}))
            .await;
        assert_eq!(refused(r).await, vec![("locale".into(), "taken".into())]);

        let internal = app
        .created(
            "/api/v1/articles",
            t,
            json!({"title": "运行噪音偏大的处理", "body": "风扇积尘或轴承磨损，安排工程师上门。",
                   "status": "published", "audience": "internal"}),
        )
        .await;
        let draft = app
            .created(
                "/api/v1/articles",
                t,
                json!({"title": "开机指示灯闪烁（草稿）", "body": "待补充"}),
            )
            .await;
        assert_eq!(draft["status"], "draft");
        assert!(draft["published_at"].is_null());

        // A rep reads what is published, not someone else's draft.
        let (_, rep) = app.user_with_role("sales", "rep@acme.test").await;
        let r = app
            .get(
                &format!("/api/v1/articles/{}", draft["id"].as_str().unwrap()),
                &rep,
            )
            .await;
        assert_eq!(r.status(), 404);
        let listed: Value = app
            .get("/api/v1/articles", &rep)
            .await
            .json()
            .await
            .unwrap();
        let titles: Vec<&str> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["title"].as_str().unwrap())
            .collect();
        assert!(titles.contains(&"运行噪音偏大的处理"), "{titles:?}");
        assert!(!titles.iter().any(|t| t.contains("草稿")), "{titles:?}");
        let r = app
            .post("/api/v1/articles", &rep, json!({"title": "x", "body": "y"}))
            .await;
        assert_eq!(r.status(), 403);

        // The list searches titles by pinyin and bodies by words.
        for q in ["shebei", "sbwfkj", "轴承"] {
            let found: Value = app
                .req(reqwest::Method::GET, "/api/v1/articles", t)
                .query(&[("q", q)])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(found["items"].as_array().unwrap().len(), 1, "{q}: {found}");
        }

        // Suggestions for a whole question: the best article first, one per group (the
        // reader's language), internal ones too for colleagues, never drafts.
        let s: Value = app
            .req(reqwest::Method::GET, "/api/v1/articles/suggest", t)
            .query(&[
                ("q", "客户说设备开不了机，电源指示灯也不亮"),
                ("locale", "zh-CN"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = s["items"].as_array().unwrap();
        assert_eq!(items[0]["id"], original["id"], "{s}");
        assert!(items.iter().all(|i| i["id"] != draft["id"]));
        let s: Value = app
            .req(reqwest::Method::GET, "/api/v1/articles/suggest", t)
            .query(&[("q", "the machine will not switch on"), ("locale", "en")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(s["items"][0]["locale"], "en", "{s}");
        assert_eq!(
            s["items"].as_array().unwrap().len(),
            1,
            "one per group: {s}"
        );
        let s: Value = app
            .req(reqwest::Method::GET, "/api/v1/articles/suggest", t)
            .query(&[("q", "噪音很大")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(s["items"][0]["id"], internal["id"], "{s}");

        // An article sent in a reply: its text goes to the customer, it counts as used.
        let ticket = app
            .created("/api/v1/tickets", t, json!({"subject": "设备开不了机"}))
            .await;
        let tid = ticket["id"].as_str().unwrap();
        let m: Value = app
            .created(
                &format!("/api/v1/tickets/{tid}/messages"),
                t,
                json!({"kind": "reply", "article_id": oid}),
            )
            .await;
        assert!(
            m["body"]
                .as_str()
                .unwrap()
                .starts_with("设备无法开机怎么办\n\n确认电源"),
            "{m}"
        );
        let a: Value = app
            .get(&format!("/api/v1/articles/{oid}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(a["used"], 1);
        let r = app
            .post(
                &format!("/api/v1/tickets/{tid}/messages"),
                t,
                json!({"kind": "reply", "article_id": draft["id"]}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            vec![("article_id".into(), "unknown".into())]
        );

        // Votes: kept one by one, counted; a draft takes none.
        let v = app
            .created(
                &format!("/api/v1/articles/{oid}/votes"),
                &rep,
                json!({"helpful": false, "comment": "没说指示灯颜色"}),
            )
            .await;
        assert_eq!(v["channel"], "agent");
        let r = app
            .post(&format!("/api/v1/articles/{oid}/votes"), t, json!({}))
            .await;
        assert_eq!(
            refused(r).await,
            vec![("helpful".into(), "required".into())]
        );
        let r = app
            .post(
                &format!("/api/v1/articles/{}/votes", draft["id"].as_str().unwrap()),
                t,
                json!({"helpful": true}),
            )
            .await;
        assert_eq!(r.status(), 404);
        let votes: Value = app
            .get(&format!("/api/v1/articles/{oid}/votes"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(votes["items"][0]["comment"], "没说指示灯颜色");
    }
);

both!(
    the_help_centre_shows_only_published_public_articles,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let public = app
            .created(
                "/api/v1/articles",
                t,
                json!({"title": "如何修改发票抬头", "body": "发票开具后三十天内可以申请重开。",
                   "category": "财务", "status": "published", "audience": "public"}),
            )
            .await;
        let pid = public["id"].as_str().unwrap();
        let english = app
            .created(
                "/api/v1/articles",
                t,
                json!({"title": "Correcting an invoice", "body": "Within 30 days.", "locale": "en",
                   "translation_of": pid, "status": "published"}),
            )
            .await;
        let internal = app
            .created(
                "/api/v1/articles",
                t,
                json!({"title": "发票作废内部流程", "body": "财务内部", "status": "published"}),
            )
            .await;
        let draft = app
            .created(
                "/api/v1/articles",
                t,
                json!({"title": "发票草稿", "body": "未完成", "audience": "public"}),
            )
            .await;
        let tenant = &app.tenant_id;
        let c = Client::builder().cookie_store(true).build().unwrap();
        let get = |path: String, lang: &'static str| {
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
        // The index: each group once, in the visitor's language.
        let (status, zh) = get(format!("/help/{tenant}"), "zh-CN").await;
        assert_eq!(status, 200);
        assert!(
            zh.contains("如何修改发票抬头") && zh.contains("财务"),
            "{zh}"
        );
        assert!(!zh.contains("Correcting an invoice"));
        let (_, en) = get(format!("/help/{tenant}"), "en").await;
        assert!(en.contains("Correcting an invoice") && !en.contains("如何修改发票抬头"));
        for page in [&zh, &en] {
            assert!(!page.contains("内部流程") && !page.contains("发票草稿"));
        }
        // A question finds it; internal and draft articles are never suggested here.
        let (_, found) = get(format!("/help/{tenant}?q=发票抬头写错了"), "zh-CN").await;
        assert!(found.contains("如何修改发票抬头"), "{found}");
        assert!(!found.contains("内部流程") && !found.contains("发票草稿"));
        // Internal, draft, unknown and other tenants' ids are not found.
        for id in [&internal["id"], &draft["id"]] {
            let (status, _) = get(
                format!("/help/{tenant}/articles/{}", id.as_str().unwrap()),
                "zh-CN",
            )
            .await;
            assert_eq!(status, 404);
        }
        let (status, _) = get(
            format!("/help/{}/articles/{pid}", uuid::Uuid::now_v7()),
            "zh-CN",
        )
        .await;
        assert_eq!(status, 404);
        // Reading counts a view and offers the other language; a vote needs the page's token.
        let (status, page) = get(format!("/help/{tenant}/articles/{pid}"), "zh-CN").await;
        assert_eq!(status, 200);
        assert!(
            page.contains(english["id"].as_str().unwrap()),
            "other language linked"
        );
        let r = c
            .post(app.url(&format!("/help/{tenant}/articles/{pid}/vote")))
            .form(&[("helpful", "true")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let csrf = csrf_of(&page);
        let r = c
            .post(app.url(&format!("/help/{tenant}/articles/{pid}/vote")))
            .form(&[
                ("_csrf", csrf.as_str()),
                ("helpful", "false"),
                ("comment", "没写邮寄地址"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("vote-thanks"));
        // The same visitor voting again (even the other way) counts once.
        let r = c
            .post(app.url(&format!("/help/{tenant}/articles/{pid}/vote")))
            .form(&[("_csrf", csrf.as_str()), ("helpful", "true")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let a: Value = app
            .get(&format!("/api/v1/articles/{pid}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            (
                a["views"].as_i64(),
                a["unhelpful"].as_i64(),
                a["helpful"].as_i64()
            ),
            (Some(1), Some(1), Some(0)),
            "{a}"
        );
        let votes: Value = app
            .get(&format!("/api/v1/articles/{pid}/votes"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(votes["items"][0]["channel"], "public");
        assert_eq!(votes["items"][0]["comment"], "没写邮寄地址");
    }
);

both!(
    one_address_votes_a_bounded_number_of_times_an_hour,
    |app: TestApp| async move {
        let tenant: uuid::Uuid = app.tenant_id.parse().unwrap();
        let per_hour = guanxi_service::articles::PUBLIC_VOTES_PER_HOUR;
        let mut ids = vec![];
        for i in 0..=per_hour {
            let a = app
                .created(
                    "/api/v1/articles",
                    &app.admin_token,
                    json!({"title": format!("文章 {i}"), "body": "正文", "locale": "zh-CN",
                           "status": "published", "audience": "public"}),
                )
                .await;
            ids.push(a["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap());
        }
        let vote = |id: uuid::Uuid, ip: &'static str| {
            let db = app.db.clone();
            async move {
                guanxi_service::articles::public_vote(
                    &db,
                    tenant,
                    id,
                    guanxi_service::articles::VoteInput {
                        helpful: Some(true),
                        comment: None,
                    },
                    ip,
                )
                .await
            }
        };
        for id in &ids[..per_hour as usize] {
            assert!(vote(*id, "203.0.113.9").await.is_ok());
        }
        let last = ids[per_hour as usize];
        assert!(matches!(
            vote(last, "203.0.113.9").await,
            Err(guanxi_platform::Error::RateLimited { .. })
        ));
        assert!(vote(last, "198.51.100.7").await.is_ok(), "another address");
    }
);
