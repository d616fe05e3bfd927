//! BillingService's test app and fixtures: the server comes from the
//! platform's harness, the payers, prices, charges and invoices from here.

use medsec_platform::events;
use medsec_platform::server::Services;
use medsec_platform::testing::AuthChannel;
use medsec_platform::testing::{Backend, Running, precondition_type, start};
use medsec_proto::billing::v1 as pb;
use medsec_proto::billing::v1::billing_service_client::BillingServiceClient;
use sea_orm::DatabaseConnection;
use tonic::Status;
use uuid::Uuid;

/// A BillingService on a fresh database, and a client for it.
pub(crate) struct TestApp {
    pub(crate) client: BillingServiceClient<AuthChannel>,
    /// The service's database, for checks behind the API.
    pub(crate) db: DatabaseConnection,
    #[allow(dead_code)] // keeps the server and its database alive
    pub(crate) running: Running,
}

pub(crate) async fn spawn_app(backend: Backend) -> TestApp {
    let running = start(backend, medsec_billing::migrate, |db, settings| {
        Services::new().with(
            medsec_billing::service(db, settings),
            &medsec_billing::POLICY,
        )
    })
    .await;
    TestApp {
        client: BillingServiceClient::new(running.authorised_channel()),
        db: running.db.clone(),
        running,
    }
}

pub(crate) fn new_id() -> String {
    Uuid::now_v7().to_string()
}

pub(crate) fn self_pay() -> pb::Payer {
    pb::Payer {
        kind: pb::PayerKind::SelfPay as i32,
        insurer: None,
    }
}

pub(crate) fn insurer(preauth: &str) -> pb::Payer {
    pb::Payer {
        kind: pb::PayerKind::Insurer as i32,
        insurer: Some(pb::Insurer {
            name: "Bupa".into(),
            policy_number: "POL-778812".into(),
            preauthorisation_code: preauth.into(),
        }),
    }
}

pub(crate) fn nhs() -> pb::Payer {
    pb::Payer {
        kind: pb::PayerKind::Nhs as i32,
        insurer: None,
    }
}

impl TestApp {
    pub(crate) async fn price(
        &mut self,
        code: &str,
        pence: i64,
        vat: i32,
        from: &str,
    ) -> pb::PriceItem {
        self.client
            .create_price_item(pb::CreatePriceItemRequest {
                price_item: Some(pb::PriceItem {
                    code: code.into(),
                    description: format!("{code} description"),
                    unit_price_pence: pence,
                    vat_rate_basis_points: vat,
                    valid_from: from.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("create price item")
            .into_inner()
    }

    pub(crate) async fn charge(
        &mut self,
        patient: &str,
        code: &str,
        quantity: i32,
        payer: pb::Payer,
    ) -> pb::Charge {
        self.try_charge(&new_id(), patient, code, quantity, payer)
            .await
            .expect("create charge")
    }

    pub(crate) async fn try_charge(
        &mut self,
        appointment: &str,
        patient: &str,
        code: &str,
        quantity: i32,
        payer: pb::Payer,
    ) -> Result<pb::Charge, Status> {
        self.client
            .create_charge(pb::CreateChargeRequest {
                charge: Some(pb::Charge {
                    appointment_id: appointment.into(),
                    patient_id: patient.into(),
                    code: code.into(),
                    quantity,
                    service_date: "2026-05-05".into(),
                    payer: Some(payer),
                    ..Default::default()
                }),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub(crate) async fn draft(&mut self, patient: &str, payer: pb::Payer) -> pb::Invoice {
        self.client
            .create_invoice(pb::CreateInvoiceRequest {
                patient_id: patient.into(),
                payer: Some(payer),
                request_id: String::new(),
            })
            .await
            .expect("create invoice")
            .into_inner()
    }

    pub(crate) async fn try_issue(&mut self, id: &str, date: &str) -> Result<pb::Invoice, Status> {
        self.client
            .issue_invoice(pb::IssueInvoiceRequest {
                id: id.into(),
                issue_date: date.into(),
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub(crate) async fn issue(&mut self, id: &str, date: &str) -> pb::Invoice {
        self.try_issue(id, date).await.expect("issue invoice")
    }

    pub(crate) async fn try_pay(
        &mut self,
        id: &str,
        pence: i64,
        request_id: &str,
    ) -> Result<pb::Invoice, Status> {
        self.client
            .record_payment(pb::RecordPaymentRequest {
                invoice_id: id.into(),
                amount_pence: pence,
                method: pb::PaymentMethod::Card as i32,
                paid_on: "2026-05-20".into(),
                request_id: request_id.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub(crate) async fn pay(&mut self, id: &str, pence: i64) -> pb::Invoice {
        self.try_pay(id, pence, &new_id())
            .await
            .expect("record payment")
    }

    /// Every invoice, listed `page_size` at a time.
    pub(crate) async fn every_invoice(&mut self, page_size: i32) -> Vec<pb::Invoice> {
        every_page(async |page_token| {
            let request = pb::ListInvoicesRequest {
                page_size,
                page_token,
                ..Default::default()
            };
            let page = self
                .client
                .list_invoices(request)
                .await
                .unwrap()
                .into_inner();
            (page.invoices, page.next_page_token)
        })
        .await
    }

    pub(crate) async fn try_budget(
        &mut self,
        department: &str,
        year: i32,
        allocation: i64,
        request_id: &str,
    ) -> Result<pb::Budget, Status> {
        self.client
            .create_budget(pb::CreateBudgetRequest {
                budget: Some(pb::Budget {
                    department: department.into(),
                    financial_year: year,
                    allocation_pence: allocation,
                    ..Default::default()
                }),
                request_id: request_id.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub(crate) async fn try_aged_debt(
        &mut self,
        as_of: &str,
    ) -> Result<pb::AgedDebtReport, Status> {
        self.client
            .get_aged_debt_report(pb::GetAgedDebtReportRequest {
                as_of: as_of.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub(crate) async fn aged_debt(&mut self, as_of: &str) -> pb::AgedDebtReport {
        self.try_aged_debt(as_of).await.expect("aged debt report")
    }

    /// Every event raised so far, as written to the outbox, in order.
    pub(crate) async fn raised(&self) -> Vec<events::pb::Envelope> {
        medsec_platform::testing::raised_events(&self.db).await
    }

    pub(crate) async fn get(&mut self, id: &str) -> pb::Invoice {
        self.client
            .get_invoice(pb::GetInvoiceRequest { id: id.into() })
            .await
            .expect("get invoice")
            .into_inner()
    }
}

/// Every item of a list, walked page by page: `page` answers the page after
/// a token with its items and the next token (empty after the last page).
pub(crate) async fn every_page<T>(mut page: impl AsyncFnMut(String) -> (Vec<T>, String)) -> Vec<T> {
    let mut items = Vec::new();
    let mut token = String::new();
    for _ in 0..1000 {
        let (more, next) = page(token).await;
        items.extend(more);
        if next.is_empty() {
            return items;
        }
        token = next;
    }
    panic!("a list of more than 1000 pages");
}

/// Asserts a FAILED_PRECONDITION of type STATE whose message names `state`.
pub(crate) fn assert_wrong_state(status: &Status, state: &str) {
    assert_eq!(precondition_type(status), "STATE", "{status:?}");
    assert!(status.message().contains(state), "{}", status.message());
}

/// Every invariant of one invoice as the API shows it.
pub(crate) fn assert_invoice_invariants(invoice: &pb::Invoice) {
    let net: i64 = invoice.lines.iter().map(|l| l.net_pence).sum();
    let vat: i64 = invoice.lines.iter().map(|l| l.vat_pence).sum();
    assert_eq!(invoice.net_pence, net, "net = sum of lines");
    assert_eq!(invoice.vat_pence, vat, "vat = sum of line vat");
    assert_eq!(invoice.total_pence, net + vat, "total = lines plus vat");
    let paid: i64 = invoice.payments.iter().map(|p| p.amount_pence).sum();
    let credited: i64 = invoice.credit_notes.iter().map(|c| c.amount_pence).sum();
    assert_eq!(invoice.paid_pence, paid);
    assert_eq!(invoice.credited_pence, credited);
    assert_eq!(invoice.balance_pence, invoice.total_pence - paid - credited);
    assert!(invoice.balance_pence >= 0, "balance never negative");
    for line in &invoice.lines {
        assert_eq!(
            line.net_pence,
            i64::from(line.quantity) * line.unit_price_pence
        );
        let exact = line.net_pence * i64::from(line.vat_rate_basis_points);
        assert_eq!(line.vat_pence, (exact + 5000) / 10000, "vat half up");
    }
    let status = invoice.status();
    if status == pb::InvoiceStatus::Balanced {
        assert_eq!(invoice.balance_pence, 0);
    }
    if status == pb::InvoiceStatus::Issued {
        assert!(invoice.balance_pence > 0);
    }
    assert_eq!(
        invoice.number.is_empty(),
        status == pb::InvoiceStatus::Draft
            || (status == pb::InvoiceStatus::Cancelled && invoice.issue_date.is_empty())
    );
}
