//! The optimising scheduler through the API: proposals, commits, the run
//! lock, races with manual bookings, best slots, rebooking and offers.

use medsec_platform::both_backends;
use medsec_platform::testing::Backend;
use medsec_proto::scheduling::v1 as pb;
use medsec_scheduling::store::optimise::RunLock;
use tonic::Code;

use crate::helpers::{Clinic, TestApp, assert_precondition, patient, spawn_app, violated_fields};

both_backends!(
    proposes_lists_and_commits_once,
    a_patients_existing_appointment_day_is_kept_free,
    refuses_bad_optimisation_requests,
    a_second_run_for_a_specialty_is_refused_while_one_holds_it,
    commit_and_manual_booking_racing_for_one_slot_never_double_book,
    commit_reports_allocations_it_could_not_book,
    an_interrupted_commit_is_completed_by_the_next,
    book_best_slot_ranks_by_the_models_cost_and_books,
    rebook_displaced_moves_patients_off_an_absence_and_a_hospital_cancellation,
    offer_freed_slot_holds_it_for_the_best_waiting_referral,
    a_hold_ends_when_its_referral_is_booked_elsewhere_or_removed,
    booking_rechecks_that_the_slot_fits_the_referral,
    a_displaced_appointment_is_moved_once,
);

pub(crate) async fn referral(
    app: &mut TestApp,
    patient_id: &str,
    priority: pb::Priority,
    clock_start: &str,
) -> pb::Referral {
    app.client
        .create_referral(pb::CreateReferralRequest {
            referral: Some(pb::Referral {
                patient_id: patient_id.into(),
                specialty: "cardiology".into(),
                priority: priority as i32,
                clock_start: clock_start.into(),
                kind: pb::SlotKind::New as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create referral")
        .into_inner()
}

/// A slot at 09:00Z on `date` (10:00 in London in summer).
async fn day_slot(app: &mut TestApp, clinic: &Clinic, date: &str, capacity: i32) -> pb::Slot {
    app.slot(
        clinic,
        &format!("{date}T09:00:00Z"),
        &format!("{date}T09:30:00Z"),
        capacity,
    )
    .await
}

async fn propose(app: &mut TestApp, start: &str, end: &str) -> Result<pb::Proposal, tonic::Status> {
    app.client
        .propose_allocation(pb::ProposeAllocationRequest {
            specialty: "cardiology".into(),
            horizon_start: start.into(),
            horizon_end: end.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn allocations(app: &mut TestApp, proposal_id: &str) -> Vec<pb::ProposedAllocation> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .client
            .list_proposal_allocations(pb::ListProposalAllocationsRequest {
                proposal_id: proposal_id.into(),
                page_size: 2,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.allocations);
        if page.next_page_token.is_empty() {
            return all;
        }
        token = page.next_page_token;
    }
}

async fn commit(app: &mut TestApp, id: &str) -> pb::CommitProposalResponse {
    app.client
        .commit_proposal(pb::CommitProposalRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

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
    let got = app
        .client
        .get_proposal(pb::GetProposalRequest {
            id: proposal.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, proposal);
    let listed = app
        .client
        .list_proposals(pb::ListProposalsRequest {
            specialty: "cardiology".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
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
    let appointments = app
        .client
        .list_appointments(pb::ListAppointmentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .appointments;
    assert_eq!(appointments.len(), 2);
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
    let status = app
        .client
        .propose_allocation(pb::ProposeAllocationRequest {
            specialty: "cardio-logy".into(),
            horizon_start: "2026-06-30".into(),
            horizon_end: "2026-06-01".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["specialty", "horizon_end"]);
    let status = propose(&mut app, "2026-1-1", "").await.unwrap_err();
    assert_eq!(violated_fields(&status), ["horizon_start", "horizon_end"]);
    let status = propose(&mut app, "2026-01-01", "2027-06-01")
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["horizon_end"]);
    let status = app
        .client
        .get_proposal(pb::GetProposalRequest { id: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["id"]);
    let missing = uuid::Uuid::now_v7().to_string();
    let status = app
        .client
        .get_proposal(pb::GetProposalRequest {
            id: missing.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = app
        .client
        .commit_proposal(pb::CommitProposalRequest {
            id: missing.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = app
        .client
        .list_proposal_allocations(pb::ListProposalAllocationsRequest {
            proposal_id: missing,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = app
        .client
        .list_proposals(pb::ListProposalsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size"]);
    let status = app
        .client
        .book_best_slot(pb::BookBestSlotRequest {
            referral_id: "nope".into(),
            from_date: "2026-06-01".into(),
            to_date: "2026-05-01".into(),
            max_candidates: -3,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["referral_id", "to_date", "max_candidates"]
    );
    let status = app
        .client
        .rebook_displaced(pb::RebookDisplacedRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["absence_id", "horizon_start", "horizon_end"]
    );
    let status = app
        .client
        .offer_freed_slot(pb::OfferFreedSlotRequest {
            slot_id: String::new(),
            hold_until: Some(crate::helpers::ts("2020-01-01T00:00:00Z")),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["slot_id", "hold_until"]);
    let proposals = app
        .client
        .list_proposals(pb::ListProposalsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .proposals;
    assert!(proposals.is_empty(), "nothing was stored");
}

async fn a_second_run_for_a_specialty_is_refused_while_one_holds_it(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    day_slot(&mut app, &clinic, "2026-06-01", 1).await;
    referral(&mut app, &patient(), pb::Priority::Routine, "2026-03-01").await;
    // A run in progress, held exactly as ProposeAllocation holds it.
    let running = RunLock::acquire(&app.db, &["cardiology".to_owned()])
        .await
        .unwrap();
    let status = propose(&mut app, "2026-06-01", "2026-06-30")
        .await
        .unwrap_err();
    assert_precondition(&status, "specialties/cardiology is being optimised");
    // All specialties includes cardiology, so it waits too; another does not.
    let status = app
        .client
        .propose_allocation(pb::ProposeAllocationRequest {
            specialty: String::new(),
            horizon_start: "2026-06-01".into(),
            horizon_end: "2026-06-30".into(),
        })
        .await
        .unwrap_err();
    assert_precondition(&status, "being optimised");
    app.client
        .propose_allocation(pb::ProposeAllocationRequest {
            specialty: "dermatology".into(),
            horizon_start: "2026-06-01".into(),
            horizon_end: "2026-06-30".into(),
        })
        .await
        .unwrap();
    running.release().await.unwrap();
    let proposal = propose(&mut app, "2026-06-01", "2026-06-30").await.unwrap();
    assert_eq!(proposal.referrals_allocated, 1);
    // The finished run released its lock: another can start.
    propose(&mut app, "2026-06-01", "2026-06-30").await.unwrap();
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
        let in_slot: Vec<_> = app
            .client
            .list_appointments(pb::ListAppointmentsRequest {
                clinician_id: clinic.clinician.clone(),
                page_size: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .appointments
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
                let left = app
                    .client
                    .get_referral(pb::GetReferralRequest {
                        id: allocated.referral_id.clone(),
                        as_of: String::new(),
                    })
                    .await
                    .unwrap()
                    .into_inner();
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
    app.client
        .remove_referral(pb::RemoveReferralRequest {
            id: cy.id.clone(),
            reason: "treated elsewhere".into(),
        })
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
    let appointment = app
        .client
        .get_appointment(pb::GetAppointmentRequest {
            id: ada_row.appointment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(appointment.slot_id, slot_of(&ada));
    assert_eq!(appointment.referral_id, ada.id);
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
        .col_expr(proposal::Column::Status, Expr::value(optimise::COMMITTED))
        .filter(proposal::Column::Id.eq(id))
        .exec(&app.db)
        .await
        .unwrap();
    let rows = proposal_allocation::Entity::find()
        .filter(proposal_allocation::Column::ProposalId.eq(id))
        .order_by_asc(proposal_allocation::Column::SlotId)
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(
        optimise::book_allocations(&app.db, &rows[..1])
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
    let appointments = app
        .client
        .list_appointments(pb::ListAppointmentsRequest {
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .appointments;
    assert_eq!(appointments.len(), 3);

    let again = commit(&mut app, &proposal.id).await;
    assert_eq!(again.booked, 0, "a retry after a full commit books nothing");
    assert_eq!(again.proposal.unwrap().booked, 3);
    assert_eq!(allocations(&mut app, &proposal.id).await, done);
}

async fn book_best_slot_ranks_by_the_models_cost_and_books(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let other = app.staff(crate::helpers::clinician("Dr Ben Hale")).await.id;
    let later = day_slot(&mut app, &clinic, "2026-06-10", 1).await;
    let sooner = day_slot(&mut app, &clinic, "2026-06-03", 1).await;
    let mut with_other =
        crate::helpers::slot(&clinic, "2026-06-03T11:00:00Z", "2026-06-03T11:30:00Z", 1);
    with_other.clinician_id = other.clone();
    let by_other = app
        .client
        .create_slot(pb::CreateSlotRequest {
            slot: Some(with_other),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let ada = patient();
    let waiting = app
        .client
        .create_referral(pb::CreateReferralRequest {
            referral: Some(pb::Referral {
                patient_id: ada.clone(),
                specialty: "cardiology".into(),
                priority: pb::Priority::Routine as i32,
                clock_start: "2026-05-01".into(),
                kind: pb::SlotKind::New as i32,
                preferred_clinician: clinic.clinician.clone(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let ask = pb::BookBestSlotRequest {
        referral_id: waiting.id.clone(),
        from_date: "2026-06-01".into(),
        to_date: "2026-06-30".into(),
        ..Default::default()
    };
    let ranked = app
        .client
        .book_best_slot(ask.clone())
        .await
        .unwrap()
        .into_inner();
    let order: Vec<&str> = ranked
        .candidates
        .iter()
        .map(|c| c.slot.as_ref().unwrap().id.as_str())
        .collect();
    // Same day: the preferred clinician is cheaper by C = 20; later costs more.
    assert_eq!(
        order,
        [sooner.id.as_str(), by_other.id.as_str(), later.id.as_str()]
    );
    assert_eq!(ranked.candidates[0].cost, 33 * 33);
    assert_eq!(ranked.candidates[1].cost, 33 * 33 + 20);
    assert!(ranked.candidates[1].preference_missed);
    assert!(ranked.appointment.is_none(), "nothing booked without book");

    // The best slot is taken meanwhile: booking falls through to the next.
    app.book(&sooner.id, &patient(), "").await.unwrap();
    let booked = app
        .client
        .book_best_slot(pb::BookBestSlotRequest {
            book: true,
            request_id: "best-ada".into(),
            max_candidates: 2,
            ..ask.clone()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(booked.candidates.len(), 2);
    let appointment = booked.appointment.unwrap();
    assert_eq!(appointment.slot_id, by_other.id);
    assert_eq!(appointment.referral_id, waiting.id);
    let retried = app
        .client
        .book_best_slot(pb::BookBestSlotRequest {
            book: true,
            request_id: "best-ada".into(),
            max_candidates: 2,
            ..ask.clone()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        retried.appointment.unwrap().id,
        appointment.id,
        "a retry books nothing more"
    );
    let status = app.client.book_best_slot(ask).await.unwrap_err();
    assert_precondition(&status, "booked");
}

async fn rebook_displaced_moves_patients_off_an_absence_and_a_hospital_cancellation(
    backend: Backend,
) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let on_leave = day_slot(&mut app, &clinic, "2026-06-01", 2).await;
    let spare_soon = day_slot(&mut app, &clinic, "2026-06-08", 1).await;
    let spare_late = day_slot(&mut app, &clinic, "2026-06-22", 1).await;
    let cancelled_clinic = day_slot(&mut app, &clinic, "2026-06-15", 1).await;
    let (ada, bo, cy) = (patient(), patient(), patient());
    let urgent = referral(&mut app, &ada, pb::Priority::Urgent, "2026-05-20").await;
    let routine = referral(&mut app, &bo, pb::Priority::Routine, "2026-04-01").await;
    let third = referral(&mut app, &cy, pb::Priority::Routine, "2026-03-01").await;
    let a = app.book(&on_leave.id, &ada, &urgent.id).await.unwrap();
    let b = app.book(&on_leave.id, &bo, &routine.id).await.unwrap();
    let c = app
        .book(&cancelled_clinic.id, &cy, &third.id)
        .await
        .unwrap();

    let absence = app
        .client
        .create_absence(pb::CreateAbsenceRequest {
            absence: Some(pb::Absence {
                clinician_id: clinic.clinician.clone(),
                start_time: Some(crate::helpers::ts("2026-06-01T00:00:00Z")),
                end_time: Some(crate::helpers::ts("2026-06-02T00:00:00Z")),
                reason: pb::AbsenceReason::Sickness as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(absence.displaced_appointments.len(), 2);
    let rebooked = app
        .client
        .rebook_displaced(pb::RebookDisplacedRequest {
            absence_id: absence.id.clone(),
            horizon_start: "2026-06-01".into(),
            horizon_end: "2026-06-30".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rebooked.optimal);
    assert!(rebooked.not_moved.is_empty(), "{rebooked:?}");
    let to = |appointment: &pb::Appointment| {
        rebooked
            .moves
            .iter()
            .find(|m| m.from_appointment_id == appointment.id)
            .map(|m| (m.to_slot_id.clone(), m.appointment_id.clone()))
            .unwrap()
    };
    // Both patients have waited past... the urgent one's due date (28 days
    // from 20 May is 17 June) makes the soon slot worth more to her.
    assert_eq!(to(&a), (spare_soon.id.clone(), a.id.clone()));
    assert_eq!(to(&b), (spare_late.id.clone(), b.id.clone()));
    let moved = app
        .client
        .get_appointment(pb::GetAppointmentRequest { id: a.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.slot_id, spare_soon.id);
    assert_eq!(app.get_slot(&on_leave.id).await.booked, 0);
    let clock = app
        .client
        .get_referral(pb::GetReferralRequest {
            id: urgent.id.clone(),
            as_of: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(clock.clock_start, "2026-05-20", "original clock kept");

    // Again: nothing left displaced.
    let again = app
        .client
        .rebook_displaced(pb::RebookDisplacedRequest {
            absence_id: absence.id.clone(),
            horizon_start: "2026-06-01".into(),
            horizon_end: "2026-06-30".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.moves.is_empty());

    // A hospital cancellation: Cy's referral is booked anew. No slot is free
    // until one is added.
    app.client
        .cancel_appointment(pb::CancelAppointmentRequest {
            id: c.id.clone(),
            cancelled_by: pb::CancelledBy::Hospital as i32,
            reason: "clinic cancelled".into(),
        })
        .await
        .unwrap();
    let extra = day_slot(&mut app, &clinic, "2026-06-29", 1).await;
    let rebooked = app
        .client
        .rebook_displaced(pb::RebookDisplacedRequest {
            appointment_ids: vec![c.id.clone()],
            horizon_start: "2026-06-01".into(),
            horizon_end: "2026-06-30".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rebooked.moves.len(), 1);
    let new = &rebooked.moves[0];
    assert_eq!(new.to_slot_id, extra.id, "not the cancelled clinic's slot");
    assert_ne!(new.appointment_id, c.id);
    assert_eq!(new.referral_id, third.id);

    // A booked appointment in a working slot is not displaced.
    let status = app
        .client
        .rebook_displaced(pb::RebookDisplacedRequest {
            appointment_ids: vec![new.appointment_id.clone()],
            horizon_start: "2026-06-01".into(),
            horizon_end: "2026-06-30".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_precondition(&status, "booked");
}

async fn offer_freed_slot_holds_it_for_the_best_waiting_referral(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let slot = day_slot(&mut app, &clinic, "2026-06-01", 1).await;
    let (ada, bo) = (patient(), patient());
    let leaving = referral(&mut app, &ada, pb::Priority::Routine, "2026-01-01").await;
    let booked = app.book(&slot.id, &ada, &leaving.id).await.unwrap();
    let longest = referral(&mut app, &bo, pb::Priority::Routine, "2026-01-05").await;
    referral(&mut app, &patient(), pb::Priority::Routine, "2026-03-01").await;

    let until = chrono::Utc::now() + chrono::Duration::hours(2);
    let hold_until = prost_types::Timestamp {
        seconds: until.timestamp(),
        nanos: 0,
    };
    let request = pb::OfferFreedSlotRequest {
        slot_id: slot.id.clone(),
        hold_until: Some(hold_until),
    };
    let status = app
        .client
        .offer_freed_slot(request.clone())
        .await
        .unwrap_err();
    assert_precondition(&status, "busy");

    app.client
        .cancel_appointment(pb::CancelAppointmentRequest {
            id: booked.id,
            cancelled_by: pb::CancelledBy::Patient as i32,
            reason: "moving away".into(),
        })
        .await
        .unwrap();
    let offer = app
        .client
        .offer_freed_slot(request.clone())
        .await
        .unwrap()
        .into_inner();
    // The longest routine waiter gains most by being seen now.
    let referral = offer.referral.unwrap();
    // Ada's referral (waiting again, and longer-waiting than the third) is
    // not offered the slot she has just given up.
    assert_eq!(referral.id, longest.id, "not {}", leaving.id);
    let held = offer.slot.unwrap();
    assert_eq!(held.state(), pb::SlotState::BusyTentative);
    assert_eq!(held.held_for_referral_id, longest.id);
    assert_eq!(offer.wait_days, 147);
    assert_eq!(
        app.get_slot(&slot.id).await.state(),
        pb::SlotState::BusyTentative
    );

    let status = app.client.offer_freed_slot(request).await.unwrap_err();
    assert_precondition(&status, "busy-tentative");
    // Only the offered referral may take it meanwhile.
    let status = app.book(&slot.id, &patient(), "").await.unwrap_err();
    assert_precondition(&status, "busy-tentative");
    let free = app
        .client
        .list_slots(pb::ListSlotsRequest {
            free_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .slots;
    assert!(free.is_empty(), "a held slot is not free");
    let taken = app.book(&slot.id, &bo, &longest.id).await.unwrap();
    assert_eq!(taken.slot_id, slot.id);
    let after = app.get_slot(&slot.id).await;
    assert_eq!(after.state(), pb::SlotState::Busy);
    assert!(after.held_for_referral_id.is_empty());
}

async fn offer(app: &mut TestApp, slot_id: &str) -> Result<pb::SlotOffer, tonic::Status> {
    let until = chrono::Utc::now() + chrono::Duration::hours(2);
    app.client
        .offer_freed_slot(pb::OfferFreedSlotRequest {
            slot_id: slot_id.into(),
            hold_until: Some(prost_types::Timestamp {
                seconds: until.timestamp(),
                nanos: 0,
            }),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn a_hold_ends_when_its_referral_is_booked_elsewhere_or_removed(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let held = day_slot(&mut app, &clinic, "2026-06-01", 1).await;
    let elsewhere = day_slot(&mut app, &clinic, "2026-06-10", 1).await;
    let (bo, cy) = (patient(), patient());
    let longest = referral(&mut app, &bo, pb::Priority::Routine, "2026-01-05").await;
    let next = referral(&mut app, &cy, pb::Priority::Routine, "2026-03-01").await;

    let offered = offer(&mut app, &held.id).await.unwrap();
    assert_eq!(offered.referral.unwrap().id, longest.id);
    assert_eq!(
        app.get_slot(&held.id).await.state(),
        pb::SlotState::BusyTentative
    );
    // The slot held for Bo is his to take: BookBestSlot sees it.
    let best = app
        .client
        .book_best_slot(pb::BookBestSlotRequest {
            referral_id: longest.id.clone(),
            from_date: "2026-06-01".into(),
            to_date: "2026-06-30".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(best.candidates[0].slot.as_ref().unwrap().id, held.id);

    // Bo is booked elsewhere: the hold ends, and the slot is anyone's.
    app.book(&elsewhere.id, &bo, &longest.id).await.unwrap();
    let freed = app.get_slot(&held.id).await;
    assert_eq!(freed.state(), pb::SlotState::Free);
    assert!(freed.held_for_referral_id.is_empty());
    let walk_in = app.book(&held.id, &patient(), "").await.unwrap();
    app.client
        .cancel_appointment(pb::CancelAppointmentRequest {
            id: walk_in.id,
            cancelled_by: pb::CancelledBy::Patient as i32,
            reason: "moving away".into(),
        })
        .await
        .unwrap();

    // Offered to Cy, who is then removed from the list: the hold ends too.
    let offered = offer(&mut app, &held.id).await.unwrap();
    assert_eq!(offered.referral.unwrap().id, next.id);
    app.client
        .remove_referral(pb::RemoveReferralRequest {
            id: next.id.clone(),
            reason: "treated elsewhere".into(),
        })
        .await
        .unwrap();
    let freed = app.get_slot(&held.id).await;
    assert_eq!(freed.state(), pb::SlotState::Free);
    assert!(freed.held_for_referral_id.is_empty());
    app.book(&held.id, &patient(), "").await.unwrap();

    // A slot is never held for a referral no longer waiting.
    let spare = day_slot(&mut app, &clinic, "2026-06-02", 1).await;
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).timestamp();
    let refused = medsec_scheduling::store::optimise::hold(
        &app.db,
        uuid::Uuid::parse_str(&spare.id).unwrap(),
        uuid::Uuid::parse_str(&next.id).unwrap(),
        until,
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("removed"), "{refused}");
    assert_eq!(app.get_slot(&spare.id).await.state(), pb::SlotState::Free);
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
    let refused = &committed.not_booked[0];
    assert_eq!(refused.referral_id, first.id);
    assert!(
        refused.not_booked_reason.contains(&format!(
            "the patient is unavailable from {ada_date} to {ada_date}"
        )),
        "{}",
        refused.not_booked_reason
    );
    assert_eq!(app.get_slot(&refused.slot_id).await.booked, 0);
    let waiting = app
        .client
        .get_referral(pb::GetReferralRequest {
            id: first.id.clone(),
            as_of: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
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
    let follow_up = app
        .client
        .create_slot(pb::CreateSlotRequest {
            slot: Some(follow_up),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let status = app
        .client
        .reschedule_appointment(pb::RescheduleAppointmentRequest {
            id: bo_appointment.clone(),
            new_slot_id: follow_up.id.clone(),
        })
        .await
        .unwrap_err();
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

async fn a_displaced_appointment_is_moved_once(backend: Backend) {
    use medsec_scheduling::store::entities::appointment;
    use medsec_scheduling::store::optimise::{self, PlannedMove};
    use sea_orm::EntityTrait as _;

    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let on_leave = day_slot(&mut app, &clinic, "2026-06-01", 2).await;
    let spares = [
        day_slot(&mut app, &clinic, "2026-06-08", 1).await,
        day_slot(&mut app, &clinic, "2026-06-15", 1).await,
        day_slot(&mut app, &clinic, "2026-06-22", 1).await,
    ];
    let (ada, bo) = (patient(), patient());
    let first = referral(&mut app, &ada, pb::Priority::Urgent, "2026-05-20").await;
    let second = referral(&mut app, &bo, pb::Priority::Routine, "2026-04-01").await;
    let a = app.book(&on_leave.id, &ada, &first.id).await.unwrap();
    let b = app.book(&on_leave.id, &bo, &second.id).await.unwrap();
    let a_id = uuid::Uuid::parse_str(&a.id).unwrap();
    let stale = appointment::Entity::find_by_id(a_id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let absence = app
        .client
        .create_absence(pb::CreateAbsenceRequest {
            absence: Some(pb::Absence {
                clinician_id: clinic.clinician.clone(),
                start_time: Some(crate::helpers::ts("2026-06-01T00:00:00Z")),
                end_time: Some(crate::helpers::ts("2026-06-02T00:00:00Z")),
                reason: pb::AbsenceReason::Sickness as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let request = pb::RebookDisplacedRequest {
        absence_id: absence.id.clone(),
        horizon_start: "2026-06-01".into(),
        horizon_end: "2026-06-30".into(),
        ..Default::default()
    };
    // Several runs at once: one takes the lock, the others are refused or
    // find nothing left; each appointment is moved exactly once.
    let calls = (0..4).map(|_| {
        let mut client = app.client.clone();
        let request = request.clone();
        async move { client.rebook_displaced(request).await }
    });
    let mut moved = Vec::new();
    for result in futures::future::join_all(calls).await {
        match result {
            Ok(reply) => moved.extend(reply.into_inner().moves),
            Err(status) => assert_precondition(&status, "being optimised"),
        }
    }
    let again = app
        .client
        .rebook_displaced(request)
        .await
        .unwrap()
        .into_inner();
    moved.extend(again.moves);
    let mut from: Vec<&str> = moved
        .iter()
        .map(|m| m.from_appointment_id.as_str())
        .collect();
    from.sort();
    let mut expected = vec![a.id.as_str(), b.id.as_str()];
    expected.sort();
    assert_eq!(from, expected, "{moved:?}");
    assert_eq!(app.get_slot(&on_leave.id).await.booked, 0);
    let mut taken = 0;
    for spare in &spares {
        taken += app.get_slot(&spare.id).await.booked;
    }
    assert_eq!(taken, 2);

    // A move planned from where the appointment was before it was moved is
    // not applied again.
    let now_in = moved
        .iter()
        .find(|m| m.from_appointment_id == a.id)
        .unwrap()
        .to_slot_id
        .clone();
    let free = spares
        .iter()
        .find(|s| s.id != now_in && moved.iter().all(|m| m.to_slot_id != s.id))
        .unwrap();
    let results = optimise::apply_moves(
        &app.db,
        &[PlannedMove {
            from: stale,
            slot_id: uuid::Uuid::parse_str(&free.id).unwrap(),
        }],
    )
    .await
    .unwrap();
    let reason = results[0].as_ref().unwrap_err();
    assert!(reason.contains("moved meanwhile"), "{reason}");
    let unmoved = app
        .client
        .get_appointment(pb::GetAppointmentRequest { id: a.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unmoved.slot_id, now_in);
    assert_eq!(app.get_slot(&free.id).await.booked, 0);
    assert_eq!(app.get_slot(&now_in).await.booked, 1);
}
