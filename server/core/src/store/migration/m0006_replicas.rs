//! What several control-plane replicas on one database must agree on: which one runs the
//! background work (a lease), which one is carrying out an operation on a workspace (a claim
//! on its row), rate-limit windows and known sign-in addresses, and the change feed's table
//! (read by replicas whose database has no notifications).
//!
//! Only new tables and nullable columns: replicas of the previous version keep working on a
//! database migrated under them (see docs/deploy-fc.md, rolling upgrades).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Leases {
    Table,
    Name,
    Holder,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Workspaces {
    Table,
    ClaimedBy,
    ClaimExpires,
}

#[derive(DeriveIden)]
enum RateWindows {
    Table,
    Key,
    StartedAt,
    Count,
}

#[derive(DeriveIden)]
enum KnownSignIns {
    Table,
    Key,
    Until,
}

#[derive(DeriveIden)]
enum Changes {
    Table,
    Id,
    Origin,
    UserId,
    At,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Leases::Table)
                .col(
                    ColumnDef::new(Leases::Name)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Leases::Holder).string_len(128).not_null())
                .col(ColumnDef::new(Leases::ExpiresAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        // The row whose lock serializes host-wide workspace limit checks across replicas.
        m.exec_stmt(
            Query::insert()
                .into_table(Leases::Table)
                .columns([Leases::Name, Leases::Holder, Leases::ExpiresAt])
                .values_panic(["workspace-limits".into(), "".into(), 0.into()])
                .to_owned(),
        )
        .await?;
        // Two statements: SQLite adds one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table(Workspaces::Table)
                .add_column(ColumnDef::new(Workspaces::ClaimedBy).string_len(128).null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Workspaces::Table)
                .add_column(
                    ColumnDef::new(Workspaces::ClaimExpires)
                        .big_integer()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RateWindows::Table)
                .col(
                    ColumnDef::new(RateWindows::Key)
                        .string_len(255)
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(RateWindows::StartedAt)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(RateWindows::Count).integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_rate_windows_started_at")
                .table(RateWindows::Table)
                .col(RateWindows::StartedAt)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(KnownSignIns::Table)
                .col(
                    ColumnDef::new(KnownSignIns::Key)
                        .string_len(255)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(KnownSignIns::Until).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_known_sign_ins_until")
                .table(KnownSignIns::Table)
                .col(KnownSignIns::Until)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Changes::Table)
                .col(
                    ColumnDef::new(Changes::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(ColumnDef::new(Changes::Origin).string_len(128).not_null())
                .col(ColumnDef::new(Changes::UserId).big_integer().not_null())
                .col(ColumnDef::new(Changes::At).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_changes_at")
                .table(Changes::Table)
                .col(Changes::At)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Changes::Table.into_iden(),
            KnownSignIns::Table.into_iden(),
            RateWindows::Table.into_iden(),
            Leases::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        for column in [Workspaces::ClaimExpires, Workspaces::ClaimedBy] {
            m.alter_table(
                Table::alter()
                    .table(Workspaces::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
