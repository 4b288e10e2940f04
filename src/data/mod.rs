//! The tasks' data: E1's generated echo pairs, the IMDB reviews (reading, tokenizing, caching,
//! downloading, exporting) and the user's own labelled texts.

pub mod echo;
pub mod export;
pub mod fetch;
pub mod imdb;
pub mod labelled;
pub mod prepare;
pub mod text;
