//! What a reader expects of a card beyond the applet: ISO 7816-4 command chaining (a command
//! whose CLA has bit 5 set is the first part of a longer one) and answers longer than the
//! command's Le handed out in pieces through GET RESPONSE (`61xx`), as OpenSC and `opencm card`
//! use them.

use piv_authenticator::{Authenticator, Client};
use std::collections::VecDeque;

/// The longest command (after chaining) and answer: PIV certificates are a few KiB.
const SIZE: usize = 8192;

type Command = iso7816::Command<SIZE>;

pub struct Card<T> {
    applet: Authenticator<T>,
    /// The parts of a chained command received so far.
    chained: Option<Command>,
    /// The rest of an answer the reader fetches with GET RESPONSE.
    pending: VecDeque<u8>,
}

/// The ATR of a contact card with T=1, as vpcd passes it on.
const ATR: &[u8] = &[
    0x3b, 0x8c, 0x80, 0x01, 0x80, 0x73, 0xc0, 0x21, 0xc0, 0x56, 0x59, 0x75, 0x62, 0x69, 0x4b, 0x65,
    0x79, 0x1a,
];

fn sw(status: iso7816::Status) -> Vec<u8> {
    let b: [u8; 2] = status.into();
    b.to_vec()
}

impl<T: Client> Card<T> {
    pub fn new(applet: Authenticator<T>) -> Self {
        Card {
            applet,
            chained: None,
            pending: VecDeque::new(),
        }
    }

    /// Up to `le` bytes of the pending answer, with `61xx` while more remains.
    fn next_piece(&mut self, le: usize) -> Vec<u8> {
        let n = le.min(self.pending.len());
        let mut out: Vec<u8> = self.pending.drain(..n).collect();
        match self.pending.len() {
            0 => out.extend_from_slice(&[0x90, 0x00]),
            rest => out.extend_from_slice(&[0x61, rest.min(256) as u8]),
        }
        out
    }

    fn run(&mut self, command: &Command) -> Vec<u8> {
        let mut reply = heapless::Vec::<u8, SIZE>::new();
        match self.applet.respond(command.as_view(), reply.as_mut_view()) {
            Ok(()) => {
                self.pending.extend(reply.iter().copied());
                let le = match command.expected() {
                    0 => 256,
                    le => le,
                };
                self.next_piece(le)
            }
            Err(status) => sw(status),
        }
    }
}

impl<T: Client> vpicc::VSmartCard for Card<T> {
    fn atr(&self) -> &[u8] {
        ATR
    }

    fn power_off(&mut self) {
        self.chained = None;
        self.pending.clear();
    }

    fn reset(&mut self) {
        self.power_off();
    }

    fn execute(&mut self, msg: &[u8]) -> Vec<u8> {
        let command = match Command::try_from(msg) {
            Ok(c) => c,
            Err(_) => return sw(iso7816::Status::WrongLength),
        };
        if command.instruction() == iso7816::Instruction::GetResponse {
            if self.pending.is_empty() {
                return sw(iso7816::Status::ConditionsOfUseNotSatisfied);
            }
            let le = match command.expected() {
                0 => 256,
                le => le,
            };
            return self.next_piece(le);
        }
        self.pending.clear();
        let chained_more = matches!(
            command.class().chain(),
            iso7816::command::class::Chain::NotTheLast
        );
        let whole = match self.chained.take() {
            Some(mut first) => {
                if first.extend_from_command(&command).is_err() {
                    return sw(iso7816::Status::WrongLength);
                }
                first
            }
            None => command,
        };
        if chained_more {
            self.chained = Some(whole);
            return sw(iso7816::Status::Success);
        }
        self.run(&whole)
    }
}
