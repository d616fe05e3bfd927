//! The services talking through events: a fulfilled appointment is charged
//! once in billing, also when the relay or the consumer dies at the worst
//! moment; archiving a patient clears their diary and waiting list; a
//! watcher resumes without gaps; old events are pruned. On SQLite and
//! PostgreSQL, delivered in-process and through NATS JetStream.

use std::sync::Arc;
use std::time::Duration;

use medsec::ServiceName;
use medsec_platform::Settings;
use medsec_platform::events::{self, Consumer, Relay, Transport, pb};
use medsec_platform::testing::{AuthChannel, Backend, TestDatabase};
use medsec_proto::billing::v1 as billing;
use medsec_proto::billing::v1::billing_service_client::BillingServiceClient;
use medsec_proto::events::v1::event_service_client::EventServiceClient;
use medsec_proto::records::v1 as records;
use medsec_proto::records::v1::records_service_client::RecordsServiceClient;
use medsec_proto::scheduling::v1 as scheduling;
use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use prost::Message as _;
use sea_orm::{ConnectionTrait as _, DatabaseConnection, EntityTrait as _, QueryOrder as _};
use tokio_stream::StreamExt as _;

use crate::fixtures::{ada, clinic, price, referral};
use crate::harness::{Suite, serve, start};

/// Where events go in a test: in-process, or through the machine's NATS
/// (127.0.0.1:4222, JetStream on) on a stream and subjects of the test's
/// own, removed at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broker {
    InProcess,
    Nats,
}

const NATS_URL: &str = "nats://127.0.0.1:4222";

/// Settings for a suite whose events move fast: relays look every 50 ms,
/// a dead relay's claim lapses after a second, and JetStream redelivers
/// after a second without an acknowledgement.
fn settings(database: &TestDatabase, broker: Broker) -> Settings {
    let mut settings = database.settings();
    settings.events.poll_millis = 50;
    settings.events.claim_lease_secs = 1;
    settings.events.ack_wait_secs = 1;
    settings.events.retry_min_millis = 50;
    if broker == Broker::Nats {
        let name = uuid::Uuid::now_v7().simple().to_string();
        settings.events.nats_url = Some(NATS_URL.to_owned());
        settings.events.stream = format!("MEDSEC_TEST_{name}");
        settings.events.subject_prefix = format!("t{name}");
    }
    settings
}

/// Removes the test's stream.
async fn drop_stream(settings: &Settings) {
    if settings.events.nats_url.is_some() {
        let client = async_nats::connect(NATS_URL).await.expect("NATS");
        let jetstream = async_nats::jetstream::new(client);
        let _ = jetstream.delete_stream(&settings.events.stream).await;
    }
}

macro_rules! every_backend_and_broker {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                use super::Broker;
                use medsec_platform::testing::Backend;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite_in_process() {
                    super::$test(Backend::Sqlite, Broker::InProcess).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres_in_process() {
                    super::$test(Backend::Postgres, Broker::InProcess).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite_nats() {
                    super::$test(Backend::Sqlite, Broker::Nats).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres_nats() {
                    super::$test(Backend::Postgres, Broker::Nats).await;
                }
            }
        )+
    };
}

every_backend_and_broker!(
    a_fulfilled_appointment_is_charged_once,
    a_relay_dying_after_publishing_charges_once,
    archiving_a_patient_clears_their_diary_and_list,
    a_watcher_resumes_without_gaps,
    a_freed_slot_is_offered_by_itself,
    a_missed_appointment_is_charged_the_clinics_dna_fee,
);

medsec_platform::both_backends!(
    a_consumer_dying_before_its_ack_charges_once,
    events_are_pruned,
    scheduling_asks_records_about_the_patient,
);

/// Polls `probe` every 25 ms until it answers `Some`, for at most `within`.
async fn eventually<T>(within: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

struct Clients {
    records: RecordsServiceClient<AuthChannel>,
    scheduling: SchedulingServiceClient<AuthChannel>,
    billing: BillingServiceClient<AuthChannel>,
}

impl Clients {
    fn of(suite: &Suite) -> Self {
        Self {
            records: RecordsServiceClient::new(suite.channel.clone()),
            scheduling: SchedulingServiceClient::new(suite.channel.clone()),
            billing: BillingServiceClient::new(suite.channel.clone()),
        }
    }

    /// Ada, registered and referred to cardiology, with her appointment in
    /// one of the clinic's slots (`slot`).
    async fn booked(&mut self, slot: &scheduling::Slot) -> scheduling::Appointment {
        let patient = self
            .records
            .create_patient(ada())
            .await
            .unwrap()
            .into_inner();
        self.book(&patient.id, slot).await
    }

    async fn book(&mut self, patient_id: &str, slot: &scheduling::Slot) -> scheduling::Appointment {
        let referral = self
            .scheduling
            .create_referral(referral(patient_id, chrono::Duration::weeks(10)))
            .await
            .unwrap()
            .into_inner();
        self.scheduling
            .book_appointment(scheduling::BookAppointmentRequest {
                slot_id: slot.id.clone(),
                patient_id: patient_id.to_owned(),
                referral_id: referral.id,
                reason: "palpitations".into(),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// The appointment seen: arrived, then fulfilled.
    async fn seen(&mut self, appointment: &scheduling::Appointment) {
        for arrived in [true, false] {
            let id = appointment.id.clone();
            if arrived {
                self.scheduling
                    .mark_arrived(scheduling::MarkArrivedRequest { id })
                    .await
                    .unwrap();
            } else {
                self.scheduling
                    .mark_fulfilled(scheduling::MarkFulfilledRequest { id })
                    .await
                    .unwrap();
            }
        }
    }

    async fn charges_of(&mut self, appointment: &scheduling::Appointment) -> Vec<billing::Charge> {
        self.billing
            .list_charges(billing::ListChargesRequest {
                appointment_id: appointment.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .charges
    }
}

/// The clinic's price for a new cardiology appointment, under the code the
/// default charge rules name.
async fn priced(billing: &mut BillingServiceClient<AuthChannel>) {
    billing
        .create_price_item(price(
            "CARDIOLOGY-NEW",
            "New cardiology consultation",
            25_000,
        ))
        .await
        .unwrap();
}

/// The one charge billing raised for `appointment`, once there is one; and
/// still only one a while later.
async fn charged_once(
    clients: &mut Clients,
    appointment: &scheduling::Appointment,
) -> billing::Charge {
    let charge = eventually(Duration::from_secs(2), async || {
        let charges = clients.charges_of(appointment).await;
        assert!(charges.len() <= 1, "charged twice: {charges:?}");
        charges.into_iter().next()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        clients.charges_of(appointment).await,
        std::slice::from_ref(&charge)
    );
    charge
}

async fn a_fulfilled_appointment_is_charged_once(backend: Backend, broker: Broker) {
    let database = TestDatabase::create(backend).await;
    let settings = settings(&database, broker);
    let suite = start(&settings, &[]).await;
    let mut clients = Clients::of(&suite);
    priced(&mut clients.billing).await;
    let clinic = clinic(&mut clients.scheduling, 1).await;
    let appointment = clients.booked(&clinic.slots[0]).await;
    clients.seen(&appointment).await;

    let charge = charged_once(&mut clients, &appointment).await;
    assert_eq!(charge.code, "CARDIOLOGY-NEW");
    assert_eq!(charge.unit_price_pence, 25_000);
    assert_eq!(charge.patient_id, appointment.patient_id);
    assert_eq!(
        charge.payer.unwrap().kind(),
        billing::PayerKind::Nhs,
        "the referral is NHS-funded"
    );
    assert_eq!(charge.service_date, clinic.slots[0].date);

    // An insured referral's visit is charged to the insurer.
    let mut insured = referral(&appointment.patient_id, chrono::Duration::weeks(3));
    if let Some(referral) = insured.referral.as_mut() {
        referral.funding = Some(scheduling::Funding {
            kind: scheduling::FundingKind::Insurer as i32,
            insurer_name: "Bupa".into(),
            policy_number: "BU-12345".into(),
            preauthorisation_code: "PA-77".into(),
        });
    }
    let insured = clients
        .scheduling
        .create_referral(insured)
        .await
        .unwrap()
        .into_inner();
    let second = clients
        .scheduling
        .book_appointment(scheduling::BookAppointmentRequest {
            slot_id: clinic.slots[1].id.clone(),
            patient_id: appointment.patient_id.clone(),
            referral_id: insured.id,
            reason: "follow the palpitations".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    clients.seen(&second).await;
    let charge = charged_once(&mut clients, &second).await;
    let payer = charge.payer.unwrap();
    assert_eq!(payer.kind(), billing::PayerKind::Insurer);
    let insurer = payer.insurer.unwrap();
    assert_eq!(
        (insurer.name.as_str(), insurer.policy_number.as_str()),
        ("Bupa", "BU-12345")
    );

    suite.stop().await;
    drop_stream(&settings).await;
}

/// Scheduling's events, relayed by hand: the suite's own relays are off.
async fn transport(db: &DatabaseConnection, settings: &Settings) -> Transport {
    match &settings.events.nats_url {
        Some(url) => Transport::Nats(Box::new(
            events::nats::connect(url, &settings.events).await.unwrap(),
        )),
        None => {
            let consumers: Vec<Arc<dyn Consumer>> = medsec_billing::consumers(settings);
            let _ = db;
            Transport::InProcess(consumers.into())
        }
    }
}

async fn a_relay_dying_after_publishing_charges_once(backend: Backend, broker: Broker) {
    let database = TestDatabase::create(backend).await;
    let mut settings = settings(&database, broker);
    settings.events.relay = false;
    let suite = start(&settings, &[]).await;
    let db = database.connect().await;
    let mut clients = Clients::of(&suite);
    priced(&mut clients.billing).await;
    let clinic = clinic(&mut clients.scheduling, 1).await;
    let appointment = clients.booked(&clinic.slots[0]).await;
    clients.seen(&appointment).await;

    // A relay works until it has published the fulfilled event, and dies
    // before marking it.
    let transport = transport(&db, &settings).await;
    let dying = Relay::new(
        db.clone(),
        vec!["records".into(), "scheduling".into()],
        settings.events.clone(),
        transport.clone(),
    );
    loop {
        let claimed = dying.claim().await.unwrap();
        assert!(!claimed.is_empty(), "the fulfilled event comes");
        let outcomes = dying.publish(&claimed).await;
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        if claimed
            .iter()
            .any(|row| row.kind.ends_with("appointment.fulfilled"))
        {
            break;
        }
        dying.mark(&claimed, &outcomes).await.unwrap();
    }
    drop(dying);
    charged_once(&mut clients, &appointment).await;
    assert!(
        unrelayed(&db).await > 0,
        "the fulfilled event is not marked"
    );

    // Another relay takes the rows once the claim lapses, and delivers them
    // again: dropped by JetStream or by billing's inbox.
    let relay = Relay::new(
        db.clone(),
        vec!["records".into(), "scheduling".into()],
        settings.events.clone(),
        transport,
    );
    let running = tokio::spawn(relay.run());
    eventually(Duration::from_secs(5), async || {
        (unrelayed(&db).await == 0).then_some(())
    })
    .await;
    charged_once(&mut clients, &appointment).await;
    let handled = inbox(&db).await;
    assert_eq!(
        handled
            .iter()
            .filter(|row| row.kind == "medsec.scheduling.appointment.fulfilled")
            .count(),
        1,
        "{handled:?}"
    );

    running.abort();
    suite.stop().await;
    drop_stream(&settings).await;
}

async fn a_consumer_dying_before_its_ack_charges_once(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let settings = settings(&database, Broker::Nats);
    // The price list is set up by a billing server feeding no consumer.
    let mut pricing = settings.clone();
    pricing.events.nats_url = None;
    let billing_office = start(&pricing, &[ServiceName::Billing]).await;
    priced(&mut BillingServiceClient::new(
        billing_office.channel.clone(),
    ))
    .await;
    billing_office.stop().await;
    // Billing is not served: its consumer is played by the test.
    let suite = start(&settings, &[ServiceName::Records, ServiceName::Scheduling]).await;
    let db = database.connect().await;
    let mut clients = Clients::of(&suite);
    let clinic = clinic(&mut clients.scheduling, 1).await;
    let appointment = clients.booked(&clinic.slots[0]).await;
    clients.seen(&appointment).await;

    // Billing's durable consumer takes the events; the fulfilled one is
    // charged and the consumer dies before acknowledging it.
    let consumers = medsec_billing::consumers(&settings);
    let charges = consumers[0].clone();
    let jetstream = events::nats::connect(NATS_URL, &settings.events)
        .await
        .unwrap();
    let stream = jetstream.get_stream(&settings.events.stream).await.unwrap();
    let durable = stream
        .get_or_create_consumer(
            charges.name(),
            async_nats::jetstream::consumer::pull::Config {
                durable_name: Some(charges.name().to_owned()),
                filter_subject: settings.events.subject_of(charges.filter()),
                ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut messages = durable.messages().await.unwrap();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .expect("scheduling's events")
            .unwrap()
            .unwrap();
        let envelope = pb::Envelope::decode(message.payload.clone()).unwrap();
        let delivered = events::deliver(&db, charges.as_ref(), &envelope)
            .await
            .unwrap();
        if envelope.r#type == "medsec.scheduling.appointment.fulfilled" {
            assert_eq!(delivered, events::Delivered::Done);
            break;
        }
        message.ack().await.unwrap();
    }
    drop(messages);
    drop(durable);
    assert_eq!(charge_rows(&db).await, 1);
    let noted = inbox(&db).await;

    // Billing starts; the unacknowledged event comes again and is dropped
    // by the inbox: one charge, the same inbox, nothing left pending.
    let billing_server = serve(&settings, &[ServiceName::Billing]).await;
    eventually(Duration::from_secs(5), async || {
        let info = stream.consumer_info(charges.name()).await.ok()?;
        (info.num_ack_pending == 0 && info.num_pending == 0 && info.delivered.consumer_sequence > 0)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(charge_rows(&db).await, 1);
    assert_eq!(inbox(&db).await, noted);

    billing_server.stop().await;
    suite.stop().await;
    drop_stream(&settings).await;
}

async fn charge_rows(db: &DatabaseConnection) -> i64 {
    count(db, "SELECT COUNT(*) FROM charges").await
}

async fn archiving_a_patient_clears_their_diary_and_list(backend: Backend, broker: Broker) {
    let database = TestDatabase::create(backend).await;
    let settings = settings(&database, broker);
    let suite = start(&settings, &[]).await;
    let mut clients = Clients::of(&suite);
    let clinic = clinic(&mut clients.scheduling, 1).await;
    let first = clients.booked(&clinic.slots[0]).await;
    let patient_id = first.patient_id.clone();
    let second = clients.book(&patient_id, &clinic.slots[5]).await;
    let waiting = clients
        .scheduling
        .create_referral(referral(&patient_id, chrono::Duration::weeks(2)))
        .await
        .unwrap()
        .into_inner();

    let archived = clients
        .records
        .archive_patient(records::ArchivePatientRequest {
            id: patient_id.clone(),
            etag: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(archived.archive_time.is_some(), "{archived:?}");

    for appointment in [&first, &second] {
        let cancelled = eventually(Duration::from_secs(2), async || {
            let now = clients
                .scheduling
                .get_appointment(scheduling::GetAppointmentRequest {
                    id: appointment.id.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            (now.status() == scheduling::AppointmentStatus::Cancelled).then_some(now)
        })
        .await;
        assert_eq!(cancelled.cancellation_reason, "patient archived");
        assert_eq!(cancelled.cancelled_by(), scheduling::CancelledBy::Hospital);
    }
    let referrals = eventually(Duration::from_secs(2), async || {
        let listed = clients
            .scheduling
            .list_referrals(scheduling::ListReferralsRequest {
                patient_id: patient_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .referrals;
        listed
            .iter()
            .all(|r| r.status() == scheduling::ReferralStatus::Removed)
            .then_some(listed)
    })
    .await;
    assert_eq!(referrals.len(), 3);
    assert!(referrals.iter().any(|r| r.id == waiting.id));
    assert!(
        referrals
            .iter()
            .all(|r| r.removal_reason == "patient archived")
    );

    // Each change raised its own events, in the order they happened.
    let db = database.connect().await;
    let raised: Vec<String> = eventually(Duration::from_secs(2), async || {
        let raised = outbox(&db).await;
        let after = raised
            .iter()
            .position(|e| e.r#type == "medsec.records.patient.archived")?;
        let after: Vec<String> = raised[after..].iter().map(|e| e.r#type.clone()).collect();
        (after.len() >= 11).then_some(after)
    })
    .await;
    let count = |kind: &str| raised.iter().filter(|t| t.ends_with(kind)).count();
    assert_eq!(count("appointment.cancelled"), 2, "{raised:?}");
    assert_eq!(count("slot.freed"), 2, "{raised:?}");
    assert_eq!(count("referral.removed"), 3, "{raised:?}");
    assert_eq!(count("referral.clock_stopped"), 3, "{raised:?}");
    suite.stop().await;
    drop_stream(&settings).await;
}

/// Every event in the outbox, in the order raised.
async fn outbox(db: &DatabaseConnection) -> Vec<pb::Envelope> {
    medsec_platform::testing::raised_events(db).await
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index(0)
    .unwrap()
}

async fn relayed(db: &DatabaseConnection) -> i64 {
    count(
        db,
        "SELECT COUNT(*) FROM event_outbox WHERE position IS NOT NULL",
    )
    .await
}

async fn unrelayed(db: &DatabaseConnection) -> i64 {
    count(
        db,
        "SELECT COUNT(*) FROM event_outbox WHERE position IS NULL",
    )
    .await
}

async fn inbox(db: &DatabaseConnection) -> Vec<events::entities::inbox::Model> {
    use medsec_platform::events::entities::inbox;
    inbox::Entity::find()
        .order_by_asc(inbox::Column::HandledMs)
        .all(db)
        .await
        .unwrap()
}

async fn a_watcher_resumes_without_gaps(backend: Backend, broker: Broker) {
    let database = TestDatabase::create(backend).await;
    let settings = settings(&database, broker);
    let suite = start(&settings, &[]).await;
    let mut clients = Clients::of(&suite);
    let mut watcher = EventServiceClient::new(suite.channel.clone());
    let clinic = clinic(&mut clients.scheduling, 1).await;
    let appointment = clients.booked(&clinic.slots[0]).await;
    clients.seen(&appointment).await;

    // A first watch reads three events and drops.
    let mut stream = watcher
        .watch_events(pb::WatchEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(stream.next().await.unwrap().unwrap());
    }
    drop(stream);

    // More happens meanwhile.
    for slot in &clinic.slots[1..4] {
        clients.book(&appointment.patient_id, slot).await;
    }
    let db = database.connect().await;
    eventually(Duration::from_secs(3), async || {
        (unrelayed(&db).await == 0).then_some(())
    })
    .await;
    let total = usize::try_from(relayed(&db).await).unwrap();

    // Resumed after the last one handled: the rest, once each, in order.
    let last = seen.last().unwrap().position;
    let mut stream = watcher
        .watch_events(pb::WatchEventsRequest {
            from_position: last,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while seen.len() < total {
        let event = tokio::time::timeout(Duration::from_secs(3), stream.next())
            .await
            .expect("the rest of the events")
            .unwrap()
            .unwrap();
        seen.push(event);
    }
    let positions: Vec<u64> = seen.iter().map(|e| e.position).collect();
    let expected: Vec<u64> = (1..=u64::try_from(total).unwrap()).collect();
    assert_eq!(positions, expected, "every event once, in order");
    let raised: Vec<String> = outbox(&db).await.into_iter().map(|e| e.id).collect();
    let mut watched: Vec<String> = seen.iter().map(|e| e.id.clone()).collect();
    watched.sort();
    let mut raised_sorted = raised.clone();
    raised_sorted.sort();
    assert_eq!(watched, raised_sorted);
    // One subject's events arrive in the order they were raised.
    let order_of = |id: &str| raised.iter().position(|r| r == id).unwrap();
    for (i, earlier) in seen.iter().enumerate() {
        for later in &seen[i + 1..] {
            if earlier.subject == later.subject {
                assert!(
                    order_of(&earlier.id) < order_of(&later.id),
                    "{earlier:?} {later:?}"
                );
            }
        }
    }

    // Filtered by type and subject.
    let mut fulfilled = watcher
        .watch_events(pb::WatchEventsRequest {
            types: vec!["medsec.scheduling.appointment.fulfilled".into()],
            subject_prefix: format!("appointments/{}", appointment.id),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let only = fulfilled.next().await.unwrap().unwrap();
    assert_eq!(only.r#type, "medsec.scheduling.appointment.fulfilled");
    let Some(pb::envelope::Data::AppointmentFulfilled(data)) = only.data else {
        panic!("{only:?}")
    };
    let facts = data.appointment.unwrap();
    assert_eq!(facts.appointment_id, appointment.id);
    assert_eq!(facts.specialty, "cardiology");
    assert_eq!(facts.kind, "new");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), fulfilled.next())
            .await
            .is_err(),
        "nothing else matches"
    );

    // Bad filters are refused by name.
    let refused = watcher
        .watch_events(pb::WatchEventsRequest {
            types: vec!["fulfilled".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        medsec_platform::testing::violated_fields(&refused),
        ["types[0]"]
    );

    suite.stop().await;
    drop_stream(&settings).await;
}

async fn events_are_pruned(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let settings = settings(&database, Broker::InProcess);
    let suite = start(&settings, &[]).await;
    let mut clients = Clients::of(&suite);
    priced(&mut clients.billing).await;
    let clinic = clinic(&mut clients.scheduling, 1).await;
    let appointment = clients.booked(&clinic.slots[0]).await;
    clients.seen(&appointment).await;
    charged_once(&mut clients, &appointment).await;
    let db = database.connect().await;
    let before = relayed(&db).await;
    assert!(before >= 4, "{before}");
    assert!(!inbox(&db).await.is_empty());

    let (events_pruned, inbox_pruned) = events::prune::prune(&db, Duration::ZERO).await.unwrap();
    assert_eq!(
        events_pruned,
        u64::try_from(before - 1).unwrap(),
        "the latest is kept"
    );
    assert!(inbox_pruned >= 1);
    assert!(inbox(&db).await.is_empty());

    // A watcher resuming before what was kept is told so; after it, served.
    let mut watcher = EventServiceClient::new(suite.channel.clone());
    let refused = watcher
        .watch_events(pb::WatchEventsRequest {
            from_position: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(
        refused
            .message()
            .contains(&format!("oldest kept is {before}")),
        "{refused:?}"
    );
    watcher
        .watch_events(pb::WatchEventsRequest {
            from_position: u64::try_from(before - 1).unwrap(),
            ..Default::default()
        })
        .await
        .unwrap();

    // Positions go on from the last, never reused.
    clients
        .book(&appointment.patient_id, &clinic.slots[1])
        .await;
    eventually(Duration::from_secs(2), async || {
        (unrelayed(&db).await == 0).then_some(())
    })
    .await;
    let positions: Vec<i64> = {
        use medsec_platform::events::entities::outbox;
        outbox::Entity::find()
            .order_by_asc(outbox::Column::Seq)
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|row| row.position)
            .collect()
    };
    assert_eq!(positions[0], before);
    assert!(
        positions.windows(2).all(|w| w[1] == w[0] + 1),
        "{positions:?}"
    );

    suite.stop().await;
}

async fn scheduling_asks_records_about_the_patient(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let settings = settings(&database, Broker::InProcess);
    let suite = start(&settings, &[]).await;
    let mut clients = Clients::of(&suite);
    let clinic = clinic(&mut clients.scheduling, 1).await;

    // Nobody records knows.
    let stranger = uuid::Uuid::now_v7().to_string();
    let refused = clients
        .scheduling
        .create_referral(referral(&stranger, chrono::Duration::weeks(2)))
        .await
        .unwrap_err();
    assert_eq!(
        medsec_platform::testing::violated_fields(&refused),
        ["referral.patient_id"]
    );
    let refused = clients
        .scheduling
        .book_appointment(scheduling::BookAppointmentRequest {
            slot_id: clinic.slots[0].id.clone(),
            patient_id: stranger,
            referral_id: String::new(),
            reason: String::new(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        medsec_platform::testing::violated_fields(&refused),
        ["patient_id"]
    );

    // Ada is known until she is archived.
    let ada = clients
        .records
        .create_patient(ada())
        .await
        .unwrap()
        .into_inner();
    clients
        .scheduling
        .create_referral(referral(&ada.id, chrono::Duration::weeks(2)))
        .await
        .unwrap();
    clients
        .records
        .archive_patient(records::ArchivePatientRequest {
            id: ada.id.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    let refused = clients
        .scheduling
        .create_referral(referral(&ada.id, chrono::Duration::weeks(2)))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(refused.message().contains("archived"), "{refused:?}");

    // Records saw scheduling ask, as the scheduling service.
    let trail = clients
        .records
        .list_audit_events(records::ListAuditEventsRequest {
            patient_id: ada.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(
        trail
            .iter()
            .any(|e| e.action == "GetPatient" && e.actor == "scheduling.in-process"),
        "{trail:?}"
    );

    suite.stop().await;
}

async fn a_freed_slot_is_offered_by_itself(backend: Backend, broker: Broker) {
    let database = TestDatabase::create(backend).await;
    let mut settings = settings(&database, broker);
    settings.scheduling.automatic_offers = true;
    let suite = start(&settings, &[]).await;
    let mut clients = Clients::of(&suite);
    let clinic = clinic(&mut clients.scheduling, 1).await;
    let slot = &clinic.slots[2];
    let appointment = clients.booked(slot).await;
    let waiting = clients
        .scheduling
        .create_referral(referral(
            &appointment.patient_id,
            chrono::Duration::weeks(12),
        ))
        .await
        .unwrap()
        .into_inner();

    clients
        .scheduling
        .cancel_appointment(scheduling::CancelAppointmentRequest {
            id: appointment.id.clone(),
            cancelled_by: scheduling::CancelledBy::Patient as i32,
            reason: "moving house".into(),
        })
        .await
        .unwrap();

    // Held for the referral still waiting, not for the one that gave it up.
    let held = eventually(Duration::from_secs(2), async || {
        let now = clients
            .scheduling
            .get_slot(scheduling::GetSlotRequest {
                id: slot.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        (!now.held_for_referral_id.is_empty()).then_some(now)
    })
    .await;
    assert_eq!(held.held_for_referral_id, waiting.id);
    assert_eq!(held.state(), scheduling::SlotState::BusyTentative);

    suite.stop().await;
    drop_stream(&settings).await;
}

async fn a_missed_appointment_is_charged_the_clinics_dna_fee(backend: Backend, broker: Broker) {
    let database = TestDatabase::create(backend).await;
    let mut settings = settings(&database, broker);
    settings.billing.charges.did_not_attend = Some("DNA-FEE".to_owned());
    let suite = start(&settings, &[]).await;
    let mut clients = Clients::of(&suite);
    clients
        .billing
        .create_price_item(price("DNA-FEE", "Missed appointment", 3_000))
        .await
        .unwrap();
    let clinic = clinic(&mut clients.scheduling, 1).await;
    // Yesterday's clinic, which Ada missed.
    let template = &clinic.slots[0];
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    let missed_slot = clients
        .scheduling
        .create_slot(scheduling::CreateSlotRequest {
            slot: Some(scheduling::Slot {
                clinician_id: template.clinician_id.clone(),
                specialty: template.specialty.clone(),
                location_id: template.location_id.clone(),
                start_time: Some(medsec_platform::time::to_timestamp(yesterday)),
                end_time: Some(medsec_platform::time::to_timestamp(
                    yesterday + chrono::Duration::minutes(30),
                )),
                kind: template.kind,
                mode: template.mode,
                capacity: 1,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let appointment = clients.booked(&missed_slot).await;
    clients
        .scheduling
        .mark_did_not_attend(scheduling::MarkDidNotAttendRequest {
            id: appointment.id.clone(),
        })
        .await
        .unwrap();

    let charge = charged_once(&mut clients, &appointment).await;
    assert_eq!(charge.code, "DNA-FEE");
    assert_eq!(charge.net_pence, 3_000);

    suite.stop().await;
    drop_stream(&settings).await;
}
