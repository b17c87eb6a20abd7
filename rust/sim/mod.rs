//! (sim) module.
