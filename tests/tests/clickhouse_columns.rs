//! The decimal column encoding: exact or an error, never rounded.

use proptest::prelude::*;
use rust_decimal::Decimal;
use strata_sdk::clickhouse::columns::decimal_to_scaled;

#[test]
fn decimals_scale_exactly_or_fail() {
    let d = |m: i64, s: u32| Decimal::new(m, s);
    assert_eq!(decimal_to_scaled(&d(15, 1), 20, 8), Ok(150_000_000));
    assert_eq!(decimal_to_scaled(&d(-1, 8), 20, 8), Ok(-1));
    assert_eq!(
        decimal_to_scaled(&d(150_000_000_000, 10), 20, 8),
        Ok(1_500_000_000)
    );
    assert!(decimal_to_scaled(&d(1, 9), 20, 8)
        .unwrap_err()
        .contains("decimal places"));
    // Decimal(20, 8) has 12 integer digits.
    assert!(decimal_to_scaled(&d(999_999_999_999, 0), 20, 8).is_ok());
    assert!(decimal_to_scaled(&d(1_000_000_000_000, 0), 20, 8)
        .unwrap_err()
        .contains("does not fit"));
    assert!(decimal_to_scaled(&Decimal::MAX, 28, 0).is_err());
}

proptest! {
    #[test]
    fn any_fitting_decimal_round_trips(m in -999_999_999_999i64..=999_999_999_999, s in 0u32..=8) {
        let d = Decimal::new(m, s);
        let scaled = decimal_to_scaled(&d, 20, 8).unwrap();
        let back = Decimal::from_i128_with_scale(scaled, 8);
        prop_assert_eq!(back, d);
    }
}
