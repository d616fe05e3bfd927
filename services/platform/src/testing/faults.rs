//! Faults PostgreSQL can be made to raise, for the tests of what a client is
//! told when the database fails.

use sea_orm::{ConnectionTrait, DatabaseConnection};

/// A retryable fault PostgreSQL can be made to raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SQLSTATE 40001, as under SERIALIZABLE isolation.
    SerializationFailure,
    /// SQLSTATE 40P01.
    Deadlock,
    /// SQLSTATE 55P03, as when `lock_timeout` runs out.
    LockTimeout,
    /// The backend serving the statement is terminated
    /// (`pg_terminate_backend`), as when an administrator or a failover
    /// ends the session: SQLSTATE 57P01 and a lost connection.
    TerminatedBackend,
}

/// Makes every write to `table` fail with `fault` until [`clear_fault`]
/// (PostgreSQL only: a trigger raising it).
pub async fn inject_fault(db: &DatabaseConnection, table: &str, fault: Fault) {
    let body = match fault {
        Fault::SerializationFailure => {
            "RAISE EXCEPTION 'injected serialisation failure' USING ERRCODE = 'serialization_failure';"
        }
        Fault::Deadlock => {
            "RAISE EXCEPTION 'injected deadlock' USING ERRCODE = 'deadlock_detected';"
        }
        Fault::LockTimeout => {
            "RAISE EXCEPTION 'injected lock timeout' USING ERRCODE = 'lock_not_available';"
        }
        Fault::TerminatedBackend => {
            "PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5);"
        }
    };
    let sql = format!(
        "CREATE OR REPLACE FUNCTION medsec_injected_fault() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN {body} RETURN NULL; END $$; \
         DROP TRIGGER IF EXISTS medsec_injected_fault ON \"{table}\"; \
         CREATE TRIGGER medsec_injected_fault BEFORE INSERT OR UPDATE OR DELETE ON \"{table}\" \
         FOR EACH STATEMENT EXECUTE FUNCTION medsec_injected_fault();"
    );
    db.execute_unprepared(&sql).await.expect("inject a fault");
}

/// Removes the fault injected into `table`.
pub async fn clear_fault(db: &DatabaseConnection, table: &str) {
    db.execute_unprepared(&format!(
        "DROP TRIGGER IF EXISTS medsec_injected_fault ON \"{table}\""
    ))
    .await
    .expect("clear the fault");
}
