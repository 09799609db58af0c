//! ISO 7816-4 APDUs over PC/SC: short APDUs, command chaining for data over 255 bytes, and long
//! answers collected through GET RESPONSE (`61xx`) and `6Cxx` retries, as every PIV token expects.

use anyhow::{bail, Context, Result};

/// A status word other than 9000, named in errors as cards and their specifications write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusWord(pub u16);

impl std::fmt::Display for StatusWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let meaning = match self.0 {
            0x6982 => "security status not satisfied",
            0x6983 => "authentication method blocked",
            0x6a80 => "incorrect data",
            0x6a82 => "file or application not found",
            0x6a86 => "incorrect P1/P2",
            0x6d00 => "instruction not supported",
            0x6700 => "wrong length",
            s if s & 0xfff0 == 0x63c0 => {
                return write!(f, "{:04X} (wrong PIN or key: {} tries left)", s, s & 0xf)
            }
            _ => "",
        };
        if meaning.is_empty() {
            write!(f, "{:04X}", self.0)
        } else {
            write!(f, "{:04X} ({meaning})", self.0)
        }
    }
}

impl std::error::Error for StatusWord {}

pub struct Transport {
    card: pcsc::Card,
}

impl Transport {
    pub fn new(card: pcsc::Card) -> Self {
        Transport { card }
    }

    fn raw(&self, apdu: &[u8]) -> Result<(Vec<u8>, u16)> {
        let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        let r = self
            .card
            .transmit(apdu, &mut buf)
            .context("the card did not answer (PC/SC transmit)")?;
        if r.len() < 2 {
            bail!("the card answered {} bytes, not a status word", r.len());
        }
        let sw = u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]]);
        Ok((r[..r.len() - 2].to_vec(), sw))
    }

    /// Sends `cla ins p1 p2 data` (chained when longer than 255 bytes) and returns the whole
    /// answer, or the status word as an error.
    pub fn send(&self, cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>> {
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![&[][..]]
        } else {
            data.chunks(255).collect()
        };
        let last = chunks.len() - 1;
        let mut answer = Vec::new();
        let mut sw = 0x9000;
        for (i, chunk) in chunks.iter().enumerate() {
            let class = if i < last { cla | 0x10 } else { cla };
            let mut apdu = vec![class, ins, p1, p2];
            if !chunk.is_empty() {
                apdu.push(chunk.len() as u8);
                apdu.extend_from_slice(chunk);
            }
            if i == last {
                apdu.push(0x00); // Le: up to 256
            }
            let (data, s) = self.raw(&apdu)?;
            if i < last && s != 0x9000 {
                return Err(StatusWord(s).into());
            }
            answer = data;
            sw = s;
            if i == last && s & 0xff00 == 0x6c00 {
                // Wrong Le: the card says how many bytes it has.
                *apdu.last_mut().unwrap_or(&mut 0) = (s & 0xff) as u8;
                let (data, s) = self.raw(&apdu)?;
                answer = data;
                sw = s;
            }
        }
        while sw & 0xff00 == 0x6100 {
            let (more, s) = self.raw(&[0x00, 0xc0, 0x00, 0x00, (sw & 0xff) as u8])?;
            answer.extend_from_slice(&more);
            sw = s;
        }
        if sw != 0x9000 {
            return Err(StatusWord(sw).into());
        }
        Ok(answer)
    }
}

/// The value of the first BER-TLV with `tag` (one or two bytes) in `data`, at the top level.
pub fn tlv<'a>(data: &'a [u8], tag: &[u8]) -> Option<&'a [u8]> {
    let mut rest = data;
    while !rest.is_empty() {
        let tag_len = if rest[0] & 0x1f == 0x1f { 2 } else { 1 };
        let this_tag = rest.get(..tag_len)?;
        let (len, len_len) = match *rest.get(tag_len)? {
            n if n < 0x80 => (n as usize, 1),
            0x81 => (*rest.get(tag_len + 1)? as usize, 2),
            0x82 => (
                u16::from_be_bytes([*rest.get(tag_len + 1)?, *rest.get(tag_len + 2)?]) as usize,
                3,
            ),
            _ => return None,
        };
        let start = tag_len + len_len;
        let value = rest.get(start..start + len)?;
        if this_tag == tag {
            return Some(value);
        }
        rest = &rest[start + len..];
    }
    None
}

/// A BER-TLV.
pub fn encode(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_vec();
    match value.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlvs_round_trip_at_every_length_form() {
        for n in [0usize, 5, 127, 128, 255, 256, 3000] {
            let v = vec![7u8; n];
            let both = [encode(&[0x53], &[1, 2]), encode(&[0x5f, 0xc1], &v)].concat();
            assert_eq!(tlv(&both, &[0x5f, 0xc1]), Some(&v[..]), "{n}");
            assert_eq!(tlv(&both, &[0x53]), Some(&[1u8, 2][..]));
            assert_eq!(tlv(&both, &[0x99]), None);
        }
        assert_eq!(tlv(&[0x53, 0x05, 1], &[0x53]), None, "truncated");
    }

    #[test]
    fn status_words_say_what_they_mean() {
        assert_eq!(
            StatusWord(0x63c2).to_string(),
            "63C2 (wrong PIN or key: 2 tries left)"
        );
        assert_eq!(
            StatusWord(0x6982).to_string(),
            "6982 (security status not satisfied)"
        );
        assert_eq!(StatusWord(0x6f00).to_string(), "6F00");
    }
}
