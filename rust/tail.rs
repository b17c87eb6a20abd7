//! (tail) module.
