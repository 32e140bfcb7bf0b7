//! The `guanxi` command line: a thin layer that resolves configuration, opens the database and
//! calls the platform and web crates.
#![forbid(unsafe_code)]

pub mod bench;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use guanxi_platform::config::{Config, Layer, LogFormat, Secret, DEFAULT_TOML};
use guanxi_platform::tenants::{self, NewTenant};
use guanxi_platform::users::NewUser;
use guanxi_platform::{api_tokens, auth, migrate, roles, users, Db};
use std::path::PathBuf;
use uuid::Uuid;

#[derive(Parser, Debug)]
#[command(
    name = "guanxi",
    version,
    about = "Guanxi (关系) CRM: one binary, SQLite by default, PostgreSQL for scale"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings shared by every subcommand. Flags beat `GUANXI_*` environment variables, which beat
/// the TOML file, which beats the defaults.
#[derive(Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// TOML configuration file (default: <data-dir>/guanxi.toml when it exists).
    #[arg(long, env = "GUANXI_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Directory of the embedded SQLite database.
    #[arg(long, env = "GUANXI_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://…); without it, SQLite in the data directory.
    #[arg(
        long,
        env = "GUANXI_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GUANXI_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// URL users reach the server at (used in emailed links).
    #[arg(long, env = "GUANXI_BASE_URL")]
    pub base_url: Option<String>,
    /// Let visitors sign up a new company from the sign-in page.
    #[arg(long, env = "GUANXI_ALLOW_SIGNUP")]
    pub allow_signup: Option<Option<bool>>,
    /// Outgoing mail server, smtp://[user:pass@]host[:port].
    #[arg(long, env = "GUANXI_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    #[arg(long, env = "GUANXI_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// First start only: the first admin's email.
    #[arg(long, env = "GUANXI_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// First start only: the first admin's password.
    #[arg(long, env = "GUANXI_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// text or json.
    #[arg(long, env = "GUANXI_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Run background workers in this process (true/false).
    #[arg(long, env = "GUANXI_WORKERS")]
    pub workers: Option<bool>,
    /// Reverse proxies whose X-Forwarded-For names the client: addresses or CIDR ranges,
    /// comma-separated.
    #[arg(long, env = "GUANXI_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the web UI, API and background workers.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Tenants, users and API tokens from the shell.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Copy the SQLite database to FILE while the server runs (PostgreSQL: use pg_dump).
    Backup {
        #[arg(long)]
        to: PathBuf,
    },
    /// Replace the SQLite database with a backup (stop the server first; PostgreSQL: pg_restore).
    Restore {
        #[arg(long)]
        from: PathBuf,
    },
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Import contacts, accounts or orders from CSV (UTF-8 or GBK), XLSX or vCard into a tenant,
    /// with a progress bar; prints a summary and writes row errors to stderr.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Load a demo company (customers, contacts, two years of orders, activities by several
    /// reps) into a new tenant, or into --tenant; prints the tenant id last.
    Demo {
        /// Load into this tenant instead of a new one.
        #[arg(long)]
        tenant: Option<Uuid>,
        /// Number of accounts (each with 1–3 contacts, orders and activities).
        #[arg(long, default_value_t = 120)]
        accounts: usize,
        /// The same seed gives the same company.
        #[arg(long, default_value_t = 2024)]
        seed: u64,
        /// Instead of the demo company: this many generated contacts (and a tenth as many
        /// accounts) and as many leads, written through the bulk path, for benchmarks.
        #[arg(long)]
        scale: Option<usize>,
    },
    /// Support mailboxes from the shell.
    #[command(subcommand)]
    Mail(MailCommand),
    /// The benchmark suite: generated data at each scale, HTTP paths, import and export, each
    /// beside a bare-SQL floor (see docs/benchmarks.md).
    Bench(bench::BenchArgs),
    /// The benchmark's floor server (started by `guanxi bench`).
    #[command(hide = true)]
    BenchFloor {
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long)]
        tenant: Uuid,
    },
    /// The import benchmark's floor: bulk-inserts a CSV's contacts, accounts or orders with
    /// no checks.
    #[command(hide = true)]
    BenchFloorImport {
        file: PathBuf,
        #[arg(long)]
        tenant: Uuid,
        #[arg(long, default_value = "contacts")]
        kind: String,
    },
}

/// What `guanxi import` reads: the file (CSV in UTF-8 or GBK, `.xlsx`, or `.vcf` for contacts)
/// and how.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    file: PathBuf,
    #[arg(long)]
    tenant: Uuid,
    /// Act as this user (default: the tenant's first admin).
    #[arg(long = "as")]
    as_user: Option<String>,
    /// Check and count without saving.
    #[arg(long)]
    dry_run: bool,
    /// skip (default), update or create (contacts and accounts).
    #[arg(long, default_value = "skip")]
    duplicates: String,
}

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Contacts (their companies are found by name, or created).
    Contacts(ImportArgs),
    /// Accounts (parents found by name; the same credit code or name is a duplicate).
    Accounts(ImportArgs),
    /// Orders, one row per line, pushed by order number (a re-run doubles nothing).
    Orders(ImportArgs),
}

#[derive(Subcommand, Debug)]
pub enum MailCommand {
    /// Fetch one support mailbox now (taking it over from a server fetching it) and turn its
    /// mail into tickets; reports each stored batch on stderr and a summary last.
    Fetch {
        #[arg(long)]
        tenant: Uuid,
        #[arg(long)]
        mailbox: Uuid,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create a tenant and its first admin; prints the tenant id last.
    CreateTenant {
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long)]
        admin_password: String,
        /// zh-CN (default), zh-TW or en.
        #[arg(long)]
        locale: Option<String>,
    },
    /// Create a user; prints the user id last.
    CreateUser {
        #[arg(long)]
        tenant: Uuid,
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        /// Role key: admin, manager, sales, marketing, service, read_only or a custom key.
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Create an API token for a user; prints the token last (shown once).
    CreateToken {
        #[arg(long)]
        tenant: Uuid,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
    /// Set a user's password (no email needed): given, or generated and printed last. Their
    /// sessions end and older sign-in links stop working.
    ResetPassword {
        #[arg(long)]
        tenant: Uuid,
        #[arg(long)]
        email: String,
        /// At least 10 characters; omitted, one is generated.
        #[arg(long)]
        password: Option<String>,
    },
    /// List tenants.
    ListTenants,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print a commented default configuration file.
    PrintDefault,
    /// Print the effective configuration (secrets redacted).
    Print,
}

impl ServeArgs {
    fn layer(&self) -> Layer {
        Layer {
            listen: self.listen,
            base_url: self.base_url.clone(),
            allow_signup: self.allow_signup.map(|v| v.unwrap_or(true)),
            smtp_url: self.smtp_url.clone().map(Secret),
            mail_from: self.mail_from.clone(),
            admin_email: self.admin_email.clone(),
            admin_password: self.admin_password.clone().map(Secret),
            log_format: self.log_format,
            workers: self.workers,
            trusted_proxies: self.trusted_proxies.clone(),
            ..Layer::default()
        }
    }
}

/// Resolves the configuration: flags/env (clap) over the TOML file over defaults.
pub fn resolve_config(global: &GlobalArgs, serve: Option<&ServeArgs>) -> anyhow::Result<Config> {
    let mut cli = serve.map(ServeArgs::layer).unwrap_or_default();
    cli.data_dir = global.data_dir.clone();
    cli.database_url = global.database_url.clone().map(Secret);
    let file = match &global.config {
        Some(p) => Config::read_file(p, true)?,
        None => {
            let dir = global
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("data"));
            Config::read_file(&dir.join("guanxi.toml"), false)?
        }
    };
    Ok(Config::resolve(&[cli, file]))
}

/// Opens and migrates the database, with one clear error line when it cannot.
pub async fn open_db(config: &Config) -> anyhow::Result<Db> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
    }
    let db = Db::connect(&config.database(), config.db_max_connections)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    migrate::run(&db, guanxi_web::MIGRATIONS)
        .await
        .map_err(|e| anyhow::anyhow!("migrating the database: {e}"))?;
    guanxi_customers::search::backfill_grams(&db)
        .await
        .map_err(|e| anyhow::anyhow!("filling the search index: {e}"))?;
    db.analyze(false)
        .await
        .map_err(|e| anyhow::anyhow!("refreshing planner statistics: {e}"))?;
    Ok(db)
}

/// First start: when there is no tenant yet, create one with an admin. Returns what to print.
pub async fn bootstrap(db: &Db, config: &Config) -> anyhow::Result<Option<String>> {
    if !tenants::all(db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .is_empty()
    {
        return Ok(None);
    }
    let email = config
        .admin_email
        .clone()
        .unwrap_or_else(|| "admin@example.com".into());
    let (password, generated) = match &config.admin_password {
        Some(p) => (p.expose().to_owned(), false),
        None => (
            guanxi_platform::secret::random_secret()[..16].to_owned(),
            true,
        ),
    };
    tenants::create(
        db,
        NewTenant {
            // The first company's name in the default language (zh-CN); renamed in settings.
            name: "我的公司".into(),
            admin_email: email.clone(),
            admin_name: None,
            admin_password: password.clone(),
            locale: None,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating the first tenant: {e:?}"))?;
    let shown = if generated {
        password
    } else {
        "(the GUANXI_ADMIN_PASSWORD you set)".into()
    };
    Ok(Some(format!("First start: created the company and its admin.\n  Sign in at {} as {email} with password {shown}", config.base_url)))
}

fn err(e: guanxi_platform::Error) -> anyhow::Error {
    match e {
        guanxi_platform::Error::Validation(v) => {
            anyhow::anyhow!(
                "invalid input: {}",
                v.iter()
                    .map(|f| format!("{} ({})", f.field, f.code))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        e => anyhow::anyhow!("{e}"),
    }
}

pub async fn admin(db: &Db, config: &Config, cmd: AdminCommand) -> anyhow::Result<String> {
    Ok(match cmd {
        AdminCommand::CreateTenant {
            name,
            admin_email,
            admin_password,
            locale,
        } => {
            let (t, u) = tenants::create(
                db,
                NewTenant {
                    name,
                    admin_email,
                    admin_name: None,
                    admin_password,
                    locale,
                },
            )
            .await
            .map_err(err)?;
            format!("admin user {}\n{}", u.id, t.id)
        }
        AdminCommand::CreateUser {
            tenant,
            email,
            password,
            role,
            name,
        } => {
            let ctx = guanxi_platform::Ctx::system(tenant);
            let r = roles::by_key(db, tenant, &role)
                .await
                .map_err(|e| match e {
                    guanxi_platform::Error::NotFound => {
                        anyhow::anyhow!("no role {role:?} in tenant {tenant}")
                    }
                    e => err(e),
                })?;
            let u = users::create(
                db,
                &ctx,
                &config.base_url,
                NewUser {
                    name: Some(name.unwrap_or_else(|| email.clone())),
                    email: Some(email),
                    password: Some(password),
                    role_id: Some(r.id),
                    team_id: None,
                    locale: None,
                },
            )
            .await
            .map_err(err)?;
            u.id.to_string()
        }
        AdminCommand::CreateToken {
            tenant,
            email,
            name,
        } => {
            let id: Option<(Uuid,)> = db
                .fetch_optional(
                    "SELECT id FROM users WHERE tenant_id = $1 AND email = $2",
                    guanxi_platform::args![tenant, email.trim().to_lowercase()],
                )
                .await
                .map_err(err)?;
            let Some((user,)) = id else {
                bail!("no user {email} in tenant {tenant}")
            };
            let ctx = auth::ctx_for_user(db, tenant, user).await.map_err(err)?;
            let ctx = guanxi_platform::Ctx {
                perms: guanxi_platform::perms::builtin_permissions("admin"),
                ..ctx
            };
            let t = api_tokens::create(
                db,
                &ctx,
                api_tokens::NewToken {
                    name: Some(name),
                    expires_in_days: None,
                },
            )
            .await
            .map_err(err)?;
            t.secret
        }
        AdminCommand::ResetPassword {
            tenant,
            email,
            password,
        } => {
            let id: Option<(Uuid,)> = db
                .fetch_optional(
                    "SELECT id FROM users WHERE tenant_id = $1 AND email = $2 AND deleted_at IS NULL",
                    guanxi_platform::args![tenant, email.trim().to_lowercase()],
                )
                .await
                .map_err(err)?;
            let Some((user,)) = id else {
                bail!("no user {email} in tenant {tenant}")
            };
            let password = password
                .unwrap_or_else(|| guanxi_platform::secret::random_secret()[..16].to_owned());
            users::set_password(db, &guanxi_platform::Ctx::system(tenant), user, &password)
                .await
                .map_err(err)?;
            format!("password set for {email}\n{password}")
        }
        AdminCommand::ListTenants => tenants::all(db)
            .await
            .map_err(err)?
            .iter()
            .map(|t| format!("{}\t{}", t.id, t.name))
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

pub fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GUANXI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a terminal: a log file or journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => b.json().try_init(),
        LogFormat::Text => b.try_init(),
    };
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Config(ConfigCommand::PrintDefault) => {
            print!("{DEFAULT_TOML}");
            Ok(())
        }
        Command::Config(ConfigCommand::Print) => {
            println!("{}", resolve_config(&cli.global, None)?);
            Ok(())
        }
        Command::Serve(args) => {
            let config = resolve_config(&cli.global, Some(&args))?;
            init_logs(config.log_format);
            eprintln!(
                "Guanxi {} starting with:\n{config}",
                env!("CARGO_PKG_VERSION")
            );
            let db = open_db(&config).await?;
            // Imports this server was running when it stopped: shown as interrupted, to run
            // again from their page (nothing is doubled).
            let cut = guanxi_customers::import_runs::mark_interrupted(&db)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if cut > 0 {
                tracing::warn!(imports = cut, "imports interrupted by the last stop");
            }
            if let Some(msg) = bootstrap(&db, &config).await? {
                println!("{msg}");
            }
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            let state = guanxi_web::AppState::new(db.clone(), config.clone())?;
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let worker = if config.workers {
                let (mut rx, mut rx2, mut rx3) =
                    (stop_rx.clone(), stop_rx.clone(), stop_rx.clone());
                Some((
                    tokio::spawn(guanxi_web::run_worker(state.clone(), async move {
                        let _ = rx.wait_for(|v| *v).await;
                    })),
                    tokio::spawn(guanxi_web::run_grader(state.clone(), async move {
                        let _ = rx2.wait_for(|v| *v).await;
                    })),
                    tokio::spawn(guanxi_web::run_mail_fetcher(state.clone(), async move {
                        let _ = rx3.wait_for(|v| *v).await;
                    })),
                ))
            } else {
                None
            };
            println!("Guanxi is running at {} (Ctrl-C to stop)", config.base_url);
            guanxi_web::serve(listener, state, shutdown_signal()).await?;
            let _ = stop_tx.send(true);
            if let Some((w, g, m)) = worker {
                let _ = w.await;
                let _ = g.await;
                let _ = m.await;
            }
            db.close().await;
            Ok(())
        }
        Command::Bench(args) => {
            // The server's own logs (a grading run's phases…) when asked for.
            if std::env::var_os("GUANXI_LOG").is_some() {
                init_logs(Default::default());
            }
            bench::run(&args).await
        }
        Command::Mail(MailCommand::Fetch { tenant, mailbox }) => {
            let config = resolve_config(&cli.global, None)?;
            let db = open_db(&config).await?;
            let report = guanxi_service::mailboxes::work(&db, Some((tenant, mailbox)), &|r| {
                eprintln!("{} messages stored", r.stored + r.skipped);
            })
            .await;
            db.close().await;
            let r = report.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{} stored, {} already here, {} turned into tickets, {} left on the server",
                r.stored, r.skipped, r.processed, r.backlog
            );
            Ok(())
        }
        Command::Import(what) => {
            let (target, args) = match what {
                ImportCommand::Contacts(a) => (guanxi_customers::import::Target::Contacts, a),
                ImportCommand::Accounts(a) => (guanxi_customers::import::Target::Accounts, a),
                ImportCommand::Orders(a) => (guanxi_customers::import::Target::Orders, a),
            };
            let mut config = resolve_config(&cli.global, None)?;
            // One writer: a small pool, so each connection gets a large page cache.
            config.db_max_connections = 2;
            let db = open_db(&config).await?;
            let out = import_file(&db, target, &args).await;
            db.close().await;
            println!("{}", out?);
            Ok(())
        }
        Command::Demo {
            tenant,
            accounts,
            seed,
            scale,
        } => {
            let mut config = resolve_config(&cli.global, None)?;
            config.db_max_connections = 2;
            let db = open_db(&config).await?;
            let out = demo(&db, tenant, accounts, seed, scale, &config.base_url).await;
            db.close().await;
            println!("{}", out?);
            Ok(())
        }
        Command::BenchFloor { listen, tenant } => {
            let config = resolve_config(&cli.global, None)?;
            bench::floor(&config, listen, tenant).await
        }
        Command::BenchFloorImport { file, tenant, kind } => {
            let mut config = resolve_config(&cli.global, None)?;
            config.db_max_connections = 2; // as `guanxi import`

            bench::floor_import(&config, &file, tenant, &kind).await
        }
        Command::Migrate => {
            let config = resolve_config(&cli.global, None)?;
            let db = open_db(&config).await?;
            println!(
                "migrations up to date ({} known)",
                guanxi_web::MIGRATIONS
                    .iter()
                    .map(|s| s.len())
                    .sum::<usize>()
            );
            db.close().await;
            Ok(())
        }
        Command::Admin(cmd) => {
            let config = resolve_config(&cli.global, None)?;
            let db = open_db(&config).await?;
            let out = admin(&db, &config, cmd).await;
            db.close().await;
            println!("{}", out?);
            Ok(())
        }
        Command::Backup { to } => {
            let config = resolve_config(&cli.global, None)?;
            if config.database_url.is_some() {
                bail!("backup copies the embedded SQLite database; for PostgreSQL use pg_dump (see README)");
            }
            if to.exists() {
                bail!("{} already exists; choose a new file", to.display());
            }
            let db = open_db(&config).await?;
            db.execute(
                "VACUUM INTO $1",
                guanxi_platform::args![to.to_string_lossy().into_owned()],
            )
            .await
            .map_err(err)?;
            db.close().await;
            println!("{}", to.display());
            Ok(())
        }
        Command::Restore { from } => {
            let config = resolve_config(&cli.global, None)?;
            if config.database_url.is_some() {
                bail!("restore replaces the embedded SQLite database; for PostgreSQL use pg_restore/psql (see README)");
            }
            // Check the backup opens and has our schema before touching the live file.
            let check = Db::connect(&from.to_string_lossy(), 1)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let n: i64 = check
                .scalar(
                    "SELECT COUNT(*) FROM schema_migrations",
                    guanxi_platform::args![],
                )
                .await
                .map_err(|_| anyhow::anyhow!("{} is not a Guanxi backup", from.display()))?;
            check.close().await;
            if n == 0 {
                bail!("{} is not a Guanxi backup", from.display());
            }
            std::fs::create_dir_all(&config.data_dir)?;
            let target = config.data_dir.join("guanxi.db");
            for ext in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", target.display()));
            }
            let tmp = config.data_dir.join("guanxi.db.restoring");
            std::fs::copy(&from, &tmp)?;
            std::fs::rename(&tmp, &target)?;
            println!("restored {} into {}", from.display(), target.display());
            Ok(())
        }
    }
}

/// `guanxi demo`: returns what to print (a summary, the tenant id last).
async fn demo(
    db: &Db,
    tenant: Option<Uuid>,
    accounts: usize,
    seed: u64,
    scale: Option<usize>,
    base_url: &str,
) -> anyhow::Result<String> {
    let err = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
    let (tenant_id, admin_id, sign_in) = match tenant {
        Some(t) => {
            let admin: Option<(Uuid,)> = db
                .fetch_optional(
                    "SELECT u.id FROM users u JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
                     WHERE u.tenant_id = $1 AND r.key = $2 AND u.active = $3 ORDER BY u.created_at LIMIT 1",
                    guanxi_platform::args![t, "admin", true],
                )
                .await
                .map_err(err)?;
            let Some((admin,)) = admin else {
                bail!("tenant {t} has no active admin")
            };
            (t, admin, String::new())
        }
        None => {
            let email = format!("demo{seed}@demo.guanxi");
            let password = guanxi_platform::secret::random_secret()[..16].to_owned();
            let (t, admin) = tenants::create(
                db,
                NewTenant {
                    name: "示例茶业贸易有限公司".into(),
                    admin_email: email.clone(),
                    admin_name: Some("演示管理员".into()),
                    admin_password: password.clone(),
                    locale: None,
                },
            )
            .await
            .map_err(err)?;
            (
                t.id,
                admin.id,
                format!("sign in as {email} with password {password}\n"),
            )
        }
    };
    let ctx = auth::ctx_for_user(db, tenant_id, admin_id)
        .await
        .map_err(err)?;
    if let Some(n) = scale {
        use std::io::Write;
        let started = std::time::Instant::now();
        let stats = guanxi_customers::demo::scale(db, &ctx, n, seed, |done| {
            eprint!("\r{done}/{n} contacts");
            let _ = std::io::stderr().flush();
        })
        .await
        .map_err(err)?;
        eprintln!();
        guanxi_sales::demo::scale(db, &ctx, n, seed + 1)
            .await
            .map_err(err)?;
        db.analyze(true).await.map_err(err)?;
        return Ok(format!(
            "generated {} accounts, {} contacts, {} orders with {} lines, {} activities and {n} leads in {:.1} s\n{sign_in}{tenant_id}",
            stats.accounts,
            stats.contacts,
            stats.orders,
            stats.order_lines,
            stats.activities,
            started.elapsed().as_secs_f64()
        ));
    }
    let stats = guanxi_customers::demo::load(
        db,
        &ctx,
        guanxi_customers::demo::DemoSize { accounts, seed },
    )
    .await
    .map_err(err)?;
    guanxi_sales::demo::load(db, &ctx, seed)
        .await
        .map_err(err)?;
    // The company is graded once (4V, the default scheme): grades, scores and the page show.
    guanxi_analytics::grading_runs::create(db, &ctx, Default::default())
        .await
        .map_err(err)?;
    guanxi_analytics::grading_runs::work(db)
        .await
        .map_err(err)?;
    // The service desk, after the grades its policies depend on.
    let service = guanxi_service::demo::load(db, &ctx, seed, base_url)
        .await
        .map_err(err)?;
    // The reps sign in too, with one printed password (so a demo can be shown from each seat).
    let rep_password = guanxi_platform::secret::random_secret()[..16].to_owned();
    let mut reps = vec![];
    let agents = (1..=2).map(|i| format!("agent{i}.{seed}@demo.guanxi"));
    for email in (1..=stats.reps)
        .map(|i| format!("rep{i}.{seed}@demo.guanxi"))
        .chain(agents)
    {
        let id: Option<(Uuid,)> = db
            .fetch_optional(
                "SELECT id FROM users WHERE tenant_id = $1 AND email = $2",
                guanxi_platform::args![tenant_id, email.as_str()],
            )
            .await
            .map_err(err)?;
        if let Some((id,)) = id {
            users::set_password(db, &ctx, id, &rep_password)
                .await
                .map_err(err)?;
            reps.push(email);
        }
    }
    Ok(format!(
        "demo loaded: {} reps, {} accounts, {} contacts, {} products, {} orders, {} activities, {} tickets, {} visits booked, {} articles (help centre: /help/{tenant_id}), {} customers invited to the portal (/portal/{tenant_id})\n{sign_in}sales reps and service agents {} sign in with password {rep_password}\n{tenant_id}",
        stats.reps, stats.accounts, stats.contacts, stats.products, stats.orders, stats.activities,
        service.tickets, service.visits, service.articles, service.portal_users, reps.join(", ")
    ))
}

/// `guanxi import contacts`: returns the summary line.
async fn import_file(
    db: &Db,
    target: guanxi_customers::import::Target,
    args: &ImportArgs,
) -> anyhow::Result<String> {
    let (file, tenant, as_user, dry_run) = (&args.file, args.tenant, &args.as_user, args.dry_run);
    let duplicates = args.duplicates.as_str();
    use guanxi_customers::import::{self, DuplicatePolicy, ImportOptions};
    use std::io::Write;
    let err = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
    let policy = match duplicates {
        "skip" => DuplicatePolicy::Skip,
        "update" => DuplicatePolicy::Update,
        "create" => DuplicatePolicy::Create,
        other => bail!("--duplicates must be skip, update or create, not {other}"),
    };
    let user: Option<(Uuid,)> = match as_user {
        Some(email) => db
            .fetch_optional(
                "SELECT id FROM users WHERE tenant_id = $1 AND email = $2 AND active = $3",
                guanxi_platform::args![tenant, email.trim().to_lowercase(), true],
            )
            .await
            .map_err(err)?,
        None => db
            .fetch_optional(
                "SELECT u.id FROM users u JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
                 WHERE u.tenant_id = $1 AND r.key = $2 AND u.active = $3 ORDER BY u.created_at LIMIT 1",
                guanxi_platform::args![tenant, "admin", true],
            )
            .await
            .map_err(err)?,
    };
    let Some((user,)) = user else {
        bail!("no such active user in tenant {tenant}")
    };
    let ctx = auth::ctx_for_user(db, tenant, user).await.map_err(err)?;
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let total = f.metadata().map(|m| m.len()).unwrap_or(0).max(1);
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = guanxi_records::tables::Counted {
        inner: std::io::BufReader::new(f),
        read: read.clone(),
    };
    let format = guanxi_records::tables::Format::of_name(&file.to_string_lossy());
    let table = guanxi_records::tables::open(format, counted).map_err(err)?;
    let opts = ImportOptions {
        dry_run,
        duplicates: policy,
        labels: guanxi_web::customers::api::import_labels(),
        mapping: Default::default(),
    };
    // A progress bar by bytes read: `[#########-----------]  45%  12345 rows`.
    let report = import::run(db, &ctx, target, table, &opts, |n| {
        let done = read.load(std::sync::atomic::Ordering::Relaxed).min(total);
        let pct = done * 100 / total;
        let bar = "#".repeat((pct / 5) as usize) + &"-".repeat(20 - (pct / 5) as usize);
        eprint!("\r[{bar}] {pct:>3}%  {n} rows");
        let _ = std::io::stderr().flush();
    })
    .await
    .map_err(err)?;
    eprintln!();
    for e in &report.errors {
        eprintln!("row {}: {}: {}", e.row, e.column, e.reason);
    }
    Ok(format!(
        "{}{} rows: {} created, {} updated, {} skipped, {} failed",
        if dry_run { "dry run: " } else { "" },
        report.rows,
        report.created,
        report.updated,
        report.skipped,
        report.failed
    ))
}
