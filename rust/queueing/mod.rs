//! (queueing) module.
