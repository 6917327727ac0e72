//! Calls per tenant: a slot is taken when a call starts and given back when its task ends,
//! however it ends (the slot is dropped with the task, on a panic too).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default, Clone)]
pub struct TenantSlots {
    taken: Arc<Mutex<HashMap<String, u32>>>,
}

/// One running call of a tenant; dropping it frees the slot.
#[derive(Debug)]
pub struct CallSlot {
    taken: Arc<Mutex<HashMap<String, u32>>>,
    tenant: String,
}

impl TenantSlots {
    /// A slot for `tenant`, unless it already runs `cap` calls (`None`: no cap).
    pub fn take(&self, tenant: &str, cap: Option<u32>) -> Option<CallSlot> {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        let running = taken.entry(tenant.to_string()).or_insert(0);
        if cap.is_some_and(|cap| *running >= cap) {
            if *running == 0 {
                taken.remove(tenant);
            }
            return None;
        }
        *running += 1;
        Some(CallSlot {
            taken: self.taken.clone(),
            tenant: tenant.to_string(),
        })
    }

    /// Calls `tenant` runs now.
    pub fn running(&self, tenant: &str) -> u32 {
        let taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        taken.get(tenant).copied().unwrap_or(0)
    }
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(running) = taken.get_mut(&self.tenant) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                taken.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_holds_until_a_slot_is_dropped() {
        let slots = TenantSlots::default();
        let a = slots.take("a", Some(2)).unwrap();
        let _b = slots.take("a", Some(2)).unwrap();
        assert!(slots.take("a", Some(2)).is_none());
        assert!(slots.take("other", Some(2)).is_some());
        drop(a);
        assert_eq!(slots.running("a"), 1);
        assert!(slots.take("a", Some(2)).is_some());
        assert!(slots.take("z", Some(0)).is_none());
        assert!(slots.take("z", None).is_some());
    }

    #[test]
    fn a_panicking_call_gives_its_slot_back() {
        let slots = TenantSlots::default();
        let slot = slots.take("a", Some(1)).unwrap();
        let result = std::thread::spawn(move || {
            let _slot = slot;
            panic!("call task failed");
        })
        .join();
        assert!(result.is_err());
        assert_eq!(slots.running("a"), 0);
        assert!(slots.take("a", Some(1)).is_some());
    }
}
