//! `empty`: does nothing; a join point.

use crate::{OpError, Operator, Plan, PlanContext};

pub struct Empty;

impl Operator for Empty {
    fn name(&self) -> &'static str {
        "empty"
    }

    fn plan(&self, _cx: &PlanContext<'_>) -> Result<Plan, OpError> {
        Ok(Plan::Nothing)
    }
}
