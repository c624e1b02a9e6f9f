//! Profiles, avatars and GitHub links on accounts.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    DisplayName,
    Email,
    Bio,
    AvatarKey,
    GithubId,
    GithubLogin,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        let columns = [
            ColumnDef::new(Users::DisplayName)
                .string_len(64)
                .null()
                .to_owned(),
            ColumnDef::new(Users::Email)
                .string_len(254)
                .null()
                .to_owned(),
            ColumnDef::new(Users::Bio).text().null().to_owned(),
            ColumnDef::new(Users::AvatarKey)
                .string_len(128)
                .null()
                .to_owned(),
            ColumnDef::new(Users::GithubId)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Users::GithubLogin)
                .string_len(64)
                .null()
                .to_owned(),
        ];
        for mut col in columns {
            m.alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(&mut col)
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .name("idx_users_github_id")
                .table(Users::Table)
                .col(Users::GithubId)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("idx_users_github_id")
                .table(Users::Table)
                .to_owned(),
        )
        .await?;
        for col in [
            Users::DisplayName,
            Users::Email,
            Users::Bio,
            Users::AvatarKey,
            Users::GithubId,
            Users::GithubLogin,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
