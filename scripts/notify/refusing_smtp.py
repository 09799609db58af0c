"""An aiosmtpd handler for opencm's tests: a Maildir like aiosmtpd's own Mailbox handler, except
that it refuses for good (550 5.1.1) every recipient whose address starts with "bob@".

    PYTHONPATH=scripts/notify python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c refusing_smtp.Refusing MAILDIR
"""

from aiosmtpd.handlers import Mailbox


class Refusing(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("bob@"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"
