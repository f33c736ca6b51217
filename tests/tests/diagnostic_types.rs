//! Every problem keeps the typed error of the stage that found it
//! (`Problem::error`): a tool or test matches on the variant and its
//! fields, not on the message text.

use strata_codegen::clickhouse::error::{ClickhouseError, Loss};
use strata_codegen::diagnostics::StageError;
use strata_codegen::model::resolve::error::ResolveError;
use strata_codegen::rust::error::RustError;
use strata_codegen::syntax::error::SyntaxError;
use strata_codegen::Code;

fn errors(name: &str, text: &str) -> Vec<StageError> {
    let err = strata_codegen::compile_str(name, text).expect_err("refused");
    (err.items.iter())
        .map(|d| {
            let e = d
                .problem()
                .error
                .as_deref()
                .expect("every problem is typed");
            assert_eq!(e.code(), d.problem().code, "{}", d.problem().message);
            e.clone()
        })
        .collect()
}

#[test]
fn syntax_and_resolver_problems_are_their_stages_variants() {
    let text = "version: 1\nstores:\n  main: { kind: postgres, url: \"postgres://x\" }\n\
        entities:\n  Order:\n    table: orders\n    store: mian\n    key: id\n    \
        fields:\n      id: uuid\n      qty: { type: i64, defualt: 1 }\n";
    let errors = errors("orders.yaml", text);
    assert!(
        errors.iter().any(|e| matches!(e,
            StageError::Resolve(ResolveError::UnknownStore { name, suggestion: Some(s), .. })
                if name == "mian" && s == "main")),
        "{errors:#?}"
    );
    assert!(
        errors.iter().any(|e| matches!(e,
            StageError::Syntax(SyntaxError::UnknownKey { key, suggestion: Some(s), .. })
                if key == "defualt" && s == "default")),
        "{errors:#?}"
    );
}

#[test]
fn a_back_end_problem_is_its_back_ends_variant() {
    let text = "version: 1\nstores:\n  db: { kind: postgres, url: \"postgres://x\" }\n  \
        old: { kind: clickhouse, database: old, server_version: \"18.16\" }\n\
        entities:\n  Ledger:\n    table: ledger\n    store: db\n    key: id\n    \
        fields:\n      id: uuid\n      huge: decimal(40,2)\n\
        sync:\n  - { from: Ledger, to: [old] }\n";
    let errors = errors("ledger.yaml", text);
    // Two back ends refuse the same field, each with its own variant.
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        matches!(&errors[0], StageError::Rust(RustError::DecimalPrecision { field, precision: 40, .. })
            if field == "huge"),
        "{errors:#?}"
    );
    let StageError::ClickHouse(ClickhouseError::Lossy {
        field, store, loss, ..
    }) = &errors[1]
    else {
        panic!("{errors:#?}");
    };
    assert_eq!((field.as_str(), store.as_str()), ("huge", "old"));
    assert!(
        matches!(loss, Loss::NoDecimal256 { precision: 40, .. }),
        "{loss:?}"
    );
    assert_eq!(errors[1].code(), Code::ClickhouseType);
}

/// A malformed type is typed down to its reason, and a duplicate keeps the
/// first declaration as a span (located only when rendered).
#[test]
fn a_malformed_type_and_a_duplicate_are_typed_to_their_reason_and_place() {
    use strata_codegen::model::TypeProblem;
    let text = "version: 1\nstores:\n  main: { kind: postgres, url: \"postgres://x\" }\n\
        enums:\n  Side: [BUY, SELL, BUY]\n\
        entities:\n  A:\n    fields:\n      id: i64\n      price: decimal(2,5)\n      \
        size: string(20\n";
    let errors = errors("a.yaml", text);
    let why = |p: TypeProblem| {
        errors.iter().any(
            |e| matches!(e, StageError::Resolve(ResolveError::BadType { why, .. }) if *why == p),
        )
    };
    assert!(why(TypeProblem::DecimalRange), "{errors:#?}");
    assert!(why(TypeProblem::UnclosedParen), "{errors:#?}");
    let twice = errors.iter().find_map(|e| match e {
        StageError::Resolve(ResolveError::DeclaredTwice {
            name, first, at, ..
        }) => Some((name.clone(), *first, *at)),
        _ => None,
    });
    let (name, first, at) = twice.expect("declared twice");
    assert_eq!(name, "BUY");
    assert!(first.start < at.start, "first is the earlier place");
    assert_eq!(&text[first.start..first.end], "BUY");
}
