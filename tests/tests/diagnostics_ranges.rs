//! Numbers and durations out of range say so and give the range; a cache
//! `ttl` of 0 or above 365 days is refused; a secret used as a key (index,
//! its `where:`, unique, reference) has a code of its own.

mod diag_support;

use diag_support::problems;

fn store(pool: &str) -> String {
    format!(
        "version: 1\nstores:\n  main: {{ kind: postgres, url: \"postgres://h/db\", pool: {{ {pool} }} }}\nentities:\n  A:\n    table: a\n    store: main\n    fields:\n      id: i64\n"
    )
}

#[test]
fn pool_numbers_and_durations_out_of_range_say_so_with_the_range() {
    let p = problems(&store("max: 99999999999"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].0.starts_with("3:")
            && p[0]
                .0
                .contains("error[strata::out_of_range]: `max` is out of range"),
        "{p:?}"
    );
    assert!(p[0].1.contains("from 1 to 4294967295"), "{p:?}");
    let p = problems(&store("max: ten"));
    assert!(
        p[0].0
            .contains("error[strata::expected_number]: `max` must be a whole number"),
        "{p:?}"
    );
    for key in ["idle_timeout", "statement_timeout"] {
        let p = problems(&store(&format!("{key}: 5124095576030431h")));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].0.contains(&format!(
                "error[strata::out_of_range]: `{key}` is out of range"
            )),
            "{p:?}"
        );
        assert!(p[0].1.contains("18446744073709551615 ms"), "{p:?}");
        let p = problems(&store(&format!("{key}: 5 weeks")));
        assert!(p[0].0.contains("error[strata::expected_duration]"), "{p:?}");
    }
}

#[test]
fn pool_values_no_pool_or_server_can_use_are_refused() {
    for (pool, says) in [
        ("max: 0", "a pool of 0 connections can never connect"),
        ("acquire_timeout: 0s", "fails every wait for a connection"),
        ("idle_timeout: 0ms", "would close every connection"),
        ("max_lifetime: 0s", "would close every connection"),
        ("statement_timeout: 100000d", "at most 2147483647 ms"),
        ("statement_timeout: 25d", "at most 2147483647 ms"),
    ] {
        let p = problems(&store(pool));
        assert_eq!(p.len(), 1, "{pool}: {p:?}");
        assert!(
            p[0].0.starts_with("3:")
                && p[0].0.contains("error[strata::out_of_range]")
                && p[0].0.contains(says),
            "{pool}: {p:?}"
        );
        assert!(!p[0].1.is_empty(), "{pool}: a hint");
    }
    // The edges that work: no statement timeout, PostgreSQL's largest.
    for pool in [
        "statement_timeout: 0s",
        "statement_timeout: 24d",
        "max: 1, min: 1",
    ] {
        strata_codegen::compile_str("s.yaml", &store(pool))
            .unwrap_or_else(|d| panic!("{pool}: {}", d.render_short()));
    }
}

#[test]
fn a_hand_built_pool_config_with_max_0_is_an_error_not_a_panic() {
    let config = strata_sdk::postgres::PoolConfig {
        max: Some(0),
        ..strata_sdk::postgres::PoolConfig::new("postgres://127.0.0.1:1/x")
    };
    let e = config.check().unwrap_err();
    assert!(matches!(e, strata_sdk::Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("`max` is 0"), "{e}");
}

fn cached(ttl: &str) -> String {
    format!(
        "version: 1\nstores:\n  main: {{ kind: postgres, url: \"postgres://h/db\" }}\n  cache: {{ kind: redis, url: \"redis://h\" }}\nentities:\n  A:\n    table: a\n    store: main\n    cache: {{ store: cache, ttl: {ttl} }}\n    fields:\n      id: i64\n"
    )
}

#[test]
fn a_cache_ttl_is_between_one_millisecond_and_a_year() {
    for (ttl, says) in [
        ("0s", "a `ttl` of 0 would keep nothing"),
        ("0ms", "a `ttl` of 0 would keep nothing"),
        ("366d", "longer than 365 days"),
        ("18446744073709551615ms", "longer than 365 days"),
        ("5124095576030431h", "`ttl` is out of range"),
        ("99999999999999999999ms", "`ttl` is out of range"),
    ] {
        let p = problems(&cached(ttl));
        assert_eq!(p.len(), 1, "{ttl}: {p:?}");
        assert!(
            p[0].0.starts_with("9:33: error[strata::out_of_range]") && p[0].0.contains(says),
            "{ttl}: {p:?}"
        );
    }
    for ttl in ["1ms", "30s", "365d"] {
        strata_codegen::compile_str("s.yaml", &cached(ttl))
            .unwrap_or_else(|d| panic!("{ttl}: {d}"));
    }
}

#[test]
fn a_secret_is_never_a_key() {
    let base = "version: 1\nstores:\n  main: { kind: postgres, url: \"postgres://h/db\" }\nentities:\n  U:\n    table: u\n    store: main\n    fields:\n      id: i64\n      name: string(20)\n";
    for (extra, at, what) in [
        ("      pw: { type: secret, unique: true }\n", "11:7", "a unique constraint"),
        ("      pw: secret\n    unique: [[name, pw]]\n", "12:14", "a unique constraint"),
        ("      pw: secret\n    indexes:\n      - { fields: [pw] }\n", "13:9", "an index"),
        ("      pw: secret\n    indexes:\n      - { fields: [name], where: { pw: \"hunter2\" } }\n", "13:36", "an index's `where:`"),
        ("      pw: { type: secret, unique: true }\n  S:\n    table: s\n    store: main\n    fields:\n      id: i64\n      token: { type: secret, references: U.pw }\n", "17:42", "a reference"),
    ] {
        let p = problems(&format!("{base}{extra}"));
        let hit = p.iter().find(|(l, _)| l.contains("strata::secret_key") && l.contains(what));
        let (line, help) = hit.unwrap_or_else(|| panic!("{what}: {p:?}"));
        assert!(line.starts_with(&format!("{at}:")), "{what}: {line}");
        assert!(help.contains("a secret is never a key"), "{help}");
        assert!(!p.iter().any(|(l, _)| l.contains("bad_default")), "{p:?}");
    }
}

/// A number too large for any key names the key's own range, not `u32`'s.
#[test]
fn numbers_too_large_to_read_name_the_keys_range() {
    let schema = |events: &str, limit: &str| {
        format!(
            "version: 1\nstores:\n  main: {{ kind: postgres }}\n  cache: {{ kind: redis, url: \"redis://h\" }}\nentities:\n  A:\n    store: main\n    events: {{ store: cache, {events} }}\n    fields:\n      id: i64\n      s: string(8)\n    queries:\n      by_s: {{ where: [s], limit: {limit} }}\n"
        )
    };
    for (events, limit, want) in [
        (
            "partitions: 99999999999999999999999",
            "10",
            "from 1 to 1024",
        ),
        (
            "max_len: 99999999999999999999999",
            "10",
            "from 1000 to 4294967295",
        ),
        (
            "partitions: 4",
            "99999999999999999999",
            "from 1 to 4294967295",
        ),
    ] {
        let p = problems(&schema(events, limit));
        assert_eq!(p.len(), 1, "{events} {limit}: {p:?}");
        assert!(p[0].0.contains("out_of_range"), "{p:?}");
        assert!(p[0].1.contains(want), "{events} {limit}: {p:?}");
    }
}
