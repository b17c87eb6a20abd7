//! (little) module.
