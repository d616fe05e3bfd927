//! Faults PostgreSQL can be made to raise, for the tests of what a client is
//! told when the database fails, and the one drill those tests put a call
//! through.

use std::fmt::Debug;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tonic::{Code, Status};

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

/// Every retryable fault, with the code a client is told: `ABORTED` (retry
/// now) or `UNAVAILABLE` (retry after a pause), never `INTERNAL`.
pub const RETRYABLE_FAULTS: [(Fault, Code); 4] = [
    (Fault::SerializationFailure, Code::Aborted),
    (Fault::Deadlock, Code::Aborted),
    (Fault::LockTimeout, Code::Aborted),
    (Fault::TerminatedBackend, Code::Unavailable),
];

/// Puts `call` through `fault` on writes to `table` (PostgreSQL only): it
/// fails with `code` and changes nothing, neither the rows of `table` nor
/// what `state` sees. With the fault cleared, `call` is made twice: the
/// retry answers as the first call did, and `table` holds one row more.
/// Answers the retry's answer.
pub async fn fault_then_retry<A, T, S>(
    app: &mut A,
    db: &DatabaseConnection,
    table: &str,
    (fault, code): (Fault, Code),
    mut state: impl AsyncFnMut(&mut A) -> S,
    mut call: impl AsyncFnMut(&mut A) -> Result<T, Status>,
) -> T
where
    T: PartialEq + Debug,
    S: PartialEq + Debug,
{
    let before = (rows(db, table).await, state(app).await);
    inject_fault(db, table, fault).await;
    let status = call(app).await.expect_err("the call met the fault");
    assert_eq!(status.code(), code, "{fault:?}: {status:?}");
    let after = (rows(db, table).await, state(app).await);
    assert_eq!(after, before, "{fault:?} changed nothing");

    clear_fault(db, table).await;
    let first = call(app).await.expect("the call once the fault is gone");
    let again = call(app).await.expect("the retry");
    assert_eq!(again, first, "{fault:?}: a retry changes nothing");
    assert_eq!(rows(db, table).await, before.0 + 1, "{fault:?}");
    again
}

/// The rows in `table`.
async fn rows(db: &DatabaseConnection, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM \"{table}\"");
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("count rows")
        .expect("a count")
        .try_get_by_index(0)
        .expect("a count")
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
