//! Gap-free document numbers per series and year.

use medsec_platform::ApiError;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict, Query};

/// Takes the next number of `series` in `year`. Call inside the transaction
/// that uses it: the bump is a guarded UPDATE, so a concurrent issuer waits on
/// the row until this transaction ends, and a rollback returns the number.
pub(crate) async fn next_number(
    txn: &impl ConnectionTrait,
    series: &str,
    year: i32,
) -> Result<i64, ApiError> {
    let seed = Query::insert()
        .into_table("document_counters")
        .columns(["series", "year", "last"])
        .values_panic([series.into(), year.into(), 0_i64.into()])
        .on_conflict(
            OnConflict::columns(["series", "year"])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    txn.execute(&seed).await?;
    let bump = Query::update()
        .table("document_counters")
        .value("last", Expr::col("last").add(1))
        .and_where(Expr::col("series").eq(series))
        .and_where(Expr::col("year").eq(year))
        .returning_col("last")
        .to_owned();
    let row = txn
        .query_one(&bump)
        .await?
        .ok_or_else(|| ApiError::internal("document counter row missing after seeding"))?;
    Ok(row.try_get::<i64>("", "last")?)
}
