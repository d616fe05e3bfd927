//! Proposals through the API: a run's allocations, their listing, the
//! commit that books them (racing manual bookings, reporting what it could
//! not book, resuming when interrupted), and the checks on a run's request.

use medsec_platform::audit::Actor;
use medsec_platform::both_backends;
use medsec_platform::testing::Backend;
use medsec_proto::scheduling::v1 as pb;
use tonic::Code;

use super::{
    allocations, appointment, appointments, commit, create_slot, day_slot, ok, propose, referral,
    referral_now, refused, run,
};
use crate::helpers::{assert_precondition, patient, spawn_app, violated_fields};

both_backends!(
    proposes_lists_and_commits_once,
    a_patients_existing_appointment_day_is_kept_free,
    refuses_bad_optimisation_requests,
    commit_and_manual_booking_racing_for_one_slot_never_double_book,
    commit_reports_allocations_it_could_not_book,
    an_interrupted_commit_is_completed_by_the_next,
    booking_rechecks_that_the_slot_fits_the_referral,
    a_run_larger_than_the_server_solves_is_refused_and_stores_nothing,
    referrals_stored_unschedulable_are_left_out_and_reported,
    a_long_commit_lets_other_writes_take_turns,
);

async fn proposes_lists_and_commits_once(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let early = day_slot(&mut app, &clinic, "2026-06-01", 1).await;
    let late = day_slot(&mut app, &clinic, "2026-06-29", 1).await;
    let (ada, bo, cy) = (patient(), patient(), patient());
    // Cy's two-week-wait referral must take the early slot; Ada has waited
    // longer than Bo, so treat-in-turn gives her the late one and Bo waits.
    let urgent = referral(&mut app, &cy, pb::Priority::TwoWeekWait, "2026-05-25").await;
    let long_wait = referral(&mut app, &ada, pb::Priority::Routine, "2026-01-05").await;
    let short_wait = referral(&mut app, &bo, pb::Priority::Routine, "2026-04-01").await;

    let proposal = propose(&mut app, "2026-06-01", "2026-06-30").await.unwrap();
    assert!(proposal.optimal);
    assert_eq!(proposal.status(), pb::ProposalStatus::Proposed);
    assert_eq!((proposal.referrals, proposal.slots), (3, 2));
    assert_eq!(proposal.referrals_allocated, 2);
    assert_eq!(proposal.referrals_unallocated, 1);
    assert!(proposal.objective <= proposal.greedy_objective);
    assert_eq!(
        proposal.breaches_avoided,
        proposal.greedy_breaches - proposal.breaches
    );
    assert!(proposal.max_wait_days >= 175, "{proposal:?}");
    let got = ok(app.client.get_proposal(pb::GetProposalRequest {
        id: proposal.id.clone(),
    }))
    .await;
    assert_eq!(got, proposal);
    let listed = ok(app.client.list_proposals(pb::ListProposalsRequest {
        specialty: "cardiology".into(),
        ..Default::default()
    }))
    .await;
    assert_eq!(listed.proposals, vec![proposal.clone()]);

    let placed = allocations(&mut app, &proposal.id).await;
    assert_eq!(placed.len(), 2);
    let slot_of = |referral: &pb::Referral| {
        placed
            .iter()
            .find(|a| a.referral_id == referral.id)
            .map(|a| a.slot_id.clone())
    };
    assert_eq!(slot_of(&urgent), Some(early.id.clone()));
    assert_eq!(slot_of(&long_wait), Some(late.id.clone()));
    assert_eq!(slot_of(&short_wait), None);
    let ada_terms = placed
        .iter()
        .find(|a| a.referral_id == long_wait.id)
        .unwrap();
    // 2026-01-05 to 2026-06-29 is 175 days, past the 126-day target.
    assert_eq!(ada_terms.wait_days, 175);
    assert!(ada_terms.breach);
    assert_eq!(ada_terms.cost, 175 * 175 + 20_000);
    assert_eq!(ada_terms.slot_date, "2026-06-29");

    let committed = commit(&mut app, &proposal.id).await;
    assert_eq!(committed.booked, 2);
    assert!(committed.not_booked.is_empty());
    let header = committed.proposal.unwrap();
    assert_eq!(header.status(), pb::ProposalStatus::Committed);
    assert_eq!((header.booked, header.not_booked), (2, 0));
    assert_eq!(app.get_slot(&early.id).await.state(), pb::SlotState::Busy);
    assert_eq!(app.get_slot(&late.id).await.state(), pb::SlotState::Busy);
    let booked = allocations(&mut app, &proposal.id).await;
    assert!(booked.iter().all(|a| !a.appointment_id.is_empty()));

    let again = commit(&mut app, &proposal.id).await;
    assert_eq!(again.booked, 0, "a second commit books nothing");
    assert_eq!(
        again.proposal.unwrap(),
        header,
        "and reports the same outcome"
    );
    let booked = appointments(&mut app, pb::ListAppointmentsRequest::default()).await;
    assert_eq!(booked.len(), 2);
}

async fn a_patients_existing_appointment_day_is_kept_free(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let first = day_slot(&mut app, &clinic, "2026-06-01", 2).await;
    let second = day_slot(&mut app, &clinic, "2026-06-02", 1).await;
    let ada = patient();
    // Ada already has an appointment (no referral) in the 2-place slot on 1 June.
    app.book(&first.id, &ada, "").await.unwrap();
    let waiting = referral(&mut app, &ada, pb::Priority::Urgent, "2026-05-01").await;
    let proposal = propose(&mut app, "2026-06-01", "2026-06-30").await.unwrap();
    let placed = allocations(&mut app, &proposal.id).await;
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].referral_id, waiting.id);
    assert_eq!(
        placed[0].slot_id, second.id,
        "not on the day she is already seen"
    );
}

async fn refuses_bad_optimisation_requests(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let reversed = run("cardio-logy", "2026-06-30", "2026-06-01");
    let status = refused(app.client.propose_allocation(reversed)).await;
    assert_eq!(violated_fields(&status), ["specialty", "horizon_end"]);
    let status = propose(&mut app, "2026-1-1", "").await.unwrap_err();
    assert_eq!(violated_fields(&status), ["horizon_start", "horizon_end"]);
    let status = propose(&mut app, "2026-01-01", "2027-06-01")
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["horizon_end"]);
    let status = refused(
        app.client
            .get_proposal(pb::GetProposalRequest { id: "x".into() }),
    )
    .await;
    assert_eq!(violated_fields(&status), ["id"]);
    let missing = uuid::Uuid::now_v7().to_string();
    let id = || missing.clone();
    let allocations_of = pb::ListProposalAllocationsRequest {
        proposal_id: id(),
        ..Default::default()
    };
    for status in [
        refused(app.client.get_proposal(pb::GetProposalRequest { id: id() })).await,
        refused(
            app.client
                .commit_proposal(pb::CommitProposalRequest { id: id() }),
        )
        .await,
        refused(app.client.list_proposal_allocations(allocations_of)).await,
    ] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    let status = refused(app.client.list_proposals(pb::ListProposalsRequest {
        page_size: -1,
        ..Default::default()
    }))
    .await;
    assert_eq!(violated_fields(&status), ["page_size"]);
    let status = refused(app.client.book_best_slot(pb::BookBestSlotRequest {
        referral_id: "nope".into(),
        from_date: "2026-06-01".into(),
        to_date: "2026-05-01".into(),
        max_candidates: -3,
        ..Default::default()
    }))
    .await;
    assert_eq!(
        violated_fields(&status),
        ["referral_id", "to_date", "max_candidates"]
    );
    let status = refused(
        app.client
            .rebook_displaced(pb::RebookDisplacedRequest::default()),
    )
    .await;
    assert_eq!(
        violated_fields(&status),
        ["absence_id", "horizon_start", "horizon_end"]
    );
    let status = refused(app.client.offer_freed_slot(pb::OfferFreedSlotRequest {
        slot_id: String::new(),
        hold_until: Some(crate::helpers::ts("2020-01-01T00:00:00Z")),
    }))
    .await;
    assert_eq!(violated_fields(&status), ["slot_id", "hold_until"]);
    let proposals = ok(app
        .client
        .list_proposals(pb::ListProposalsRequest::default()))
    .await
    .proposals;
    assert!(proposals.is_empty(), "nothing was stored");
}

async fn commit_and_manual_booking_racing_for_one_slot_never_double_book(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    for round in 0..4 {
        let date = format!("2026-06-{:02}", round + 1);
        let slot = day_slot(&mut app, &clinic, &date, 1).await;
        referral(&mut app, &patient(), pb::Priority::Routine, "2026-03-01").await;
        let proposal = propose(&mut app, &date, &date).await.unwrap();
        // The allocated referral may be an earlier round's, left waiting.
        let allocated = allocations(&mut app, &proposal.id).await.remove(0);
        assert_eq!(allocated.slot_id, slot.id);
        let walk_in = patient();
        let mut committer = app.client.clone();
        let mut booker = app.client.clone();
        let (committed, manual) = tokio::join!(
            committer.commit_proposal(pb::CommitProposalRequest {
                id: proposal.id.clone()
            }),
            booker.book_appointment(pb::BookAppointmentRequest {
                slot_id: slot.id.clone(),
                patient_id: walk_in.clone(),
                referral_id: String::new(),
                reason: "walk-in".into(),
                request_id: String::new(),
            }),
        );
        let committed = committed.unwrap().into_inner();
        let held = app.get_slot(&slot.id).await;
        assert_eq!(held.booked, 1, "round {round}: exactly one place taken");
        let listed = pb::ListAppointmentsRequest {
            clinician_id: clinic.clinician.clone(),
            page_size: 100,
            ..Default::default()
        };
        let in_slot: Vec<_> = appointments(&mut app, listed)
            .await
            .into_iter()
            .filter(|a| a.slot_id == slot.id)
            .collect();
        assert_eq!(in_slot.len(), 1, "round {round}");
        match manual {
            Ok(appointment) => {
                assert_eq!(committed.booked, 0);
                assert_eq!(committed.not_booked.len(), 1);
                assert!(committed.not_booked[0].not_booked_reason.contains("full"));
                assert_eq!(in_slot[0].id, appointment.into_inner().id);
                let left = referral_now(&mut app, &allocated.referral_id).await;
                assert_eq!(left.status(), pb::ReferralStatus::Waiting);
            }
            Err(status) => {
                assert_precondition(&status, "full");
                assert_eq!(committed.booked, 1);
                assert_eq!(in_slot[0].referral_id, allocated.referral_id);
            }
        }
    }
}

async fn commit_reports_allocations_it_could_not_book(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    for date in ["2026-06-01", "2026-06-02", "2026-06-03"] {
        day_slot(&mut app, &clinic, date, 1).await;
    }
    let ada = referral(&mut app, &patient(), pb::Priority::Routine, "2026-01-05").await;
    let bo = referral(&mut app, &patient(), pb::Priority::Routine, "2026-01-06").await;
    let cy = referral(&mut app, &patient(), pb::Priority::Routine, "2026-01-07").await;
    let proposal = propose(&mut app, "2026-06-01", "2026-06-30").await.unwrap();
    assert_eq!(proposal.referrals_allocated, 3);
    let placed = allocations(&mut app, &proposal.id).await;
    let slot_of = |referral: &pb::Referral| {
        placed
            .iter()
            .find(|a| a.referral_id == referral.id)
            .unwrap()
            .slot_id
            .clone()
    };
    // Meanwhile Bo's slot goes to someone else and Cy leaves the list; Ada's
    // allocation is still good.
    app.book(&slot_of(&bo), &patient(), "").await.unwrap();
    app.remove_referral(&cy.id, "treated elsewhere")
        .await
        .unwrap();
    let committed = commit(&mut app, &proposal.id).await;
    assert_eq!(committed.booked, 1, "{committed:?}");
    let header = committed.proposal.clone().unwrap();
    assert_eq!((header.booked, header.not_booked), (1, 2));
    let reasons: Vec<(&str, &str)> = committed
        .not_booked
        .iter()
        .map(|a| (a.referral_id.as_str(), a.not_booked_reason.as_str()))
        .collect();
    let mut expected = vec![bo.id.as_str(), cy.id.as_str()];
    expected.sort();
    assert_eq!(
        reasons.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        expected
    );
    for (referral_id, reason) in &reasons {
        if *referral_id == bo.id {
            assert!(reason.contains("full"), "{reason}");
        } else {
            assert!(reason.contains("removed"), "{reason}");
        }
    }
    let after = allocations(&mut app, &proposal.id).await;
    let ada_row = after.iter().find(|a| a.referral_id == ada.id).unwrap();
    assert!(ada_row.not_booked_reason.is_empty());
    let booked = appointment(&mut app, &ada_row.appointment_id).await;
    assert_eq!(booked.slot_id, slot_of(&ada));
    assert_eq!(booked.referral_id, ada.id);
    assert_eq!(app.get_slot(&slot_of(&ada)).await.booked, 1);
    assert_eq!(app.get_slot(&slot_of(&bo)).await.booked, 1);
    assert_eq!(app.get_slot(&slot_of(&cy)).await.booked, 0);

    let again = commit(&mut app, &proposal.id).await;
    assert_eq!(again.booked, 0, "nothing new to book");
    assert_eq!(again.not_booked, committed.not_booked);
    let header = again.proposal.unwrap();
    assert_eq!((header.booked, header.not_booked), (1, 2));
}

async fn an_interrupted_commit_is_completed_by_the_next(backend: Backend) {
    use medsec_scheduling::domain::allocation::ProposalStatus;
    use medsec_scheduling::store::entities::{proposal, proposal_allocation};
    use medsec_scheduling::store::optimise;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _};

    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    for date in ["2026-06-01", "2026-06-02", "2026-06-03"] {
        day_slot(&mut app, &clinic, date, 1).await;
    }
    for start in ["2026-01-05", "2026-01-06", "2026-01-07"] {
        referral(&mut app, &patient(), pb::Priority::Routine, start).await;
    }
    let proposal = propose(&mut app, "2026-06-01", "2026-06-30").await.unwrap();
    assert_eq!(proposal.referrals_allocated, 3);
    let id = uuid::Uuid::parse_str(&proposal.id).unwrap();
    // A commit that claimed the proposal and booked its first allocation,
    // then died before booking the rest.
    proposal::Entity::update_many()
        .col_expr(
            proposal::Column::Status,
            Expr::value(ProposalStatus::Committed.as_str()),
        )
        .filter(proposal::Column::Id.eq(id))
        .exec(&app.db)
        .await
        .unwrap();
    let interrupted_commit = Actor::named("scheduling", "CommitProposal", "w.list");
    let rows = proposal_allocation::Entity::find()
        .filter(proposal_allocation::Column::ProposalId.eq(id))
        .order_by_asc(proposal_allocation::Column::SlotId)
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(
        optimise::book_allocations(&app.db, &rows[..1], &interrupted_commit)
            .await
            .unwrap(),
        1
    );
    let half = allocations(&mut app, &proposal.id).await;
    assert_eq!(
        half.iter().filter(|a| a.appointment_id.is_empty()).count(),
        2,
        "two allocations left with neither an appointment nor a reason"
    );

    let resumed = commit(&mut app, &proposal.id).await;
    assert_eq!(resumed.booked, 2, "the retry books what was left");
    assert!(resumed.not_booked.is_empty(), "{resumed:?}");
    let header = resumed.proposal.clone().unwrap();
    assert_eq!(header.status(), pb::ProposalStatus::Committed);
    assert_eq!((header.booked, header.not_booked), (3, 0));
    let done = allocations(&mut app, &proposal.id).await;
    assert!(
        done.iter().all(|a| !a.appointment_id.is_empty()),
        "{done:?}"
    );
    for allocation in &done {
        assert_eq!(app.get_slot(&allocation.slot_id).await.booked, 1);
    }
    let every = pb::ListAppointmentsRequest {
        page_size: 100,
        ..Default::default()
    };
    assert_eq!(appointments(&mut app, every).await.len(), 3);

    let again = commit(&mut app, &proposal.id).await;
    assert_eq!(again.booked, 0, "a retry after a full commit books nothing");
    assert_eq!(again.proposal.unwrap().booked, 3);
    assert_eq!(allocations(&mut app, &proposal.id).await, done);
}

async fn booking_rechecks_that_the_slot_fits_the_referral(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    day_slot(&mut app, &clinic, "2026-06-01", 1).await;
    day_slot(&mut app, &clinic, "2026-06-02", 1).await;
    let (ada, bo) = (patient(), patient());
    let first = referral(&mut app, &ada, pb::Priority::Routine, "2026-01-05").await;
    let second = referral(&mut app, &bo, pb::Priority::Routine, "2026-01-06").await;
    let proposal = propose(&mut app, "2026-06-01", "2026-06-30").await.unwrap();
    let placed = allocations(&mut app, &proposal.id).await;
    assert_eq!(placed.len(), 2);
    let ada_date = placed
        .iter()
        .find(|a| a.referral_id == first.id)
        .unwrap()
        .slot_date
        .clone();
    // Ada reports she is away on her proposed date.
    app.client
        .update_referral(pb::UpdateReferralRequest {
            referral: Some(pb::Referral {
                id: first.id.clone(),
                etag: first.etag.clone(),
                unavailable: vec![pb::DateRange {
                    from: ada_date.clone(),
                    to: ada_date.clone(),
                }],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["unavailable".into()],
            }),
        })
        .await
        .unwrap();
    let committed = commit(&mut app, &proposal.id).await;
    assert_eq!(committed.booked, 1);
    assert_eq!(committed.not_booked.len(), 1);
    let unbooked = &committed.not_booked[0];
    assert_eq!(unbooked.referral_id, first.id);
    assert!(
        unbooked.not_booked_reason.contains(&format!(
            "the patient is unavailable from {ada_date} to {ada_date}"
        )),
        "{}",
        unbooked.not_booked_reason
    );
    assert_eq!(app.get_slot(&unbooked.slot_id).await.booked, 0);
    let waiting = referral_now(&mut app, &first.id).await;
    assert_eq!(waiting.status(), pb::ReferralStatus::Waiting);

    // Bo's appointment cannot be moved to a follow-up slot, nor booked
    // before his clock started.
    let bo_appointment = allocations(&mut app, &proposal.id)
        .await
        .into_iter()
        .find(|a| a.referral_id == second.id)
        .unwrap()
        .appointment_id;
    let mut follow_up =
        crate::helpers::slot(&clinic, "2026-06-03T09:00:00Z", "2026-06-03T09:30:00Z", 1);
    follow_up.kind = pb::SlotKind::FollowUp as i32;
    let follow_up = create_slot(&mut app, follow_up).await;
    let status = refused(
        app.client
            .reschedule_appointment(pb::RescheduleAppointmentRequest {
                id: bo_appointment.clone(),
                new_slot_id: follow_up.id.clone(),
            }),
    )
    .await;
    assert_eq!(violated_fields(&status), ["new_slot_id"]);
    assert!(status.message().contains("follow"), "{status:?}");
    assert_eq!(app.get_slot(&follow_up.id).await.booked, 0);
    let early = day_slot(&mut app, &clinic, "2026-01-02", 1).await;
    let late_start = referral(&mut app, &patient(), pb::Priority::Routine, "2026-01-05").await;
    let status = app
        .book(&early.id, &late_start.patient_id, &late_start.id)
        .await
        .unwrap_err();
    assert_precondition(&status, "before the clock start 2026-01-05");
    assert_eq!(app.get_slot(&early.id).await.booked, 0);
}

async fn a_run_larger_than_the_server_solves_is_refused_and_stores_nothing(backend: Backend) {
    let mut app = crate::helpers::spawn_app_with(backend, |settings| {
        settings.scheduling.max_run_pairs = 3;
    })
    .await;
    let clinic = app.clinic().await;
    day_slot(&mut app, &clinic, "2026-06-01", 1).await;
    day_slot(&mut app, &clinic, "2026-06-02", 1).await;
    for clock_start in ["2026-01-05", "2026-02-05"] {
        referral(&mut app, &patient(), pb::Priority::Routine, clock_start).await;
    }
    let status = propose(&mut app, "2026-06-01", "2026-06-30")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("2 referrals and 2 slots"),
        "{status:?}"
    );
    let listed = ok(app
        .client
        .list_proposals(pb::ListProposalsRequest::default()))
    .await;
    assert!(listed.proposals.is_empty(), "nothing stored");
    // The specialty's run lock was released with the refusal: the next run
    // is refused for its size again, not for a run in progress.
    let again = propose(&mut app, "2026-06-01", "2026-06-30")
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::ResourceExhausted, "{again:?}");
}

/// Referrals written before today's checks (or by hand) that the optimiser
/// cannot use: a clock start in the year 1001, an unavailable period ending
/// before it starts, unreadable periods. The run goes on without them and
/// says which and why; a single-referral ranking refuses one by name.
async fn referrals_stored_unschedulable_are_left_out_and_reported(backend: Backend) {
    use medsec_scheduling::store::entities::referral;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};

    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let slot = day_slot(&mut app, &clinic, "2026-06-01", 1).await;
    day_slot(&mut app, &clinic, "2026-06-02", 1).await;
    let good = referral(&mut app, &patient(), pb::Priority::Routine, "2026-01-05").await;
    let mut bad = Vec::new();
    for (column, value) in [
        (
            referral::Column::ClockStart,
            Expr::value(chrono::NaiveDate::from_ymd_opt(1001, 1, 1).unwrap()),
        ),
        (
            referral::Column::Unavailable,
            Expr::value(r#"[{"from":"2026-06-09","to":"2026-06-02"}]"#),
        ),
        (referral::Column::Unavailable, Expr::value("not json")),
    ] {
        let stored = referral(&mut app, &patient(), pb::Priority::Routine, "2026-01-06").await;
        let id = uuid::Uuid::parse_str(&stored.id).unwrap();
        referral::Entity::update_many()
            .col_expr(column, value)
            .filter(referral::Column::Id.eq(id))
            .exec(&app.db)
            .await
            .unwrap();
        bad.push(stored.id);
    }

    let proposal = propose(&mut app, "2026-06-01", "2026-06-30").await.unwrap();
    assert_eq!(proposal.referrals, 1, "{proposal:?}");
    assert_eq!(proposal.referrals_allocated, 1);
    assert_eq!(proposal.referrals_left_out, 3);
    let mut left_out: Vec<_> = proposal
        .left_out
        .iter()
        .map(|out| (out.referral_id.clone(), out.reason.clone()))
        .collect();
    left_out.sort();
    let mut expected = vec![
        (
            bad[0].clone(),
            "has a clock start before 1990-01-01 or after 2199-12-31".to_owned(),
        ),
        (
            bad[1].clone(),
            "has an unavailable period that ends before it starts".to_owned(),
        ),
        (
            bad[2].clone(),
            "has unavailable periods that cannot be read".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(left_out, expected);
    let got = ok(app.client.get_proposal(pb::GetProposalRequest {
        id: proposal.id.clone(),
    }))
    .await;
    assert_eq!(got, proposal, "the report is stored with the proposal");
    let placed = allocations(&mut app, &proposal.id).await;
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].referral_id, good.id);
    assert_eq!(placed[0].slot_id, slot.id);

    let status = app
        .client
        .book_best_slot(pb::BookBestSlotRequest {
            referral_id: bad[0].clone(),
            from_date: "2026-06-01".into(),
            to_date: "2026-06-30".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_precondition(&status, &format!("referrals/{}", bad[0]));
    assert!(
        status.message().contains("cannot be scheduled"),
        "{status:?}"
    );
}

/// A secretary's writes during a long commit get their turns: none waits
/// for more than a small part of the commit (on SQLite the writers of a
/// process queue fairly for its one write lock, rather than the commit's
/// back-to-back transactions winning it again and again).
async fn a_long_commit_lets_other_writes_take_turns(backend: Backend) {
    use std::time::{Duration, Instant};

    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    for day in 1..=12 {
        day_slot(&mut app, &clinic, &format!("2026-06-{day:02}"), 20).await;
    }
    for _ in 0..240 {
        referral(&mut app, &patient(), pb::Priority::Routine, "2026-01-05").await;
    }
    let proposal = propose(&mut app, "2026-06-01", "2026-06-30").await.unwrap();
    assert_eq!(proposal.referrals_allocated, 240);
    let mut committer = app.client.clone();
    let id = proposal.id.clone();
    let started = Instant::now();
    let commit = tokio::spawn(async move {
        let committed = committer
            .commit_proposal(pb::CommitProposalRequest { id })
            .await
            .unwrap()
            .into_inner();
        (committed.booked, started.elapsed())
    });
    let mut longest = Duration::ZERO;
    let mut writes = 0;
    while !commit.is_finished() {
        let write = Instant::now();
        referral(&mut app, &patient(), pb::Priority::Routine, "2026-01-05").await;
        longest = longest.max(write.elapsed());
        writes += 1;
    }
    let (booked, took) = commit.await.unwrap();
    assert_eq!(booked, 240);
    assert!(
        longest < took / 4,
        "a write waited {longest:?} during a commit of {took:?} ({writes} writes meanwhile)"
    );
}
