//! Business calendars through the API: an admin keeps the company's and a team's working hours,
//! holidays and 调休 days (typed or from an iCal file); deadlines count working time only; bad
//! input is named field by field; everyone else reads them.

use crate::both;
use crate::harness::{refused, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

fn pair(f: &str, c: &str) -> (String, String) {
    (f.to_owned(), c.to_owned())
}

/// The deadline `minutes` working minutes after `start` (China time, `YYYY-MM-DDTHH:MM`).
async fn deadline(app: &TestApp, id: &str, start: &str, minutes: i64) -> Value {
    let r = app
        .req(
            Method::GET,
            &format!("/api/v1/calendars/{id}/trial"),
            &app.admin_token,
        )
        .query(&[
            ("start", format!("{start}:00+08:00")),
            ("minutes", minutes.to_string()),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v["deadline"].clone()
}

both!(
    working_time_holidays_and_make_up_days,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let hq = app
        .created(
            "/api/v1/calendars",
            t,
            json!({
                "name": "总部", "is_default": true,
                "week": {"mon": ["09:00-12:00", "13:30-18:00"], "tue": ["09:00-12:00", "13:30-18:00"],
                         "wed": ["09:00-12:00", "13:30-18:00"], "thu": ["09:00-12:00", "13:30-18:00"],
                         "fri": ["09:00-12:00", "13:30-18:00"]},
                "days": [{"date": "2026-10-01", "kind": "holiday", "name": "国庆节"},
                         {"date": "2026-10-02", "kind": "holiday", "name": "国庆节"},
                         {"date": "2026-10-10", "kind": "workday", "name": "国庆节调休"}]
            }),
        )
        .await;
        let id = hq["id"].as_str().unwrap().to_owned();
        assert_eq!(
            hq["time_zone"], "Asia/Shanghai",
            "the company's zone by default"
        );
        assert_eq!(hq["week"]["mon"], json!(["09:00-12:00", "13:30-18:00"]));
        assert_eq!(hq["week"]["sat"], json!([]));
        // Over lunch: Friday 11:00 + 4 h is 16:30 (in UTC, 08:30).
        assert_eq!(
            deadline(&app, &id, "2026-12-04T11:00", 240).await,
            "2026-12-04T08:30:00Z"
        );
        // Over the weekend.
        assert_eq!(
            deadline(&app, &id, "2026-12-04T17:00", 120).await,
            "2026-12-07T02:00:00Z"
        );
        // Over the holiday (Thursday 1 and Friday 2 October) to Monday the 5th.
        assert_eq!(
            deadline(&app, &id, "2026-09-30T17:30", 60).await,
            "2026-10-05T01:30:00Z"
        );
        // The make-up Saturday counts.
        assert_eq!(
            deadline(&app, &id, "2026-10-09T17:30", 60).await,
            "2026-10-10T01:30:00Z"
        );
        // Business time between two instants.
        let r: Value = app
            .req(Method::GET, &format!("/api/v1/calendars/{id}/trial"), t)
            .query(&[
                ("start", "2026-12-04T08:00:00+08:00"),
                ("end", "2026-12-07T08:00:00+08:00"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["business_minutes"], 450);

        // Bad input, named field by field; nothing stored.
        let r = app
        .patch(
            &format!("/api/v1/calendars/{id}"),
            t,
            json!({"version": hq["version"], "time_zone": "Mars/Base",
                   "week": {"mon": ["09:00-12:00", "11:00-13:00"], "tue": ["9点到12点"], "sun": ["18:00-09:00"]},
                   "days": [{"date": "2026-10-01", "kind": "holiday"}, {"date": "2026-10-01", "kind": "休"},
                            {"date": "2026-02-30", "kind": "someday"}]}),
        )
        .await;
        assert_eq!(
            refused(r).await,
            vec![
                pair("days.1.date", "duplicate_date"),
                pair("days.2.date", "invalid_date"),
                pair("days.2.kind", "unknown_day_kind"),
                pair("time_zone", "unknown_time_zone"),
                pair("week.mon", "periods_overlap"),
                pair("week.sun", "period_ends_before_start"),
                pair("week.tue", "invalid_period"),
            ]
        );
        let r = app
            .post("/api/v1/calendars", t, json!({"name": "总部"}))
            .await;
        assert_eq!(refused(r).await, vec![pair("name", "taken")]);

        // A stale version is refused, not overwritten.
        let r = app
            .patch(
                &format!("/api/v1/calendars/{id}"),
                t,
                json!({"version": 99, "name": "x"}),
            )
            .await;
        assert_eq!(r.status(), 412);

        // iCal: holidays merge in, 补班 becomes a working day, typed dates the file lacks stay.
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
BEGIN:VEVENT\r\nUID:1\r\nDTSTART;VALUE=DATE:20261001\r\nDTEND;VALUE=DATE:20261008\r\nSUMMARY:国庆节\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:2\r\nDTSTART;VALUE=DATE:20260920\r\nSUMMARY:国庆节补班\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
        let r = app
            .req(Method::POST, &format!("/api/v1/calendars/{id}/ical"), t)
            .header("content-type", "text/calendar")
            .body(ics)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let imp: Value = r.json().await.unwrap();
        assert_eq!(
            (imp["added"].as_i64(), imp["unchanged"].as_i64()),
            (Some(6), Some(2)),
            "{imp}"
        );
        let days = imp["calendar"]["days"].as_array().unwrap();
        assert_eq!(
            days.len(),
            9,
            "7 holidays, the typed make-up day and the file's"
        );
        assert!(days
            .iter()
            .any(|d| d["date"] == "2026-09-20" && d["kind"] == "workday"));
        assert!(days
            .iter()
            .any(|d| d["date"] == "2026-10-10" && d["kind"] == "workday"));
        // Now the eve of the holiday waits until Thursday the 8th.
        assert_eq!(
            deadline(&app, &id, "2026-09-30T17:30", 60).await,
            "2026-10-08T01:30:00Z"
        );
        let r = app
            .req(Method::POST, &format!("/api/v1/calendars/{id}/ical"), t)
            .body("hello")
            .send()
            .await
            .unwrap();
        assert_eq!(refused(r).await, vec![pair("file", "invalid_ical")]);

        // A team's own calendar; the company default moves when another takes it.
        let team = app
            .created("/api/v1/teams", t, json!({"name": "客服"}))
            .await;
        let night = app
            .created(
                "/api/v1/calendars",
                t,
                json!({"name": "客服夜班", "team_id": team["id"], "time_zone": "Asia/Taipei",
                   "week": {"sat": ["20:00-24:00"], "sun": ["00:00-08:00"]}}),
            )
            .await;
        assert_eq!(night["is_default"], false);
        let r = app
            .post(
                "/api/v1/calendars",
                t,
                json!({"name": "又一个", "team_id": team["id"]}),
            )
            .await;
        assert_eq!(refused(r).await, vec![pair("team_id", "team_has_calendar")]);
        let r = app
            .post(
                "/api/v1/calendars",
                t,
                json!({"name": "团队默认", "team_id": team["id"], "is_default": true}),
            )
            .await;
        let errs = refused(r).await;
        assert!(
            errs.contains(&pair("is_default", "team_calendar_not_default")),
            "{errs:?}"
        );
        let branch = app
            .created(
                "/api/v1/calendars",
                t,
                json!({"name": "分公司", "is_default": true}),
            )
            .await;
        assert_eq!(branch["is_default"], true);
        let hq_now: Value = app
            .get(&format!("/api/v1/calendars/{id}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(hq_now["is_default"], false, "one company default");

        // What deadlines use: the team's own calendar, else the company default, else office
        // hours.
        use guanxi_platform::calendars::schedule_for;
        let tenant: uuid::Uuid = app.tenant_id.parse().unwrap();
        let team_id: uuid::Uuid = team["id"].as_str().unwrap().parse().unwrap();
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let saturday_night = at("2026-12-05T21:00:00+08:00");
        let monday_ten = at("2026-12-07T10:00:00+08:00");
        let s = schedule_for(&app.db, tenant, Some(team_id)).await.unwrap();
        assert_eq!(s.time_zone().name(), "Asia/Taipei");
        assert!(
            s.is_open(saturday_night) && !s.is_open(monday_ten),
            "the team's"
        );
        let s = schedule_for(&app.db, tenant, None).await.unwrap();
        assert!(
            !s.is_open(saturday_night) && s.is_open(monday_ten),
            "the default"
        );

        // Everyone reads calendars (their deadlines depend on them); only admins change them.
        let (_, rep) = app.user_with_role("sales", "rep@acme.test").await;
        let list: Value = app
            .get("/api/v1/calendars", &rep)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list["items"].as_array().unwrap().len(), 3);
        let r = app
            .post("/api/v1/calendars", &rep, json!({"name": "我的"}))
            .await;
        assert_eq!(r.status(), 403);
        let r = app
            .req(Method::DELETE, &format!("/api/v1/calendars/{id}"), &rep)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);

        // Deleting a calendar is audited and it leaves the list.
        let r = app
            .req(Method::DELETE, &format!("/api/v1/calendars/{id}"), t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(
            app.get(&format!("/api/v1/calendars/{id}"), t)
                .await
                .status(),
            404
        );
        let bid = branch["id"].as_str().unwrap();
        let r = app
            .req(Method::DELETE, &format!("/api/v1/calendars/{bid}"), t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        // No default left: office hours, Monday to Friday, with the lunch break.
        let s = schedule_for(&app.db, tenant, None).await.unwrap();
        let lunch = at("2026-12-07T12:30:00+08:00");
        assert!(s.is_open(monday_ten) && !s.is_open(lunch) && !s.is_open(saturday_night));
        let events: Value = app
            .get(
                &format!("/api/v1/audit-events?entity=calendars&entity_id={id}"),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        let actions: Vec<&str> = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"delete") && actions.contains(&"create"),
            "{actions:?}"
        );
    }
);

both!(
    two_admins_making_a_default_at_once_leave_one,
    |app: TestApp| async move {
        // Ten calendars created as the default at once: every one that succeeds took the default
        // from the one before; afterwards exactly one is the default.
        let reqs: Vec<_> = (0..10)
            .map(|i| {
                app.req(Method::POST, "/api/v1/calendars", &app.admin_token)
                    .json(&json!({"name": format!("日历 {i}"), "is_default": true}))
                    .send()
            })
            .collect();
        let mut made = 0;
        for r in crate::concurrency::futures_join(reqs).await {
            match r.status().as_u16() {
                201 => made += 1,
                // Lost the race for the default: a conflict (or busy), never a second default.
                409 | 503 => {}
                s => panic!("{s}: {}", r.text().await.unwrap()),
            }
        }
        assert!(made >= 1);
        let list: Value = app
            .get("/api/v1/calendars", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        let defaults = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["is_default"] == true)
            .count();
        assert_eq!(defaults, 1);
        assert_eq!(list["items"].as_array().unwrap().len(), made);
    }
);
