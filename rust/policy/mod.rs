//! Autoscaling and overload-control policies that run inside the simulator's event loop.
