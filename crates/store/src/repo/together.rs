//! Several inserts sent to PostgreSQL as one statement.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::{PgConnection, QueryResult, RunQueryDsl};

/// Inserts sent as one statement: `WITH w0 AS (INSERT …), w1 AS (INSERT …) INSERT …`.
///
/// One round trip for all of them where each would be one; and, sent outside a transaction,
/// no BEGIN and COMMIT either, as a statement is atomic by itself: all its rows are written
/// or none. Its inserts run on one snapshot and read nothing the others write, and every
/// constraint holds as for separate statements: unique indexes at each row, foreign keys at
/// the statement's end (they see the rows of its other inserts). Which of two violations is
/// reported when both happen is not defined. The text is the same for the same inserts of
/// one row each, so diesel keeps the statement prepared on its connection.
pub(crate) struct Together<'a> {
    with: Vec<Box<dyn QueryFragment<Pg> + 'a>>,
    last: Box<dyn QueryFragment<Pg> + 'a>,
}

impl<'a> Together<'a> {
    pub(crate) fn new(insert: impl QueryFragment<Pg> + 'a) -> Self {
        Self {
            with: Vec::new(),
            last: Box::new(insert),
        }
    }

    /// `insert` too.
    pub(crate) fn and(mut self, insert: impl QueryFragment<Pg> + 'a) -> Self {
        let before = std::mem::replace(&mut self.last, Box::new(insert));
        self.with.push(before);
        self
    }
}

impl QueryId for Together<'_> {
    type QueryId = ();
    // Cached by its text instead.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Pg> for Together<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        for (i, insert) in self.with.iter().enumerate() {
            out.push_sql(if i == 0 { "WITH " } else { ", " });
            out.push_sql(&format!("w{i} AS ("));
            insert.walk_ast(out.reborrow())?;
            out.push_sql(")");
        }
        if !self.with.is_empty() {
            out.push_sql(" ");
        }
        self.last.walk_ast(out.reborrow())
    }
}

impl RunQueryDsl<PgConnection> for Together<'_> {}

#[cfg(test)]
mod tests {
    use diesel::debug_query;
    use diesel::prelude::*;

    use super::*;
    use crate::schema::event_marks;

    #[test]
    fn inserts_become_one_statement_with_their_binds_in_order() {
        let one = diesel::insert_into(event_marks::table)
            .values((event_marks::name.eq("a"), event_marks::value.eq(1_i64)));
        let two = diesel::insert_into(event_marks::table)
            .values((event_marks::name.eq("b"), event_marks::value.eq(2_i64)));
        let three = diesel::insert_into(event_marks::table)
            .values((event_marks::name.eq("c"), event_marks::value.eq(3_i64)));
        let together = Together::new(one).and(two).and(three);
        assert_eq!(
            debug_query::<Pg, _>(&together).to_string(),
            "WITH w0 AS (INSERT INTO \"event_marks\" (\"name\", \"value\") VALUES ($1, $2)), \
             w1 AS (INSERT INTO \"event_marks\" (\"name\", \"value\") VALUES ($3, $4)) \
             INSERT INTO \"event_marks\" (\"name\", \"value\") VALUES ($5, $6) \
             -- binds: [\"a\", 1, \"b\", 2, \"c\", 3]"
        );
        let alone = Together::new(
            diesel::insert_into(event_marks::table)
                .values((event_marks::name.eq("a"), event_marks::value.eq(1_i64))),
        );
        assert_eq!(
            debug_query::<Pg, _>(&alone).to_string(),
            "INSERT INTO \"event_marks\" (\"name\", \"value\") VALUES ($1, $2) -- binds: [\"a\", 1]"
        );
    }
}
