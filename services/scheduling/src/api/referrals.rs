//! The waiting list and its report.

use chrono::{NaiveDate, Utc};
use medsec_platform::ApiError;
use medsec_platform::pagination::PageRequest;
use medsec_platform::time::{format_civil_date, to_timestamp};
use medsec_proto::scheduling::v1 as pb;

use super::SchedulingApi;
use prost::Message as _;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use tonic::Request;
use uuid::Uuid;

use super::convert::{Reader, present, request_key};
use crate::domain::{Kind, Priority, ReferralStatus, Role, rtt, text};
use crate::store::entities::referral;
use crate::store::{referrals, staff};

/// One stored unavailable period.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Period {
    from: String,
    to: String,
}

pub(super) async fn create(
    api: &SchedulingApi,
    request: Request<pb::CreateReferralRequest>,
) -> Result<pb::Referral, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let Some(input) = request.referral.clone() else {
        return Err(ApiError::invalid("referral", "is required"));
    };
    let mut r = Reader::new();
    r.request_id(&request.request_id);
    let patient_id = r.id("referral.patient_id", &input.patient_id);
    let specialty = r.check("referral.specialty", text::specialty(&input.specialty));
    let priority = r.check("referral.priority", Priority::from_proto(input.priority));
    let clock_start = r.date("referral.clock_start", &input.clock_start);
    let kind = r.check("referral.kind", Kind::from_proto(input.kind));
    let earliest = r.optional_date("referral.earliest", &input.earliest);
    let periods = parse_periods(&mut r, &input.unavailable);
    let required = r.optional_id("referral.required_clinician", &input.required_clinician);
    let preferred = r.optional_id("referral.preferred_clinician", &input.preferred_clinician);
    if let Some(start) = clock_start
        && start > medsec_platform::time::today_in_london() + chrono::Duration::days(1)
    {
        r.add("referral.clock_start", "must not be in the future");
    }
    r.finish()?;
    let specialty = present(specialty, "referral.specialty")?;
    check_clinicians(db, &specialty, required, preferred).await?;
    let key = request_key(
        &request.request_id,
        pb::CreateReferralRequest {
            request_id: String::new(),
            ..request.clone()
        }
        .encode_to_vec(),
    );
    let now = Utc::now();
    let row = referral::Model {
        id: Uuid::now_v7(),
        patient_id: present(patient_id, "referral.patient_id")?,
        specialty,
        priority: present(priority, "referral.priority")?.as_str().to_owned(),
        clock_start: present(clock_start, "referral.clock_start")?,
        kind: present(kind, "referral.kind")?.as_str().to_owned(),
        earliest,
        unavailable: serde_json::to_string(&periods).map_err(ApiError::internal)?,
        required_clinician: required,
        preferred_clinician: preferred,
        status: ReferralStatus::Waiting.as_str().to_owned(),
        removal_reason: None,
        create_time: now,
        update_time: now,
        revision: 1,
    };
    let created = referrals::create(db, key.as_ref(), row).await?;
    Ok(referral_to_proto(
        &created,
        medsec_platform::time::today_in_london(),
    ))
}

/// The unavailable periods of a referral in a request, checked.
fn parse_periods(r: &mut Reader, ranges: &[pb::DateRange]) -> Vec<Period> {
    let mut periods = Vec::new();
    for (i, range) in ranges.iter().enumerate() {
        let from = r.date(&format!("referral.unavailable[{i}].from"), &range.from);
        let to = r.date(&format!("referral.unavailable[{i}].to"), &range.to);
        if let (Some(from), Some(to)) = (from, to) {
            if to < from {
                r.add(
                    &format!("referral.unavailable[{i}].to"),
                    "must not be before from",
                );
            } else {
                periods.push(Period {
                    from: format_civil_date(from),
                    to: format_civil_date(to),
                });
            }
        }
    }
    periods
}

/// A required or preferred clinician must be a clinician of the specialty.
async fn check_clinicians(
    db: &DatabaseConnection,
    specialty: &str,
    required: Option<Uuid>,
    preferred: Option<Uuid>,
) -> Result<(), ApiError> {
    for (field, clinician) in [
        ("referral.required_clinician", required),
        ("referral.preferred_clinician", preferred),
    ] {
        if let Some(id) = clinician {
            let member = staff::get_staff(db, id).await?;
            if member.role != Role::Clinician.as_str() {
                return Err(ApiError::invalid(field, "is not a clinician"));
            }
            if !crate::store::split_list(&member.specialties).contains(&specialty.to_owned()) {
                return Err(ApiError::invalid(
                    field,
                    "does not work in the referral's specialty",
                ));
            }
        }
    }
    Ok(())
}

/// The field-mask paths UpdateReferral accepts.
const UPDATABLE: &[&str] = &[
    "priority",
    "earliest",
    "unavailable",
    "required_clinician",
    "preferred_clinician",
];

pub(super) async fn update(
    api: &SchedulingApi,
    request: Request<pb::UpdateReferralRequest>,
) -> Result<pb::Referral, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let Some(input) = request.referral else {
        return Err(ApiError::invalid("referral", "is required"));
    };
    let paths = request
        .update_mask
        .map(|mask| mask.paths)
        .unwrap_or_default();
    let mut r = Reader::new();
    let id = r.id("referral.id", &input.id);
    let revision = r.check(
        "referral.etag",
        match input.etag.as_str() {
            "" => Ok(None),
            etag => etag
                .parse::<i64>()
                .map(Some)
                .map_err(|_| "is not an etag this API issued"),
        },
    );
    if paths.is_empty() {
        r.add(
            "update_mask",
            "is required: name the fields to change, or \"*\" for all",
        );
    }
    for path in &paths {
        if path != "*" && !UPDATABLE.contains(&path.as_str()) {
            r.add(
                "update_mask",
                format!(
                    "unknown or fixed field {path:?}; updatable: {}",
                    UPDATABLE.join(", ")
                ),
            );
        }
    }
    let wants = |field: &str| paths.iter().any(|path| path == "*" || path == field);
    let priority = wants("priority")
        .then(|| r.check("referral.priority", Priority::from_proto(input.priority)))
        .flatten();
    let earliest = wants("earliest").then(|| r.optional_date("referral.earliest", &input.earliest));
    let periods = wants("unavailable").then(|| parse_periods(&mut r, &input.unavailable));
    let required = wants("required_clinician")
        .then(|| r.optional_id("referral.required_clinician", &input.required_clinician));
    let preferred = wants("preferred_clinician")
        .then(|| r.optional_id("referral.preferred_clinician", &input.preferred_clinician));
    r.finish()?;
    let id = present(id, "referral.id")?;
    let revision = present(revision, "referral.etag")?;
    if wants("priority") && priority.is_none() {
        return Err(ApiError::invalid("referral.priority", "is required"));
    }

    let current = referrals::get(db, id).await?;
    check_clinicians(
        db,
        &current.specialty,
        required.flatten(),
        preferred.flatten(),
    )
    .await?;
    let unavailable = periods
        .map(|periods| serde_json::to_string(&periods).map_err(ApiError::internal))
        .transpose()?;
    let change = referrals::ReferralChange {
        priority: priority.map(|p| p.as_str().to_owned()),
        earliest,
        unavailable,
        required_clinician: required,
        preferred_clinician: preferred,
    };
    let updated = referrals::update(db, id, revision, change).await?;
    Ok(referral_to_proto(
        &updated,
        medsec_platform::time::today_in_london(),
    ))
}

pub(crate) fn referral_to_proto(row: &referral::Model, as_of: NaiveDate) -> pb::Referral {
    let priority = Priority::from_stored(&row.priority);
    let periods: Vec<Period> = serde_json::from_str(&row.unavailable).unwrap_or_default();
    pb::Referral {
        id: row.id.to_string(),
        patient_id: row.patient_id.to_string(),
        specialty: row.specialty.clone(),
        priority: Priority::stored_to_proto(&row.priority),
        clock_start: format_civil_date(row.clock_start),
        kind: Kind::stored_to_proto(&row.kind),
        earliest: row.earliest.map(format_civil_date).unwrap_or_default(),
        unavailable: periods
            .into_iter()
            .map(|p| pb::DateRange {
                from: p.from,
                to: p.to,
            })
            .collect(),
        required_clinician: row
            .required_clinician
            .map(|id| id.to_string())
            .unwrap_or_default(),
        preferred_clinician: row
            .preferred_clinician
            .map(|id| id.to_string())
            .unwrap_or_default(),
        status: ReferralStatus::stored_to_proto(&row.status),
        removal_reason: row.removal_reason.clone().unwrap_or_default(),
        due: priority
            .map(|p| format_civil_date(rtt::due_date(row.clock_start, p)))
            .unwrap_or_default(),
        weeks_waited: i32::try_from(rtt::weeks_waited(row.clock_start, as_of)).unwrap_or(i32::MAX),
        create_time: Some(to_timestamp(row.create_time)),
        update_time: Some(to_timestamp(row.update_time)),
        etag: row.revision.to_string(),
    }
}

pub(super) async fn get(
    api: &SchedulingApi,
    request: Request<pb::GetReferralRequest>,
) -> Result<pb::Referral, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let as_of = r.as_of("as_of", &request.as_of);
    r.finish()?;
    Ok(referral_to_proto(
        &referrals::get(db, present(id, "id")?).await?,
        as_of,
    ))
}

pub(super) async fn list(
    api: &SchedulingApi,
    request: Request<pb::ListReferralsRequest>,
) -> Result<pb::ListReferralsResponse, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let specialty = if request.specialty.is_empty() {
        None
    } else {
        r.check("specialty", text::specialty(&request.specialty))
    };
    let filter = referrals::ReferralFilter {
        specialty,
        status: r
            .check(
                "status",
                ReferralStatus::from_proto_optional(request.status),
            )
            .flatten()
            .map(|s| s.as_str().to_owned()),
        patient_id: r.optional_id("patient_id", &request.patient_id),
    };
    let as_of = r.as_of("as_of", &request.as_of);
    r.finish()?;
    let page = PageRequest::parse(
        request.page_size,
        &request.page_token,
        &format!("{filter:?}"),
    )?;
    let mut rows = referrals::list(db, &filter, &page).await?;
    let next_page_token = page.finish(&mut rows, |row| row.id.to_string());
    Ok(pb::ListReferralsResponse {
        referrals: rows
            .iter()
            .map(|row| referral_to_proto(row, as_of))
            .collect(),
        next_page_token,
    })
}

pub(super) async fn remove(
    api: &SchedulingApi,
    request: Request<pb::RemoveReferralRequest>,
) -> Result<pb::Referral, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let reason = r.check("reason", text::required_text(&request.reason));
    r.finish()?;
    let id = present(id, "id")?;
    let removed = referrals::remove(db, id, &present(reason, "reason")?).await?;
    Ok(referral_to_proto(
        &removed,
        medsec_platform::time::today_in_london(),
    ))
}

pub(super) async fn report(
    api: &SchedulingApi,
    request: Request<pb::GetWaitingListReportRequest>,
) -> Result<pb::WaitingListReport, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let specialty = r.check("specialty", text::specialty(&request.specialty));
    let as_of = r.as_of("as_of", &request.as_of);
    let projected_at = r.optional_date("projected_at", &request.projected_at);
    if projected_at.is_some_and(|at| at < as_of) {
        r.add("projected_at", "must not be before as_of");
    }
    r.finish()?;
    let specialty = present(specialty, "specialty")?;
    let waiting = referrals::waiting(db, &specialty).await?;
    let mut counts = [0i32; rtt::BAND_STARTS.len()];
    let (mut breaches, mut projected) = (0, 0);
    for row in &waiting {
        counts[rtt::band(rtt::weeks_waited(row.clock_start, as_of))] += 1;
        let Some(priority) = Priority::from_stored(&row.priority) else {
            continue;
        };
        if rtt::breached(row.clock_start, priority, as_of) {
            breaches += 1;
        }
        if projected_at.is_some_and(|at| rtt::breached(row.clock_start, priority, at)) {
            projected += 1;
        }
    }
    let bands = rtt::BAND_STARTS
        .iter()
        .enumerate()
        .map(|(i, start)| pb::WeeksWaitedBand {
            min_weeks: i32::try_from(*start).unwrap_or(0),
            max_weeks: rtt::BAND_STARTS
                .get(i + 1)
                .map_or(0, |end| i32::try_from(*end).unwrap_or(0)),
            count: counts[i],
        })
        .collect();
    Ok(pb::WaitingListReport {
        specialty,
        as_of: format_civil_date(as_of),
        waiting: i32::try_from(waiting.len()).unwrap_or(i32::MAX),
        bands,
        breaches,
        projected_at: projected_at.map(format_civil_date).unwrap_or_default(),
        projected_breaches: projected,
    })
}
