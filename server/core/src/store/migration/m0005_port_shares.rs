//! Ports of a workspace its owner shares: with every signed-in user, or with anyone.
//! A port with no row is the owner's alone.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PortShares {
    Table,
    WorkspaceId,
    Port,
    Sharing,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(PortShares::Table)
                .col(
                    ColumnDef::new(PortShares::WorkspaceId)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(PortShares::Port).integer().not_null())
                .col(
                    ColumnDef::new(PortShares::Sharing)
                        .string_len(16)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(PortShares::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(PortShares::WorkspaceId)
                        .col(PortShares::Port),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(PortShares::Table).to_owned())
            .await
    }
}
