//! The price list: versions of a code's price, added, ended and listed.

use medsec_platform::pagination::keys;
use medsec_platform::time::{format_civil_date, to_timestamp};
use medsec_platform::{ApiError, Reader};
use medsec_proto::billing::v1 as pb;
use tonic::Request;

use super::BillingApi;
use crate::domain::{money, price};
use crate::store::entities::price_item;
use crate::store::price_list::{self, NewPriceItem, PriceFilter};

pub(super) async fn create(
    api: &BillingApi,
    request: Request<pb::CreatePriceItemRequest>,
) -> Result<pb::PriceItem, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let item = r.message("price_item", request.price_item.as_ref())?;
    let item = read_item(&mut r, item);
    let item = r.finish(item)?;
    let created = price_list::create(&api.db, item, key.as_ref()).await?;
    Ok(to_proto(&created))
}

fn read_item(r: &mut Reader, item: &pb::PriceItem) -> Option<NewPriceItem> {
    let code = r.check("price_item.code", price::price_code(&item.code));
    let description = r.required_line("price_item.description", &item.description, 200);
    let unit_price_pence = r.check(
        "price_item.unit_price_pence",
        money::unit_price(item.unit_price_pence),
    );
    let vat_rate_basis_points = r.check(
        "price_item.vat_rate_basis_points",
        money::vat_rate(item.vat_rate_basis_points),
    );
    let valid_from = r.date("price_item.valid_from", &item.valid_from);
    let valid_to = r.optional_date("price_item.valid_to", &item.valid_to);
    if let Some(from) = valid_from {
        r.check("price_item.valid_to", price::validity(from, valid_to));
    }
    Some(NewPriceItem {
        code: code?,
        description: description?,
        unit_price_pence: unit_price_pence?,
        vat_rate_basis_points: vat_rate_basis_points?,
        valid_from: valid_from?,
        valid_to,
    })
}

pub(super) async fn end(
    api: &BillingApi,
    request: Request<pb::EndPriceItemRequest>,
) -> Result<pb::PriceItem, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let valid_to = r.date("valid_to", &request.valid_to);
    let (id, valid_to) = r.finish((id, valid_to))?;
    let ended = price_list::end(&api.db, id, valid_to).await?;
    Ok(to_proto(&ended))
}

pub(super) async fn list(
    api: &BillingApi,
    request: Request<pb::ListPriceItemsRequest>,
) -> Result<pb::ListPriceItemsResponse, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let code = if request.code.is_empty() {
        None
    } else {
        r.check("code", price::price_code(&request.code))
    };
    let filter = PriceFilter {
        code,
        valid_on: r.optional_date("valid_on", &request.valid_on),
    };
    let page = r.page(
        request.page_size,
        &request.page_token,
        &format!("{filter:?}"),
    );
    let page = r.finish(page)?;
    let rows = price_list::list(&api.db, &filter, &page).await?;
    let (price_items, next_page_token) = page.tail(rows, |row| keys::id(row.id), to_proto);
    Ok(pb::ListPriceItemsResponse {
        price_items,
        next_page_token,
    })
}

fn to_proto(row: &price_item::Model) -> pb::PriceItem {
    pb::PriceItem {
        id: row.id.to_string(),
        code: row.code.clone(),
        description: row.description.clone(),
        unit_price_pence: row.unit_price_pence,
        vat_rate_basis_points: row.vat_rate_basis_points,
        valid_from: format_civil_date(row.valid_from),
        valid_to: row.valid_to.map(format_civil_date).unwrap_or_default(),
        create_time: Some(to_timestamp(row.create_time)),
    }
}
