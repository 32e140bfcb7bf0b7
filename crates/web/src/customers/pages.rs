//! Customer pages: see mod.rs.
