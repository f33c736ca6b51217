//! influx back end.

use crate::files::Files;
use crate::model::Model;

pub fn generate(_model: &Model, _files: &mut Files) {}
