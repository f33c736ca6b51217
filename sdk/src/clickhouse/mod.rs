//! clickhouse runtime.
