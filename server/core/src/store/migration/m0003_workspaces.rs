//! Workspaces.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Workspaces {
    Table,
    Id,
    UserId,
    Name,
    TemplateId,
    State,
    Reason,
    RuntimeState,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Workspaces::Table)
                .col(
                    ColumnDef::new(Workspaces::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(ColumnDef::new(Workspaces::UserId).big_integer().not_null())
                .col(ColumnDef::new(Workspaces::Name).string_len(32).not_null())
                .col(
                    ColumnDef::new(Workspaces::TemplateId)
                        .string_len(32)
                        .not_null(),
                )
                .col(ColumnDef::new(Workspaces::State).string_len(16).not_null())
                .col(ColumnDef::new(Workspaces::Reason).text().null())
                .col(ColumnDef::new(Workspaces::RuntimeState).text().null())
                .col(
                    ColumnDef::new(Workspaces::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Workspaces::UpdatedAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_workspaces_user_name")
                .table(Workspaces::Table)
                .col(Workspaces::UserId)
                .col(Workspaces::Name)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_workspaces_state")
                .table(Workspaces::Table)
                .col(Workspaces::State)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Workspaces::Table).to_owned())
            .await
    }
}
