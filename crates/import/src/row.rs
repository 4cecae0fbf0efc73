//! One row of a legacy file: its columns (the CSV header names, the JSON Lines keys), its
//! values, and the problems that refuse it, each a line of the report under the column at
//! fault.

/// The columns of a legacy license (CSV header names, JSON Lines keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    UserId,
    ProductCode,
    StartDate,
    StopDate,
    OrderId,
    PriceAmount,
    Currency,
    PaymentMethod,
    Recurring,
    Status,
    PurchaseDate,
}

impl Column {
    pub(crate) const ALL: [Column; 11] = [
        Self::UserId,
        Self::ProductCode,
        Self::StartDate,
        Self::StopDate,
        Self::OrderId,
        Self::PriceAmount,
        Self::Currency,
        Self::PaymentMethod,
        Self::Recurring,
        Self::Status,
        Self::PurchaseDate,
    ];
    pub(crate) const REQUIRED: [Column; 3] = [Self::UserId, Self::ProductCode, Self::OrderId];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::UserId => "user_id",
            Self::ProductCode => "product_code",
            Self::StartDate => "start_date",
            Self::StopDate => "stop_date",
            Self::OrderId => "order_id",
            Self::PriceAmount => "price_amount",
            Self::Currency => "currency",
            Self::PaymentMethod => "payment_method",
            Self::Recurring => "recurring",
            Self::Status => "status",
            Self::PurchaseDate => "purchase_date",
        }
    }

    pub(crate) fn named(name: &str) -> Option<Column> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The report column of a domain violation's pointer.
pub(crate) fn field_of(pointer: &str) -> &str {
    match pointer {
        "/relationships/user" | "/relationships/user/data/id" => Column::UserId.name(),
        "/relationships/product" | "/relationships/product/data/id" => Column::ProductCode.name(),
        "/attributes/start_date" => Column::StartDate.name(),
        "/attributes/stop_date" => Column::StopDate.name(),
        "/attributes/order_id" => Column::OrderId.name(),
        "/attributes/status" => Column::Status.name(),
        "/attributes/purchase_record/price_currency_amount" => Column::PriceAmount.name(),
        "/attributes/purchase_record/price_currency_iso4217" => Column::Currency.name(),
        "/attributes/purchase_record/payment_method" => Column::PaymentMethod.name(),
        "/attributes/purchase_record/purchase_timestamp" => Column::PurchaseDate.name(),
        "/attributes/renew_record/recurring" => Column::Recurring.name(),
        other => other,
    }
}

/// One problem of a refused row: a report line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The column at fault; empty for the row as a whole.
    pub(crate) field: String,
    pub(crate) code: &'static str,
    pub(crate) reason: String,
}

impl Problem {
    pub(crate) fn new(
        field: impl Into<String>,
        code: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code,
            reason: reason.into(),
        }
    }
}

/// The values of one row, by [`Column::index`]; blank values are `None`.
pub(crate) type Fields = [Option<String>; Column::ALL.len()];

/// One row of the file: its line and its values, or why they could not be read.
pub(crate) struct Row {
    pub(crate) line: u64,
    pub(crate) fields: Result<Fields, Vec<Problem>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_pointer_is_reported_as_its_column() {
        for column in Column::ALL {
            assert_eq!(Column::named(column.name()), Some(column));
        }
        assert_eq!(field_of("/attributes/stop_date"), "stop_date");
        assert_eq!(field_of("/relationships/product"), "product_code");
        assert_eq!(
            field_of("/attributes/purchase_record/price_currency_iso4217"),
            "currency"
        );
        assert_eq!(field_of("/elsewhere"), "/elsewhere");
    }
}
