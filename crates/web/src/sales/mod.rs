//! The sales module's HTTP side: `/api/v1/leads` and the lead pages.

pub mod api;
pub mod pages;
