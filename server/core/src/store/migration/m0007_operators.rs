//! What operators need: a role and a suspension mark on every account, the audit log, and
//! personal API tokens.
//!
//! Only new tables and columns with defaults: replicas of the previous version keep working on
//! a database migrated under them (see docs/deploy-fc.md, rolling upgrades). An instance that
//! already has accounts gets its first one (the lowest id) as its admin, as a new instance's
//! first registration would.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Role,
    SuspendedAt,
    LastSeenAt,
    QuotaWorkspaces,
    QuotaRunning,
    QuotaMemoryMb,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    ActorId,
    Actor,
    Address,
    Action,
    SubjectUserId,
    Subject,
    Outcome,
    Detail,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    UserId,
    Name,
    Prefix,
    Hash,
    Scopes,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Two statements: SQLite adds one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(
                    ColumnDef::new(Users::Role)
                        .string_len(16)
                        .not_null()
                        .default("member"),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(ColumnDef::new(Users::SuspendedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        for column in [
            Users::LastSeenAt,
            Users::QuotaWorkspaces,
            Users::QuotaRunning,
            Users::QuotaMemoryMb,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(ColumnDef::new(column).big_integer().null())
                    .to_owned(),
            )
            .await?;
        }
        let db = m.get_connection();
        let first = db
            .query_one(
                db.get_database_backend().build(
                    Query::select()
                        .expr(Expr::col(Users::Id).min())
                        .from(Users::Table),
                ),
            )
            .await?
            .and_then(|row| row.try_get_by_index::<Option<i64>>(0).ok().flatten());
        if let Some(id) = first {
            m.exec_stmt(
                Query::update()
                    .table(Users::Table)
                    .value(Users::Role, "admin")
                    .and_where(Expr::col(Users::Id).eq(id))
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table(AuditEvents::Table)
                .col(
                    ColumnDef::new(AuditEvents::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(ColumnDef::new(AuditEvents::At).big_integer().not_null())
                .col(ColumnDef::new(AuditEvents::ActorId).big_integer().null())
                .col(ColumnDef::new(AuditEvents::Actor).string_len(64).not_null())
                .col(ColumnDef::new(AuditEvents::Address).string_len(64).null())
                .col(
                    ColumnDef::new(AuditEvents::Action)
                        .string_len(32)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(AuditEvents::SubjectUserId)
                        .big_integer()
                        .null(),
                )
                .col(ColumnDef::new(AuditEvents::Subject).string_len(160).null())
                .col(
                    ColumnDef::new(AuditEvents::Outcome)
                        .string_len(16)
                        .not_null(),
                )
                .col(ColumnDef::new(AuditEvents::Detail).text().null())
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("idx_audit_events_at", AuditEvents::At),
            ("idx_audit_events_action", AuditEvents::Action),
            ("idx_audit_events_actor_id", AuditEvents::ActorId),
            (
                "idx_audit_events_subject_user_id",
                AuditEvents::SubjectUserId,
            ),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(AuditEvents::Table)
                    .col(col)
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table(ApiTokens::Table)
                .col(
                    ColumnDef::new(ApiTokens::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(ColumnDef::new(ApiTokens::UserId).big_integer().not_null())
                .col(ColumnDef::new(ApiTokens::Name).string_len(64).not_null())
                .col(ColumnDef::new(ApiTokens::Prefix).string_len(16).not_null())
                .col(
                    ColumnDef::new(ApiTokens::Hash)
                        .string_len(64)
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(ApiTokens::Scopes).string_len(64).not_null())
                .col(
                    ColumnDef::new(ApiTokens::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ApiTokens::ExpiresAt)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(ApiTokens::LastUsedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_api_tokens_user_id")
                .table(ApiTokens::Table)
                .col(ApiTokens::UserId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ApiTokens::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await?;
        for column in [
            Users::QuotaMemoryMb,
            Users::QuotaRunning,
            Users::QuotaWorkspaces,
            Users::LastSeenAt,
            Users::SuspendedAt,
            Users::Role,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
