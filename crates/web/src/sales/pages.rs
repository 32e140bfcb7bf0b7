//! Lead pages.
