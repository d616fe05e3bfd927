use medsec_platform::both_backends;
use medsec_platform::testing::Backend;
use medsec_proto::scheduling::v1 as pb;

use crate::helpers::{TestApp, assert_precondition, spawn_app, ts, violated_fields};

both_backends!(routes_enquiries_to_someone_on_duty);

async fn member(
    app: &mut TestApp,
    name: &str,
    role: pb::StaffRole,
    skills: &[pb::EnquiryCategory],
    manager: bool,
    on_duty: bool,
) -> String {
    let id = app
        .staff(pb::StaffMember {
            name: name.into(),
            role: role as i32,
            skills: skills.iter().map(|s| *s as i32).collect(),
            duty_manager: manager,
            ..Default::default()
        })
        .await
        .id;
    let (start, end) = if on_duty {
        ("2026-03-02T08:00:00Z", "2026-03-02T17:00:00Z")
    } else {
        ("2026-03-03T08:00:00Z", "2026-03-03T17:00:00Z")
    };
    app.shift(&id, start, end).await;
    id
}

fn call(category: pb::EnquiryCategory, at: &str) -> pb::RouteEnquiryRequest {
    pb::RouteEnquiryRequest {
        category: category as i32,
        urgency: pb::Urgency::Routine as i32,
        patient_id: uuid::Uuid::now_v7().to_string(),
        summary: "wants to know when".into(),
        as_of: Some(ts(at)),
        request_id: String::new(),
    }
}

async fn routes_enquiries_to_someone_on_duty(backend: Backend) {
    let mut app = spawn_app(backend).await;
    use pb::EnquiryCategory::*;
    let amy = member(
        &mut app,
        "Amy",
        pb::StaffRole::Secretary,
        &[Appointments],
        false,
        true,
    )
    .await;
    let ben = member(
        &mut app,
        "Ben",
        pb::StaffRole::Secretary,
        &[Appointments, Other],
        false,
        true,
    )
    .await;
    let _clerk = member(
        &mut app,
        "Cal",
        pb::StaffRole::BillingClerk,
        &[Billing],
        false,
        false,
    )
    .await;
    let manager = member(&mut app, "Dee", pb::StaffRole::Manager, &[], true, true).await;
    let now = "2026-03-02T10:00:00Z";

    let first = app
        .client
        .route_enquiry(call(Appointments, now))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.assigned_staff_member_id, amy, "ties go by name");
    assert!(
        first.routing_reason.contains("appointments"),
        "{}",
        first.routing_reason
    );
    let second = app
        .client
        .route_enquiry(call(Appointments, now))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        second.assigned_staff_member_id, ben,
        "fewest open enquiries"
    );
    // The billing clerk is off duty today: the duty manager takes it.
    let billing = app
        .client
        .route_enquiry(call(Billing, now))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(billing.assigned_staff_member_id, manager);
    assert!(billing.routing_reason.contains("duty manager"));
    // Tomorrow only the clerk is on duty.
    let tomorrow = app
        .client
        .route_enquiry(call(Appointments, "2026-03-03T10:00:00Z"))
        .await
        .unwrap_err();
    assert_precondition(&tomorrow, "no duty manager");

    let resolved = app
        .client
        .resolve_enquiry(pb::ResolveEnquiryRequest {
            id: first.id.clone(),
            notes: "gave date".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.status(), pb::EnquiryStatus::Resolved);
    assert!(resolved.resolve_time.is_some());
    let again = app
        .client
        .resolve_enquiry(pb::ResolveEnquiryRequest {
            id: first.id.clone(),
            notes: "x".into(),
        })
        .await
        .unwrap_err();
    assert_precondition(&again, "resolved");
    // Amy is free again, so she gets the next one.
    let third = app
        .client
        .route_enquiry(call(Appointments, now))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(third.assigned_staff_member_id, amy);

    let open_for_amy = app
        .client
        .list_enquiries(pb::ListEnquiriesRequest {
            assigned_staff_member_id: amy.clone(),
            status: pb::EnquiryStatus::Open as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(open_for_amy.enquiries.len(), 1);
    assert_eq!(open_for_amy.enquiries[0].id, third.id);

    let status = app
        .client
        .route_enquiry(pb::RouteEnquiryRequest {
            category: 0,
            urgency: 0,
            summary: String::new(),
            ..call(Other, now)
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["category", "urgency", "summary"]);
    // A retried call replays the first routing and logs nothing new, even
    // though the load has changed since; the same key with another call is
    // refused.
    let keyed = pb::RouteEnquiryRequest {
        request_id: "call-0931".into(),
        ..call(Appointments, now)
    };
    let routed = app
        .client
        .route_enquiry(keyed.clone())
        .await
        .unwrap()
        .into_inner();
    let replayed = app
        .client
        .route_enquiry(keyed.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed, routed);
    let reused = app
        .client
        .route_enquiry(pb::RouteEnquiryRequest {
            summary: "another caller".into(),
            ..keyed
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&reused), ["request_id"]);
}
