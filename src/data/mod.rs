//! The tasks' data: E1's generated echo pairs and the IMDB reviews (reading, tokenizing,
//! caching, downloading).

pub mod echo;
pub mod fetch;
pub mod imdb;
pub mod prepare;
