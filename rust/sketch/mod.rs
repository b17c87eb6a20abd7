//! (sketch) module.
