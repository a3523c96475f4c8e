"""`manage.py hl7_listen [--host H] [--port P]`: a small MLLP listener that prints and ACKs what it receives.

For trying the HL7 v2 consumer by hand: point HL7_MLLP_HOST/HL7_MLLP_PORT at it. Each message is parsed and
validated strictly (hl7apy); a valid one gets AA, an invalid one AE with the validation error.
"""

from django.core.management.base import BaseCommand

from interop.hl7v2 import messages
from interop.hl7v2.mllp import MllpListener


class Command(BaseCommand):
    help = "Listen for HL7 v2 messages over MLLP, print each one and acknowledge it (AA, or AE if invalid)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=2575, help="Port to listen on (default 2575; 0: any free).")

    def handle(self, *args, host: str, port: int, **options):
        def respond(er7: str) -> str:
            self.stdout.write(er7.replace("\r", "\n").strip() + "\n")
            try:
                received = messages.parse_strictly(er7)
            except messages.InvalidMessage as exc:
                self.stderr.write(f"Invalid: {exc}")
                try:
                    from hl7apy.parser import parse_message

                    received = parse_message(er7.strip(), find_groups=False)
                except Exception:  # noqa: BLE001 - not even an MSH to answer to
                    return ""
                return messages.ack_message(received=received, code="AE", text=str(exc)).to_er7()
            return messages.ack_message(received=received, code="AA").to_er7()

        listener = MllpListener(host, port, respond)
        self.stdout.write(f"Listening for HL7 v2 over MLLP on {host}:{listener.port} (Ctrl-C to stop).")
        try:
            listener.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            listener.server_close()
