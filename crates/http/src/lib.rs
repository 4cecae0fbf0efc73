//! The JSON:API layer shared by both HTTP front-ends
