//! The catalogue.

use diesel::prelude::*;
use licenses_app::ports::{Conflict, StoreError};
use licenses_domain::{Product, ProductId, Timestamp};

use crate::connection::{AnyConnection, unprepared};
use crate::error::{Error, is_foreign_key_violation, is_unique_violation};
use crate::models::{ProductChanges, ProductRow};
use crate::repo::IN_LIST_CHUNK;
use crate::schema::{catalogue_version, licenses, products};

pub(crate) fn list(conn: &mut AnyConnection) -> Result<Vec<Product>, Error> {
    products::table
        .order(products::id.asc())
        .select(ProductRow::as_select())
        .load(conn)?
        .into_iter()
        .map(ProductRow::into_domain)
        .collect()
}

/// The catalogue's change marker: bumped by triggers on every write to `products`.
pub(crate) fn version(conn: &mut AnyConnection) -> Result<i64, Error> {
    Ok(catalogue_version::table
        .find(1_i64)
        .select(catalogue_version::version)
        .first(conn)?)
}

pub(crate) fn get(conn: &mut AnyConnection, id: &ProductId) -> Result<Option<Product>, Error> {
    products::table
        .find(id.as_str())
        .select(ProductRow::as_select())
        .first(conn)
        .optional()?
        .map(ProductRow::into_domain)
        .transpose()
}

/// The products among `ids` that exist, in id order.
pub(crate) fn get_many(conn: &mut AnyConnection, ids: &[ProductId]) -> Result<Vec<Product>, Error> {
    let mut wanted: Vec<&str> = ids.iter().map(ProductId::as_str).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = Vec::with_capacity(wanted.len());
    for chunk in wanted.chunks(IN_LIST_CHUNK) {
        let rows: Vec<ProductRow> = unprepared(
            products::table
                .filter(products::id.eq_any(chunk))
                .order(products::id.asc())
                .select(ProductRow::as_select()),
        )
        .load(conn)?;
        for row in rows {
            found.push(row.into_domain()?);
        }
    }
    Ok(found)
}

/// [`Conflict::DuplicateId`] if the id is taken.
pub(crate) fn insert(
    conn: &mut AnyConnection,
    product: &Product,
    at: Timestamp,
) -> Result<(), Error> {
    diesel::insert_into(products::table)
        .values(ProductRow::from_domain(product, at))
        .execute(conn)
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::Store(StoreError::Conflict(Conflict::DuplicateId))
            } else {
                Error::Db(e)
            }
        })?;
    Ok(())
}

/// [`StoreError::NotFound`] if the product is gone.
pub(crate) fn update(
    conn: &mut AnyConnection,
    product: &Product,
    at: Timestamp,
) -> Result<(), Error> {
    let n = diesel::update(products::table.find(product.id().as_str()))
        .set(ProductChanges::from_domain(product, at))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound.into());
    }
    Ok(())
}

/// How many licenses refer to the product.
pub(crate) fn license_count(conn: &mut AnyConnection, id: &ProductId) -> Result<u64, Error> {
    let n: i64 = licenses::table
        .filter(licenses::product_id.eq(id.as_str()))
        .count()
        .get_result(conn)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// [`StoreError::NotFound`]; [`Conflict::ProductInUse`] while licenses refer to it.
pub(crate) fn delete(conn: &mut AnyConnection, id: &ProductId) -> Result<(), Error> {
    // PostgreSQL: lock the row first. A license insert takes a key-share lock on the product
    // it names, so from here on no new license can refer to it until this transaction ends,
    // and the count below stays true. (SQLite: the write transaction already excludes
    // every other writer.)
    if let AnyConnection::Postgresql(pg) = conn {
        let locked = diesel::sql_query("SELECT id FROM products WHERE id = $1 FOR UPDATE")
            .bind::<diesel::sql_types::Text, _>(id.as_str())
            .execute(pg)?;
        if locked == 0 {
            return Err(StoreError::NotFound.into());
        }
    }
    let in_use = license_count(conn, id)?;
    if in_use > 0 {
        return Err(StoreError::Conflict(Conflict::ProductInUse { licenses: in_use }).into());
    }
    let n = diesel::delete(products::table.find(id.as_str()))
        .execute(conn)
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                Error::Store(StoreError::Conflict(Conflict::ProductInUse { licenses: 1 }))
            } else {
                Error::Db(e)
            }
        })?;
    if n == 0 {
        return Err(StoreError::NotFound.into());
    }
    Ok(())
}
