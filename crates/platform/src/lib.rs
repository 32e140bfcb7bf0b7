//! The platform every Guanxi module stands on: configuration, the database (SQLite and
//! PostgreSQL behind one query API), migrations, tenancy, authentication, permissions, audit,
//! jobs and the outbox, pagination and validation helpers.
#![forbid(unsafe_code)]

pub mod api_tokens;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod calendar;
pub mod calendars;
pub mod config;
pub mod ctx;
pub mod db;
pub mod error;
pub mod files;
pub mod idempotency;
pub mod jobs;
pub mod keylock;
pub mod mail;
pub mod migrate;
pub mod notifications;
pub mod numbering;
pub mod page;
pub mod perms;
pub mod ratelimit;
pub mod recent;
pub mod roles;
pub mod secret;
pub mod settings;
pub mod teams;
pub mod tenants;
pub mod time;
pub mod users;
pub mod validate;
pub mod version;
pub mod views;

pub use ctx::Ctx;
pub use db::Db;
pub use error::{Error, Result};
