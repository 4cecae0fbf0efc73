//! The catalogue, as the management API has it (hidden products included).

use actix_web::HttpResponse;
use licenses_api_management::Scope;
use licenses_domain::Service;
use licenses_http::Routes;
use maud::html;

use super::Shared;
use crate::error::ConsoleError;
use crate::guard::Signed;
use crate::html::{self, page};

pub(crate) fn routes(routes: Routes) -> Routes {
    routes.get("/products", products)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// `GET /console/products`.
pub async fn products(console: Shared, signed: Signed) -> Result<HttpResponse, ConsoleError> {
    signed.require(Scope::Read)?;
    let products = console
        .app
        .list_products()
        .await
        .map_err(ConsoleError::from_app)?;
    let flash = signed.take_flash(&console);
    let body = html! {
        @if products.is_empty() {
            p data-testid="no-products" { "The catalogue has no product." }
        } @else {
            table id="products" {
                caption { (products.len()) " products" }
                thead {
                    tr {
                        th scope="col" { "Id" }
                        th scope="col" { "Title" }
                        th scope="col" { "Type" }
                        th scope="col" { "Visible" }
                        th scope="col" { "Buyable" }
                        th scope="col" { "Premium" }
                        th scope="col" { "Irdeto product" }
                        th scope="col" { "Channels" }
                    }
                }
                tbody {
                    @for p in &products {
                        tr data-testid="product-row" data-product=(p.id()) {
                            th scope="row" { code { (p.id()) } }
                            td { (p.title()) }
                            td { (p.product_type().as_str()) }
                            td { (yes_no(p.is_user_visible())) }
                            td { (yes_no(p.is_buyable())) }
                            td { (yes_no(p.is_premium())) }
                            td { (p.irdeto_product_id().unwrap_or("—")) }
                            td {
                                @for service in Service::ALL {
                                    @let channels = p.channels().channels(service);
                                    @if !channels.is_empty() {
                                        (service) ": "
                                        (channels.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "))
                                        br;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(html::ok(page(
        "Products",
        Some(&signed),
        flash.as_ref(),
        body,
    )))
}
