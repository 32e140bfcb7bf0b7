//! The integration suite: every test runs through the public HTTP API (or the CLI binary)
//! against real SQLite and, when `GUANXI_TEST_DATABASE_URL` is set, real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

mod harness;

mod approvals;
mod articles;
mod assets;
mod attachments;
mod auth;
mod browser;
mod calendars;
mod collaborators;
mod concurrency;
mod custom_fields;
mod customers;
mod dashboards;
mod forecast;
mod forms;
mod grading;
mod imports;
mod input;
mod isolation;
mod jobs;
mod leads;
mod mail;
mod notifications;
mod opportunities;
mod pools;
mod portal;
mod quotes;
mod reports;
mod scheduler;
mod schema;
mod security;
mod settings;
mod surveys;
mod tickets;
mod users;
mod value;
mod visits;
mod web;
