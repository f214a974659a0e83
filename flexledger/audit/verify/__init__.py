"""`flexledger audit verify`: hold eligibility's stored ledger to its own evidence.

It reads eligibility's events table, in notification order, and checks (one module each):
1. every row decrypts and decodes (a changed byte fails AES-GCM's authentication: tampering);
2. every stream's versions run 1, 2, 3, ... (a gap is a deleted event), its id is the keyed id of the
   book and subject it holds (a moved row), and its hash chain links (`chain.link_hash` link by link,
   as `chain.verify_chain` does for a whole stream: an altered or deleted event breaks it) — steps 1
   and 2: chains.py;
3. every fact's decisions re-derive exactly from the stream's earlier facts under their rule set
   (rederive.py);
4. the signed checkpoints: each signature verifies with the public key, and the running digest of the
   stored rows up to each checkpoint still equals the signed one (count and digest) (checkpoints.py);
5. intake's log as a second witness: every seq intake recorded, up to what eligibility reports as
   processed, has its event (this names a deleted event even at the end of a stream), and every fact
   eligibility processed is the one intake recorded at its (book, seq) — same fact id, outcome,
   subject and digest, the digest its fact's — once (this names a fact decided past intake) (intake.py);
6. payments agree with decisions: per money line, what payments ordered net of clawbacks never
   exceeds grants minus clawbacks, and every order answers a grant of that amount (payments.py);
7. the services' runtime role cannot UPDATE, DELETE or TRUNCATE an event table (roles.py).

Problems name the event (notification id, stream with the subject masked, version) (report.py). Exit
1 on any. run.py runs the checks: steps 1-3 in forked workers, each over a share of the streams,
while the parent runs 4 and 7 and reads the logs 5 and 6 need; money.py carries the ledger's money
and its processed facts from the workers to 5 and 6.
"""

from flexledger.audit.verify.report import Problem, Report
from flexledger.audit.verify.run import verify

__all__ = ["Problem", "Report", "verify"]
