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
/// the statement's end (they see the rows of its other inserts). The text is the same for the
/// same inserts of one row each, so diesel keeps the statement prepared on its connection.
///
/// The inserts run in the order they are given, as in a transaction, so that a writer of the
/// same rows in a transaction waits for the same row locks in the same order, never in a
/// cycle. PostgreSQL runs a statement's main insert first, then those of its `WITH` from the
/// last to the first (`ExecPostprocessPlan`; its documentation leaves the order open): the
/// first insert is written as the main one, the others into `WITH` in reverse.
pub(crate) struct Together<'a> {
    first: Box<dyn QueryFragment<Pg> + 'a>,
    then: Vec<Box<dyn QueryFragment<Pg> + 'a>>,
}

impl<'a> Together<'a> {
    pub(crate) fn new(insert: impl QueryFragment<Pg> + 'a) -> Self {
        Self {
            first: Box::new(insert),
            then: Vec::new(),
        }
    }

    /// `insert` next.
    pub(crate) fn and(mut self, insert: impl QueryFragment<Pg> + 'a) -> Self {
        self.then.push(Box::new(insert));
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
        for (i, insert) in self.then.iter().rev().enumerate() {
            out.push_sql(if i == 0 { "WITH " } else { ", " });
            out.push_sql(&format!("w{i} AS ("));
            insert.walk_ast(out.reborrow())?;
            out.push_sql(")");
        }
        if !self.then.is_empty() {
            out.push_sql(" ");
        }
        self.first.walk_ast(out.reborrow())
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
    fn the_first_insert_is_the_main_statement_and_the_others_with_in_reverse() {
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
             -- binds: [\"c\", 3, \"b\", 2, \"a\", 1]"
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
