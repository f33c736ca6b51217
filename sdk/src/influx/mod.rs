//! influx runtime.
