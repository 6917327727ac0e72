//! The call's events in the tenant's event log (database tenants only): call.started,
//! turn.completed, handoff, call.ended. Queued, never awaited: the database never holds up
//! the call.

use serde_json::Value;

use super::Call;

impl Call {
    pub(super) fn emit(&self, kind: &str, data: Value) {
        if let (Some(call), Some(tenancy)) = (&self.settings.db, &self.state.tenancy) {
            tenancy.emit(call, &self.id, kind, data);
        }
    }
}
