//! burn-train sends metric updates by id and names each metric once, when it registers it:
//! attnx's loggers and renderers keep that map to find the metrics they read.

use std::collections::HashMap;

use burn::train::metric::{MetricDefinition, MetricId};

/// burn-train's names of the metrics attnx reads.
pub const LOSS: &str = "Loss";
pub const ACCURACY: &str = "Accuracy";

#[derive(Debug, Default)]
pub struct MetricNames(HashMap<MetricId, String>);

impl MetricNames {
    pub fn register(&mut self, definition: MetricDefinition) {
        self.0
            .insert(definition.metric_id, definition.name.to_string());
    }

    pub fn name(&self, id: &MetricId) -> Option<&str> {
        self.0.get(id).map(String::as_str)
    }
}
