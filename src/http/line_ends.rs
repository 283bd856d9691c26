//! Request heads whose lines end in a bare LF are refused with 400, as nginx and
//! Apache refuse them.
//!
//! HTTP/1.1 ends every line of a head with CRLF (RFC 9112 §2.2). httparse, hyper's
//! parser, also takes a bare LF, and has no switch to stop; a proxy in front that
//! reads the same bytes by the rule could then see another request than we do (the
//! seed of request smuggling). The check sits where the bytes come in, below the
//! parser: [`LineEnds`] turns every LF that no CR precedes into a NUL, a byte no
//! head may hold, so hyper's own parser refuses the head with 400 and closes the
//! connection. Only request heads are ever parsed here: tributary serves GET and
//! HEAD, and reads no request body (a request with one is answered 405 and its
//! body, altered or not, is discarded), so no byte that matters is changed.
//!
//! `zerocopy::Connection` runs every byte it reads through one `LineEnds`.

/// The state of one connection's inbound bytes: whether the last byte was a CR.
#[derive(Debug, Default)]
pub struct LineEnds {
    after_cr: bool,
}

/// What a bare LF becomes: NUL is valid in no part of a request head.
const REFUSED: u8 = 0;

impl LineEnds {
    /// Alters `bytes`, the next bytes read from the connection, in place: every LF
    /// without a CR before it (in this read or at the end of the last) becomes NUL.
    pub fn refuse_bare_lf(&mut self, bytes: &mut [u8]) {
        // The common case, one memchr and no change: every LF of a proper head
        // follows a CR.
        let mut previous_cr = self.after_cr;
        let mut from = 0;
        while let Some(at) = bytes[from..].iter().position(|&b| b == b'\n') {
            let at = from + at;
            let cr_before = if at == 0 {
                previous_cr
            } else {
                bytes[at - 1] == b'\r'
            };
            if !cr_before {
                bytes[at] = REFUSED;
            }
            from = at + 1;
        }
        if let Some(&last) = bytes.last() {
            previous_cr = last == b'\r';
        }
        self.after_cr = previous_cr;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(reads: &[&str]) -> String {
        let mut ends = LineEnds::default();
        let mut out = String::new();
        for read in reads {
            let mut bytes = read.as_bytes().to_vec();
            ends.refuse_bare_lf(&mut bytes);
            out.push_str(&String::from_utf8(bytes).unwrap().replace('\0', "<NUL>"));
        }
        out
    }

    #[test]
    fn only_bare_line_feeds_are_refused() {
        let proper = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(refused(&[proper]), proper);
        assert_eq!(
            refused(&["GET / HTTP/1.1\nHost: x\r\n\n"]),
            "GET / HTTP/1.1<NUL>Host: x\r\n<NUL>"
        );
        // A CR at the end of one read covers an LF at the start of the next.
        assert_eq!(
            refused(&["GET / HTTP/1.1\r", "\nHost: x\r\n\r", "\n"]),
            proper
        );
        assert_eq!(refused(&["Host: x\r\n", "\n"]), "Host: x\r\n<NUL>");
        assert_eq!(refused(&["\n"]), "<NUL>");
        assert_eq!(refused(&[""]), "");
    }
}
