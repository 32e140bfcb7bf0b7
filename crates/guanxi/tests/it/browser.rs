//! The web UI driven by real headless Chromium (Debian's `chromium` + `chromium-driver`) against
//! the real server: sign up, sign out, sign in, switch language, create a user, sign out, and the
//! new user signs in. With CI=true a missing browser fails the test instead of skipping it.

use crate::both;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A chromedriver process on a free port, killed on drop.
struct Driver {
    _child: Child,
    url: String,
}

async fn driver() -> Option<Driver> {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but {CHROMIUM} / {CHROMEDRIVER} are not installed");
        }
        eprintln!("chromium/chromedriver not installed: skipping the browser test");
        return None;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    // Ready when it says so on stdout (an event, not a sleep).
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.contains("started successfully") {
            break;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some(Driver {
        _child: child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

async fn browser(d: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1200,900", "--lang=zh-CN",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {"intl.accept_languages": "zh-CN,zh"},
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&d.url)
        .await
        .expect("open a Chromium session")
}

/// Types `value` into the field `css` selects, waiting for it; a field that goes stale while
/// a page is replaced (or before app.js has set it up) is looked up again.
async fn fill(c: &Client, css: &str, value: &str) {
    let mut last = None;
    for _ in 0..20 {
        let el = c.wait().for_element(Locator::Css(css)).await.unwrap();
        match el.clear().await {
            Ok(()) => match el.send_keys(value).await {
                Ok(()) => return,
                Err(e) => last = Some(e),
            },
            Err(e) => last = Some(e),
        }
    }
    panic!("{css} could not be filled: {last:?}")
}

/// The text of the element the XPath `xpath` selects, waiting for it and reading it again if
/// it goes stale.
async fn text_at(c: &Client, xpath: &str) -> String {
    let mut last = None;
    for _ in 0..20 {
        let el = c.wait().for_element(Locator::XPath(xpath)).await.unwrap();
        match el.text().await {
            Ok(t) => return t,
            Err(e) => last = Some(e),
        }
    }
    panic!("{xpath} kept going stale: {last:?}")
}

/// Clicks the element `css` selects, waiting for it; a stale element is looked up again.
async fn click(c: &Client, css: &str) {
    let mut last = None;
    for _ in 0..20 {
        let el = c.wait().for_element(Locator::Css(css)).await.unwrap();
        match el.click().await {
            Ok(()) => return,
            Err(e) => last = Some(e),
        }
    }
    panic!("{css} could not be clicked: {last:?}")
}

/// Chooses `value` in a `<select>`.
async fn pick(c: &Client, select: &str, value: &str) {
    click(c, &format!("{select} option[value='{value}']")).await;
}

async fn lang(c: &Client) -> String {
    let html = c.find(Locator::Css("html")).await.unwrap();
    html.attr("lang").await.unwrap().unwrap_or_default()
}

/// The text of the element `css` selects, waiting for it to appear. A page that is being
/// replaced can hand back an element that goes stale before it is read: read it again then.
async fn text(c: &Client, css: &str) -> String {
    let mut last = None;
    for _ in 0..20 {
        let el = c.wait().for_element(Locator::Css(css)).await.unwrap();
        match el.text().await {
            Ok(t) => return t,
            Err(e) => last = Some(e),
        }
    }
    panic!("{css} kept going stale: {last:?}")
}

/// Saves a screenshot when GUANXI_SCREENSHOTS names a directory (for looking at the UI).
/// How far the page is wider than the window, in pixels (0 or less: no horizontal scrolling).
async fn overflow(c: &Client) -> i64 {
    c.execute(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
        vec![],
    )
    .await
    .unwrap()
    .as_i64()
    .unwrap()
}

async fn shot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("GUANXI_SCREENSHOTS") {
        let png = c.screenshot().await.unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }
}

both!(
    sign_up_switch_language_create_user,
    |app: crate::harness::TestApp| async move {
        let Some(d) = driver().await else { return };
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;

        // The sign-in page speaks the browser's language (Accept-Language: zh-CN).
        c.goto(&app.url("/login")).await.unwrap();
        assert_eq!(lang(&c).await, "zh-CN");
        assert_eq!(text(&c, "h1").await, "登录");
        shot(&c, "login-zh").await;

        // Sign up a company from the sign-in page and land in it at once.
        click(&c, "#to-signup").await;
        c.wait()
            .for_element(Locator::Css("input[name=company]"))
            .await
            .unwrap();
        fill(&c, "input[name=company]", "浏览器测试有限公司").await;
        fill(&c, "input[name=name]", "王小明").await;
        fill(&c, "input[name=email]", "boss@browser.test").await;
        fill(&c, "input[name=password]", "correct horse battery").await;
        click(&c, "form[action='/signup'] button[type=submit]").await;
        c.wait()
            .for_element(Locator::Css("#sign-out"))
            .await
            .unwrap();
        assert_eq!(text(&c, ".tenant").await, "浏览器测试有限公司");
        assert!(text(&c, "h1").await.contains("王小明"));
        shot(&c, "home-zh").await;

        // Sign out, then sign in with the same credentials.
        click(&c, "#sign-out").await;
        c.wait()
            .for_element(Locator::Css("form[action='/login']"))
            .await
            .unwrap();
        fill(&c, "input[name=email]", "boss@browser.test").await;
        fill(&c, "input[name=password]", "correct horse battery").await;
        click(&c, "form[action='/login'] button[type=submit]").await;
        c.wait()
            .for_element(Locator::Css("#sign-out"))
            .await
            .unwrap();

        // Switch to English: the page follows, and the choice is remembered for the user.
        click(&c, "button[name=locale][value=en]").await;
        c.wait()
            .for_element(Locator::Css("html[lang=en]"))
            .await
            .unwrap();
        assert_eq!(text(&c, "#sign-out").await, "Sign out");

        // Create a user from the admin page.
        c.goto(&app.url("/admin/users")).await.unwrap();
        fill(&c, "#new-user input[name=name]", "Li Lei").await;
        fill(&c, "#new-user input[name=email]", "li.lei@browser.test").await;
        fill(&c, "#new-user input[name=password]", "li-lei-password-1").await;
        click(&c, "#new-user button[type=submit]").await;
        // Saved: the browser lands on the new user's page, in the language just chosen.
        c.wait()
            .for_element(Locator::XPath("//h1[text()='Li Lei']"))
            .await
            .unwrap();
        assert_eq!(lang(&c).await, "en");
        shot(&c, "user-en").await;
        c.goto(&app.url("/admin/users")).await.unwrap();
        let row = text(&c, "table tbody").await;
        assert!(
            row.contains("li.lei@browser.test") && row.contains("Sales"),
            "{row}"
        );

        // A bad input on the same form: the error names the field and nothing is created.
        fill(&c, "#new-user input[name=name]", "Dup").await;
        fill(&c, "#new-user input[name=email]", "li.lei@browser.test").await;
        click(&c, "#new-user button[type=submit]").await;
        let err = text(&c, ".errors").await;
        assert!(err.to_lowercase().contains("email"), "{err}");
        shot(&c, "users-error-en").await;

        // Sign out; the new user signs in and sees the app (in the browser's language, their own).
        click(&c, "#sign-out").await;
        c.wait()
            .for_element(Locator::Css("form[action='/login']"))
            .await
            .unwrap();
        fill(&c, "input[name=email]", "li.lei@browser.test").await;
        fill(&c, "input[name=password]", "li-lei-password-1").await;
        click(&c, "form[action='/login'] button[type=submit]").await;
        c.wait()
            .for_element(Locator::Css("#sign-out"))
            .await
            .unwrap();
        assert!(text(&c, "h1").await.contains("Li Lei"));
        assert_eq!(text(&c, ".tenant").await, "浏览器测试有限公司");

        // The boss's English choice was remembered: signing in again brings it back.
        click(&c, "#sign-out").await;
        c.wait()
            .for_element(Locator::Css("form[action='/login']"))
            .await
            .unwrap();
        fill(&c, "input[name=email]", "boss@browser.test").await;
        fill(&c, "input[name=password]", "correct horse battery").await;
        click(&c, "form[action='/login'] button[type=submit]").await;
        c.wait()
            .for_element(Locator::Css("#sign-out"))
            .await
            .unwrap();
        assert_eq!(lang(&c).await, "en");

        // At a phone's width the shell still fits: no horizontal scrolling — on the admin's
        // pages and on every page with a strip of tabs (the strip scrolls by itself; the
        // customer-value strip once widened its pages by a third).
        c.set_window_size(390, 844).await.unwrap();
        for page in [
            "/admin/users",
            "/value/abc",
            "/customers/contacts",
            "/forecast",
            "/tasks",
            "/notifications",
            "/visits",
            "/admin/forms",
        ] {
            c.goto(&app.url(page)).await.unwrap();
            let heading = c
                .execute(
                    "const h = document.querySelector('h1'); return h ? h.textContent : ''",
                    vec![],
                )
                .await
                .unwrap();
            assert_ne!(heading.as_str(), Some("404"), "{page} is a page");
            let overflow = overflow(&c).await;
            assert!(overflow <= 0, "{page} overflows a phone by {overflow}px");
        }
        c.goto(&app.url("/admin/users")).await.unwrap();
        shot(&c, "users-phone").await;
        // The menu folds behind a button instead of taking the first screen.
        let display = |css: &'static str| {
            let c = c.clone();
            async move {
                c.execute(
                    &format!("return getComputedStyle(document.querySelector('{css}')).display"),
                    vec![],
                )
                .await
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
            }
        };
        assert_eq!(
            display("nav.side").await,
            "none",
            "the menu is folded on a phone"
        );
        click(&c, "label.menu-button").await;
        assert_eq!(
            display("nav.side").await,
            "flex",
            "the menu button opens it"
        );
        shot(&c, "menu-phone").await;

        c.close().await.unwrap();
    }
);

/// Signs in through the sign-in page.
async fn sign_in(c: &Client, app: &crate::harness::TestApp, email: &str, password: &str) {
    c.goto(&app.url("/login")).await.unwrap();
    fill(c, "input[name=email]", email).await;
    fill(c, "input[name=password]", password).await;
    click(c, "form[action='/login'] button[type=submit]").await;
    c.wait()
        .for_element(Locator::Css("#sign-out"))
        .await
        .unwrap();
}

both!(
    customers_in_the_browser,
    |app: crate::harness::TestApp| async move {
        let Some(d) = driver().await else { return };
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;
        sign_in(&c, &app, "admin@acme.test", "correct horse battery").await;

        // New account with a wrong credit code: the error names the field in Chinese and the
        // typed values stay in the form.
        click(&c, "nav.side a[href='/customers/accounts']").await;
        c.wait()
            .for_element(Locator::Css("#new-account"))
            .await
            .unwrap();
        click(&c, "#new-account").await;
        c.wait()
            .for_element(Locator::Css("#record-form"))
            .await
            .unwrap();
        fill(&c, "input[name=name]", "武当山文化传播有限公司").await;
        fill(&c, "input[name=credit_code]", "91350100M000100Y44").await;
        fill(&c, "input[name=phone]", "0591-8765 4321").await;
        fill(&c, "input[name=province]", "福建省").await;
        fill(&c, "input[name=city]", "福州市").await;
        click(&c, "#record-form button[type=submit]").await;
        let err = text(&c, ".errors").await;
        assert!(err.contains("统一社会信用代码"), "{err}");
        let kept = c
            .find(Locator::Css("input[name=name]"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
        assert_eq!(kept.as_deref(), Some("武当山文化传播有限公司"));
        shot(&c, "account-form-error-zh").await;
        fill(&c, "input[name=credit_code]", "91350100M000100Y43").await;
        click(&c, "#record-form button[type=submit]").await;
        c.wait()
            .for_element(Locator::Css("#add-contact"))
            .await
            .unwrap();
        assert_eq!(text(&c, "h1").await, "武当山文化传播有限公司");
        let page = text(&c, ".record").await;
        assert!(
            page.contains("+86") || page.contains("0591-8765 4321"),
            "{page}"
        );

        // Add a contact from the account's page; it is linked to the account.
        click(&c, "#add-contact").await;
        c.wait()
            .for_element(Locator::Css("#record-form"))
            .await
            .unwrap();
        fill(&c, "input[name=name]", "张三丰").await;
        fill(&c, "input[name=phone]", "138 0013 8000").await;
        fill(&c, "input[name=title]", "掌门").await;
        click(&c, "#record-form button[type=submit]").await;
        c.wait()
            .for_element(Locator::XPath("//h1[text()='张三丰']"))
            .await
            .unwrap();
        assert!(text(&c, ".lead").await.contains("武当山文化传播有限公司"));

        // Log a call and a task on his page; both show in his timeline, newest first.
        pick(&c, "#log-activity select[name=kind]", "call").await;
        fill(&c, "#log-activity input[name=subject]", "续约电话").await;
        fill(
            &c,
            "#log-activity textarea[name=body]",
            "答应下周一前发报价",
        )
        .await;
        click(&c, "#log-activity button[type=submit]").await;
        c.wait()
            .for_element(Locator::XPath(
                "//ol[@class='entries']//div[@class='subject' and contains(., '续约电话')]",
            ))
            .await
            .unwrap();
        pick(&c, "#log-activity select[name=kind]", "task").await;
        fill(&c, "#log-activity input[name=subject]", "发送报价单").await;
        click(&c, "#log-activity summary").await;
        c.execute(
            "document.querySelector('#log-activity input[name=due_at]').value = '2030-01-02T10:00'",
            vec![],
        )
        .await
        .unwrap();
        click(&c, "#log-activity button[type=submit]").await;
        c.wait()
            .for_element(Locator::XPath(
                "//ol[@class='entries']//div[@class='subject' and contains(., '发送报价单')]",
            ))
            .await
            .unwrap();
        let entries = text(&c, "ol.entries").await;
        assert!(
            entries.contains("2030-01-02 10:00"),
            "due time in the tenant's zone: {entries}"
        );
        shot(&c, "contact-zh").await;

        // My tasks lists it; marking it done empties the open list.
        click(&c, "nav.side a[href='/tasks']").await;
        c.wait().for_element(Locator::Css("#tasks")).await.unwrap();
        assert!(text(&c, "#tasks").await.contains("发送报价单"));
        shot(&c, "tasks-zh").await;
        click(&c, "#tasks button").await;
        c.wait()
            .for_element(Locator::XPath("//table[@id='tasks']//td[@class='empty']"))
            .await
            .unwrap();

        // Entering him again (phone typed differently) warns before saving; "save anyway" saves.
        c.goto(&app.url("/customers/contacts/new")).await.unwrap();
        fill(&c, "input[name=name]", "张真人").await;
        fill(&c, "input[name=phone]", "+86 138-0013-8000").await;
        click(&c, "#record-form button.primary").await;
        let warning = text(&c, "#duplicates").await;
        assert!(
            warning.contains("张三丰") && warning.contains("电话相同"),
            "{warning}"
        );
        shot(&c, "duplicates-zh").await;
        click(&c, "#save-anyway").await;
        c.wait()
            .for_element(Locator::XPath("//h1[text()='张真人']"))
            .await
            .unwrap();

        // His page offers to merge 张三丰 in; merging moves 张三丰's history here, and the
        // merged record can be restored with one click.
        let dupes = text(&c, "#dupes").await;
        assert!(dupes.contains("张三丰"), "{dupes}");
        click(&c, "#dupes a.merge").await;
        // Side by side: the fields that differ, each with a choice; then confirm.
        c.wait()
            .for_element(Locator::Css("#merge-fields"))
            .await
            .unwrap();
        shot(&c, "merge-choose-zh").await;
        click(&c, "#confirm-merge").await;
        c.wait()
            .for_element(Locator::XPath(
                "//ol[@class='entries']//span[text()='合并']",
            ))
            .await
            .unwrap();
        c.goto(&app.url("/customers/contacts?deleted=true"))
            .await
            .unwrap();
        c.find(Locator::LinkText("张三丰"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait()
            .for_element(Locator::Css("#unmerge"))
            .await
            .unwrap();
        shot(&c, "merged-zh").await;
        click(&c, "#unmerge").await;
        c.wait().for_element(Locator::Css("#delete")).await.unwrap();
        assert!(
            text(&c, ".timeline").await.contains("续约电话"),
            "its call came back"
        );

        // The header search box finds him by initials and by phone.
        for q in ["zsf", "13800138000"] {
            fill(&c, "form.search input[name=q]", q).await;
            c.find(Locator::Css("form.search input[name=q]"))
                .await
                .unwrap()
                .send_keys("\u{E007}")
                .await
                .unwrap();
            c.wait().for_element(Locator::Css("ul.hits")).await.unwrap();
            let hits = text(&c, "ul.hits").await;
            assert!(hits.contains("张三丰"), "{q}: {hits}");
        }
        shot(&c, "search-zh").await;

        // The account's 360 page lists the contact; trash and restore the account.
        c.goto(&app.url("/customers/accounts")).await.unwrap();
        c.find(Locator::LinkText("武当山文化传播有限公司"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait().for_element(Locator::Css("#delete")).await.unwrap();
        assert!(text(&c, ".side-col").await.contains("张三丰"));
        shot(&c, "account-zh").await;
        click(&c, "#delete").await;
        c.wait()
            .for_element(Locator::Css("#new-account"))
            .await
            .unwrap();
        assert!(!text(&c, "table").await.contains("武当山"));
        c.goto(&app.url("/customers/accounts?deleted=true"))
            .await
            .unwrap();
        c.find(Locator::LinkText("武当山文化传播有限公司"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        click(&c, "#restore").await;
        c.wait().for_element(Locator::Css("#delete")).await.unwrap();
        let account_url = c.current_url().await.unwrap().to_string();

        // A product in the catalogue (price typed in yuan), then an order from the account's
        // page: a catalogue line and a free line; the total is right and shows on the account.
        c.goto(&app.url("/customers/products")).await.unwrap();
        fill(&c, "#new-product input[name=sku]", "TEA-001").await;
        fill(&c, "#new-product input[name=name]", "武夷岩茶").await;
        fill(&c, "#new-product input[name=list_price]", "199.00").await;
        click(&c, "#new-product button[type=submit]").await;
        c.wait()
            .for_element(Locator::XPath("//td[text()='武夷岩茶']"))
            .await
            .unwrap();
        c.goto(&account_url).await.unwrap();
        click(&c, "#add-order").await;
        c.wait()
            .for_element(Locator::Css("#order-form"))
            .await
            .unwrap();
        c.find(Locator::Css(
            "select[name=line0_product] option:nth-child(2)",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
        fill(&c, "input[name=line0_quantity]", "2").await;
        fill(&c, "input[name=line1_name]", "包装费").await;
        fill(&c, "input[name=line1_unit_price]", "5").await;
        click(&c, "#order-form button[type=submit]").await;
        c.wait()
            .for_element(Locator::Css("#order-total"))
            .await
            .unwrap();
        assert_eq!(text(&c, "#order-total").await, "¥403.00");
        shot(&c, "order-zh").await;
        c.goto(&account_url).await.unwrap();
        assert!(text(&c, "#purchases").await.contains("¥403.00"));

        // The admin hands their book to a new rep: preview first, then move.
        let (rep, _) = app.user_with_role("sales", "new.rep@acme.test").await;
        let me: serde_json::Value = app
            .get("/api/v1/me", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        c.goto(&app.url(&format!(
            "/customers/transfer?from={}",
            me["user"]["id"].as_str().unwrap()
        )))
        .await
        .unwrap();
        click(
            &c,
            &format!(
                "input[name=to_user_ids][value='{}']",
                rep["id"].as_str().unwrap()
            ),
        )
        .await;
        click(&c, "#transfer-form button[name=dry_run]").await;
        let preview = text(&c, "#transfer-result").await;
        assert!(preview.contains("尚未转移"), "{preview}");
        click(&c, "#transfer-go").await;
        c.wait()
            .for_element(Locator::XPath(
                "//div[@id='transfer-result']/p[text()='已转移：']",
            ))
            .await
            .unwrap();
        shot(&c, "transfer-zh").await;
        c.goto(&account_url).await.unwrap();
        assert!(text(&c, ".record").await.contains("new.rep@acme.test"));

        // Import contacts from a GBK file, as Chinese Excel saves it: check first, then import;
        // the bad row is listed with its reason in Chinese.
        let (gbk, _, _) =
            encoding_rs::GBK.encode("姓名,手机,公司\n令狐冲,13511112222,华山派\n田伯光,999,\n");
        let file = profile.0.join("contacts-gbk.csv");
        std::fs::write(&file, gbk.as_ref()).unwrap();
        c.goto(&app.url("/customers/import")).await.unwrap();
        c.find(Locator::Css("#import-form input[type=file]"))
            .await
            .unwrap()
            .send_keys(&file.to_string_lossy())
            .await
            .unwrap();
        let checked = c
            .find(Locator::Css("#import-form input[name=dry_run]"))
            .await
            .unwrap()
            .prop("checked")
            .await
            .unwrap();
        if checked.as_deref() != Some("true") {
            click(&c, "#import-form input[name=dry_run]").await;
        }
        click(&c, "#import-form button[type=submit]").await;
        let report = text(&c, "#import-report").await;
        assert!(report.contains("已检查"), "{report}");
        // The check shows how each column is read, changeable; the file is carried on.
        let mapping = text(&c, "#mapping").await;
        assert!(
            mapping.contains("手机") && mapping.contains("电话"),
            "{mapping}"
        );
        shot(&c, "import-mapping-zh").await;
        click(&c, "#import-go").await;
        c.wait()
            .for_element(Locator::XPath(
                "//div[@id='import-report' and contains(., '已导入')]",
            ))
            .await
            .unwrap();
        let errors = text(&c, "#import-errors").await;
        assert!(errors.contains("不是有效的电话号码"), "{errors}");
        shot(&c, "import-zh").await;
        c.goto(&app.url("/customers/contacts?q=lhc")).await.unwrap();
        assert!(text(&c, "table").await.contains("华山派"));

        // At a phone's width the 360 page stacks and does not overflow.
        c.set_window_size(390, 844).await.unwrap();
        c.refresh().await.unwrap();
        let overflow = overflow(&c).await;
        shot(&c, "account-phone").await;
        assert!(overflow <= 0, "page overflows a phone by {overflow}px");
        // A record's key facts open its page, within the first screen.
        click(&c, "table.list td.name a").await;
        c.wait().for_element(Locator::Css("#facts")).await.unwrap();
        let top = c
            .execute(
                "return document.getElementById('facts').getBoundingClientRect().top",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            top.as_f64().unwrap() < 500.0,
            "key facts at y={top} on a phone"
        );
        // Lists are cards: no table header, each row a block; filters folded behind a button.
        c.goto(&app.url("/customers/contacts")).await.unwrap();
        let shown = c
            .execute(
                "return [getComputedStyle(document.querySelector('table.list thead')).display,
                         getComputedStyle(document.querySelector('table.list tbody tr')).display,
                         getComputedStyle(document.querySelector('#filters input[name=province]')).display]",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            shown,
            serde_json::json!(["none", "block", "none"]),
            "cards on a phone"
        );
        click(&c, "label.filters-button").await;
        let province = c
            .execute("return getComputedStyle(document.querySelector('#filters input[name=province]')).display", vec![])
            .await
            .unwrap();
        assert_ne!(
            province,
            serde_json::json!("none"),
            "the filters button shows the filters"
        );
        shot(&c, "contacts-phone").await;
        c.close().await.unwrap();
    }
);

both!(
    custom_fields_and_lists_in_the_browser,
    |app: crate::harness::TestApp| async move {
        let Some(d) = driver().await else { return };
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;
        sign_in(&c, &app, "admin@acme.test", "correct horse battery").await;

        // The admin adds two contact fields on the custom fields page.
        click(&c, "nav.side a[href='/admin/custom-fields']").await;
        c.wait()
            .for_element(Locator::Css("#new-field"))
            .await
            .unwrap();
        pick(&c, "#new-field select[name=entity]", "contacts").await;
        fill(&c, "#new-field input[name=label]", "大区").await;
        fill(&c, "#new-field input[name=label_en]", "Region").await;
        fill(&c, "#new-field input[name=key]", "region").await;
        pick(&c, "#new-field select[name=kind]", "select").await;
        pick(&c, "#new-field select[name=section]", "sales").await;
        fill(&c, "#new-field textarea[name=options]", "华东\n华北\n华南").await;
        click(&c, "#create-field").await;
        c.wait()
            .for_element(Locator::Css("tr[data-key=region]"))
            .await
            .unwrap();
        pick(&c, "#new-field select[name=entity]", "contacts").await;
        fill(&c, "#new-field input[name=label]", "评分").await;
        fill(&c, "#new-field input[name=key]", "score").await;
        pick(&c, "#new-field select[name=kind]", "number").await;
        click(&c, "#create-field").await;
        c.wait()
            .for_element(Locator::Css("tr[data-key=score]"))
            .await
            .unwrap();
        shot(&c, "custom-fields-zh").await;

        // A contact form shows them in their groups; a bad number is named in Chinese and the
        // typed values stay.
        c.goto(&app.url("/customers/contacts/new")).await.unwrap();
        fill(&c, "input[name=name]", "欧阳锋").await;
        pick(&c, "select[name='custom.region']", "华北").await;
        fill(&c, "input[name='custom.score']", "很高").await;
        click(&c, "#record-form button.primary").await;
        let err = text(&c, "#record-form .field-error").await;
        assert_eq!(err, "不是数字");
        fill(&c, "input[name='custom.score']", "92.5").await;
        click(&c, "#record-form button.primary").await;
        c.wait()
            .for_element(Locator::XPath("//h1[text()='欧阳锋']"))
            .await
            .unwrap();
        let page = text(&c, ".sections").await;
        assert!(
            page.contains("销售信息") && page.contains("华北") && page.contains("92.5"),
            "{page}"
        );
        shot(&c, "contact-custom-zh").await;
        for (n, region) in [("黄药师", "华东"), ("洪七公", "华北")] {
            c.goto(&app.url("/customers/contacts/new")).await.unwrap();
            fill(&c, "input[name=name]", n).await;
            pick(&c, "select[name='custom.region']", region).await;
            click(&c, "#record-form button.primary").await;
            c.wait()
                .for_element(Locator::XPath(&format!("//h1[text()='{n}']")))
                .await
                .unwrap();
        }

        // The list: filter on the custom field, show it as a column, save the view.
        c.goto(&app.url("/customers/contacts")).await.unwrap();
        click(&c, "#filters details.more summary").await;
        pick(&c, "#filters select[name='custom.region']", "华北").await;
        click(&c, "#columns summary").await;
        click(&c, "#columns input[value='custom.region']").await;
        click(&c, "#filters > button").await;
        c.wait()
            .for_element(Locator::Css("td[data-col='custom.region']"))
            .await
            .unwrap();
        let list = text(&c, "#list tbody").await;
        assert!(
            list.contains("欧阳锋") && list.contains("洪七公") && !list.contains("黄药师"),
            "{list}"
        );
        click(&c, "#views details.save-view summary").await;
        fill(&c, "#save-view input[name=name]", "华北客户").await;
        click(&c, "#save-view button").await;
        c.wait()
            .for_element(Locator::XPath(
                "//nav[@id='views']//a[contains(., '华北客户')]",
            ))
            .await
            .unwrap();

        // Tick both and tag them in one action.
        for n in ["欧阳锋", "洪七公"] {
            click(&c, &format!("input[aria-label='{n}']")).await;
        }
        pick(&c, "#bulk select[name=action]", "tag").await;
        fill(&c, "#bulk input[name=tag]", "武林").await;
        click(&c, "#bulk button").await;
        let done = text(&c, "#bulk-result").await;
        assert!(done.contains("已处理 2 条"), "{done}");

        // Edit one cell in place: 洪七公's region.
        c.goto(&app.url("/customers/contacts?col=custom.region&col=tags&sort=name"))
            .await
            .unwrap();
        let row = "//tr[td/a[text()='洪七公']]";
        let edit = c
            .wait()
            .for_element(Locator::XPath(&format!(
                "{row}//td[@data-col='custom.region']//a[@class='cell-edit']"
            )))
            .await
            .unwrap();
        let href = edit.attr("href").await.unwrap().unwrap();
        c.goto(&app.url(&href)).await.unwrap();
        pick(&c, "form.cell select[name=value]", "华南").await;
        shot(&c, "list-cell-edit-zh").await;
        click(&c, "form.cell button.primary").await;
        c.wait()
            .for_element(Locator::XPath(&format!(
                "{row}//td[@data-col='custom.region' and contains(., '华南')]"
            )))
            .await
            .unwrap();
        let tags = text_at(&c, &format!("{row}//td[@data-col='tags']")).await;
        assert!(tags.contains("武林"), "the bulk tag is on the row: {tags}");
        shot(&c, "list-zh").await;

        // The admin keeps the company's working calendar: a mistyped day is named with its
        // line and what was typed stays; then a deadline is tried over the holiday.
        click(&c, "nav.side a[href='/admin/calendars']").await;
        fill(&c, "#new-calendar input[name=name]", "总部").await;
        click(&c, "#create-calendar").await;
        c.wait()
            .for_element(Locator::Css("#calendar-form"))
            .await
            .unwrap();
        fill(
            &c,
            "#calendar-form input[name='week.fri']",
            "09:00-12:00, 13:30-16:00",
        )
        .await;
        fill(
            &c,
            "#calendar-form textarea[name=days]",
            "2026-10-01 休 国庆节\n2026-10-02 放假 国庆节",
        )
        .await;
        click(&c, "#save-calendar").await;
        let err = text(&c, ".errors li[data-field=days]").await;
        assert!(err.contains("第 2 行") && err.contains("休"), "{err}");
        let typed = c
            .find(Locator::Css("#calendar-form textarea[name=days]"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default();
        assert!(typed.contains("放假"), "the typed days stay: {typed}");
        fill(
            &c,
            "#calendar-form textarea[name=days]",
            "2026-10-01 休 国庆节\n2026-10-02 休 国庆节",
        )
        .await;
        click(&c, "#save-calendar").await;
        c.wait()
            .for_element(Locator::Css("div.notice[role=status]"))
            .await
            .unwrap();
        // Wednesday 30 September 17:30 plus one working hour: half an hour that evening, the
        // holiday Thursday and Friday skipped, Monday 5 October 09:30.
        let id = c.current_url().await.unwrap();
        let id = id.path().trim_start_matches("/admin/calendars/").to_owned();
        c.goto(&app.url(&format!(
            "/admin/calendars/{id}?start=2026-09-30T17:30&minutes=60"
        )))
        .await
        .unwrap();
        let result = text(&c, "#trial-result").await;
        assert!(result.contains("2026-10-05 09:30"), "{result}");
        shot(&c, "calendar-zh").await;
        c.close().await.unwrap();
    }
);

/// Serves `html` at `/` on a port of its own (another origin than the CRM), for as long as the
/// test runs; answers every request with it.
async fn other_site(html: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let html = html.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

both!(
    a_form_embedded_on_another_site,
    |app: crate::harness::TestApp| async move {
        let Some(d) = driver().await else { return };
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;
        sign_in(&c, &app, "admin@acme.test", "correct horse battery").await;

        // The admin designs a form: name, company and phone asked, phone required, a consent
        // box, no waiting time (the test types faster than a person).
        click(&c, "nav.side a[href='/admin/forms']").await;
        fill(&c, "#form-designer input[name=name]", "展会报名").await;
        click(&c, "#form-designer input[name='required.phone']").await;
        fill(&c, "#form-designer input[name=consent_zh]", "同意联系我").await;
        fill(&c, "#form-designer input[name=min_fill_seconds]", "0").await;
        click(&c, "#save-form").await;
        c.wait()
            .for_element(Locator::Css("#snippet"))
            .await
            .unwrap();
        shot(&c, "form-admin-zh").await;
        let snippet = c
            .find(Locator::Css("#snippet"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap();
        assert!(snippet.contains("embed.js"), "{snippet}");

        // A company's web page on another origin carries the snippet; a visitor fills it in.
        let site = other_site(format!(
            "<!doctype html><html><head><meta charset=utf-8><title>Acme</title></head><body><h1>联系我们</h1>{snippet}</body></html>"
        ))
        .await;
        c.goto(&format!("{site}/?utm_campaign=expo")).await.unwrap();
        // embed.js has run when the token is in.
        c.wait()
            .for_element(Locator::XPath(
                "//input[@name='_t' and string-length(@value) > 0]",
            ))
            .await
            .unwrap();
        fill(&c, "input[name=name]", "周芷若").await;
        fill(&c, "input[name=company]", "峨眉科技").await;
        fill(&c, "input[name=phone]", "13700137001").await;
        click(&c, "input[name=consent]").await;
        shot(&c, "form-embedded").await;
        click(&c, "button[type=submit]").await;
        let thanks = text(&c, "#thanks").await;
        assert!(thanks.contains("谢谢"), "{thanks}");

        let leads: serde_json::Value = app
            .get("/api/v1/leads", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        let lead = &leads["items"][0];
        assert_eq!(lead["name"], "周芷若");
        assert_eq!(lead["source"], "form");
        let forms: serde_json::Value = app
            .get("/api/v1/forms", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        let subs: serde_json::Value = app
            .get(
                &format!(
                    "/api/v1/forms/{}/submissions",
                    forms["items"][0]["id"].as_str().unwrap()
                ),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        let sub = &subs["items"][0];
        assert_eq!(sub["outcome"], "created");
        assert_eq!(sub["utm"]["utm_campaign"], "expo");
        assert!(sub["referrer"].as_str().unwrap().starts_with(&site));

        // The rep calls back from the lead's page: the call is on its timeline, the lead is
        // answered.
        c.goto(&app.url(&format!("/leads/{}", lead["id"].as_str().unwrap())))
            .await
            .unwrap();
        fill(&c, "#log-activity input[name=subject]", "回电：约了参观").await;
        click(&c, "#log-activity button[type=submit]").await;
        // The page after the post: its timeline has the call (an event, not a wait).
        c.wait()
            .for_element(Locator::Css("#timeline .entry.call"))
            .await
            .unwrap();
        let tl = text(&c, "#timeline .entries").await;
        assert!(tl.contains("回电：约了参观"), "{tl}");
        shot(&c, "lead-called").await;
        let l: serde_json::Value = app
            .get(
                &format!("/api/v1/leads/{}", lead["id"].as_str().unwrap()),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_ne!(l["responded_at"], serde_json::Value::Null);
        c.close().await.unwrap();
    }
);

both!(
    a_customer_goes_back_to_the_pool_and_is_claimed,
    |app: crate::harness::TestApp| async move {
        let Some(d) = driver().await else { return };
        let t = app.admin_token.clone();
        let pool = app
            .created(
                "/api/v1/pools",
                &t,
                serde_json::json!({"name": "客户公海", "entity": "accounts", "return_days": 30}),
            )
            .await;
        let (_, a_token) = app.user_with_role("sales", "a.rep@acme.test").await;
        app.user_with_role("sales", "b.rep@acme.test").await;
        let acc = app
            .created(
                "/api/v1/accounts",
                &a_token,
                serde_json::json!({"name": "久未联系贸易公司"}),
            )
            .await;
        let id = acc["id"].as_str().unwrap();
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;
        c.set_window_size(390, 844).await.unwrap();
        // The rep sees when the customer would go back, and gives it back with a reason.
        sign_in(&c, &app, "a.rep@acme.test", "password-123456").await;
        c.goto(&app.url(&format!("/customers/accounts/{id}")))
            .await
            .unwrap();
        let returns = text(&c, "#returns").await;
        assert!(returns.contains("30"), "{returns}");
        fill(&c, "#release input[name=reason]", "暂无采购计划").await;
        click(&c, "#release-button").await;
        // The rep lands on the pool, where the customer now waits.
        let said = text(&c, "#released").await;
        assert!(said.contains("公海"), "{said}");
        let waiting = text(&c, "#pool-records").await;
        assert!(waiting.contains("久未联系贸易公司"), "{waiting}");
        shot(&c, "account-released-phone").await;
        c.close().await.unwrap();

        // Another rep claims it from the pool page, ticking it.
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;
        sign_in(&c, &app, "b.rep@acme.test", "password-123456").await;
        c.goto(&app.url("/customers/accounts")).await.unwrap();
        click(&c, "#shortcuts a[href^='/pools/']").await;
        c.wait()
            .for_element(Locator::Css("#pool-records"))
            .await
            .unwrap();
        let waiting = text(&c, "#pool-records").await;
        assert!(waiting.contains("久未联系贸易公司"), "{waiting}");
        click(&c, &format!("#pool-records input[value='{id}']")).await;
        click(&c, "#claim").await;
        let claimed = text(&c, "#claimed").await;
        assert!(claimed.contains('1'), "{claimed}");
        shot(&c, "account-claimed").await;
        c.goto(&app.url(&format!("/customers/accounts/{id}")))
            .await
            .unwrap();
        let tl = text(&c, "#timeline .entries").await;
        assert!(tl.contains("暂无采购计划"), "{tl}");
        let a: serde_json::Value = app
            .get(&format!("/api/v1/accounts/{id}"), &t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(a["owner_name"], "b.rep@acme.test");
        assert!(a["pool_id"].is_null());
        let _ = pool;
        c.close().await.unwrap();
    }
);

both!(
    a_deal_moves_on_the_board,
    |app: crate::harness::TestApp| async move {
        let Some(d) = driver().await else { return };
        let t = app.admin_token.clone();
        app.created(
            "/api/v1/pipelines",
            &t,
            serde_json::json!({"name": "产品销售", "stages": [
                {"name": "初步接触"},
                {"name": "方案报价", "category": "best_case", "required_fields": ["expected_close"]},
                {"name": "赢单", "category": "won"}, {"name": "输单", "category": "lost"}
            ]}),
        )
        .await;
        let acc = app
            .created(
                "/api/v1/accounts",
                &t,
                serde_json::json!({"name": "看板测试客户"}),
            )
            .await;
        let deal = app
            .created(
                "/api/v1/opportunities",
                &t,
                serde_json::json!({"name": "年度采购", "account_id": acc["id"], "amount": 880_000}),
            )
            .await;
        let id = deal["id"].as_str().unwrap();
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;
        c.set_window_size(390, 844).await.unwrap();
        sign_in(&c, &app, "admin@acme.test", "correct horse battery").await;
        // On a phone the card's stage picker moves it; the stage asks for its field first.
        c.goto(&app.url("/opportunities/board")).await.unwrap();
        let sums = text(&c, &format!("article.deal[data-id='{id}']")).await;
        assert!(sums.contains("¥8,800.00"), "{sums}");
        shot(&c, "board-phone").await;
        let card = format!("article.deal[data-id='{id}']");
        let xpath = format!("//article[@data-id='{id}']//option[normalize-space(.)='方案报价']");
        let option = c.find(Locator::XPath(&xpath)).await.unwrap();
        let value = option.attr("value").await.unwrap().unwrap();
        pick(&c, &format!("{card} select[name=stage_id]"), &value).await;
        click(&c, &format!("{card} form.move button")).await;
        let needs = text(&c, "#move-errors").await;
        assert!(needs.contains("预计成交"), "{needs}");
        // A date input types in the browser's own order: set it as a picker would.
        c.execute(
            "document.querySelector('#move input[name=expected_close]').value = '2027-01-20'",
            vec![],
        )
        .await
        .unwrap();
        click(&c, "#move-button").await;
        let stage = text_at(&c, "//dd[@id='stage' and contains(., '方案报价')]").await;
        assert!(stage.contains("方案报价"), "{stage}");
        let now: serde_json::Value = app
            .get(&format!("/api/v1/opportunities/{id}"), &t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(now["expected_close"], "2027-01-20");
        assert_eq!(now["stage_name"], "方案报价");
        // On a desktop the card is dragged onto the won column (the drag sends its move form).
        c.set_window_size(1600, 900).await.unwrap();
        c.goto(&app.url("/opportunities/board")).await.unwrap();
        c.wait().for_element(Locator::Css(&card)).await.unwrap();
        c.execute(
            "const card = document.querySelector(arguments[0]);
             const col = [...document.querySelectorAll('#board .column')]
                 .find(c => c.querySelector('h2').textContent.includes('赢单'));
             const dt = new DataTransfer();
             card.dispatchEvent(new DragEvent('dragstart', {dataTransfer: dt, bubbles: true}));
             col.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
             col.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));",
            vec![serde_json::json!(card)],
        )
        .await
        .unwrap();
        text_at(
            &c,
            &format!("//section[contains(@class, 'won')]//article[@data-id='{id}']"),
        )
        .await;
        let won: serde_json::Value = app
            .get(&format!("/api/v1/opportunities/{id}"), &t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(won["status"], "won");
        c.close().await.unwrap();
    }
);

both!(
    a_quote_is_priced_sent_and_accepted,
    |app: crate::harness::TestApp| async move {
        let Some(d) = driver().await else { return };
        let t = app.admin_token.clone();
        app.created(
            "/api/v1/pipelines",
            &t,
            serde_json::json!({"name": "产品销售", "stages": [
                {"name": "初步接触"}, {"name": "赢单", "category": "won"}, {"name": "输单", "category": "lost"}
            ]}),
        )
        .await;
        app.created(
            "/api/v1/products",
            &t,
            serde_json::json!({"sku": "TEA-9", "name": "白茶饼", "list_price": 30_000, "tax_rate": 1300}),
        )
        .await;
        let acc = app
            .created(
                "/api/v1/accounts",
                &t,
                serde_json::json!({"name": "报价测试客户"}),
            )
            .await;
        let deal = app
            .created(
                "/api/v1/opportunities",
                &t,
                serde_json::json!({"name": "冬季备货", "account_id": acc["id"], "amount": 100}),
            )
            .await;
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;
        c.set_window_size(390, 844).await.unwrap();
        sign_in(&c, &app, "admin@acme.test", "correct horse battery").await;
        // A price book with a volume tier, typed on the admin page.
        c.goto(&app.url("/admin/price-books")).await.unwrap();
        fill(&c, "#book-form input[name=name]", "冬季价").await;
        fill(&c, "input[name='l0.sku']", "TEA-9").await;
        fill(&c, "input[name='l0.unit_price']", "280").await;
        fill(&c, "input[name='l1.sku']", "TEA-9").await;
        fill(&c, "input[name='l1.min_quantity']", "10").await;
        fill(&c, "input[name='l1.unit_price']", "250").await;
        click(&c, "#save-book").await;
        text_at(&c, "//table[@id='books']//a[normalize-space(.)='冬季价']").await;
        // The deal's quote: a quantity that is not a number is named by its line.
        c.goto(&app.url(&format!("/opportunities/{}", deal["id"].as_str().unwrap())))
            .await
            .unwrap();
        click(&c, "#make-quote").await;
        fill(&c, "input[name='l0.sku']", "TEA-9").await;
        fill(&c, "input[name='l0.name']", "").await;
        fill(&c, "input[name='l0.unit_price']", "").await;
        fill(&c, "input[name='l0.quantity']", "十二").await;
        click(&c, "#save-quote").await;
        let refused = text(&c, ".errors").await;
        assert!(refused.contains("第 1 行 · 数量"), "{refused}");
        // Twelve reach the tier: ¥250 from the book, 13% VAT from the product.
        fill(&c, "input[name='l0.quantity']", "12").await;
        click(&c, "#save-quote").await;
        let facts = text_at(&c, "//dl[@id='quote-facts' and contains(., '3,390.00')]").await;
        assert!(facts.contains("¥390.00"), "{facts}");
        shot(&c, "quote-phone").await;
        click(&c, "#send-quote").await;
        text_at(&c, "//ul[@id='version-list']/li[contains(., 'v1')]").await;
        click(&c, "#accept-quote").await;
        let done = text(&c, "#became-order").await;
        assert!(done.contains("已接受"), "{done}");
        let quotes: serde_json::Value = app
            .get("/api/v1/quotes?status=accepted", &t)
            .await
            .json()
            .await
            .unwrap();
        let q = &quotes["items"][0];
        assert_eq!(q["total"], 339_000);
        let order: serde_json::Value = app
            .get(
                &format!("/api/v1/orders/{}", q["order_id"].as_str().unwrap()),
                &t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(order["total"], 300_000);
        c.close().await.unwrap();
    }
);

both!(
    a_discounted_quote_is_approved_in_the_browser,
    |app: crate::harness::TestApp| async move {
        let Some(d) = driver().await else { return };
        let t = app.admin_token.clone();
        let (rep, _) = app
            .user_with_role("sales", "rep@browser-approve.test")
            .await;
        app.user_with_role("manager", "boss@browser-approve.test")
            .await;
        crate::quotes::pipeline(&app).await;
        app.created(
            "/api/v1/products",
            &t,
            serde_json::json!({"sku": "TEA-1", "name": "龙井", "list_price": 10_000}),
        )
        .await;
        let acc = app
            .created(
                "/api/v1/accounts",
                &t,
                serde_json::json!({"name": "审批浏览器客户", "owner_id": rep["id"]}),
            )
            .await;
        let deal = app
            .created(
                "/api/v1/opportunities",
                &t,
                serde_json::json!({"name": "折扣单", "account_id": acc["id"], "amount": 1, "owner_id": rep["id"]}),
            )
            .await;
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;
        c.set_window_size(1280, 900).await.unwrap();
        // The administrator sets up the process on its page: over 15% below the book prices,
        // the rep's manager approves.
        sign_in(&c, &app, "admin@acme.test", "correct horse battery").await;
        c.goto(&app.url("/admin/approval-processes")).await.unwrap();
        fill(&c, "#process-form input[name=name]", "大额折扣").await;
        fill(&c, "input[name='c0.value']", "15").await;
        fill(&c, "input[name='s0.name']", "主管审批").await;
        click(&c, "input[name='s0.manager']").await;
        click(&c, "#save-process").await;
        let listed = text_at(&c, "//table[@id='processes']//tr[contains(., '大额折扣')]").await;
        assert!(listed.contains("15"), "{listed}");
        c.close().await.unwrap();
        // The rep quotes 20% off: sending is not offered; submitting is.
        let q = app
            .created(
                "/api/v1/quotes",
                &t,
                serde_json::json!({"opportunity_id": deal["id"], "discount_bp": 2000, "lines": [{"sku": "TEA-1"}]}),
            )
            .await;
        let qpath = format!("/quotes/{}", q["id"].as_str().unwrap());
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;
        c.set_window_size(390, 844).await.unwrap();
        sign_in(&c, &app, "rep@browser-approve.test", "password-123456").await;
        c.goto(&app.url(&qpath)).await.unwrap();
        let needed = text(&c, "#approval-needed").await;
        assert!(needed.contains("大额折扣"), "{needed}");
        assert!(c.find(Locator::Css("#send-quote")).await.is_err());
        fill(&c, "#approval-card input[name=comment]", "老客户").await;
        click(&c, "#submit-approval").await;
        let status = text(&c, "#request-status").await;
        assert!(status.contains("审批中"), "{status}");
        c.close().await.unwrap();
        // The manager finds it in the inbox and approves it.
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;
        c.set_window_size(390, 844).await.unwrap();
        sign_in(&c, &app, "boss@browser-approve.test", "password-123456").await;
        c.goto(&app.url("/approvals")).await.unwrap();
        click(&c, "#requests a").await;
        fill(&c, "#decide textarea[name=comment]", "同意").await;
        click(&c, "#approve").await;
        let status = text_at(&c, "//span[@id='request-status' and contains(., '已通过')]").await;
        assert!(status.contains("已通过"), "{status}");
        shot(&c, "approval-phone").await;
        c.close().await.unwrap();
        // Approved, the quote may be sent.
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;
        sign_in(&c, &app, "rep@browser-approve.test", "password-123456").await;
        c.goto(&app.url(&qpath)).await.unwrap();
        click(&c, "#send-quote").await;
        text_at(&c, "//ul[@id='version-list']/li[contains(., 'v1')]").await;
        c.close().await.unwrap();
    }
);

both!(
    a_rep_calls_the_forecast_and_the_manager_adjusts_it_in_the_browser,
    |app: crate::harness::TestApp| async move {
        let Some(d) = driver().await else { return };
        let t = app.admin_token.clone();
        let (rep, _) = app
            .user_with_role("sales", "rep@browser-forecast.test")
            .await;
        let rep_id = rep["id"].as_str().unwrap().to_owned();
        crate::quotes::pipeline(&app).await;
        let acc = app
            .created(
                "/api/v1/accounts",
                &t,
                serde_json::json!({"name": "预测浏览器客户", "owner_id": rep["id"]}),
            )
            .await;
        let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
        app.created(
            "/api/v1/opportunities",
            &t,
            serde_json::json!({"name": "本季单", "account_id": acc["id"], "amount": 500_000,
                "owner_id": rep["id"], "expected_close": today.to_string()}),
        )
        .await;
        // The rep, on a phone, calls their number for the quarter with a note.
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;
        c.set_window_size(390, 844).await.unwrap();
        sign_in(&c, &app, "rep@browser-forecast.test", "password-123456").await;
        c.goto(&app.url("/forecast")).await.unwrap();
        click(&c, &format!("#call-{rep_id} summary")).await;
        fill(&c, &format!("#call-{rep_id} input[name=amount]"), "4,500").await;
        fill(&c, &format!("#call-{rep_id} input[name=note]"), "两单在谈").await;
        click(&c, &format!("#call-{rep_id} button")).await;
        let listed = text_at(&c, "//table[@id='calls']//tr[contains(., '两单在谈')]").await;
        assert!(listed.contains("4,500.00"), "{listed}");
        shot(&c, "forecast-phone").await;
        c.close().await.unwrap();
        // The manager adjusts it on the rep's row; the row shows who adjusted it.
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;
        c.set_window_size(1280, 900).await.unwrap();
        sign_in(&c, &app, "admin@acme.test", "correct horse battery").await;
        c.goto(&app.url("/forecast")).await.unwrap();
        click(&c, &format!("#call-{rep_id} summary")).await;
        fill(&c, &format!("#call-{rep_id} input[name=amount]"), "3800").await;
        click(&c, &format!("#call-{rep_id} button")).await;
        let row = text_at(&c, "//table[@id='forecast']//tr[contains(., '3,800.00')]").await;
        assert!(row.contains("已调整"), "{row}");
        let calls = c.find_all(Locator::Css("#calls tbody tr")).await.unwrap();
        assert_eq!(calls.len(), 2, "both calls are kept");
        assert!(c.find(Locator::Css("#forecast-chart svg")).await.is_ok());
        // Performance: the funnel of the deal just created, drawn.
        c.goto(&app.url("/performance")).await.unwrap();
        let reached = text(&c, "#funnel tbody tr td:nth-child(2)").await;
        assert_eq!(reached, "1");
        assert!(c.find(Locator::Css("#funnel-chart svg")).await.is_ok());
        shot(&c, "performance-desktop").await;
        c.close().await.unwrap();
    }
);

both!(
    a_rep_names_the_people_and_competitors_of_a_deal_on_a_phone,
    |app: crate::harness::TestApp| async move {
        let Some(d) = driver().await else { return };
        let t = app.admin_token.clone();
        let (rep, _) = app
            .user_with_role("sales", "rep@browser-parties.test")
            .await;
        crate::quotes::pipeline(&app).await;
        let acc = app
            .created(
                "/api/v1/accounts",
                &t,
                serde_json::json!({"name": "参与方浏览器客户", "owner_id": rep["id"]}),
            )
            .await;
        let boss = app
            .created(
                "/api/v1/contacts",
                &t,
                serde_json::json!({"name": "赵总", "account_id": acc["id"], "owner_id": rep["id"]}),
            )
            .await;
        let deal = app
            .created(
                "/api/v1/opportunities",
                &t,
                serde_json::json!({"name": "参与方单", "account_id": acc["id"], "amount": 1, "owner_id": rep["id"]}),
            )
            .await;
        let path = format!("/opportunities/{}", deal["id"].as_str().unwrap());
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;
        c.set_window_size(390, 844).await.unwrap();
        sign_in(&c, &app, "rep@browser-parties.test", "password-123456").await;
        c.goto(&app.url(&path)).await.unwrap();
        pick(&c, "#add-contact", boss["id"].as_str().unwrap()).await;
        pick(
            &c,
            "#deal-contacts select[name='c0.role']",
            "decision_maker",
        )
        .await;
        click(&c, "#save-contacts").await;
        let listed = text_at(
            &c,
            "//section[@id='deal-contacts']//div[contains(., '赵总')]",
        )
        .await;
        assert!(listed.contains("赵总"), "{listed}");
        fill(&c, "#add-competitor", "竞品茶业").await;
        click(&c, "#save-competitors").await;
        c.wait()
            .for_element(Locator::Css("#deal-competitors input[value='竞品茶业']"))
            .await
            .unwrap();
        shot(&c, "deal-parties-phone").await;
        c.close().await.unwrap();
        let parties: serde_json::Value = app
            .get(
                &format!(
                    "/api/v1/opportunities/{}/parties",
                    deal["id"].as_str().unwrap()
                ),
                &t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(parties["contacts"][0]["role"], "decision_maker");
        assert_eq!(parties["competitors"][0]["name"], "竞品茶业");
    }
);

both!(
    an_agent_writes_an_article_on_a_phone_and_sends_it_as_a_reply,
    |app: crate::harness::TestApp| async move {
        let Some(d) = driver().await else { return };
        let t = app.admin_token.clone();
        app.user_with_role("service", "agent@browser-kb.test").await;
        let ticket = app
            .created(
                "/api/v1/tickets",
                &t,
                serde_json::json!({"subject": "打印机连不上网络"}),
            )
            .await;
        let profile = crate::harness::temp_dir();
        let c = browser(&d, &profile.0).await;
        c.set_window_size(390, 844).await.unwrap();
        sign_in(&c, &app, "agent@browser-kb.test", "password-123456").await;
        c.goto(&app.url("/articles/new")).await.unwrap();
        fill(&c, "#record-form input[name='title']", "打印机无法连接网络").await;
        fill(
            &c,
            "#record-form textarea[name='body']",
            "检查网线是否插好，再重启打印机。",
        )
        .await;
        pick(&c, "#record-form select[name='status']", "published").await;
        pick(&c, "#record-form select[name='audience']", "public").await;
        click(&c, "#record-form button.primary").await;
        let status = text(&c, "#status").await;
        assert!(
            status.contains("已发布") || status.contains("Published"),
            "{status}"
        );
        shot(&c, "article-phone").await;
        c.goto(&app.url(&format!("/tickets/{}", ticket["id"].as_str().unwrap())))
            .await
            .unwrap();
        click(&c, "#suggested button.send-article").await;
        let said = text_at(
            &c,
            "//ol[@class='messages']//li[contains(., '打印机无法连接网络')]",
        )
        .await;
        assert!(said.contains("检查网线"), "{said}");
        // A note with a photo from the phone: the file rides with it and is listed.
        let photo = format!("{}/网口.png", profile.0.display());
        std::fs::write(&photo, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
        fill(&c, "#write textarea[name='body']", "网口照片见附件").await;
        pick(&c, "#write select[name='kind']", "note").await;
        c.find(Locator::Css("#files"))
            .await
            .unwrap()
            .send_keys(&photo)
            .await
            .unwrap();
        click(&c, "#send").await;
        let said = text_at(
            &c,
            "//ol[@class='messages']//li[contains(., '网口照片见附件')]",
        )
        .await;
        assert!(said.contains("网口.png"), "{said}");
        let listed = text(&c, "#files-card").await;
        assert!(listed.contains("网口.png"), "{listed}");
        shot(&c, "ticket-file-phone").await;
        // The customer finds it in the help centre.
        c.goto(&app.url(&format!("/help/{}?q=打印机连不上", app.tenant_id)))
            .await
            .unwrap();
        let found = text(&c, "#results").await;
        assert!(found.contains("打印机无法连接网络"), "{found}");
        shot(&c, "help-centre-phone").await;
        c.close().await.unwrap();
    }
);
