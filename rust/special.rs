//! Special functions (incomplete gamma and beta, their inverses) used by the statistics.
