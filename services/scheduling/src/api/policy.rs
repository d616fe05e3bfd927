//! Who may call each SchedulingService RPC (the README's role table). Staff,
//! rooms, the rota and diary templates are configuration, kept by admins;
//! secretaries book; the optimiser's runs and commits belong to waiting-list
//! managers.

use medsec_platform::auth::Role;
use medsec_platform::auth::Role::{
    Admin, BillingClerk, Clinician, Secretary, Service, WaitingListManager,
};
use medsec_platform::auth::policy::{Rule, ServicePolicy};

const EVERY_SCHEDULER: &[Role] = &[Secretary, Clinician, WaitingListManager, Admin];
const BOOKERS: &[Role] = &[Secretary, WaitingListManager];
const WAITING_LIST: &[Role] = &[Secretary, Clinician, WaitingListManager];

/// SchedulingService's rows of the policy table.
pub const POLICY: ServicePolicy = ServicePolicy {
    service: crate::SERVICE_NAME,
    rules: &[
        Rule::other("CreateStaffMember", &[Admin]),
        Rule::other("GetStaffMember", EVERY_SCHEDULER),
        Rule::other("ListStaffMembers", EVERY_SCHEDULER),
        Rule::other("CreateLocation", &[Admin]),
        Rule::other("ListLocations", EVERY_SCHEDULER),
        Rule::other("CreateRoom", &[Admin]),
        Rule::other("ListRooms", EVERY_SCHEDULER),
        Rule::other("CreateDutyShift", &[Admin]),
        Rule::other("ListDutyShifts", EVERY_SCHEDULER),
        Rule::other("CreateSessionTemplate", &[Admin]),
        Rule::other("ListSessionTemplates", EVERY_SCHEDULER),
        Rule::other("GenerateSlots", &[Admin]),
        Rule::other("CreateSlot", &[Admin]),
        Rule::other("GetSlot", EVERY_SCHEDULER),
        Rule::other("ListSlots", EVERY_SCHEDULER),
        // An absence answers with the appointments it displaces: patients'.
        Rule::patient("CreateAbsence", &[Secretary, Admin]),
        Rule::patient("ListAbsences", EVERY_SCHEDULER),
        Rule::patient("GetDiary", WAITING_LIST),
        Rule::patient("BookAppointment", BOOKERS),
        Rule::patient(
            "GetAppointment",
            &[
                Secretary,
                Clinician,
                WaitingListManager,
                BillingClerk,
                Service,
            ],
        ),
        Rule::patient(
            "ListAppointments",
            &[Secretary, Clinician, WaitingListManager, BillingClerk],
        ),
        Rule::patient("CancelAppointment", BOOKERS),
        Rule::patient("RescheduleAppointment", BOOKERS),
        Rule::patient("MarkArrived", &[Secretary, Clinician]),
        Rule::patient("MarkFulfilled", &[Secretary, Clinician]),
        Rule::patient("MarkDidNotAttend", &[Secretary, Clinician]),
        Rule::patient("CreateReferral", WAITING_LIST),
        Rule::patient("GetReferral", WAITING_LIST),
        Rule::patient("ListReferrals", WAITING_LIST),
        Rule::patient("UpdateReferral", WAITING_LIST),
        Rule::patient("RemoveReferral", WAITING_LIST),
        Rule::other(
            "GetWaitingListReport",
            &[Secretary, WaitingListManager, Admin],
        ),
        Rule::patient("RouteEnquiry", &[Secretary]),
        Rule::patient("GetEnquiry", &[Secretary, Clinician, BillingClerk]),
        Rule::patient("ListEnquiries", &[Secretary, Clinician, BillingClerk]),
        Rule::patient("ResolveEnquiry", &[Secretary, Clinician, BillingClerk]),
        Rule::patient("ProposeAllocation", &[WaitingListManager]),
        Rule::patient("GetProposal", &[WaitingListManager]),
        Rule::patient("ListProposals", &[WaitingListManager]),
        Rule::patient("ListProposalAllocations", &[WaitingListManager]),
        Rule::patient("CommitProposal", &[WaitingListManager]),
        Rule::patient("BookBestSlot", BOOKERS),
        Rule::patient("RebookDisplaced", BOOKERS),
        Rule::patient("OfferFreedSlot", BOOKERS),
    ],
};
