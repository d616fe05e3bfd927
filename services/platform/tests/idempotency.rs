//! Request ids on both databases: expired ones are purged in batches (and a
//! retry after the purge creates anew), and scopes minting in order hand out
//! ids one transaction at a time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use medsec_platform::both_backends;
use medsec_platform::db::begin_write;
use medsec_platform::idempotency::{Claim, Claimed, IdempotencyKeys, PURGE_BATCH, RequestKey};
use medsec_platform::testing::{Backend, TestDatabase};
use sea_orm::{ConnectionTrait, DatabaseConnection};

const KEYS: IdempotencyKeys =
    IdempotencyKeys::new("test_idempotency_keys").minting_in_order(&["CreateInOrder"]);

both_backends!(
    expired_request_ids_are_purged_and_a_later_retry_creates_anew,
    creates_minting_in_order_take_their_turn
);

async fn keys_table(backend: Backend) -> (TestDatabase, DatabaseConnection) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    db.execute(&KEYS.create_table()).await.unwrap();
    db.execute(&KEYS.create_time_index()).await.unwrap();
    (database, db)
}

async fn claim(db: &DatabaseConnection, request_id: &str) -> Claim {
    let txn = begin_write(db).await.unwrap();
    let claim = KEYS
        .claim(&txn, "CreateThing", request_id, b"the request", "resource")
        .await
        .unwrap();
    txn.commit().await.unwrap();
    claim
}

async fn expired_request_ids_are_purged_and_a_later_retry_creates_anew(backend: Backend) {
    let (_database, db) = keys_table(backend).await;
    let claimed = PURGE_BATCH * 2 + 7;
    for n in 0..claimed {
        assert_eq!(claim(&db, &format!("old-{n}")).await, Claim::New);
    }
    assert!(matches!(claim(&db, "old-0").await, Claim::Replay { .. }));

    let a_while_ago = Utc::now() - TimeDelta::hours(1);
    assert_eq!(
        KEYS.purge(&db, a_while_ago).await.unwrap(),
        0,
        "nothing has expired yet"
    );
    assert!(matches!(claim(&db, "old-1").await, Claim::Replay { .. }));

    let purged = KEYS
        .purge(&db, Utc::now() + TimeDelta::seconds(1))
        .await
        .unwrap();
    assert_eq!(purged, claimed, "every expired key goes, batch after batch");
    assert_eq!(
        claim(&db, "old-0").await,
        Claim::New,
        "a retry after the purge creates anew"
    );
}

async fn creates_minting_in_order_take_their_turn(backend: Backend) {
    let (_database, db) = keys_table(backend).await;
    let key = |id: &str| RequestKey {
        request_id: id.to_owned(),
        request: b"the request".to_vec(),
    };

    // The first create mints its id and holds its transaction open; the
    // second, begun meanwhile, mints only after the first has committed, so
    // its id is the later one and it never commits first.
    let first = begin_write(&db).await.unwrap();
    let Claimed::New(first_id) = KEYS
        .claim_in(&first, "CreateInOrder", Some(&key("first")))
        .await
        .unwrap()
    else {
        panic!("a new key");
    };
    let second = tokio::spawn({
        let db = db.clone();
        async move {
            let txn = begin_write(&db).await.unwrap();
            let claimed = KEYS
                .claim_in(&txn, "CreateInOrder", Some(&key("second")))
                .await
                .unwrap();
            txn.commit().await.unwrap();
            (claimed.id(), Utc::now())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second create waits its turn");
    let first_committed = Utc::now();
    first.commit().await.unwrap();
    let (second_id, second_committed) = second.await.unwrap();
    assert!(second_committed >= first_committed);
    assert!(second_id > first_id, "ids follow commit order");
}
