//! Reading what a source sent, with no I/O: the bytes of a document in, checked
//! [`Item`](crate::item::Item)s out.
//!
//! - [`parse`]: charset and feed-rs, bounded (a document that is not a feed is an error);
//! - [`normalize`]: ids, titles, links, dates and sanitized HTML for each entry;
//! - [`charset`]: bytes to text, in the charset the bytes and headers say;
//! - [`dates`]: the date spellings the web uses;
//! - [`markup`]: stray `<` and `&` escaped before the XML is parsed;
//! - [`text`]: titles as plain text, read as their format marks them;
//! - [`sanitize`]: the allow-list item HTML passes before it is stored (`simple_html`:
//!   its fast path, for HTML the parser builds as written);
//! - [`scrape`]: items read from a web page with CSS selectors (`kind = "html"`);
//! - [`filter`]: a source's include/exclude rules over the normalized items;
//! - [`known`]: where each entry lies in a document's bytes, to pass over the
//!   entries a source sent before without parsing them.

pub mod charset;
pub mod dates;
pub mod filter;
pub mod known;
pub mod markup;
pub mod normalize;
pub mod parse;
pub mod sanitize;
pub mod scrape;
mod simple_html;
pub mod text;
