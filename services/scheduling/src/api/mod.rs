//! The SchedulingService gRPC handlers. Each RPC reads its request into
//! checked values (INVALID_ARGUMENT naming every bad field), makes one store
//! call, and converts the result back; no SQL here, and the rules live in
//! `domain` and `store`.

mod appointments;
mod diary;
mod enquiries;
mod policy;
mod proposals;
mod rebooking;
mod referrals;
mod staff;

pub use policy::POLICY;

use crate::store::DatabaseConnection;
use medsec_platform::Settings;
use medsec_proto::scheduling::v1 as pb;
use medsec_proto::scheduling::v1::scheduling_service_server::SchedulingService;

/// SchedulingService over one database.
#[derive(Debug, Clone)]
pub struct SchedulingApi {
    db: DatabaseConnection,
    runs: proposals::Runs,
    /// Records, asked whether a patient may be booked or referred.
    patients: crate::patients::Patients,
}

impl SchedulingApi {
    pub fn new(
        db: DatabaseConnection,
        settings: &Settings,
        patients: crate::patients::Patients,
    ) -> Self {
        Self {
            db,
            runs: proposals::Runs::new(&settings.scheduling, settings.server.request_timeout()),
            patients,
        }
    }
}

medsec_platform::grpc_handlers! {
    SchedulingApi as SchedulingService, domain = "scheduling.medsec" {
        create_staff_member(pb::CreateStaffMemberRequest) -> pb::StaffMember = staff::create_member;
        get_staff_member(pb::GetStaffMemberRequest) -> pb::StaffMember = staff::get_member;
        list_staff_members(pb::ListStaffMembersRequest) -> pb::ListStaffMembersResponse = staff::list_members;
        create_location(pb::CreateLocationRequest) -> pb::Location = staff::create_location;
        list_locations(pb::ListLocationsRequest) -> pb::ListLocationsResponse = staff::list_locations;
        create_room(pb::CreateRoomRequest) -> pb::Room = staff::create_room;
        list_rooms(pb::ListRoomsRequest) -> pb::ListRoomsResponse = staff::list_rooms;
        create_duty_shift(pb::CreateDutyShiftRequest) -> pb::DutyShift = staff::create_shift;
        list_duty_shifts(pb::ListDutyShiftsRequest) -> pb::ListDutyShiftsResponse = staff::list_shifts;
        create_session_template(pb::CreateSessionTemplateRequest) -> pb::SessionTemplate = diary::create_template;
        list_session_templates(pb::ListSessionTemplatesRequest) -> pb::ListSessionTemplatesResponse = diary::list_templates;
        generate_slots(pb::GenerateSlotsRequest) -> pb::GenerateSlotsResponse = diary::generate_slots;
        create_slot(pb::CreateSlotRequest) -> pb::Slot = diary::create_slot;
        get_slot(pb::GetSlotRequest) -> pb::Slot = diary::get_slot;
        list_slots(pb::ListSlotsRequest) -> pb::ListSlotsResponse = diary::list_slots;
        create_absence(pb::CreateAbsenceRequest) -> pb::Absence = diary::create_absence;
        list_absences(pb::ListAbsencesRequest) -> pb::ListAbsencesResponse = diary::list_absences;
        get_diary(pb::GetDiaryRequest) -> pb::Diary = diary::get;
        book_appointment(pb::BookAppointmentRequest) -> pb::Appointment = appointments::book;
        get_appointment(pb::GetAppointmentRequest) -> pb::Appointment = appointments::get;
        list_appointments(pb::ListAppointmentsRequest) -> pb::ListAppointmentsResponse = appointments::list;
        cancel_appointment(pb::CancelAppointmentRequest) -> pb::Appointment = appointments::cancel;
        reschedule_appointment(pb::RescheduleAppointmentRequest) -> pb::Appointment = appointments::reschedule;
        create_referral(pb::CreateReferralRequest) -> pb::Referral = referrals::create;
        get_referral(pb::GetReferralRequest) -> pb::Referral = referrals::get;
        list_referrals(pb::ListReferralsRequest) -> pb::ListReferralsResponse = referrals::list;
        update_referral(pb::UpdateReferralRequest) -> pb::Referral = referrals::update;
        remove_referral(pb::RemoveReferralRequest) -> pb::Referral = referrals::remove;
        get_waiting_list_report(pb::GetWaitingListReportRequest) -> pb::WaitingListReport = referrals::report;
        route_enquiry(pb::RouteEnquiryRequest) -> pb::Enquiry = enquiries::route;
        get_enquiry(pb::GetEnquiryRequest) -> pb::Enquiry = enquiries::get;
        list_enquiries(pb::ListEnquiriesRequest) -> pb::ListEnquiriesResponse = enquiries::list;
        resolve_enquiry(pb::ResolveEnquiryRequest) -> pb::Enquiry = enquiries::resolve;
        mark_arrived(pb::MarkArrivedRequest) -> pb::Appointment = appointments::mark_arrived;
        mark_fulfilled(pb::MarkFulfilledRequest) -> pb::Appointment = appointments::mark_fulfilled;
        mark_did_not_attend(pb::MarkDidNotAttendRequest) -> pb::Appointment = appointments::mark_did_not_attend;
        propose_allocation(pb::ProposeAllocationRequest) -> pb::Proposal = proposals::propose;
        get_proposal(pb::GetProposalRequest) -> pb::Proposal = proposals::get;
        list_proposals(pb::ListProposalsRequest) -> pb::ListProposalsResponse = proposals::list;
        list_proposal_allocations(pb::ListProposalAllocationsRequest) -> pb::ListProposalAllocationsResponse = proposals::list_allocations;
        commit_proposal(pb::CommitProposalRequest) -> pb::CommitProposalResponse = proposals::commit;
        book_best_slot(pb::BookBestSlotRequest) -> pb::BookBestSlotResponse = rebooking::book_best_slot;
        rebook_displaced(pb::RebookDisplacedRequest) -> pb::RebookDisplacedResponse = rebooking::rebook_displaced;
        offer_freed_slot(pb::OfferFreedSlotRequest) -> pb::SlotOffer = rebooking::offer_freed_slot;
    }
}
