//! One run per specialty: a run is refused while another holds its
//! specialty, and the lock is released however the run ends (done, failed,
//! or dropped when its RPC is cancelled), and a live run keeps it past its
//! lease.

use std::time::Duration;

use medsec_platform::testing::Backend;
use medsec_platform::{ApiError, both_backends};
use medsec_proto::scheduling::v1 as pb;
use medsec_scheduling::store::optimise::RunLock;

use super::{day_slot, ok, propose, referral, refused, run};
use crate::helpers::{TestApp, assert_precondition, patient, spawn_app};

both_backends!(
    a_second_run_for_a_specialty_is_refused_while_one_holds_it,
    a_run_that_fails_releases_its_lock,
    a_cancelled_run_releases_its_lock,
    a_run_longer_than_its_lease_keeps_its_lock,
);

/// A lease longer than any of these tests.
const LEASE: Duration = Duration::from_secs(120);

fn cardiology() -> Vec<String> {
    vec!["cardiology".to_owned()]
}

/// A clinic with one slot and one waiting referral, so a run has work.
async fn clinic_with_work(backend: Backend) -> TestApp {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    day_slot(&mut app, &clinic, "2026-06-01", 1).await;
    referral(&mut app, &patient(), pb::Priority::Routine, "2026-03-01").await;
    app
}

async fn a_second_run_for_a_specialty_is_refused_while_one_holds_it(backend: Backend) {
    let mut app = clinic_with_work(backend).await;
    let db = app.db.clone();
    // A run in progress, held exactly as ProposeAllocation holds it.
    RunLock::hold(&db, &cardiology(), LEASE, async || {
        let status = propose(&mut app, "2026-06-01", "2026-06-30")
            .await
            .unwrap_err();
        assert_precondition(&status, "specialties/cardiology is being optimised");
        // All specialties includes cardiology, so it waits too; another does not.
        let june = |specialty| run(specialty, "2026-06-01", "2026-06-30");
        let status = refused(app.client.propose_allocation(june(""))).await;
        assert_precondition(&status, "being optimised");
        ok(app.client.propose_allocation(june("dermatology"))).await;
        Ok(())
    })
    .await
    .unwrap();
    let proposal = propose(&mut app, "2026-06-01", "2026-06-30").await.unwrap();
    assert_eq!(proposal.referrals_allocated, 1);
    // The finished run released its lock: another can start.
    propose(&mut app, "2026-06-01", "2026-06-30").await.unwrap();
}

async fn a_run_that_fails_releases_its_lock(backend: Backend) {
    let mut app = clinic_with_work(backend).await;
    let failed = RunLock::hold(&app.db, &cardiology(), LEASE, async || {
        Err::<(), _>(ApiError::internal("the solve failed"))
    })
    .await
    .unwrap_err();
    assert!(matches!(failed, ApiError::Internal(_)), "{failed:?}");
    let refused = RunLock::hold(&app.db, &cardiology(), LEASE, async || {
        Err::<(), _>(ApiError::wrong_state("slots/x", "busy", "offer it"))
    })
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("slots/x is busy"), "{refused}");
    propose(&mut app, "2026-06-01", "2026-06-30").await.unwrap();
}

async fn a_cancelled_run_releases_its_lock(backend: Backend) {
    let mut app = clinic_with_work(backend).await;
    let mut other = app.client.clone();
    let specialties = cardiology();
    let run = RunLock::hold(&app.db, &specialties, LEASE, async || {
        let june = run("cardiology", "2026-06-01", "2026-06-30");
        let status = refused(other.propose_allocation(june)).await;
        assert_precondition(&status, "being optimised");
        // A solve that never ends, until its RPC goes away.
        std::future::pending::<Result<(), ApiError>>().await
    });
    // The caller gives up: the run's future is dropped mid-run.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), run)
            .await
            .is_err()
    );
    let mut attempts = 0;
    while let Err(status) = propose(&mut app, "2026-06-01", "2026-06-30").await {
        assert_precondition(&status, "being optimised");
        attempts += 1;
        assert!(
            attempts < 50,
            "the lock of a dropped run was never released"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_run_longer_than_its_lease_keeps_its_lock(backend: Backend) {
    let mut app = clinic_with_work(backend).await;
    let lease = Duration::from_secs(1);
    let db = app.db.clone();
    RunLock::hold(&db, &cardiology(), lease, async || {
        // Three leases on, the renewals have kept it (and PostgreSQL's
        // idle timeout, set to the lease, has not ended its session).
        tokio::time::sleep(3 * lease).await;
        let status = propose(&mut app, "2026-06-01", "2026-06-30")
            .await
            .unwrap_err();
        assert_precondition(&status, "specialties/cardiology is being optimised");
        let other = RunLock::hold(&db, &cardiology(), lease, async || Ok(())).await;
        assert!(
            other.is_err_and(|e| e.to_string().contains("being optimised")),
            "a second holder got in"
        );
        Ok(())
    })
    .await
    .expect("the run kept its lock to its end");
    propose(&mut app, "2026-06-01", "2026-06-30").await.unwrap();
}
