//! The SchedulingService gRPC handlers. Each RPC reads its request into
//! checked values (INVALID_ARGUMENT naming every bad field), makes one store
//! call, and converts the result back; no SQL here, and the rules live in
//! `domain` and `store`.

mod appointments;
mod convert;
mod diary;
mod enquiries;
mod optimise;
mod referrals;
mod staff;

use medsec_proto::scheduling::v1 as pb;
use medsec_proto::scheduling::v1::scheduling_service_server::SchedulingService;
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use crate::domain::appointment::Action;

/// SchedulingService over one database.
#[derive(Debug, Clone)]
pub struct SchedulingApi {
    db: DatabaseConnection,
}

impl SchedulingApi {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl SchedulingService for SchedulingApi {
    async fn create_staff_member(
        &self,
        request: Request<pb::CreateStaffMemberRequest>,
    ) -> Result<Response<pb::StaffMember>, Status> {
        Ok(Response::new(
            staff::create_staff_member(&self.db, request.into_inner()).await?,
        ))
    }

    async fn get_staff_member(
        &self,
        request: Request<pb::GetStaffMemberRequest>,
    ) -> Result<Response<pb::StaffMember>, Status> {
        Ok(Response::new(
            staff::get_staff_member(&self.db, request.into_inner()).await?,
        ))
    }

    async fn list_staff_members(
        &self,
        request: Request<pb::ListStaffMembersRequest>,
    ) -> Result<Response<pb::ListStaffMembersResponse>, Status> {
        Ok(Response::new(
            staff::list_staff_members(&self.db, request.into_inner()).await?,
        ))
    }

    async fn create_location(
        &self,
        request: Request<pb::CreateLocationRequest>,
    ) -> Result<Response<pb::Location>, Status> {
        Ok(Response::new(
            staff::create_location(&self.db, request.into_inner()).await?,
        ))
    }

    async fn list_locations(
        &self,
        request: Request<pb::ListLocationsRequest>,
    ) -> Result<Response<pb::ListLocationsResponse>, Status> {
        Ok(Response::new(
            staff::list_locations(&self.db, request.into_inner()).await?,
        ))
    }

    async fn create_room(
        &self,
        request: Request<pb::CreateRoomRequest>,
    ) -> Result<Response<pb::Room>, Status> {
        Ok(Response::new(
            staff::create_room(&self.db, request.into_inner()).await?,
        ))
    }

    async fn list_rooms(
        &self,
        request: Request<pb::ListRoomsRequest>,
    ) -> Result<Response<pb::ListRoomsResponse>, Status> {
        Ok(Response::new(
            staff::list_rooms(&self.db, request.into_inner()).await?,
        ))
    }

    async fn create_duty_shift(
        &self,
        request: Request<pb::CreateDutyShiftRequest>,
    ) -> Result<Response<pb::DutyShift>, Status> {
        Ok(Response::new(
            staff::create_duty_shift(&self.db, request.into_inner()).await?,
        ))
    }

    async fn list_duty_shifts(
        &self,
        request: Request<pb::ListDutyShiftsRequest>,
    ) -> Result<Response<pb::ListDutyShiftsResponse>, Status> {
        Ok(Response::new(
            staff::list_duty_shifts(&self.db, request.into_inner()).await?,
        ))
    }

    async fn create_session_template(
        &self,
        request: Request<pb::CreateSessionTemplateRequest>,
    ) -> Result<Response<pb::SessionTemplate>, Status> {
        Ok(Response::new(
            diary::create_session_template(&self.db, request.into_inner()).await?,
        ))
    }

    async fn list_session_templates(
        &self,
        request: Request<pb::ListSessionTemplatesRequest>,
    ) -> Result<Response<pb::ListSessionTemplatesResponse>, Status> {
        Ok(Response::new(
            diary::list_session_templates(&self.db, request.into_inner()).await?,
        ))
    }

    async fn generate_slots(
        &self,
        request: Request<pb::GenerateSlotsRequest>,
    ) -> Result<Response<pb::GenerateSlotsResponse>, Status> {
        Ok(Response::new(
            diary::generate_slots(&self.db, request.into_inner()).await?,
        ))
    }

    async fn create_slot(
        &self,
        request: Request<pb::CreateSlotRequest>,
    ) -> Result<Response<pb::Slot>, Status> {
        Ok(Response::new(
            diary::create_slot(&self.db, request.into_inner()).await?,
        ))
    }

    async fn get_slot(
        &self,
        request: Request<pb::GetSlotRequest>,
    ) -> Result<Response<pb::Slot>, Status> {
        Ok(Response::new(
            diary::get_slot(&self.db, request.into_inner()).await?,
        ))
    }

    async fn list_slots(
        &self,
        request: Request<pb::ListSlotsRequest>,
    ) -> Result<Response<pb::ListSlotsResponse>, Status> {
        Ok(Response::new(
            diary::list_slots(&self.db, request.into_inner()).await?,
        ))
    }

    async fn create_absence(
        &self,
        request: Request<pb::CreateAbsenceRequest>,
    ) -> Result<Response<pb::Absence>, Status> {
        Ok(Response::new(
            diary::create_absence(&self.db, request.into_inner()).await?,
        ))
    }

    async fn list_absences(
        &self,
        request: Request<pb::ListAbsencesRequest>,
    ) -> Result<Response<pb::ListAbsencesResponse>, Status> {
        Ok(Response::new(
            diary::list_absences(&self.db, request.into_inner()).await?,
        ))
    }

    async fn get_diary(
        &self,
        request: Request<pb::GetDiaryRequest>,
    ) -> Result<Response<pb::Diary>, Status> {
        Ok(Response::new(
            diary::get_diary(&self.db, request.into_inner()).await?,
        ))
    }

    async fn book_appointment(
        &self,
        request: Request<pb::BookAppointmentRequest>,
    ) -> Result<Response<pb::Appointment>, Status> {
        Ok(Response::new(
            appointments::book_appointment(&self.db, request.into_inner()).await?,
        ))
    }

    async fn get_appointment(
        &self,
        request: Request<pb::GetAppointmentRequest>,
    ) -> Result<Response<pb::Appointment>, Status> {
        Ok(Response::new(
            appointments::get_appointment(&self.db, request.into_inner()).await?,
        ))
    }

    async fn list_appointments(
        &self,
        request: Request<pb::ListAppointmentsRequest>,
    ) -> Result<Response<pb::ListAppointmentsResponse>, Status> {
        Ok(Response::new(
            appointments::list_appointments(&self.db, request.into_inner()).await?,
        ))
    }

    async fn cancel_appointment(
        &self,
        request: Request<pb::CancelAppointmentRequest>,
    ) -> Result<Response<pb::Appointment>, Status> {
        Ok(Response::new(
            appointments::cancel_appointment(&self.db, request.into_inner()).await?,
        ))
    }

    async fn reschedule_appointment(
        &self,
        request: Request<pb::RescheduleAppointmentRequest>,
    ) -> Result<Response<pb::Appointment>, Status> {
        Ok(Response::new(
            appointments::reschedule_appointment(&self.db, request.into_inner()).await?,
        ))
    }

    async fn create_referral(
        &self,
        request: Request<pb::CreateReferralRequest>,
    ) -> Result<Response<pb::Referral>, Status> {
        Ok(Response::new(
            referrals::create_referral(&self.db, request.into_inner()).await?,
        ))
    }

    async fn get_referral(
        &self,
        request: Request<pb::GetReferralRequest>,
    ) -> Result<Response<pb::Referral>, Status> {
        Ok(Response::new(
            referrals::get_referral(&self.db, request.into_inner()).await?,
        ))
    }

    async fn list_referrals(
        &self,
        request: Request<pb::ListReferralsRequest>,
    ) -> Result<Response<pb::ListReferralsResponse>, Status> {
        Ok(Response::new(
            referrals::list_referrals(&self.db, request.into_inner()).await?,
        ))
    }

    async fn update_referral(
        &self,
        request: Request<pb::UpdateReferralRequest>,
    ) -> Result<Response<pb::Referral>, Status> {
        Ok(Response::new(
            referrals::update_referral(&self.db, request.into_inner()).await?,
        ))
    }

    async fn remove_referral(
        &self,
        request: Request<pb::RemoveReferralRequest>,
    ) -> Result<Response<pb::Referral>, Status> {
        Ok(Response::new(
            referrals::remove_referral(&self.db, request.into_inner()).await?,
        ))
    }

    async fn get_waiting_list_report(
        &self,
        request: Request<pb::GetWaitingListReportRequest>,
    ) -> Result<Response<pb::WaitingListReport>, Status> {
        Ok(Response::new(
            referrals::get_waiting_list_report(&self.db, request.into_inner()).await?,
        ))
    }

    async fn route_enquiry(
        &self,
        request: Request<pb::RouteEnquiryRequest>,
    ) -> Result<Response<pb::Enquiry>, Status> {
        Ok(Response::new(
            enquiries::route_enquiry(&self.db, request.into_inner()).await?,
        ))
    }

    async fn get_enquiry(
        &self,
        request: Request<pb::GetEnquiryRequest>,
    ) -> Result<Response<pb::Enquiry>, Status> {
        Ok(Response::new(
            enquiries::get_enquiry(&self.db, request.into_inner()).await?,
        ))
    }

    async fn list_enquiries(
        &self,
        request: Request<pb::ListEnquiriesRequest>,
    ) -> Result<Response<pb::ListEnquiriesResponse>, Status> {
        Ok(Response::new(
            enquiries::list_enquiries(&self.db, request.into_inner()).await?,
        ))
    }

    async fn resolve_enquiry(
        &self,
        request: Request<pb::ResolveEnquiryRequest>,
    ) -> Result<Response<pb::Enquiry>, Status> {
        Ok(Response::new(
            enquiries::resolve_enquiry(&self.db, request.into_inner()).await?,
        ))
    }

    async fn mark_arrived(
        &self,
        request: Request<pb::MarkArrivedRequest>,
    ) -> Result<Response<pb::Appointment>, Status> {
        let id = request.into_inner().id;
        Ok(Response::new(
            appointments::mark(&self.db, &id, Action::Arrive).await?,
        ))
    }

    async fn mark_fulfilled(
        &self,
        request: Request<pb::MarkFulfilledRequest>,
    ) -> Result<Response<pb::Appointment>, Status> {
        let id = request.into_inner().id;
        Ok(Response::new(
            appointments::mark(&self.db, &id, Action::Fulfil).await?,
        ))
    }

    async fn mark_did_not_attend(
        &self,
        request: Request<pb::MarkDidNotAttendRequest>,
    ) -> Result<Response<pb::Appointment>, Status> {
        let id = request.into_inner().id;
        Ok(Response::new(
            appointments::mark(&self.db, &id, Action::DidNotAttend).await?,
        ))
    }

    async fn propose_allocation(
        &self,
        request: Request<pb::ProposeAllocationRequest>,
    ) -> Result<Response<pb::Proposal>, Status> {
        Ok(Response::new(
            optimise::propose_allocation(&self.db, request.into_inner()).await?,
        ))
    }

    async fn get_proposal(
        &self,
        request: Request<pb::GetProposalRequest>,
    ) -> Result<Response<pb::Proposal>, Status> {
        Ok(Response::new(
            optimise::get_proposal(&self.db, request.into_inner()).await?,
        ))
    }

    async fn list_proposals(
        &self,
        request: Request<pb::ListProposalsRequest>,
    ) -> Result<Response<pb::ListProposalsResponse>, Status> {
        Ok(Response::new(
            optimise::list_proposals(&self.db, request.into_inner()).await?,
        ))
    }

    async fn list_proposal_allocations(
        &self,
        request: Request<pb::ListProposalAllocationsRequest>,
    ) -> Result<Response<pb::ListProposalAllocationsResponse>, Status> {
        Ok(Response::new(
            optimise::list_proposal_allocations(&self.db, request.into_inner()).await?,
        ))
    }

    async fn commit_proposal(
        &self,
        request: Request<pb::CommitProposalRequest>,
    ) -> Result<Response<pb::CommitProposalResponse>, Status> {
        Ok(Response::new(
            optimise::commit_proposal(&self.db, request.into_inner()).await?,
        ))
    }

    async fn book_best_slot(
        &self,
        request: Request<pb::BookBestSlotRequest>,
    ) -> Result<Response<pb::BookBestSlotResponse>, Status> {
        Ok(Response::new(
            optimise::book_best_slot(&self.db, request.into_inner()).await?,
        ))
    }

    async fn rebook_displaced(
        &self,
        request: Request<pb::RebookDisplacedRequest>,
    ) -> Result<Response<pb::RebookDisplacedResponse>, Status> {
        Ok(Response::new(
            optimise::rebook_displaced(&self.db, request.into_inner()).await?,
        ))
    }

    async fn offer_freed_slot(
        &self,
        request: Request<pb::OfferFreedSlotRequest>,
    ) -> Result<Response<pb::SlotOffer>, Status> {
        Ok(Response::new(
            optimise::offer_freed_slot(&self.db, request.into_inner()).await?,
        ))
    }
}
