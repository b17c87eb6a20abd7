//! (arrivals) module.
