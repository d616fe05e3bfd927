//! The waiting list and its report.

use chrono::NaiveDate;
use medsec_platform::audit::Actor;
use medsec_platform::pagination::keys;
use medsec_platform::time::{format_civil_date, to_timestamp, today_in_london};
use medsec_platform::{ApiError, Reader};
use medsec_proto::scheduling::v1 as pb;
use tonic::Request;

use super::SchedulingApi;
use crate::domain::referral::{
    Funding, Mask, NewReferral, Period, ReferralChange, check_clock_start, read_periods,
};
use crate::domain::text::{MAX_TEXT_CHARS, optional_specialty, read_specialty};
use crate::domain::{Kind, Priority, ReferralStatus, rtt, span};
use crate::store::entities::referral;
use crate::store::referrals::{self, ReferralFilter};

pub(super) async fn create(
    api: &SchedulingApi,
    request: Request<pb::CreateReferralRequest>,
) -> Result<pb::Referral, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let input = r.message("referral", request.referral.as_ref())?;
    let patient_id = r.id("referral.patient_id", &input.patient_id);
    let specialty = read_specialty(&mut r, "referral.specialty", &input.specialty);
    let priority = r.enumerated::<Priority>("referral.priority", input.priority);
    let clock_start = r.date("referral.clock_start", &input.clock_start);
    let kind = r.enumerated::<Kind>("referral.kind", input.kind);
    let earliest = r.optional_date("referral.earliest", &input.earliest);
    let unavailable = read_periods(&mut r, "referral.unavailable", ranges(&input.unavailable));
    let required_clinician =
        r.optional_id("referral.required_clinician", &input.required_clinician);
    let preferred_clinician =
        r.optional_id("referral.preferred_clinician", &input.preferred_clinician);
    check_clock_start(
        &mut r,
        "referral.clock_start",
        clock_start,
        today_in_london(),
    );
    let funding = read_funding(&mut r, "referral.funding", input.funding.as_ref());
    let (patient_id, specialty, priority, clock_start, kind, funding) =
        r.finish((patient_id, specialty, priority, clock_start, kind, funding))?;
    api.patients
        .ensure_active("referral.patient_id", patient_id)
        .await?;
    let new = NewReferral {
        patient_id,
        specialty,
        priority,
        clock_start,
        kind,
        earliest,
        unavailable,
        required_clinician,
        preferred_clinician,
        funding,
    };
    let created = referrals::create(&api.db, key.as_ref(), new, &actor).await?;
    Ok(referral_to_proto(&created, today_in_london()))
}

/// A request's funding; absent: the NHS.
fn read_funding(r: &mut Reader, field: &str, funding: Option<&pb::Funding>) -> Option<Funding> {
    match funding {
        None => Some(Funding::Nhs),
        Some(funding) => Funding::read(
            r,
            field,
            funding.kind,
            &funding.insurer_name,
            &funding.policy_number,
            &funding.preauthorisation_code,
        ),
    }
}

pub(crate) fn funding_to_proto(funding: &Funding) -> pb::Funding {
    match funding {
        Funding::Nhs => pb::Funding {
            kind: pb::FundingKind::Nhs as i32,
            ..Default::default()
        },
        Funding::SelfPay => pb::Funding {
            kind: pb::FundingKind::SelfPay as i32,
            ..Default::default()
        },
        Funding::Insurer {
            name,
            policy_number,
            preauthorisation_code,
        } => pb::Funding {
            kind: pb::FundingKind::Insurer as i32,
            insurer_name: name.clone(),
            policy_number: policy_number.clone(),
            preauthorisation_code: preauthorisation_code.clone().unwrap_or_default(),
        },
    }
}

/// The `(from, to)` texts of a request's date ranges.
fn ranges(ranges: &[pb::DateRange]) -> impl ExactSizeIterator<Item = (&str, &str)> {
    ranges
        .iter()
        .map(|range| (range.from.as_str(), range.to.as_str()))
}

pub(super) async fn update(
    api: &SchedulingApi,
    request: Request<pb::UpdateReferralRequest>,
) -> Result<pb::Referral, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let input = r.message("referral", request.referral.as_ref())?;
    let id = r.id("referral.id", &input.id);
    let revision = r.etag("referral.etag", &input.etag);
    let mask = r
        .mask_paths(request.update_mask.as_ref())
        .map(|paths| Mask::read(&mut r, paths.to_vec()))
        .unwrap_or_default();
    let change = ReferralChange {
        priority: mask
            .wants("priority")
            .then(|| r.enumerated::<Priority>("referral.priority", input.priority))
            .flatten(),
        earliest: mask
            .wants("earliest")
            .then(|| r.optional_date("referral.earliest", &input.earliest)),
        unavailable: mask
            .wants("unavailable")
            .then(|| read_periods(&mut r, "referral.unavailable", ranges(&input.unavailable))),
        required_clinician: mask
            .wants("required_clinician")
            .then(|| r.optional_id("referral.required_clinician", &input.required_clinician)),
        preferred_clinician: mask
            .wants("preferred_clinician")
            .then(|| r.optional_id("referral.preferred_clinician", &input.preferred_clinician)),
        funding: mask
            .wants("funding")
            .then(|| read_funding(&mut r, "referral.funding", input.funding.as_ref()))
            .flatten(),
    };
    let id = r.finish(id)?;
    let updated = referrals::update(&api.db, id, revision, change, &actor).await?;
    Ok(referral_to_proto(&updated, today_in_london()))
}

pub(crate) fn referral_to_proto(row: &referral::Model, as_of: NaiveDate) -> pb::Referral {
    let priority = Priority::from_stored(&row.priority);
    pb::Referral {
        id: row.id.to_string(),
        patient_id: row.patient_id.to_string(),
        specialty: row.specialty.clone(),
        priority: Priority::stored_to_proto(&row.priority),
        clock_start: format_civil_date(row.clock_start),
        kind: Kind::stored_to_proto(&row.kind),
        earliest: row.earliest.map(format_civil_date).unwrap_or_default(),
        unavailable: row
            .unavailable_periods()
            .unwrap_or_default()
            .iter()
            .map(|Period { from, to }| pb::DateRange {
                from: format_civil_date(*from),
                to: format_civil_date(*to),
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
        funding: Some(funding_to_proto(&row.funding())),
        due: priority
            .map(|p| format_civil_date(rtt::due_date(row.clock_start, p)))
            .unwrap_or_default(),
        weeks_waited: count(rtt::weeks_waited(row.clock_start, as_of)),
        create_time: Some(to_timestamp(row.create_time)),
        update_time: Some(to_timestamp(row.update_time)),
        etag: row.revision.to_string(),
    }
}

pub(super) async fn get(
    api: &SchedulingApi,
    request: Request<pb::GetReferralRequest>,
) -> Result<pb::Referral, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let as_of = r.as_of("as_of", &request.as_of);
    let id = r.finish(id)?;
    Ok(referral_to_proto(
        &referrals::read(&api.db, id, &actor).await?,
        as_of,
    ))
}

pub(super) async fn list(
    api: &SchedulingApi,
    request: Request<pb::ListReferralsRequest>,
) -> Result<pb::ListReferralsResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let filter = ReferralFilter {
        specialty: optional_specialty(&mut r, "specialty", &request.specialty),
        status: r.optional_enum::<ReferralStatus>("status", request.status),
        patient_id: r.optional_id("patient_id", &request.patient_id),
    };
    let as_of = r.as_of("as_of", &request.as_of);
    let (size, token) = (request.page_size, &request.page_token);
    let page = r.finish_page("referrals", &filter, size, token)?;
    let rows = referrals::list(&api.db, &filter, &page, &actor).await?;
    let (referrals, next_page_token) = page.tail(
        rows,
        |row| keys::id(row.id),
        |row| referral_to_proto(row, as_of),
    );
    Ok(pb::ListReferralsResponse {
        referrals,
        next_page_token,
    })
}

pub(super) async fn remove(
    api: &SchedulingApi,
    request: Request<pb::RemoveReferralRequest>,
) -> Result<pb::Referral, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let reason = r.required_text("reason", &request.reason, MAX_TEXT_CHARS);
    let (id, reason) = r.finish((id, reason))?;
    let removed = referrals::remove(&api.db, id, &reason, &actor).await?;
    Ok(referral_to_proto(&removed, today_in_london()))
}

pub(super) async fn report(
    api: &SchedulingApi,
    request: Request<pb::GetWaitingListReportRequest>,
) -> Result<pb::WaitingListReport, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let specialty = read_specialty(&mut r, "specialty", &request.specialty);
    let as_of = r.as_of("as_of", &request.as_of);
    let projected_at = r.optional_date("projected_at", &request.projected_at);
    span::not_before(
        &mut r,
        "projected_at",
        "as_of",
        Some(as_of),
        projected_at,
        None,
    );
    let specialty = r.finish(specialty)?;
    let waiting = referrals::waiting(&api.db, &specialty).await?;
    let report = rtt::report(
        waiting
            .iter()
            .map(|row| (row.clock_start, Priority::from_stored(&row.priority))),
        as_of,
        projected_at,
    );
    Ok(pb::WaitingListReport {
        specialty,
        as_of: format_civil_date(as_of),
        waiting: count(report.waiting),
        bands: report
            .bands
            .iter()
            .map(|band| pb::WeeksWaitedBand {
                min_weeks: count(band.min_weeks),
                max_weeks: band.max_weeks.map_or(0, count),
                count: count(band.count),
            })
            .collect(),
        breaches: count(report.breaches),
        projected_at: projected_at.map(format_civil_date).unwrap_or_default(),
        projected_breaches: count(report.projected_breaches),
    })
}

/// A count or a number of weeks on the wire (`int32`), saturating.
fn count<N: TryInto<i32>>(n: N) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}
