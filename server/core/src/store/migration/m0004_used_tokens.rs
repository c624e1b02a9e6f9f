//! Used workspace-token nonces, so a token is redeemed once across every process that
//! redeems tokens (replicas, and `qingting-shell` instances asking the dashboard).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UsedTokens {
    Table,
    Nonce,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(UsedTokens::Table)
                .col(
                    ColumnDef::new(UsedTokens::Nonce)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(UsedTokens::ExpiresAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_used_tokens_expires_at")
                .table(UsedTokens::Table)
                .col(UsedTokens::ExpiresAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(UsedTokens::Table).to_owned())
            .await
    }
}
