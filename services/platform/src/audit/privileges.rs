//! What the runtime role may do on PostgreSQL, granted by the owner role
//! after migrating: read and write the services' tables, but only read and
//! add to the audit trail. The triggers refuse UPDATE, DELETE and TRUNCATE
//! of the trail to everyone; this takes the privileges away as well, so the
//! runtime role is refused before any trigger runs.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// Why the runtime role's privileges cannot be set.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error(
        "database.runtime_role {0:?} is not a plain role name (letters, digits and underscores, \
         not starting with a digit)"
    )]
    BadRoleName(String),
    #[error("database.runtime_role is for PostgreSQL; SQLite has no roles")]
    NotPostgres,
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Grants `role` what the services need in the current schema of `owner`
/// (a connection as the tables' owner): SELECT, INSERT, UPDATE and DELETE
/// on every table and use of every sequence, then narrows the audit
/// tables: SELECT and INSERT on the trail, SELECT, INSERT and UPDATE on the
/// chain heads (appending moves them), SELECT on records' old trail;
/// everything else on them is revoked, from `role` and from PUBLIC.
/// Idempotent: run after every migration.
pub async fn grant_runtime_role(
    owner: &impl ConnectionTrait,
    role: &str,
) -> Result<(), GrantError> {
    if owner.get_database_backend() != DbBackend::Postgres {
        return Err(GrantError::NotPostgres);
    }
    let plain = role
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && role.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && role.len() <= 63;
    if !plain {
        return Err(GrantError::BadRoleName(role.to_owned()));
    }
    let schema: String = owner
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_schema()::text AS schema",
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("no current schema".to_owned()))?
        .try_get("", "schema")?;
    let schema = quote(&schema);
    let role = quote(role);
    let mut statements = vec![
        format!("GRANT USAGE ON SCHEMA {schema} TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"),
        format!("REVOKE ALL ON audit_trail FROM PUBLIC, {role}"),
        format!("GRANT SELECT, INSERT ON audit_trail TO {role}"),
        format!("REVOKE ALL ON audit_chain_heads FROM PUBLIC, {role}"),
        format!("GRANT SELECT, INSERT, UPDATE ON audit_chain_heads TO {role}"),
    ];
    let old_trail = owner
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT to_regclass('audit_events') IS NOT NULL AS present",
        ))
        .await?
        .map(|row| row.try_get::<bool>("", "present"))
        .transpose()?
        .unwrap_or(false);
    if old_trail {
        statements.push(format!("REVOKE ALL ON audit_events FROM PUBLIC, {role}"));
        statements.push(format!("GRANT SELECT ON audit_events TO {role}"));
    }
    for statement in statements {
        owner.execute_unprepared(&statement).await?;
    }
    tracing::info!(role = %role, "runtime role granted the services' tables; the audit trail read and append only");
    Ok(())
}

/// An identifier, double-quoted.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
