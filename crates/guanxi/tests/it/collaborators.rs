//! Collaborators: a deal shared with colleagues beyond their role's scope — to read it (with its
//! quote, timeline, place on the board and in search) or to edit it, never to delete it, hand
//! it over or share it on; set at the deal's version, refused field by field, and taken back.

use crate::both;
use crate::harness::{refused, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

/// Two reps without a team (each sees only their own deals) and a deal `name` of the first's:
/// (first rep, their token, second rep, their token, the deal).
async fn two_reps_and_a_deal(
    app: &TestApp,
    domain: &str,
    name: &str,
) -> (Value, String, Value, String, Value) {
    crate::quotes::pipeline(app).await;
    let (first, a) = app
        .user_with_role("sales", &format!("owner@{domain}"))
        .await;
    let (second, b) = app.user_with_role("sales", &format!("bob@{domain}")).await;
    let acc = app
        .created(
            "/api/v1/accounts",
            &a,
            json!({"name": format!("{name}客户")}),
        )
        .await;
    let deal = app
        .created(
            "/api/v1/opportunities",
            &a,
            json!({"name": name, "account_id": acc["id"], "amount": 100}),
        )
        .await;
    (first, a, second, b, deal)
}

both!(
    a_deal_shared_with_a_colleague_opens_to_them_and_closes_again,
    |app: TestApp| async move {
        let (alice, a, bob, b, deal) = two_reps_and_a_deal(&app, "collab.test", "协作大单").await;
        let id = deal["id"].as_str().unwrap().to_owned();
        let quote = app
            .created(
                "/api/v1/quotes",
                &a,
                json!({"opportunity_id": id, "lines": [{"name": "实施", "unit_price": 10_000}]}),
            )
            .await;
        let deal_url = format!("/api/v1/opportunities/{id}");
        let url = format!("{deal_url}/collaborators");
        let quote_url = format!("/api/v1/quotes/{}", quote["id"].as_str().unwrap());
        let sees = |token: &str| {
            let (app, token, deal_url, quote_url) =
                (&app, token.to_owned(), deal_url.clone(), quote_url.clone());
            async move {
                let one = app.get(&deal_url, &token).await.status().as_u16();
                let quote = app.get(&quote_url, &token).await.status().as_u16();
                let listed: Value = app
                    .get("/api/v1/opportunities", &token)
                    .await
                    .json()
                    .await
                    .unwrap();
                let quotes: Value = app
                    .get("/api/v1/quotes", &token)
                    .await
                    .json()
                    .await
                    .unwrap();
                let found: Value = app
                    .get("/api/v1/search?q=协作大单", &token)
                    .await
                    .json()
                    .await
                    .unwrap();
                (
                    one,
                    quote,
                    listed["items"].as_array().unwrap().len(),
                    quotes["items"].as_array().unwrap().len(),
                    found["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|h| h["kind"] == "opportunity")
                        .count(),
                )
            }
        };
        assert_eq!(sees(&b).await, (404, 404, 0, 0, 0));
        // Counted in his reports only once he may read it.
        let counted = |token: &str| {
            let req = app
                .req(Method::POST, "/api/v1/reports/run", token)
                .json(&json!({"entity": "opportunities", "measures": [{"agg": "count"}]}));
            async move {
                let r: Value = req.send().await.unwrap().json().await.unwrap();
                r["rows"][0][0].as_i64()
            }
        };
        assert_eq!(counted(&b).await, Some(0));
        let put = |token: &str, body: Value| {
            let req = app.req(Method::PUT, &url, token).json(&body);
            async move { req.send().await.unwrap() }
        };
        let shares: Value = app.get(&url, &a).await.json().await.unwrap();
        assert_eq!(shares["shares"], json!([]));
        let v = shares["version"].clone();

        // Bad input is named field by field; nothing changes.
        let r = put(
            &a,
            json!({"version": v, "shares": [
                {"user_id": alice["id"], "access": "read"},
                {"user_id": bob["id"], "access": "read"},
                {"user_id": bob["id"], "access": "edit"},
                {"user_id": uuid::Uuid::now_v7(), "access": "read"}]}),
        )
        .await;
        assert_eq!(
            refused(r).await,
            vec![
                ("shares[0].user_id".into(), "owner".into()),
                ("shares[2].user_id".into(), "duplicate".into())
            ]
        );
        let r = put(
            &a,
            json!({"version": v, "shares": [{"user_id": uuid::Uuid::now_v7(), "access": "read"}]}),
        )
        .await;
        assert_eq!(
            refused(r).await,
            vec![("shares[0].user_id".into(), "unknown".into())]
        );
        let r = put(
            &a,
            json!({"version": v, "shares": [{"user_id": bob["id"], "access": "admin"}]}),
        )
        .await;
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("shares[0].access"));
        // Two owners' tabs share from the same version: one wins, the other is refused.
        let body = |access: &str| json!({"version": v, "shares": [{"user_id": bob["id"], "access": access}]});
        let (x, y) = tokio::join!(put(&a, body("read")), put(&a, body("read")));
        let mut codes = [x.status().as_u16(), y.status().as_u16()];
        codes.sort();
        assert_eq!(codes, [200, 412]);

        // Shared to read: the deal, its quote, the lists of both, the board and search open
        // to Bob.
        assert_eq!(sees(&b).await, (200, 200, 1, 1, 1));
        assert_eq!(counted(&b).await, Some(1), "and his reports count it");
        let pipeline =
            app.get(&deal_url, &b).await.json::<Value>().await.unwrap()["pipeline_id"].clone();
        let board: Value = app
            .get(
                &format!("/api/v1/pipelines/{}/board", pipeline.as_str().unwrap()),
                &b,
            )
            .await
            .json()
            .await
            .unwrap();
        let (cards, counted) =
            board["columns"]
                .as_array()
                .unwrap()
                .iter()
                .fold((0, 0), |(n, c), col| {
                    (
                        n + col["items"].as_array().unwrap().len(),
                        c + col["count"].as_i64().unwrap(),
                    )
                });
        assert_eq!((cards, counted), (1, 1));
        // The deal's timeline opens to him too.
        let r = app.get(&format!("{deal_url}/timeline"), &b).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        // He is told, with a link to the deal.
        let told: Value = app
            .get("/api/v1/notifications", &b)
            .await
            .json()
            .await
            .unwrap();
        let notice = &told["items"][0];
        assert_eq!(
            (notice["kind"].as_str(), notice["link"].as_str()),
            (
                Some("shared_with_you"),
                Some(format!("/opportunities/{id}").as_str())
            )
        );
        // Reading is not editing.
        let now: Value = app.get(&deal_url, &b).await.json().await.unwrap();
        let r = app
            .patch(
                &deal_url,
                &b,
                json!({"version": now["version"], "amount": 200}),
            )
            .await;
        assert_eq!(r.status(), 403);

        // Shared to edit: Bob changes the deal, but may not take it, trash it or share it on.
        let shares: Value = app.get(&url, &a).await.json().await.unwrap();
        let r = put(
            &a,
            json!({"version": shares["version"], "shares": [{"user_id": bob["id"], "access": "edit"}]}),
        )
        .await;
        assert_eq!(r.status(), 200);
        let after: Value = r.json().await.unwrap();
        assert_eq!(after["shares"][0]["access"], "edit");
        assert_eq!(after["shares"][0]["name"], "bob@collab.test");
        let r = app
            .patch(
                &deal_url,
                &b,
                json!({"version": after["version"], "amount": 200}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let edited: Value = r.json().await.unwrap();
        assert_eq!(edited["amount"], 200);
        // The deal's timeline says who changed what.
        let timeline: Value = app
            .get(&format!("{deal_url}/timeline?types=update"), &a)
            .await
            .json()
            .await
            .unwrap();
        let newest = &timeline["items"][0];
        assert_eq!(
            (newest["actor_name"].as_str(), newest["changed"].clone()),
            (Some("bob@collab.test"), json!(["amount"]))
        );
        let r = app
            .patch(
                &deal_url,
                &b,
                json!({"version": edited["version"], "owner_id": bob["id"]}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            vec![("owner_id".into(), "out_of_scope".into())]
        );
        let r = app.req(Method::DELETE, &deal_url, &b).send().await.unwrap();
        assert_eq!(r.status(), 403);
        let r = put(&b, json!({"version": edited["version"], "shares": []})).await;
        assert_eq!(r.status(), 403);
        // The change is on the deal's record of who did what.
        let audit: Value = app
            .get(
                &format!("/api/v1/audit-events?entity=opportunities&entity_id={id}"),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        assert!(audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "share"));

        // Taken back: the deal closes to Bob again.
        let r = put(&a, json!({"version": edited["version"], "shares": []})).await;
        assert_eq!(r.status(), 200);
        assert_eq!(sees(&b).await, (404, 404, 0, 0, 0));
    }
);

both!(
    the_deal_page_shares_a_deal_and_says_so_to_the_colleague,
    |app: TestApp| async move {
        let (_, _, carol, _, deal) =
            two_reps_and_a_deal(&app, "collab-page.test", "页面协作单").await;
        let page_url = app.url(&format!("/opportunities/{}", deal["id"].as_str().unwrap()));
        let (owner, session) = app
            .session("owner@collab-page.test", "password-123456")
            .await;
        let page = owner
            .get(&page_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("id=\"add-collaborator\""));
        let form = |who: &str, access: &str, version: &Value| {
            vec![
                (
                    "_csrf".to_owned(),
                    session["csrf_token"].as_str().unwrap().to_owned(),
                ),
                ("version".to_owned(), version.to_string()),
                ("s0.user_id".to_owned(), who.to_owned()),
                ("s0.access".to_owned(), access.to_owned()),
            ]
        };
        // A garbled colleague is refused with a message, not an error page.
        let r = owner
            .post(format!("{page_url}/collaborators"))
            .form(&form("nobody", "edit", &deal["version"]))
            .send()
            .await
            .unwrap();
        assert!(r.url().as_str().contains("error="), "{}", r.url());
        let r = owner
            .post(format!("{page_url}/collaborators"))
            .form(&form(
                carol["id"].as_str().unwrap(),
                "edit",
                &deal["version"],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(!r.url().as_str().contains("error="), "{}", r.url());
        let (colleague, _) = app.session("bob@collab-page.test", "password-123456").await;
        let page = colleague
            .get(&page_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // She can edit (the deal's edit link) but not share it on or trash it.
        assert!(
            page.contains("页面协作单"),
            "{}",
            &page[page.len().saturating_sub(3000)..]
        );
        assert!(
            page.contains("/edit\""),
            "an edit link for a collaborator with edit"
        );
        assert!(!page.contains("id=\"add-collaborator\""));
        assert!(!page.contains("/delete\""));
        assert!(page.contains("Shared with you") || page.contains("已与你共享"));
    }
);
