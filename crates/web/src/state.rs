//! What every handler shares.

use guanxi_platform::auth::Limiter;
use guanxi_platform::config::Config;
use guanxi_platform::mail::Mailer;
use guanxi_platform::Db;
use minijinja::Environment;
use std::sync::Arc;
use tokio::sync::Notify;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub mailer: Mailer,
    pub limiter: Arc<Limiter>,
    pub templates: Arc<Environment<'static>>,
    pub metrics: Arc<Metrics>,
    /// Wakes the job worker when a request queued work.
    pub jobs_wake: Arc<Notify>,
    /// Wakes the grader when an evaluation was asked for.
    pub grading_wake: Arc<Notify>,
    /// Wakes the mail fetcher when a mailbox was added, changed or asked to fetch now.
    pub mail_wake: Arc<Notify>,
    /// What the worker runs for each scheduled job kind (`crate::job_handlers`).
    pub handlers: Arc<guanxi_platform::jobs::Handlers>,
}

impl AppState {
    pub fn new(db: Db, config: Config) -> anyhow::Result<AppState> {
        let mailer = Mailer::new(
            config.smtp_url.as_ref().map(|s| s.expose()),
            &config.mail_from,
        )?;
        let handlers = Arc::new(crate::job_handlers(&config));
        Ok(AppState {
            db,
            config: Arc::new(config),
            mailer,
            limiter: Arc::new(Limiter::default()),
            templates: Arc::new(crate::pages::templates()?),
            metrics: Arc::new(Metrics::default()),
            jobs_wake: Arc::new(Notify::new()),
            grading_wake: Arc::new(Notify::new()),
            mail_wake: Arc::new(Notify::new()),
            handlers,
        })
    }
}
