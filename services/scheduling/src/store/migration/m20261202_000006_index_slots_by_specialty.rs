//! Free slots of a specialty in start order (ListSlots, the booking
//! screen's search) come off an index on (specialty, start_at, id) instead
//! of walking every specialty's slots in start order.

use sea_orm_migration::prelude::*;

use super::index;

#[derive(Debug)]
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000006_index_slots_by_specialty"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                index("slots", &["specialty", "start_at", "id"], false)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
