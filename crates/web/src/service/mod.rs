//! The service desk's HTTP side: `/api/v1/tickets`, `/api/v1/sla-policies` and the ticket and
//! SLA policy pages.

pub mod api;
pub mod mail;
pub mod pages;
