//! influx back end.

use crate::diagnostics::Problem;
use crate::files::Files;
use crate::model::Model;

/// Problems a model has for its InfluxDB stores.
pub fn check(_model: &Model) -> Vec<Problem> {
    Vec::new()
}

pub fn generate(_model: &Model, _files: &mut Files) {}
